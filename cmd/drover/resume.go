package main

// drover run's journal and --resume: every run keeps a journal in
// <state>/runs/<id>/journal.jsonl; --resume last|RUN_ID replays one and hands
// the engine what is left, refusing runs that finished or whose plan changed.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/urfave/cli/v2"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/drover-sh/drover/journal"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/stages"
)

func resumeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "resume", Usage: "continue an unfinished run: `last` (the newest run of this playbook) or a RUN id; " +
			"hosts that finished are not run again, hosts in flight run again from their first step"},
		&cli.BoolFlag{Name: "ignore-window", Usage: "run outside settings.window (emergencies)"},
	}
}

// clock is the time the maintenance window is judged by (tests inject it).
func (e *env) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// runJournal is one run's journal, held open (and locked) while it runs.
type runJournal struct {
	j      *journal.Journal
	runID  string
	resume *journal.State // nil for a new run
	lock   *flock.Flock
}

func (r *runJournal) close() {
	if r == nil {
		return
	}
	r.j.Close()
	_ = r.lock.Unlock()
}

// findResume replays the run --resume names: "last" is the newest run of
// playbook name in the state directory (run ids sort by time). It refuses
// (bad input, exit 2) a run of another playbook and a run that already ended
// with every host done.
func findResume(state, name, which string) (*journal.State, error) {
	if state == "" {
		return nil, errors.New("--resume: no state directory ($DROVER_STATE_DIR, $XDG_STATE_HOME or $HOME) holds runs")
	}
	runs := filepath.Join(state, "runs")
	var path string
	if which == "last" {
		dirs, err := os.ReadDir(runs)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--resume last: %w", err)
		}
		// Newest by creation time; run ids (time-sortable) break ties.
		var newest *journal.Header
		for _, d := range dirs {
			p := filepath.Join(runs, d.Name(), journal.FileName)
			h, err := journal.ReadHeader(p)
			if err != nil || h.Playbook != name {
				continue
			}
			if newest == nil || h.Created.After(newest.Created) || (h.Created.Equal(newest.Created) && h.RunID > newest.RunID) {
				newest, path = h, p
			}
		}
		if path == "" {
			return nil, fmt.Errorf("--resume last: no run of playbook %q in %s", name, runs)
		}
	} else {
		if which != filepath.Base(which) || which == "." || which == ".." {
			return nil, fmt.Errorf("--resume %q: not a run id", which)
		}
		path = filepath.Join(runs, which, journal.FileName)
	}
	st, err := journal.Replay(path)
	if err != nil {
		return nil, fmt.Errorf("--resume: %w", err)
	}
	switch {
	case st.Header.Playbook != name:
		return nil, fmt.Errorf("--resume %s: that run is of playbook %q, not %q", st.Header.RunID, st.Header.Playbook, name)
	case st.Complete():
		return nil, fmt.Errorf("--resume %s: the run already finished (%s): every host is done, nothing to resume", st.Header.RunID, st.Status)
	}
	return st, nil
}

// planOf is the plan as the journal header records it.
func planOf(plan *stages.Plan) []journal.PlanStage {
	out := make([]journal.PlanStage, 0, len(plan.Stages))
	for _, ps := range plan.Stages {
		b := ps.Batches
		if b == nil {
			b = [][]string{}
		}
		out = append(out, journal.PlanStage{Name: ps.Name, Kind: string(ps.Kind), Batches: b})
	}
	return out
}

// planChange says how now differs from was ("" when it does not): the
// stage and batch structure a resumed run must keep.
func planChange(was, now []journal.PlanStage) string {
	names := func(ps []journal.PlanStage) []string {
		var out []string
		for _, s := range ps {
			out = append(out, s.Kind+" "+s.Name)
		}
		return out
	}
	if !slices.Equal(names(was), names(now)) {
		return fmt.Sprintf("the stages were [%s], now [%s]", strings.Join(names(was), ", "), strings.Join(names(now), ", "))
	}
	for i := range was {
		a, b := was[i].Batches, now[i].Batches
		for k := 0; k < max(len(a), len(b)); k++ {
			var x, y []string
			if k < len(a) {
				x = a[k]
			}
			if k < len(b) {
				y = b[k]
			}
			if !slices.Equal(x, y) {
				return fmt.Sprintf("stage %s batch %d was %v, now %v", was[i].Name, k+1, x, y)
			}
		}
	}
	return ""
}

// varsFingerprint hashes the variables' values; sensitive ones contribute
// their name only, so the journal never holds anything derived from a secret.
func varsFingerprint(p *playbook.Playbook) string {
	h := sha256.New()
	for _, v := range p.Variables {
		io.WriteString(h, v.Name+"=")
		if v.Sensitive {
			io.WriteString(h, "(sensitive)")
		} else if b, err := ctyjson.Marshal(v.Value, v.Value.Type()); err == nil {
			h.Write(b)
		} else {
			io.WriteString(h, "(unknown)")
		}
		io.WriteString(h, "\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

// openRunJournal creates the journal of a new run, or reopens the resumed
// run's after checking that the plan and variables still match. warn gets
// notes the operator should see (the playbook changed but not its plan).
// The run directory is locked for the run: one process per run id.
func openRunJournal(state string, p *playbook.Playbook, plan *stages.Plan, resume *journal.State, warn io.Writer) (*runJournal, error) {
	if state == "" {
		return nil, errors.New("no state directory ($DROVER_STATE_DIR, $XDG_STATE_HOME or $HOME) for the run's journal")
	}
	abs, err := filepath.Abs(p.File)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	sum := sha256.Sum256(src)
	h := journal.Header{Playbook: p.Name, PlaybookFile: abs, PlaybookSHA256: hex.EncodeToString(sum[:]),
		VarsFingerprint: varsFingerprint(p), Plan: planOf(plan)}
	if resume != nil {
		was := resume.Header
		if why := planChange(was.Plan, h.Plan); why != "" {
			return nil, fmt.Errorf("--resume %s: the plan changed since the run started (%s): resuming would run other hosts than planned; start a new run", was.RunID, why)
		}
		if was.VarsFingerprint != h.VarsFingerprint {
			return nil, fmt.Errorf("--resume %s: the variables differ from the run's (--var, var files, DROVER_VAR_*): pass the same values", was.RunID)
		}
		if was.PlaybookSHA256 != h.PlaybookSHA256 {
			fmt.Fprintf(warn, "drover: warning: %s changed since run %s started; its plan is the same, the rest of the run uses the playbook as it is now\n", abs, was.RunID)
		}
		h.RunID = was.RunID
	} else {
		now := time.Now()
		h.RunID, h.Created = stages.NewRunID(now), now
	}
	dir := filepath.Join(state, "runs", h.RunID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	l := flock.New(filepath.Join(dir, "run.lock"))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if !ok {
		return nil, &runExitError{code: exitNotStarted, msg: fmt.Sprintf("not started: run %s is in progress in another drover (%s)", h.RunID, l.Path())}
	}
	var j *journal.Journal
	if resume != nil {
		j, err = journal.Open(filepath.Join(dir, journal.FileName))
	} else {
		j, err = journal.Create(dir, h)
	}
	if err != nil {
		_ = l.Unlock()
		return nil, err
	}
	return &runJournal{j: j, runID: h.RunID, resume: resume, lock: l}, nil
}
