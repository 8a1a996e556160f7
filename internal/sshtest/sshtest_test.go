package sshtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/internal/sshtest"
	"github.com/drover-sh/drover/transport"
)

// Each fault, seen through drover's real dialer with the fleet's ssh_config:
// the helper must produce exactly the failure it promises.
func TestFaultsThroughTransport(t *testing.T) {
	f := sshtest.NewFleet(t)
	const trig = "@fault@"
	servers := map[sshtest.Fault]*sshtest.Server{}
	for _, fault := range []sshtest.Fault{sshtest.None, sshtest.Refuse, sshtest.Silent, sshtest.StallHandshake,
		sshtest.AuthRefused, sshtest.WrongHostKey, sshtest.ResetMidCommand, sshtest.HangCommand, sshtest.Flood} {
		servers[fault] = f.Add(fault.String(), sshtest.Options{Fault: fault, Trigger: trig, FloodBytes: 5 << 20})
	}
	cfg, err := transport.LoadSSHConfig(f.SSHConfig())
	if err != nil {
		t.Fatal(err)
	}
	d := transport.NewDialer(transport.DialerOptions{Config: cfg, AgentSocket: "none", Logf: t.Logf})
	dial := func(t *testing.T, fault sshtest.Fault) (*transport.Conn, error) {
		t.Helper()
		ep, err := cfg.Resolve(fault.String(), transport.Overrides{ConnectTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return d.Dial(context.Background(), ep)
	}

	dialFaults := []struct {
		fault sshtest.Fault
		is    error
		text  string
	}{
		{sshtest.Refuse, transport.ErrUnreachable, "connection refused"},
		{sshtest.Silent, transport.ErrUnreachable, "no SSH handshake within 1s"},
		{sshtest.StallHandshake, transport.ErrUnreachable, "no SSH handshake within 1s"},
		{sshtest.AuthRefused, transport.ErrAuth, "authentication failed"},
		{sshtest.WrongHostKey, transport.ErrHostKey, "HOST IDENTIFICATION HAS CHANGED"},
	}
	for _, tc := range dialFaults {
		t.Run(tc.fault.String(), func(t *testing.T) {
			c, err := dial(t, tc.fault)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q, want %v containing %q", err, tc.is, tc.text)
			}
		})
	}

	cmdFaults := []struct {
		fault   sshtest.Fault
		timeout time.Duration
		check   func(t *testing.T, res *transport.Result, err error)
	}{
		{sshtest.None, 0, func(t *testing.T, res *transport.Result, err error) {
			if err != nil || res.ExitCode != 3 || string(res.Stdout) != "hi\n" {
				t.Fatalf("res %+v err %v, want exit 3 and hi", res, err)
			}
		}},
		{sshtest.ResetMidCommand, 0, func(t *testing.T, res *transport.Result, err error) {
			if !errors.Is(err, transport.ErrConnLost) {
				t.Fatalf("err %v, want connection lost", err)
			}
		}},
		{sshtest.HangCommand, 500 * time.Millisecond, func(t *testing.T, res *transport.Result, err error) {
			if !errors.Is(err, transport.ErrTimeout) {
				t.Fatalf("err %v, want timeout", err)
			}
		}},
		{sshtest.Flood, 0, func(t *testing.T, res *transport.Result, err error) {
			if err != nil || !res.Truncated || len(res.Stdout) != transport.DefaultMaxOutput {
				t.Fatalf("err %v truncated %v len %d", err, res != nil && res.Truncated, len(res.Stdout))
			}
		}},
	}
	for _, tc := range cmdFaults {
		t.Run(tc.fault.String(), func(t *testing.T) {
			c, err := dial(t, tc.fault)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cmd := "echo hi; exit 3"
			if tc.fault != sshtest.None {
				cmd = "echo " + trig
			}
			res, err := c.Run(context.Background(), &transport.Command{Cmd: cmd, Timeout: tc.timeout})
			tc.check(t, res, err)
			if tc.fault != sshtest.None && servers[tc.fault].Faulted() != 1 {
				t.Errorf("faulted %d times, want 1", servers[tc.fault].Faulted())
			}
			// Untriggered commands still work normally on the same server (after a
			// reset, over a fresh connection).
			res, err = c.Run(context.Background(), &transport.Command{Cmd: "echo ok"})
			if err != nil || string(res.Stdout) != "ok\n" {
				t.Fatalf("normal command after the fault: %v %+v", err, res)
			}
		})
	}
}
