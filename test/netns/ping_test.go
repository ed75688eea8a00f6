package netns

import (
	"bytes"
	"os/exec"
	"testing"
)

// pingRun is a ping running in the background in a lab namespace.
type pingRun struct {
	out  bytes.Buffer // read it only once done is closed
	done chan struct{}
	err  error
}

// startPingIn runs ping with args in namespace ns; the test's end kills it
// if it is still running.
func startPingIn(t *testing.T, ns string, args ...string) *pingRun {
	t.Helper()
	p := &pingRun{done: make(chan struct{})}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "ping"}, args...)...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the ping to end and returns its output and exit error.
func (p *pingRun) wait() (string, error) {
	<-p.done
	return p.out.String(), p.err
}
