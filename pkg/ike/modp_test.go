package ike

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/cgwd/cgwd/pkg/proposal"
)

// piFloor is floor(pi * 2^bits), from Machin's formula pi = 16 atan(1/5) -
// 4 atan(1/239) in fixed point with 64 guard bits.
func piFloor(bits uint) *big.Int {
	one := new(big.Int).Lsh(big.NewInt(1), bits+64)
	atanInv := func(n int64) *big.Int { // atan(1/n) * 2^(bits+64)
		sum, term := new(big.Int), new(big.Int).Div(one, big.NewInt(n))
		n2 := big.NewInt(n * n)
		for k := int64(0); term.Sign() != 0; k++ {
			t := new(big.Int).Div(term, big.NewInt(2*k+1))
			if k%2 == 0 {
				sum.Add(sum, t)
			} else {
				sum.Sub(sum, t)
			}
			term.Div(term, n2)
		}
		return sum
	}
	pi := new(big.Int).Sub(new(big.Int).Mul(big.NewInt(16), atanInv(5)), new(big.Int).Mul(big.NewInt(4), atanInv(239)))
	return pi.Rsh(pi, 64)
}

// TestMODPPrimesFollowTheirRFCs rebuilds each RFC 2409/3526 prime from its
// published formula, 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) pi) + k),
// and compares it with the transcribed hex.
func TestMODPPrimesFollowTheirRFCs(t *testing.T) {
	ks := map[uint16]struct {
		n uint
		k int64
	}{2: {1024, 129093}, 5: {1536, 741804}, 14: {2048, 124476}, 15: {3072, 1690314}, 16: {4096, 240904},
		17: {6144, 929484}, 18: {8192, 4743158}}
	pi := piFloor(8192 - 130)
	for g, c := range ks {
		p := new(big.Int).Lsh(big.NewInt(1), c.n)
		p.Sub(p, new(big.Int).Lsh(big.NewInt(1), c.n-64))
		p.Sub(p, big.NewInt(1))
		f := new(big.Int).Rsh(pi, 8192-c.n) // floor(2^(n-130) pi)
		f.Add(f, big.NewInt(c.k))
		p.Add(p, f.Lsh(f, 64))
		m := modpParams()[g]
		if m == nil || m.p.Cmp(p) != 0 || m.g.Cmp(big.NewInt(2)) != 0 || m.q != nil {
			t.Errorf("group %d does not match RFC's construction", g)
		}
	}
}

// TestMODPGroupStructure: every prime is prime, the safe primes' (p-1)/2
// too, and each RFC 5114 generator has the stated prime order q.
func TestMODPGroupStructure(t *testing.T) {
	bits := map[uint16][2]int{2: {1024}, 5: {1536}, 14: {2048}, 15: {3072}, 16: {4096}, 17: {6144}, 18: {8192},
		22: {1024, 160}, 23: {2048, 224}, 24: {2048, 256}}
	if len(modpParams()) != len(bits) {
		t.Fatalf("%d MODP groups, want %d", len(modpParams()), len(bits))
	}
	for g, m := range modpParams() {
		if m.p.BitLen() != bits[g][0] || !m.p.ProbablyPrime(0) {
			t.Errorf("group %d: p (%d bits) is not a %d-bit prime", g, m.p.BitLen(), bits[g][0])
		}
		if m.q == nil {
			if !new(big.Int).Rsh(m.p, 1).ProbablyPrime(0) {
				t.Errorf("group %d: (p-1)/2 is not prime", g)
			}
			continue
		}
		if m.q.BitLen() != bits[g][1] || !m.q.ProbablyPrime(0) || new(big.Int).Mod(m.pMinus1, m.q).Sign() != 0 ||
			m.g.Cmp(big.NewInt(1)) <= 0 || new(big.Int).Exp(m.g, m.q, m.p).Cmp(big.NewInt(1)) != 0 {
			t.Errorf("group %d: g does not generate a subgroup of prime order q (%d bits) dividing p-1", g, bits[g][1])
		}
	}
}

// TestPrivateExponentSizes: a safe-prime group's private exponent has the
// size RFC 3526 section 8 asks for, an RFC 5114 group's is below q; both
// are at least 2.
func TestPrivateExponentSizes(t *testing.T) {
	for g, m := range modpParams() {
		if (m.q == nil) == (exponentBits[g] == 0) {
			t.Fatalf("group %d: exponent size %d with subgroup order %v", g, exponentBits[g], m.q)
		}
		for range 20 {
			k, err := newDH(g)
			if err != nil {
				t.Fatal(err)
			}
			x := k.(*modpKey).x
			if x.Cmp(big.NewInt(2)) < 0 || m.q != nil && x.Cmp(m.q) >= 0 || m.q == nil && x.BitLen() > exponentBits[g] {
				t.Fatalf("group %d: private exponent of %d bits out of range", g, x.BitLen())
			}
		}
	}
}

// TestRFC5114TestData computes RFC 5114 appendix A's public values and
// shared secret from its private values.
func TestRFC5114TestData(t *testing.T) {
	for g, d := range rfc5114TestData {
		m := modpParams()[g]
		a := &modpKey{group: g, m: m, x: hexInt(d.xA)}
		b := &modpKey{group: g, m: m, x: hexInt(d.xB)}
		if hexInt(d.yA).Cmp(new(big.Int).SetBytes(a.public())) != 0 || hexInt(d.yB).Cmp(new(big.Int).SetBytes(b.public())) != 0 {
			t.Errorf("group %d: public values differ from RFC 5114", g)
		}
		za, err1 := a.shared(b.public())
		zb, err2 := b.shared(a.public())
		if err1 != nil || err2 != nil || !bytes.Equal(za, zb) || hexInt(d.z).Cmp(new(big.Int).SetBytes(za)) != 0 {
			t.Errorf("group %d: shared value differs from RFC 5114 (%v, %v)", g, err1, err2)
		}
	}
}

// TestEveryGroupAgrees: for every group proposals can name, two fresh keys
// reach the same shared secret.
func TestEveryGroupAgrees(t *testing.T) {
	for g := uint16(1); g < 64; g++ {
		name := proposal.GroupName(g)
		if name == "" {
			continue
		}
		a, err := newDH(g)
		if err != nil {
			t.Fatalf("%s (group %d): %v", name, g, err)
		}
		b, _ := newDH(g)
		za, err1 := a.shared(b.public())
		zb, err2 := b.shared(a.public())
		if err1 != nil || err2 != nil || !bytes.Equal(za, zb) || len(za) == 0 {
			t.Errorf("%s (group %d): no agreement (%v, %v)", name, g, err1, err2)
		}
	}
}

// TestMODPRejectsBadPublicValues: 0, 1, p-1, p and values of the wrong
// length in every MODP group, and in the RFC 5114 groups a value outside
// the prime-order subgroup, are refused with ErrDHPublicValue.
func TestMODPRejectsBadPublicValues(t *testing.T) {
	for g, m := range modpParams() {
		k, err := newDH(g)
		if err != nil {
			t.Fatal(err)
		}
		size := (m.p.BitLen() + 7) / 8
		enc := func(n *big.Int) []byte { return n.FillBytes(make([]byte, size)) }
		bad := map[string][]byte{
			"0": enc(big.NewInt(0)), "1": enc(big.NewInt(1)), "p-1": enc(m.pMinus1), "p": enc(m.p),
			"short": make([]byte, size-1), "long": append(enc(big.NewInt(2)), 0),
		}
		if m.q != nil {
			// g*(p-1) = -g has order 2q: in range, outside the subgroup.
			bad["outside subgroup"] = enc(new(big.Int).Sub(m.p, m.g))
		}
		for what, y := range bad {
			if _, err := k.shared(y); !errors.Is(err, ErrDHPublicValue) {
				t.Errorf("group %d: %s accepted or wrong error: %v", g, what, err)
			}
		}
		if m.q != nil {
			if _, err := k.shared(bad["outside subgroup"]); err == nil || !bytes.Contains([]byte(err.Error()), []byte("subgroup")) {
				t.Errorf("group %d: error does not name the subgroup: %v", g, err)
			}
		}
	}
}

// TestECPRejectsPointsOffTheCurve: a KE value that is not a point on the
// curve is refused with ErrDHPublicValue.
func TestECPRejectsPointsOffTheCurve(t *testing.T) {
	for _, g := range []uint16{19, 20, 21} {
		k, _ := newDH(g)
		pub := k.public()
		pub[len(pub)-1] ^= 1
		if _, err := k.shared(pub); !errors.Is(err, ErrDHPublicValue) {
			t.Errorf("group %d: %v", g, err)
		}
	}
}

// RFC 5114 appendix A test data: private values x, public values y of
// parties A and B, and the shared value Z.
var rfc5114TestData = map[uint16]struct{ xA, yA, xB, yB, z string }{
	22: {
		xA: "B9A3B3AE8FEFC1A2930496507086F8455D48943E",
		yA: "2A853B3D92197501B9015B2DEB3ED84F5E021DCC3E52F109D3273D2B7521281CBABE0E76FF5727FA8ACCE26956BA9A1F" +
			"CA26F20228D8693FEB10841D84A7360054ECE5A7F5B7A61AD3DFB3C60D2E43106D8727DA37DF9CCE95B478755D06BCEA" +
			"8F9D45965F75A5F3D1DF3701165FC9E50C4279CEB07F989540AE96D5D88ED776",
		xB: "9392C9F9EB6A7A6A9022F7D83E7223C6835BBDDA",
		yB: "717A6CB053371FF4A3B932941C1E5663F861A1D6AD34AE66576DFB98F6C6CBF9DDD5A56C7833F6BCFDFF095582AD868E" +
			"440E8D09FD769E3CECCDC3D3B1E4CFA057776CAAF9739B6A9FEE8E7411F8D6DAC09D6A4EDB46CC2B5D5203090EAE6126" +
			"311E53FD2C14B574E6A3109A3DA1BE41BDCEAA186F5CE06716A2B6A07B3C33FE",
		z: "5C804F454D30D9C4DF85271F93528C91DF6B48AB5F80B3B59CAAC1B28F8ACBA9CD3E39F3CB614525D9521D2E644C53B8" +
			"07B810F340062F257D7D6FBFE8D5E8F072E9B6E9AFDA9413EAFB2E8B0699B1FB5A0CACEDDEAEAD7E9CFBB36AE2B42083" +
			"5BD83A19FB0B5E96BF8FA4D09E345525167ECD9155416F46F408ED31B63C6E6D",
	},
	23: {
		xA: "22E62601DBFFD06708A680F747F361F76D8F4F721A0548E483294B0C",
		yA: "1B3A63451BD886E699E67B494E288BD7F8E0D370BADDA7A0EFD2FDE7D8F66145CC9F280419975EB808877C8A4C0C8E0B" +
			"D48D4A5401EB1E8776BFEEE134C03831AC273CD9D635AB0CE006A42A887E3F52FB8766B650F38078BC8EE8580CEFE243" +
			"968CFC4F8DC3DB084554171D41BF2E861B7BB4D69DD0E01EA387CBAA5CA672AFCBE8BDB9D62D4CE15F17DD36F91ED1EE" +
			"DD65CA4A06455CB94CD40A52EC360E84B3C926E22C4380A3BF309D56849768B7F52CFDF655FD053A7EF706979E7E5806" +
			"B17DFAE53AD2A5BC568EBB529A7A61D68D256F8FC97C074A861D827E2EBC8C6134553115B70E7103920AA16D85E52BCB" +
			"AB8D786A68178FA8FF7C2F5C71648D6F",
		xB: "4FF3BC96C7FC6A6D71D3B363800A7CDFEF6FC41B4417EA15353B7590",
		yB: "4DCEE992A9762A13F2F83844AD3D77EE0E31C9718B3DB6C2035D3961182C3E0BA247EC4182D760CD48D99599970622A1" +
			"881BBA2DC822939C78C3912C6661FA5438B20766222B75E24C2E3AD0C7287236129525EE15B5DD7998AA04C4A9696CAC" +
			"D7172083A97A81664EAD2C479E444E4C0654CC19E28D7703CEE8DACD6126F5D665EC52C67255DB92014B037EB621A2AC" +
			"8E365DE071FFC1400ACF077A12913DD8DE89473437AB7BA346743C1B215DD9C12164A7E4053118D199BEC8EF6FC56117" +
			"0C84C87D10EE9A674A1FA8FFE13BDFBA1D44DE48946D68DC0CDD777635A7AB5BFB1E4BB7B856F96827734C184138E915" +
			"D9C3002EBCE53120546A7E2002142B6C",
		z: "34D9BDDC1B42176C313FEA034C21034D074A6313BB4ECDB3703FFF424567A46BDF75530EDE0A9DA5229DE7D76732286C" +
			"BC0F91DA4C3C852FC099C679531D94C78AB03D9DECB0A4E4CA8B2BB4591C4021CF8CE3A20A541D33994017D0200AE2C9" +
			"516E2FF5145779269E862B0FB474A2D56DC31ED569A7700B4C4AB16B22A45513531EF523D71212077B5A169BDEFFAD7A" +
			"D9608284C7795B6D5A5183B87066DE17D8D671C9EBD8EC89544D45EC061593D442C62AB9CE3B1CB9943A1D23A5EA3BCF" +
			"21A01471E67E003E7F8A69C728BE490B2FC88CFEB92DB6A215E5D03C17C464C9AC1A46E203E13F952995FB03C69D3CC4" +
			"7FCB510B6998FFD3AA6DE73CF9F63869",
	},
	24: {
		xA: "0881382CDB87660C6DC13E614938D5B9C8B2F248581CC5E31B35454397FCE50E",
		yA: "2E9380C8323AF97545BC4941DEB0EC3742C62FE0ECE824A6ABDBE66C59BEE0242911BFB967235CEBA35AE13E4EC752BE" +
			"630B92DC4BDE2847A9C62CB8152745421FB7EB60A63C0FE9159FCCE726CE7CD8523D7450667EF840E4919121EB5F01C8" +
			"C9B0D3D648A93BFB75689E8244AC134AF544711CE79A02DCC34226684780DDDCB498594106C37F5BC79856487AF5AB02" +
			"2A2E5E42F09897C1A85A11EA0212AF04D9B4CEBC937C3C1A3E15A8A0342E337615C84E7FE3B8B9B87FB1E73A15AF12A3" +
			"0D746E06DFC34F290D797CE51AA13AA785BF6658AFF5E4B093003CBEAF665B3C2E113A3A4E905269341DC0711426685F" +
			"4EF37E868A8126FF3F2279B57CA67E29",
		xB: "7D62A7E3EF36DE617B13D1AFB82C780D83A23BD4EE6705645121F371F546A53D",
		yB: "575F0351BD2B1B817448BDF87A6C362C1E289D3903A30B9832C5741FA250363E7ACBC7F77F3DACBC1F131ADD8E03367E" +
			"FF8FBBB3E1C5784424809B25AFE4D2262A1A6FD2FAB64105CA30A674E07F7809852088632FC049233791AD4EDD083A97" +
			"8B883EE618BC5E0DD047415F2D95E683CF14826B5FBE10D3CE41C6C120C78AB20008C698BF7F0BCAB9D7F407BED0F43A" +
			"FB2970F57F8D12043963E66DDD320D599AD9936C8F44137C08B180EC5E985CEBE186F3D549677E80607331EE17AF3380" +
			"A725B0782317D7DD43F59D7AF9568A9BB63A84D365F92244ED120988219302F42924C7CA90B89D24F71B0AB697823D7D" +
			"EB1AFF5B0E8E4A45D49F7F53757E1913",
		z: "86C70BF8D0BB81BB01078A17219CB7D27203DB2A19C877F1D1F19FD7D77EF22546A68F005AD52DC84553B78FC60330BE" +
			"51EA7C0672CAC1515E4B35C047B9A551B88F39DC26DA14A09EF74774D47C762DD177F9ED5BC2F11E52C879BD95098504" +
			"CD9EECD8A8F9B3EFBD1F008AC5853097D9D1837F2B18F77CD7BE01AF80A7C7B5EA3CA54CC02D0C116FEE3F95BB873993" +
			"85875D7E86747E676E728938ACBFF7098E05BE4DCFB24052B83AEFFB14783F029ADBDE7F53FAE92084224090E007CEE9" +
			"4D4BF2BACE9FFD4B57D2AF7C724D0CAA19BF0501F6F17B4AA10F425E3EA76080B4B9D6B3CEFEA115B2CEB8789BB8A3B0" +
			"EA87FEBE63B6C8F846EC6DB0C26C5D7C",
	},
}

// BenchmarkDH is one side's Diffie-Hellman work in an exchange: a fresh
// key, its public value and the shared secret, per group.
func BenchmarkDH(b *testing.B) {
	for _, g := range []uint16{2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24} {
		peer, err := newDH(g)
		if err != nil {
			b.Fatal(err)
		}
		pub := peer.public()
		b.Run(proposal.GroupName(g), func(b *testing.B) {
			for b.Loop() {
				k, _ := newDH(g)
				k.public()
				if _, err := k.shared(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
