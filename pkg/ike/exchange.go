package ike

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/cgwd/cgwd/pkg/ike/wire"
)

// Requests, responses and the receive path every exchange shares: message
// IDs, retransmission, and the checks a message passes before its
// exchange sees it.

type pending struct {
	id       uint32
	data     [][]byte // the datagrams: one, or RFC 7383 fragments
	natt     bool
	next     time.Time
	wait     time.Duration
	deadline time.Time
	what     string
	onResp   func(*wire.Message)
	onFail   func()
}

func (s *Session) reqHeader(sa *ikeSA, exch uint8) wire.Header {
	h := wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: exch, MsgID: sa.nextID}
	if sa.initiator {
		h.Flags |= wire.FlagInitiator
	}
	return h
}

func (s *Session) marshal(sa *ikeSA, m *wire.Message) ([][]byte, error) {
	if !m.Encrypted {
		b, err := marshal(m, nil)
		return [][]byte{b}, err
	}
	sk := sa.keys.encR
	if sa.initiator {
		sk = sa.keys.encI
	}
	return s.fragments(sa, m, sk)
}

// request sends a request on sa and retransmits it until a response or timeout.
func (s *Session) request(sa *ikeSA, m *wire.Message, what string, onResp func(*wire.Message), onFail func()) {
	b, err := s.marshal(sa, m)
	if err != nil {
		s.fail("cannot encode request", "exchange", what, "err", err)
		return
	}
	now := s.now()
	sa.req = &pending{id: m.MsgID, data: b, natt: sa.natt, wait: time.Second, next: now.Add(time.Second),
		deadline: now.Add(s.cfg.DPDTimeout), what: what, onResp: onResp, onFail: onFail}
	if err := s.sendAll(b, sa.natt); err != nil {
		s.log.Debug("send failed", "exchange", what, "err", err)
	}
}

func (s *Session) respond(sa *ikeSA, req wire.Header, ps []wire.Payload, encrypted, natt bool) {
	h := wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: req.Exchange, MsgID: req.MsgID, Flags: wire.FlagResponse}
	if sa.initiator {
		h.Flags |= wire.FlagInitiator
	}
	b, err := s.marshal(sa, &wire.Message{Header: h, Encrypted: encrypted, Payloads: ps})
	if err != nil {
		s.log.Error("cannot encode response", "err", err)
		return
	}
	sa.lastResp, sa.lastNatt = b, natt
	sa.peerID = req.MsgID + 1
	s.sendAll(b, natt)
}

// handle routes a received message to its SA and exchange.
func (s *Session) handle(p packet) {
	h, err := wire.ParseHeader(p.b)
	if err == wire.ErrIKEv1 {
		s.takeIKEv1(p)
		return
	}
	if err != nil {
		s.drop(DropMalformed, h, "err", err)
		return
	}
	if h.Exchange == wire.IKESAInit && !h.IsResponse() {
		s.handleInitRequest(h, p)
		return
	}
	sa := s.sas.find(h)
	if sa == nil {
		s.drop(DropUnknownSPI, h, "spi_i", fmt.Sprintf("%016x", h.SPIi), "spi_r", fmt.Sprintf("%016x", h.SPIr))
		return
	}
	if h.IsResponse() && h.Exchange == wire.IKESAInit {
		s.handleInitResponse(sa, h, p)
		return
	}
	// Every exchange after IKE_SA_INIT travels in an SK payload, and SK is
	// the only payload outside it (RFC 7296 3.14): anything else is not
	// the peer's and must not touch the SA, however plausible it looks.
	first := wire.PayloadType(p.b[16])
	if (first != wire.PayloadSK && first != wire.PayloadSKF) || sa.keys == nil {
		s.drop(DropUnencrypted, h)
		return
	}
	sk := sa.keys.encR
	if h.Flags&wire.FlagInitiator != 0 {
		sk = sa.keys.encI
	}
	if first == wire.PayloadSKF {
		s.handleFragment(sa, h, p, sk)
		return
	}
	if h.IsResponse() {
		s.handleResponse(sa, h, p, sk)
		return
	}
	s.handleRequest(sa, h, p, sk)
}

// handleResponse hands the answer to our outstanding request on sa to
// that request's callback.
func (s *Session) handleResponse(sa *ikeSA, h wire.Header, p packet, sk *skCipher) {
	if sa.req == nil || h.MsgID != sa.req.id {
		s.drop(DropWindow, h)
		return
	}
	m, err := s.open(h, p.b, sk)
	if err != nil {
		return
	}
	s.takeResponse(sa, m)
}

// takeResponse hands m, the verified answer to our outstanding request on
// sa, to that request's callback.
func (s *Session) takeResponse(sa *ikeSA, m *wire.Message) {
	sa.lastRecv = s.now()
	req := sa.req
	sa.req = nil
	sa.nextID++
	req.onResp(m)
}

// handleRequest answers a retransmitted request again and hands a new one
// to its exchange.
func (s *Session) handleRequest(sa *ikeSA, h wire.Header, p packet, sk *skCipher) {
	// Hashed only once its message ID is one we answer, so an
	// out-of-window flood costs no hashing.
	retransmit := h.MsgID+1 == sa.peerID && sa.lastResp != nil
	if !retransmit && h.MsgID != sa.peerID {
		s.drop(DropWindow, h, "want", sa.peerID)
		return
	}
	reqHash := sha256.Sum256(p.b)
	if retransmit {
		// A retransmission is the same datagram again (RFC 7296 2.1);
		// anything else with that message ID gets no answer.
		if reqHash != sa.lastReqHash {
			s.drop(DropRetransmitMismatch, h)
			return
		}
		s.sendAll(sa.lastResp, sa.lastNatt)
		return
	}
	m, err := s.open(h, p.b, sk)
	if err != nil {
		s.answerBadRequest(sa, h, p.natt, reqHash, err)
		return
	}
	s.takeRequest(sa, h, m, p.natt, reqHash)
}

// takeRequest hands m, the peer's verified next request on sa (reqHash
// stands for it in retransmission checks), to its exchange.
func (s *Session) takeRequest(sa *ikeSA, h wire.Header, m *wire.Message, natt bool, reqHash [sha256.Size]byte) {
	sa.lastRecv = s.now()
	sa.lastReqHash = reqHash
	if natt {
		sa.natt = true
	}
	switch h.Exchange {
	case wire.IKEAuth:
		if sa.state == stRespInit && s.sas.isHalf(sa) {
			s.handleAuthRequest(sa, h, m, natt)
		}
	case wire.Informational:
		s.handleInformational(sa, h, m, natt)
	case wire.CreateChildSA:
		s.handleCreateChild(sa, h, m, natt)
	}
}

// answerBadRequest answers a request that did not open with err. Only
// with a verified ICV does a bad request get an answer (RFC 7296 3.10.1):
// the critical payload or the bad syntax was inside SK, so it is the
// peer's.
func (s *Session) answerBadRequest(sa *ikeSA, h wire.Header, natt bool, reqHash [sha256.Size]byte, err error) {
	var ec wire.CriticalError
	switch {
	case errors.As(err, &ec):
		sa.lastReqHash = reqHash
		s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NUnsupportedCriticalPayload, Data: []byte{byte(ec)}}}, true, natt)
	case errors.Is(err, errInvalidSyntax):
		sa.lastReqHash = reqHash
		s.respond(sa, h, []wire.Payload{&wire.Notify{NotifyType: wire.NInvalidSyntax}}, true, natt)
	}
}

// open verifies and decrypts a message after IKE_SA_INIT. It counts and
// logs a failure; an unsupported critical payload is returned as
// wire.CriticalError once the ICV has been verified.
func (s *Session) open(h wire.Header, b []byte, sk *skCipher) (*wire.Message, error) {
	m, err := parse(b, sk)
	var ec wire.CriticalError
	switch {
	case err == nil && !m.Encrypted:
		s.drop(DropUnencrypted, h)
		return nil, errors.New("not encrypted")
	case err == nil:
		return m, nil
	case errors.Is(err, errICV):
		s.drop(DropBadICV, h)
	case errors.As(err, &ec):
	default:
		s.drop(DropMalformed, h, "err", err)
	}
	return nil, err
}
