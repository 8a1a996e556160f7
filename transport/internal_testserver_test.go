package transport

// An in-process SSH server on 127.0.0.1:0 for fault injection. Commands named
// "fake:…" are simulated; anything else runs through the real /bin/sh with a
// fake `sudo` first in PATH (see fakeSudo).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
)

type testServer struct {
	t    *testing.T
	ln   net.Listener
	addr string // 127.0.0.1:PORT
	port int

	hostSigners []ssh.Signer
	authorized  [][]byte
	userCA      ssh.PublicKey
	forwarding  bool
	env         []string

	accepted   atomic.Int32 // TCP connections
	handshakes atomic.Int32 // completed SSH handshakes
	execs      atomic.Int32 // exec requests
	signals    chan string  // signals received by fake:stall
	freeze     atomic.Bool  // stop answering global requests

	mu    sync.Mutex
	conns []net.Conn
	quit  chan struct{}
	wg    sync.WaitGroup
}

type serverOpt func(*testServer)

func withHostKeys(s ...ssh.Signer) serverOpt { return func(ts *testServer) { ts.hostSigners = s } }
func withAuthorized(keys ...ssh.PublicKey) serverOpt {
	return func(ts *testServer) {
		for _, k := range keys {
			ts.authorized = append(ts.authorized, k.Marshal())
		}
	}
}
func withUserCA(ca ssh.PublicKey) serverOpt { return func(ts *testServer) { ts.userCA = ca } }
func withForwarding() serverOpt             { return func(ts *testServer) { ts.forwarding = true } }
func withEnv(env ...string) serverOpt {
	return func(ts *testServer) { ts.env = append(ts.env, env...) }
}

func newTestServer(t *testing.T, opts ...serverOpt) *testServer {
	t.Helper()
	ts := &testServer{t: t, quit: make(chan struct{}), signals: make(chan string, 16)}
	for _, o := range opts {
		o(ts)
	}
	if len(ts.hostSigners) == 0 {
		s, _ := newEd25519(t)
		ts.hostSigners = []ssh.Signer{s}
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: ts.checkKey,
		ServerVersion:     "SSH-2.0-drover-testserver",
	}
	for _, s := range ts.hostSigners {
		cfg.AddHostKey(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts.ln = ln
	ts.addr = ln.Addr().String()
	ts.port = ln.Addr().(*net.TCPAddr).Port
	ts.wg.Add(1)
	go ts.serve(cfg)
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if _, ok := key.(*ssh.Certificate); ok && ts.userCA != nil {
		cc := &ssh.CertChecker{IsUserAuthority: func(a ssh.PublicKey) bool {
			return bytes.Equal(a.Marshal(), ts.userCA.Marshal())
		}}
		return cc.Authenticate(meta, key)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, a := range ts.authorized {
		if bytes.Equal(a, key.Marshal()) {
			return &ssh.Permissions{}, nil
		}
	}
	return nil, errors.New("key not authorized")
}

func (ts *testServer) authorize(keys ...ssh.PublicKey) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, k := range keys {
		ts.authorized = append(ts.authorized, k.Marshal())
	}
}

func (ts *testServer) setAuthorized(keys ...ssh.PublicKey) {
	ts.mu.Lock()
	ts.authorized = nil
	ts.mu.Unlock()
	ts.authorize(keys...)
}

func (ts *testServer) Close() {
	select {
	case <-ts.quit:
		return
	default:
	}
	close(ts.quit)
	ts.ln.Close()
	ts.dropAll()
	ts.wg.Wait()
}

// dropAll closes every client connection abruptly, as a crashed or restarted host would.
func (ts *testServer) dropAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.conns {
		c.Close()
	}
	ts.conns = nil
}

func (ts *testServer) serve(cfg *ssh.ServerConfig) {
	defer ts.wg.Done()
	for {
		nc, err := ts.ln.Accept()
		if err != nil {
			return
		}
		ts.accepted.Add(1)
		ts.mu.Lock()
		ts.conns = append(ts.conns, nc)
		ts.mu.Unlock()
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			ts.handleConn(nc, cfg)
		}()
	}
}

func (ts *testServer) handleConn(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	ts.handshakes.Add(1)
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for req := range reqs {
			if ts.freeze.Load() {
				// A frozen host: never answer (and stall the whole connection).
				select {
				case <-ts.quit:
				case <-waitClosed(sc):
				}
				return
			}
			if req.WantReply {
				req.Reply(false, nil) // OpenSSH answers keepalive@openssh.com with failure
			}
		}
	}()
	for nch := range chans {
		if ts.freeze.Load() {
			// Frozen: channel opens go unanswered too, as on a SIGSTOPped sshd.
			select {
			case <-ts.quit:
			case <-waitClosed(sc):
			}
			return
		}
		switch nch.ChannelType() {
		case "session":
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				ts.handleSession(ch, creqs, nc)
			}()
		case "direct-tcpip":
			if !ts.forwarding {
				nch.Reject(ssh.Prohibited, "forwarding disabled")
				continue
			}
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				ts.forward(nch)
			}()
		default:
			nch.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}

func waitClosed(sc *ssh.ServerConn) <-chan struct{} {
	c := make(chan struct{})
	go func() { sc.Wait(); close(c) }()
	return c
}

func (ts *testServer) forward(nch ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
		nch.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	ip := net.ParseIP(p.Host)
	if ip == nil || !ip.IsLoopback() {
		nch.Reject(ssh.Prohibited, "test server forwards to loopback only")
		return
	}
	out, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		out.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, ch); out.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(ch, out); ch.CloseWrite(); done <- struct{}{} }()
	select {
	case <-done:
		<-done
	case <-ts.quit:
	}
	ch.Close()
	out.Close()
}

func exitStatus(ch ssh.Channel, code int) {
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
	ch.Close()
}

func exitSignal(ch ssh.Channel, sig string) {
	ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
		Signal     string
		CoreDumped bool
		Error      string
		Lang       string
	}{sig, false, "", ""}))
	ch.Close()
}

func (ts *testServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request, nc net.Conn) {
	defer ch.Close()
	sigc := make(chan string, 4)
	gone := make(chan struct{})
	started := false
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			started = true
			ts.execs.Add(1)
			req.Reply(true, nil)
			go ts.run(p.Command, ch, sigc, gone, nc)
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &p) == nil {
				select {
				case sigc <- p.Signal:
				default:
				}
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	close(gone)
}

func (ts *testServer) run(cmd string, ch ssh.Channel, sigc <-chan string, gone <-chan struct{}, nc net.Conn) {
	f := strings.Fields(cmd)
	switch {
	case cmd == "fake:echo-stdin":
		io.Copy(ch, ch)
		exitStatus(ch, 0)
	case strings.HasPrefix(cmd, "fake:exit "):
		n, _ := strconv.Atoi(f[1])
		fmt.Fprintf(ch.Stderr(), "exiting %d\n", n)
		exitStatus(ch, n)
	case strings.HasPrefix(cmd, "fake:huge "):
		n, _ := strconv.Atoi(f[1])
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 2048)
		for n > 0 {
			w := min(n, len(chunk))
			if _, err := ch.Write(chunk[:w]); err != nil {
				return
			}
			n -= w
		}
		exitStatus(ch, 0)
	case cmd == "fake:signal":
		io.WriteString(ch, "dying\n")
		exitSignal(ch, "KILL")
	case cmd == "fake:stall":
		io.WriteString(ch, "stalling\n")
		select {
		case sig := <-sigc:
			ts.signals <- sig
			exitSignal(ch, sig)
		case <-gone:
		case <-ts.quit:
		}
	case cmd == "fake:drop":
		io.WriteString(ch, "partial output\n")
		// Wait until the client has the output, then vanish mid-command.
		nc.Close()
	default:
		ts.shell(cmd, ch, sigc)
	}
}

func (ts *testServer) shell(cmd string, ch ssh.Channel, sigc <-chan string) {
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Env = append(os.Environ(), ts.env...)
	c.Stdout, c.Stderr = ch, ch.Stderr()
	c.WaitDelay = 2 * time.Second
	// Like sshd, don't make the exit wait for the client's stdin EOF.
	stdin, err := c.StdinPipe()
	if err != nil {
		exitStatus(ch, 127)
		return
	}
	go func() { io.Copy(stdin, ch); stdin.Close() }()
	if err := c.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "start: %v\n", err)
		exitStatus(ch, 127)
		return
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-sigc:
			c.Process.Kill()
		case <-done:
		}
	}()
	err = c.Wait()
	close(done)
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exitSignal(ch, strings.TrimPrefix(strings.ToUpper(ws.Signal().String()), "SIG"))
		return
	}
	_ = err
	exitStatus(ch, c.ProcessState.ExitCode())
}

// silentListener accepts TCP connections and never says anything: no banner.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// fakeSudo writes a POSIX sh stand-in for sudo that understands exactly the
// arguments drover passes. FAKE_SUDO_PASSWORD is the valid password;
// FAKE_SUDO_NOPASSWD=1 behaves like a NOPASSWD rule.
const fakeSudo = `#!/bin/sh
mode=; prompt=; user=
while [ $# -gt 0 ]; do
  case "$1" in
    -S) mode=S;; -n) mode=n;; -H) ;;
    -p) shift; prompt=$1;;
    -u) shift; user=$1;;
    --) shift; break;;
    *) echo "fake sudo: unexpected argument $1" >&2; exit 99;;
  esac
  shift
done
if [ -z "$FAKE_SUDO_NOPASSWD" ]; then
  if [ "$mode" = n ]; then echo "sudo: a password is required" >&2; exit 1; fi
  tries=0
  while :; do
    printf '%s' "$prompt" >&2
    IFS= read -r pw || { echo "sudo: no password was provided" >&2; exit 1; }
    [ "$pw" = "$FAKE_SUDO_PASSWORD" ] && break
    tries=$((tries+1))
    echo "Sorry, try again." >&2
    [ $tries -ge 3 ] && { echo "sudo: 3 incorrect password attempts" >&2; exit 1; }
  done
fi
FAKE_SUDO_USER=$user exec "$@"
`

// fakeSudoEnv installs fakeSudo and returns the environment that puts it first in PATH.
func fakeSudoEnv(t *testing.T, password string, nopasswd bool) []string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sudo"), []byte(fakeSudo), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "FAKE_SUDO_PASSWORD=" + password}
	if nopasswd {
		env = append(env, "FAKE_SUDO_NOPASSWD=1")
	}
	return env
}

// ---- keys and files ----

func newEd25519(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

func newECDSA(t *testing.T) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeKey stores priv in OpenSSH format (encrypted when passphrase != "").
func writeKey(t *testing.T, path string, priv ed25519.PrivateKey, passphrase string) {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

// signCert issues a certificate for key signed by ca.
func signCert(t *testing.T, ca ssh.Signer, key ssh.PublicKey, typ uint32, principals ...string) *ssh.Certificate {
	t.Helper()
	c := &ssh.Certificate{
		Key:             key,
		Serial:          1,
		CertType:        typ,
		KeyId:           "test",
		ValidPrincipals: principals,
		ValidAfter:      uint64(time.Now().Add(-time.Hour).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return c
}

// fixture is a client identity plus a server that trusts it.
type fixture struct {
	dir        string
	keyFile    string
	clientKey  ssh.Signer
	knownHosts string
	srv        *testServer
}

// newFixture starts a server trusting a fresh client key and writes a
// known_hosts that knows the server.
func newFixture(t *testing.T, opts ...serverOpt) *fixture {
	t.Helper()
	dir := t.TempDir()
	signer, priv := newEd25519(t)
	f := &fixture{dir: dir, keyFile: filepath.Join(dir, "id_ed25519"), clientKey: signer,
		knownHosts: filepath.Join(dir, "known_hosts")}
	writeKey(t, f.keyFile, priv, "")
	f.srv = newTestServer(t, append([]serverOpt{withAuthorized(signer.PublicKey())}, opts...)...)
	f.writeKnownHosts(t, lineFor(f.srv.addr, f.srv.hostSigners[0].PublicKey()))
	return f
}

// lineFor is a known_hosts line for addr ("127.0.0.1:PORT" becomes "[127.0.0.1]:PORT").
func lineFor(addr string, k ssh.PublicKey) string {
	return knownhosts.Line([]string{addr}, k)
}

func (f *fixture) writeKnownHosts(t *testing.T, lines ...string) {
	t.Helper()
	if err := os.WriteFile(f.knownHosts, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) endpoint() *Endpoint {
	return &Endpoint{
		Alias:                 "h1",
		HostName:              "127.0.0.1",
		Port:                  f.srv.port,
		User:                  "tester",
		IdentityFiles:         []string{f.keyFile},
		UserKnownHostsFiles:   []string{f.knownHosts},
		StrictHostKeyChecking: HostKeyStrict,
		ConnectTimeout:        5 * time.Second,
	}
}

func testDialer(t *testing.T) *Dialer {
	return NewDialer(DialerOptions{AgentSocket: "none", Logf: t.Logf})
}

func (f *fixture) dial(t *testing.T) *Conn {
	t.Helper()
	c, err := testDialer(t).Dial(context.Background(), f.endpoint())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
