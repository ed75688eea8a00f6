package config

import (
	"testing"
	"time"
)

func TestDrainDefaults(t *testing.T) {
	c, err := Parse([]byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Drain
	if d.Prepend != 5 || time.Duration(d.QuietPeriod) != 10*time.Second || *d.QuietPPS != 10 || time.Duration(d.Timeout) != 5*time.Minute || d.StartDrained || d.LAN != DrainLANWorst {
		t.Errorf("defaults: %+v", d)
	}
	c, err = parseEdited(t, "asn: 65000", "asn: 65000\ndrain: {quiet_pps: 0, start_drained: true}")
	if err != nil {
		t.Fatal(err)
	}
	if *c.Drain.QuietPPS != 0 || !c.Drain.StartDrained || c.Validate() != nil {
		t.Errorf("explicit quiet_pps 0: %+v, %v", c.Drain, c.Validate())
	}
}

func TestDrainValidation(t *testing.T) {
	for _, tc := range []struct{ drain, want string }{
		{"{prepend: 31}", "drain.prepend: 31 is outside 1-30"},
		{"{prepend: -1}", "drain.prepend: -1 is outside 1-30"},
		{"{quiet_period: 500ms}", "drain.quiet_period: 500ms is outside 1s-10m"},
		{"{quiet_pps: -3}", "drain.quiet_pps: -3 is outside 0-1000000"},
		{"{timeout: 5s}", "drain.timeout: 5s is shorter than drain.quiet_period (10s): the drain could never be done"},
		{"{timeout: 25h}", "drain.timeout: 25h0m0s is longer than 24h"},
		{"{lan: med}", `drain.lan: "med" is not one of worst, withdraw`},
	} {
		c, err := parseEdited(t, "asn: 65000", "asn: 65000\ndrain: "+tc.drain)
		if err != nil {
			t.Fatal(err)
		}
		probs := c.Validate()
		if len(probs) != 1 || probs[0].String() != tc.want {
			t.Errorf("drain: %s: got %v, want %q", tc.drain, probs, tc.want)
		}
	}
}
