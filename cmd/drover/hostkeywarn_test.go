package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drover-sh/drover/inventory"
	"github.com/drover-sh/drover/transport"
)

// StrictHostKeyChecking no must never go unnoticed: every run that reaches a host
// with it prints one warning naming the hosts and where the setting came from;
// yes (the default) and accept-new print none.
func TestHostKeyPolicyWarning(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		wantWarn string // "" = no warning
	}{
		{"default is strict", "Host *\n  User root\n", ""},
		{"yes", "Host *\n  StrictHostKeyChecking yes\n", ""},
		{"accept-new", "Host *\n  StrictHostKeyChecking accept-new\n", ""},
		{"no for all", "Host *\n  StrictHostKeyChecking no\n", "for h1, h2, h3: unknown host keys are accepted"},
		{"no for one", "Host h2\n  StrictHostKeyChecking no\n", "for h2: unknown host keys"},
		{"off spelled otherwise", "Host h1 h3\n  StrictHostKeyChecking off\n", "for h1, h3: unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "ssh_config")
			if err := os.WriteFile(cfg, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range [][]string{{"ping"}, {"exec", "--", "true"}} {
				h := newHarness(nil)
				args := append(append([]string{}, cmd[0]), "-i", "h1,h2,h3", "--ssh-config", cfg)
				args = append(args, cmd[1:]...)
				if code := h.run(t, args...); code != exitOK {
					t.Fatalf("%v: exit %d: %s", cmd, code, h.stderrString())
				}
				got := h.stderrString()
				n := strings.Count(got, "StrictHostKeyChecking no")
				switch {
				case tc.wantWarn == "" && n != 0:
					t.Errorf("%v: unexpected warning:\n%s", cmd, got)
				case tc.wantWarn != "" && n != 1:
					t.Errorf("%v: %d warnings, want exactly one:\n%s", cmd, n, got)
				case tc.wantWarn != "" && (!strings.Contains(got, tc.wantWarn) || !strings.Contains(got, cfg)):
					t.Errorf("%v: warning does not name the hosts (%q) and %s:\n%s", cmd, tc.wantWarn, cfg, got)
				}
			}
		})
	}
}

func TestHostKeyWarningListsAtMostFiveHosts(t *testing.T) {
	var ts []target
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		ts = append(ts, target{host: hostNamed(n), ep: endpointWith("no")})
	}
	var b strings.Builder
	warnInsecureHostKeys(&b, ts, "")
	if got := b.String(); !strings.Contains(got, "a, b, c, d, e and 2 more") || !strings.Contains(got, "from ssh_config") ||
		strings.Count(got, "\n") != 1 {
		t.Errorf("warning %q", got)
	}
}

func hostNamed(n string) *inventory.Host { return &inventory.Host{Name: n} }

func endpointWith(policy string) *transport.Endpoint {
	return &transport.Endpoint{StrictHostKeyChecking: policy}
}
