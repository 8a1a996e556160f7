package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/drover-sh/drover/transport"
)

// Status is a step's outcome, as named in the run report.
type Status string

// Step outcomes.
const (
	StatusOK      Status = "ok"      // the target state already held
	StatusChanged Status = "changed" // the step changed the host (or would, in dry-run)
	StatusSkipped Status = "skipped"
	StatusFailed  Status = "failed"
)

// Result is what one action did on one host. Before and After record the state
// either side of the change (e.g. {"version": "1.0"}) so rollback and reports
// can use them.
type Result struct {
	Status   Status
	Detail   string // short human summary, e.g. "1.0 -> 2.0"
	Before   map[string]string
	After    map[string]string
	Commands []string // the change commands that ran, or would run in dry-run
	Stdout   string   // output of the change command
	Stderr   string
	Duration time.Duration
	Err      error // set when Status is failed
}

// Options apply to every action.
type Options struct {
	Become  *transport.Become // nil: run as the connecting user
	DryRun  bool              // query only; report what would change
	Timeout time.Duration     // per remote command; 0: only ctx bounds it
}

// Error classes callers branch on with errors.Is.
var (
	// ErrInvalid: a name, version or option was refused before anything ran.
	ErrInvalid = errors.New("invalid input")
	// ErrLocked: another process held the package manager's or Puppet's lock
	// past the lock timeout.
	ErrLocked = errors.New("lock held by another process")
	// ErrUnsupported: no backend for the given fact value.
	ErrUnsupported = errors.New("unsupported")
	// ErrNotFound: the package or service does not exist on the host.
	ErrNotFound = errors.New("not found")
)

// DefaultLockTimeout is how long package and Puppet actions wait for a lock held
// by another process when the action does not say (Ansible's lock_timeout).
const DefaultLockTimeout = 60 * time.Second

var (
	// Package names of every supported manager, plus apt's :arch qualifier;
	// never a leading '-' (it would read as an option).
	pkgNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+:-]{0,199}$`)
	// Debian, RPM and apk version syntax: [epoch:]upstream[-revision], ~ ^ _ allowed.
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+~^:-]{0,127}$`)
	// systemd unit names (with template @instance), init.d script names.
	serviceNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@:+-]{0,199}$`)
)

// ValidatePackageName refuses anything that is not a plain package name.
func ValidatePackageName(name string) error {
	if !pkgNameRe.MatchString(name) {
		return fmt.Errorf("%w: package name %q: want letters, digits and . _ + : - (not leading -)", ErrInvalid, name)
	}
	return nil
}

// ValidateVersion refuses anything that is not a plain version string. The empty
// string (no version) is valid.
func ValidateVersion(v string) error {
	if v != "" && !versionRe.MatchString(v) {
		return fmt.Errorf("%w: version %q: want letters, digits and . _ + ~ ^ : -", ErrInvalid, v)
	}
	return nil
}

// ValidateServiceName refuses anything that is not a plain service or unit name.
func ValidateServiceName(name string) error {
	if !serviceNameRe.MatchString(name) {
		return fmt.Errorf("%w: service name %q: want letters, digits and . _ @ : + - (not leading -)", ErrInvalid, name)
	}
	return nil
}

// secs renders a duration as whole seconds for command-line options, at least 1.
func secs(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// run executes one command and returns its result; err only for transport failures.
func run(ctx context.Context, r transport.Runner, cmd string, o Options) (*transport.Result, error) {
	return r.Run(ctx, &transport.Command{Cmd: cmd, Become: o.Become, Timeout: o.Timeout})
}

// fail marks res failed with err and returns both, so callers can `return fail(...)`.
func fail(res *Result, start time.Time, err error) (*Result, error) {
	res.Status = StatusFailed
	res.Err = err
	if res.Detail == "" {
		res.Detail = err.Error()
	}
	res.Duration = time.Since(start)
	return res, err
}

// tail keeps the last few lines of command output for error messages.
func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, "; ")
}

// thenCheck joins a change and a check into one script for one round trip: the check
// runs after a marker line, always (onlyIfOK false: the script exits with the change's
// status) or only when the change succeeded (onlyIfOK true: it exits with the check's).
// The marker tells the caller the change's own output from the check's (splitMarker).
func thenCheck(change, marker, check string, onlyIfOK bool) string {
	if onlyIfOK {
		return "{ " + change + "; }\nrc=$?\n[ $rc -eq 0 ] || exit $rc\nprintf '\\n%s\\n' " + marker + "\n" + check
	}
	return change + "\nrc=$?\nprintf '\\n%s\\n' " + marker + "\n" + check + "\nexit $rc"
}

// splitMarker splits thenCheck's output at the last marker line; ok is false when there
// is none. The last one counts: the change's own output could print the marker, the
// check after it cannot.
func splitMarker(stdout, marker string) (change, check string, ok bool) {
	i := strings.LastIndex(stdout, "\n"+marker+"\n")
	if i < 0 {
		return stdout, "", false
	}
	return stdout[:i], stdout[i+len(marker)+2:], true
}
