package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The binary as the namespace tests use it: built with go build, receiver
// and sender as separate processes, JSON reports. Over loopback.
func TestCLILoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "udpgap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	recv := exec.CommandContext(ctx, bin, "recv", "-listen", "127.0.0.1:0", "-duration", "30s", "-json")
	var recvOut bytes.Buffer
	recv.Stdout = &recvOut
	stderr, err := recv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { // on an early failure; after a normal exit both are no-ops
		_ = recv.Process.Kill()
		_ = recv.Wait()
	}()
	// "udpgap: listening on 127.0.0.1:PORT" says where to send.
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		t.Fatalf("receiver did not say where it listens: %v", err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "udpgap: listening on "))

	out, err := exec.CommandContext(ctx, bin, "send", "-to", addr, "-pps", "1000", "-duration", "200ms", "-json").Output()
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	var sent SendReport
	if err := json.Unmarshal(out, &sent); err != nil {
		t.Fatalf("send output %q: %v", out, err)
	}
	if sent.Planned != 200 || sent.Sent+sent.Errors != 200 {
		t.Fatalf("sender: %+v, want 200 planned and accounted for", sent)
	}
	if err := recv.Wait(); err != nil { // exits on its own after the last packet
		t.Fatalf("recv: %v", err)
	}
	var got Report
	if err := json.Unmarshal(recvOut.Bytes(), &got); err != nil {
		t.Fatalf("recv output %q: %v", recvOut.String(), err)
	}
	if got.Run != sent.Run || got.Planned != 200 || got.Received+got.Lost+got.TailLost != 200 || got.Received < 190 {
		t.Errorf("receiver: %+v, want run %d with (nearly) all 200 packets", got, sent.Run)
	}
}
