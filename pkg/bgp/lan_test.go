package bgp

import (
	"net/netip"
	"slices"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
)

var pfx = netip.MustParsePrefix

// lanTestConfig: an AWS session (dx1), an eBGP core and an iBGP router on the LAN.
func lanTestConfig() Config {
	return Config{
		ASN: 65000, Prefixes: []netip.Prefix{pfx("10.10.0.0/16")},
		Deny: []netip.Prefix{pfx("10.10.0.0/16"), pfx("169.254.0.0/16")},
		Peers: []PeerConfig{
			{Name: "dx1", Address: netip.MustParseAddr("169.254.255.1"), PeerASN: 64512, Prepend: 3},
			{Name: "core", Address: netip.MustParseAddr("10.10.0.10"), PeerASN: 65010, LAN: true},
			{Name: "ibgp", Address: netip.MustParseAddr("10.10.0.11"), PeerASN: 65000, LAN: true},
		},
		LAN: LANConfig{
			Allow: []netip.Prefix{pfx("10.0.0.0/8")}, AWSPrefixes: []netip.Prefix{pfx("10.200.0.0/16")},
			Aggregate: []netip.Prefix{pfx("10.30.0.0/16")},
			MED:       KindValues{DX: 0, VPN: 100}, LocalPref: KindValues{DX: 200, VPN: 100},
		},
	}
}

func statement(t *testing.T, pol *api.Policy, name string) *api.Statement {
	t.Helper()
	for _, st := range pol.Statements {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("policy %s has no statement %s", pol.Name, name)
	return nil
}

// LAN peers: everything they send is rejected by gobgp's import (cgwd
// imports it itself); they get only cgwd's marked originations, with the
// MED of the path kind and, on iBGP only, its local preference.
func TestLANPolicies(t *testing.T) {
	cfg := lanTestConfig()
	sets, pols := policies(cfg)
	imp, exp := pols[0], pols[1]
	if st := imp.Statements[0]; st.Name != "cgwd-import-lan" || st.Conditions.NeighborSet.Name != setLAN || st.Actions.RouteAction != api.RouteAction_REJECT {
		t.Errorf("first import statement %v", st)
	}
	for _, st := range exp.Statements {
		if st.Name == "cgwd-export-core" || st.Name == "cgwd-export-ibgp" {
			t.Errorf("a LAN peer gets the on-prem prefixes: %v", st)
		}
	}
	if st := exportOf(t, pols, "dx1"); st.Actions.AsPrepend.GetRepeat() != 3 || st.Conditions.PrefixSet.Name != setOnPrem {
		t.Errorf("dx1's export changed: %v", st)
	}
	for _, c := range []struct {
		stmt     string
		med      int64
		lp       uint32
		markName string
	}{
		{"cgwd-export-core-dx", 0, 0, setMark + "dx"},
		{"cgwd-export-core-vpn", 100, 0, setMark + "vpn"},
		{"cgwd-export-ibgp-dx", 0, 200, setMark + "dx"},
		{"cgwd-export-ibgp-vpn", 100, 100, setMark + "vpn"},
	} {
		st := statement(t, exp, c.stmt)
		if st.Actions.Med.GetValue() != c.med || st.Actions.Med.GetType() != api.MedAction_REPLACE || st.Actions.LocalPref.GetValue() != c.lp {
			t.Errorf("%s: med %v local pref %v, want %d %d", c.stmt, st.Actions.Med, st.Actions.LocalPref, c.med, c.lp)
		}
		if st.Conditions.RouteType != api.Conditions_ROUTE_TYPE_LOCAL || st.Conditions.CommunitySet.GetName() != c.markName {
			t.Errorf("%s: conditions %v", c.stmt, st.Conditions)
		}
		if st.Actions.Community.GetType() != api.CommunityAction_REMOVE || len(st.Actions.Community.GetCommunities()) != 2 {
			t.Errorf("%s: marks not removed: %v", c.stmt, st.Actions.Community)
		}
	}
	var marks []string
	for _, s := range sets {
		if s.DefinedType == api.DefinedType_COMMUNITY {
			marks = append(marks, s.List...)
		}
	}
	if !slices.Equal(marks, []string{"^65534:64801$", "^65534:64802$"}) {
		t.Errorf("mark sets %v", marks)
	}
	// Without LAN peers, no LAN statement at all.
	cfg.Peers = cfg.Peers[:1]
	_, pols = policies(cfg)
	if n := len(pols[0].Statements) + len(pols[1].Statements); n != 2 {
		t.Errorf("%d statements without LAN peers, want 2", n)
	}
}

// The import keeps what is inside the allow list and is neither
// link-local nor an AWS prefix (configured or offered by an AWS peer), and
// takes a prefix offered twice from the first peer in the config.
func TestImportLAN(t *testing.T) {
	v := newView(lanTestConfig())
	nh1, nh2 := netip.MustParseAddr("10.10.0.10"), netip.MustParseAddr("10.10.0.11")
	received := map[string]map[netip.Prefix]netip.Addr{
		"core": {
			pfx("10.20.0.0/16"): nh1, pfx("10.20.5.0/24"): nh1,
			pfx("169.254.7.0/24"): nh1, // link-local
			pfx("192.168.0.0/16"): nh1, // outside the allow list
			pfx("10.200.1.0/24"):  nh1, // inside aws_prefixes
			pfx("10.201.0.0/16"):  nh1, // offered by AWS
			pfx("10.201.9.0/24"):  nh1, // inside one offered by AWS
			pfx("10.10.0.0/16"):   nh1, // the static on-prem prefix: fine
		},
		"ibgp": {pfx("10.20.0.0/16"): nh2, pfx("10.21.0.0/16"): nh2},
	}
	aws := map[string]map[netip.Prefix]struct{}{"dx1": {pfx("10.201.0.0/16"): {}, pfx("10.10.0.0/16"): {}}}
	got := importLAN(v, received, aws)
	var prefixes []string
	for _, r := range got {
		prefixes = append(prefixes, r.Prefix.String()+" "+r.Peer)
	}
	want := []string{"10.10.0.0/16 core", "10.20.0.0/16 core", "10.20.5.0/24 core", "10.21.0.0/16 ibgp"}
	if !slices.Equal(prefixes, want) {
		t.Errorf("imported %v, want %v (10.10.0.0/16 from dx1 is denied, so it does not shadow)", prefixes, want)
	}
	if got[0].PeerAddress != nh1 || got[3].Nexthop != nh2 {
		t.Errorf("next hops %+v", got)
	}
}

func TestAggregateAndEffective(t *testing.T) {
	routes := []LANRoute{{Prefix: pfx("10.20.0.0/16")}, {Prefix: pfx("10.30.1.0/24")}, {Prefix: pfx("10.30.2.0/24")}, {Prefix: pfx("10.30.0.0/16")}}
	got := aggregate(routes, []netip.Prefix{pfx("10.30.0.0/16")})
	if !slices.Equal(got, []netip.Prefix{pfx("10.20.0.0/16"), pfx("10.30.0.0/16")}) {
		t.Errorf("aggregate %v", got)
	}
	cfg := lanTestConfig()
	if e := effective(cfg, got).Prefixes; !slices.Equal(e, []netip.Prefix{pfx("10.10.0.0/16"), pfx("10.20.0.0/16"), pfx("10.30.0.0/16")}) {
		t.Errorf("add: %v", e)
	}
	cfg.LAN.Replace = true
	if e := effective(cfg, got).Prefixes; !slices.Equal(e, got) {
		t.Errorf("replace: %v", e)
	}
	if e := effective(cfg, nil).Prefixes; len(e) != 0 {
		t.Errorf("replace with nothing imported: %v", e)
	}
	// The imported prefixes count against advertise_limit after the static ones.
	p := PeerConfig{AdvertiseLimit: 2}
	cfg.LAN.Replace = false
	if hb := heldBack(effective(cfg, got).Prefixes, p); !slices.Equal(hb, []netip.Prefix{pfx("10.30.0.0/16")}) {
		t.Errorf("held back %v", hb)
	}
}

// The LAN gets what the FIB routes, never an on-prem prefix (static,
// imported or announced by the LAN) or a link-local one; nothing at all
// without LAN peers.
func TestLANExportFilter(t *testing.T) {
	cfg := lanTestConfig()
	v := newViewAdv(cfg, []netip.Prefix{pfx("10.20.0.0/16")})
	fib := map[netip.Prefix]PathKind{
		pfx("10.200.0.0/16"): PathDX, pfx("10.201.0.0/16"): PathVPN,
		pfx("10.10.0.0/16"): PathDX, pfx("10.10.5.0/24"): PathDX, // static on-prem and inside it
		pfx("10.20.0.0/16"):    PathDX,   // advertised to AWS from the LAN
		pfx("10.22.0.0/16"):    PathDX,   // announced by the LAN, not imported
		pfx("169.254.99.0/24"): PathVPN,  // link-local
		pfx("10.202.0.0/16"):   PathNone, // no usable path
	}
	got := lanExport(v, fib, map[netip.Prefix]bool{pfx("10.22.0.0/16"): true})
	want := map[netip.Prefix]PathKind{pfx("10.200.0.0/16"): PathDX, pfx("10.201.0.0/16"): PathVPN}
	if len(got) != len(want) || got[pfx("10.200.0.0/16")] != PathDX || got[pfx("10.201.0.0/16")] != PathVPN {
		t.Errorf("export %v, want %v", got, want)
	}
	drained := cfg
	drained.LAN.Withdraw = true
	if got := lanExport(newView(drained), fib, nil); len(got) != 0 {
		t.Errorf("exported while withdrawn: %v", got)
	}
	if pl := diff(newView(cfg), newView(drained)); !pl.any {
		t.Error("Withdraw alone is not applied by Reconfigure")
	}
	cfg.Peers = cfg.Peers[:1]
	if got := lanExport(newView(cfg), fib, nil); len(got) != 0 {
		t.Errorf("exported without LAN peers: %v", got)
	}
}

// A MED change re-runs the export; a LAN peer's MED is not a session setting.
func TestDiffLANExportChange(t *testing.T) {
	a, b := lanTestConfig(), lanTestConfig()
	b.LAN.MED.VPN = 150
	pl := diff(newView(a), newView(b))
	if !pl.exportChanged || len(pl.down) != 0 {
		t.Errorf("MED change: export %v down %d", pl.exportChanged, len(pl.down))
	}
	b = lanTestConfig()
	b.Peers[1].LAN = false
	if pl := diff(newView(a), newView(b)); !slices.Equal(pl.Reestablished, []string{"core"}) {
		t.Errorf("a session that stops being a LAN one: %+v", pl.Changes)
	}
}
