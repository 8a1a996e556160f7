package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

// Statuses of the action commands beyond ping's ok / failed / unreachable / skipped.
const statusChanged = "changed"

// actionResult is one host's outcome of a package, service or puppet command, and its
// element of the JSON "hosts" array.
type actionResult struct {
	Name     string            `json:"name"`
	Status   string            `json:"status"` // ok | changed | failed | unreachable | skipped
	Detail   string            `json:"detail"` // "1.0 -> 2.0", "running, enabled", …
	Error    string            `json:"error"`
	Backend  string            `json:"backend,omitempty"` // apt, sysv, … from the host's facts
	Before   map[string]string `json:"before,omitempty"`
	After    map[string]string `json:"after,omitempty"`
	Commands []string          `json:"commands,omitempty"` // the change commands that ran
	// The queried state, for the status actions.
	Package    *steps.PkgStatus     `json:"package,omitempty"`
	Service    *steps.ServiceStatus `json:"service,omitempty"`
	Puppet     *steps.PuppetStatus  `json:"puppet,omitempty"`
	Started    time.Time            `json:"started"` // zero when not started
	Finished   time.Time            `json:"finished"`
	DurationMS float64              `json:"duration_ms"`
	Batch      int                  `json:"batch"` // 1-based; every host is in batch 1 without --batch
}

// valueHosts is one distinct value of a summary group and the hosts that have it.
type valueHosts struct {
	Value string   `json:"value"`
	Count int      `json:"count"`
	Hosts []string `json:"hosts"`
}

// actionGroup is a named tally of hosts per value: "versions", "before", "states", …
type actionGroup struct {
	Name   string       `json:"name"`
	Values []valueHosts `json:"values"`
}

// groupSpec says how to read one group's value off a result; ok false leaves the
// host out of the group (it failed before the value was known).
type groupSpec struct {
	name  string
	value func(r actionResult) (string, bool)
}

// actionSummary is the mco-style tail of an action command.
type actionSummary struct {
	Total            int           `json:"total"`
	OK               int           `json:"ok"`
	Changed          int           `json:"changed"`
	Failed           int           `json:"failed"`
	Unreachable      int           `json:"unreachable"`
	Skipped          int           `json:"skipped"`
	OKHosts          []string      `json:"ok_hosts"`
	ChangedHosts     []string      `json:"changed_hosts"`
	FailedHosts      []string      `json:"failed_hosts"`
	UnreachableHosts []string      `json:"unreachable_hosts"`
	SkippedHosts     []string      `json:"skipped_hosts"`
	Groups           []actionGroup `json:"groups"`
	Puppet           *puppetTotals `json:"puppet,omitempty"` // puppet status only
	Batches          int           `json:"batches"`
	DurationMS       float64       `json:"duration_ms"`
	Interrupted      bool          `json:"interrupted"`
}

// actionDoc is the one document --json prints.
type actionDoc struct {
	Command string         `json:"command"` // e.g. "package install demo-web=2.0"
	Hosts   []actionResult `json:"hosts"`
	Summary actionSummary  `json:"summary"`
}

// hostWork does a command's action on one reachable host. f is the host's facts when
// the command asked for them (nil otherwise). It fills r's outcome fields.
type hostWork func(ctx context.Context, r transport.Runner, f facts.Facts, res *actionResult)

// actionRun is one package, service or puppet invocation in progress.
type actionRun struct {
	s         *hostSession
	src       *factSource
	needFacts bool // package and service pick their backend from facts
	work      hostWork
	con       *console
	pal       *palette
	width     int // host name column
}

// run does the action on every target in batches and returns the results in target
// order, then the hosts the filters could not reach (unreachable).
func (x *actionRun) run(ctx context.Context, size int, sleep time.Duration) []actionResult {
	ts := x.s.ts
	results := make([]actionResult, len(ts))
	x.con.startProgress(len(x.s.unknown), len(ts)+len(x.s.unknown))
	next := runBatches(ctx, len(ts), size, x.s.o.forks, sleep, func(work context.Context, i, batch int) {
		results[i] = x.one(work, ts[i], batch)
		x.con.hostDone()
		x.line(results[i])
	})
	for i := next; i < len(ts); i++ {
		results[i] = actionResult{Name: ts[i].host.Name, Status: statusSkipped, Error: "not started: interrupted"}
	}
	for _, u := range x.s.unknown {
		r := actionResult{Name: u.t.host.Name, Status: statusUnreachable, Error: u.err.Error()}
		if !isUnreachable(u.err) {
			r.Status = statusFailed
		}
		x.line(r)
		results = append(results, r)
	}
	return results
}

// one connects, fetches the facts when needed and does the work on one host.
func (x *actionRun) one(ctx context.Context, t target, batch int) (r actionResult) {
	r = actionResult{Name: t.host.Name, Batch: batch, Started: time.Now()}
	defer func() {
		r.Finished = time.Now()
		r.DurationMS = ms(r.Finished.Sub(r.Started))
	}()
	p, err := x.s.dial(ctx, t)
	if err != nil {
		setError(&r, err)
		return r
	}
	var f facts.Facts
	if x.needFacts {
		if got, ok := x.s.facts[t.host.Name]; ok {
			f = got
		} else if f, err = x.src.get(ctx, x.s, t); err != nil {
			setError(&r, fmt.Errorf("gathering facts: %w", err))
			return r
		}
	}
	x.work(ctx, runnerOf{p}, f, &r)
	return r
}

// setError marks r failed, or unreachable when err says the host could not be reached.
func setError(r *actionResult, err error) {
	r.Error = err.Error()
	r.Status = statusFailed
	if isUnreachable(err) {
		r.Status = statusUnreachable
	}
}

// fromStep copies a steps.Result into r.
func fromStep(r *actionResult, res *steps.Result) {
	r.Status, r.Detail = string(res.Status), res.Detail
	r.Before, r.After, r.Commands = res.Before, res.After, res.Commands
	if res.Err != nil {
		setError(r, res.Err)
		r.Detail = ""
	}
}

// factString reads a string fact such as package_manager.
func factString(f facts.Facts, key string) (string, error) {
	v, ok := f.Get(key)
	s, isString := v.(string)
	if !ok || !isString || s == "" {
		return "", fmt.Errorf("the host has no %s fact (try --refresh)", key)
	}
	return s, nil
}

// line prints one host's outcome as it arrives (not with --json).
func (x *actionRun) line(r actionResult) {
	x.con.outcome(r.Status, actionLine(x.pal, x.width, r))
}

// actionLine is one host's line: name, status, detail or error.
func actionLine(pal *palette, width int, r actionResult) string {
	text := r.Detail
	if r.Error != "" {
		text = r.Error
	}
	text = sanitizeLine(text) // from the host: no terminal controls

	line := fmt.Sprintf("%-*s  %s  %s", width, r.Name, pal.status(r.Status, fmt.Sprintf("%-11s", r.Status)), text)
	return strings.TrimRight(line, " ") + "\n"
}

// nameWidth is the width of the host name column.
func nameWidth(s *hostSession) int {
	w := 0
	for _, t := range append(append([]target{}, s.ts...), unknownTargets(s.unknown)...) {
		w = max(w, len(t.host.Name))
	}
	return w
}

// summarizeActions counts the outcomes and tallies the groups.
func summarizeActions(results []actionResult, groups []groupSpec, interrupted bool, took time.Duration) actionSummary {
	s := actionSummary{
		Total: len(results), OKHosts: []string{}, ChangedHosts: []string{}, FailedHosts: []string{},
		UnreachableHosts: []string{}, SkippedHosts: []string{}, Groups: []actionGroup{},
		DurationMS: ms(took), Interrupted: interrupted,
	}
	for _, r := range results {
		s.Batches = max(s.Batches, r.Batch)
		switch r.Status {
		case statusOK:
			s.OK++
			s.OKHosts = append(s.OKHosts, r.Name)
		case statusChanged:
			s.Changed++
			s.ChangedHosts = append(s.ChangedHosts, r.Name)
		case statusUnreachable:
			s.Unreachable++
			s.UnreachableHosts = append(s.UnreachableHosts, r.Name)
		case statusSkipped:
			s.Skipped++
			s.SkippedHosts = append(s.SkippedHosts, r.Name)
		default:
			s.Failed++
			s.FailedHosts = append(s.FailedHosts, r.Name)
		}
	}
	for _, g := range groups {
		s.Groups = append(s.Groups, actionGroup{Name: g.name, Values: tally(results, g.value)})
	}
	return s
}

// tally groups hosts by value; most common value first, then by value.
func tally(results []actionResult, value func(actionResult) (string, bool)) []valueHosts {
	byValue := map[string]*valueHosts{}
	for _, r := range results {
		v, ok := value(r)
		if !ok {
			continue
		}
		vh := byValue[v]
		if vh == nil {
			vh = &valueHosts{Value: v}
			byValue[v] = vh
		}
		vh.Count++
		vh.Hosts = append(vh.Hosts, r.Name)
	}
	out := make([]valueHosts, 0, len(byValue))
	for _, vh := range byValue {
		out = append(out, *vh)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// renderActionSummary prints the tail: counts, each group's hosts per value, the
// failed hosts with their reasons, the timing.
func renderActionSummary(w io.Writer, pal *palette, s actionSummary, results []actionResult, changes bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s: %s ok", pal.bold.Sprint(plural(s.Total, "host")), pal.ok.Sprint(s.OK))
	if changes {
		fmt.Fprintf(&b, ", %s changed", pal.ok.Sprint(s.Changed))
	}
	fmt.Fprintf(&b, ", %s failed, %s unreachable", pal.failed.Sprint(s.Failed), pal.unreachable.Sprint(s.Unreachable))
	if s.Skipped > 0 {
		fmt.Fprintf(&b, ", %d not started", s.Skipped)
	}
	b.WriteString("\n")
	for _, g := range s.Groups {
		if len(g.Values) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:\n", pal.bold.Sprint(g.Name))
		for _, v := range g.Values {
			fmt.Fprintf(&b, "  %s: %s\n", sanitizeLine(v.Value), plural(v.Count, "host"))
		}
	}
	if s.Puppet != nil {
		renderPuppetTotals(&b, pal, s.Puppet)
	}
	var failed []string
	for _, r := range results {
		if r.Status == statusFailed {
			failed = append(failed, r.Name)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "%s %s\n", pal.failed.Sprint("failed:"), strings.Join(failed, ", "))
	}
	if s.Unreachable > 0 {
		fmt.Fprintf(&b, "%s %s\n", pal.unreachable.Sprint("unreachable:"), strings.Join(s.UnreachableHosts, ", "))
	}
	if s.Interrupted {
		fmt.Fprintf(&b, "interrupted: %s not started: %s\n", plural(s.Skipped, "host"), dashList(s.SkippedHosts))
	}
	fmt.Fprintf(&b, "finished in %s", (time.Duration(s.DurationMS * float64(time.Millisecond))).Round(time.Millisecond))
	if s.Batches > 1 {
		fmt.Fprintf(&b, " (%d batches)", s.Batches)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// actionCommand is what the three commands share once their input is checked: select
// the hosts, run the work in batches, print lines, summary or JSON, map the outcome
// to an error for exit.go.
type actionCommand struct {
	title     string // for --json "command"
	needFacts bool
	work      hostWork
	groups    []groupSpec
	changes   bool // the action can change hosts: count "changed" in the summary
	batch     string
	sleep     time.Duration
	// totals, when set, adds a per-command block to the summary (puppet status).
	totals func(results []actionResult, s *actionSummary)
}

func (a *actionCommand) execute(c *cli.Context, e *env, s *hostSession, src *factSource) error {
	ctx, o := c.Context, s.o
	size, _ := parseBatch(a.batch, len(s.ts))
	con := newConsole(e, o)
	if err := setupConsoleLog(c, con, o); err != nil {
		return err
	}
	defer con.closeLog()
	x := &actionRun{
		s: s, src: src, needFacts: a.needFacts, work: a.work, con: con,
		pal:   newPalette(useColor(e.stdoutTTY, e.getenv("NO_COLOR"), o.noColor)),
		width: nameWidth(s),
	}
	start := time.Now()
	results := x.run(ctx, size, a.sleep)
	con.endProgress()
	sum := summarizeActions(results, a.groups, ctx.Err() != nil, time.Since(start))
	if a.totals != nil {
		a.totals(results, &sum)
	}
	var err error
	if o.json {
		err = writeJSON(e.stdout, actionDoc{Command: a.title, Hosts: results, Summary: sum})
	} else {
		err = renderActionSummary(e.stdout, x.pal, sum, results, a.changes)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return hostsOutcome(sum.Interrupted, sum.Failed, sum.Unreachable)
}

// invalid turns a steps validation error into bad input (exit 2, nothing ran).
func invalid(cmd string, err error) error {
	if errors.Is(err, steps.ErrInvalid) {
		return &badInputError{Cmd: cmd, Err: err}
	}
	return err
}
