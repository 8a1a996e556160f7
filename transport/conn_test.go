package transport

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	tests := []struct {
		name      string
		cmd       Command
		exit      int
		signal    string
		stdout    string
		stderr    string
		truncated bool
	}{
		{name: "stdin echoed", cmd: Command{Cmd: "fake:echo-stdin", Stdin: strings.NewReader("hello\nworld\n")},
			stdout: "hello\nworld\n"},
		{name: "no stdin", cmd: Command{Cmd: "fake:echo-stdin"}},
		{name: "exit code", cmd: Command{Cmd: "fake:exit 3"}, exit: 3, stderr: "exiting 3\n"},
		{name: "exit signal", cmd: Command{Cmd: "fake:signal"}, exit: -1, signal: "KILL", stdout: "dying\n"},
		{name: "output capped", cmd: Command{Cmd: "fake:huge 100000", MaxOutput: 1000},
			stdout: strings.Repeat("0123456789abcdef", 63)[:1000], truncated: true},
		{name: "real shell", cmd: Command{Cmd: "printf '%s' \"$((6*7))\"; echo oops >&2; exit 5"},
			exit: 5, stdout: "42", stderr: "oops\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var streamed bytes.Buffer
			cmd := tc.cmd
			cmd.Stdout = &streamed
			res, err := c.Run(context.Background(), &cmd)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if res.ExitCode != tc.exit || res.Signal != tc.signal {
				t.Errorf("exit %d signal %q, want %d %q", res.ExitCode, res.Signal, tc.exit, tc.signal)
			}
			if string(res.Stdout) != tc.stdout || string(res.Stderr) != tc.stderr {
				t.Errorf("stdout %q stderr %q, want %q %q", res.Stdout, res.Stderr, tc.stdout, tc.stderr)
			}
			if res.Truncated != tc.truncated {
				t.Errorf("truncated = %v", res.Truncated)
			}
			if !tc.truncated && streamed.String() != tc.stdout {
				t.Errorf("streamed %q, want %q", streamed.String(), tc.stdout)
			}
			if tc.truncated && streamed.Len() != 100000 {
				t.Errorf("streamed %d bytes, want all 100000", streamed.Len())
			}
		})
	}
}

// heapWatcher counts bytes and samples the heap as output streams through.
type heapWatcher struct {
	n, next  int64
	peakHeap uint64
}

func (h *heapWatcher) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	if h.n >= h.next {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peakHeap = max(h.peakHeap, ms.HeapInuse)
		h.next = h.n + 8<<20
	}
	return len(p), nil
}

func TestHugeOutputBoundedMemory(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	const total = 100 << 20
	hw := &heapWatcher{}
	start := time.Now()
	res, err := c.Run(context.Background(), &Command{Cmd: "fake:huge 104857600", Stdout: hw})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("100 MB streamed in %v, peak heap in use %d MB", time.Since(start), hw.peakHeap>>20)
	if hw.n != total || len(res.Stdout) != DefaultMaxOutput || !res.Truncated {
		t.Fatalf("streamed %d, kept %d, truncated %v", hw.n, len(res.Stdout), res.Truncated)
	}
	if hw.peakHeap > 64<<20 {
		t.Errorf("heap reached %d MB for 100 MB of output", hw.peakHeap>>20)
	}
}

func TestDroppedMidOutput(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	res, err := c.Run(context.Background(), &Command{Cmd: "fake:drop"})
	if !errors.Is(err, ErrConnLost) {
		t.Fatalf("err = %v, want ErrConnLost", err)
	}
	if res == nil || res.ExitCode != -1 {
		t.Fatalf("result %+v, want exit -1", res)
	}
	if f.srv.execs.Load() != 1 {
		t.Errorf("a command that had started ran %d times", f.srv.execs.Load())
	}
}

func TestCommandTimeoutAndCancel(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)

	start := time.Now()
	res, err := c.Run(context.Background(), &Command{Cmd: "fake:stall", Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %v", d)
	}
	if string(res.Stdout) != "stalling\n" {
		t.Errorf("partial output %q lost", res.Stdout)
	}
	if sig := <-f.srv.signals; sig != "KILL" {
		t.Errorf("server got signal %q, want KILL", sig)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	go func() {
		// Cancel once the command is visibly running.
		for !strings.Contains(out.String(), "stalling") {
			runtime.Gosched()
		}
		cancel()
	}()
	_, err = c.Run(ctx, &Command{Cmd: "fake:stall", Stdout: &out})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The connection is still usable afterwards.
	if res, err := c.Run(context.Background(), &Command{Cmd: "fake:exit 0"}); err != nil || res.ExitCode != 0 {
		t.Fatalf("run after cancel: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReconnectAfterIdleDrop(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	old := c.cur
	f.srv.dropAll()
	<-old.dead // the watcher noticed; Run must not fail for a drop before it started
	res, err := c.Run(context.Background(), &Command{Cmd: "fake:exit 0"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run after drop: %v", err)
	}
	if n := f.srv.accepted.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2 (one reconnect)", n)
	}

	// The same when the drop has not been noticed yet: NewSession fails, then reconnect.
	f.srv.dropAll()
	res, err = c.Run(context.Background(), &Command{Cmd: "fake:exit 0"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run after unnoticed drop: %v", err)
	}
	if n := f.srv.accepted.Load(); n != 3 {
		t.Errorf("server saw %d connections, want 3", n)
	}
}

func TestKeepaliveClosesUnresponsiveConnection(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint()
	ep.ServerAliveInterval = 50 * time.Millisecond
	ep.ServerAliveCountMax = 2
	c, err := testDialer(t).Dial(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	l := c.cur
	select {
	case <-l.dead:
		t.Fatal("connection closed while the server was answering")
	default:
	}
	f.srv.freeze.Store(true)
	select {
	case <-l.dead:
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive did not close a connection whose server stopped answering")
	}
}

func TestPing(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	rtt, err := c.Ping(context.Background())
	if err != nil || rtt <= 0 {
		t.Fatalf("ping = %v, %v", rtt, err)
	}
	if c.Endpoint().Alias != "h1" {
		t.Errorf("Endpoint() = %+v", c.Endpoint())
	}
	c.Close()
	if _, err := c.Ping(context.Background()); err == nil {
		t.Error("ping on a closed connection succeeded")
	}
}

func goroutineDump() string {
	var buf bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	return buf.String()
}

func TestNoGoroutineLeak(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint()
	ep.ServerAliveInterval = 20 * time.Millisecond
	d := testDialer(t)
	baseline := runtime.NumGoroutine() // the idle server's accept loop is already counted
	c, err := d.Dial(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"fake:exit 0", "fake:echo-stdin", "fake:signal"} {
		if _, err := c.Run(context.Background(), &Command{Cmd: cmd, Stdin: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.Run(context.Background(), &Command{Cmd: "fake:stall", Timeout: 50 * time.Millisecond})
	f.srv.dropAll() // force a reconnect too
	if _, err := c.Run(context.Background(), &Command{Cmd: "fake:exit 0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// x/crypto's reader goroutines (ours and the server's, which sees our close)
	// exit asynchronously; give them a bounded moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > baseline {
		t.Fatalf("%d goroutines after Close, baseline %d:\n%s", n, baseline, goroutineDump())
	}
}

// A host that freezes after the connection is up never answers the channel
// open; the command's context still bounds the wait and the link is dropped so
// the next command redials.
func TestRunOnFrozenHostHeedsContext(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	if _, err := c.Run(context.Background(), &Command{Cmd: "echo hi"}); err != nil {
		t.Fatalf("first run: %v", err)
	}
	f.srv.freeze.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, &Command{Cmd: "echo again"})
	if err == nil {
		t.Fatal("run on a frozen host succeeded")
	}
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %s, want about the 300ms context", d)
	}
}
