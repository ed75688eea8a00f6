package ike

import "context"

// VersionAny in Config.Version: IKEv2 first, IKEv1 when the peer speaks
// only that (any.go).
const VersionAny = -1

// Runner is an IKE session of either version, as a tunnel drives it.
type Runner interface {
	// Run drives the session until ctx ends, then deletes the SAs.
	Run(ctx context.Context)
	// Deliver hands the session a received IKE message; it never blocks.
	Deliver(b []byte, natt bool)
	// Status is a snapshot of the session; it holds no keys.
	Status() Status
}

// NewRunner returns the session cfg.Version asks for: IKEv2 (2 or 0),
// IKEv1 (1), or both (VersionAny).
func NewRunner(cfg Config, tr Transport, dp DataPath) (Runner, error) {
	switch cfg.Version {
	case 1:
		return NewV1Session(cfg, tr, dp)
	case VersionAny:
		return newAnySession(cfg, tr, dp)
	}
	return NewSession(cfg, tr, dp)
}
