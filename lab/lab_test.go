package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireLab fails (never skips silently) when the machine cannot run a lab.
func requireLab(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the lab boots real sshd hosts (needs root); run without -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("lab tests need root (namespaces, overlayfs, chroot); run them as root")
	}
	for _, tool := range []string{"/usr/sbin/sshd", "ssh", "unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("lab tests need %s (Debian packages openssh-server, openssh-client, util-linux): %v", tool, err)
		}
	}
}

func startLab(t *testing.T, cfg Config) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg.Logf = t.Logf
	l, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return l
}

// runSSH runs the real OpenSSH client with the lab's ssh_config.
func runSSH(t *testing.T, l *Lab, stdin string, args ...string) (string, error) {
	t.Helper()
	// A guard against a hung host, not a pace: apt-get on a loaded 2-core CI machine can
	// take well over 30 s.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", append([]string{"-F", l.SSHConfig, "-o", "BatchMode=yes"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustSSH(t *testing.T, l *Lab, host, command, want string) {
	t.Helper()
	out, err := runSSH(t, l, "", host, command)
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", host, command, err, out)
	}
	if got := strings.TrimSpace(out); got != want {
		t.Fatalf("ssh %s %q = %q, want %q", host, command, got, want)
	}
}

func TestLab(t *testing.T) {
	requireLab(t)
	l := startLab(t, Config{Hosts: 3, Net: -1})
	ctx := context.Background()
	if l.net < 1 {
		t.Fatalf("Net -1 picked network %d, want >= 1 (0 is the demo's)", l.net)
	}

	t.Run("ssh as root, both host key types verify", func(t *testing.T) {
		for _, h := range l.Hosts {
			mustSSH(t, l, h.Name, "hostname", h.Name)
			for _, alg := range []string{"ssh-ed25519", "ecdsa-sha2-nistp256"} {
				out, err := runSSH(t, l, "", "-o", "HostKeyAlgorithms="+alg, h.Name, "true")
				if err != nil {
					t.Errorf("%s with %s and StrictHostKeyChecking yes: %v\n%s", h.Name, alg, err, out)
				}
			}
			// The address is a known name too: ssh straight to it, without the alias's entry.
			out, err := runSSH(t, l, "", "-o", "UserKnownHostsFile="+l.KnownHosts, "-o", "StrictHostKeyChecking=yes",
				"-o", "IdentitiesOnly=yes", "-i", l.KeyFile, "root@"+h.Address, "hostname")
			if err != nil || strings.TrimSpace(out) != h.Name {
				t.Errorf("ssh %s by address: %v\n%s", h.Address, err, out)
			}
		}
	})

	t.Run("sudo user with password", func(t *testing.T) {
		out, err := runSSH(t, l, l.SudoPassword+"\n", "-l", l.SudoUser, "h1", "id -un; sudo -S -p '' id -un")
		if err != nil {
			t.Fatalf("sudo: %v\n%s", err, out)
		}
		if got := strings.Fields(out); len(got) != 2 || got[0] != l.SudoUser || got[1] != "root" {
			t.Fatalf("id before and after sudo = %q, want [%s root]", got, l.SudoUser)
		}
		out, err = runSSH(t, l, "wrong-password\n", "-l", l.SudoUser, "h1", "sudo -S -p '' id -un")
		if err == nil {
			t.Fatalf("sudo with a wrong password succeeded: %s", out)
		}
		if strings.Contains(out, l.SudoPassword) {
			t.Fatal("sudo output shows the password")
		}
	})

	t.Run("facts and isolation", func(t *testing.T) {
		out, err := l.Exec(ctx, "h2", "cat", "/etc/facter/facts.d/lab.txt")
		if err != nil {
			t.Fatal(err)
		}
		if want := "role=db\ndatacenter=dc1\nlab_host=h2\n"; string(out) != want {
			t.Errorf("h2 facts = %q, want %q", out, want)
		}
		out, err = l.Exec(ctx, "h1", "hostname")
		if err != nil || string(out) != "h1\n" {
			t.Errorf("Exec in h1: %q, %v", out, err)
		}
		// Writes stay inside the host.
		if _, err := l.Exec(ctx, "h1", "sh", "-c", "echo h1-only > /etc/drover-lab-probe"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat("/etc/drover-lab-probe"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a write in h1 reached the machine's /etc: %v", err)
		}
		if out, err := l.Exec(ctx, "h2", "cat", "/etc/drover-lab-probe"); err == nil {
			t.Errorf("a write in h1 is visible in h2: %q", out)
		}
	})

	t.Run("freeze and thaw", func(t *testing.T) {
		if err := l.Freeze("h2"); err != nil {
			t.Fatal(err)
		}
		if s, _ := l.HostState("h2"); s != "frozen" {
			t.Errorf("HostState(h2) = %q, want frozen", s)
		}
		out, err := runSSH(t, l, "", "-o", "ConnectTimeout=2", "h2", "true")
		if err == nil {
			t.Errorf("ssh to frozen h2 succeeded: %s", out)
		}
		mustSSH(t, l, "h1", "hostname", "h1")
		if err := l.Thaw("h2"); err != nil {
			t.Fatal(err)
		}
		mustSSH(t, l, "h2", "hostname", "h2")
	})

	t.Run("kill and restart keep disk state", func(t *testing.T) {
		if _, err := l.Exec(ctx, "h3", "sh", "-c", "echo before-crash > /root/state"); err != nil {
			t.Fatal(err)
		}
		if err := l.Kill("h3"); err != nil {
			t.Fatal(err)
		}
		out, err := runSSH(t, l, "", "-o", "ConnectTimeout=2", "h3", "true")
		if err == nil || !strings.Contains(out, "Connection refused") {
			t.Errorf("ssh to killed h3: err %v, output %q, want connection refused", err, out)
		}
		if _, err := l.Exec(ctx, "h3", "true"); err == nil {
			t.Error("Exec on a killed host succeeded")
		}
		if err := l.Restart(ctx, "h3"); err != nil {
			t.Fatal(err)
		}
		mustSSH(t, l, "h3", "cat /root/state", "before-crash")
		mustSSH(t, l, "h3", "hostname", "h3")
	})

	t.Run("rotate host key", func(t *testing.T) {
		if err := l.RotateHostKey(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		out, err := runSSH(t, l, "", "h1", "true")
		if err == nil || !strings.Contains(out, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
			t.Errorf("ssh after key rotation: err %v, output %q", err, out)
		}
		mustSSH(t, l, "h2", "hostname", "h2")
	})

	t.Run("stop leaves nothing", func(t *testing.T) {
		var namespaces []string
		for _, p := range l.procs {
			if p != nil {
				namespaces = append(namespaces, p.pidNS)
			}
		}
		if len(namespaces) != 3 {
			t.Fatalf("%d running hosts before Stop, want 3", len(namespaces))
		}
		dir, fsDir := l.Dir, l.fsDir
		if err := l.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, ns := range namespaces {
			if pids := procsInNS(ns); len(pids) > 0 {
				t.Errorf("processes %v of a host's namespace %s remain", pids, ns)
			}
		}
		for _, h := range l.Hosts {
			if c, err := net.DialTimeout("tcp", h.Address+":22", time.Second); err == nil {
				c.Close()
				t.Errorf("something still listens on %s:22", h.Address)
			}
		}
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(mi, []byte(dir)) || bytes.Contains(mi, []byte(fsDir)) || bytes.Contains(mi, []byte("drover-lab-h")) {
			t.Errorf("lab mounts remain:\n%s", mi)
		}
		for _, d := range []string{dir, fsDir} {
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still exists (%v)", d, err)
			}
		}
		if err := l.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}

func TestTwoLabsGetDifferentNetworks(t *testing.T) {
	requireLab(t)
	a := startLab(t, Config{Hosts: 1, Net: -1})
	b := startLab(t, Config{Hosts: 1, Net: -1})
	if a.net == b.net {
		t.Fatalf("both labs got network %d", a.net)
	}
	if a.Hosts[0].Address == b.Hosts[0].Address {
		t.Fatalf("both labs use %s", a.Hosts[0].Address)
	}
	mustSSH(t, a, "h1", "hostname", "h1")
	mustSSH(t, b, "h1", "hostname", "h1")
	// An explicit network held by a running lab is refused.
	_, err := Start(context.Background(), Config{Hosts: 1, Net: a.net, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Start on the network of a running lab: %v, want an in-use error", err)
	}
}

func TestFailedBootNamesHostAndShowsOutput(t *testing.T) {
	requireLab(t)
	dir := t.TempDir()
	l := startLab(t, Config{Hosts: 1, Net: -1, Dir: dir})
	if err := l.Kill("h1"); err != nil {
		t.Fatal(err)
	}
	upper, _ := l.layerDirs("h1")
	if err := os.WriteFile(filepath.Join(upper, "etc/ssh/sshd_config"), []byte("NoSuchOption yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := l.Restart(context.Background(), "h1")
	if err == nil {
		t.Fatal("Restart with a broken sshd_config succeeded")
	}
	for _, want := range []string{"host h1", "NoSuchOption"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), l.SudoPassword) {
		t.Error("error shows the sudo password")
	}
	// A given Dir is kept, but everything the lab wrote in it goes.
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("Dir after Stop: %v entries, %v", entries, err)
	}
}

func TestHostFiles(t *testing.T) {
	requireLab(t) // writes root-owned files
	tests := []struct {
		index      int
		role, dc   string
		wantUbuntu bool
	}{
		{1, "web", "dc1", false},
		{2, "db", "dc1", false},
		{3, "web", "dc2", false},
		{5, "web", "dc1", true},
		{7, "web", "dc2", false},
		{10, "db", "dc1", true},
	}
	acct, err := newAccount("drover", "secret")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := newHostKeys()
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{}
	for _, tt := range tests {
		upper := t.TempDir()
		h := &Host{Name: fmt.Sprintf("h%d", tt.index), Address: "127.1.9.1", Port: 22}
		if err := l.prepareUpper(upper, h, tt.index, keys, acct, []byte("ssh-ed25519 AAAA test\n")); err != nil {
			t.Fatal(err)
		}
		facts, err := os.ReadFile(filepath.Join(upper, "etc/facter/facts.d/lab.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(facts), "role="+tt.role+"\n") || !strings.Contains(string(facts), "datacenter="+tt.dc+"\n") {
			t.Errorf("host %d facts %q, want role=%s datacenter=%s", tt.index, facts, tt.role, tt.dc)
		}
		osr, err := os.ReadFile(filepath.Join(upper, "etc/os-release"))
		if gotUbuntu := err == nil && strings.Contains(string(osr), "ID=ubuntu"); gotUbuntu != tt.wantUbuntu {
			t.Errorf("host %d Ubuntu os-release = %v, want %v", tt.index, gotUbuntu, tt.wantUbuntu)
		}
		// Upper-layer dirs replace the lower ones' attributes: /root must stay private.
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(upper, "root"), &st); err != nil {
			t.Fatal(err)
		}
		var lower syscall.Stat_t
		if err := syscall.Stat("/root", &lower); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o777 != lower.Mode&0o777 {
			t.Errorf("upper /root mode %o, want the machine's %o", st.Mode&0o777, lower.Mode&0o777)
		}
		if err := syscall.Stat(filepath.Join(upper, "home/drover/.ssh/authorized_keys"), &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Uid) != acct.uid || st.Mode&0o777 != 0o600 {
			t.Errorf("drover authorized_keys uid %d mode %o, want %d 0600", st.Uid, st.Mode&0o777, acct.uid)
		}
	}
}

func TestStart20Hosts(t *testing.T) {
	requireLab(t)
	began := time.Now()
	l := startLab(t, Config{Hosts: 20, Net: -1})
	took := time.Since(began)
	t.Logf("Start of 20 hosts took %s", took.Round(time.Millisecond))
	mustSSH(t, l, "h20", "hostname", "h20")
	out, err := l.Exec(context.Background(), "h20", "sh", "-c", ". /etc/os-release; echo $ID")
	if err != nil || strings.TrimSpace(string(out)) != "ubuntu" {
		t.Errorf("h20 os-release ID = %q, %v; want ubuntu", out, err)
	}
}

// BenchmarkStart measures Start alone (Stop runs with the timer stopped).
func BenchmarkStart(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Fatal("the lab needs root; run the benchmark as root")
	}
	for _, n := range []int{20, 50} {
		b.Run(fmt.Sprintf("%dhosts", n), func(b *testing.B) {
			for b.Loop() {
				l, err := Start(context.Background(), Config{Hosts: n, Net: -1})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := l.Stop(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
