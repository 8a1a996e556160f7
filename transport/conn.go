package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	keepaliveRequest = "keepalive@openssh.com"
	defaultAliveMax  = 3 // OpenSSH's ServerAliveCountMax default
	// windDown bounds how long a killed or cancelled command may take to report
	// back before Run returns without it (a frozen host never will).
	windDown = time.Second
)

// link is one live chain of SSH clients (jump hosts, then the target) and the
// goroutines watching it. A Conn replaces its link when it reconnects.
type link struct {
	client *ssh.Client
	jumps  []*ssh.Client
	dead   chan struct{} // closed once the target connection has ended
	once   sync.Once
}

func newLink(cl *ssh.Client, jumps []*ssh.Client) *link {
	l := &link{client: cl, jumps: jumps, dead: make(chan struct{})}
	return l
}

func (l *link) close() {
	l.once.Do(func() {
		l.client.Close()
		for i := len(l.jumps) - 1; i >= 0; i-- {
			l.jumps[i].Close()
		}
	})
}

func (l *link) isDead() bool {
	select {
	case <-l.dead:
		return true
	default:
		return false
	}
}

// probe does one global request round trip; an error means the connection is
// gone (or ctx ended first).
func (l *link) probe(ctx context.Context) error {
	errc := make(chan error, 1) // buffered: the sender never blocks after we stop listening
	go func() {
		_, _, err := l.client.SendRequest(keepaliveRequest, true, nil)
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("%w: %w", ErrConnLost, err)
		}
		return nil
	case <-l.dead:
		return ErrConnLost
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Conn is one host's SSH connection; every command and upload is a session on
// it. It implements Runner and is safe for concurrent use.
type Conn struct {
	d  *Dialer
	ep *Endpoint

	mu     sync.Mutex
	cur    *link
	closed bool
	wg     sync.WaitGroup // watcher and keepalive goroutines
}

var _ Runner = (*Conn)(nil)

func newConn(d *Dialer, ep *Endpoint, l *link) *Conn {
	c := &Conn{d: d, ep: ep}
	c.adopt(l)
	return c
}

// adopt starts the goroutines that watch l: one notices the end of the
// connection, one sends keepalives. Both exit when the connection ends.
func (c *Conn) adopt(l *link) {
	c.cur = l
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		l.client.Wait()
		close(l.dead)
		l.close() // a dead target makes the jump connections useless
	}()
	if c.ep.ServerAliveInterval > 0 {
		max := c.ep.ServerAliveCountMax
		if max <= 0 {
			max = defaultAliveMax
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.keepalive(l, c.ep.ServerAliveInterval, max)
		}()
	}
}

// keepalive closes l when the server leaves max consecutive keepalives
// unanswered, the way ServerAliveCountMax works in OpenSSH.
func (c *Conn) keepalive(l *link, interval time.Duration, max int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending chan error
	missed := 0
	for {
		select {
		case <-l.dead:
			return
		case err := <-pending:
			pending = nil
			if err != nil {
				return // the connection is gone; the watcher notices too
			}
			missed = 0
		case <-t.C:
			if pending != nil {
				missed++
				if missed >= max {
					c.d.logf("%s: no answer to %d keepalives, closing the connection", name(c.ep), missed)
					l.close()
					return
				}
				continue
			}
			pending = make(chan error, 1)
			go func(ch chan error) {
				_, _, err := l.client.SendRequest(keepaliveRequest, true, nil)
				ch <- err
			}(pending)
		}
	}
}

// Endpoint returns the endpoint the connection was dialed for.
func (c *Conn) Endpoint() *Endpoint { return c.ep }

// Close ends the connection and waits for its goroutines.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	l := c.cur
	c.mu.Unlock()
	l.close()
	c.wg.Wait()
	return nil
}

func (c *Conn) current() (*link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s: connection closed", name(c.ep))
	}
	return c.cur, nil
}

// Ping does one request/reply round trip (keepalive@openssh.com with want-reply)
// on the open connection and reports how long it took.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	l, err := c.current()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := l.probe(ctx); err != nil {
		return 0, fmt.Errorf("%s: ping: %w", name(c.ep), err)
	}
	return time.Since(start), nil
}

// reconnect replaces old with a fresh connection, unless another goroutine
// already did so.
func (c *Conn) reconnect(ctx context.Context, old *link) (*link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s: connection closed", name(c.ep))
	}
	if c.cur != old && !c.cur.isDead() {
		return c.cur, nil
	}
	c.cur.close()
	c.d.logf("%s: connection lost, reconnecting", name(c.ep))
	l, err := c.d.connect(ctx, c.ep)
	if err != nil {
		return nil, fmt.Errorf("reconnect: %w", err)
	}
	c.adopt(l)
	return l, nil
}

// Reconnect closes the current connection, whatever state it seems to be in,
// and dials the host again within ctx. A host that was reset (a reboot) leaves
// the old TCP connection half-open: nothing on it fails until keepalives give
// up, if any are set, so a command on it waits out its whole deadline before
// the redial. The reboot step calls this before each attempt to reach the
// host. Commands still running on the old connection end with ErrConnLost.
func (c *Conn) Reconnect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%s: connection closed", name(c.ep))
	}
	// On failure cur stays the closed link: the next command redials.
	c.cur.close()
	l, err := c.d.connect(ctx, c.ep)
	if err != nil {
		return fmt.Errorf("reconnect: %w", err) // connect names the host
	}
	c.adopt(l)
	return nil
}

// newSession opens a session, reconnecting once if the connection had already
// dropped: nothing has run yet, so retrying cannot run a command twice.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, *link, error) {
	l, err := c.current()
	if err != nil {
		return nil, nil, err
	}
	if !l.isDead() {
		s, err := openSession(ctx, l)
		if err == nil {
			return s, l, nil
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%s: %w", name(c.ep), err)
		}
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			// The server is alive and said no (e.g. MaxSessions): don't reconnect.
			return nil, nil, fmt.Errorf("%s: open session: %w", name(c.ep), err)
		}
	}
	l, err = c.reconnect(ctx, l)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name(c.ep), err)
	}
	s, err := openSession(ctx, l)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: open session after reconnect: %w: %w", name(c.ep), ErrConnLost, err)
	}
	return s, l, nil
}

// openSession opens a session on l within ctx. ssh.Client.NewSession takes no
// context: a host that froze after the connection was made never answers the
// channel open, so on ctx's end the link is closed (which makes NewSession
// return) and the next command redials.
func openSession(ctx context.Context, l *link) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1) // buffered: the opener never blocks after we stop listening
	go func() {
		s, err := l.client.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
		l.close()
		if o := <-ch; o.s != nil {
			o.s.Close()
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("open session: no answer: %w: %w", ErrTimeout, ctx.Err())
		}
		return nil, fmt.Errorf("open session: %w", ctx.Err())
	}
}

// Run executes cmd in a new session on the shared connection.
func (c *Conn) Run(ctx context.Context, cmd *Command) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	max := cmd.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	stdout := &capture{max: max, w: cmd.Stdout}
	stderr := &capture{max: max, w: cmd.Stderr}
	res := &Result{ExitCode: -1}
	finish := func() *Result {
		res.Stdout, res.Stderr = stdout.bytes(), stderr.bytes()
		res.Truncated = stdout.truncated() || stderr.truncated()
		res.Duration = time.Since(start)
		return res
	}

	sess, l, err := c.newSession(ctx)
	if err != nil {
		return nil, err
	}
	defer sess.Close()

	var bc *becomeRun
	remote := cmd.Cmd
	if cmd.Become != nil {
		bc, err = newBecomeRun(cmd, stdout, stderr)
		if err != nil {
			return nil, err
		}
		defer bc.stop()
		remote = bc.command
		sess.Stdout, sess.Stderr = bc.stdout, bc.stderr
	} else {
		sess.Stdout, sess.Stderr = stdout, stderr
	}
	// Stdin is pumped by our own goroutine, not the session's: Session.Wait would
	// otherwise block until an endless reader (a terminal) returned.
	stdin, err := sess.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: stdin: %w", name(c.ep), err)
	}
	if err := sess.Start(remote); err != nil {
		if l.isDead() || l.probe(ctx) != nil {
			return nil, fmt.Errorf("%s: start command: %w: %w", name(c.ep), ErrConnLost, err)
		}
		return nil, fmt.Errorf("%s: start command: %w", name(c.ep), err)
	}
	if bc != nil {
		go bc.feed(stdin, cmd.Stdin)
	} else {
		go pumpStdin(stdin, cmd.Stdin)
	}

	waitc := make(chan error, 1)
	go func() { waitc <- sess.Wait() }()

	tctx, cancel := ctx, context.CancelFunc(func() {})
	if cmd.Timeout > 0 {
		tctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
	}
	defer cancel()

	var becomeFail <-chan struct{}
	if bc != nil {
		becomeFail = bc.failed
	}
	select {
	case err = <-waitc:
	case <-becomeFail:
		sess.Close()
		waitFor(waitc)
		return finish(), fmt.Errorf("%s: %w", name(c.ep), bc.failure())
	case <-tctx.Done():
		// Kill the remote process, then tear the session down; a frozen host may
		// not answer either, so don't wait for it long.
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
		waitFor(waitc)
		switch cerr := ctx.Err(); {
		case cerr == nil:
			return finish(), fmt.Errorf("%s: %q after %s: %w", name(c.ep), cmd.Cmd, cmd.Timeout, ErrTimeout)
		case errors.Is(cerr, context.DeadlineExceeded):
			// The caller's deadline (e.g. a step timeout also given as cmd.Timeout)
			// is a timeout too: say so, and keep the context error for errors.Is.
			after := cmd.Timeout
			if dl, ok := ctx.Deadline(); after <= 0 || (ok && dl.Before(start.Add(after-100*time.Millisecond))) {
				after = time.Since(start).Round(time.Millisecond)
			}
			return finish(), fmt.Errorf("%s: %q after %s: %w (%w)", name(c.ep), cmd.Cmd, after, ErrTimeout, cerr)
		default:
			return finish(), fmt.Errorf("%s: %q: %w", name(c.ep), cmd.Cmd, cerr)
		}
	}

	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		res.ExitCode = 0
	case errors.As(err, &exitErr):
		if sig := exitErr.Signal(); sig != "" {
			res.Signal = sig
		} else {
			res.ExitCode = exitErr.ExitStatus()
		}
	case errors.As(err, &missing) || errors.Is(err, io.EOF):
		// The channel ended without a status: either the connection died
		// (the usual case) or the server dropped just this session.
		pctx, pcancel := context.WithTimeout(context.Background(), windDown)
		perr := l.probe(pctx)
		pcancel()
		if perr != nil {
			return finish(), fmt.Errorf("%s: %q: %w", name(c.ep), cmd.Cmd, ErrConnLost)
		}
		return finish(), fmt.Errorf("%s: %q: session ended without an exit status", name(c.ep), cmd.Cmd)
	default:
		if l.isDead() {
			return finish(), fmt.Errorf("%s: %q: %w: %w", name(c.ep), cmd.Cmd, ErrConnLost, err)
		}
		return finish(), fmt.Errorf("%s: %q: %w", name(c.ep), cmd.Cmd, err)
	}
	res = finish()
	if bc != nil {
		if err := bc.check(res); err != nil {
			return res, fmt.Errorf("%s: %w", name(c.ep), err)
		}
	}
	return res, nil
}

func waitFor(waitc <-chan error) {
	t := time.NewTimer(windDown)
	defer t.Stop()
	select {
	case <-waitc:
	case <-t.C:
	}
}

// pumpStdin copies the command's input, then sends EOF.
func pumpStdin(dst io.WriteCloser, src io.Reader) {
	if src != nil {
		_, _ = io.Copy(dst, src)
	}
	dst.Close()
}

// capture tees a stream to the caller's writer and keeps at most max bytes,
// counting the rest, so memory stays bounded whatever the command prints.
type capture struct {
	mu      sync.Mutex
	max     int
	w       io.Writer
	werr    error
	buf     []byte
	dropped int64
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil && c.werr == nil {
		// A failing caller writer must not abort the remote command.
		_, c.werr = c.w.Write(p)
	}
	room := c.max - len(c.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		c.buf = append(c.buf, p[:room]...)
	}
	c.dropped += int64(len(p) - max(room, 0))
	return len(p), nil
}

func (c *capture) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf...)
}

func (c *capture) truncated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped > 0
}
