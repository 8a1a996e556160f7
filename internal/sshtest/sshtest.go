// Package sshtest runs in-process SSH servers on loopback that misbehave on
// purpose (refuse, stay silent, stall, refuse keys, show another host key, drop
// the connection, hang or flood a command), so tests of any package can drive
// drover's real transport against broken hosts. It is the server side only:
// clients verify host keys against the known_hosts file a Fleet writes.
package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Fault is how a server misbehaves.
type Fault int

// Connection-level faults act on every connection; command-level faults act on
// commands whose text contains Options.Trigger (all commands when it is empty);
// other commands run normally through /bin/sh.
const (
	None            Fault = iota // a working host: commands run through /bin/sh
	Refuse                       // nothing listens on the port: connection refused
	Silent                       // TCP accepted, never an SSH banner
	StallHandshake               // banner sent, then silence (no key exchange)
	AuthRefused                  // every public key is refused
	WrongHostKey                 // serves a host key other than the one in known_hosts
	ResetMidCommand              // prints a line, then resets the TCP connection
	HangCommand                  // never finishes until signalled or the session ends
	Flood                        // prints Options.FloodBytes to stdout, then exits 0
)

var faultNames = [...]string{"none", "refuse", "silent", "stall-handshake", "auth-refused",
	"wrong-host-key", "reset-mid-command", "hang-command", "flood"}

func (f Fault) String() string {
	if int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Options configure one server.
type Options struct {
	Fault      Fault
	Trigger    string // command-level faults hit commands containing it; "": every command
	FloodBytes int64  // for Flood
	Addr       string // listen address; "" is 127.0.0.1:0
}

// User is the login name the servers accept (any name works; configs use this one).
const User = "drover-test"

// Fleet is a client identity and the servers that trust it. Its Dir holds the
// client key, a known_hosts file with every server's key, and ssh_config.
type Fleet struct {
	t          testing.TB
	Dir        string
	KeyFile    string // the client's private key (OpenSSH format, unencrypted)
	KnownHosts string
	clientKey  ssh.PublicKey

	mu      sync.Mutex
	servers []*Server
}

// NewFleet makes a client identity in a temporary directory. Servers added to
// it are closed when the test ends.
func NewFleet(t testing.TB) *Fleet {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: client key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sshtest")
	if err != nil {
		t.Fatalf("sshtest: marshal client key: %v", err)
	}
	f := &Fleet{t: t, Dir: dir, KeyFile: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts")}
	if err := os.WriteFile(f.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	if f.clientKey, err = ssh.NewPublicKey(pub); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	if err := os.WriteFile(f.KnownHosts, nil, 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return f
}

// Server is one fault server.
type Server struct {
	Name  string // the ssh_config alias
	Host  string // 127.0.0.1
	Port  int
	Fault Fault

	opts     Options
	cfg      *ssh.ServerConfig
	ln       net.Listener // nil for Refuse
	quit     chan struct{}
	wg       sync.WaitGroup
	accepted atomic.Int32
	execs    atomic.Int32
	faulted  atomic.Int32

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	once  sync.Once
}

// Add starts a server called name with the given fault and records its host key
// in the fleet's known_hosts (for WrongHostKey, a different key than it serves).
func (f *Fleet) Add(name string, o Options) *Server {
	f.t.Helper()
	s := &Server{Name: name, Fault: o.Fault, opts: o, quit: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		f.t.Fatalf("sshtest: listen %s: %v", addr, err)
	}
	ta := ln.Addr().(*net.TCPAddr)
	s.Host, s.Port = ta.IP.String(), ta.Port
	if o.Fault == Refuse {
		// The port was ours a moment ago and is now closed: connects are refused.
		ln.Close()
	} else {
		s.ln = ln
	}

	served := newSigner(f.t)
	known := served.PublicKey()
	if o.Fault == WrongHostKey {
		known = newSigner(f.t).PublicKey() // what the operator trusted before the host changed
	}
	s.cfg = &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-OpenSSH_9.2p1 sshtest",
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if o.Fault != AuthRefused && bytes.Equal(k.Marshal(), f.clientKey.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	s.cfg.AddHostKey(served)

	f.mu.Lock()
	defer f.mu.Unlock()
	line := knownhosts.Line([]string{net.JoinHostPort(s.Host, fmt.Sprint(s.Port))}, known)
	kh, err := os.OpenFile(f.KnownHosts, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		f.t.Fatalf("sshtest: %v", err)
	}
	_, err = fmt.Fprintln(kh, line)
	if cerr := kh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.t.Fatalf("sshtest: write known_hosts: %v", err)
	}
	f.servers = append(f.servers, s)
	if s.ln != nil {
		s.wg.Add(1)
		go s.serve()
	}
	f.t.Cleanup(s.Close)
	return s
}

// SSHConfig writes an ssh_config naming every server of the fleet by its Name
// (address, port, user, key, known_hosts, strict checking, no agent) and
// returns its path.
func (f *Fleet) SSHConfig() string {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, s := range f.servers {
		fmt.Fprintf(&b, "Host %s\n  HostName %s\n  Port %d\n", s.Name, s.Host, s.Port)
	}
	fmt.Fprintf(&b, "Host *\n  User %s\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n",
		User, f.KeyFile, f.KnownHosts)
	path := filepath.Join(f.Dir, "ssh_config")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		f.t.Fatalf("sshtest: %v", err)
	}
	return path
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, fmt.Sprint(s.Port)) }

// Accepted counts TCP connections accepted.
func (s *Server) Accepted() int { return int(s.accepted.Load()) }

// Execs counts exec requests.
func (s *Server) Execs() int { return int(s.execs.Load()) }

// Faulted counts commands that got the server's command-level fault.
func (s *Server) Faulted() int { return int(s.faulted.Load()) }

// Close stops listening, drops every connection and waits for the server's
// goroutines (and the commands they ran) to end.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.quit)
		if s.ln != nil {
			s.ln.Close()
		}
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		select {
		case <-s.quit:
			s.mu.Unlock()
			nc.Close()
			return
		default:
		}
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
				nc.Close()
			}()
			s.handle(nc)
		}()
	}
}

func (s *Server) handle(nc net.Conn) {
	switch s.Fault {
	case Silent:
		// Read (so the client closing is noticed) and never answer.
		_, _ = io.Copy(io.Discard, nc)
		return
	case StallHandshake:
		if _, err := io.WriteString(nc, s.cfg.ServerVersion+"\r\n"); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, nc)
		return
	}
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for req := range reqs {
			if req.WantReply {
				req.Reply(false, nil) // as OpenSSH answers keepalive@openssh.com
			}
		}
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "sshtest serves sessions only")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(ch, creqs, nc)
		}()
	}
}

// session serves one channel: an exec request, then signals.
func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request, nc net.Conn) {
	defer ch.Close()
	sigc := make(chan string, 4)
	gone := make(chan struct{})
	var cmdDone chan struct{}
	defer func() {
		close(gone)
		if cmdDone != nil {
			<-cmdDone
		}
	}()
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if cmdDone != nil || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			s.execs.Add(1)
			req.Reply(true, nil)
			cmdDone = make(chan struct{})
			go func() {
				defer close(cmdDone)
				s.exec(p.Command, ch, sigc, gone, nc)
			}()
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
}

func (s *Server) triggered(cmd string) bool {
	return s.opts.Trigger == "" || strings.Contains(cmd, s.opts.Trigger)
}

func (s *Server) exec(cmd string, ch ssh.Channel, sigc <-chan string, gone <-chan struct{}, nc net.Conn) {
	if !s.triggered(cmd) || s.Fault < ResetMidCommand {
		s.shell(cmd, ch, sigc, gone)
		return
	}
	s.faulted.Add(1)
	switch s.Fault {
	case ResetMidCommand:
		_, _ = io.WriteString(ch, "partial output\n")
		// A crashed host: RST rather than FIN, and no exit status.
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		nc.Close()
	case HangCommand:
		_, _ = io.WriteString(ch, "hanging\n")
		select {
		case sig := <-sigc:
			exitSignal(ch, sig)
		case <-gone:
		case <-s.quit:
		}
	case Flood:
		chunk := bytes.Repeat([]byte("sshtest flood 0123456789abcdef\n"), 1<<10)
		for n := s.opts.FloodBytes; n > 0; {
			w := min(n, int64(len(chunk)))
			if _, err := ch.Write(chunk[:w]); err != nil {
				return
			}
			n -= w
		}
		exitStatus(ch, 0)
	}
}

// shell runs cmd with /bin/sh as the connecting user's shell would.
func (s *Server) shell(cmd string, ch ssh.Channel, sigc <-chan string, gone <-chan struct{}) {
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Stdout, c.Stderr = ch, ch.Stderr()
	c.WaitDelay = 2 * time.Second
	stdin, err := c.StdinPipe()
	if err != nil {
		exitStatus(ch, 127)
		return
	}
	if err := c.Start(); err != nil {
		fmt.Fprintf(ch.Stderr(), "sshtest: start: %v\n", err)
		exitStatus(ch, 127)
		return
	}
	// Like sshd, the exit does not wait for the client's stdin EOF.
	go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
	done := make(chan struct{})
	go func() {
		select {
		case <-sigc:
		case <-gone:
		case <-s.quit:
		case <-done:
			return
		}
		_ = c.Process.Kill()
	}()
	_ = c.Wait()
	close(done)
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exitSignal(ch, signalName(ws.Signal()))
		return
	}
	exitStatus(ch, c.ProcessState.ExitCode())
}

// signalName is the SSH name of sig (RFC 4254 §6.10: without "SIG").
func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGPIPE:
		return "PIPE"
	}
	return fmt.Sprintf("SIG%d", int(sig))
}

func exitStatus(ch ssh.Channel, code int) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
	ch.Close()
}

func exitSignal(ch ssh.Channel, sig string) {
	_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
		Signal     string
		CoreDumped bool
		Error      string
		Lang       string
	}{sig, false, "", ""}))
	ch.Close()
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: host key: %v", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("sshtest: host key: %v", err)
	}
	return s
}
