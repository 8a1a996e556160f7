package transport

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func TestPoolDialsOnce(t *testing.T) {
	f := newFixture(t)
	p := NewPool(testDialer(t))
	defer p.Close()
	const n = 50
	conns := make([]*Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], errs[i] = p.Get(context.Background(), f.endpoint())
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Get %d: %v", i, errs[i])
		}
		if conns[i] != conns[0] {
			t.Fatalf("Get %d returned a different connection", i)
		}
	}
	if got := f.srv.accepted.Load(); got != 1 {
		t.Errorf("server saw %d connections for %d concurrent Gets, want 1", got, n)
	}
	if res, err := conns[0].Run(context.Background(), &Command{Cmd: "fake:exit 0"}); err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v", err)
	}
}

func TestPoolRetriesFailedDial(t *testing.T) {
	f := newFixture(t)
	f.writeKnownHosts(t) // host unknown: strict dial fails
	p := NewPool(testDialer(t))
	defer p.Close()

	const n = 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Get(context.Background(), f.endpoint())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrHostKey) {
			t.Fatalf("waiter got %v, want the dial's ErrHostKey", err)
		}
	}

	f.writeKnownHosts(t, lineFor(f.srv.addr, f.srv.hostSigners[0].PublicKey()))
	c, err := p.Get(context.Background(), f.endpoint())
	if err != nil {
		t.Fatalf("Get after fixing known_hosts: %v", err)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := c.Ping(context.Background()); err == nil {
		t.Error("connection still open after Pool.Close")
	}
	if _, err := p.Get(context.Background(), f.endpoint()); err == nil {
		t.Error("Get on a closed pool succeeded")
	}
}

func TestPoolRelease(t *testing.T) {
	f := newFixture(t)
	p := NewPool(testDialer(t))
	defer p.Close()
	ctx := context.Background()
	c1, err := p.Get(ctx, f.endpoint())
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if err := p.Release(f.endpoint()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, err := c1.Run(ctx, &Command{Cmd: "fake:exit 0"}); err == nil {
		t.Error("a released connection still ran a command")
	}
	c2, err := p.Get(ctx, f.endpoint())
	if err != nil {
		t.Fatalf("Get after Release: %v", err)
	}
	if c2 == c1 {
		t.Fatal("Get after Release returned the released connection")
	}
	if res, err := c2.Run(ctx, &Command{Cmd: "fake:exit 0"}); err != nil || res.ExitCode != 0 {
		t.Fatalf("run on the new connection: %+v, %v", res, err)
	}
	if got := f.srv.accepted.Load(); got != 2 {
		t.Errorf("server saw %d connections, want 2", got)
	}
	if err := p.Release(&Endpoint{Alias: "never-dialed"}); err != nil {
		t.Errorf("Release of an unknown host: %v", err)
	}
}
