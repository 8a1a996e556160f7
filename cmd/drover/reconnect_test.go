package main

import (
	"context"
	"errors"
	"testing"

	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

type reconnectFake struct {
	fakeRunnerStub
	calls int
	err   error
}

func (r *reconnectFake) Reconnect(context.Context) error { r.calls++; return r.err }

// fakeRunnerStub is a Runner that does nothing; only Reconnect matters here.
type fakeRunnerStub struct{ transport.Runner }

// The engine gets the pooled connection wrapped in noClose; the reboot step's
// Reconnect must still reach the connection.
func TestNoCloseForwardsReconnect(t *testing.T) {
	boom := errors.New("boom")
	inner := &reconnectFake{err: boom}
	var r transport.Runner = noClose{inner}
	rc, ok := r.(steps.Reconnector)
	if !ok {
		t.Fatal("noClose is not a steps.Reconnector")
	}
	if err := rc.Reconnect(context.Background()); !errors.Is(err, boom) || inner.calls != 1 {
		t.Errorf("Reconnect = %v after %d calls, want the inner error after 1", err, inner.calls)
	}
	// A runner that cannot reconnect redials by itself: nothing to do.
	if err := (noClose{fakeRunnerStub{}}).Reconnect(context.Background()); err != nil {
		t.Errorf("Reconnect on a plain runner = %v, want nil", err)
	}
}
