package main

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/transport"
)

// fakeHost scripts one host's behaviour for the fake connector.
type fakeHost struct {
	dialErr error
	// hang makes Get block until its context ends (a frozen host).
	hang bool
	// gate, when set, makes Get wait for it to close (to interleave with a signal).
	gate    chan struct{}
	started chan struct{} // closed when Get begins, if set
	pingErr error
	rtt     time.Duration
	sudo    *transport.Result
	// run, when set, answers Run (exec, facts); otherwise Run returns sudo or success.
	run func(ctx context.Context, cmd *transport.Command) (*transport.Result, error)
}

type fakeConnector struct {
	hosts map[string]*fakeHost

	mu      sync.Mutex
	active  int
	maxSeen int
	dialled []string
	opts    transport.DialerOptions
	closed  bool
	eps     map[string]*transport.Endpoint
}

func newFake(hosts map[string]*fakeHost) *fakeConnector {
	return &fakeConnector{hosts: hosts, eps: map[string]*transport.Endpoint{}}
}

func (f *fakeConnector) Get(ctx context.Context, ep *transport.Endpoint) (pinger, error) {
	f.mu.Lock()
	f.active++
	f.maxSeen = max(f.maxSeen, f.active)
	f.dialled = append(f.dialled, ep.Alias)
	f.eps[ep.Alias] = ep
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.active--
		f.mu.Unlock()
	}()
	h := f.hosts[ep.Alias]
	if h == nil {
		h = &fakeHost{rtt: time.Millisecond}
	}
	if h.started != nil {
		close(h.started)
	}
	if h.gate != nil {
		<-h.gate
	}
	if h.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if h.dialErr != nil {
		return nil, h.dialErr
	}
	return &fakePinger{h: h}, nil
}

func (f *fakeConnector) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

type fakePinger struct{ h *fakeHost }

func (p *fakePinger) Ping(ctx context.Context) (time.Duration, error) {
	return p.h.rtt, p.h.pingErr
}

func (p *fakePinger) Run(ctx context.Context, cmd *transport.Command) (*transport.Result, error) {
	if p.h.run != nil {
		return p.h.run(ctx, cmd)
	}
	if p.h.sudo != nil {
		return p.h.sudo, nil
	}
	return &transport.Result{}, nil
}

// harness runs the command line in-process against a fake connector.
type harness struct {
	conn         *fakeConnector
	stdout       bytes.Buffer
	stderr       notifyWriter
	environ      map[string]string
	sigs         chan os.Signal
	forced       chan struct{}
	tty          bool
	readPassword func(string) ([]byte, error)
}

func newHarness(hosts map[string]*fakeHost) *harness {
	return &harness{
		conn:    newFake(hosts),
		environ: map[string]string{},
		sigs:    make(chan os.Signal, 2),
		forced:  make(chan struct{}, 1),
	}
}

func (h *harness) stderrString() string { return h.stderr.String() }

// notifyWriter is a goroutine-safe buffer that closes seen once its text contains
// want, so a test can wait for a message instead of sleeping.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.seen != nil && w.want != "" && bytes.Contains(w.buf.Bytes(), []byte(w.want)) {
		close(w.seen)
		w.seen = nil
	}
	return n, err
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *notifyWriter) Len() int { return len(w.String()) }

// waitFor returns a channel closed once stderr contains s.
func (h *harness) waitFor(s string) <-chan struct{} {
	h.stderr.mu.Lock()
	defer h.stderr.mu.Unlock()
	ch := make(chan struct{})
	h.stderr.want, h.stderr.seen = s, ch
	return ch
}

func (h *harness) run(t *testing.T, args ...string) int {
	t.Helper()
	return run(append([]string{"drover"}, args...), h.env(), h.sigs, func() { h.forced <- struct{}{} })
}

// env wires the harness's buffers and fake connector into an env.
func (h *harness) env() *env {
	return &env{
		stdout: &h.stdout,
		stderr: &h.stderr,
		getenv: func(k string) string { return h.environ[k] },
		environ: func() []string {
			var out []string
			for k, v := range h.environ {
				out = append(out, k+"="+v)
			}
			return out
		},
		stdoutTTY:    h.tty,
		readPassword: h.readPassword,
		newConnector: func(o transport.DialerOptions) connector {
			h.conn.opts = o
			return h.conn
		},
	}
}
