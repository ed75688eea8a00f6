// Package lifecycle is the one shape every long-running part of cgwd has,
// and the stack the daemon starts those parts on.
//
// A component is started with Start(ctx) (some take their collaborators as
// further arguments). Start returns once the component runs, or returns an
// error and leaves nothing behind. The component then runs until ctx ends
// and stops by itself: there is no Stop method. Done is closed once every
// goroutine the component started has returned and everything it opened
// (sockets, netdevs) is closed. To stop one: cancel its context, wait for
// Done. Component sends to its own event loop select on that context, so
// nothing blocks once the loop is gone.
//
// A Stack starts components in order, each with a context of its own that
// only the stack cancels, and unwinds them in reverse: what was started last
// is stopped first, and the next one only once the previous one's Done is
// closed. The daemon relies on that order to withdraw routes and close BGP
// sessions before the tunnels they run over go.
package lifecycle

import (
	"context"
	"log/slog"
)

// Component is a long-running part of cgwd (see the package doc).
type Component interface {
	Start(ctx context.Context) error
	Done() <-chan struct{}
}

// Func makes a Component of a start function and a Done method, for
// components whose Start takes more than a context.
func Func(start func(context.Context) error, done func() <-chan struct{}) Component {
	return funcComponent{start, done}
}

type funcComponent struct {
	start func(context.Context) error
	done  func() <-chan struct{}
}

func (f funcComponent) Start(ctx context.Context) error { return f.start(ctx) }
func (f funcComponent) Done() <-chan struct{}           { return f.done() }

// Go makes a Component of a blocking function that serves until its
// context ends (an HTTP server's Serve, the FIB's Run): Start runs it in a
// goroutine, and Done is closed when it has returned. An error it returns
// is passed to onErr, if set.
func Go(run func(context.Context) error, onErr func(error)) Component {
	return &goComponent{run: run, onErr: onErr, done: make(chan struct{})}
}

type goComponent struct {
	run   func(context.Context) error
	onErr func(error)
	done  chan struct{}
}

func (g *goComponent) Start(ctx context.Context) error {
	go func() {
		defer close(g.done)
		if err := g.run(ctx); err != nil && g.onErr != nil {
			g.onErr(err)
		}
	}()
	return nil
}

func (g *goComponent) Done() <-chan struct{} { return g.done }

// Stack is an ordered set of started components and undo actions. The zero
// value is empty and ready to use; it is not safe for concurrent use.
type Stack struct {
	// Log, if set, gets a debug line for each step of Unwind.
	Log   *slog.Logger
	items []item
}

type item struct {
	name string
	undo func()
}

// Start starts c with a context that only Unwind cancels and pushes its
// stop (cancel, then wait for Done) on the stack. If Start fails, nothing
// is pushed.
func (s *Stack) Start(name string, c Component) error {
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Start(ctx); err != nil {
		cancel()
		return err
	}
	s.Defer(name, func() {
		cancel()
		<-c.Done()
	})
	return nil
}

// Defer pushes an undo action, run by Unwind in its turn.
func (s *Stack) Defer(name string, undo func()) {
	s.items = append(s.items, item{name, undo})
}

// Unwind runs the undo actions, last pushed first, each to completion, and
// empties the stack.
func (s *Stack) Unwind() {
	for i := len(s.items) - 1; i >= 0; i-- {
		if s.Log != nil {
			s.Log.Debug("stopping", "part", s.items[i].name)
		}
		s.items[i].undo()
	}
	s.items = nil
}
