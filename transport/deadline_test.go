package transport

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A caller bounding a command by the same duration as Command.Timeout (the
// engine does, for step_timeout) gets the timeout's message, not a bare
// "context deadline exceeded", and errors.Is still sees both.
func TestRunCallerDeadlineIsATimeout(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	const d = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := c.Run(ctx, &Command{Cmd: "fake:stall", Timeout: d})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrTimeout and DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "after 500ms") {
		t.Errorf("err %q does not say after how long", err)
	}

	// A cancellation is not a timeout.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := c.Run(ctx, &Command{Cmd: "true"}); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("cancelled: err %v, want context.Canceled only", err)
	}
}

// A caller whose deadline is the connect timeout itself gets "no SSH handshake
// within" (unreachable); one with an earlier deadline gets its own error.
func TestDialCallerDeadlineAtConnectTimeout(t *testing.T) {
	addr := silentListener(t)
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	const d = 400 * time.Millisecond
	ep := &Endpoint{HostName: "127.0.0.1", Port: p, User: "x", ConnectTimeout: d}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := testDialer(t).Dial(ctx, ep)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "no SSH handshake within 400ms") {
		t.Errorf("same deadline: err %v, want unreachable: no SSH handshake within 400ms", err)
	}
	ep.ConnectTimeout = time.Minute
	ctx, cancel = context.WithTimeout(context.Background(), d)
	defer cancel()
	if _, err := testDialer(t).Dial(ctx, ep); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable) {
		t.Errorf("earlier deadline: err %v, want the context's error", err)
	}
}
