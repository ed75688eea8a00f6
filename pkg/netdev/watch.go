package netdev

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkWatch reports links going down or losing carrier, and coming back,
// from the kernel's link notifications (pkg/failover's LinkWatcher).
type LinkWatch struct {
	// OnError, if set, gets errors of the notification socket.
	OnError func(error)
}

// Watch calls onChange with every link's state now and on every change
// until ctx ends: up is an administratively up link with carrier; a deleted
// link is down. The returned channel is closed once it has stopped.
func (w LinkWatch) Watch(ctx context.Context, onChange func(link string, up bool)) (<-chan struct{}, error) {
	ch := make(chan netlink.LinkUpdate, 64)
	stop := make(chan struct{})
	onErr := func(err error) {
		if w.OnError != nil && ctx.Err() == nil { // not the socket closed at the end
			w.OnError(err)
		}
	}
	err := netlink.LinkSubscribeWithOptions(ch, stop, netlink.LinkSubscribeOptions{
		ListExisting:  true,
		ErrorCallback: onErr,
	})
	if err != nil {
		return nil, fmt.Errorf("netdev: subscribe to link changes: %w", err)
	}
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		close(stop)
	}()
	go func() {
		defer close(done)
		for u := range ch { // closed once stop is and the socket is gone
			if ctx.Err() != nil {
				continue // drain until closed
			}
			a := u.Attrs()
			up := u.Header.Type != unix.RTM_DELLINK && a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
			onChange(a.Name, up)
		}
	}()
	return done, nil
}
