// Package facts gathers a host's facts over one SSH round trip — Facter's core
// names and value types plus every external fact from Facter's directories —
// and caches them on the controller.
package facts

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drover-sh/drover/transport"

	"github.com/drover-sh/drover/expr"
)

//go:embed gather.sh
var gatherScript string

// Facts is a host's facts, nested as `facter --json` prints them:
// facts["os"].(map[string]any)["name"]. Integers are int64, other numbers
// float64, and integers too large for int64 are json.Number.
type Facts map[string]any

// Options tune one gathering.
type Options struct {
	// Facter additionally runs the host's `facter --json` in the same round trip
	// and merges it; Facter's values win for the names it reports.
	Facter bool
	// Become runs the gatherer through sudo (root's external fact directories).
	Become *transport.Become
	// Timeout bounds the remote command; 0 leaves it to ctx.
	Timeout time.Duration
	// Core gathers only the kernel (uname), the user id, the init system and the
	// package manager: what drover's steps need. Far fewer processes on the host,
	// for a playbook whose expressions read no fact. Core facts are incomplete: never
	// cache them as a host's facts.
	Core bool
}

// maxOutput bounds what one gathering may return: external facts and
// `facter --json` are rarely above a few hundred KiB.
const maxOutput = 16 << 20

// ErrGather marks output that is not a complete gatherer stream (the remote
// shell failed, the output was cut, or a required tool is missing).
var ErrGather = errors.New("fact gathering failed")

// Warnings are problems that left the facts usable: an external fact file that
// could not be parsed, `facter` missing with Options.Facter. Gather and Parse
// return them as the error alongside non-nil Facts; use errors.As to tell them
// from a failure.
type Warnings []string

func (w Warnings) Error() string { return "facts: " + strings.Join(w, "; ") }

// GatherScript is the POSIX sh program Gather feeds to `sh -s` on the host.
// The stream's boundary is drawn fresh from crypto/rand on every call.
func GatherScript(o Options) string {
	return script(o, newBoundary())
}

func script(o Options, boundary string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "DROVER_BOUNDARY=%s\n", boundary)
	if o.Facter {
		b.WriteString("DROVER_FACTER=1\n")
	}
	if o.Core && !o.Facter {
		b.WriteString("DROVER_CORE=1\n")
	}
	b.WriteString(gatherScript)
	return b.String()
}

// newBoundary is a 128-bit random token: host data written before the run
// cannot contain it, so it cannot forge records.
func newBoundary() string {
	var r [16]byte
	rand.Read(r[:]) // never fails (crypto/rand panics rather than return an error)
	return "drv-" + hex.EncodeToString(r[:])
}

// Gather runs the gatherer on the host in exactly one Run call (one SSH session)
// and parses its output. Transport errors are wrapped so errors.Is still finds
// transport.ErrUnreachable and friends. When only some facts are missing the
// Facts are returned together with a Warnings error.
func Gather(ctx context.Context, r transport.Runner, o Options) (Facts, error) {
	// The script goes on stdin rather than on the command line so that any login
	// shell (csh, fish) only has to start `sh`.
	boundary := newBoundary()
	res, err := r.Run(ctx, &transport.Command{
		Cmd:       "sh -s",
		Stdin:     strings.NewReader(script(o, boundary)),
		MaxOutput: maxOutput,
		Timeout:   o.Timeout,
		Become:    o.Become,
	})
	if err != nil {
		return nil, fmt.Errorf("gather facts: %w", err)
	}
	if res.Truncated {
		return nil, fmt.Errorf("gather facts: output exceeded %d bytes: %w", maxOutput, ErrGather)
	}
	f, err := parse(res.Stdout, boundary)
	if err != nil && f == nil {
		return nil, fmt.Errorf("gather facts (exit status %d%s): %w", res.ExitCode, stderrTail(res.Stderr), err)
	}
	return f, err
}

// stderrTail is a short, printable excerpt of the remote stderr for errors.
func stderrTail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = "…" + s[len(s)-200:]
	}
	return ", stderr: " + strconv.Quote(s)
}

// Get looks up a dotted path such as "os.release.major". A top-level name that
// itself contains dots (external facts may) is found as well; list elements are
// addressed by index ("processors.models.0").
func (f Facts) Get(path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	return expr.Lookup(map[string]any(f), path)
}

// Flatten maps every leaf to its dotted path ("os.release.major" -> "12").
// Empty maps and lists are kept as leaves so no name disappears.
func (f Facts) Flatten() map[string]any {
	out := make(map[string]any)
	flatten(out, "", map[string]any(f))
	return out
}

func flatten(out map[string]any, prefix string, v any) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 && prefix != "" {
			out[prefix] = t
			return
		}
		for k, x := range t {
			flatten(out, join(k), x)
		}
	case []any:
		if len(t) == 0 {
			out[prefix] = t
			return
		}
		for i, x := range t {
			flatten(out, join(strconv.Itoa(i)), x)
		}
	default:
		out[prefix] = v
	}
}

// Keys returns the top-level fact names, sorted.
func (f Facts) Keys() []string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
