package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

func TestHostKeyVerification(t *testing.T) {
	hostKey, _ := newEd25519(t)
	ecdsaKey := newECDSA(t)
	otherKey, _ := newEd25519(t)
	hostCA, _ := newEd25519(t)
	wrongCA, _ := newEd25519(t)

	certSigner := func(ca ssh.Signer) ssh.Signer {
		c := signCert(t, ca, hostKey.PublicKey(), ssh.HostCert, "127.0.0.1")
		s, err := ssh.NewCertSigner(c, hostKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name     string
		hostKeys []ssh.Signer
		policy   string
		lines    func(addr string) []string
		reason   string // "" = must connect
		want     []string
	}{
		{
			name: "strict unknown refused", hostKeys: []ssh.Signer{hostKey}, policy: HostKeyStrict,
			lines:  func(addr string) []string { return []string{lineFor("127.0.0.9:22", otherKey.PublicKey())} },
			reason: HostKeyUnknown, want: []string{"ssh-keyscan", "accept-new", ssh.FingerprintSHA256(hostKey.PublicKey())},
		},
		{
			name: "ask is strict", hostKeys: []ssh.Signer{hostKey}, policy: "ask",
			lines:  func(addr string) []string { return nil },
			reason: HostKeyUnknown,
		},
		{
			name: "changed key refused with file:line", hostKeys: []ssh.Signer{hostKey}, policy: HostKeyStrict,
			lines: func(addr string) []string {
				return []string{lineFor("127.0.0.9:22", hostKey.PublicKey()), lineFor(addr, otherKey.PublicKey())}
			},
			reason: HostKeyChanged, want: []string{"known_hosts:2", "HAS CHANGED", ssh.FingerprintSHA256(hostKey.PublicKey())},
		},
		{
			name: "changed key refused under accept-new", hostKeys: []ssh.Signer{hostKey}, policy: HostKeyAcceptNew,
			lines:  func(addr string) []string { return []string{lineFor(addr, otherKey.PublicKey())} },
			reason: HostKeyChanged, want: []string{"known_hosts:1"},
		},
		{
			name: "changed key refused under no", hostKeys: []ssh.Signer{hostKey}, policy: "no",
			lines:  func(addr string) []string { return []string{lineFor(addr, otherKey.PublicKey())} },
			reason: HostKeyChanged,
		},
		{
			name: "bracketed host:port entry", hostKeys: []ssh.Signer{hostKey}, policy: HostKeyStrict,
			lines: func(addr string) []string {
				l := lineFor(addr, hostKey.PublicKey())
				if !strings.HasPrefix(l, "[127.0.0.1]:") {
					t.Fatalf("expected a [host]:port entry, got %q", l)
				}
				return []string{l}
			},
		},
		{
			name: "port-22 entry does not match another port", hostKeys: []ssh.Signer{hostKey}, policy: HostKeyStrict,
			lines:  func(addr string) []string { return []string{lineFor("127.0.0.1:22", hostKey.PublicKey())} },
			reason: HostKeyUnknown,
		},
		{
			name: "hashed entry", hostKeys: []ssh.Signer{hostKey}, policy: HostKeyStrict,
			lines: func(addr string) []string {
				hashed := xknownhosts.HashHostname(xknownhosts.Normalize(addr))
				return []string{knownhosts.Line([]string{hashed}, hostKey.PublicKey())}
			},
		},
		{
			name: "hashed entry with a different key", hostKeys: []ssh.Signer{hostKey}, policy: HostKeyStrict,
			lines: func(addr string) []string {
				hashed := xknownhosts.HashHostname(xknownhosts.Normalize(addr))
				return []string{knownhosts.Line([]string{hashed}, otherKey.PublicKey())}
			},
			reason: HostKeyChanged, want: []string{"known_hosts:1"},
		},
		{
			name: "cert-authority host certificate", hostKeys: []ssh.Signer{certSigner(hostCA)}, policy: HostKeyStrict,
			lines: func(addr string) []string {
				return []string{"@cert-authority " + knownhosts.Line([]string{addr}, hostCA.PublicKey())}
			},
		},
		{
			name: "host certificate from an unknown CA", hostKeys: []ssh.Signer{certSigner(wrongCA)}, policy: HostKeyStrict,
			lines: func(addr string) []string {
				return []string{"@cert-authority " + knownhosts.Line([]string{addr}, hostCA.PublicKey())}
			},
			reason: HostKeyBadCert,
		},
		{
			name: "revoked key", hostKeys: []ssh.Signer{hostKey}, policy: HostKeyAcceptNew,
			lines: func(addr string) []string {
				return []string{lineFor(addr, hostKey.PublicKey()), "@revoked * " + strings.SplitN(lineFor(addr, hostKey.PublicKey()), " ", 2)[1]}
			},
			reason: HostKeyRevoked, want: []string{"known_hosts:2", "@revoked"},
		},
		{
			// x/crypto's default preference puts ECDSA before Ed25519, so without
			// HostKeyAlgorithms from known_hosts this would be a spurious mismatch.
			name: "two key types, only the less preferred known", hostKeys: []ssh.Signer{ecdsaKey, hostKey}, policy: HostKeyStrict,
			lines: func(addr string) []string { return []string{lineFor(addr, hostKey.PublicKey())} },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, withHostKeys(tc.hostKeys...))
			f.writeKnownHosts(t, tc.lines(f.srv.addr)...)
			ep := f.endpoint()
			ep.StrictHostKeyChecking = tc.policy
			c, err := testDialer(t).Dial(context.Background(), ep)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				if _, err := c.Ping(context.Background()); err != nil {
					t.Fatalf("ping: %v", err)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded, want a host key refusal")
			}
			if !errors.Is(err, ErrHostKey) {
				t.Fatalf("error %v is not ErrHostKey", err)
			}
			var he *HostKeyError
			if !errors.As(err, &he) || he.Reason != tc.reason {
				t.Fatalf("got %#v, want reason %q", he, tc.reason)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if f.srv.handshakes.Load() != 0 {
				t.Errorf("client authenticated to a host it refused")
			}
		})
	}
}

func TestAcceptNewRecordsOnceUnderConcurrency(t *testing.T) {
	f := newFixture(t)
	khDir := filepath.Join(f.dir, "fresh", ".ssh")
	kh := filepath.Join(khDir, "known_hosts")
	ep := f.endpoint()
	ep.UserKnownHostsFiles = []string{kh}
	ep.StrictHostKeyChecking = HostKeyAcceptNew

	// Two dialers: the in-process mutex covers one, the file lock both.
	dialers := []*Dialer{testDialer(t), testDialer(t)}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialers[i%2].Dial(context.Background(), ep)
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("dial: %v", err)
	}

	lines := readLines(t, kh)
	if len(lines) != 1 {
		t.Fatalf("known_hosts has %d lines, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if want := lineFor(f.srv.addr, f.srv.hostSigners[0].PublicKey()); lines[0] != want {
		t.Errorf("recorded %q, want %q", lines[0], want)
	}
	assertMode(t, kh, 0o600)
	assertMode(t, khDir, 0o700|os.ModeDir)

	// The recorded key now satisfies strict checking.
	ep.StrictHostKeyChecking = HostKeyStrict
	c, err := testDialer(t).Dial(context.Background(), ep)
	if err != nil {
		t.Fatalf("strict dial after accept-new: %v", err)
	}
	c.Close()
}

func TestAcceptNewAppendsAfterUnterminatedLine(t *testing.T) {
	f := newFixture(t)
	other, _ := newEd25519(t)
	first := lineFor("10.9.9.9:22", other.PublicKey())
	if err := os.WriteFile(f.knownHosts, []byte(first), 0o600); err != nil { // no trailing newline
		t.Fatal(err)
	}
	ep := f.endpoint()
	ep.StrictHostKeyChecking = "no"
	c, err := testDialer(t).Dial(context.Background(), ep)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	lines := readLines(t, f.knownHosts)
	if len(lines) != 2 || lines[0] != first {
		t.Fatalf("known_hosts = %q, want the old line kept and one new line", lines)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != want {
		t.Errorf("%s mode %v, want %v", path, st.Mode(), want)
	}
}

func TestHostKeyErrorMessage(t *testing.T) {
	e := &HostKeyError{Host: "127.0.0.1:2222", File: "/k/known_hosts", Line: 7, KeyType: "ssh-ed25519",
		Fingerprint: "SHA256:abc", Reason: HostKeyChanged}
	wrapped := fmt.Errorf("web1: %w", e)
	if !errors.Is(wrapped, ErrHostKey) {
		t.Error("HostKeyError does not match ErrHostKey")
	}
	for _, w := range []string{"/k/known_hosts:7", "SHA256:abc", "ssh-keygen -R '[127.0.0.1]:2222' -f /k/known_hosts"} {
		if !strings.Contains(e.Error(), w) {
			t.Errorf("message %q lacks %q", e.Error(), w)
		}
	}
}
