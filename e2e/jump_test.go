package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jumpConfig writes an ssh_config that reaches h4 through h1 and h6 through h1 then h2,
// with every host's known_hosts taken from kh, then the lab's own settings.
func jumpConfig(t *testing.T, kh string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	text := fmt.Sprintf(`Host h4
  ProxyJump h1
Host h6
  ProxyJump h1,h2
Host *
  UserKnownHostsFile %s
Include %s
`, kh, shared.lab.SSHConfig)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPingThroughJumpHosts(t *testing.T) {
	cfg := jumpConfig(t, shared.lab.KnownHosts)
	r := drover(t, "ping", "h4,h6,h2", "-i", "h2,h4,h6", "--ssh-config", cfg, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for name, h := range parsePing(t, r) {
		if h.Status != "ok" {
			t.Errorf("%s: %q (%s)", name, h.Status, h.Error)
		}
	}

	// With the jump host frozen, only the hosts behind it become unreachable: proof the
	// connection really goes through h1.
	if err := shared.lab.Freeze("h1"); err != nil {
		t.Fatal(err)
	}
	r = drover(t, "ping", "-i", "h2,h4,h6", "--ssh-config", cfg, "--json", "--connect-timeout", "2s")
	if err := shared.lab.Thaw("h1"); err != nil {
		t.Fatal(err)
	}
	if r.code != 1 {
		t.Fatalf("exit %d with h1 frozen, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	got := parsePing(t, r)
	want := map[string]string{"h2": "ok", "h4": "unreachable", "h6": "unreachable"}
	for name, status := range want {
		if got[name].Status != status {
			t.Errorf("h1 frozen: %s is %q (%s), want %q", name, got[name].Status, got[name].Error, status)
		}
	}
}

func TestJumpHostKeyIsVerified(t *testing.T) {
	// A known_hosts where h1 (the jump host) has somebody else's key: h4 behind it must be
	// refused, naming h1's line, while h2 (direct) still works.
	data, err := os.ReadFile(shared.lab.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	var h1Lines, h5Keys []string
	var rest []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		f := strings.SplitN(line, " ", 2)
		switch {
		case containsField(f[0], "h1"):
			h1Lines = append(h1Lines, line)
		case containsField(f[0], "h5"):
			h5Keys = append(h5Keys, f[1])
			rest = append(rest, line)
		default:
			rest = append(rest, line)
		}
	}
	if len(h1Lines) == 0 || len(h5Keys) == 0 {
		t.Fatalf("lab known_hosts lacks h1 or h5 lines")
	}
	// h1's names with h5's keys: a real key of the right types, but the wrong host's.
	h1Names := strings.SplitN(h1Lines[0], " ", 2)[0]
	lines := append([]string{}, rest...)
	firstBad := len(lines) + 1
	for _, k := range h5Keys {
		lines = append(lines, h1Names+" "+k)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := jumpConfig(t, kh)
	r := drover(t, "ping", "-i", "h2,h4", "--ssh-config", cfg, "--json")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	got := parsePing(t, r)
	if got["h2"].Status != "ok" {
		t.Errorf("h2: %q (%s), want ok", got["h2"].Status, got["h2"].Error)
	}
	h4 := got["h4"]
	if h4.Status == "ok" || !strings.Contains(h4.Error, "h1") || !strings.Contains(h4.Error, kh+":"+strconv.Itoa(firstBad)) {
		t.Errorf("h4 through a jump host with a wrong key: %q %q; want a refusal naming h1 and %s:%d", h4.Status, h4.Error, kh, firstBad)
	}
}

// TestInventoryShowAgreesWithOpenSSH compares `drover inventory show` with `ssh -G` on the
// lab's config extended with jump hosts (Include, wildcards, ProxyJump chains).
func TestInventoryShowAgreesWithOpenSSH(t *testing.T) {
	cfg := jumpConfig(t, shared.lab.KnownHosts)
	home := t.TempDir()
	for _, host := range []string{"h1", "h4", "h6", "h12"} {
		t.Run(host, func(t *testing.T) {
			r := droverHome(t, home, "inventory", "show", host, "--json", "-i", "h1,h4,h6,h12", "--ssh-config", cfg)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var doc struct {
				Connection struct {
					HostName       string   `json:"hostname"`
					Port           int      `json:"port"`
					User           string   `json:"user"`
					IdentityFiles  []string `json:"identity_files"`
					ProxyJump      []string `json:"proxy_jump"`
					KnownHosts     []string `json:"user_known_hosts_files"`
					StrictHostKeys string   `json:"strict_host_key_checking"`
				} `json:"connection"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, r.stdout)
			}
			g := sshG(t, home, cfg, host)
			c := doc.Connection
			checks := []struct{ key, got, want string }{
				{"hostname", c.HostName, g["hostname"]},
				{"port", strconv.Itoa(c.Port), g["port"]},
				{"user", c.User, g["user"]},
				{"identityfile", strings.Join(c.IdentityFiles, " "), g["identityfile"]},
				{"proxyjump", strings.Join(c.ProxyJump, ","), g["proxyjump"]},
				{"userknownhostsfile", strings.Join(c.KnownHosts, " "), g["userknownhostsfile"]},
				{"stricthostkeychecking", c.StrictHostKeys, g["stricthostkeychecking"]},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s: drover says %q, ssh -G says %q", c.key, c.got, c.want)
				}
			}
		})
	}
}

// sshG runs OpenSSH's own resolver (it parses config and prints; it never connects).
// Repeated keys (identityfile) are joined with spaces.
func sshG(t *testing.T, home, cfg, host string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-G", "-F", cfg, host)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh -G %s: %v", host, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if old, seen := m[k]; seen {
			v = old + " " + v
		}
		m[k] = v
	}
	if _, ok := m["proxyjump"]; !ok {
		m["proxyjump"] = ""
	}
	// ssh -G prints the boolean spellings of StrictHostKeyChecking; drover keeps the
	// configuration words (yes / no / accept-new / ask).
	switch m["stricthostkeychecking"] {
	case "true":
		m["stricthostkeychecking"] = "yes"
	case "false":
		m["stricthostkeychecking"] = "no"
	}
	return m
}
