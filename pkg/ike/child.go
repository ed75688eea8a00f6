package ike

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cgwd/cgwd/pkg/esp"
	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// Child SAs in the data path: building one from a negotiation, installing
// it, and retiring it make before break.

// childFromResponse checks the responder's choice for a Child SA we proposed.
func (s *Session) childFromResponse(m *wire.Message, inSPI uint32, dh dhKey, ni, nr []byte, withDH bool) (*child, error) {
	spa, _ := m.Get(wire.PayloadSA).(*wire.SA)
	tsi, _ := m.Get(wire.PayloadTSi).(*wire.TS)
	tsr, _ := m.Get(wire.PayloadTSr).(*wire.TS)
	if spa == nil || tsi == nil || tsr == nil || len(spa.Proposals) != 1 || len(spa.Proposals[0].SPI) != 4 {
		return nil, errors.New("response lacks SA or traffic selectors")
	}
	chosen, ok := selectProposal(s.cfg.ESPProposals, spa.Proposals, withDH)
	if !ok {
		return nil, fmt.Errorf("peer chose an ESP proposal we did not offer: %s (ours: %s)", spa.Proposals[0], proposalsString(s.cfg.ESPProposals))
	}
	st := suiteOf(chosen)
	if err := st.check(false); err != nil {
		return nil, err
	}
	var gir []byte
	if withDH && st.dh != 0 {
		s.warnWeak(st.dh, "ESP PFS")
		ke, _ := m.Get(wire.PayloadKE).(*wire.KE)
		if ke == nil || dh == nil || ke.Group != st.dh {
			return nil, errors.New("response lacks the KE payload for PFS")
		}
		var err error
		if gir, err = dh.shared(ke.Data); err != nil {
			return nil, err
		}
	}
	// Narrowing by the responder is accepted; the result is enforced on decapsulation.
	local, remote := toESP(tsi.Selectors), toESP(tsr.Selectors)
	if len(local) == 0 || len(remote) == 0 {
		return nil, errors.New("responder narrowed the traffic selectors to nothing IPv4")
	}
	iToR, rToI := childKeys(s.sas.ike.keys, st, gir, ni, nr)
	return &child{suite: st, sa: &ChildSA{
		InSPI: inSPI, OutSPI: binary.BigEndian.Uint32(spa.Proposals[0].SPI), Suite: st.espSuite(),
		OutKey: iToR, InKey: rToI, LocalTS: local, RemoteTS: remote,
	}}, nil
}

func toESP(ss []wire.Selector) []esp.Selector {
	var out []esp.Selector
	for _, s := range ss {
		out = append(out, esp.Selector{First: s.Start, Last: s.End})
	}
	return out
}

func fromESP(ss []esp.Selector) []wire.Selector {
	var out []wire.Selector
	for _, s := range ss {
		out = append(out, wire.Selector{EndPort: 65535, Start: s.First, End: s.Last})
	}
	return out
}

// installChild puts c into the data path and makes it the current Child
// SA. With switchOut the outbound traffic moves to it at once.
func (s *Session) installChild(c *child, switchOut bool) {
	if err := s.addChild(c); err != nil {
		s.fail("cannot install inbound ESP SA", "err", err)
		return
	}
	if switchOut {
		if err := s.useOut(c); err != nil {
			s.fail("cannot install outbound ESP SA", "err", err)
			return
		}
	}
	s.adopt(c)
}

// addChild starts c's lifetime and accepts ESP on its inbound SA.
func (s *Session) addChild(c *child) error {
	now := s.now()
	c.established = now
	c.rekeyAt = s.rekeyTime(now, s.cfg.ChildLifetime)
	c.expireAt = now.Add(s.cfg.ChildLifetime)
	return s.dp.AddInbound(c.sa)
}

// useOut sends from now on with c's outbound SA.
func (s *Session) useOut(c *child) error {
	if err := s.dp.UseOutbound(c.sa); err != nil {
		return err
	}
	s.sas.out = c
	return nil
}

// adopt makes the installed c the current Child SA. The one it replaces
// is retired: it keeps its inbound SA, and the outbound one while traffic
// still uses it, until it is deleted.
func (s *Session) adopt(c *child) {
	if s.sas.child == c {
		return
	}
	if old := s.sas.promote(c); old != nil {
		s.retire(old, 30*time.Second) // until the old SA's delete completes
		s.setStatus(func(st *Status) { st.ChildRekeys++ })
	}
	if s.sas.out == nil {
		if err := s.useOut(c); err != nil {
			s.fail("cannot install outbound ESP SA", "err", err)
		}
	}
	s.log.Info("Child SA established", "suite", c.sa.Suite.String(),
		"spi_in", fmt.Sprintf("%08x", c.sa.InSPI), "spi_out", fmt.Sprintf("%08x", c.sa.OutSPI),
		"local_ts", fmtTS(c.sa.LocalTS), "remote_ts", fmtTS(c.sa.RemoteTS))
	s.setStatus(func(st *Status) {
		st.ChildInSPI, st.ChildOutSPI = fmt.Sprintf("%08x", c.sa.InSPI), fmt.Sprintf("%08x", c.sa.OutSPI)
		st.ChildSuite, st.ChildSince, st.ChildRekeyDue = c.suite.String(), c.established, c.rekeyAt
	})
}

// retire keeps c installed until it is deleted, at most for linger.
func (s *Session) retire(c *child, linger time.Duration) { s.sas.retire(c, s.now().Add(linger)) }

// dropChild removes c from the data path. When outbound traffic still
// used c it moves to the current Child SA first, so that there is no
// moment without an outbound SA (make before break).
func (s *Session) dropChild(c *child) {
	if s.sas.remove(c) {
		if s.sas.child != nil {
			if err := s.useOut(s.sas.child); err != nil {
				s.fail("cannot install outbound ESP SA", "err", err)
			}
		}
	}
	s.dp.Remove(c.sa.InSPI)
}

// dropChildren removes every Child SA from the data path.
func (s *Session) dropChildren() {
	for _, c := range s.sas.clearChildren() {
		s.dp.Remove(c.sa.InSPI)
	}
}

func fmtTS(ss []esp.Selector) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s-%s", s.First, s.Last)
	}
	return b.String()
}
