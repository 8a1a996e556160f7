package main

// drover run: the staged rollout. It selects and plans exactly as `drover plan`
// does (buildPlan), then hands the plan to stages.Engine over one pooled
// connection per host, prints every event as it happens, writes the report and
// maps the outcome to SPEC §2's exit codes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/journal"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/report"
	"github.com/drover-sh/drover/stages"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

// Exit codes of a rollout that exit.go's classes do not cover (SPEC §2).
const (
	exitHalted     = 3
	exitNotStarted = 5 // lock held or maintenance window closed
)

const runHelp = `Runs the rollout: targets are selected and planned exactly as 'drover plan' shows them
(same facts, same where, same stages and batches), then every stage runs in order, batch by
batch, each host's before actions, steps, health checks and after actions over one SSH
connection, with the stage's gate after every batch. A host that fails (a step, a health check,
or unreachable) counts against its stage's max_failed; exceeding it halts the rollout and failed
hosts are rolled back when the playbook has a rollback block (--no-rollback: never).
Every event is a timestamped line on stderr (--output json: one JSON object a line on stdout),
then a summary. The report is written to <state dir>/runs/<run id>/report.json and --report FILE.
The first SIGINT/SIGTERM stops starting new work (hosts finish their current step), a second
exits at once. Every run keeps a journal (<state dir>/runs/<run id>/journal.jsonl, each event
fsync'd); --resume last|RUN continues a run that crashed, was killed, interrupted, halted or
stopped by its maintenance window: finished hosts are not run again, hosts in flight run again
from their first step. settings.window is checked at the start and before every batch (and every
host of remaining); --ignore-window skips it. Exit status: 0 all hosts ok, 1 some hosts failed
within the budgets or were unreachable, 2 bad input (nothing ran), 3 halted by a gate, a failure
budget or an unwritable journal, or stopped by the window closing mid-run (window_closed,
resumable), 4 interrupted, 5 not started (lock held, maintenance window closed).`

func runCommand(e *env) *cli.Command {
	flags := append(append(commonFlags(), factFlags()...), varFlags()...)
	flags = append(flags,
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "pass confirm gates without asking"},
		&cli.StringFlag{Name: "report", Usage: "also write the JSON report to `FILE` (mode 0600)"},
		&cli.BoolFlag{Name: "no-rollback", Usage: "never run the playbook's rollback block"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "event `FORMAT`: text (stderr) or json (one event a line on stdout)", Value: "text"},
	)
	flags = append(flags, logFlags()...)
	flags = append(flags, resumeFlags()...)
	return &cli.Command{
		Name:            "run",
		Usage:           "run a playbook's staged rollout: canary, batches, remaining, gates, failure budgets, rollback",
		ArgsUsage:       "PLAYBOOK",
		Description:     runHelp,
		HideHelpCommand: true,
		OnUsageError:    usageError,
		Flags:           flags,
		Action:          func(c *cli.Context) error { return runAction(c, e) },
	}
}

// runExitError is an outcome with its own exit code (3, 5): exitCode honours
// any error with an ExitCode method.
type runExitError struct {
	code int
	msg  string
}

func (e *runExitError) Error() string { return e.msg }

// ExitCode is the process exit code for this outcome.
func (e *runExitError) ExitCode() int { return e.code }

func runAction(c *cli.Context, e *env) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	path, err := playbookArg(c)
	if err != nil {
		return err
	}
	jsonOut := o.json
	switch c.String("output") {
	case "text", "":
	case "json":
		jsonOut = true
	default:
		return badInput(o.cmd, "--output must be text or json, got %q", c.String("output"))
	}
	o.json = jsonOut // keeps fact-gathering consoles off stdout
	ep, err := newRunPrinter(c, e, o, jsonOut)
	if err != nil {
		return err
	}
	defer ep.close()
	dp := newDiagPrinter(e, o.noColor)
	p, files, diags := playbook.Load(path, varInputs(c, e))
	if err := dp.report(path, files, diags); err != nil || p == nil {
		return err
	}
	var resume *journal.State
	if which := c.String("resume"); which != "" {
		if resume, err = findResume(stateDir(e), p.Name, which); err != nil {
			return &badInputError{Cmd: o.cmd, Err: err}
		}
	}
	if p.Settings.Window != nil && !c.Bool("ignore-window") {
		open, why, err := windowOpen(p.Settings.Window, e.clock())
		if err != nil {
			return &badInputError{Cmd: o.cmd, Err: fmt.Errorf("%s: settings.window: %w", path, err)}
		}
		if !open {
			return windowClosed(c.Context, p, ep, why)
		}
	}
	src, err := newFactSource(c, e, o)
	if err != nil {
		return err
	}
	src.facter = src.facter || p.Settings.Facter
	// A playbook that reads no fact needs of each host only what its steps need; a
	// fresh cache still serves, and --refresh or facter ask for everything.
	src.core = !src.refresh && !src.facter && !p.UsesFacts()

	// Target selection as planAction does it, so plan and run agree.
	inv, err := loadInventory(c.Context, o)
	if err != nil {
		return err
	}
	hosts, err := inv.Select(strings.Join(p.Targets.Hosts, ","))
	if err != nil {
		return &badInputError{Cmd: o.cmd, Err: fmt.Errorf("%s: targets.hosts: %w", path, err)}
	}
	if len(hosts) == 0 {
		return fmt.Errorf("no target hosts: targets.hosts %q matches no host in %s", p.Targets.Hosts, o.inventory)
	}
	ts, cfg, err := resolveTargets(o, hosts)
	if err != nil {
		return err
	}

	state := stateDir(e)
	if c.Bool("lock") || (p.Settings.Lock != nil && *p.Settings.Lock) {
		unlock, err := acquireLock(state, p.Name, ep.warn)
		if err != nil {
			ep.logLine(err.Error())
			return err
		}
		defer unlock()
	}

	s, err := openSessionFor(c, e, o, ts, cfg, src)
	if err != nil {
		return err
	}
	defer s.conn.Close()
	con := newConsole(e, o)
	con.progress = con.progress && !ep.quiet
	con.startProgress(0, len(ts))
	got, failed := src.gatherAll(c.Context, s, ts, con.hostDone)
	con.endProgress()
	if c.Context.Err() != nil {
		return errInterrupted
	}

	forks := 0
	if c.IsSet("forks") {
		forks = o.forks
	}
	doc, diags, err := buildPlan(planInput{
		p: p, files: files, targets: ts, facts: got, unreachable: failed, forks: forks, previewer: specPreviewer{},
	})
	if err != nil {
		return &badInputError{Cmd: o.cmd, Err: err}
	}
	if err := dp.report(path, files, diags); err != nil || doc == nil {
		return err
	}
	for _, u := range doc.Unreachable {
		fmt.Fprintf(e.stderr, "drover: %s: unreachable, left out of the rollout: %s\n", u.Host, u.Error)
	}
	if doc.Targets == 0 {
		return fmt.Errorf("%w", stages.ErrNoTargets)
	}
	chosen := chosenTargets(ts, got, doc)
	plan, err := stages.PlanStagesForks(p, chosen, forks)
	if err != nil {
		return &badInputError{Cmd: o.cmd, Err: fmt.Errorf("planning stages: %w", err)}
	}

	become := s.become
	if become == nil && p.Settings.Become != nil && *p.Settings.Become {
		become = &transport.Become{}
	}
	if become != nil && p.Settings.BecomeUser != "" {
		become.User = p.Settings.BecomeUser
	}
	var secrets []string
	if become != nil && len(become.Password) > 0 {
		secrets = append(secrets, string(become.Password))
	}
	stepTimeout := p.Settings.StepTimeout
	if c.IsSet("timeout") {
		stepTimeout = o.timeout
	}
	byName := make(map[string]stages.Target, len(chosen))
	for _, t := range chosen {
		byName[t.Name] = t
	}
	eng := &stages.Engine{
		Playbook: p, Plan: plan, Targets: byName,
		Conn:        sessionConnector(s),
		Forks:       settingsOf(p, forks).Forks,
		NoRollback:  c.Bool("no-rollback"),
		Yes:         c.Bool("yes"),
		StepTimeout: stepTimeout,
		Become:      become,
		Events:      ep.event,
		Confirm:     terminalConfirm(e, ep),
		Secrets:     secrets,
	}
	started := time.Now()
	if state != "" || resume != nil { // without a state directory there is nowhere to keep it (warned below)
		rj, err := openRunJournal(state, p, plan, resume, e.stderr)
		if err != nil {
			var coded interface{ ExitCode() int }
			if resume != nil && !errors.As(err, &coded) {
				return &badInputError{Cmd: o.cmd, Err: err} // the plan or variables no longer match: nothing ran
			}
			return err
		}
		defer rj.close()
		eng.RunID, eng.Resume, eng.Journal = rj.runID, rj.resume, rj.j.Append
	}
	if w := p.Settings.Window; w != nil && !c.Bool("ignore-window") {
		// Asked before each batch (and each host of remaining): a window
		// closing mid-run ends it window_closed, resumable.
		eng.Window = func() (bool, string) {
			open, why, _ := windowOpen(w, e.clock()) // its settings were checked above
			return open, why
		}
	}
	rep, err := eng.Run(c.Context)
	if err != nil {
		return &badInputError{Cmd: o.cmd, Err: err}
	}
	elapsed := time.Since(started)

	var written []string
	var writeErr error
	if state != "" {
		runFile := filepath.Join(state, "runs", rep.RunID, "report.json")
		if err := writeReport(runFile, rep, true); err != nil {
			writeErr = err
		} else {
			written = append(written, runFile)
		}
	} else {
		fmt.Fprintln(e.stderr, "drover: warning: no state directory ($DROVER_STATE_DIR, $XDG_STATE_HOME or $HOME): the run's report is not kept")
	}
	if f := c.String("report"); f != "" {
		if err := writeReport(f, rep, false); err != nil {
			writeErr = errors.Join(writeErr, err)
		} else {
			written = append(written, f)
		}
	}
	sumOut, pal := e.stdout, newPalette(useColor(e.stdoutTTY, e.getenv("NO_COLOR"), o.noColor))
	if jsonOut {
		sumOut, pal = e.stderr, ep.pal
	}
	if err := renderRunSummary(sumOut, pal, rep, len(doc.Unreachable), elapsed, written); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if writeErr != nil {
		fmt.Fprintf(e.stderr, "drover: error: writing the report: %v\n", writeErr)
	}
	sendNotify(c.Context, p, ep, summarizeRun(rep, reportPathOf(written)), secrets)
	if eng.Journal != nil && rep.Status == report.Interrupted {
		fmt.Fprintf(e.stderr, "drover: to continue this run: drover run %s --resume %s\n", path, rep.RunID)
	}
	return runOutcome(rep, len(doc.Unreachable), writeErr != nil)
}

// runOutcome maps the report to the command's error, and so to the exit code.
// Hosts left out as unreachable and a report that could not be written make a
// run that otherwise succeeded exit 1: something needs the operator's eye.
func runOutcome(rep *report.Report, unreachable int, writeFailed bool) error {
	code := report.ExitCode(rep.Status)
	switch code {
	case exitOK:
		if unreachable > 0 || writeFailed {
			return &hostsFailedError{Unreachable: unreachable}
		}
		return nil
	case exitHostsFailed:
		f, u := countFailed(rep)
		return &hostsFailedError{Failed: f, Unreachable: u + unreachable}
	case exitInterrupted:
		return errInterrupted
	case exitHalted:
		if rep.Status == report.WindowClosed {
			return &runExitError{code: exitHalted, msg: fmt.Sprintf("stopped: %s; continue with --resume %s", rep.Error, rep.RunID)}
		}
		return &runExitError{code: exitHalted, msg: "rollout halted: " + rep.Error}
	case exitNotStarted:
		return &runExitError{code: exitNotStarted, msg: "not started: " + rep.Error}
	}
	return fmt.Errorf("rollout did not start: %s", rep.Error)
}

func countFailed(rep *report.Report) (failed, unreachable int) {
	for _, st := range rep.Stages {
		for _, h := range st.Hosts {
			switch h.Status {
			case report.HostUnreachable:
				unreachable++
			case report.HostFailed, report.HostRolledBack:
				failed++
			}
		}
	}
	return failed, unreachable
}

// chosenTargets are the hosts buildPlan put into stages, in inventory order
// (the order PlanStagesForks was given there), so planning again gives the
// same plan.
func chosenTargets(ts []target, got map[string]facts.Facts, doc *planDoc) []stages.Target {
	in := map[string]bool{}
	for _, st := range doc.Stages {
		for _, h := range st.Hosts {
			in[h] = true
		}
	}
	var out []stages.Target
	for _, t := range ts {
		if in[t.host.Name] {
			out = append(out, stages.Target{Name: t.host.Name, Host: hostData(t), Facts: got[t.host.Name]})
		}
	}
	return out
}

// sessionConnector hands the engine the session's pooled connection for a
// host: the one facts were gathered over, kept for the whole run.
func sessionConnector(s *hostSession) stages.Connector {
	byName := make(map[string]target, len(s.ts))
	for _, t := range s.ts {
		byName[t.host.Name] = t
	}
	return stages.ConnectorFunc(func(ctx context.Context, host string) (transport.Runner, error) {
		t, ok := byName[host]
		if !ok {
			return nil, fmt.Errorf("%s: not a target of this run", host)
		}
		p, err := s.dial(ctx, t)
		if err != nil {
			if isUnreachable(err) && !errors.Is(err, transport.ErrUnreachable) {
				err = fmt.Errorf("%w: %w", transport.ErrUnreachable, err)
			}
			return nil, err
		}
		if r, ok := p.(transport.Runner); ok {
			return noClose{r}, nil
		}
		return runnerOf{p}, nil
	})
}

// noClose keeps the engine from closing a pooled connection (the pool owns it).
type noClose struct{ transport.Runner }

func (noClose) Close() error { return nil }

// Reconnect passes the reboot step's call for a fresh connection on
// (steps.Reconnector); a runner without it redials by itself.
func (n noClose) Reconnect(ctx context.Context) error {
	if rc, ok := n.Runner.(steps.Reconnector); ok {
		return rc.Reconnect(ctx)
	}
	return nil
}

var weekdays = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// windowOpen says whether now falls in the maintenance window. A window whose
// end is before its start spans midnight and belongs to the day it started.
func windowOpen(w *playbook.Window, now time.Time) (bool, string, error) {
	tz := w.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return false, "", fmt.Errorf("timezone: %w", err)
	}
	minutes := func(s string) (int, error) {
		t, err := time.Parse("15:04", s)
		if err != nil {
			return 0, fmt.Errorf("%q is not HH:MM", s)
		}
		return t.Hour()*60 + t.Minute(), nil
	}
	start, err := minutes(w.Start)
	if err != nil {
		return false, "", err
	}
	end, err := minutes(w.End)
	if err != nil {
		return false, "", err
	}
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	day := int(local.Weekday())
	dayOK := func(d int) bool { return len(w.Days) == 0 || slices.Contains(w.Days, weekdays[(d+7)%7]) }
	var open bool
	if start < end {
		open = m >= start && m < end && dayOK(day)
	} else {
		open = (m >= start && dayOK(day)) || (m < end && dayOK(day-1))
	}
	days := "every day"
	if len(w.Days) > 0 {
		days = strings.Join(w.Days, ",")
	}
	return open, fmt.Sprintf("%s %s-%s %s, now %s", days, w.Start, w.End, tz, local.Format("Mon 15:04")), nil
}

// writeReport writes rep atomically (temp file, fsync, rename) with mode 0600;
// mkdir creates the run directory (0700) first.
func writeReport(path string, rep *report.Report, mkdir bool) error {
	data, err := rep.JSON()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if mkdir {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	tmp, err := os.CreateTemp(dir, ".report-*.json")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename is durable once the directory is
		d.Close()
	}
	return nil
}

// eventPrinter renders the engine's events: a timestamped line each on stderr,
// or one JSON object each on stdout. The engine never calls it concurrently,
// but the confirm prompt reads its tally from another goroutine.
type eventPrinter struct {
	stderr io.Writer
	enc    *json.Encoder // --output json; nil for text
	pal    *palette
	plain  *palette // --log lines are never coloured
	quiet  bool     // --quiet: only errors (quietShows)
	log    *runLog  // --log FILE; nil without

	mu    sync.Mutex
	tally map[string]map[string]int // stage -> host status -> count, as hosts finish
	order []string
	err   error // first write error, so a closed stdout is reported once
}

func newEventPrinter(e *env, o *options, jsonOut bool) *eventPrinter {
	p := &eventPrinter{
		stderr: e.stderr, tally: map[string]map[string]int{},
		pal:   newPalette(useColor(e.stderrTTY, e.getenv("NO_COLOR"), o.noColor)),
		plain: newPalette(false),
	}
	if jsonOut {
		p.enc = json.NewEncoder(e.stdout)
		p.enc.SetEscapeHTML(false)
	}
	return p
}

func (p *eventPrinter) event(ev report.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Type {
	case report.StageStart:
		if p.tally[ev.Stage] == nil {
			p.tally[ev.Stage] = map[string]int{}
			p.order = append(p.order, ev.Stage)
		}
	case report.HostFinish:
		if p.tally[ev.Stage] == nil {
			p.tally[ev.Stage] = map[string]int{}
			p.order = append(p.order, ev.Stage)
		}
		p.tally[ev.Stage][ev.Status]++
	}
	p.logEvent(ev)
	if p.enc != nil {
		if err := p.enc.Encode(ev); err != nil && p.err == nil {
			p.err = err
			fmt.Fprintf(p.stderr, "drover: error: writing events: %v\n", err)
		}
		return
	}
	if !p.quiet || quietShows(ev) {
		io.WriteString(p.stderr, eventLine(p.pal, ev)+"\n")
	}
}

// statusText is the tally so far, for the confirm prompt's "status" answer.
func (p *eventPrinter) statusText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, st := range p.order {
		fmt.Fprintf(&b, "  stage %s: %s\n", st, countsText(p.tally[st]))
	}
	return b.String()
}

func countsText(m map[string]int) string {
	var parts []string
	for _, s := range hostStatusOrder {
		if m[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m[s], s))
		}
	}
	if len(parts) == 0 {
		return "no host finished yet"
	}
	return strings.Join(parts, ", ")
}

var hostStatusOrder = []string{report.HostOK, report.HostChanged, report.HostFailed, report.HostUnreachable,
	report.HostRolledBack, report.HostSkipped}

// colorStatus colours a status word by what it means.
func colorStatus(pal *palette, status string) string {
	switch status {
	case report.HostOK, report.HostChanged, report.Succeeded, report.Passed:
		return pal.ok.Sprint(status)
	case report.HostUnreachable, report.CompletedWithFailures, report.Interrupted:
		return pal.unreachable.Sprint(status)
	case report.HostSkipped:
		return pal.dim.Sprint(status)
	case "":
		return ""
	}
	return pal.failed.Sprint(status)
}

// eventLine is one event as a plain line: time, then what happened.
func eventLine(pal *palette, ev report.Event) string {
	ev = sanitizeEvent(ev) // details come from hosts: no terminal controls, one line
	ts := ev.Time.UTC().Format(report.TimeFormat)
	if ev.Time.IsZero() {
		ts = "-"
	}
	withDetail := func(s string) string {
		if ev.Detail != "" {
			return s + ": " + ev.Detail
		}
		return s
	}
	hosts := "[" + strings.Join(ev.Hosts, " ") + "]"
	step := ev.Step
	if ev.Phase != "" && ev.Phase != report.PhaseSteps {
		step = ev.Phase + " " + ev.Step
	}
	var s string
	switch ev.Type {
	case report.RunStart:
		s = fmt.Sprintf("run %s started: playbook %s", ev.RunID, ev.Detail)
	case report.RunFinish:
		s = withDetail(fmt.Sprintf("run %s %s", ev.RunID, colorStatus(pal, ev.Status)))
	case report.StageStart:
		s = fmt.Sprintf("stage %s started %s", pal.bold.Sprint(ev.Stage), hosts)
	case report.StageFinish:
		s = fmt.Sprintf("stage %s %s", pal.bold.Sprint(ev.Stage), colorStatus(pal, ev.Status))
	case report.BatchStart:
		s = fmt.Sprintf("stage %s batch %d started %s", ev.Stage, ev.Batch, hosts)
	case report.BatchFinish:
		s = fmt.Sprintf("stage %s batch %d finished", ev.Stage, ev.Batch)
	case report.HostStart:
		s = fmt.Sprintf("%s started (stage %s)", pal.bold.Sprint(ev.Host), ev.Stage)
	case report.HostFinish:
		s = withDetail(fmt.Sprintf("%s %s", pal.bold.Sprint(ev.Host), colorStatus(pal, ev.Status)))
	case report.StepStart:
		s = fmt.Sprintf("%s %s ...", ev.Host, step)
	case report.StepFinish:
		s = fmt.Sprintf("%s %s: %s", ev.Host, step, colorStatus(pal, ev.Status))
		if ev.Detail != "" {
			s += " " + ev.Detail
		}
		s += pal.dim.Sprintf(" (%s)", fmtDuration(time.Duration(ev.DurationMS)*time.Millisecond))
	case report.GateStart:
		s = fmt.Sprintf("stage %s gate after batch %d: checking", ev.Stage, ev.Batch)
	case report.GateCheck, report.GateFinish:
		var parts []string
		for _, c := range ev.Checks {
			parts = append(parts, fmt.Sprintf("%s %s (%s)", c.Name, colorStatus(pal, c.Status), c.Detail))
		}
		if ev.Type == report.GateCheck {
			s = fmt.Sprintf("stage %s gate %s: %s", ev.Stage, ev.Detail, strings.Join(parts, "; "))
		} else {
			s = withDetail(fmt.Sprintf("stage %s gate %s", ev.Stage, colorStatus(pal, ev.Status)))
		}
	case report.PauseStart:
		s = fmt.Sprintf("stage %s pause %s after batch %d", ev.Stage, fmtDuration(time.Duration(ev.DurationMS)*time.Millisecond), ev.Batch)
	case report.PauseFinish:
		s = fmt.Sprintf("stage %s pause over", ev.Stage)
	case report.HaltRequested:
		s = withDetail(fmt.Sprintf("%s stage %s", pal.failed.Sprint("HALT"), ev.Stage))
	default:
		s = withDetail(fmt.Sprintf("%s %s %s %s", ev.Type, ev.Stage, ev.Host, ev.Status))
	}
	return ts + " " + s
}

// renderRunSummary prints the outcome, a table of stages with host counts by
// status, the hosts that failed and where the report is.
func renderRunSummary(w io.Writer, pal *palette, rep *report.Report, unreachable int, elapsed time.Duration, written []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\nrun %s of %s: %s (exit %d) in %s\n", rep.RunID, rep.Playbook, colorStatus(pal, rep.Status),
		report.ExitCode(rep.Status), elapsed.Round(time.Millisecond))
	if rep.Error != "" {
		fmt.Fprintf(&b, "  %s\n", sanitizeLine(rep.Error))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tKIND\tSTATUS\tHOSTS\tOK\tCHANGED\tFAILED\tUNREACHABLE\tROLLED_BACK\tSKIPPED\tGATE")
	for _, st := range rep.Stages {
		n := map[string]int{}
		for _, h := range st.Hosts {
			n[h.Status]++
		}
		gate := "-"
		if st.Gate != nil {
			gate = st.Gate.Status
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", st.Name, st.Kind, st.Status, len(st.Hosts),
			n[report.HostOK], n[report.HostChanged], n[report.HostFailed], n[report.HostUnreachable],
			n[report.HostRolledBack], n[report.HostSkipped], gate)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var bad []string
	for _, st := range rep.Stages {
		for _, h := range st.Hosts {
			if report.HostFailedStatus(h.Status) {
				bad = append(bad, fmt.Sprintf("  %s %s: %s\n", pal.bold.Sprint(h.Name), colorStatus(pal, h.Status), sanitizeLine(h.Error)))
			}
		}
	}
	if len(bad) > 0 {
		b.WriteString("\nfailed hosts:\n")
		b.WriteString(strings.Join(bad, ""))
	}
	if unreachable > 0 {
		fmt.Fprintf(&b, "\n%s left out: unreachable when gathering facts\n", plural(unreachable, "host"))
	}
	for _, f := range written {
		fmt.Fprintf(&b, "report: %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// terminalConfirm asks confirm gates on the terminal: continue, abort, or show
// the status so far. Without a terminal there is nobody to ask: nil, and the
// engine fails the gate unless --yes.
func terminalConfirm(e *env, ep *eventPrinter) func(ctx context.Context, prompt string) (bool, error) {
	if e.readPassword == nil {
		return nil
	}
	return func(ctx context.Context, prompt string) (bool, error) {
		type answer struct {
			s   string
			err error
		}
		for {
			ch := make(chan answer, 1)
			go func() {
				// The terminal reader is the one env has; it does not echo, so
				// the answer is repeated below.
				b, err := e.readPassword(prompt + " [y]es / [n]o, abort / [s]tatus: ")
				ch <- answer{strings.ToLower(strings.TrimSpace(string(b))), err}
			}()
			var a answer
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case a = <-ch:
			}
			if a.err != nil {
				return false, a.err
			}
			switch a.s {
			case "y", "yes":
				fmt.Fprintln(e.stderr, "-> continue")
				return true, nil
			case "n", "no", "a", "abort":
				fmt.Fprintln(e.stderr, "-> abort")
				return false, nil
			case "s", "status":
				fmt.Fprint(e.stderr, ep.statusText())
			default:
				fmt.Fprintf(e.stderr, "please answer y, n or s (got %s)\n", strconv.Quote(a.s))
			}
		}
	}
}
