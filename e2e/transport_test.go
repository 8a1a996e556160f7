package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/transport"
)

// dialLab connects to a lab host as user with the lab's own ssh_config.
func dialLab(t *testing.T, host, user string) *transport.Conn {
	t.Helper()
	cfg, err := transport.LoadSSHConfig(shared.lab.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := cfg.Resolve(host, transport.Overrides{User: user})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := transport.NewDialer(transport.DialerOptions{Config: cfg, AgentSocket: "none"}).Dial(ctx, ep)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", host, user, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func mustRun(t *testing.T, c *transport.Conn, cmd *transport.Command) *transport.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.Run(ctx, cmd)
	if err != nil {
		t.Fatalf("run %q: %v", cmd.Cmd, err)
	}
	return res
}

func TestTransportOnRealSSHD(t *testing.T) {
	c := dialLab(t, "h2", "root")

	t.Run("exit status and output", func(t *testing.T) {
		res := mustRun(t, c, &transport.Command{Cmd: "hostname; echo oops >&2; exit 3"})
		if strings.TrimSpace(string(res.Stdout)) != "h2" || strings.TrimSpace(string(res.Stderr)) != "oops" || res.ExitCode != 3 {
			t.Errorf("got stdout %q stderr %q exit %d", res.Stdout, res.Stderr, res.ExitCode)
		}
	})
	t.Run("signal", func(t *testing.T) {
		res := mustRun(t, c, &transport.Command{Cmd: "kill -KILL $$"})
		if res.Signal != "KILL" || res.ExitCode != -1 {
			t.Errorf("got signal %q exit %d, want KILL -1", res.Signal, res.ExitCode)
		}
	})
	t.Run("stdin and streaming", func(t *testing.T) {
		var streamed bytes.Buffer
		res := mustRun(t, c, &transport.Command{Cmd: "tr a-z A-Z", Stdin: strings.NewReader("drover\n"), Stdout: &streamed})
		if string(res.Stdout) != "DROVER\n" || streamed.String() != "DROVER\n" {
			t.Errorf("captured %q streamed %q", res.Stdout, streamed.String())
		}
	})
	t.Run("huge output is capped", func(t *testing.T) {
		res := mustRun(t, c, &transport.Command{Cmd: "head -c 60000000 /dev/zero; echo done >&2", MaxOutput: 1 << 16})
		if len(res.Stdout) != 1<<16 || !res.Truncated || strings.TrimSpace(string(res.Stderr)) != "done" || res.ExitCode != 0 {
			t.Errorf("kept %d bytes, truncated %v, stderr %q, exit %d", len(res.Stdout), res.Truncated, res.Stderr, res.ExitCode)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		_, err := c.Run(context.Background(), &transport.Command{Cmd: "sleep 60", Timeout: time.Second})
		if !errors.Is(err, transport.ErrTimeout) || time.Since(start) > 20*time.Second {
			t.Errorf("err %v after %s, want ErrTimeout soon after 1s", err, time.Since(start))
		}
		// The connection survives a timed-out command.
		if res := mustRun(t, c, &transport.Command{Cmd: "echo alive"}); strings.TrimSpace(string(res.Stdout)) != "alive" {
			t.Errorf("after a timeout: %q", res.Stdout)
		}
	})
	t.Run("one connection for many commands", func(t *testing.T) {
		for i := 0; i < 25; i++ {
			mustRun(t, c, &transport.Command{Cmd: "true"})
		}
		h, _ := shared.lab.Host("h2")
		if n := establishedTo(t, h.Address, h.Port); n != 1 {
			t.Errorf("%d established connections to %s:%d after 25 commands, want 1", n, h.Address, h.Port)
		}
	})
}

func TestBecomeWithPasswordOnRealSSHD(t *testing.T) {
	c := dialLab(t, "h3", shared.lab.SudoUser)
	pw := []byte(shared.lab.SudoPassword)

	res := mustRun(t, c, &transport.Command{Cmd: "id -un", Become: &transport.Become{Password: pw}})
	if strings.TrimSpace(string(res.Stdout)) != "root" || res.ExitCode != 0 {
		t.Fatalf("become: stdout %q stderr %q exit %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	if bytes.Contains(res.Stdout, pw) || bytes.Contains(res.Stderr, pw) {
		t.Errorf("the sudo password appears in the output")
	}
	// stdin still reaches the command after the password line.
	res = mustRun(t, c, &transport.Command{Cmd: "cat", Stdin: strings.NewReader("payload"), Become: &transport.Become{Password: pw}})
	if string(res.Stdout) != "payload" {
		t.Errorf("stdin through sudo: %q", res.Stdout)
	}

	wrong := []byte("not-the-password-" + hex.EncodeToString(pw))
	res, err := c.Run(context.Background(), &transport.Command{Cmd: "id -un", Become: &transport.Become{Password: wrong}})
	switch {
	case err == nil && res.ExitCode == 0:
		t.Errorf("a wrong sudo password succeeded")
	case err != nil && strings.Contains(err.Error(), string(wrong)):
		t.Errorf("the error shows the password: %v", err)
	}

	// Upload through sudo into a root-owned directory, atomically and with the mode asked.
	payload := strings.Repeat("drover upload\n", 5000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Upload(ctx, strings.NewReader(payload), "/etc/drover-e2e.conf", 0o640, &transport.Become{Password: pw}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	out, err := shared.lab.Exec(ctx, "h3", "sh", "-c", "stat -c '%a %U' /etc/drover-e2e.conf; md5sum < /etc/drover-e2e.conf")
	if err != nil {
		t.Fatalf("checking the upload: %v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "640 root\n") {
		t.Errorf("uploaded file: %q", out)
	}
	local := mustRun(t, c, &transport.Command{Cmd: "md5sum", Stdin: strings.NewReader(payload)})
	if !strings.Contains(string(out), strings.Fields(string(local.Stdout))[0]) {
		t.Errorf("uploaded content differs: %q vs %q", out, local.Stdout)
	}
}

func TestReconnectAfterHostRestart(t *testing.T) {
	c := dialLab(t, "h9", "root")
	mustRun(t, c, &transport.Command{Cmd: "touch /root/before-reboot"})
	if err := shared.lab.Kill("h9"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := shared.lab.Restart(ctx, "h9"); err != nil {
		t.Fatal(err)
	}
	// The old connection died with the host; the next command reconnects once and runs.
	res := mustRun(t, c, &transport.Command{Cmd: "test -f /root/before-reboot && echo kept"})
	if strings.TrimSpace(string(res.Stdout)) != "kept" {
		t.Errorf("after restart: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
}

// establishedTo counts established TCP connections whose server side is addr:port, from
// /proc/net/tcp (the lab shares the controller's network namespace).
func establishedTo(t *testing.T, addr string, port int) int {
	t.Helper()
	ip := net.ParseIP(addr).To4()
	// /proc/net/tcp prints the address as a little-endian hex word.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], port)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// local_address is fields[1]; state 01 is ESTABLISHED.
		if len(fields) > 3 && fields[1] == want && fields[3] == "01" {
			n++
		}
	}
	return n
}
