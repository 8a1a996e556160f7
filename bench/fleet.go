package bench

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// FleetHost is one simulated host: its name and where it listens.
type FleetHost struct {
	Name string `json:"name"`
	Addr string `json:"addr"` // 127.2.X.Y
	Port int    `json:"port"`
}

// Fleet is a set of in-process SSH servers, one listener per loopback address,
// each with its own ed25519 host key. They answer `sh -s` (drover's fact gatherer)
// with a canned gatherer stream and every other command with a kernel release.
type Fleet struct {
	Hosts      []FleetHost
	KnownHosts []byte // one known_hosts line per host

	listeners []net.Listener
	wg        sync.WaitGroup
	facts     FactsReply
}

// FactsReply answers a gatherer script with its output; the fleet passes the
// script the client sent (it carries the stream's boundary).
type FactsReply func(script []byte) []byte

// KernelRelease is what every fleet host prints for a command other than `sh -s`.
const KernelRelease = "6.1.0-fleet"

// FleetAddr is the loopback address of host i (0-based): 127.2.X.Y, 250 per /24.
func FleetAddr(i int) string {
	return fmt.Sprintf("127.2.%d.%d", i/250, i%250+1)
}

// StartFleet starts n servers that accept clientKey. facts may be nil (then `sh -s`
// prints nothing and exits 0).
func StartFleet(n int, clientKey ssh.PublicKey, facts FactsReply) (*Fleet, error) {
	return StartFleetAt(0, n, clientKey, facts)
}

// StartFleetAt starts hosts first+1..first+n (addresses FleetAddr(first)…), so
// several processes can serve one fleet: each listener and each connection is a
// file descriptor, and a process may hold only so many.
func StartFleetAt(first, n int, clientKey ssh.PublicKey, facts FactsReply) (*Fleet, error) {
	if n < 1 || first < 0 || first+n > 250*250 {
		return nil, fmt.Errorf("fleet: %d hosts: want 1..62500", n)
	}
	f := &Fleet{facts: facts}
	want := clientKey.Marshal()
	var kh bytes.Buffer
	for i := first; i < first+n; i++ {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleet: host key: %w", err)
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleet: host key: %w", err)
		}
		cfg := &ssh.ServerConfig{
			PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
				if bytes.Equal(k.Marshal(), want) {
					return nil, nil
				}
				return nil, errors.New("unknown key")
			},
		}
		cfg.AddHostKey(signer)
		addr := FleetAddr(i)
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleet: listen on %s (raise RLIMIT_NOFILE?): %w", addr, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		f.listeners = append(f.listeners, ln)
		h := FleetHost{Name: "f" + strconv.Itoa(i+1), Addr: addr, Port: port}
		f.Hosts = append(f.Hosts, h)
		kh.WriteString(knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(addr, strconv.Itoa(port)))}, signer.PublicKey()) + "\n")
		f.wg.Add(1)
		go f.serve(ln, cfg)
	}
	f.KnownHosts = kh.Bytes()
	return f, nil
}

// Close stops accepting; connections in progress end with their clients.
func (f *Fleet) Close() {
	for _, ln := range f.listeners {
		ln.Close()
	}
	f.wg.Wait()
}

func (f *Fleet) serve(ln net.Listener, cfg *ssh.ServerConfig) {
	defer f.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go f.handle(nc, cfg)
	}
}

func (f *Fleet) handle(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go f.session(ch, creqs)
	}
}

func (f *Fleet) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(req.Type == "env", nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		if strings.TrimSpace(payload.Command) == "sh -s" {
			script, _ := io.ReadAll(ch)
			if f.facts != nil {
				ch.Write(f.facts(script))
			}
		} else {
			go io.Copy(io.Discard, ch) // drain stdin so the client's EOF is read
			io.WriteString(ch, KernelRelease+"\n")
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
		return
	}
}

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to at least n (up to the hard
// limit): a fleet of 10,000 needs a descriptor per listener and per connection.
func RaiseFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= n {
		return nil
	}
	if lim.Max < n {
		return fmt.Errorf("need %d file descriptors, the hard limit is %d", n, lim.Max)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit nofile %d: %w", n, err)
	}
	return nil
}
