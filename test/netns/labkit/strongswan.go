package labkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// Charon is a handle on the strongSwan (charon) of the IPsec lab that is
// AWS's endpoint of tunnel 1 or 2, in namespace lab-aws-t1 or lab-aws-t2.
type Charon int

// NS is the namespace charon runs in.
func (c Charon) NS() string { return fmt.Sprintf("lab-aws-t%d", int(c)) }

// LogFile is charon's log.
func (c Charon) LogFile() string { return fmt.Sprintf("%s/aws-t%d/run/charon.log", State, int(c)) }

// Swanctl runs swanctl against charon and fails the test when it fails.
func (c Charon) Swanctl(t testing.TB, args ...string) string {
	t.Helper()
	return IPsecSh(t, nil, append([]string{"swanctl", strconv.Itoa(int(c))}, args...)...)
}

// TrySwanctl runs swanctl against charon and returns its output, whatever its exit.
func (c Charon) TrySwanctl(args ...string) string {
	out, _ := c.SwanctlCmd(context.Background(), args...).CombinedOutput()
	return string(out)
}

// SwanctlCmd is swanctl against charon as a command to start.
func (c Charon) SwanctlCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, IPsecShPath, append([]string{"swanctl", strconv.Itoa(int(c))}, args...)...)
	cmd.Env = append(os.Environ(), "LAB_STATE="+State, "TUNNEL=ipsec")
	return cmd
}

// SAs lists the SAs as charon sees them.
func (c Charon) SAs(t testing.TB) string { t.Helper(); return c.Swanctl(t, "--list-sas") }

// Configure rewrites and reloads charon's swanctl.conf from env (ipsec.sh's
// AWS_* variables; none: AWS's defaults).
func (c Charon) Configure(t testing.TB, env ...string) {
	t.Helper()
	IPsecSh(t, env, "configure", strconv.Itoa(int(c)))
}

// Stop stops charon (by PID).
func (c Charon) Stop(t testing.TB) { t.Helper(); IPsecSh(t, nil, "stop-charon", strconv.Itoa(int(c))) }

// Start starts charon and loads its config.
func (c Charon) Start(t testing.TB) {
	t.Helper()
	IPsecSh(t, nil, "start-charon", strconv.Itoa(int(c)))
}

// IPsecSh runs an ipsec.sh subcommand with extra environment.
func IPsecSh(t testing.TB, env []string, args ...string) string {
	t.Helper()
	return script(t, IPsecShPath, append([]string{"TUNNEL=ipsec"}, env...), args...)
}

// IPsecConfig rewrites cgwd.yaml for the IPsec lab with extra keys for
// every tunnel's ipsec: block (";"-separated, ipsec.sh's CGWD_IPSEC_OPTS).
func IPsecConfig(t testing.TB, opts string) {
	t.Helper()
	IPsecSh(t, []string{"CGWD_IPSEC_OPTS=" + opts}, "cgwd-yaml")
}

// RestartIPsec stops cgwd, rewrites its config with IPsecConfig(opts) and starts it again.
func RestartIPsec(t testing.TB, opts string) {
	t.Helper()
	Sh(t, "stop-cgwd")
	IPsecConfig(t, opts)
	StartCgwd(t)
}

// RestartIPsecEach is RestartIPsec with keys for cgw-t1's and cgw-t2's
// ipsec: blocks each (";"-separated, ipsec.sh's CGWD_IPSEC_OPTS_T1 and _T2).
func RestartIPsecEach(t testing.TB, t1, t2 string) {
	t.Helper()
	Sh(t, "stop-cgwd")
	IPsecSh(t, []string{"CGWD_IPSEC_OPTS_T1=" + t1, "CGWD_IPSEC_OPTS_T2=" + t2}, "cgwd-yaml")
	StartCgwd(t)
}
