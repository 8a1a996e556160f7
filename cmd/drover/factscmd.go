package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/drover-sh/drover/facts"
	"github.com/urfave/cli/v2"
)

// factFlags control where facts come from; every command that may need them has them.
func factFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "refresh", Usage: "gather facts even when the cache is fresh"},
		&cli.DurationFlag{Name: "fact-cache-ttl", Value: facts.DefaultTTL, Usage: "cached facts younger than `D` are used without connecting"},
		&cli.BoolFlag{Name: "facter", Usage: "merge each host's full `facter --json` (always gathers)"},
	}
}

// factSource fetches facts per host: from the cache when fresh, else over SSH
// (and then into the cache).
type factSource struct {
	cache   *facts.Cache // nil: no state directory, gather every time
	refresh bool
	facter  bool
	release bool // the command needs no host after its facts (facts, find): close each connection once gathered
	core    bool // gather only what steps need (facts.Options.Core), and never cache that
	warn    func(format string, args ...any)
	noCache sync.Once // the "not cached" warning, once per run and only when facts are used
}

func newFactSource(c *cli.Context, e *env, o *options) (*factSource, error) {
	ttl := c.Duration("fact-cache-ttl")
	if ttl < 0 {
		return nil, badInput(o.cmd, "--fact-cache-ttl must not be negative, got %s", ttl)
	}
	fs := &factSource{
		refresh: c.Bool("refresh"),
		facter:  c.Bool("facter"),
		warn:    func(f string, a ...any) { fmt.Fprintf(e.stderr, "drover: warning: "+f+"\n", a...) },
	}
	if dir := stateDir(e); dir != "" {
		fs.cache = &facts.Cache{Dir: factCacheDir(dir), TTL: ttl}
	}
	return fs, nil
}

// factCacheDir is where the fact cache lives in state directory dir.
func factCacheDir(dir string) string { return filepath.Join(dir, "facts") }

// stateDir is facts.StateDir's rule read through env, so tests control it.
func stateDir(e *env) string {
	if d := e.getenv("DROVER_STATE_DIR"); d != "" {
		return d
	}
	if d := e.getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "drover")
	}
	if h := e.getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "drover")
	}
	return ""
}

// get returns t's facts. Only a failure to reach or run on the host is an error;
// a cache problem or an unparsable external fact is a warning.
func (fs *factSource) get(ctx context.Context, s *hostSession, t target) (facts.Facts, error) {
	name := t.host.Name
	if fs.cache == nil {
		fs.noCache.Do(func() {
			fs.warn("no state directory ($DROVER_STATE_DIR, $XDG_STATE_HOME or $HOME): facts are not cached")
		})
	}
	if fs.cache != nil && !fs.refresh && !fs.facter {
		f, _, fresh, err := fs.cache.Load(name)
		if err != nil {
			fs.warn("%s: %v", name, err)
		}
		if fresh {
			return f, nil
		}
	}
	p, err := s.dial(ctx, t)
	if err != nil {
		return nil, err
	}
	if fs.release {
		defer s.release(t)
	}
	limit := s.o.timeout
	if limit == 0 {
		limit = time.Minute // a gatherer that hangs must not hold the run forever
	}
	f, err := facts.Gather(ctx, runnerOf{p}, facts.Options{Facter: fs.facter, Become: s.become, Timeout: limit, Core: fs.core})
	var warns facts.Warnings
	switch {
	case f != nil && errors.As(err, &warns):
		fs.warn("%s: %v", name, err)
	case err != nil:
		return nil, err
	}
	if fs.cache != nil && !fs.core {
		if err := fs.cache.Store(name, f); err != nil {
			fs.warn("%s: %v", name, err)
		}
	}
	return f, nil
}

// gatherAll fetches the facts of ts with --forks concurrency. Hosts that could not
// be reached come back in failed, in target order.
func (fs *factSource) gatherAll(ctx context.Context, s *hostSession, ts []target, done func()) (map[string]facts.Facts, []hostFailure) {
	var mu sync.Mutex
	got := make(map[string]facts.Facts, len(ts))
	errs := make([]error, len(ts))
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	started := forEach(ctx, idx, s.o.forks, func(work context.Context, i int) {
		f, err := fs.get(work, s, ts[i])
		mu.Lock()
		if err != nil {
			errs[i] = err
		} else {
			got[ts[i].host.Name] = f
		}
		mu.Unlock()
		if done != nil {
			done()
		}
	})
	var failed []hostFailure
	for i, t := range ts {
		switch {
		case i >= started:
			failed = append(failed, hostFailure{t, errors.New("not started: interrupted")})
		case errs[i] != nil:
			failed = append(failed, hostFailure{t, errs[i]})
		}
	}
	return got, failed
}

// reportUnreachable prints each failure on stderr, one a line.
func reportUnreachable(w io.Writer, pal *palette, failed []hostFailure) {
	for _, f := range failed {
		word := statusUnreachable
		if !isUnreachable(f.err) {
			word = statusFailed
		}
		fmt.Fprintf(w, "%s: %s %v\n", f.t.host.Name, pal.status(word, word+":"), f.err)
	}
}

// patternAndRest splits the positionals of facts/find: the first is PATTERN.
func patternAndRest(args []string) (string, []string) {
	if len(args) == 0 {
		return "all", nil
	}
	return args[0], args[1:]
}

func factsAction(c *cli.Context, e *env) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	pattern, keys := patternAndRest(c.Args().Slice())
	src, err := newFactSource(c, e, o)
	if err != nil {
		return err
	}
	src.release = true
	s, err := openSession(c, e, o, pattern, src)
	if err != nil {
		return err
	}
	defer s.conn.Close()

	// Hosts the filters did not need facts for (or all, without filters) are
	// fetched now; those fetched while filtering are reused.
	var need []target
	for _, t := range s.ts {
		if _, ok := s.facts[t.host.Name]; !ok {
			need = append(need, t)
		}
	}
	con := newConsole(e, o)
	con.startProgress(len(s.ts)-len(need), len(s.ts))
	got, failed := src.gatherAll(c.Context, s, need, con.hostDone)
	con.endProgress()
	for n, f := range got {
		s.facts[n] = f
	}
	failed = append(s.unknown, failed...)
	var hosts []string
	for _, t := range s.ts {
		if _, ok := s.facts[t.host.Name]; ok {
			hosts = append(hosts, t.host.Name)
		}
	}
	pal := newPalette(useColor(e.stdoutTTY, e.getenv("NO_COLOR"), o.noColor))
	errPal := newPalette(useColor(e.stderrTTY, e.getenv("NO_COLOR"), o.noColor))
	reportUnreachable(e.stderr, errPal, failed)

	switch {
	case o.json:
		doc := make(map[string]any, len(hosts))
		for _, h := range hosts {
			doc[h] = s.facts[h]
		}
		err = writeJSON(e.stdout, doc)
	case len(keys) == 0:
		err = renderFactSummary(e.stdout, pal, hosts, s.facts)
	case len(keys) == 1:
		err = renderFactValues(e.stdout, pal, keys[0], hosts, s.facts)
	default:
		err = renderFactTable(e.stdout, keys, hosts, s.facts)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if c.Context.Err() != nil {
		return errInterrupted
	}
	if len(failed) > 0 {
		unreachable := 0
		for _, f := range failed {
			if isUnreachable(f.err) {
				unreachable++
			}
		}
		return &hostsFailedError{Failed: len(failed) - unreachable, Unreachable: unreachable}
	}
	return nil
}

func findAction(c *cli.Context, e *env) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) > 1 {
		return badInput(o.cmd, "find takes at most one PATTERN, got %q (join patterns with , or :)", args)
	}
	pattern, _ := patternAndRest(args)
	src, err := newFactSource(c, e, o)
	if err != nil {
		return err
	}
	src.release = true
	s, err := openSession(c, e, o, pattern, src)
	if err != nil {
		return err
	}
	defer s.conn.Close()
	reportUnreachable(e.stderr, newPalette(useColor(e.stderrTTY, e.getenv("NO_COLOR"), o.noColor)), s.unknown)
	if o.json {
		names := make([]string, 0, len(s.ts))
		for _, t := range s.ts {
			names = append(names, t.host.Name)
		}
		err = writeJSON(e.stdout, names)
	} else {
		var b strings.Builder
		for _, t := range s.ts {
			b.WriteString(t.host.Name + "\n")
		}
		_, err = io.WriteString(e.stdout, b.String())
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if c.Context.Err() != nil {
		return errInterrupted
	}
	if len(s.unknown) > 0 {
		return &hostsFailedError{Unreachable: len(s.unknown)}
	}
	return nil
}

// factText is how a fact value reads in a table: strings as they are, anything
// else as JSON.
func factText(v any) string {
	if s, ok := v.(string); ok {
		return sanitizeLine(s) // facts are untrusted: no terminal controls, one line
	}
	b, err := json.Marshal(v)
	if err != nil {
		return sanitizeLine(fmt.Sprint(v))
	}
	return sanitizeLine(string(b))
}

// renderFactTable prints one row per host, one column per key; "-" where a host
// lacks the fact.
func renderFactTable(w io.Writer, keys, hosts []string, all map[string]map[string]any) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\t"+strings.Join(keys, "\t"))
	for _, h := range hosts {
		row := []string{h}
		for _, k := range keys {
			v, ok := facts.Facts(all[h]).Get(k)
			if ok {
				row = append(row, factText(v))
			} else {
				row = append(row, "-")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// valueCount is one distinct value of a fact and the hosts that have it.
type valueCount struct {
	value string
	hosts []string
}

// distinct groups hosts by their value of key; most common value first.
func distinct(key string, hosts []string, all map[string]map[string]any, flat map[string]map[string]any) []valueCount {
	byValue := map[string]*valueCount{}
	var order []*valueCount
	for _, h := range hosts {
		var v any
		var ok bool
		if flat != nil {
			v, ok = flat[h][key]
		} else {
			v, ok = facts.Facts(all[h]).Get(key)
		}
		if !ok {
			continue
		}
		text := factText(v)
		vc := byValue[text]
		if vc == nil {
			vc = &valueCount{value: text}
			byValue[text] = vc
			order = append(order, vc)
		}
		vc.hosts = append(vc.hosts, h)
	}
	out := make([]valueCount, len(order))
	for i, vc := range order {
		out[i] = *vc
	}
	sort.SliceStable(out, func(i, j int) bool {
		if len(out[i].hosts) != len(out[j].hosts) {
			return len(out[i].hosts) > len(out[j].hosts)
		}
		return out[i].value < out[j].value
	})
	return out
}

// renderFactValues is mco's `facts KEY`: each value, how many hosts have it, and which.
func renderFactValues(w io.Writer, pal *palette, key string, hosts []string, all map[string]map[string]any) error {
	vals := distinct(key, hosts, all, nil)
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", pal.bold.Sprint(key))
	width := 0
	for _, v := range vals {
		width = max(width, len(v.value))
	}
	have := 0
	for _, v := range vals {
		have += len(v.hosts)
		fmt.Fprintf(&b, "  %-*s  found %s: %s\n", width, v.value, plural(len(v.hosts), "time"), strings.Join(v.hosts, ", "))
	}
	if lack := len(hosts) - have; lack > 0 {
		fmt.Fprintf(&b, "  %s\n", pal.dim.Sprintf("(not set on %s)", plural(lack, "host")))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderFactSummary is the overview without keys: every flattened fact with its
// distinct values and host counts; a fact with one value everywhere takes one line.
func renderFactSummary(w io.Writer, pal *palette, hosts []string, all map[string]map[string]any) error {
	flat := make(map[string]map[string]any, len(hosts))
	names := map[string]bool{}
	for _, h := range hosts {
		flat[h] = facts.Facts(all[h]).Flatten()
		for k := range flat[h] {
			names[k] = true
		}
	}
	var b strings.Builder
	for _, k := range sortedKeys(names) {
		vals := distinct(k, hosts, nil, flat)
		if len(vals) == 1 {
			fmt.Fprintf(&b, "%s = %s %s\n", pal.bold.Sprint(k), vals[0].value, pal.dim.Sprintf("(%d of %d)", len(vals[0].hosts), len(hosts)))
			continue
		}
		fmt.Fprintf(&b, "%s:\n", pal.bold.Sprint(k))
		for _, v := range vals {
			fmt.Fprintf(&b, "  %s %s\n", v.value, pal.dim.Sprintf("(%d)", len(v.hosts)))
		}
	}
	fmt.Fprintf(&b, "\n%s\n", plural(len(hosts), "host"))
	_, err := io.WriteString(w, b.String())
	return err
}
