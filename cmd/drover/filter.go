package main

import (
	"fmt"
	"strings"

	"github.com/drover-sh/drover/inventory"
	"github.com/urfave/cli/v2"
)

// filterHelp is appended to the help of every command that takes filters.
const filterHelp = `
Filters: -F 'KEY OP VALUE' (repeatable, all must hold; OP one of = != < > <= >= =~/re/),
-I NAME|/regex/ (repeatable, any), -S EXPR (an HCL expression over facts and host).
When a filter needs facts they come from the fact cache (fresh for --fact-cache-ttl) or are
gathered first; hosts whose facts cannot be gathered are reported unreachable and the exit
status is 1. A fact that no host has is reported on stderr (usually a typo). Filters that
leave no host are bad input (exit 2), unless some hosts could not be asked (exit 1).`

// parseSelector reads -F and -S (-I is applied with PATTERN in selectHosts).
func parseSelector(c *cli.Context, o *options) (*inventory.Selector, error) {
	sel, err := inventory.ParseSelector(c.StringSlice("with-fact"), nil, c.String("select"))
	if err != nil {
		return nil, &badInputError{Cmd: o.cmd, Err: err}
	}
	if len(sel.Facts) == 0 && sel.Select == nil {
		return nil, nil
	}
	return sel, nil
}

// applyFilters narrows s.ts by -F and -S. When they need facts, every target's are
// fetched first (cache or gather, --forks at once); hosts that could not be asked
// land in s.unknown.
func (s *hostSession) applyFilters(c *cli.Context, e *env, src *factSource) error {
	sel := s.o.selector
	if sel == nil {
		return nil
	}
	if sel.NeedsFacts() {
		con := newConsole(e, s.o)
		con.startProgress(0, len(s.ts))
		got, failed := src.gatherAll(c.Context, s, s.ts, con.hostDone)
		con.endProgress()
		for n, f := range got {
			s.facts[n] = f
		}
		s.unknown = failed
		if c.Context.Err() != nil {
			return errInterrupted
		}
	}
	byName := make(map[*inventory.Host]target, len(s.ts))
	hosts := make([]*inventory.Host, len(s.ts))
	for i, t := range s.ts {
		hosts[i] = t.host
		byName[t.host] = t
	}
	matched, _, missing, err := sel.Apply(hosts, func(h *inventory.Host) (map[string]any, bool) {
		f, ok := s.facts[h.Name]
		return f, ok
	})
	if err != nil {
		return &badInputError{Cmd: s.o.cmd, Err: fmt.Errorf("-S/--select: %w", err)}
	}
	for _, k := range missing {
		if strings.HasPrefix(k, "host.") {
			fmt.Fprintf(e.stderr, "drover: warning: no host has %s — typo?\n", k)
		} else {
			fmt.Fprintf(e.stderr, "drover: warning: no host has fact %q — typo?\n", k)
		}
	}
	s.ts = s.ts[:0:0]
	for _, h := range matched {
		s.ts = append(s.ts, byName[h])
	}
	if len(s.ts) == 0 && len(s.unknown) == 0 {
		return badInput(s.o.cmd, "no host matches the filters")
	}
	return nil
}
