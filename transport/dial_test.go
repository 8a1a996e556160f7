package transport

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestNoBannerTimesOut(t *testing.T) {
	addr := silentListener(t)
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	const timeout = 300 * time.Millisecond
	ep := &Endpoint{Alias: "mute", HostName: "127.0.0.1", Port: p, User: "x", ConnectTimeout: timeout,
		StrictHostKeyChecking: HostKeyStrict}
	start := time.Now()
	_, err := testDialer(t).Dial(context.Background(), ep)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "mute") {
		t.Errorf("error %q does not name the host", err)
	}
	if elapsed < timeout-50*time.Millisecond || elapsed > 3*timeout {
		t.Errorf("gave up after %v, want about %v", elapsed, timeout)
	}
}

func TestDialCancelledByContext(t *testing.T) {
	addr := silentListener(t)
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	ep := &Endpoint{HostName: "127.0.0.1", Port: p, User: "x", ConnectTimeout: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := testDialer(t).Dial(ctx, ep)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want the context's error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancellation took %v", d)
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	ep := &Endpoint{Alias: "gone", HostName: "127.0.0.1", Port: port, User: "x", ConnectTimeout: 2 * time.Second}
	_, err = testDialer(t).Dial(context.Background(), ep)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not say the connection was refused", err)
	}
}

func TestAuthFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture, ep *Endpoint)
		want  []string
	}{
		{
			name: "key not authorized",
			setup: func(t *testing.T, f *fixture, ep *Endpoint) {
				_, priv := newEd25519(t)
				writeKey(t, f.keyFile, priv, "")
			},
			want: []string{"h1", "tester", "offered: key " + "KEYFILE"},
		},
		{
			name: "missing explicit identity file",
			setup: func(t *testing.T, f *fixture, ep *Endpoint) {
				ep.IdentityFiles = []string{filepath.Join(f.dir, "nope")}
			},
			want: []string{"nope does not exist", "no usable identity"},
		},
		{
			name: "encrypted key without a passphrase source",
			setup: func(t *testing.T, f *fixture, ep *Endpoint) {
				t.Setenv(PassphraseEnv, "")
				_, priv := newEd25519(t)
				writeKey(t, f.keyFile, priv, "s3cret-pass")
			},
			want: []string{"passphrase-protected", PassphraseEnv},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ep := f.endpoint()
			tc.setup(t, f, ep)
			_, err := testDialer(t).Dial(context.Background(), ep)
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "KEYFILE", f.keyFile)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPassphraseProtectedKey(t *testing.T) {
	const pass = "correct horse battery"
	f := newFixture(t)
	_, priv := newEd25519(t)
	writeKey(t, f.keyFile, priv, pass)
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	f.srv.authorize(pub)

	t.Run("callback, asked once per key", func(t *testing.T) {
		calls := 0
		d := NewDialer(DialerOptions{AgentSocket: "none", Passphrase: func(keyFile string) ([]byte, error) {
			calls++
			if keyFile != f.keyFile {
				t.Errorf("asked for %q", keyFile)
			}
			return []byte(pass), nil
		}})
		for range 2 {
			c, err := d.Dial(context.Background(), kdfEndpoint(f))
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			c.Close()
		}
		if calls != 1 {
			t.Errorf("passphrase asked %d times, want 1", calls)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(PassphraseEnv, pass)
		c, err := testDialer(t).Dial(context.Background(), kdfEndpoint(f))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
	})
	t.Run("wrong passphrase never echoed", func(t *testing.T) {
		const wrong = "not-the-passphrase-42"
		d := NewDialer(DialerOptions{AgentSocket: "none", Passphrase: func(string) ([]byte, error) { return []byte(wrong), nil }})
		_, err := d.Dial(context.Background(), kdfEndpoint(f))
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "wrong passphrase") {
			t.Fatalf("err = %v, want ErrAuth naming a wrong passphrase", err)
		}
		if strings.Contains(err.Error(), wrong) {
			t.Error("the passphrase leaked into the error")
		}
	})
}

func TestUserCertificate(t *testing.T) {
	ca, _ := newEd25519(t)
	f := newFixture(t, withUserCA(ca.PublicKey()))
	f.srv.setAuthorized() // only certificates are accepted
	cert := signCert(t, ca, f.clientKey.PublicKey(), ssh.UserCert, "tester")
	certLine := ssh.MarshalAuthorizedKey(cert)

	if _, err := testDialer(t).Dial(context.Background(), f.endpoint()); !errors.Is(err, ErrAuth) {
		t.Fatalf("without a certificate: err = %v, want ErrAuth", err)
	}
	t.Run("KEY-cert.pub next to the key", func(t *testing.T) {
		if err := os.WriteFile(f.keyFile+"-cert.pub", certLine, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(f.keyFile + "-cert.pub")
		c, err := testDialer(t).Dial(context.Background(), f.endpoint())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
	})
	t.Run("CertificateFile", func(t *testing.T) {
		cf := filepath.Join(f.dir, "elsewhere.pub")
		if err := os.WriteFile(cf, certLine, 0o644); err != nil {
			t.Fatal(err)
		}
		ep := f.endpoint()
		ep.CertificateFiles = []string{cf}
		c, err := testDialer(t).Dial(context.Background(), ep)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
	})
}

// startAgent serves an in-memory ssh-agent holding keys on a unix socket.
func startAgent(t *testing.T, keys ...any) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return sock
}

func TestAgentAuth(t *testing.T) {
	f := newFixture(t)
	_, agentPriv := newEd25519(t)
	agentPub, _ := ssh.NewPublicKey(agentPriv.Public())
	f.srv.setAuthorized(agentPub) // only the agent's key works
	sock := startAgent(t, agentPriv)

	t.Run("agent key used", func(t *testing.T) {
		d := NewDialer(DialerOptions{AgentSocket: sock})
		c, err := d.Dial(context.Background(), f.endpoint())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
	})
	t.Run("IdentitiesOnly hides agent keys not in IdentityFiles", func(t *testing.T) {
		ep := f.endpoint()
		ep.IdentitiesOnly = true
		_, err := NewDialer(DialerOptions{AgentSocket: sock}).Dial(context.Background(), ep)
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
	})
	t.Run("IdentitiesOnly keeps the agent copy of a listed key", func(t *testing.T) {
		pubFile := filepath.Join(f.dir, "agentkey")
		// Only the public half on disk, as when the private key lives in the agent.
		if err := os.WriteFile(pubFile+".pub", ssh.MarshalAuthorizedKey(agentPub), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pubFile, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		ep := f.endpoint()
		ep.IdentitiesOnly = true
		ep.IdentityFiles = []string{pubFile}
		c, err := NewDialer(DialerOptions{AgentSocket: sock}).Dial(context.Background(), ep)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.Close()
	})
}

func TestProxyJump(t *testing.T) {
	target := newFixture(t)
	jump := newTestServer(t, withForwarding(), withAuthorized(target.clientKey.PublicKey()))
	otherKey, _ := newEd25519(t)
	tests := []struct {
		name    string
		jumpKey ssh.PublicKey
		wantErr bool
	}{
		{"both host keys known", jump.hostSigners[0].PublicKey(), false},
		{"wrong key on the jump host", otherKey.PublicKey(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target.writeKnownHosts(t,
				lineFor(target.srv.addr, target.srv.hostSigners[0].PublicKey()),
				lineFor(jump.addr, tc.jumpKey))
			before, targetBefore := jump.handshakes.Load(), target.srv.accepted.Load()
			ep := target.endpoint()
			ep.ProxyJump = []string{"jumper@127.0.0.1:" + strconv.Itoa(jump.port)}
			c, err := testDialer(t).Dial(context.Background(), ep)
			if tc.wantErr {
				if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "jump host") {
					t.Fatalf("err = %v, want a host key refusal naming the jump host", err)
				}
				if jump.handshakes.Load() != before || target.srv.accepted.Load() != targetBefore {
					t.Error("traffic went through an unverified jump host")
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			res, err := c.Run(context.Background(), &Command{Cmd: "fake:exit 0"})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("run through jump: %v %+v", err, res)
			}
			if jump.handshakes.Load() != before+1 || target.srv.accepted.Load() != targetBefore+1 {
				t.Errorf("connections: jump %d, target %d", jump.handshakes.Load()-before, target.srv.accepted.Load()-targetBefore)
			}
		})
	}
}

func TestParseHop(t *testing.T) {
	tests := []struct {
		in         string
		user, host string
		port       int
		bad        bool
	}{
		{in: "bastion", host: "bastion"},
		{in: "ops@bastion:2222", user: "ops", host: "bastion", port: 2222},
		{in: "[::1]:22", host: "::1", port: 22},
		{in: "[fe80::1]", host: "fe80::1"},
		{in: "a@b@host", user: "a@b", host: "host"},
		{in: "host:99999", bad: true},
		{in: "u@", bad: true},
	}
	for _, tc := range tests {
		u, h, p, err := parseHop(tc.in)
		if tc.bad != (err != nil) || (!tc.bad && (u != tc.user || h != tc.host || p != tc.port)) {
			t.Errorf("parseHop(%q) = %q %q %d %v", tc.in, u, h, p, err)
		}
	}
}
