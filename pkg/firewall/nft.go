package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Exprs translates r into nftables expressions for an inet table.
func (r Rule) Exprs() []expr.Any {
	var e []expr.Any
	cmp := func(op expr.CmpOp, data []byte) {
		e = append(e, &expr.Cmp{Op: op, Register: 1, Data: data})
	}
	meta := func(key expr.MetaKey) { e = append(e, &expr.Meta{Key: key, Register: 1}) }
	payload := func(base expr.PayloadBase, off, n uint32) {
		e = append(e, &expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n})
	}
	mask := func(m []byte) {
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(m)), Mask: m, Xor: make([]byte, len(m))})
	}
	if r.IIf != "" {
		meta(expr.MetaKeyIIFNAME)
		cmp(expr.CmpOpEq, ifname(r.IIf))
	}
	if r.OIf != "" {
		meta(expr.MetaKeyOIFNAME)
		cmp(expr.CmpOpEq, ifname(r.OIf))
	}
	if r.CtState != 0 {
		e = append(e, &expr.Ct{Key: expr.CtKeySTATE, Register: 1})
		mask(binaryutil.NativeEndian.PutUint32(r.CtState))
		cmp(expr.CmpOpNeq, []byte{0, 0, 0, 0})
	}
	if r.SAddr.IsValid() {
		meta(expr.MetaKeyNFPROTO)
		cmp(expr.CmpOpEq, []byte{unix.NFPROTO_IPV4})
		payload(expr.PayloadBaseNetworkHeader, 12, 4)
		a := r.SAddr.Masked().Addr().As4()
		if bits := r.SAddr.Bits(); bits < 32 {
			m := make([]byte, 4)
			binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-bits))
			mask(m)
		}
		cmp(expr.CmpOpEq, a[:])
	}
	if r.Proto != 0 {
		meta(expr.MetaKeyL4PROTO)
		cmp(expr.CmpOpEq, []byte{r.Proto})
	}
	if r.DPort != 0 {
		payload(expr.PayloadBaseTransportHeader, 2, 2)
		cmp(expr.CmpOpEq, binaryutil.BigEndian.PutUint16(r.DPort))
	}
	if r.ICMPType != nil {
		payload(expr.PayloadBaseTransportHeader, 0, 1)
		cmp(expr.CmpOpEq, []byte{*r.ICMPType})
	}
	if r.SYN {
		payload(expr.PayloadBaseTransportHeader, 13, 1)
		mask([]byte{0x06}) // syn|rst
		cmp(expr.CmpOpEq, []byte{0x02})
	}
	if r.Limit != 0 {
		e = append(e, &expr.Limit{Type: expr.LimitTypePkts, Rate: r.Limit, Over: r.LimitOver, Unit: expr.LimitTime(r.LimitPer / time.Second), Burst: ICMPBurst})
	}
	if r.Counter {
		e = append(e, &expr.Counter{})
	}
	switch r.Verdict {
	case Accept:
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case Drop:
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case ClampMSS:
		const kindMSS, off, n = 2, 2, 2 // TCP option 2: kind, length, 16-bit MSS
		e = append(e, &expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: kindMSS, Offset: off, Len: n, DestRegister: 1})
		cmp(expr.CmpOpGt, binaryutil.BigEndian.PutUint16(r.MSS))
		e = append(e,
			&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(r.MSS)},
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: kindMSS, Offset: off, Len: n, SourceRegister: 1})
	}
	return e
}

// ifname pads an interface name to IFNAMSIZ, as the kernel compares it.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Firewall is an installed table.
type Firewall struct {
	conn  *nftables.Conn
	table *nftables.Table
}

// Install replaces any table named s.Table (left by a crashed run) with the
// rules for s, atomically in one netlink batch. opts are passed to
// nftables.New (e.g. nftables.WithNetNSFd).
func Install(s Spec, opts ...nftables.ConnOption) (*Firewall, error) {
	if s.Table == "" {
		s.Table = DefaultTable
	}
	if s.WAN == "" {
		return nil, errors.New("firewall: no WAN interface")
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("firewall: netlink: %w", err)
	}
	t := &nftables.Table{Name: s.Table, Family: nftables.TableFamilyINet}
	c.AddTable(t) // so that the delete below cannot fail
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	chains := map[string]*nftables.Chain{
		ChainInput:   {Name: ChainInput, Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter},
		ChainForward: {Name: ChainForward, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
		ChainMSS:     {Name: ChainMSS, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityMangle},
	}
	for _, name := range []string{ChainInput, ChainForward, ChainMSS} {
		ch := chains[name]
		ch.Table, ch.Type, ch.Policy = t, nftables.ChainTypeFilter, &accept
		c.AddChain(ch)
	}
	for _, r := range Rules(s) {
		nr := &nftables.Rule{Table: t, Chain: chains[r.Chain], Exprs: r.Exprs()}
		if r.Comment != "" {
			nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
		}
		c.AddRule(nr)
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("firewall: install table inet %s: %w", s.Table, err)
	}
	return &Firewall{conn: c, table: t}, nil
}

// Table is the installed table's name.
func (f *Firewall) Table() string { return f.table.Name }

// Remove deletes the whole table.
func (f *Firewall) Remove() error {
	f.conn.DelTable(f.table)
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("firewall: delete table inet %s: %w", f.table.Name, err)
	}
	return nil
}

// RemoveTable deletes the inet table name if it exists (left by a run that
// did not stop cleanly) and reports whether it did. opts are passed to
// nftables.New.
func RemoveTable(name string, opts ...nftables.ConnOption) (bool, error) {
	c, err := nftables.New(opts...)
	if err != nil {
		return false, fmt.Errorf("firewall: netlink: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("firewall: list inet tables: %w", err)
	}
	for _, t := range tables {
		if t.Name != name {
			continue
		}
		c.DelTable(t)
		if err := c.Flush(); err != nil {
			return false, fmt.Errorf("firewall: delete table inet %s: %w", name, err)
		}
		return true, nil
	}
	return false, nil
}
