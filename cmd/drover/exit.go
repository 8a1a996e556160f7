package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Exit codes, SPEC §2. Codes 3 and 5 belong to commands that do not exist yet.
const (
	exitOK          = 0
	exitHostsFailed = 1
	exitBadInput    = 2
	exitInterrupted = 4
)

// badInputError is a mistake in what the user gave us (flags, arguments, inventory,
// ssh_config): nothing ran. Cmd is the command path for the usage hint.
type badInputError struct {
	Cmd string
	Err error
}

func (e *badInputError) Error() string { return e.Err.Error() }
func (e *badInputError) Unwrap() error { return e.Err }

// badInput builds a badInputError for command path cmd.
func badInput(cmd, format string, args ...any) error {
	return &badInputError{Cmd: cmd, Err: fmt.Errorf(format, args...)}
}

// diagnosticsError is a playbook that did not load or check: its diagnostics were
// already printed on stderr, so only a count is reported. Bad input: nothing ran.
type diagnosticsError struct {
	File   string
	Errors int
}

func (e *diagnosticsError) Error() string {
	return fmt.Sprintf("%s: %s", e.File, plural(e.Errors, "error"))
}

// hostsFailedError says the command ran to the end but some hosts failed or were
// unreachable; the per-host output already told the user which.
type hostsFailedError struct {
	Failed, Unreachable int
}

func (e *hostsFailedError) Error() string {
	return fmt.Sprintf("%d host(s) failed, %d unreachable", e.Failed, e.Unreachable)
}

// errInterrupted is returned by commands that stopped early because the run context
// was cancelled by a signal.
var errInterrupted = errors.New("interrupted")

// exitCode is the one place that maps a command's outcome to the process exit code.
// interrupted wins: once the user asked us to stop, the run is reported as interrupted
// whatever else went wrong.
func exitCode(err error, interrupted bool) int {
	if interrupted || errors.Is(err, errInterrupted) {
		return exitInterrupted
	}
	if err == nil {
		return exitOK
	}
	// Outcomes with their own code (a halted rollout: 3; lock held or window closed: 5).
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	var bad *badInputError
	var diags *diagnosticsError
	if errors.As(err, &bad) || errors.As(err, &diags) {
		return exitBadInput
	}
	if errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	// hostsFailedError, plan's empty target set and anything unexpected (a write to
	// stdout failing, …): the command did run, so 1.
	return exitHostsFailed
}

// reportError prints err on stderr the way the exit code calls for: bad input gets a
// one-line error and a usage hint; failed hosts were already reported in the output.
func reportError(w io.Writer, prog string, err error, interrupted bool) {
	if err == nil {
		return
	}
	var failed *hostsFailedError
	switch {
	case errors.As(err, &failed):
		return
	case interrupted || errors.Is(err, errInterrupted) || errors.Is(err, context.Canceled):
		fmt.Fprintf(w, "%s: interrupted\n", prog)
		return
	}
	fmt.Fprintf(w, "%s: error: %s\n", prog, sanitize(err.Error())) // errors may quote host output
	var diags *diagnosticsError
	if errors.As(err, &diags) {
		return // the diagnostics say what to fix; a usage hint would not help
	}
	var bad *badInputError
	if errors.As(err, &bad) {
		cmd := bad.Cmd
		if cmd == "" {
			cmd = prog
		}
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd)
	}
}

// hostsOutcome is the error an ad-hoc command ends with once its output is written:
// interrupted (exit 4), some hosts failed or unreachable (exit 1), or nil (exit 0).
func hostsOutcome(interrupted bool, failed, unreachable int) error {
	switch {
	case interrupted:
		return errInterrupted
	case failed > 0 || unreachable > 0:
		return &hostsFailedError{Failed: failed, Unreachable: unreachable}
	}
	return nil
}
