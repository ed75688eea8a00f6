package wire

// Certificate authentication (RFC 7296 3.6-3.8, RFC 7427): the CERT and
// CERTREQ payloads, the AUTH methods and the SIGNATURE_HASH_ALGORITHMS
// notify. A CERT payload is a copy of at most its datagram's bytes, so the
// parsing limits and AllocBudget hold as for any payload; how many
// certificates are taken, and how large, pkg/certauth bounds before
// parsing one.

// Payload types of certificate authentication.
const (
	PayloadCert    PayloadType = 37
	PayloadCertReq PayloadType = 38
)

// CertX509Sig is the X.509 certificate (signature) encoding of CERT and
// CERTREQ payloads, the one IKEv2 peers use.
const CertX509Sig = 4

// AUTH methods and ID types of certificate authentication.
const (
	AuthRSA      = 1  // RSASSA-PKCS1-v1_5 with SHA-1
	AuthECDSA256 = 9  // RFC 4754: ECDSA with SHA-256 on P-256
	AuthECDSA384 = 10 // ECDSA with SHA-384 on P-384
	AuthECDSA521 = 11 // ECDSA with SHA-512 on P-521
	AuthDigSig   = 14 // RFC 7427 digital signature
	IDDN         = 9  // ID_DER_ASN1_DN
)

// NSignatureHashAlgorithms (RFC 7427 4) lists the hashes a peer verifies
// digital signatures with, as 16-bit numbers.
const NSignatureHashAlgorithms = 16431

// RFC 7427 hash algorithm numbers.
const (
	HashSHA1   = 1
	HashSHA256 = 2
	HashSHA384 = 3
	HashSHA512 = 4
)

// Cert is a CERT payload: one certificate in Encoding.
type Cert struct {
	Encoding uint8
	Data     []byte
}

// CertReq is a CERTREQ payload: for X.509, the SHA-1 hashes of the
// public keys of the CAs the sender trusts.
type CertReq struct {
	Encoding uint8
	Data     []byte
}

// Type implementations.
func (*Cert) Type() PayloadType    { return PayloadCert }
func (*CertReq) Type() PayloadType { return PayloadCertReq }

func init() {
	notifyNames[NSignatureHashAlgorithms] = "SIGNATURE_HASH_ALGORITHMS"
}

// checkCert validates a CERT or CERTREQ body: an encoding byte and data.
func checkCert(t PayloadType, b []byte) error {
	if len(b) < 1 {
		return ParseError("CERT or CERTREQ payload without an encoding")
	}
	if t == PayloadCert && len(b) < 2 {
		return ParseError("CERT payload without data")
	}
	return nil
}
