package bfd

import "testing"

// cgwd's BFD runs in the same process as its BGP speaker, so it shares
// fate with the control plane: every packet has the Control Plane
// Independent (C) bit clear (RFC 5880 4.1). A peer doing graceful restart
// may then take a BFD failure during a restart of cgwd for the restart it
// is (RFC 5882 4.3) rather than a forwarding failure.
func TestControlPlaneIndependentBitClear(t *testing.T) {
	m, now := upMachine(t)
	outs := []Output{m.Advance(now.Add(fast.DesiredMinTx * 2)), recv(t, m, now, &Packet{State: StateUp, DetectMult: 3, MyDiscr: remDisc, YourDiscr: ourDisc, Poll: true, DesiredMinTx: fast.DesiredMinTx, RequiredMinRx: fast.RequiredMinRx}), m.SetAdminDown(now, true)}
	sent := 0
	for _, out := range outs {
		if !out.Send {
			continue
		}
		sent++
		if out.Packet.ControlPlaneIndependent {
			t.Errorf("packet %v has the C bit set", out.Packet)
		}
	}
	if sent == 0 {
		t.Fatal("no packet sent")
	}
}
