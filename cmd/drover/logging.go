package main

// What a run prints besides its events and summary: --log FILE (the same
// timestamped event lines, appended, never coloured), --quiet (only the final
// summary and errors), warnings, and the playbook's notify block at the end.
// The ad-hoc commands (exec, package, service, puppet) take --log and --quiet
// too, for their per-host lines.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/notify"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/report"
)

// logFlags are run's output flags beyond --output.
func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log", Usage: "also append every event line, timestamped and uncoloured, to `FILE` (created 0600)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the final summary and errors (halts, failed hosts, warnings)"},
		&cli.BoolFlag{Name: "lock", Usage: "take the playbook's lock even when settings.lock is not set"},
	}
}

// adhocLogFlags are --log and --quiet for the ad-hoc commands.
func adhocLogFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log", Usage: "also append every per-host line, timestamped and uncoloured, to `FILE` (created 0600)"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the final summary and the failed or unreachable hosts' lines"},
	}
}

// setupConsoleLog applies an ad-hoc command's --quiet and --log to con; the
// caller closes con's log when the command is over.
func setupConsoleLog(c *cli.Context, con *console, o *options) error {
	con.brief = c.Bool("quiet")
	if f := c.String("log"); f != "" {
		l, err := openRunLog(f)
		if err != nil {
			return &badInputError{Cmd: o.cmd, Err: err}
		}
		con.log = l
	}
	return nil
}

// sgr matches the colour codes the palette adds; host text has had its own
// escapes removed (sanitize) before it reaches the console.
var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// logLines appends text's lines to --log, timestamped and uncoloured, as the
// run's log has them. Called with c.mu held, so lines keep their order.
func (c *console) logLines(text string) {
	if c.log == nil {
		return
	}
	ts := time.Now().UTC().Format(report.TimeFormat)
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if err := c.log.line(ts + " " + sgr.ReplaceAllString(l, "")); err != nil {
			fmt.Fprintf(c.stderr, "drover: error: %v\n", err)
		}
	}
}

func (c *console) closeLog() {
	if err := c.log.close(); err != nil {
		fmt.Fprintf(c.stderr, "drover: error: %v\n", err)
	}
}

// runLog appends lines to --log FILE. O_APPEND keeps lines whole when two
// runs share one log file.
type runLog struct {
	mu   sync.Mutex
	f    *os.File
	path string
	err  error // first write error, reported once
}

func openRunLog(path string) (*runLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--log: %w", err)
	}
	return &runLog{f: f, path: path}, nil
}

// line appends s and a newline; it returns the first write error only once.
func (l *runLog) line(s string) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil
	}
	if _, err := l.f.WriteString(s + "\n"); err != nil {
		l.err = fmt.Errorf("--log %s: %w", l.path, err)
		return l.err
	}
	return nil
}

func (l *runLog) close() error {
	if l == nil {
		return nil
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("--log %s: %w", l.path, err)
	}
	return nil
}

// newRunPrinter is newEventPrinter with run's --quiet and --log applied. The
// caller closes it (the log file) when the run is over.
func newRunPrinter(c *cli.Context, e *env, o *options, jsonOut bool) (*eventPrinter, error) {
	p := newEventPrinter(e, o, jsonOut)
	p.quiet = c.Bool("quiet")
	if f := c.String("log"); f != "" {
		l, err := openRunLog(f)
		if err != nil {
			return nil, &badInputError{Cmd: o.cmd, Err: err}
		}
		p.log = l
	}
	return p, nil
}

// quietShows says whether --quiet still prints ev: it is an error the
// operator must see (a halt, a host that failed).
func quietShows(ev report.Event) bool {
	return ev.Type == report.HaltRequested || (ev.Type == report.HostFinish && report.HostFailedStatus(ev.Status))
}

// logEvent appends ev's plain line to --log.
func (p *eventPrinter) logEvent(ev report.Event) {
	if p.log == nil {
		return
	}
	if err := p.log.line(eventLine(p.plain, ev)); err != nil {
		fmt.Fprintf(p.stderr, "drover: error: %v\n", err)
	}
}

// warn prints a warning on stderr (even with --quiet) and appends it,
// timestamped, to --log.
func (p *eventPrinter) warn(msg string) {
	fmt.Fprintf(p.stderr, "drover: warning: %s\n", msg)
	if err := p.log.line(time.Now().UTC().Format(report.TimeFormat) + " warning: " + msg); err != nil {
		fmt.Fprintf(p.stderr, "drover: error: %v\n", err)
	}
}

// logLine appends msg, timestamped, to --log only: for outcomes stderr shows
// as the command's error.
func (p *eventPrinter) logLine(msg string) {
	if err := p.log.line(time.Now().UTC().Format(report.TimeFormat) + " " + msg); err != nil {
		fmt.Fprintf(p.stderr, "drover: error: %v\n", err)
	}
}

func (p *eventPrinter) close() {
	if err := p.log.close(); err != nil {
		fmt.Fprintf(p.stderr, "drover: error: %v\n", err)
	}
}

// sendNotify delivers the run summary to the playbook's notify block. It runs
// after an interrupt too (the run context is cancelled by then, so it gets
// its own) and only ever warns: a failing webhook never changes the result.
func sendNotify(ctx context.Context, p *playbook.Playbook, ep *eventPrinter, sum runSummary, secrets []string) {
	if p.Notify == nil {
		return
	}
	sum.Controller, _ = os.Hostname()
	b, err := json.Marshal(sum)
	if err != nil {
		ep.warn(fmt.Sprintf("notify: %v", err))
		return
	}
	if err := notify.Send(context.WithoutCancel(ctx), p.Notify, b); err != nil {
		// A command's stderr may echo a sensitive variable back.
		red := report.NewRedactor(append(secrets, p.Secrets()...)...)
		ep.warn(red.String(err.Error()) + " (the run's result stands)")
	}
}

// windowClosed is the outcome of a run refused by its maintenance window:
// notified like every other end of a run, then exit 5.
func windowClosed(ctx context.Context, p *playbook.Playbook, ep *eventPrinter, why string) error {
	msg := "the maintenance window is closed: " + why
	now := report.At(time.Now())
	ep.logLine("not started: " + msg)
	sendNotify(ctx, p, ep, runSummary{Playbook: p.Name, Status: report.WindowClosed,
		ExitCode: exitNotStarted, Error: msg, Started: now, Finished: now}, nil)
	return &runExitError{code: exitNotStarted, msg: "not started: " + msg}
}
