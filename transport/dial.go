package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// clientVersion is the SSH identification string drover sends.
const clientVersion = "SSH-2.0-drover"

// DialerOptions configure a Dialer. The zero value is usable.
type DialerOptions struct {
	Config      *SSHConfig                           // resolves jump hosts by alias; nil = none
	AgentSocket string                               // "" = $SSH_AUTH_SOCK; "none" = no agent
	Passphrase  func(keyFile string) ([]byte, error) // asked when $DROVER_KEY_PASSPHRASE is unset; nil: the key is skipped with a clear error
	Logf        func(format string, args ...any)     // optional debug log; never given secrets
}

// Dialer opens verified, authenticated SSH connections. It is safe for
// concurrent use; it caches decrypted keys and serialises known_hosts writes.
type Dialer struct {
	opts     DialerOptions
	khMu     sync.Mutex // serialises accept-new writes within the process
	keyMu    sync.Mutex
	keyCache map[string]ssh.Signer // decrypted identity files by path
	kh       khCache               // parsed known_hosts, reused while the files are unchanged
}

// NewDialer returns a Dialer using o.
func NewDialer(o DialerOptions) *Dialer {
	return &Dialer{opts: o, keyCache: make(map[string]ssh.Signer)}
}

func (d *Dialer) logf(format string, args ...any) {
	if d.opts.Logf != nil {
		d.opts.Logf(format, args...)
	}
}

// Dial connects (through every ProxyJump hop, each hop's host key verified by its
// own Endpoint's policy), verifies the host key, authenticates, and returns the
// connection.
func (d *Dialer) Dial(ctx context.Context, ep *Endpoint) (*Conn, error) {
	l, err := d.connect(ctx, ep)
	if err != nil {
		return nil, err
	}
	return newConn(d, ep, l), nil
}

// connect builds the chain of clients: each jump host, then the target.
func (d *Dialer) connect(ctx context.Context, ep *Endpoint) (*link, error) {
	if ep == nil || ep.HostName == "" {
		return nil, errors.New("dial: endpoint has no host name")
	}
	hops, err := d.jumpEndpoints(ep)
	if err != nil {
		return nil, err
	}
	var chain []*ssh.Client
	closeChain := func() {
		for i := len(chain) - 1; i >= 0; i-- {
			chain[i].Close()
		}
	}
	var via *ssh.Client
	for _, hop := range hops {
		cl, err := d.handshake(ctx, hop, via)
		if err != nil {
			closeChain()
			return nil, fmt.Errorf("%s: via jump host %s: %w", name(ep), name(hop), err)
		}
		chain = append(chain, cl)
		via = cl
	}
	cl, err := d.handshake(ctx, ep, via)
	if err != nil {
		closeChain()
		return nil, err
	}
	return newLink(cl, chain), nil
}

// backstop says whether the caller's deadline is no earlier than the connect
// timeout's own (a caller bounding the dial by the same connect timeout): then
// the connect timeout is what expired, and its message is the clearer one.
func backstop(ctx context.Context, ep *Endpoint, started time.Time) bool {
	outer, ok := ctx.Deadline()
	if !ok || ep.ConnectTimeout <= 0 || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return false
	}
	own := started.Add(ep.ConnectTimeout)
	// The caller set its deadline a moment before ours: allow for that moment.
	return !outer.Before(own.Add(-100 * time.Millisecond))
}

// name is how errors refer to an endpoint: the alias, with the address when it differs.
func name(ep *Endpoint) string {
	addr := net.JoinHostPort(ep.HostName, strconv.Itoa(portOr22(ep.Port)))
	if ep.Alias == "" || ep.Alias == ep.HostName {
		return addr
	}
	return ep.Alias + " (" + addr + ")"
}

func portOr22(p int) int {
	if p <= 0 {
		return 22
	}
	return p
}

// jumpEndpoints resolves ep.ProxyJump hops. With a Config each hop is resolved as
// an ssh_config alias; without one, a hop inherits the target's identities,
// known_hosts files, policy and timeouts. A hop's own ProxyJump is ignored: the
// list is already the full path, as with `ssh -J a,b`.
func (d *Dialer) jumpEndpoints(ep *Endpoint) ([]*Endpoint, error) {
	var out []*Endpoint
	for _, spec := range ep.ProxyJump {
		spec = strings.TrimSpace(spec)
		if spec == "" || strings.EqualFold(spec, "none") {
			continue
		}
		u, host, port, err := parseHop(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: ProxyJump %q: %w", name(ep), spec, err)
		}
		var hop *Endpoint
		if d.opts.Config != nil {
			hop, err = d.opts.Config.Resolve(host, Overrides{User: u, Port: port})
			if err != nil {
				return nil, fmt.Errorf("%s: resolve jump host %q: %w", name(ep), spec, err)
			}
			cp := *hop
			hop = &cp
			// A hop without its own ConnectTimeout gets the target's, so --connect-timeout
			// bounds every hop and a dead jump host is reported on time.
			if hop.ConnectTimeout == 0 {
				hop.ConnectTimeout = ep.ConnectTimeout
			}
		} else {
			cp := *ep
			hop = &cp
			hop.Alias, hop.HostName, hop.Port, hop.User = host, host, portOr22(port), u
			if hop.User == "" {
				if cur, err := user.Current(); err == nil {
					hop.User = cur.Username
				}
			}
		}
		hop.ProxyJump = nil
		out = append(out, hop)
	}
	return out, nil
}

// parseHop splits "[user@]host[:port]" (IPv6 hosts in brackets).
func parseHop(spec string) (u, host string, port int, err error) {
	if i := strings.LastIndex(spec, "@"); i >= 0 {
		u, spec = spec[:i], spec[i+1:]
	}
	host = spec
	if h, p, splitErr := net.SplitHostPort(spec); splitErr == nil {
		host = h
		port, err = strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return "", "", 0, fmt.Errorf("bad port %q", p)
		}
	} else if strings.HasPrefix(spec, "[") && strings.HasSuffix(spec, "]") {
		host = spec[1 : len(spec)-1]
	}
	if host == "" {
		return "", "", 0, errors.New("empty host")
	}
	return u, host, port, nil
}

// handshake connects to ep (directly, or through via with direct-tcpip), then
// verifies the host key and authenticates. ConnectTimeout bounds the TCP connect
// and the whole SSH handshake: a server that accepts but never sends a banner
// is cut off by closing the socket.
func (d *Dialer) handshake(ctx context.Context, ep *Endpoint, via *ssh.Client) (*ssh.Client, error) {
	addr := net.JoinHostPort(ep.HostName, strconv.Itoa(portOr22(ep.Port)))
	who := name(ep)
	started := time.Now()
	hctx, cancel := ctx, context.CancelFunc(func() {})
	if ep.ConnectTimeout > 0 {
		hctx, cancel = context.WithTimeout(ctx, ep.ConnectTimeout)
	}
	defer cancel()

	aborted := func(cause error) error {
		if err := ctx.Err(); err != nil && !backstop(ctx, ep, started) {
			return fmt.Errorf("connect to %s: %w", who, err)
		}
		return fmt.Errorf("connect to %s: no SSH handshake within %s (%v): %w", who, ep.ConnectTimeout, cause, ErrUnreachable)
	}

	var conn net.Conn
	var err error
	if via == nil {
		var nd net.Dialer
		conn, err = nd.DialContext(hctx, "tcp", addr)
	} else {
		conn, err = via.DialContext(hctx, "tcp", addr)
	}
	if err != nil {
		if hctx.Err() != nil {
			return nil, aborted(err)
		}
		return nil, fmt.Errorf("connect to %s: %w: %w", who, ErrUnreachable, err)
	}

	hc, err := d.newHostKeyChecker(ep, addr)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	plan := d.buildAuth(ep)
	defer plan.close()
	d.logf("dial %s as %s: host key policy %s, %s", who, ep.User, hc.policy, plan.describe())

	cfg := &ssh.ClientConfig{
		User:              ep.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(plan.signers...)},
		HostKeyCallback:   hc.check,
		HostKeyAlgorithms: hc.algorithms(),
		ClientVersion:     clientVersion,
	}
	stop := context.AfterFunc(hctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		// The watchdog fired: the socket is closed whatever the handshake said.
		if err == nil {
			sc.Close()
		}
		return nil, aborted(err)
	}
	if err != nil {
		conn.Close()
		switch {
		case hc.err != nil:
			return nil, fmt.Errorf("%s: %w", who, hc.err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("%s: %w as %q: %s", who, ErrAuth, ep.User, plan.describe())
		default:
			return nil, fmt.Errorf("%s: ssh handshake: %w: %w", who, ErrUnreachable, err)
		}
	}
	return ssh.NewClient(sc, chans, reqs), nil
}
