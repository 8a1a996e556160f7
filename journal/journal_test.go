package journal

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/report"
)

var t0 = time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)

func at(s int) report.Time { return report.At(t0.Add(time.Duration(s) * time.Second)) }

func header() Header {
	return Header{RunID: "r1", Playbook: "demo", PlaybookFile: "/pb.hcl", PlaybookSHA256: "abc",
		Plan: []PlanStage{{Name: "canary", Kind: "canary", Batches: [][]string{{"h1"}}},
			{Name: "early", Kind: "batch", Batches: [][]string{{"h2", "h3"}, {"h4"}}}}}
}

// attempt1 is a run killed mid-batch: canary h1 done and its gate
// passed, early batch 1 ran h2 (failed, rolled back) and h3 (stopped by the
// interruption), then the process died with h3's host_finish written and no
// run_finish.
var attempt1 = []report.Event{
	{Type: report.RunStart, Time: at(0)},
	{Type: report.StageStart, Stage: "canary", Time: at(1)},
	{Type: report.BatchStart, Stage: "canary", Batch: 1, Hosts: []string{"h1"}, Time: at(1)},
	{Type: report.HostStart, Stage: "canary", Host: "h1", Time: at(2)},
	{Type: report.StepFinish, Stage: "canary", Host: "h1", Phase: report.PhaseSteps, Step: "command one", Status: "changed", Detail: "exit 0", Time: at(3)},
	{Type: report.StepFinish, Stage: "canary", Host: "h1", Phase: report.PhaseHealth, Step: "http up", Status: "ok", Time: at(3)},
	{Type: report.HostFinish, Stage: "canary", Host: "h1", Status: report.HostChanged, Time: at(4)},
	{Type: report.BatchFinish, Stage: "canary", Batch: 1, Time: at(4)},
	{Type: report.GateFinish, Stage: "canary", Batch: 1, Status: report.Passed, Checks: []report.Check{{Name: "tcp x", Status: "passed"}}, Time: at(5)},
	{Type: report.StageFinish, Stage: "canary", Status: report.Succeeded, Time: at(5)},
	{Type: report.StageStart, Stage: "early", Time: at(6)},
	{Type: report.BatchStart, Stage: "early", Batch: 1, Hosts: []string{"h2", "h3"}, Time: at(6)},
	{Type: report.HostStart, Stage: "early", Host: "h2", Time: at(7)},
	{Type: report.HostStart, Stage: "early", Host: "h3", Time: at(7)},
	{Type: report.StepFinish, Stage: "early", Host: "h2", Step: "command one", Status: "failed", Time: at(8)},
	{Type: report.HostFinish, Stage: "early", Host: "h2", Status: report.HostRolledBack, Detail: "command one: exit 1", Time: at(9)},
	{Type: report.StepFinish, Stage: "early", Host: "h3", Step: "command one", Status: "changed", Time: at(9)},
	{Type: report.HostFinish, Stage: "early", Host: "h3", Status: report.HostFailed, Detail: StoppedPrefix + "interrupted", Time: at(9)},
}

func writeJournal(t *testing.T, dir string, evs []report.Event) *Journal {
	t.Helper()
	j, err := Create(dir, header())
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := j.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	return j
}

func TestCreateModesAndReplay(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "r1")
	j := writeJournal(t, dir, attempt1)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, j.Path(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	if _, err := Create(dir, header()); err == nil {
		t.Error("Create over an existing journal succeeded; a run id must be used once")
	}
	h, err := ReadHeader(j.Path())
	if err != nil || h.RunID != "r1" || len(h.Plan) != 2 || !slices.Equal(h.Plan[1].Batches[0], []string{"h2", "h3"}) {
		t.Fatalf("header %+v, %v", h, err)
	}
	st, err := Replay(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Attempts != 1 || st.Status != "" || st.Torn || st.Records != len(attempt1) || !st.Started.Equal(at(0).Time) {
		t.Errorf("state %+v", st)
	}
	if st.Complete() {
		t.Error("a crashed run reads as complete")
	}
	h1 := st.Finished("canary", "h1")
	if h1 == nil || h1.Status != report.HostChanged || len(h1.Steps) != 2 || h1.Steps[1].Name != "health: http up" ||
		!h1.Started.Equal(at(2).Time) || !h1.Finished.Equal(at(4).Time) {
		t.Errorf("h1 %+v", h1)
	}
	if h2 := st.Finished("early", "h2"); h2 == nil || h2.Status != report.HostRolledBack || h2.Error != "command one: exit 1" {
		t.Errorf("h2 %+v", h2)
	}
	if st.Finished("early", "h3") != nil {
		t.Error("h3 was stopped between steps, yet counts as finished")
	}
	if !slices.Equal(st.InFlight, []string{"h3"}) {
		t.Errorf("in flight %v, want [h3]", st.InFlight)
	}
	c, e := st.Stages["canary"], st.Stages["early"]
	if !c.Done() || !c.GatePassed[1] || c.Gate == nil || c.Gate.Checks[0].Name != "tcp x" || c.Batches[0].Finished.IsZero() {
		t.Errorf("canary %+v", c)
	}
	if e.Done() || e.Failures != 1 || e.OK != 0 || len(e.Batches) != 1 || !e.Batches[0].Finished.IsZero() {
		t.Errorf("early %+v", e)
	}
}

// A crash mid-write leaves a torn last line: Replay ignores it, Open cuts it
// off so the resumed attempt's records start on their own line.
func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	j := writeJournal(t, dir, attempt1[:7])
	j.Close()
	f, err := os.OpenFile(j.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-03-02T01:00:05.000Z","type":"stage_fin`)
	f.Close()
	st, err := Replay(j.Path())
	if err != nil {
		t.Fatalf("torn last line: %v", err)
	}
	if !st.Torn || st.Records != 7 || st.Finished("canary", "h1") == nil {
		t.Errorf("state %+v", st)
	}
	j2, err := Open(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := j2.Append(report.Event{Type: report.RunStart, Time: at(20)}); err != nil {
		t.Fatal(err)
	}
	j2.Close()
	st, err = Replay(j.Path())
	if err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if st.Torn || st.Attempts != 2 || st.Records != 8 {
		t.Errorf("after reopening: %+v", st)
	}
}

func TestReplayErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", "without a header"},
		{"no header", `{"type":"run_start"}` + "\n", "not a header"},
		{"bad middle line", `{"type":"header","header":{"run_id":"r"}}` + "\n{oops\n" + `{"type":"run_start"}` + "\n", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Replay(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A resumed attempt: the in-flight host runs again and finishes, the run
// finishes; the state merges both attempts.
func TestReplayAcrossAttempts(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, attempt1).Close()
	j, err := Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []report.Event{
		{Type: report.RunStart, Time: at(100)},
		{Type: report.StageStart, Stage: "early", Time: at(101)},
		{Type: report.HostStart, Stage: "early", Host: "h3", Time: at(102)},
		{Type: report.StepFinish, Stage: "early", Host: "h3", Step: "command one", Status: "changed", Time: at(103)},
		{Type: report.HostFinish, Stage: "early", Host: "h3", Status: report.HostChanged, Time: at(104)},
		{Type: report.RunFinish, Status: report.CompletedWithFailures, Time: at(105)},
	} {
		if err := j.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	st, err := Replay(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	h3 := st.Finished("early", "h3")
	if h3 == nil || len(h3.Steps) != 1 || !h3.Started.Equal(at(102).Time) {
		t.Errorf("h3 %+v: want the second attempt's record only", h3)
	}
	if st.Attempts != 2 || !st.Complete() || len(st.InFlight) != 0 || !st.Started.Equal(at(0).Time) {
		t.Errorf("state %+v", st)
	}
	if e := st.Stages["early"]; e.Failures != 1 || e.OK != 1 || !e.Started.Equal(at(6).Time) {
		t.Errorf("early %+v", e)
	}
}

// Write errors surface, name the journal and stick: a journal that lost a
// record must not be appended to as if nothing happened.
func TestWriteErrors(t *testing.T) {
	// A run directory that cannot be made (its parent is a file): root
	// cannot get round that, unlike a read-only directory.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(filepath.Join(notDir, "r1"), header()); err == nil {
		t.Error("Create under a regular file succeeded")
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if _, err := Create(ro, header()); err == nil {
			t.Error("Create in a read-only directory succeeded")
		}
	}
	// /dev/full fails every write with ENOSPC, like a full disk, also for root.
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("this test needs /dev/full to simulate a full disk: %v", err)
	}
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	j := &Journal{path: "/dev/full", f: f}
	defer j.Close()
	err = j.Append(report.Event{Type: report.RunStart})
	if err == nil || !strings.Contains(err.Error(), "/dev/full") || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("error %v, want one naming the journal and the cause", err)
	}
	if err2 := j.Append(report.Event{Type: report.RunFinish}); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("after a failure: %v, want the first error again", err2)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", FileName)); err == nil {
		t.Error("Open of a missing journal succeeded")
	}
}

// BenchmarkAppend measures one fsync'd record: the engine waits for it on
// every event.
func BenchmarkAppend(b *testing.B) {
	j, err := Create(b.TempDir(), header())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ev := report.Event{Type: report.StepFinish, Stage: "early", Host: "h2", Step: "command one", Status: "changed", Detail: "exit 0", Time: at(1)}
	for b.Loop() {
		if err := j.Append(ev); err != nil {
			b.Fatal(err)
		}
	}
}
