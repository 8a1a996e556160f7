package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

type pingHost struct {
	Name    string  `json:"name"`
	Address string  `json:"address"`
	Status  string  `json:"status"`
	Error   string  `json:"error"`
	RTTms   float64 `json:"rtt_ms"`
}

type pingDoc struct {
	Hosts []pingHost `json:"hosts"`
}

func parsePing(t *testing.T, r result) map[string]pingHost {
	t.Helper()
	var doc pingDoc
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("ping --json printed something that is not JSON (%v):\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	m := make(map[string]pingHost, len(doc.Hosts))
	for _, h := range doc.Hosts {
		if _, dup := m[h.Name]; dup {
			t.Fatalf("host %s reported twice", h.Name)
		}
		m[h.Name] = h
	}
	return m
}

func TestPingAllLabHosts(t *testing.T) {
	r := drover(t, append([]string{"ping", "all", "--json"}, labArgs()...)...)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	hosts := parsePing(t, r)
	if len(hosts) != labHosts {
		t.Fatalf("got %d hosts, want %d", len(hosts), labHosts)
	}
	for _, h := range shared.lab.Hosts {
		got, ok := hosts[h.Name]
		if !ok || got.Status != "ok" || got.RTTms <= 0 {
			t.Errorf("%s: %+v, want status ok with a round trip", h.Name, got)
		}
	}

	// The human form names every host and ends with the summary.
	r = drover(t, append([]string{"ping"}, labArgs()...)...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, h := range shared.lab.Hosts {
		if !strings.Contains(r.stdout, h.Name) {
			t.Errorf("plain output lacks %s:\n%s", h.Name, r.stdout)
		}
	}
	if !strings.Contains(r.stdout+r.stderr, "min/avg/max") {
		t.Errorf("no min/avg/max summary:\n%s", r.stdout)
	}
}

func TestPingFrozenHostIsUnreachableAfterConnectTimeout(t *testing.T) {
	const frozen = "h7"
	if err := shared.lab.Freeze(frozen); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shared.lab.Thaw(frozen); err != nil {
			t.Errorf("thaw %s: %v", frozen, err)
		}
	})
	timeout := 2 * time.Second
	r := drover(t, append([]string{"ping", "--json", "--connect-timeout", timeout.String()}, labArgs()...)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	hosts := parsePing(t, r)
	for _, h := range shared.lab.Hosts {
		want := "ok"
		if h.Name == frozen {
			want = "unreachable"
		}
		if hosts[h.Name].Status != want {
			t.Errorf("%s: status %q, want %q (%s)", h.Name, hosts[h.Name].Status, want, hosts[h.Name].Error)
		}
	}
	// The frozen host must be given up on at the connect timeout, not later.
	if r.elapsed < timeout || r.elapsed > timeout+3*time.Second {
		t.Errorf("ping took %s with --connect-timeout %s; want just over the timeout", r.elapsed, timeout)
	}
}

func TestPingRefusesChangedHostKeyNamingFileAndLine(t *testing.T) {
	const victim = "h3"
	data, err := os.ReadFile(shared.lab.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	// Every line of the victim is replaced by one key the host does not have.
	var lines []string
	badLine := 0
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		hostsField := strings.SplitN(line, " ", 2)[0]
		if !containsField(hostsField, victim) {
			lines = append(lines, line)
			continue
		}
		if badLine == 0 {
			lines = append(lines, hostsField+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))))
			badLine = len(lines)
		}
	}
	if badLine == 0 {
		t.Fatalf("no known_hosts line for %s in %s", victim, shared.lab.KnownHosts)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := drover(t, append([]string{"ping", "--json", "--known-hosts", kh}, labArgs()...)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	hosts := parsePing(t, r)
	for _, h := range shared.lab.Hosts {
		got := hosts[h.Name]
		if h.Name != victim {
			if got.Status != "ok" {
				t.Errorf("%s: %q (%s), want ok", h.Name, got.Status, got.Error)
			}
			continue
		}
		if got.Status == "ok" || got.Status == "unreachable" {
			t.Errorf("%s: status %q, want a host-key failure", h.Name, got.Status)
		}
		if where := fmt.Sprintf("%s:%d", kh, badLine); !strings.Contains(got.Error, where) {
			t.Errorf("%s: error %q does not name %s", h.Name, got.Error, where)
		}
	}
}

func containsField(list, name string) bool {
	for _, f := range strings.Split(list, ",") {
		if f == name {
			return true
		}
	}
	return false
}
