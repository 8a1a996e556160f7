package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/report"
	"github.com/drover-sh/drover/transport"
)

// runPlaybook is the unit tests' rollout over six hosts: canary h1, batch
// "early" h2 then h3 (one per batch), remaining h4-h6 tolerating one failure.
const runPlaybook = `
playbook "t" {
  description = "unit test rollout"
}

variable "token" {
  type      = string
  default   = "tok-very-secret"
  sensitive = true
}

targets {
  hosts = ["all"]
}

canary {
  hosts = 1
}

batch "early" {
  hosts = 2
  size  = 1
}

remaining {
  parallel   = 2
  max_failed = 1
}

steps {
  command "deploy" { run = "echo deploy-${host.name} ${var.token}" }
}

health {
  command "up" { run = "echo health-${host.name}" }
}

rollback {
  command "undo" { run = "echo undo-${host.name}" }
}
`

const runHosts = "h1,h2,h3,h4,h5,h6"

// fleet scripts the fake hosts: deploy fails on the hosts in fail, and every
// command is logged per host.
type fleet struct {
	mu   sync.Mutex
	cmds map[string][]string
	fail map[string]bool
	// block, when set, is called by h1's deploy before it answers.
	block func()
}

// blockedFleet is a fleet whose h1 deploy blocks the first time it runs: inStep is
// closed when it starts, and it answers once release is closed.
func blockedFleet() (f *fleet, inStep, release chan struct{}) {
	inStep, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	f = &fleet{block: func() {
		once.Do(func() {
			close(inStep)
			<-release
		})
	}}
	return f, inStep, release
}

// interruptInStep runs drover with args in h and sends it sig while the blocked
// deploy runs; once drover says it is stopping the deploy is released, and the run
// must exit 4 (interrupted).
func interruptInStep(t *testing.T, h *harness, inStep, release chan struct{}, sig os.Signal, args ...string) {
	t.Helper()
	stopping := h.waitFor("stopping")
	code := make(chan int, 1)
	go func() { code <- h.run(t, args...) }()
	select {
	case <-inStep:
	case c := <-code:
		t.Fatalf("the run ended (exit %d) before the canary's step\n%s", c, h.stderrString())
	case <-time.After(60 * time.Second):
		t.Fatal("the canary's step never started")
	}
	h.sigs <- sig
	<-stopping
	close(release)
	if c := <-code; c != exitInterrupted {
		t.Fatalf("exit %d, want 4\n%s", c, h.stderrString())
	}
}

func (f *fleet) hosts() map[string]*fakeHost {
	out := map[string]*fakeHost{}
	for _, n := range strings.Split(runHosts, ",") {
		out[n] = &fakeHost{run: func(ctx context.Context, c *transport.Command) (*transport.Result, error) {
			f.mu.Lock()
			f.cmds[n] = append(f.cmds[n], c.Cmd)
			fail := f.fail[n]
			block := f.block
			f.mu.Unlock()
			if strings.Contains(c.Cmd, "deploy-") {
				if block != nil && n == "h1" {
					block()
				}
				if fail {
					return &transport.Result{ExitCode: 1, Stderr: []byte("boom on " + n + " tok-very-secret hunter2\n")}, nil
				}
			}
			return &transport.Result{Stdout: []byte("ok\n")}, nil
		}}
	}
	return out
}

func (f *fleet) ran(host, substr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.cmds[host], func(c string) bool { return strings.Contains(c, substr) })
}

// runSetup writes the playbook, seeds the fact cache for every host (so no
// gathering is needed) and returns the harness, the playbook path and the
// state directory.
func runSetup(t *testing.T, f *fleet) (*harness, string, string) {
	t.Helper()
	if f.cmds == nil {
		f.cmds = map[string][]string{}
	}
	h := newHarness(f.hosts())
	all := map[string]facts.Facts{}
	for _, n := range strings.Split(runHosts, ",") {
		all[n] = labFacts("web", "dc1", "Debian", 2)
	}
	seedCache(t, h, all)
	pb := filepath.Join(t.TempDir(), "t.hcl")
	if err := os.WriteFile(pb, []byte(runPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	return h, pb, h.environ["DROVER_STATE_DIR"]
}

func runArgs(pb string, extra ...string) []string {
	return append(append([]string{"run", pb, "-i", runHosts}, sshConfigNone...), extra...)
}

// runErr runs the command line in-process and returns the command's error
// itself, for outcomes whose exit code exitCode learns from the error.
func (h *harness) runErr(args ...string) error {
	e := h.env()
	app := newApp(e)
	return app.RunContext(context.Background(), reorderArgs(app, append([]string{"drover"}, args...)))
}

func readReport(t *testing.T, path string) *report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return &rep
}

func hostStatuses(rep *report.Report) map[string]string {
	out := map[string]string{}
	for _, st := range rep.Stages {
		for _, h := range st.Hosts {
			out[h.Name] = h.Status
		}
	}
	return out
}

func TestRunBadInputExitsTwo(t *testing.T) {
	f := &fleet{}
	_, pb, _ := runSetup(t, f)
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(bad, []byte("playbook \"x\" {}\nsteps {\n  nonsense \"y\" {}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no playbook", []string{"run", "-i", runHosts}, "PLAYBOOK"},
		{"two playbooks", []string{"run", pb, pb, "-i", runHosts}, "PLAYBOOK"},
		{"bad output", runArgs(pb, "--output", "yaml"), "--output"},
		{"unknown flag", runArgs(pb, "--bogus"), "bogus"},
		{"undeclared var", runArgs(pb, "--var", "nope=1"), "nope"},
		{"bad playbook", runArgs(bad), "bad.hcl"},
		{"missing playbook", runArgs(filepath.Join(t.TempDir(), "none.hcl")), "none.hcl"},
		{"bad forks", runArgs(pb, "--forks", "0"), "--forks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, state := runSetup(t, &fleet{})
			if code := h.run(t, tt.args...); code != exitBadInput {
				t.Fatalf("exit %d, want 2\nstderr: %s", code, h.stderrString())
			}
			if !strings.Contains(h.stderrString(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, h.stderrString())
			}
			if len(h.conn.dialled) != 0 {
				t.Errorf("bad input, yet dialled %v", h.conn.dialled)
			}
			if _, err := os.Stat(filepath.Join(state, "runs")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("bad input, yet a run directory exists (%v)", err)
			}
		})
	}
}

// A clean rollout: exit 0, every host changed in plan order, the report in
// the run directory (0700/0600) and at --report (0600), identical.
func TestRunSucceedsAndWritesReports(t *testing.T) {
	f := &fleet{}
	h, pb, state := runSetup(t, f)
	out := filepath.Join(t.TempDir(), "report.json")
	if code := h.run(t, runArgs(pb, "--report", out)...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, h.stderrString())
	}
	rep := readReport(t, out)
	if rep.Status != report.Succeeded {
		t.Fatalf("status %s", rep.Status)
	}
	var names []string
	var batches [][]string
	for _, st := range rep.Stages {
		names = append(names, st.Name)
		for _, b := range st.Batches {
			batches = append(batches, b.Hosts)
		}
	}
	if want := []string{"canary", "early", "remaining"}; !slices.Equal(names, want) {
		t.Errorf("stages %v, want %v", names, want)
	}
	if want := [][]string{{"h1"}, {"h2"}, {"h3"}, {"h4", "h5", "h6"}}; fmt.Sprint(batches) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", batches, want)
	}
	for n, s := range hostStatuses(rep) {
		if s != report.HostChanged {
			t.Errorf("%s: %s, want changed", n, s)
		}
		if !f.ran(n, "deploy-"+n) || !f.ran(n, "health-"+n) || f.ran(n, "undo-") {
			t.Errorf("%s ran %v", n, f.cmds[n])
		}
	}
	runDir := filepath.Join(state, "runs", rep.RunID)
	for path, mode := range map[string]os.FileMode{runDir: 0o700 | os.ModeDir, filepath.Join(runDir, "report.json"): 0o600, out: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
		}
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(filepath.Join(runDir, "report.json"))
	if !bytes.Equal(a, b) {
		t.Errorf("--report and the run directory's report differ")
	}
	// One line per event on stderr, timestamped; the summary on stdout.
	stderr := h.stderrString()
	for _, want := range []string{"Z stage canary started [h1]\n", "Z stage early batch 2 started [h3]\n",
		"Z h1 command deploy: changed exit 0", "Z h4 health command up: ok", "Z stage remaining succeeded\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	ts := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !ts.MatchString(line) {
			t.Errorf("stderr line without timestamp: %q", line)
		}
	}
	if !strings.Contains(h.stdout.String(), "succeeded (exit 0)") || !strings.Contains(h.stdout.String(), "report: "+out) {
		t.Errorf("summary:\n%s", h.stdout.String())
	}
	if strings.Contains(stderr+h.stdout.String()+string(a), "tok-very-secret") {
		t.Errorf("the sensitive variable leaked")
	}
}

// The canary fails: the rollout halts (exit 3), the canary is rolled back and
// no other host is touched.
func TestRunCanaryFailureHalts(t *testing.T) {
	f := &fleet{fail: map[string]bool{"h1": true}}
	h, pb, state := runSetup(t, f)
	err := h.runErr(runArgs(pb)...)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != exitHalted {
		t.Fatalf("error %v, want one with exit code 3\n%s", err, h.stderrString())
	}
	runs, _ := filepath.Glob(filepath.Join(state, "runs", "*", "report.json"))
	if len(runs) != 1 {
		t.Fatalf("reports %v, want one", runs)
	}
	rep := readReport(t, runs[0])
	if rep.Status != report.Halted {
		t.Errorf("status %s, want halted", rep.Status)
	}
	want := map[string]string{"h1": report.HostRolledBack, "h2": report.HostSkipped, "h3": report.HostSkipped,
		"h4": report.HostSkipped, "h5": report.HostSkipped, "h6": report.HostSkipped}
	if got := hostStatuses(rep); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hosts %v, want %v", got, want)
	}
	if !f.ran("h1", "undo-h1") {
		t.Errorf("h1 not rolled back: %v", f.cmds["h1"])
	}
	for _, n := range []string{"h2", "h3", "h4", "h5", "h6"} {
		if len(f.cmds[n]) != 0 {
			t.Errorf("%s touched after the halt: %v", n, f.cmds[n])
		}
	}
	if !strings.Contains(h.stderrString(), "HALT stage canary") {
		t.Errorf("no halt line:\n%s", h.stderrString())
	}
	if strings.Contains(h.stderrString()+h.stdout.String(), "tok-very-secret") {
		t.Errorf("the sensitive variable leaked")
	}

	// --no-rollback leaves the canary failed.
	f2 := &fleet{fail: map[string]bool{"h1": true}}
	h2, pb2, _ := runSetup(t, f2)
	out := filepath.Join(t.TempDir(), "r.json")
	if err := h2.runErr(runArgs(pb2, "--no-rollback", "--report", out)...); !errors.As(err, &coded) || coded.ExitCode() != exitHalted {
		t.Fatalf("--no-rollback: error %v, want exit code 3", err)
	}
	if s := hostStatuses(readReport(t, out))["h1"]; s != report.HostFailed || f2.ran("h1", "undo-") {
		t.Errorf("--no-rollback: h1 %s, commands %v", s, f2.cmds["h1"])
	}
}

// Exit codes through the whole command line, for outcomes exit.go maps by
// error class.
func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		fail   []string
		status string
		want   int
	}{
		{"all ok", nil, report.Succeeded, exitOK},
		{"one failure within max_failed", []string{"h5"}, report.CompletedWithFailures, exitHostsFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fleet{fail: map[string]bool{}}
			for _, n := range tt.fail {
				f.fail[n] = true
			}
			h, pb, _ := runSetup(t, f)
			out := filepath.Join(t.TempDir(), "r.json")
			if code := h.run(t, runArgs(pb, "--report", out)...); code != tt.want {
				t.Fatalf("exit %d, want %d\n%s", code, tt.want, h.stderrString())
			}
			if rep := readReport(t, out); rep.Status != tt.status {
				t.Errorf("status %s, want %s", rep.Status, tt.status)
			}
		})
	}
}

// --output json: stdout holds one JSON event a line and nothing else, from
// run_start to run_finish; the summary goes to stderr.
func TestRunJSONEvents(t *testing.T) {
	f := &fleet{}
	h, pb, _ := runSetup(t, f)
	if code := h.run(t, runArgs(pb, "--output", "json")...); code != exitOK {
		t.Fatalf("exit %d\n%s", code, h.stderrString())
	}
	var types []string
	sc := bufio.NewScanner(&h.stdout)
	for sc.Scan() {
		var ev report.Event
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("stdout line is not an event: %q: %v", sc.Text(), err)
		}
		if ev.Time.IsZero() || ev.RunID == "" {
			t.Errorf("event without time or run id: %q", sc.Text())
		}
		types = append(types, ev.Type)
	}
	if len(types) < 2 || types[0] != report.RunStart || types[len(types)-1] != report.RunFinish {
		t.Fatalf("event types %v", types)
	}
	if n := strings.Count(strings.Join(types, " "), report.HostFinish); n != 6 {
		t.Errorf("%d host_finish events, want 6", n)
	}
	if !strings.Contains(h.stderrString(), "succeeded (exit 0)") {
		t.Errorf("no summary on stderr:\n%s", h.stderrString())
	}
	if strings.Contains(h.stderrString(), "stage canary started") {
		t.Errorf("text events on stderr with --output json")
	}
}

// The first SIGINT while the canary's step runs: the step finishes, nothing
// else starts, exit 4, and the report says interrupted.
func TestRunInterrupted(t *testing.T) {
	f, inStep, release := blockedFleet()
	h, pb, _ := runSetup(t, f)
	out := filepath.Join(t.TempDir(), "r.json")
	interruptInStep(t, h, inStep, release, syscall.SIGINT, runArgs(pb, "--report", out)...)
	rep := readReport(t, out)
	if rep.Status != report.Interrupted {
		t.Errorf("status %s, want interrupted", rep.Status)
	}
	// h1 finishes the step it was in (recorded changed), then stops before its
	// health check: failed, "stopped", left for --resume; h2 never starts.
	if s := hostStatuses(rep); s["h1"] != report.HostFailed || s["h2"] != report.HostSkipped {
		t.Errorf("hosts %v: h1 should stop after its step, h2 never start", s)
	}
	h1 := rep.Stages[0].Hosts[0]
	if len(h1.Steps) != 1 || h1.Steps[0].Status != "changed" || !strings.Contains(h1.Error, "interrupted") {
		t.Errorf("h1 %+v: want its deploy step finished (changed) and the interruption as error", h1)
	}
	if f.ran("h1", "undo-") {
		t.Errorf("an interrupted host was rolled back: %v", f.cmds["h1"])
	}
	if len(f.cmds["h2"]) != 0 {
		t.Errorf("h2 touched after the interrupt: %v", f.cmds["h2"])
	}
}

// The become password never reaches output or the report, even when a host
// echoes it back.
func TestRunBecomePasswordRedacted(t *testing.T) {
	f := &fleet{fail: map[string]bool{"h1": true}}
	h, pb, _ := runSetup(t, f)
	h.readPassword = func(string) ([]byte, error) { return []byte("hunter2"), nil }
	out := filepath.Join(t.TempDir(), "r.json")
	err := h.runErr(runArgs(pb, "--ask-become-pass", "--report", out)...)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != exitHalted {
		t.Fatalf("error %v, want exit code 3", err)
	}
	b, _ := os.ReadFile(out)
	all := h.stderrString() + h.stdout.String() + string(b)
	if strings.Contains(all, "hunter2") {
		t.Errorf("become password leaked")
	}
	if !strings.Contains(string(b), report.Redacted) {
		t.Errorf("report does not show the redaction marker:\n%s", b)
	}
}

// settings.lock held by another run: exit 5, nothing dialled.
func TestRunLockHeld(t *testing.T) {
	h, _, state := runSetup(t, &fleet{})
	pb := filepath.Join(t.TempDir(), "locked.hcl")
	src := strings.Replace(runPlaybook, "targets {", "settings {\n  lock = true\n}\n\ntargets {", 1)
	if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockPlaybook(state, "t")
	if err != nil {
		t.Fatal(err)
	}
	err = h.runErr(runArgs(pb)...)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != exitNotStarted || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("error %v, want the lock refusal with exit code 5", err)
	}
	if len(h.conn.dialled) != 0 {
		t.Errorf("dialled %v while the lock is held", h.conn.dialled)
	}
	unlock()
	if code := h.run(t, runArgs(pb)...); code != exitOK {
		t.Fatalf("after unlock: exit %d\n%s", code, h.stderrString())
	}
}

func TestWindowOpen(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		w    playbook.Window
		now  string
		want bool
	}{
		{"inside", playbook.Window{Start: "01:00", End: "05:00"}, "2026-03-02T03:00:00Z", true},
		{"end is exclusive", playbook.Window{Start: "01:00", End: "05:00"}, "2026-03-02T05:00:00Z", false},
		{"before", playbook.Window{Start: "01:00", End: "05:00"}, "2026-03-02T00:59:00Z", false},
		{"wrong day", playbook.Window{Days: []string{"tue"}, Start: "01:00", End: "05:00"}, "2026-03-02T03:00:00Z", false}, // a Monday
		{"right day", playbook.Window{Days: []string{"mon"}, Start: "01:00", End: "05:00"}, "2026-03-02T03:00:00Z", true},
		{"over midnight, late", playbook.Window{Days: []string{"mon"}, Start: "22:00", End: "02:00"}, "2026-03-02T23:00:00Z", true},
		{"over midnight, next morning belongs to the start day", playbook.Window{Days: []string{"mon"}, Start: "22:00", End: "02:00"}, "2026-03-03T01:00:00Z", true},
		{"over midnight, morning of the start day", playbook.Window{Days: []string{"mon"}, Start: "22:00", End: "02:00"}, "2026-03-02T01:00:00Z", false},
		{"timezone", playbook.Window{Start: "01:00", End: "05:00", Timezone: "Europe/Berlin"}, "2026-03-02T00:30:00Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why, err := windowOpen(&tt.w, at(tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("open = %v, want %v (%s)", got, tt.want, why)
			}
		})
	}
	if _, _, err := windowOpen(&playbook.Window{Start: "1am", End: "05:00"}, time.Now()); err == nil {
		t.Error("a bad start time was accepted")
	}
}

// The summary of a halted run, from a fixed report.
func TestRunSummaryGolden(t *testing.T) {
	tm := report.At(time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC))
	rep := &report.Report{
		RunID: "20260302T010000Z-abcdef", Playbook: "demo-web", Status: report.Halted,
		Error:   "stage canary: 1 host(s) failed, more than max_failed = 0 (last: h1: health http: status 500)",
		Started: tm, Finished: tm,
		Stages: []*report.Stage{
			{Name: "canary", Kind: "canary", Status: report.Halted, Gate: &report.Gate{Status: report.Skipped},
				Hosts: []*report.Host{{Name: "h1", Status: report.HostRolledBack, Error: "health http: status 500"}}},
			{Name: "early", Kind: "batch", Status: report.Skipped,
				Hosts: []*report.Host{{Name: "h2", Status: report.HostSkipped}, {Name: "h3", Status: report.HostSkipped}}},
			{Name: "remaining", Kind: "remaining", Status: report.Skipped,
				Hosts: []*report.Host{{Name: "h4", Status: report.HostSkipped}}},
		},
	}
	var b bytes.Buffer
	if err := renderRunSummary(&b, newPalette(false), rep, 1, 1500*time.Millisecond, []string{"/state/runs/20260302T010000Z-abcdef/report.json"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "run-summary-halted.txt", b.Bytes())
}

// runAt runs the command line with the window clock injected.
func (h *harness) runAt(t *testing.T, now func() time.Time, args ...string) int {
	t.Helper()
	e := h.env()
	e.now = now
	return run(append([]string{"drover"}, args...), e, h.sigs, func() { h.forced <- struct{}{} })
}

// windowed is runPlaybook with a maintenance window 01:00-05:00 UTC.
func windowed(t *testing.T) string {
	t.Helper()
	pb := filepath.Join(t.TempDir(), "w.hcl")
	src := strings.Replace(runPlaybook, "targets {", "settings {\n  window {\n    start = \"01:00\"\n    end = \"05:00\"\n  }\n}\n\ntargets {", 1)
	if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return pb
}

// deploys counts each host's deploy commands.
func (f *fleet) deploys() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for h, cmds := range f.cmds {
		for _, c := range cmds {
			if strings.Contains(c, "deploy-") {
				out[h]++
			}
		}
	}
	return out
}

func onlyRun(t *testing.T, state string) *report.Report {
	t.Helper()
	runs, _ := filepath.Glob(filepath.Join(state, "runs", "*", "report.json"))
	if len(runs) != 1 {
		t.Fatalf("reports %v, want one", runs)
	}
	return readReport(t, runs[0])
}

// Window tests with an injected clock: closed → exit 5 and nothing touched;
// closing mid-run → no new batch, window_closed (exit 3), and --resume the
// next night finishes the run with every host deployed once; --ignore-window.
func TestRunWindowClock(t *testing.T) {
	closed := func() time.Time { return time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) }
	open := func() time.Time { return time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC) }

	f := &fleet{}
	h, _, state := runSetup(t, f)
	pb := windowed(t)
	if code := h.runAt(t, closed, runArgs(pb)...); code != exitNotStarted {
		t.Fatalf("closed window: exit %d, want 5\n%s", code, h.stderrString())
	}
	if len(h.conn.dialled) != 0 || len(f.deploys()) != 0 {
		t.Fatalf("closed window, yet dialled %v", h.conn.dialled)
	}
	if _, err := os.Stat(filepath.Join(state, "runs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("closed window, yet a run directory exists (%v)", err)
	}

	// Open for the start check, the canary and early's first batch; 05:00
	// (closed) from early's second batch on.
	var mu sync.Mutex
	calls := 0
	closing := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 3 {
			return time.Date(2026, 3, 2, 4, 59, 0, 0, time.UTC)
		}
		return time.Date(2026, 3, 2, 5, 0, 0, 0, time.UTC)
	}
	if code := h.runAt(t, closing, runArgs(pb)...); code != exitHalted {
		t.Fatalf("closing window: exit %d, want 3\n%s", code, h.stderrString())
	}
	rep := onlyRun(t, state)
	want := map[string]string{"h1": "changed", "h2": "changed", "h3": "skipped", "h4": "skipped", "h5": "skipped", "h6": "skipped"}
	if rep.Status != report.WindowClosed || !mapsEqual(hostStatuses(rep), want) {
		t.Fatalf("status %s, hosts %v, want window_closed and %v", rep.Status, hostStatuses(rep), want)
	}
	if !strings.Contains(h.stderrString(), "--resume "+rep.RunID) {
		t.Errorf("stderr does not say how to resume:\n%s", h.stderrString())
	}

	if code := h.runAt(t, open, runArgs(pb, "--resume", "last")...); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, h.stderrString())
	}
	merged := onlyRun(t, state)
	if merged.RunID != rep.RunID || merged.Status != report.Succeeded || !merged.Started.Equal(rep.Started.Time) {
		t.Errorf("merged report: run %s status %s started %v; want run %s succeeded, started %v",
			merged.RunID, merged.Status, merged.Started, rep.RunID, rep.Started)
	}
	for _, n := range strings.Split(runHosts, ",") {
		if got := f.deploys()[n]; got != 1 {
			t.Errorf("%s deployed %d times, want once", n, got)
		}
		if s := hostStatuses(merged)[n]; s != report.HostChanged {
			t.Errorf("%s: %s in the merged report", n, s)
		}
	}

	// --ignore-window: an emergency run at noon.
	f2 := &fleet{}
	h2, _, _ := runSetup(t, f2)
	if code := h2.runAt(t, closed, runArgs(pb, "--ignore-window")...); code != exitOK || f2.deploys()["h6"] != 1 {
		t.Fatalf("--ignore-window: exit %d, deploys %v\n%s", code, f2.deploys(), h2.stderrString())
	}
}

// SIGINT while the canary deploys: exit 4, the journal ends with the run's
// end; --resume last runs the canary again from its first step (it was in
// flight) and every other host once, into one report.
func TestRunInterruptedThenResumed(t *testing.T) {
	// h1's deploy blocks only the first time: --resume runs it again.
	f, inStep, release := blockedFleet()
	h, pb, state := runSetup(t, f)
	interruptInStep(t, h, inStep, release, syscall.SIGTERM, runArgs(pb)...)
	rep := onlyRun(t, state)
	jpath := filepath.Join(state, "runs", rep.RunID, "journal.jsonl")
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last report.Event
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Type != report.RunFinish || last.Status != report.Interrupted {
		t.Fatalf("journal's last record %q (%v), want run_finish interrupted", lines[len(lines)-1], err)
	}
	if fi, err := os.Stat(jpath); err != nil || fi.Mode() != 0o600 {
		t.Errorf("journal mode: %v %v", fi, err)
	}
	if strings.Contains(string(b), "tok-very-secret") {
		t.Errorf("the sensitive variable reached the journal")
	}

	if code := h.run(t, runArgs(pb, "--resume", rep.RunID)...); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, h.stderrString())
	}
	merged := onlyRun(t, state)
	want := map[string]int{"h1": 2, "h2": 1, "h3": 1, "h4": 1, "h5": 1, "h6": 1}
	if got := f.deploys(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deploys %v, want %v (h1 was in flight: run again from its first step)", got, want)
	}
	if merged.RunID != rep.RunID || merged.Status != report.Succeeded || len(merged.Stages[1].Batches) != 2 {
		t.Errorf("merged report %s %s, early batches %d", merged.RunID, merged.Status, len(merged.Stages[1].Batches))
	}
}

// --resume refuses what it cannot continue (exit 2, nothing dialled).
func TestRunResumeRefusals(t *testing.T) {
	f := &fleet{}
	h, pb, _ := runSetup(t, f)
	if code := h.run(t, runArgs(pb, "--resume", "last")...); code != exitBadInput || !strings.Contains(h.stderrString(), "no run of playbook") {
		t.Fatalf("no run yet: exit %d\n%s", code, h.stderrString())
	}
	// A run halted at the canary can be resumed, but not with another plan.
	f.fail = map[string]bool{"h1": true}
	if code := h.run(t, runArgs(pb)...); code != exitHalted {
		t.Fatalf("halting run: exit %d\n%s", code, h.stderrString())
	}
	f.fail = nil
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"plan changed", []string{"run", pb, "-i", "h1,h2,h3,h4,h5", "--ssh-config", "none", "--resume", "last"}, "plan changed"},
		{"unknown run", runArgs(pb, "--resume", "20990101T000000Z-000000"), "no such file"},
		{"not a run id", runArgs(pb, "--resume", "../x"), "not a run id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.stderr = notifyWriter{}
			dialled := len(h.conn.dialled)
			if code := h.run(t, tt.args...); code != exitBadInput {
				t.Fatalf("exit %d, want 2\n%s", code, h.stderrString())
			}
			if !strings.Contains(h.stderrString(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, h.stderrString())
			}
			if tt.name != "plan changed" && len(h.conn.dialled) != dialled {
				t.Errorf("dialled %v", h.conn.dialled[dialled:])
			}
		})
	}
	// The canary's failure spent the budget: resuming halts again at once,
	// touching nothing (start a new run instead).
	before := fmt.Sprint(f.deploys())
	if code := h.run(t, runArgs(pb, "--resume", "last")...); code != exitHalted || !strings.Contains(h.stderrString(), "earlier attempt") {
		t.Fatalf("resume of a spent budget: exit %d, want 3\n%s", code, h.stderrString())
	}
	if after := fmt.Sprint(f.deploys()); after != before {
		t.Errorf("deploys went from %s to %s", before, after)
	}
	// A run that succeeded has nothing left to resume.
	if code := h.run(t, runArgs(pb)...); code != exitOK {
		t.Fatalf("new run: exit %d\n%s", code, h.stderrString())
	}
	h.stderr = notifyWriter{}
	if code := h.run(t, runArgs(pb, "--resume", "last")...); code != exitBadInput || !strings.Contains(h.stderrString(), "already finished") {
		t.Fatalf("finished run: exit %d\n%s", code, h.stderrString())
	}
}

// A run still going in another drover holds its run directory's lock:
// --resume of it does not start (exit 5).
func TestRunResumeOfARunInProgress(t *testing.T) {
	f := &fleet{fail: map[string]bool{"h1": true}}
	h, pb, state := runSetup(t, f)
	if code := h.run(t, runArgs(pb)...); code != exitHalted {
		t.Fatalf("first run: exit %d\n%s", code, h.stderrString())
	}
	rep := onlyRun(t, state)
	l := flock.New(filepath.Join(state, "runs", rep.RunID, "run.lock"))
	if ok, err := l.TryLock(); !ok || err != nil {
		t.Fatalf("taking the run's lock: %v %v", ok, err)
	}
	defer l.Unlock()
	err := h.runErr(runArgs(pb, "--resume", rep.RunID)...)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != exitNotStarted || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("error %v, want exit 5: the run is in progress", err)
	}
}
