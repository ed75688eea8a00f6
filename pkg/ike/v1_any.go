package ike

// newAnySession is a placeholder until the IKEv2-to-IKEv1 fallback lands:
// it speaks IKEv2.
func newAnySession(cfg Config, tr Transport, dp DataPath) (Runner, error) {
	return NewSession(cfg, tr, dp)
}
