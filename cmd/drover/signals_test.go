package main

import (
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestWatchSignals(t *testing.T) {
	tests := []struct {
		name string
		sig  os.Signal
	}{
		{"SIGINT", os.Interrupt},
		{"SIGTERM", syscall.SIGTERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sigs := make(chan os.Signal)
			forced := make(chan struct{})
			done := make(chan struct{})
			returned := make(chan struct{})
			go func() {
				watchSignals(done, sigs, io.Discard, cancel, func() { close(forced) })
				close(returned)
			}()

			// SIGHUP is ignored: the send completing proves the watcher took it, and the
			// next send on an unbuffered channel can only complete after it was handled.
			sigs <- syscall.SIGHUP
			sigs <- syscall.SIGHUP
			if ctx.Err() != nil {
				t.Fatal("SIGHUP cancelled the run")
			}

			sigs <- tt.sig
			<-ctx.Done() // first signal: the run context is cancelled
			select {
			case <-forced:
				t.Fatal("first signal forced the exit")
			default:
			}

			sigs <- tt.sig
			select {
			case <-forced:
			case <-time.After(10 * time.Second): // a safety net, not synchronisation
				t.Fatal("second signal did not force the exit")
			}
			<-returned
		})
	}
}

func TestWatchSignalsStopsWhenDone(t *testing.T) {
	done := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		watchSignals(done, make(chan os.Signal), io.Discard, func() { t.Error("cancel called") }, func() { t.Error("forceExit called") })
		close(returned)
	}()
	close(done)
	<-returned
}
