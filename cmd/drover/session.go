package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/drover-sh/drover/transport"
	"github.com/urfave/cli/v2"
)

// hostSession is what every host-touching ad-hoc command shares: the selected
// targets, one connection source for the whole run, and become settings.
type hostSession struct {
	o      *options
	ts     []target
	conn   connector
	become *transport.Become
	// unknown are hosts the filters could not decide on because their facts could
	// not be gathered; commands report them as unreachable.
	unknown []hostFailure
	// facts holds the facts fetched while selecting, by host name, so a command
	// that needs them again (facts) does not gather twice.
	facts map[string]map[string]any
}

// hostFailure is a host that could not be reached, and why.
type hostFailure struct {
	t   target
	err error
}

// openSession resolves the targets for pattern, asks for secrets, opens the
// connection source and applies the fact filters. The caller closes s.conn.
func openSession(c *cli.Context, e *env, o *options, pattern string, src *factSource) (*hostSession, error) {
	ts, cfg, err := targets(c.Context, o, pattern)
	if err != nil {
		return nil, err
	}
	return openSessionFor(c, e, o, ts, cfg, src)
}

// openSessionFor is openSession for targets the caller already selected (plan
// selects by the playbook's patterns and reports an empty selection its own way).
func openSessionFor(c *cli.Context, e *env, o *options, ts []target, cfg *transport.SSHConfig, src *factSource) (*hostSession, error) {
	var err error
	warnInsecureHostKeys(e.stderr, ts, o.sshConfig)
	sec := newSecrets(e.readPassword)
	var becomePW []byte
	if o.askBecomePass {
		if becomePW, err = sec.becomePassword(o); err != nil {
			return nil, err
		}
	}
	s := &hostSession{o: o, ts: ts, facts: map[string]map[string]any{}}
	if o.become || o.askBecomePass {
		s.become = &transport.Become{Password: becomePW}
	}
	s.conn = e.newConnector(transport.DialerOptions{
		Config:      cfg,
		AgentSocket: e.getenv("SSH_AUTH_SOCK"),
		Passphrase:  sec.passphrase,
		Logf:        logf(e.stderr, o.verbose),
	})
	if err := s.applyFilters(c, e, src); err != nil {
		s.conn.Close()
		return nil, err
	}
	return s, nil
}

// connectLimit bounds connecting to t: the connect timeout per hop.
func connectLimit(t target) time.Duration {
	return t.ep.ConnectTimeout * time.Duration(1+len(t.ep.ProxyJump))
}

// dial gets t's connection within its connect limit.
func (s *hostSession) dial(ctx context.Context, t target) (pinger, error) {
	limit := connectLimit(t)
	dctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	p, err := s.conn.Get(dctx, t.ep)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("no answer within %s: %w", limit, err)
		}
		return nil, err
	}
	return p, nil
}

// release lets go of t's connection when the command needs the host no more;
// connectors that cannot (test fakes) keep it until Close.
func (s *hostSession) release(t target) {
	if r, ok := s.conn.(releaser); ok {
		r.Release(t.ep) // a close error changes nothing for a host that is done
	}
}

// isUnreachable says whether err means the host could not be reached (as opposed
// to refusing us or the command failing).
func isUnreachable(err error) bool {
	return errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrConnLost) ||
		errors.Is(err, context.DeadlineExceeded)
}

// forEach calls fn(i) for i in idx with at most forks running at once. Once ctx is
// cancelled no new call starts; calls already started run on with a context that
// the cancellation does not reach (hosts finish their current command, SPEC §2).
// It returns how many of idx were started (a prefix).
func forEach(ctx context.Context, idx []int, forks int, fn func(ctx context.Context, i int)) int {
	work := context.WithoutCancel(ctx)
	sem := make(chan struct{}, forks)
	var wg sync.WaitGroup
	n := 0
	for ; n < len(idx); n++ {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
			if ctx.Err() != nil { // both were ready and select chose the slot
				<-sem
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			fn(work, i)
		}(idx[n])
	}
	wg.Wait()
	return n
}

// runBatches calls fn(ctx, i, batch) for every i in [0, n): size targets per batch
// (batch numbers 1-based), at most forks at once, pausing sleep between batches;
// batch k+1 starts when batch k has finished, as mco's --batch does. Like forEach,
// once ctx ends no new call starts; it returns how many were started (a prefix).
func runBatches(ctx context.Context, n, size, forks int, sleep time.Duration, fn func(ctx context.Context, i, batch int)) int {
	next := 0
	for b := 0; next < n; b++ {
		if b > 0 && !pause(ctx, sleep) {
			break
		}
		end := min(next+size, n)
		idx := make([]int, 0, end-next)
		for i := next; i < end; i++ {
			idx = append(idx, i)
		}
		batch := b + 1
		started := forEach(ctx, idx, forks, func(work context.Context, i int) { fn(work, i, batch) })
		next += started
		if started < len(idx) {
			break
		}
	}
	return next
}

// batchFlags are --batch and --batch-sleep, shared by the commands that act in batches.
func batchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "batch", Usage: "run in batches of `N` hosts or P% of the selected hosts (rounded up); batch k+1 starts when batch k has finished"},
		&cli.DurationFlag{Name: "batch-sleep", Usage: "wait `D` between batches"},
	}
}

// checkBatchFlags refuses a bad --batch or --batch-sleep before anything connects.
func checkBatchFlags(c *cli.Context, o *options) error {
	if c.Duration("batch-sleep") < 0 {
		return badInput(o.cmd, "--batch-sleep must not be negative, got %s", c.Duration("batch-sleep"))
	}
	if _, err := parseBatch(c.String("batch"), 1); err != nil {
		return &badInputError{Cmd: o.cmd, Err: err}
	}
	return nil
}

// pause waits d unless ctx ends first; it reports whether the full pause elapsed.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// runnerOf lets a connection serve packages that want a transport.Runner (facts).
// Only Run is needed by them; Upload is refused rather than faked.
type runnerOf struct{ p pinger }

func (r runnerOf) Run(ctx context.Context, cmd *transport.Command) (*transport.Result, error) {
	return r.p.Run(ctx, cmd)
}

func (r runnerOf) Upload(context.Context, io.Reader, string, fs.FileMode, *transport.Become) error {
	return errors.New("upload is not available to ad-hoc commands")
}

// Close is a no-op: the pool owns the connection.
func (r runnerOf) Close() error { return nil }

func unknownTargets(fs []hostFailure) []target {
	ts := make([]target, len(fs))
	for i, f := range fs {
		ts[i] = f.t
	}
	return ts
}
