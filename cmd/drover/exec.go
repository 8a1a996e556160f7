package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drover-sh/drover/transport"
	"github.com/urfave/cli/v2"
)

// execFlags are exec's own flags.
func execFlags() []cli.Flag {
	return append(batchFlags(),
		append(adhocLogFlags(),
			&cli.BoolFlag{Name: "group", Usage: "print each host's output whole when it finishes, instead of line by line as it arrives"})...,
	)
}

// execResult is one host's outcome, and its element of the JSON "hosts" array.
type execResult struct {
	Name       string    `json:"name"`
	Status     string    `json:"status"`
	ExitCode   *int      `json:"exit_code"` // null when the command did not run to an exit status
	Signal     string    `json:"signal,omitempty"`
	Stdout     string    `json:"stdout"`
	Stderr     string    `json:"stderr"`
	Truncated  bool      `json:"truncated,omitempty"`
	Error      string    `json:"error"`
	Started    time.Time `json:"started"` // zero when not started
	Finished   time.Time `json:"finished"`
	DurationMS float64   `json:"duration_ms"`
	Batch      int       `json:"batch"` // 1-based; every host is in batch 1 without --batch
}

// execSummary is the mco-style tail.
type execSummary struct {
	Total            int      `json:"total"`
	OK               int      `json:"ok"`
	Failed           int      `json:"failed"`
	Unreachable      int      `json:"unreachable"`
	Skipped          int      `json:"skipped"`
	OKHosts          []string `json:"ok_hosts"`
	FailedHosts      []string `json:"failed_hosts"`
	UnreachableHosts []string `json:"unreachable_hosts"`
	SkippedHosts     []string `json:"skipped_hosts"`
	Batches          int      `json:"batches"`
	DurationMS       float64  `json:"duration_ms"`
	Interrupted      bool     `json:"interrupted"`
}

type execDoc struct {
	Command string       `json:"command"`
	Hosts   []execResult `json:"hosts"`
	Summary execSummary  `json:"summary"`
}

// splitRemote separates exec's positionals into PATTERN and the remote command:
// reorderArgs leaves "--" between them when the user wrote one.
func splitRemote(args []string) (positionals, remote []string, found bool) {
	for i, a := range args {
		if a == "--" {
			return args[:i], args[i+1:], true
		}
	}
	return args, nil, false
}

// parseBatch reads --batch: "N" or "P%" of total, rounded up, at least 1.
// "" means one batch of everything.
func parseBatch(s string, total int) (int, error) {
	if s == "" {
		return max(total, 1), nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v > 100 || math.IsNaN(v) {
			return 0, fmt.Errorf("--batch %s: want a percentage in (0, 100]", s)
		}
		return max(1, int(math.Ceil(v*float64(total)/100))), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--batch %s: want a positive host count or a percentage like 25%%", s)
	}
	return n, nil
}

func execAction(c *cli.Context, e *env) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	pos, remote, found := splitRemote(c.Args().Slice())
	if !found || len(remote) == 0 {
		return badInput(o.cmd, "no remote command: write it after --, e.g. drover exec web -- uptime")
	}
	if len(pos) > 1 {
		return badInput(o.cmd, "exec takes at most one PATTERN before --, got %q (join patterns with , or :)", pos)
	}
	pattern := "all"
	if len(pos) == 1 {
		pattern = pos[0]
	}
	// As ssh does: the words are joined with spaces and the remote shell parses them.
	command := strings.Join(remote, " ")
	if err := checkBatchFlags(c, o); err != nil {
		return err
	}

	src, err := newFactSource(c, e, o)
	if err != nil {
		return err
	}
	s, err := openSession(c, e, o, pattern, src)
	if err != nil {
		return err
	}
	defer s.conn.Close()
	size, _ := parseBatch(c.String("batch"), len(s.ts))

	con := newConsole(e, o)
	if err := setupConsoleLog(c, con, o); err != nil {
		return err
	}
	defer con.closeLog()
	x := &execRun{
		s:       s,
		command: command,
		group:   c.Bool("group"),
		con:     con,
		pal:     newPalette(useColor(e.stdoutTTY, e.getenv("NO_COLOR"), o.noColor)),
	}
	start := time.Now()
	results := x.run(c.Context, size, c.Duration("batch-sleep"))
	con.endProgress()
	sum := summarizeExec(results, c.Context.Err() != nil, time.Since(start))
	if o.json {
		err = writeJSON(e.stdout, execDoc{Command: command, Hosts: results, Summary: sum})
	} else {
		err = renderExecSummary(e.stdout, x.pal, sum, results)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return hostsOutcome(sum.Interrupted, sum.Failed, sum.Unreachable)
}

// execRun is one exec invocation in progress.
type execRun struct {
	s       *hostSession
	command string
	group   bool
	con     *console
	pal     *palette
}

// run executes the command on every target, size hosts per batch with pause
// between batches, and returns the results in target order (hosts the filters could
// not reach first reported as unreachable, after the targets).
func (x *execRun) run(ctx context.Context, size int, sleep time.Duration) []execResult {
	ts := x.s.ts
	results := make([]execResult, len(ts))
	// Hosts lost while gathering facts for the filters are already done.
	x.con.startProgress(len(x.s.unknown), len(ts)+len(x.s.unknown))
	next := runBatches(ctx, len(ts), size, x.s.o.forks, sleep, func(work context.Context, i, batch int) {
		results[i] = x.one(work, ts[i], batch)
		x.con.hostDone()
	})
	for i := next; i < len(ts); i++ {
		results[i] = execResult{Name: ts[i].host.Name, Status: statusSkipped, Error: "not started: interrupted"}
	}
	for _, u := range x.s.unknown {
		results = append(results, execResult{Name: u.t.host.Name, Status: statusUnreachable, Error: u.err.Error()})
	}
	return results
}

// one runs the command on one host.
func (x *execRun) one(ctx context.Context, t target, batch int) (r execResult) {
	r = execResult{Name: t.host.Name, Batch: batch, Started: time.Now()}
	defer func() {
		r.Finished = time.Now()
		r.DurationMS = ms(r.Finished.Sub(r.Started))
		if x.group {
			x.con.group(x.pal, r)
		} else if r.Status != statusOK {
			x.con.status(x.pal, r)
		}
	}()
	p, err := x.s.dial(ctx, t)
	if err != nil {
		r.Error = err.Error()
		r.Status = statusFailed
		if isUnreachable(err) {
			r.Status = statusUnreachable
		}
		return r
	}
	defer x.s.release(t) // exec runs one command a host: hold no connection after it
	cmd := &transport.Command{Cmd: x.command, Timeout: x.s.o.timeout, Become: x.s.become}
	var outW, errW *lineWriter
	if !x.group && (!x.s.o.json || x.con.log != nil) {
		// With --json the lines go only to --log: the document has the output.
		prefix := x.pal.bold.Sprint(t.host.Name) + ": "
		outW = &lineWriter{con: x.con, toStderr: false, prefix: prefix, logOnly: x.s.o.json}
		errW = &lineWriter{con: x.con, toStderr: true, prefix: prefix, logOnly: x.s.o.json}
		cmd.Stdout, cmd.Stderr = outW, errW
	}
	res, err := p.Run(ctx, cmd)
	if outW != nil {
		outW.flush()
		errW.flush()
	}
	if res != nil {
		r.Stdout, r.Stderr, r.Truncated = string(res.Stdout), string(res.Stderr), res.Truncated
	}
	switch {
	case err != nil:
		r.Error = err.Error()
		r.Status = statusFailed
		if errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrConnLost) {
			r.Status = statusUnreachable
		}
	case res.Signal != "":
		r.Status, r.Signal = statusFailed, res.Signal
		r.Error = "killed by signal " + res.Signal
	default:
		code := res.ExitCode
		r.ExitCode = &code
		r.Status = statusOK
		if code != 0 {
			r.Status = statusFailed
			r.Error = fmt.Sprintf("exit status %d", code)
		}
	}
	return r
}

func summarizeExec(results []execResult, interrupted bool, took time.Duration) execSummary {
	s := execSummary{
		Total: len(results), OKHosts: []string{}, FailedHosts: []string{},
		UnreachableHosts: []string{}, SkippedHosts: []string{},
		DurationMS: ms(took), Interrupted: interrupted,
	}
	for _, r := range results {
		s.Batches = max(s.Batches, r.Batch)
		switch r.Status {
		case statusOK:
			s.OK++
			s.OKHosts = append(s.OKHosts, r.Name)
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
	return s
}

// renderExecSummary prints the mco-style tail: counts, then the hosts of each
// outcome (failed ones with their reason), then the timing.
func renderExecSummary(w io.Writer, pal *palette, s execSummary, results []execResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s: %s ok, %s failed, %s unreachable",
		pal.bold.Sprint(plural(s.Total, "host")),
		pal.ok.Sprint(s.OK), pal.failed.Sprint(s.Failed), pal.unreachable.Sprint(s.Unreachable))
	if s.Skipped > 0 {
		fmt.Fprintf(&b, ", %d not started", s.Skipped)
	}
	b.WriteString("\n")
	if s.OK > 0 {
		fmt.Fprintf(&b, "ok: %s\n", strings.Join(s.OKHosts, ", "))
	}
	var failed []string
	for _, r := range results {
		if r.Status == statusFailed {
			failed = append(failed, fmt.Sprintf("%s (%s)", r.Name, r.Error))
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
		fmt.Fprintf(&b, " (%s)", fmt.Sprintf("%d batches", s.Batches))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// console serialises everything the hosts print, so lines from different hosts
// never interleave mid-line, and draws a progress counter on a terminal.
type console struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
	quiet          bool    // --json: stdout carries only the document
	brief          bool    // --quiet: only failed and unreachable hosts' lines
	log            *runLog // --log FILE: every line, whatever is shown; nil without
	progress       bool    // stderr is a terminal: show [n/total]
	drawn          bool
	done, total    int
}

func newConsole(e *env, o *options) *console {
	return &console{
		stdout: e.stdout, stderr: e.stderr, quiet: o.json,
		progress: e.stderrTTY,
	}
}

// clearLocked erases the progress line before other output goes to the terminal.
func (c *console) clearLocked() {
	if c.drawn {
		io.WriteString(c.stderr, "\r\x1b[K")
		c.drawn = false
	}
}

func (c *console) drawLocked() {
	if c.progress && c.total > 1 {
		fmt.Fprintf(c.stderr, "\r\x1b[K[%d/%d] hosts", c.done, c.total)
		c.drawn = true
	}
}

func (c *console) startProgress(done, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done, c.total = done, total
	c.drawLocked()
}

func (c *console) hostDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done++
	c.clearLocked()
	c.drawLocked()
}

func (c *console) endProgress() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
	c.progress = false
}

// write prints one or more whole lines of a host's output, or an ok outcome.
func (c *console) write(toStderr bool, text string) {
	c.out(toStderr, !(c.quiet && !toStderr) && !c.brief, text)
}

// outcome prints a host's outcome line; a failed or unreachable host's shows
// even with --quiet.
func (c *console) outcome(status, text string) {
	c.out(false, !c.quiet && (!c.brief || (status != statusOK && status != statusChanged)), text)
}

// out appends whole lines to --log and prints them when show.
func (c *console) out(toStderr, show bool, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logLines(text)
	if !show {
		return
	}
	c.clearLocked()
	w := c.stdout
	if toStderr {
		w = c.stderr
	}
	io.WriteString(w, text)
	c.drawLocked()
}

// status prints a host's outcome when it was not ok (streamed mode).
func (c *console) status(pal *palette, r execResult) {
	c.outcome(r.Status, fmt.Sprintf("%s: %s\n", pal.bold.Sprint(r.Name), pal.status(r.Status, "["+r.Status+": "+sanitizeLine(r.Error)+"]")))
}

// group prints a finished host's whole output under one header.
func (c *console) group(pal *palette, r execResult) {
	var b strings.Builder
	head := r.Status
	if r.Error != "" {
		head += ": " + sanitizeLine(r.Error)
	}
	fmt.Fprintf(&b, "%s %s %s\n", pal.bold.Sprint(r.Name), pal.status(r.Status, "["+head+"]"), pal.dim.Sprint(fmtMS(r.DurationMS)))
	for _, stream := range []string{r.Stdout, r.Stderr} {
		if stream == "" {
			continue
		}
		for _, line := range strings.Split(strings.TrimSuffix(stream, "\n"), "\n") {
			b.WriteString("    " + sanitize(line) + "\n")
		}
	}
	c.outcome(r.Status, b.String())
}

// maxLine is how much of a line without a newline is held back before it is
// printed anyway, so one endless line cannot grow without bound.
const maxLine = 64 << 10

// lineWriter prefixes each complete line of one host's stream and hands it to the
// console whole; a partial last line waits for its newline (or flush).
type lineWriter struct {
	mu       sync.Mutex
	con      *console
	toStderr bool
	logOnly  bool // --json with --log: the lines go to the log only
	prefix   string
	buf      []byte
}

func (l *lineWriter) emit(text string) {
	if l.logOnly {
		l.con.out(l.toStderr, false, text)
		return
	}
	l.con.write(l.toStderr, text)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	var out strings.Builder
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		out.WriteString(l.prefix)
		out.WriteString(sanitize(string(l.buf[:i+1])))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > maxLine {
		out.WriteString(l.prefix)
		out.WriteString(sanitize(string(l.buf)))
		out.WriteString("\n")
		l.buf = l.buf[:0]
	}
	if out.Len() > 0 {
		l.emit(out.String())
	}
	return len(p), nil
}

// flush prints a last line that had no newline.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.prefix + sanitize(string(l.buf)) + "\n")
		l.buf = nil
	}
}
