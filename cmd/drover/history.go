package main

// drover history and drover report: past runs from <state>/runs/<id>/. A run
// directory with report.json is a finished run; one with only the journal
// (journal.jsonl) is a run that is still going or crashed before its report.
// runSummary is also what notify sends: one compact shape for both.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/report"
)

// statusIncomplete is history's status of a run with a journal and no report.
const statusIncomplete = "incomplete"

// runSummary is one run in brief: history --json's entries and the JSON a
// playbook's notify block delivers (docs/playbooks.md, notify).
type runSummary struct {
	RunID       string         `json:"run_id,omitempty"` // "" when the run never started (window closed)
	Playbook    string         `json:"playbook"`
	Status      string         `json:"status"`
	ExitCode    int            `json:"exit_code"`
	Error       string         `json:"error,omitempty"`
	Started     report.Time    `json:"started"`
	Finished    report.Time    `json:"finished"`
	DurationMS  int64          `json:"duration_ms"`
	Hosts       hostCounts     `json:"hosts"`
	Stages      []stageSummary `json:"stages,omitempty"`
	FailedHosts []failedHost   `json:"failed_hosts,omitempty"`
	Controller  string         `json:"controller,omitempty"`
	Report      string         `json:"report,omitempty"`  // the run directory's report.json
	Journal     string         `json:"journal,omitempty"` // incomplete runs: what --resume reads
}

// hostCounts counts hosts by status (SPEC §5).
type hostCounts struct {
	Total       int `json:"total"`
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	RolledBack  int `json:"rolled_back"`
	Skipped     int `json:"skipped"`
}

func (c *hostCounts) add(status string) {
	c.Total++
	switch status {
	case report.HostOK:
		c.OK++
	case report.HostChanged:
		c.Changed++
	case report.HostFailed:
		c.Failed++
	case report.HostUnreachable:
		c.Unreachable++
	case report.HostRolledBack:
		c.RolledBack++
	case report.HostSkipped:
		c.Skipped++
	}
}

type stageSummary struct {
	Name   string     `json:"name"`
	Kind   string     `json:"kind"`
	Status string     `json:"status"`
	Gate   string     `json:"gate,omitempty"`
	Hosts  hostCounts `json:"hosts"`
}

type failedHost struct {
	Name   string `json:"name"`
	Stage  string `json:"stage"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// summarizeRun condenses a report; reportPath is where it is kept ("" if nowhere).
func summarizeRun(rep *report.Report, reportPath string) runSummary {
	s := runSummary{
		RunID: rep.RunID, Playbook: rep.Playbook, Status: rep.Status, ExitCode: report.ExitCode(rep.Status),
		Error: rep.Error, Started: rep.Started, Finished: rep.Finished, Report: reportPath,
	}
	if !rep.Started.IsZero() && !rep.Finished.IsZero() {
		s.DurationMS = rep.Finished.Sub(rep.Started.Time).Milliseconds()
	}
	for _, st := range rep.Stages {
		ss := stageSummary{Name: st.Name, Kind: st.Kind, Status: st.Status}
		if st.Gate != nil {
			ss.Gate = st.Gate.Status
		}
		for _, h := range st.Hosts {
			ss.Hosts.add(h.Status)
			s.Hosts.add(h.Status)
			if report.HostFailedStatus(h.Status) {
				s.FailedHosts = append(s.FailedHosts, failedHost{Name: h.Name, Stage: st.Name, Status: h.Status, Error: h.Error})
			}
		}
		s.Stages = append(s.Stages, ss)
	}
	return s
}

// pastRun is one run directory.
type pastRun struct {
	id      string
	dir     string
	rep     *report.Report // nil: incomplete
	summary runSummary
}

// listRuns reads every run directory under state, newest first. A report that
// cannot be read is a warning, not the end of the listing.
func listRuns(state string, warn func(string)) ([]pastRun, error) {
	root := filepath.Join(state, "runs")
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading runs: %w", err)
	}
	var runs []pastRun
	for _, de := range entries {
		if !de.IsDir() {
			continue
		}
		r := pastRun{id: de.Name(), dir: filepath.Join(root, de.Name())}
		repPath := filepath.Join(r.dir, "report.json")
		b, err := os.ReadFile(repPath)
		switch {
		case err == nil:
			var rep report.Report
			if err := json.Unmarshal(b, &rep); err != nil {
				warn(fmt.Sprintf("%s: %v", repPath, err))
				continue
			}
			r.rep = &rep
			r.summary = summarizeRun(&rep, repPath)
		case errors.Is(err, fs.ErrNotExist):
			jp := filepath.Join(r.dir, "journal.jsonl")
			if _, err := os.Stat(jp); err != nil {
				continue // neither report nor journal: not a run (yet)
			}
			r.summary = runSummary{RunID: r.id, Status: statusIncomplete, ExitCode: -1, Journal: jp}
			// Run ids start with their start time (stages.newRunID).
			if len(r.id) >= 16 {
				if t, err := time.Parse("20060102T150405Z", r.id[:16]); err == nil {
					r.summary.Started = report.At(t)
				}
			}
		default:
			warn(fmt.Sprintf("%s: %v", repPath, err))
			continue
		}
		runs = append(runs, r)
	}
	sort.SliceStable(runs, func(i, j int) bool {
		a, b := runs[i].summary.Started.Time, runs[j].summary.Started.Time
		if !a.Equal(b) {
			return a.After(b)
		}
		return runs[i].id > runs[j].id
	})
	return runs, nil
}

func historyCommand(e *env) *cli.Command {
	return runsCommand("history", "list past runs, newest first: id, playbook, start, duration, status, hosts ok/failed", "",
		"Reads the state directory's runs/. A run with a journal and no report is "+statusIncomplete+":\n"+
			"still running, or it crashed or was killed (drover run PLAYBOOK --resume RUN continues it).\n"+
			"--json prints a list of run summaries (the shape notify sends).",
		"print the runs as JSON", func(c *cli.Context) error { return historyAction(c, e) })
}

func reportCommand(e *env) *cli.Command {
	return runsCommand("report", "print a past run's summary again, or its JSON report", "RUN|last",
		"RUN is a run id from drover history (a unique prefix will do), or last for the newest run.\n"+
			"--json prints the report exactly as it was written (SPEC §5).",
		"print the JSON report", func(c *cli.Context) error { return reportAction(c, e) })
}

// runsCommand is a command reading past runs (history, report): both take --json
// (jsonUsage says what it prints) and --no-color.
func runsCommand(name, usage, argsUsage, description, jsonUsage string, action cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name:            name,
		Usage:           usage,
		ArgsUsage:       argsUsage,
		Description:     description,
		HideHelpCommand: true,
		OnUsageError:    usageError,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: jsonUsage},
			&cli.BoolFlag{Name: "no-color", Usage: "no colour even on a terminal"},
		},
		Action: action,
	}
}

// pastRuns lists the state directory's runs (warning on stderr about any it cannot
// read) and returns the directory too.
func pastRuns(c *cli.Context, e *env) (string, []pastRun, error) {
	state := stateDir(e)
	if state == "" {
		return "", nil, badInput(cmdPath(c), "no state directory ($DROVER_STATE_DIR, $XDG_STATE_HOME or $HOME): no runs are kept")
	}
	runs, err := listRuns(state, func(s string) { fmt.Fprintf(e.stderr, "drover: warning: %s\n", s) })
	if err != nil {
		return "", nil, err
	}
	return state, runs, nil
}

func historyAction(c *cli.Context, e *env) error {
	if c.Args().Present() {
		return badInput(cmdPath(c), "takes no arguments, got %q", c.Args().Slice())
	}
	state, runs, err := pastRuns(c, e)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		out := make([]runSummary, 0, len(runs))
		for _, r := range runs {
			out = append(out, r.summary)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		return nil
	}
	if len(runs) == 0 {
		_, err := fmt.Fprintf(e.stderr, "no runs in %s\n", filepath.Join(state, "runs"))
		return err
	}
	pal := newPalette(useColor(e.stdoutTTY, e.getenv("NO_COLOR"), c.Bool("no-color")))
	if err := renderHistory(e.stdout, pal, runs); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// renderHistory prints one row a run. OK counts ok and changed hosts; FAILED
// counts failed, unreachable and rolled back ones (what a budget counts).
func renderHistory(w io.Writer, pal *palette, runs []pastRun) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPLAYBOOK\tSTARTED\tDURATION\tSTATUS\tHOSTS\tOK\tFAILED")
	for _, r := range runs {
		s := r.summary
		started, dur, pb := "-", "-", s.Playbook
		if !s.Started.IsZero() {
			started = s.Started.UTC().Format(time.RFC3339)
		}
		if r.rep == nil {
			pb = "?"
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.id, pb, started, dur, pal.unreachable.Sprint(s.Status), "-", "-", "-")
			continue
		}
		if !s.Finished.IsZero() {
			dur = fmtDuration((time.Duration(s.DurationMS) * time.Millisecond).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", r.id, pb, started, dur, colorStatus(pal, s.Status),
			s.Hosts.Total, s.Hosts.OK+s.Hosts.Changed, s.Hosts.Failed+s.Hosts.Unreachable+s.Hosts.RolledBack)
	}
	return tw.Flush()
}

func reportAction(c *cli.Context, e *env) error {
	args := c.Args().Slice()
	if len(args) != 1 {
		return badInput(cmdPath(c), "takes one RUN (a run id from drover history, or last), got %q", args)
	}
	_, runs, err := pastRuns(c, e)
	if err != nil {
		return err
	}
	r, err := findRun(runs, args[0])
	if err != nil {
		return &badInputError{Cmd: cmdPath(c), Err: err}
	}
	if r.rep == nil {
		return fmt.Errorf("run %s has no report: it is still running, or it crashed or was killed (journal %s; drover run PLAYBOOK --resume %s continues it)",
			r.id, r.summary.Journal, r.id)
	}
	if c.Bool("json") {
		b, err := os.ReadFile(r.summary.Report)
		if err != nil {
			return fmt.Errorf("reading the report: %w", err)
		}
		if _, err := e.stdout.Write(b); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		return nil
	}
	pal := newPalette(useColor(e.stdoutTTY, e.getenv("NO_COLOR"), c.Bool("no-color")))
	elapsed := time.Duration(r.summary.DurationMS) * time.Millisecond
	if err := renderRunSummary(e.stdout, pal, r.rep, 0, elapsed, []string{r.summary.Report}); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

// findRun resolves RUN: "last", an exact id or a unique prefix of one. When
// nothing matches, the error lists the nearest ids so a typo is easy to fix.
func findRun(runs []pastRun, want string) (pastRun, error) {
	if len(runs) == 0 {
		return pastRun{}, errors.New("no runs in the state directory yet")
	}
	if want == "last" {
		return runs[0], nil
	}
	var prefixed []pastRun
	for _, r := range runs {
		if r.id == want {
			return r, nil
		}
		if strings.HasPrefix(r.id, want) {
			prefixed = append(prefixed, r)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0], nil
	}
	ids := func(rs []pastRun) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.id)
		}
		return strings.Join(out, ", ")
	}
	if len(prefixed) > 1 {
		return pastRun{}, fmt.Errorf("run %q is ambiguous: it starts %s", want, ids(prefixed[:min(len(prefixed), 5)]))
	}
	near := slices.Clone(runs)
	sort.SliceStable(near, func(i, j int) bool { return editDistance(near[i].id, want) < editDistance(near[j].id, want) })
	return pastRun{}, fmt.Errorf("no run %q; nearest: %s (drover history lists them all)", want, ids(near[:min(len(near), 3)]))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// reportPathOf is where a summary says the report is: the first file written
// (the run directory's, else --report's); "" when none was.
func reportPathOf(written []string) string {
	if len(written) == 0 {
		return ""
	}
	return written[0]
}
