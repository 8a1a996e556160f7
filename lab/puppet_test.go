package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requirePuppet fails (never skips silently) when the Debian Puppet packages are missing.
func requirePuppet(t *testing.T) {
	t.Helper()
	for _, f := range []string{javaBin, puppetServerJar, "/usr/bin/puppet"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("puppet lab tests need %s (Debian packages puppetserver, puppet-agent; scripts/install-deps.sh): %v", f, err)
		}
	}
}

func TestPruneToMachine(t *testing.T) {
	requirePuppet(t)
	// /var/cache/puppet/state ships with puppet-agent; the rest is what a run adds.
	if _, err := os.Stat("/var/cache/puppet/state"); err != nil {
		t.Fatalf("puppet-agent's /var/cache/puppet/state missing: %v", err)
	}
	root := t.TempDir()
	for _, f := range []string{
		"var/cache/puppet/state/agent_disabled.lock",
		"var/cache/puppet/client_data/catalog/h1.json",
		"var/lib/puppet/ssl/certs/h1.pem",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range agentStateDirs {
		if err := pruneToMachine(root, d); err != nil {
			t.Fatalf("pruneToMachine %s: %v", d, err)
		}
	}
	for path, want := range map[string]bool{
		"var/cache/puppet/state":                     true, // the machine has it
		"var/lib/puppet/ssl":                         true,
		"var/cache/puppet/state/agent_disabled.lock": false,
		"var/cache/puppet/client_data":               false,
		"var/lib/puppet/ssl/certs":                   false,
	} {
		_, err := os.Lstat(filepath.Join(root, path))
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v (%v)", path, got, want, err)
		}
	}
}

// hostRun runs a shell command in a lab host and returns combined output and exit code.
func hostRun(t *testing.T, l *Lab, host, script string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := l.Exec(ctx, host, "sh", "-c", script)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s: %v\n%s", host, err, out)
	return "", 0
}

func TestPuppetServer(t *testing.T) {
	requireLab(t)
	requirePuppet(t)
	l := startLab(t, Config{Hosts: 1, Net: -1})
	// A bound, not a pace: the JVM takes one to three minutes on two busy cores.
	startCtx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := StartPuppetServer(startCtx, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("puppetserver started in %s", s.StartTime.Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.Stop()
		}
	})
	if want := fmt.Sprintf("127.1.%d.254", l.Net()); s.Address != want {
		t.Errorf("Address = %q, want %q", s.Address, want)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel2()
	if _, err := StartPuppetServer(ctx, l); err == nil || !strings.Contains(err.Error(), "already listens") {
		t.Errorf("second server for the same lab: err = %v, want 'already listens'", err)
	}

	if err := s.ConfigureAgent(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	conf, _ := hostRun(t, l, "h1", "cat /etc/puppet/puppet.conf")
	if conf != s.AgentConfig("h1") {
		t.Errorf("h1 puppet.conf = %q, want %q", conf, s.AgentConfig("h1"))
	}
	token := fmt.Sprintf("%d", time.Now().UnixNano())
	if err := s.SetSiteManifest(fmt.Sprintf("node default { file { '/tmp/lab-puppet': content => \"%s\\n\" } }\n", token)); err != nil {
		t.Fatal(err)
	}
	const agent = "puppet agent --onetime --no-daemonize --no-splay --detailed-exitcodes --color=false"
	out, code := hostRun(t, l, "h1", agent)
	if code != 2 {
		t.Fatalf("first agent run: exit %d, want 2 (changed)\n%s\n--- server log ---\n%s", code, out, s.Log())
	}
	if got, _ := hostRun(t, l, "h1", "cat /tmp/lab-puppet"); got != token+"\n" {
		t.Errorf("/tmp/lab-puppet = %q, want %q", got, token+"\n")
	}
	// The server really signed h1's certificate with its CA.
	if _, err := os.Stat(filepath.Join(s.Dir, "ssl", "ca", "signed", "h1.pem")); err != nil {
		t.Errorf("h1's certificate not signed by the lab CA: %v", err)
	}
	if out, code := hostRun(t, l, "h1", agent); code != 0 {
		t.Errorf("second agent run: exit %d, want 0\n%s", code, out)
	}

	if err := s.ResetAgent(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile("/etc/puppet/puppet.conf")
	if err != nil {
		t.Fatal(err)
	}
	if conf, _ := hostRun(t, l, "h1", "cat /etc/puppet/puppet.conf"); conf != string(orig) {
		t.Errorf("after ResetAgent h1 puppet.conf = %q, want the machine's %q", conf, orig)
	}
	if out, _ := hostRun(t, l, "h1", "find /var/lib/puppet/ssl /var/cache/puppet/public /var/cache/puppet/client_data -mindepth 1 2>/dev/null"); out != "" {
		t.Errorf("after ResetAgent the agent's files remain:\n%s", out)
	}

	pid := s.cmd.Process.Pid
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("JVM pid %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(s.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists after Stop: %v", s.Dir, err)
	}
	if portOpen(ctx, s.addr()) {
		t.Errorf("%s still accepts connections after Stop", s.addr())
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
