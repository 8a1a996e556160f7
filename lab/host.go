package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// cleanEnv is the environment of everything the lab runs on or in a host: the caller's
// environment (proxies, locales, secrets) has no business there.
var cleanEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C.UTF-8",
}

// boot starts host h from its existing upper dir and waits for its sshd.
func (l *Lab) boot(ctx context.Context, h *Host) error {
	console, err := os.OpenFile(l.consoleLog(h.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %s: console: %w", h.Name, err)
	}
	defer console.Close()
	fi, err := console.Stat()
	if err != nil {
		return fmt.Errorf("lab: %s: console: %w", h.Name, err)
	}
	bootOffset := fi.Size() // this boot's messages start here
	fstab := l.fstab(h.Name)
	if err := os.WriteFile(filepath.Join(l.Dir, "hosts", h.Name, "fstab"), []byte(fstab), 0o644); err != nil {
		return fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	// Every boot gets a new boot id, as the kernel gives a real one; the host's init
	// writes the next one when the host reboots itself.
	if err := newBootID(l.bootIDFile(h.Name)); err != nil {
		return fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	cmd := exec.Command("unshare", "--mount", "--uts", "--pid", "--fork", "--propagation", "private",
		"--kill-child=SIGKILL", "sh", "-c", setupScript, "drover-lab-"+h.Name,
		filepath.Join(l.Dir, "hosts", h.Name, "fstab"), h.Name, l.rootDir(h.Name))
	cmd.Stdout, cmd.Stderr, cmd.Env, cmd.Dir = console, console, cleanEnv, "/"
	// Own process group: a Ctrl-C at the terminal must not take the lab down with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !l.detached {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: %s: start unshare: %w", h.Name, err)
	}
	p := &hostProc{unsharePID: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	fail := func(err error) error {
		_ = syscall.Kill(p.unsharePID, syscall.SIGKILL) // --kill-child takes pid 1 along
		<-p.done
		return fmt.Errorf("lab: host %s did not start: %w\n--- %s (setup script and sshd output) ---\n%s",
			h.Name, err, l.consoleLog(h.Name), consoleTail(l.consoleLog(h.Name), bootOffset))
	}
	if err := waitBanner(ctx, h.Address, p.done, nil); err != nil {
		return fail(err)
	}
	if p.pid1, err = onlyChild(p.unsharePID); err != nil {
		return fail(err)
	}
	if p.pidNS = nsOf(p.pid1); p.pidNS == "" || p.pidNS == nsOf(os.Getpid()) {
		return fail(fmt.Errorf("pid %d is not in a new pid namespace", p.pid1))
	}
	l.mu.Lock()
	l.procs[h.Name] = p
	l.mu.Unlock()
	return nil
}

// fstab lists the host's mounts for setup.sh, in mount order.
func (l *Lab) fstab(name string) string {
	upper, work := l.layerDirs(name)
	root := l.rootDir(name)
	esc := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace
	var b strings.Builder
	for _, m := range [][4]string{
		{"drover-lab-" + name, root, "overlay", "lowerdir=/,upperdir=" + upper + ",workdir=" + work},
		{"proc", root + "/proc", "proc", "nosuid,nodev,noexec"},
		{l.bootIDFile(name), root + "/proc/sys/kernel/random/boot_id", "none", "bind"},
		{"/sys", root + "/sys", "none", "rbind"},
		{"/dev", root + "/dev", "none", "rbind"},
		{"lab-run-" + name, root + "/run", "tmpfs", "mode=0755,nosuid,nodev"},
		{"lab-tmp-" + name, root + "/tmp", "tmpfs", "mode=1777,nosuid,nodev"},
		{"lab-shm-" + name, root + "/dev/shm", "tmpfs", "mode=1777,nosuid,nodev"},
	} {
		fmt.Fprintf(&b, "%s %s %s %s 0 0\n", esc(m[0]), esc(m[1]), m[2], esc(m[3]))
	}
	return b.String()
}

// bootIDFile is the host's boot id, bind-mounted over /proc/sys/kernel/random/boot_id
// inside it (the kernel's own is the machine's, the same for every host).
func (l *Lab) bootIDFile(name string) string {
	return filepath.Join(l.Dir, "hosts", name, "boot_id")
}

// newBootID writes a fresh random UUID (version 4, as the kernel's) to path.
func newBootID(path string) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("boot id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x\n", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	if err := os.WriteFile(path, []byte(id), 0o644); err != nil {
		return fmt.Errorf("boot id: %w", err)
	}
	return nil
}

// BootID is the host's current boot id, as /proc/sys/kernel/random/boot_id reads
// inside it. It changes with every boot, including a reboot the host does itself.
func (l *Lab) BootID(name string) (string, error) {
	if _, err := l.Host(name); err != nil {
		return "", err
	}
	b, err := os.ReadFile(l.bootIDFile(name))
	if err != nil {
		return "", fmt.Errorf("lab: %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// waitBanner polls addr:22 until an SSH server sends its "SSH-2.0" banner (or, with
// accept set, until accept approves what it offers). It is a readiness check with a
// short backoff, bounded by ctx and readyTimeout; exited closes when the host died.
func waitBanner(ctx context.Context, addr string, exited <-chan struct{}, accept func(net.Conn) bool) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	delay := 2 * time.Millisecond
	var last error
	for {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, "22"))
		if err == nil {
			ok := false
			if accept != nil {
				ok = accept(c)
			} else {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, rerr := bufio.NewReader(c).ReadString('\n')
				ok = strings.HasPrefix(line, "SSH-2.0-")
				if !ok {
					err = fmt.Errorf("no SSH banner from %s:22 (got %q): %v", addr, line, rerr)
				}
			}
			_ = c.Close()
			if ok {
				return nil
			}
		}
		if err != nil {
			last = err
		}
		select {
		case <-exited:
			return errors.New("the host's pid 1 exited before sshd was ready")
		case <-ctx.Done():
			return fmt.Errorf("sshd on %s:22 not ready: %w (last: %v)", addr, ctx.Err(), last)
		case <-time.After(delay):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// consoleTail returns the end of a console log from offset on, for error messages.
func consoleTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if offset <= int64(len(b)) {
		b = b[offset:]
	}
	const max = 4096
	if len(b) > max {
		b = append([]byte("…"), b[len(b)-max:]...)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "(empty)"
	}
	return string(b)
}

// onlyChild returns the pid of the single child of pid (unshare's forked pid 1).
func onlyChild(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, fmt.Errorf("children of unshare (pid %d): %w", pid, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		return 0, fmt.Errorf("unshare (pid %d) has children %q, want one", pid, f)
	}
	return strconv.Atoi(f[0])
}

// sshdOf finds the host's listening sshd: the child of its init (pid1) named sshd.
// Daemons the host started may be the init's children too, after their parent exited.
func sshdOf(pid1 int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid1, pid1))
	if err != nil {
		return 0, fmt.Errorf("children of the host's init (pid %d): %w", pid1, err)
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "sshd" {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no sshd among the children of the host's init (pid %d)", pid1)
}

// nsOf returns the pid namespace of pid ("pid:[…]"), or "" when it does not exist.
func nsOf(pid int) string {
	s, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return ""
	}
	return s
}

// procsInNS lists the processes in pid namespace ns.
func procsInNS(ns string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if nsOf(pid) == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procState is the state letter of /proc/PID/stat ("R", "S", "T", "Z"…), "" if gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2])
}

// running returns the host's current boot, verifying that its pid 1 is still the one
// recorded (pids get reused).
func (l *Lab) running(name string) (*hostProc, error) {
	if _, ok := l.index[name]; !ok {
		return nil, fmt.Errorf("lab: no host %q", name)
	}
	if l.stopped {
		return nil, errors.New("lab: stopped")
	}
	p := l.procs[name]
	if p == nil || nsOf(p.pid1) != p.pidNS {
		return nil, fmt.Errorf("lab: host %s is not running", name)
	}
	return p, nil
}

// signalHost sends sig to every process of the host's pid namespace, until a pass
// finds no process it has not signalled yet (a fork racing the first pass).
func (l *Lab) signalHost(name string, sig syscall.Signal) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := l.running(name)
	if err != nil {
		return err
	}
	seen := map[int]bool{}
	for pass := 0; pass < 10; pass++ {
		fresh := 0
		for _, pid := range procsInNS(p.pidNS) {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			fresh++
			if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("lab: %s: signal %d: %w", name, pid, err)
			}
		}
		if fresh == 0 {
			break
		}
	}
	if sig != syscall.SIGSTOP {
		return nil
	}
	// A stop takes effect when each process next runs; return only once it has.
	deadline := time.Now().Add(stopTimeout)
	for {
		running := 0
		for _, pid := range procsInNS(p.pidNS) {
			if s := procState(pid); s != "T" && s != "t" && s != "Z" && s != "" {
				running++
			}
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s: %d processes did not stop", name, running)
		}
		time.Sleep(time.Millisecond) // polling the kernel's process state, not synchronising goroutines
	}
}

// Freeze stops (SIGSTOP) every process of the host and returns once they are all
// stopped: the host hangs, connections to it time out.
func (l *Lab) Freeze(name string) error { return l.signalHost(name, syscall.SIGSTOP) }

// Thaw continues (SIGCONT) every process of a frozen host.
func (l *Lab) Thaw(name string) error { return l.signalHost(name, syscall.SIGCONT) }

// HostState is "running", "frozen" or "down".
func (l *Lab) HostState(name string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.index[name]; !ok {
		return "", fmt.Errorf("lab: no host %q", name)
	}
	p, err := l.running(name)
	if err != nil {
		return "down", nil
	}
	if procState(p.pid1) == "T" {
		return "frozen", nil
	}
	return "running", nil
}

// Kill ends the host at once (SIGKILL to its pid 1 ends its whole pid namespace), as a
// crash or power loss would; its disk state stays for Restart.
func (l *Lab) Kill(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.running(name); err != nil {
		return err
	}
	if err := l.killLocked(name); err != nil {
		return err
	}
	return l.saveStateLocked()
}

// killLocked kills the host if it runs and waits until its processes are gone.
func (l *Lab) killLocked(name string) error {
	p := l.procs[name]
	if p == nil {
		return nil
	}
	if nsOf(p.pid1) == p.pidNS {
		if err := syscall.Kill(p.pid1, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("lab: kill %s: %w", name, err)
		}
	}
	deadline := time.After(stopTimeout)
	if p.done != nil {
		select {
		case <-p.done:
		case <-deadline:
			return fmt.Errorf("lab: %s: unshare (pid %d) did not exit", name, p.unsharePID)
		}
	} else {
		// Not our child: wait until pid 1 has been reaped by unshare and unshare is gone
		// or a zombie of whoever inherited it.
		for nsOf(p.pid1) == p.pidNS || (procState(p.unsharePID) != "" && procState(p.unsharePID) != "Z" && isUnshare(p.unsharePID)) {
			select {
			case <-deadline:
				return fmt.Errorf("lab: %s: processes did not exit", name)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	l.procs[name] = nil
	return nil
}

func isUnshare(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(b)) == "unshare"
}

// Restart boots a killed host again with its disk state, as after a reboot, and
// returns when its sshd accepts connections.
func (l *Lab) Restart(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return errors.New("lab: stopped")
	}
	if p := l.procs[name]; p != nil && nsOf(p.pid1) == p.pidNS {
		l.mu.Unlock()
		return fmt.Errorf("lab: host %s is running; Kill it first", name)
	}
	l.procs[name] = nil
	l.mu.Unlock()
	if err := l.boot(ctx, h); err != nil {
		return err
	}
	return l.saveState()
}

// Exec runs argv inside the host (its namespaces and root) as root, for test setup and
// checks; returns combined output.
func (l *Lab) Exec(ctx context.Context, name string, argv ...string) ([]byte, error) {
	return l.execInput(ctx, name, nil, argv...)
}

func (l *Lab) execInput(ctx context.Context, name string, stdin io.Reader, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("lab: exec: empty command")
	}
	l.mu.Lock()
	p, err := l.running(name)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--target", strconv.Itoa(p.pid1), "--mount", "--uts", "--pid", "--root", "--wd", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env, cmd.Stdin = cleanEnv, stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("lab: exec on %s: %q: %w", name, argv, err)
	}
	return out, nil
}

// RotateHostKey gives the host new host keys (and restarts its sshd) so known_hosts no
// longer matches; it returns once sshd serves the new key.
func (l *Lab) RotateHostKey(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := l.running(name)
	if err != nil {
		return err
	}
	keys, err := newHostKeys()
	if err != nil {
		return fmt.Errorf("lab: %s: %w", name, err)
	}
	// Written through the host's own root so the change goes through its overlay.
	if err := writeHostKeys(fmt.Sprintf("/proc/%d/root", p.pid1), keys); err != nil {
		return fmt.Errorf("lab: %s: %w", name, err)
	}
	// SIGHUP makes sshd re-exec itself (same pid), loading the new keys. It goes to
	// sshd itself: pid 1 is the host's init, which ignores it.
	sshd, err := sshdOf(p.pid1)
	if err != nil {
		return fmt.Errorf("lab: %s: %w", name, err)
	}
	if err := syscall.Kill(sshd, syscall.SIGHUP); err != nil {
		return fmt.Errorf("lab: %s: restart sshd: %w", name, err)
	}
	want := keys.ed25519Pub.Marshal()
	served := func(c net.Conn) bool {
		var got []byte
		cfg := &ssh.ClientConfig{
			User:              "root",
			HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
			HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
				got = key.Marshal()
				return errors.New("host key seen") // stop here: only the key matters
			},
			Timeout: 5 * time.Second,
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _, _, _ = ssh.NewClientConn(c, h.Address+":22", cfg)
		return bytes.Equal(got, want)
	}
	if err := waitBanner(ctx, h.Address, nil, served); err != nil {
		return fmt.Errorf("lab: %s: sshd did not come back with the new key: %w", name, err)
	}
	return nil
}
