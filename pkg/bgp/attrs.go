package bgp

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
	apb "google.golang.org/protobuf/types/known/anypb"
)

// AS path segment types (RFC 4271 4.3; RFC 5065's confederation
// segments count nothing) and the highest origin.
const (
	segSet           = 1
	segSequence      = 2
	originIncomplete = 2
)

// decodeAttrs fills ev's next hop and the attributes that rank the route
// (AS path length, origin, MED) from a path's attributes, straight from
// the protobuf messages (the hot path with 100,000 prefixes).
func decodeAttrs(attrs []*apb.Any, ev *RouteEvent) error {
	var (
		nh     api.NextHopAttribute
		asPath api.AsPathAttribute
		origin api.OriginAttribute
		med    api.MultiExitDiscAttribute
	)
	for _, a := range attrs {
		var err error
		switch {
		case a.MessageIs(&nh):
			if err = a.UnmarshalTo(&nh); err == nil {
				ev.Nexthop, _ = netip.ParseAddr(nh.NextHop)
			}
		case a.MessageIs(&asPath):
			if err = a.UnmarshalTo(&asPath); err == nil {
				ev.ASPathLen = asPathLen(&asPath)
			}
		case a.MessageIs(&origin):
			if err = a.UnmarshalTo(&origin); err == nil {
				if origin.Origin > originIncomplete {
					return fmt.Errorf("path for %s has origin %d", ev.Prefix, origin.Origin)
				}
				ev.Origin = uint8(origin.Origin)
			}
		case a.MessageIs(&med):
			if err = a.UnmarshalTo(&med); err == nil {
				ev.MED = med.Med
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// asPathLen is the AS path's length as BGP's decision process counts it:
// every AS of a sequence, 1 for a set, nothing for confederation segments.
func asPathLen(a *api.AsPathAttribute) int {
	n := 0
	for _, s := range a.GetSegments() {
		switch s.GetType() {
		case segSequence:
			n += len(s.GetNumbers())
		case segSet:
			n++
		}
	}
	return n
}
