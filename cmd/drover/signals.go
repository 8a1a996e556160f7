package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// watchSignals turns signals into drover's interruption policy until done is closed:
// the first SIGINT or SIGTERM calls cancel (the run stops starting new work and hosts
// finish their current command), a second one calls forceExit (the caller exits 4 at
// once). SIGHUP is ignored so a closed terminal does not kill a rollout half-way.
// It takes the channel rather than calling signal.Notify itself so main owns the
// process-wide registration and tests can send signals by hand.
func watchSignals(done <-chan struct{}, sigs <-chan os.Signal, stderr io.Writer, cancel, forceExit func()) {
	seen := 0
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			if s == syscall.SIGHUP {
				continue
			}
			seen++
			if seen == 1 {
				cancel() // before the notice, so whoever reads it knows the run is cancelled
				fmt.Fprintf(stderr, "drover: %v: stopping — hosts finish their current command; send again to exit now\n", s)
				continue
			}
			fmt.Fprintf(stderr, "drover: %v again: exiting now\n", s)
			forceExit()
			return
		}
	}
}
