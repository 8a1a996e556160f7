package transport

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A connection whose peer stopped answering (a reset host: half-open TCP) is
// not noticed without keepalives; Reconnect drops it and dials afresh within
// the caller's context, so the reboot step is not stuck on it.
func TestReconnectReplacesStalledConnection(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t) // no ServerAliveInterval: nothing would ever close the stalled link
	old := c.cur

	// Stall the connection: the server stops reading it, as a host that is gone
	// would, so the probe below never gets an answer.
	f.srv.freeze.Store(true)
	pctx, pcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := c.Ping(pctx)
	pcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping on a stalled connection: %v, want a deadline error", err)
	}
	if old.isDead() {
		t.Fatal("the stalled link was already seen as dead; the test proves nothing")
	}
	// The host is back (a new boot); the old link stays stalled.
	f.srv.freeze.Store(false)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Reconnect(ctx); err != nil {
		t.Fatalf("Reconnect: %v", err)
	}
	select {
	case <-old.dead:
	case <-ctx.Done():
		t.Fatal("the old link was not closed")
	}
	if c.cur == old {
		t.Fatal("Reconnect kept the old link")
	}
	if n := f.srv.accepted.Load(); n != 2 {
		t.Errorf("server saw %d connections, want 2", n)
	}
	res, err := c.Run(ctx, &Command{Cmd: "fake:exit 3"})
	if err != nil || res.ExitCode != 3 {
		t.Fatalf("run after Reconnect: %+v, %v; want exit 3", res, err)
	}
	if n := f.srv.accepted.Load(); n != 2 {
		t.Errorf("server saw %d connections after the run, want 2 (no second redial)", n)
	}
}

func TestReconnectFailures(t *testing.T) {
	t.Run("host gone", func(t *testing.T) {
		f := newFixture(t)
		c := f.dial(t)
		f.srv.Close() // listener closed: connecting is refused
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.Reconnect(ctx)
		if err == nil {
			t.Fatal("Reconnect to a closed server succeeded")
		}
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("err %v, want ErrUnreachable", err)
		}
		// The connection stays usable as a Conn: Close still works and says nothing.
		if err := c.Close(); err != nil {
			t.Errorf("Close after a failed Reconnect: %v", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		f := newFixture(t)
		c := f.dial(t)
		c.Close()
		if err := c.Reconnect(context.Background()); err == nil {
			t.Fatal("Reconnect on a closed Conn succeeded")
		}
		if n := f.srv.accepted.Load(); n != 1 {
			t.Errorf("server saw %d connections, want 1 (no dial after Close)", n)
		}
	})
	t.Run("redial after a failed Reconnect", func(t *testing.T) {
		f := newFixture(t)
		c := f.dial(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Reconnect(ctx); err == nil {
			t.Fatal("Reconnect with a cancelled context succeeded")
		}
		// The old link is closed; the next command dials again by itself.
		res, err := c.Run(context.Background(), &Command{Cmd: "fake:exit 0"})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("run after a failed Reconnect: %+v, %v", res, err)
		}
	})
}
