package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With the real dialer: a server that accepts TCP but never speaks SSH (a frozen host)
// is reported unreachable at --connect-timeout, and a closed port at once.
func TestPingRealTransportHangAndRefused(t *testing.T) {
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		var held []net.Conn // kept open and silent until the listener closes
		for {
			c, err := hang.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "ssh_config")
	text := fmt.Sprintf("Host hang\n  HostName 127.0.0.1\n  Port %d\nHost refused\n  HostName 127.0.0.1\n  Port %d\nHost *\n  UserKnownHostsFile %s\n",
		hang.Addr().(*net.TCPAddr).Port, closedPort, filepath.Join(dir, "known_hosts"))
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	h := newHarness(nil)
	e := h.env()
	e.newConnector = newPoolConnector
	const timeout = 700 * time.Millisecond
	start := time.Now()
	code := run([]string{"drover", "ping", "--json", "-i", "hang,refused", "--ssh-config", cfg, "--connect-timeout", timeout.String()}, e, h.sigs, func() {})
	elapsed := time.Since(start)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, h.stdout.String(), h.stderrString())
	}
	doc := parsePingDoc(t, h.stdout.String())
	for _, r := range doc.Hosts {
		if r.Status != statusUnreachable {
			t.Errorf("%s: %q (%s), want unreachable", r.Name, r.Status, r.Error)
		}
	}
	if !strings.Contains(doc.Hosts[1].Error, "refused") {
		t.Errorf("refused host error %q", doc.Hosts[1].Error)
	}
	if elapsed < timeout || elapsed > timeout+2*time.Second {
		t.Errorf("took %s with --connect-timeout %s", elapsed, timeout)
	}
}
