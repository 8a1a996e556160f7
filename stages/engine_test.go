package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/internal/steptest"
	jn "github.com/drover-sh/drover/journal"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/report"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

// ---- harness ----

// fleet is a fake Connector whose hosts answer commands from a tiny simulated
// apt (dpkg-query / apt-get install) and a shell-ish script:
//   - "BLOCK …"  announces the host on arrived and waits for release
//   - "fail …"   exits 1 with the command as stderr
//   - "echo X"   prints X
//   - anything else exits 0.
//
// Every command is appended to the shared journal as "host: cmd".
type fleet struct {
	t           *testing.T
	mu          sync.Mutex
	journal     *journal
	unreachable map[string]bool
	versions    map[string]string // demo-web version per host; "" absent
	badVersions map[string]bool   // apt-get install of these exits 100
	arrived     chan string
	release     map[string]chan struct{}
	inFlight    int
	maxInFlight int
}

// journal is an ordered log shared by the fake hosts and fake HTTP servers.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, s)
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lines)
}

// grep returns the journal lines containing s, in order.
func (j *journal) grep(s string) []string {
	var out []string
	for _, l := range j.all() {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func newFleet(t *testing.T, hosts ...string) *fleet {
	f := &fleet{t: t, journal: &journal{}, unreachable: map[string]bool{}, versions: map[string]string{},
		badVersions: map[string]bool{}, arrived: make(chan string, 100), release: map[string]chan struct{}{}}
	for _, h := range hosts {
		f.versions[h] = "1.0"
		f.release[h] = make(chan struct{})
	}
	return f
}

func (f *fleet) Connect(ctx context.Context, host string) (transport.Runner, error) {
	if f.unreachable[host] {
		return nil, fmt.Errorf("dial %s:22: connection refused: %w", host, transport.ErrUnreachable)
	}
	return &fakeHost{f: f, name: host}, nil
}

type fakeHost struct {
	f    *fleet
	name string
}

var aptInstallRe = regexp.MustCompile(`apt-get install .* demo-web=(\S+)$`)

func (h *fakeHost) Run(ctx context.Context, c *transport.Command) (*transport.Result, error) {
	f := h.f
	f.journal.add(h.name + ": " + c.Cmd)
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if res, ok, err := steptest.RunComposite(c.Cmd, func(cmd string) (*transport.Result, error) { return h.exec(ctx, cmd) }); ok {
		return res, err
	}
	return h.exec(ctx, c.Cmd)
}

// exec plays one plain command.
func (h *fakeHost) exec(ctx context.Context, cmd string) (*transport.Result, error) {
	f := h.f
	switch {
	case strings.HasPrefix(cmd, "BLOCK"):
		f.arrived <- h.name
		select {
		case <-f.release[h.name]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if strings.Contains(cmd, "fail") {
			return &transport.Result{ExitCode: 1, Stderr: []byte("blocked then failed")}, nil
		}
		return &transport.Result{}, nil
	case strings.HasPrefix(cmd, "fail"):
		return &transport.Result{ExitCode: 1, Stderr: []byte(cmd)}, nil
	case strings.HasPrefix(cmd, "echo "):
		return &transport.Result{Stdout: []byte(strings.TrimPrefix(cmd, "echo ") + "\n")}, nil
	case strings.HasPrefix(cmd, "dpkg-query"):
		f.mu.Lock()
		v := f.versions[h.name]
		f.mu.Unlock()
		out := "demo-web:\n  Installed: (none)\n  Candidate: 3.0\n"
		if v != "" {
			out = "install ok installed\t" + v + "\ndemo-web:\n  Installed: " + v + "\n  Candidate: 3.0\n"
		}
		return &transport.Result{Stdout: []byte(out)}, nil
	case aptInstallRe.MatchString(cmd):
		v := aptInstallRe.FindStringSubmatch(cmd)[1]
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.badVersions[v] {
			return &transport.Result{ExitCode: 100, Stderr: []byte("E: Sub-process /usr/bin/dpkg returned an error code (1)")}, nil
		}
		f.versions[h.name] = v
		return &transport.Result{}, nil
	}
	return &transport.Result{}, nil
}

func (h *fakeHost) Upload(context.Context, io.Reader, string, fs.FileMode, *transport.Become) error {
	return nil
}
func (h *fakeHost) Close() error { return nil }

func (f *fleet) version(h string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.versions[h]
}

// fakeClock: Sleep advances time at once, so soaks, pauses and retry
// intervals cost nothing and gate timeouts are exact.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 4, 1, 2, 3, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return nil
}

// recorder collects events (the engine never calls Events concurrently).
type recorder struct {
	mu     sync.Mutex
	events []report.Event
	on     func(report.Event)
}

func (r *recorder) add(ev report.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	on := r.on
	r.mu.Unlock()
	if on != nil {
		on(ev)
	}
}

func (r *recorder) all() []report.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// index is the position of the first event matching, or -1.
func (r *recorder) index(match func(report.Event) bool) int {
	for i, ev := range r.all() {
		if match(ev) {
			return i
		}
	}
	return -1
}

func loadPlaybook(t *testing.T, src string, vars ...string) *playbook.Playbook {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pb.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, diags := playbook.Load(path, playbook.VarInputs{Flags: vars})
	if diags.HasErrors() {
		t.Fatalf("playbook: %s", diags.Error())
	}
	return p
}

var webFacts = map[string]any{"package_manager": "apt", "init_system": "systemd", "role": "web"}

// setup plans p over hosts and returns an engine on the fleet, with a fake
// clock and an event recorder.
func setup(t *testing.T, p *playbook.Playbook, f *fleet, hosts ...string) (*Engine, *recorder) {
	t.Helper()
	var ts []Target
	tm := map[string]Target{}
	for _, h := range hosts {
		tg := Target{Name: h, Host: playbook.HostData{Address: "127.1.0.1"}, Facts: webFacts}
		ts = append(ts, tg)
		tm[h] = tg
	}
	plan, err := PlanStages(p, ts)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	rec := &recorder{}
	return &Engine{Playbook: p, Plan: plan, Targets: tm, Conn: f, Events: rec.add, Now: clk.Now, Sleep: clk.Sleep,
		RunID: "run-1"}, rec
}

func hostNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d", i+1)
	}
	return out
}

func hostStatuses(rep *report.Report) map[string]string {
	out := map[string]string{}
	for _, s := range rep.Stages {
		for _, h := range s.Hosts {
			out[h.Name] = h.Status
		}
	}
	return out
}

func mustRun(t *testing.T, e *Engine) *report.Report {
	t.Helper()
	rep, err := e.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// ---- tests ----

const stagedPlaybook = `
playbook "demo" {}
canary { hosts = 1 }
batch "early" {
  hosts = 4
  size  = 2
}
remaining { parallel = 2 }
steps {
  command "one" { run = "echo one" }
}
`

// Canary finishes before the first batch starts; each batch (and its gate)
// finishes before the next one starts; every host runs once.
func TestStageAndBatchOrder(t *testing.T) {
	p := loadPlaybook(t, strings.Replace(stagedPlaybook, "size  = 2", "size = 2\n  gate {\n    command \"ok\" { run = \"true\" }\n  }", 1))
	hosts := hostNames(7)
	f := newFleet(t, hosts...)
	e, rec := setup(t, p, f, hosts...)
	rep := mustRun(t, e)
	if rep.Status != report.Succeeded || report.ExitCode(rep.Status) != 0 {
		t.Fatalf("status %s", rep.Status)
	}
	evs := rec.all()
	// Positions of host starts and finishes.
	pos := func(typ, host string) int {
		return rec.index(func(ev report.Event) bool { return ev.Type == typ && ev.Host == host })
	}
	if c, b := pos(report.HostFinish, "h1"), pos(report.HostStart, "h2"); c < 0 || b < 0 || c > b {
		t.Errorf("canary h1 finished at %d, batch host h2 started at %d", c, b)
	}
	// Batch 1 of early = h2,h3; its gate; then batch 2 = h4,h5.
	gate1 := rec.index(func(ev report.Event) bool {
		return ev.Type == report.GateFinish && ev.Stage == "early" && ev.Batch == 1
	})
	for _, h := range []string{"h2", "h3"} {
		if pos(report.HostFinish, h) > gate1 {
			t.Errorf("%s finished after the gate of batch 1", h)
		}
	}
	for _, h := range []string{"h4", "h5", "h6", "h7"} {
		if pos(report.HostStart, h) < gate1 {
			t.Errorf("%s started before the gate of batch 1 passed (event %d < %d)", h, pos(report.HostStart, h), gate1)
		}
	}
	if got := len(f.journal.grep("echo one")); got != 7 {
		t.Errorf("ran on %d hosts, want 7", got)
	}
	var starts int
	for _, ev := range evs {
		if ev.Type == report.HostStart {
			starts++
		}
	}
	if starts != 7 {
		t.Errorf("%d host starts, want 7", starts)
	}
	if len(rep.Stages) != 3 || len(rep.Stages[1].Batches) != 2 || rep.Stages[1].Gate.Status != report.Passed {
		t.Errorf("stages: %+v", rep.Stages)
	}
}

// The window never holds more hosts than `parallel` (or --forks), and does
// reach it: the test holds `want` hosts blocked at once before releasing any.
func TestSlidingWindowAndForks(t *testing.T) {
	tests := []struct {
		name     string
		parallel int
		forks    int
		want     int
	}{
		{"parallel 3", 3, 0, 3},
		{"forks cap 2 under parallel 5", 5, 2, 2},
		{"parallel 1", 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPlaybook(t, fmt.Sprintf(`
playbook "w" {}
remaining { parallel = %d }
steps {
  command "work" { run = "BLOCK work" }
}`, tt.parallel))
			hosts := hostNames(8)
			f := newFleet(t, hosts...)
			e, _ := setup(t, p, f, hosts...)
			e.Forks = tt.forks
			done := make(chan *report.Report)
			go func() { rep, _ := e.Run(context.Background()); done <- rep }()
			var waiting []string
			for range tt.want {
				waiting = append(waiting, <-f.arrived)
			}
			for n := tt.want; len(waiting) > 0; {
				h := waiting[0]
				waiting = waiting[1:]
				f.release[h] <- struct{}{}
				if n < len(hosts) {
					waiting = append(waiting, <-f.arrived)
					n++
				}
			}
			rep := <-done
			if rep.Status != report.Succeeded {
				t.Fatalf("status %s", rep.Status)
			}
			if f.maxInFlight != tt.want {
				t.Errorf("at most %d hosts at once, want exactly %d", f.maxInFlight, tt.want)
			}
		})
	}
}

// Failure budgets: canary default 0 halts; max_failed = 1 tolerates one;
// an unreachable host counts as a failure.
func TestFailureBudgets(t *testing.T) {
	tests := []struct {
		name        string
		src         string
		failing     []string
		unreachable []string
		status      string
		exit        int
		hosts       map[string]string
		notRun      []string
	}{
		{
			name:    "canary fails, default budget 0",
			src:     `canary { hosts = 1 }`,
			failing: []string{"h1"}, status: report.Halted, exit: 3,
			hosts:  map[string]string{"h1": "failed", "h2": "skipped", "h3": "skipped", "h4": "skipped"},
			notRun: []string{"h2", "h3", "h4"},
		},
		{
			name:    "one failure within max_failed = 1",
			src:     `remaining { max_failed = 1 }`,
			failing: []string{"h2"}, status: report.CompletedWithFailures, exit: 1,
			hosts: map[string]string{"h1": "changed", "h2": "failed", "h3": "changed", "h4": "changed"},
		},
		{
			name: "two failures exceed max_failed = 1",
			src: `remaining {
  max_failed = 1
  parallel   = 1
}`,
			failing: []string{"h1", "h2"}, status: report.Halted, exit: 3,
			hosts:  map[string]string{"h1": "failed", "h2": "failed", "h3": "skipped", "h4": "skipped"},
			notRun: []string{"h3", "h4"},
		},
		{
			name:        "unreachable canary halts",
			src:         `canary { hosts = 1 }`,
			unreachable: []string{"h1"}, status: report.Halted, exit: 3,
			hosts:  map[string]string{"h1": "unreachable", "h2": "skipped", "h3": "skipped", "h4": "skipped"},
			notRun: []string{"h2", "h3", "h4"},
		},
		{
			name:        "unreachable within budget",
			src:         `remaining { max_failed = "25%" }`,
			unreachable: []string{"h3"}, status: report.CompletedWithFailures, exit: 1,
			hosts: map[string]string{"h1": "changed", "h2": "changed", "h3": "unreachable", "h4": "changed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPlaybook(t, `playbook "b" {}
`+tt.src+`
steps {
  command "work" { run = "${contains(var.failing, host.name) ? "fail" : "echo"} work" }
}
variable "failing" {
  type    = list(string)
  default = []
}`, "failing="+hclList(tt.failing))
			hosts := hostNames(4)
			f := newFleet(t, hosts...)
			for _, h := range tt.unreachable {
				f.unreachable[h] = true
			}
			e, _ := setup(t, p, f, hosts...)
			rep := mustRun(t, e)
			if rep.Status != tt.status || report.ExitCode(rep.Status) != tt.exit {
				t.Errorf("status %s (exit %d), want %s (exit %d)", rep.Status, report.ExitCode(rep.Status), tt.status, tt.exit)
			}
			if got := hostStatuses(rep); !mapsEqual(got, tt.hosts) {
				t.Errorf("hosts %v, want %v", got, tt.hosts)
			}
			for _, h := range tt.notRun {
				if l := f.journal.grep(h + ": "); len(l) > 0 {
					t.Errorf("%s should not have been touched, ran %q", h, l)
				}
			}
			if tt.status == report.Halted && !strings.Contains(rep.Error, "max_failed") {
				t.Errorf("halt reason %q does not mention max_failed", rep.Error)
			}
		})
	}
}

func hclList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = `"` + x + `"`
	}
	return "[" + strings.Join(q, ",") + "]"
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A halt lets hosts in flight finish their current step, then stop.
func TestHaltLetsInFlightFinishCurrentStep(t *testing.T) {
	p := loadPlaybook(t, `playbook "h" {}
remaining { parallel = 2 }
steps {
  command "one" { run = "BLOCK ${host.name == "h1" ? "fail" : "ok"}" }
  command "two" { run = "echo two" }
}`)
	hosts := hostNames(3)
	f := newFleet(t, hosts...)
	e, rec := setup(t, p, f, hosts...)
	halted := make(chan struct{})
	rec.on = func(ev report.Event) {
		if ev.Type == report.HaltRequested {
			close(halted)
		}
	}
	done := make(chan *report.Report)
	go func() { rep, _ := e.Run(context.Background()); done <- rep }()
	<-f.arrived
	<-f.arrived // h1 and h2 both in step one
	f.release["h1"] <- struct{}{}
	<-halted // h1 failed: the budget (0) is exceeded
	f.release["h2"] <- struct{}{}
	rep := <-done
	if rep.Status != report.Halted {
		t.Fatalf("status %s", rep.Status)
	}
	if l := f.journal.grep("echo two"); len(l) != 0 {
		t.Errorf("step two ran after the halt: %q", l)
	}
	if l := f.journal.grep("h3: "); len(l) != 0 {
		t.Errorf("h3 started after the halt: %q", l)
	}
	hs := rep.Stages[0].Hosts
	if hs[1].Status != report.HostFailed || !strings.Contains(hs[1].Error, "stopped") || len(hs[1].Steps) != 1 {
		t.Errorf("h2: %+v, want failed/stopped after one step", hs[1])
	}
	if hs[2].Status != report.HostSkipped || !strings.Contains(hs[2].Error, "not started") {
		t.Errorf("h3: %+v", hs[2])
	}
}

// SIGINT: the in-flight host finishes its step, nothing else starts, status
// interrupted (exit 4).
func TestInterruption(t *testing.T) {
	p := loadPlaybook(t, `playbook "i" {}
remaining { parallel = 1 }
steps {
  command "one" { run = "BLOCK one" }
  command "two" { run = "echo two" }
}`)
	hosts := hostNames(2)
	f := newFleet(t, hosts...)
	e, _ := setup(t, p, f, hosts...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *report.Report)
	go func() { rep, _ := e.Run(ctx); done <- rep }()
	if h := <-f.arrived; h != "h1" {
		t.Fatalf("first host %s", h)
	}
	cancel()
	f.release["h1"] <- struct{}{} // the step was not cancelled: it is released and finishes
	rep := <-done
	if rep.Status != report.Interrupted || report.ExitCode(rep.Status) != 4 {
		t.Fatalf("status %s", rep.Status)
	}
	h1 := rep.Stages[0].Hosts[0]
	if len(h1.Steps) != 1 || h1.Steps[0].Status != "changed" {
		t.Errorf("h1 steps %+v: step one should have finished", h1.Steps)
	}
	if len(f.journal.grep("echo two")) != 0 || len(f.journal.grep("h2: ")) != 0 {
		t.Errorf("work after the interruption: %q", f.journal.all())
	}
	if rep.Stages[0].Status != report.Interrupted || rep.Stages[0].Hosts[1].Status != report.HostSkipped {
		t.Errorf("stage %+v", rep.Stages[0])
	}
}

// Per host: drain → steps → health → undrain; a failed host is never undrained.
func TestBeforeStepsHealthAfterOrder(t *testing.T) {
	f := newFleet(t, "h1", "h2")
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.journal.add("lb: " + r.Method + " " + r.URL.Path)
	}))
	defer lb.Close()
	p := loadPlaybook(t, `playbook "o" {}
variable "lb" { type = string }
remaining {
  parallel   = 1
  max_failed = 1
}
before {
  http "drain" {
    url    = "${var.lb}/pool/${host.name}"
    method = "DELETE"
  }
}
steps {
  command "work" { run = "echo work ${host.name}" }
}
health {
  command "up" {
    run     = "${host.name == "h2" ? "fail" : "echo"} health ${host.name}"
    retries = 2
  }
}
after {
  http "undrain" {
    url    = "${var.lb}/pool/${host.name}"
    method = "PUT"
  }
}`, "lb="+lb.URL)
	e, _ := setup(t, p, f, "h1", "h2")
	e.HTTP = lb.Client()
	rep := mustRun(t, e)
	want := []string{
		"lb: DELETE /pool/h1", "h1: echo work h1", "h1: echo health h1", "lb: PUT /pool/h1",
		"lb: DELETE /pool/h2", "h2: echo work h2", "h2: fail health h2", "h2: fail health h2", "h2: fail health h2",
	}
	if got := f.journal.all(); !slices.Equal(got, want) {
		t.Errorf("order:\n got %q\nwant %q", got, want)
	}
	h2 := rep.Stages[0].Hosts[1]
	if h2.Status != report.HostFailed || !strings.Contains(h2.Error, "health command up") || !strings.Contains(h2.Error, "after 3 attempts") {
		t.Errorf("h2 %+v", h2)
	}
	names := []string{}
	for _, s := range rep.Stages[0].Hosts[0].Steps {
		names = append(names, s.Name+"="+s.Status)
	}
	if w := []string{"before: http drain=ok", "command work=changed", "health: command up=ok", "after: http undrain=ok"}; !slices.Equal(names, w) {
		t.Errorf("h1 steps %q, want %q", names, w)
	}
}

// Rollback runs on a failed host with prior from the steps' Before values.
func TestRollbackWithPrior(t *testing.T) {
	src := `playbook "r" {}
variable "version" { type = string }
steps {
  package "demo-web" { version = var.version }
  command "smoke" { run = "echo smoke" }
}
health {
  command "up" { run = "${var.version == "2.0" ? "fail" : "echo"} health" }
}
rollback {
  package "demo-web" { version = prior.package["demo-web"] }
}`
	tests := []struct {
		name       string
		version    string
		noRollback bool
		bad        bool
		status     string
		final      string
		rollback   bool
	}{
		{"health fails: rolled back to 1.0", "2.0", false, false, report.HostRolledBack, "1.0", true},
		{"install fails: rolled back", "2.1", false, true, report.HostRolledBack, "1.0", true},
		{"no rollback flag", "2.0", true, false, report.HostFailed, "2.0", false},
		{"success: no rollback", "3.0", false, false, report.HostChanged, "3.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPlaybook(t, src, "version="+tt.version)
			f := newFleet(t, "h1")
			if tt.bad {
				f.badVersions[tt.version] = true
			}
			e, _ := setup(t, p, f, "h1")
			e.NoRollback = tt.noRollback
			rep := mustRun(t, e)
			h := rep.Stages[0].Hosts[0]
			if h.Status != tt.status {
				t.Fatalf("host status %s (%s), want %s", h.Status, h.Error, tt.status)
			}
			if got := f.version("h1"); got != tt.final {
				t.Errorf("demo-web is %s after the run, want %s", got, tt.final)
			}
			rb := slices.IndexFunc(h.Steps, func(s report.Step) bool { return strings.HasPrefix(s.Name, "rollback: package demo-web") })
			if (rb >= 0) != tt.rollback {
				t.Errorf("rollback step present = %v, want %v: %+v", rb >= 0, tt.rollback, h.Steps)
			}
			if tt.status == report.HostRolledBack {
				if report.ExitCode(rep.Status) != 3 {
					t.Errorf("a rolled back host still counts as failed: status %s", rep.Status)
				}
				if tt.bad && len(f.journal.grep("echo smoke")) != 0 {
					t.Error("steps after the failed one ran")
				}
			}
		})
	}
}

// Steps with a false `when` are skipped; the host is still ok.
func TestWhenSkips(t *testing.T) {
	p := loadPlaybook(t, `playbook "w" {}
steps {
  command "db" {
    run  = "echo db"
    when = facts.role == "db"
  }
  command "web" {
    run  = "echo web"
    when = facts.role == "web"
  }
}`)
	f := newFleet(t, "h1")
	e, _ := setup(t, p, f, "h1")
	rep := mustRun(t, e)
	st := rep.Stages[0].Hosts[0].Steps
	if len(st) != 2 || st[0].Status != "skipped" || st[1].Status != "changed" || len(f.journal.grep("echo db")) != 0 {
		t.Errorf("steps %+v, journal %q", st, f.journal.all())
	}
}

// Secrets never reach the report or the events.
func TestRedaction(t *testing.T) {
	const secret = "s3cr3t-T0ken"
	p := loadPlaybook(t, `playbook "s" {}
variable "token" {
  type      = string
  sensitive = true
}
steps {
  command "use" { run = "fail --token ${var.token}" }
}`, "token="+secret)
	f := newFleet(t, "h1")
	e, rec := setup(t, p, f, "h1")
	e.Become = &transport.Become{Password: []byte("sudo-pw-123")}
	rep := mustRun(t, e)
	b, _ := json.Marshal(rep)
	evs, _ := json.Marshal(rec.all())
	for _, s := range []string{secret, "sudo-pw-123"} {
		if strings.Contains(string(b), s) || strings.Contains(string(evs), s) {
			t.Errorf("secret %q leaked:\n%s\n%s", s, b, evs)
		}
	}
	if !strings.Contains(string(b), "[redacted]") {
		t.Errorf("the failing command's detail should show [redacted]: %s", b)
	}
	if len(f.journal.grep(secret)) != 1 {
		t.Error("the host should have received the real value")
	}
}

// The report's JSON shape (SPEC §5), with a fixed clock.
func TestReportGolden(t *testing.T) {
	p := loadPlaybook(t, `playbook "demo-web" {}
canary {
  gate {
    wait = "30s"
    command "ok" { run = "true" }
  }
}
remaining {}
steps {
  package "demo-web" { version = "2.0" }
  command "smoke" {
    run  = "echo smoke"
    when = facts.role == "db"
  }
}`)
	f := newFleet(t, "h1", "h2")
	e, _ := setup(t, p, f, "h1", "h2")
	rep := mustRun(t, e)
	got, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{
  "run_id": "run-1",
  "playbook": "demo-web",
  "status": "succeeded",
  "started": "2025-03-04T01:02:03.000Z",
  "finished": "2025-03-04T01:02:33.000Z",
  "stages": [
    {
      "name": "canary",
      "kind": "canary",
      "status": "succeeded",
      "started": "2025-03-04T01:02:03.000Z",
      "finished": "2025-03-04T01:02:33.000Z",
      "batches": [
        {
          "hosts": [
            "h1"
          ],
          "started": "2025-03-04T01:02:03.000Z",
          "finished": "2025-03-04T01:02:03.000Z"
        }
      ],
      "gate": {
        "status": "passed",
        "checks": [
          {
            "name": "command ok",
            "status": "passed",
            "detail": "exit 0"
          }
        ]
      },
      "hosts": [
        {
          "name": "h1",
          "status": "changed",
          "started": "2025-03-04T01:02:03.000Z",
          "finished": "2025-03-04T01:02:03.000Z",
          "steps": [
            {
              "name": "package demo-web",
              "status": "changed",
              "detail": "1.0 -> 2.0",
              "duration_ms": 0
            },
            {
              "name": "command smoke",
              "status": "skipped",
              "detail": "when is false",
              "duration_ms": 0
            }
          ]
        }
      ]
    },
    {
      "name": "remaining",
      "kind": "remaining",
      "status": "succeeded",
      "started": "2025-03-04T01:02:33.000Z",
      "finished": "2025-03-04T01:02:33.000Z",
      "batches": [
        {
          "hosts": [
            "h2"
          ],
          "started": "2025-03-04T01:02:33.000Z",
          "finished": "2025-03-04T01:02:33.000Z"
        }
      ],
      "hosts": [
        {
          "name": "h2",
          "status": "changed",
          "started": "2025-03-04T01:02:33.000Z",
          "finished": "2025-03-04T01:02:33.000Z",
          "steps": [
            {
              "name": "package demo-web",
              "status": "changed",
              "detail": "1.0 -> 2.0",
              "duration_ms": 0
            },
            {
              "name": "command smoke",
              "status": "skipped",
              "detail": "when is false",
              "duration_ms": 0
            }
          ]
        }
      ]
    }
  ]
}
`
	if string(got) != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
	var back report.Report
	if err := json.Unmarshal(got, &back); err != nil || !back.Started.Equal(rep.Started.Time) {
		t.Errorf("round trip: %v, %v", err, back.Started)
	}
}

// The engine refuses to start on bad input, with a non-nil report.
func TestNotStarted(t *testing.T) {
	p := loadPlaybook(t, `playbook "n" {}
steps {
  reboot {}
}`)
	f := newFleet(t, "h1")
	e, _ := setup(t, p, f, "h1")
	e.Steps = noReboot{DefaultSteps{}}
	rep, err := e.Run(context.Background())
	if !errors.Is(err, ErrUnsupportedStep) || rep == nil || rep.Status != report.NotStarted || report.ExitCode(rep.Status) != 2 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	if len(f.journal.all()) != 0 {
		t.Error("something ran")
	}
	e.Targets = nil
	if _, err := e.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not among the targets") {
		t.Errorf("missing target: %v", err)
	}
}

// noReboot is an executor without reboot steps, for TestNotStarted.
type noReboot struct{ DefaultSteps }

func (n noReboot) Supports(kind string) error {
	if kind == "reboot" {
		return fmt.Errorf("%s: %w", kind, ErrUnsupportedStep)
	}
	return n.DefaultSteps.Supports(kind)
}

// scripted answers commands by prefix and records them and uploads.
type scripted struct {
	answers map[string]transport.Result // by command prefix
	cmds    []string
	uploads []string
}

func (s *scripted) Run(_ context.Context, c *transport.Command) (*transport.Result, error) {
	s.cmds = append(s.cmds, c.Cmd)
	for p, r := range s.answers {
		if strings.HasPrefix(c.Cmd, p) {
			return &r, nil
		}
	}
	return &transport.Result{}, nil
}

func (s *scripted) Upload(_ context.Context, src io.Reader, dst string, mode fs.FileMode, _ *transport.Become) error {
	b, _ := io.ReadAll(src)
	s.uploads = append(s.uploads, fmt.Sprintf("%s %o %s", dst, mode, b))
	return nil
}
func (s *scripted) Close() error { return nil }

func TestDefaultStepsCommandAndUpload(t *testing.T) {
	// sha256("hello\n")
	const helloSum = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
	tests := []struct {
		name    string
		spec    playbook.StepSpec
		answers map[string]transport.Result
		status  string
		detail  string
		cmds    []string
		uploads []string
	}{
		{"command runs", playbook.StepSpec{Command: &playbook.CommandSpec{Run: "make it"}}, nil,
			"changed", "exit 0", []string{"make it"}, nil},
		{"command fails", playbook.StepSpec{Command: &playbook.CommandSpec{Run: "make it"}},
			map[string]transport.Result{"make": {ExitCode: 2, Stderr: []byte("a\nb\nc\nd\n")}},
			"failed", "exit 2: b; c; d", []string{"make it"}, nil},
		{"creates exists", playbook.StepSpec{Command: &playbook.CommandSpec{Run: "make it", Creates: "/opt/x y"}}, nil,
			"skipped", "/opt/x y exists", []string{"test -e '/opt/x y'"}, nil},
		{"creates missing", playbook.StepSpec{Command: &playbook.CommandSpec{Run: "make it", Creates: "/opt/x"}},
			map[string]transport.Result{"test -e": {ExitCode: 1}},
			"changed", "exit 0", []string{"test -e /opt/x", "make it"}, nil},
		{"upload new", playbook.StepSpec{Upload: &playbook.UploadSpec{Content: "hello\n", HasContent: true, Destination: "/etc/motd", Owner: "web"}}, nil,
			"changed", "6 bytes", []string{"if [ -f /etc/motd ] && [ ! -L /etc/motd ]; then sha256sum -- /etc/motd 2>/dev/null | cut -c1-64; stat -c '%a %U' -- /etc/motd 2>/dev/null; fi", "chown -h -- web /etc/motd"},
			[]string{"/etc/motd 644 hello\n"}},
		{"upload unchanged", playbook.StepSpec{Upload: &playbook.UploadSpec{Content: "hello\n", HasContent: true, Destination: "/etc/motd"}},
			map[string]transport.Result{"if [ -f": {Stdout: []byte(helloSum + "\n644 root\n")}},
			"ok", "unchanged", []string{"if [ -f /etc/motd ] && [ ! -L /etc/motd ]; then sha256sum -- /etc/motd 2>/dev/null | cut -c1-64; stat -c '%a %U' -- /etc/motd 2>/dev/null; fi"}, nil},
		{"upload outside its destination refused", playbook.StepSpec{Upload: &playbook.UploadSpec{Content: "x", HasContent: true, Destination: "/etc/app/../../root/.ssh/authorized_keys"}}, nil,
			"failed", `upload: destination "/etc/app/../../root/.ssh/authorized_keys" is not a clean path (want "/root/.ssh/authorized_keys")`, []string(nil), nil},
		{"upload mode differs", playbook.StepSpec{Upload: &playbook.UploadSpec{Content: "hello\n", HasContent: true, Destination: "/etc/motd", Mode: 0o600}},
			map[string]transport.Result{"if [ -f": {Stdout: []byte(helloSum + "\n644 root\n")}},
			"changed", "6 bytes", nil, []string{"/etc/motd 600 hello\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scripted{answers: tt.answers}
			res := DefaultSteps{}.Exec(context.Background(), r, &tt.spec, webFacts, steps.Options{})
			if string(res.Status) != tt.status || res.Detail != tt.detail {
				t.Errorf("got %s %q, want %s %q", res.Status, res.Detail, tt.status, tt.detail)
			}
			if tt.cmds != nil && !slices.Equal(r.cmds, tt.cmds) {
				t.Errorf("commands %q, want %q", r.cmds, tt.cmds)
			}
			if !slices.Equal(r.uploads, tt.uploads) {
				t.Errorf("uploads %q, want %q", r.uploads, tt.uploads)
			}
		})
	}
}

// Pauses between batches wait on the clock and are reported.
func TestPauseBetweenBatches(t *testing.T) {
	p := loadPlaybook(t, `playbook "p" {}
batch "all" {
  size  = 1
  pause = "10s"
}
steps {
  command "one" { run = "echo one" }
}`)
	f := newFleet(t, "h1", "h2", "h3")
	e, rec := setup(t, p, f, "h1", "h2", "h3")
	start := e.Now()
	rep := mustRun(t, e)
	if rep.Status != report.Succeeded {
		t.Fatal(rep.Status)
	}
	if d := e.Now().Sub(start); d != 20*time.Second {
		t.Errorf("took %s on the clock, want 20s (two pauses)", d)
	}
	var pauses []int
	for _, ev := range rec.all() {
		if ev.Type == report.PauseStart {
			pauses = append(pauses, ev.Batch)
		}
	}
	if !slices.Equal(pauses, []int{1, 2}) {
		t.Errorf("pauses after batches %v, want [1 2]", pauses)
	}
}

// ---- journal, --resume, maintenance window ----

// journalled wires a real journal (in a temp run directory) into e, so the
// resume tests replay exactly what the engine wrote.
func journalled(t *testing.T, e *Engine, dir string) *jn.Journal {
	t.Helper()
	var j *jn.Journal
	var err error
	if _, statErr := os.Stat(filepath.Join(dir, jn.FileName)); statErr == nil {
		j, err = jn.Open(filepath.Join(dir, jn.FileName))
	} else {
		j, err = jn.Create(dir, jn.Header{RunID: e.RunID, Playbook: e.Playbook.Name})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	e.Journal = j.Append
	return j
}

func replay(t *testing.T, j *jn.Journal) *jn.State {
	t.Helper()
	st, err := jn.Replay(j.Path())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const resumePlaybook = `playbook "r" {}
canary {
  hosts = 1
  gate {
    command "ok" { run = "true" }
  }
}
batch "early" {
  hosts = 2
  size  = 1
}
remaining {
  parallel   = 1
  max_failed = 1
}
steps {
  command "one" { run = "echo one-${host.name}" }
  command "two" { run = "${host.name == "h5" || host.name == "h6" ? "fail" : "echo"} two-${host.name}" }
}`

// Interrupted while h3 runs its first step: on resume h1 and h2 (finished)
// are not touched and keep their report entries, h3 runs again from its
// first step, the canary's passed gate is not checked again, the rest run,
// and the one report covers both attempts.
func TestResumeSkipsFinishedAndRerunsInFlight(t *testing.T) {
	p := loadPlaybook(t, strings.Replace(resumePlaybook, `"h5" || host.name == "h6"`, `"none"`, 1))
	hosts := hostNames(6)
	dir := t.TempDir()
	f := newFleet(t, hosts...)
	e, rec := setup(t, p, f, hosts...)
	j := journalled(t, e, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec.on = func(ev report.Event) {
		if ev.Type == report.StepStart && ev.Host == "h3" && ev.Step == "command one" {
			cancel() // h3 finishes step one, then stops
		}
	}
	rep1, err := e.Run(ctx)
	if err != nil || rep1.Status != report.Interrupted {
		t.Fatalf("attempt 1: %v, status %s", err, rep1.Status)
	}
	st := replay(t, j)
	if !slices.Equal(st.InFlight, []string{"h3"}) || st.Status != report.Interrupted {
		t.Fatalf("journal: in flight %v, status %q", st.InFlight, st.Status)
	}
	if h3 := rep1.Stages[1].Hosts[1]; !strings.HasPrefix(h3.Error, jn.StoppedPrefix) {
		t.Fatalf("h3's error %q lacks %q: the journal could not tell it was stopped", h3.Error, jn.StoppedPrefix)
	}
	h1Started := rep1.Stages[0].Hosts[0].Started

	f2 := newFleet(t, hosts...)
	e2, rec2 := setup(t, p, f2, hosts...)
	e2.RunID, e2.Resume = "", st
	journalled(t, e2, dir)
	rep := mustRun(t, e2)
	if rep.Status != report.Succeeded || rep.RunID != "run-1" {
		t.Fatalf("attempt 2: status %s, run id %s", rep.Status, rep.RunID)
	}
	for _, h := range []string{"h1", "h2"} {
		if got := f2.journal.grep(h + ": "); len(got) != 0 {
			t.Errorf("%s finished in attempt 1, yet ran again: %q", h, got)
		}
	}
	if got := f2.journal.grep("h3: "); !slices.Equal(got, []string{"h3: echo one-h3", "h3: echo two-h3"}) {
		t.Errorf("h3 in attempt 2 ran %q, want both steps from the first", got)
	}
	for _, h := range []string{"h4", "h5", "h6"} {
		if len(f2.journal.grep(h+": echo two-")) != 1 {
			t.Errorf("%s did not run in attempt 2: %q", h, f2.journal.all())
		}
	}
	if n := rec2.index(func(ev report.Event) bool { return ev.Type == report.GateStart }); n >= 0 {
		t.Errorf("the canary's gate, passed in attempt 1, was checked again")
	}
	want := map[string]string{"h1": "changed", "h2": "changed", "h3": "changed", "h4": "changed", "h5": "changed", "h6": "changed"}
	if got := hostStatuses(rep); !mapsEqual(got, want) {
		t.Errorf("hosts %v", got)
	}
	if h1 := rep.Stages[0].Hosts[0]; !h1.Started.Equal(h1Started.Time) || len(h1.Steps) != 2 {
		t.Errorf("h1's entry %+v is not attempt 1's", h1)
	}
	if !rep.Started.Equal(rep1.Started.Time) {
		t.Errorf("report started %v, want attempt 1's %v", rep.Started, rep1.Started)
	}
	if c := rep.Stages[0]; c.Status != report.Succeeded || c.Gate == nil || c.Gate.Status != report.Passed || len(c.Batches) != 1 {
		t.Errorf("canary %+v", c)
	}
	if b := rep.Stages[1].Batches; len(b) != 2 || !slices.Equal(b[1].Hosts, []string{"h3"}) {
		t.Errorf("early batches %+v", b)
	}
	if st := replay(t, j); !st.Complete() || st.Attempts != 2 || len(st.InFlight) != 0 {
		t.Errorf("journal after attempt 2: status %q, attempts %d, in flight %v", st.Status, st.Attempts, st.InFlight)
	}
}

// Failure counts carry over: remaining tolerates one failure; h5 failed in
// attempt 1, h6 fails in attempt 2, and that is the second: halt. A budget
// spent in attempt 1 halts a resumed attempt before any host runs.
func TestResumeCarriesFailureCounts(t *testing.T) {
	p := loadPlaybook(t, resumePlaybook)
	hosts := hostNames(7)
	dir := t.TempDir()
	f := newFleet(t, hosts...)
	e, rec := setup(t, p, f, hosts...)
	j := journalled(t, e, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec.on = func(ev report.Event) {
		if ev.Type == report.HostFinish && ev.Host == "h5" {
			cancel()
		}
	}
	if rep, _ := e.Run(ctx); rep.Status != report.Interrupted || hostStatuses(rep)["h5"] != report.HostFailed {
		t.Fatalf("attempt 1: %s %v", rep.Status, hostStatuses(rep))
	}
	st := replay(t, j)
	if st.Stages["remaining"].Failures != 1 {
		t.Fatalf("journal: remaining failures %d, want 1", st.Stages["remaining"].Failures)
	}

	f2 := newFleet(t, hosts...)
	e2, _ := setup(t, p, f2, hosts...)
	e2.Resume = st
	journalled(t, e2, dir)
	rep := mustRun(t, e2)
	if rep.Status != report.Halted || !strings.Contains(rep.Error, "2 host(s) failed") {
		t.Fatalf("attempt 2: status %s (%s), want halted on the second failure", rep.Status, rep.Error)
	}
	if len(f2.journal.grep("h5: ")) != 0 || len(f2.journal.grep("h7: ")) != 0 {
		t.Errorf("attempt 2 ran h5 (finished) or h7 (after the halt): %q", f2.journal.all())
	}
	if s := hostStatuses(rep); s["h5"] != report.HostFailed || s["h6"] != report.HostFailed || s["h7"] != report.HostSkipped {
		t.Errorf("hosts %v", s)
	}

	// Resuming the halted run: the budget is still spent, nothing runs.
	f3 := newFleet(t, hosts...)
	e3, _ := setup(t, p, f3, hosts...)
	e3.Resume = replay(t, j)
	rep = mustRun(t, e3)
	if rep.Status != report.Halted || len(f3.journal.all()) != 0 || !strings.Contains(rep.Error, "earlier attempt") {
		t.Errorf("resuming a spent budget: status %s (%s), commands %q", rep.Status, rep.Error, f3.journal.all())
	}
}

// The maintenance window is asked before each batch and before each host of
// remaining; once closed nothing new starts, the run ends window_closed
// (exit 3) and resumes where it stopped.
func TestWindowClosesMidRun(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		openCalls int // the window answers open this many times, then closed
		ran       []string
	}{
		{"between batches", `playbook "w" {}
batch "b" { size = 1 }
steps {
  command "one" { run = "echo one" }
}`, 2, []string{"h1", "h2"}},
		{"between hosts of remaining", `playbook "w" {}
remaining { parallel = 1 }
steps {
  command "one" { run = "echo one" }
}`, 3, []string{"h1", "h2"}}, // one call before the batch, one per host
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPlaybook(t, tt.src)
			hosts := hostNames(4)
			dir := t.TempDir()
			f := newFleet(t, hosts...)
			e, _ := setup(t, p, f, hosts...)
			j := journalled(t, e, dir)
			calls := 0
			e.Window = func() (bool, string) {
				calls++
				return calls <= tt.openCalls, "mon 01:00-05:00 UTC"
			}
			rep := mustRun(t, e)
			if rep.Status != report.WindowClosed || report.ExitCode(rep.Status) != 3 {
				t.Fatalf("status %s", rep.Status)
			}
			var ran []string
			for _, h := range hosts {
				if len(f.journal.grep(h+": ")) > 0 {
					ran = append(ran, h)
				}
			}
			if !slices.Equal(ran, tt.ran) {
				t.Errorf("ran %v, want %v", ran, tt.ran)
			}
			h4 := rep.Stages[0].Hosts[3]
			if h4.Status != report.HostSkipped || !strings.Contains(h4.Error, "maintenance window closed") ||
				!strings.Contains(rep.Error, "mon 01:00-05:00") || rep.Stages[0].Status != report.WindowClosed {
				t.Errorf("h4 %+v, run error %q, stage %s", h4, rep.Error, rep.Stages[0].Status)
			}

			f2 := newFleet(t, hosts...)
			e2, _ := setup(t, p, f2, hosts...)
			e2.Resume = replay(t, j)
			e2.Window = func() (bool, string) { return true, "" }
			rep = mustRun(t, e2)
			if rep.Status != report.Succeeded {
				t.Fatalf("resumed: status %s", rep.Status)
			}
			if len(f2.journal.grep("h1: ")) != 0 || len(f2.journal.grep("h3: ")) != 1 || len(f2.journal.grep("h4: ")) != 1 {
				t.Errorf("resumed ran %q, want h3 and h4 only", f2.journal.all())
			}
		})
	}
}

// A journal that cannot be written stops the rollout: nothing new starts,
// the run ends halted with the journal's error as the reason.
func TestJournalWriteFailureHalts(t *testing.T) {
	p := loadPlaybook(t, `playbook "j" {}
remaining { parallel = 1 }
steps {
  command "one" { run = "echo one" }
}`)
	hosts := hostNames(3)
	f := newFleet(t, hosts...)
	e, rec := setup(t, p, f, hosts...)
	var journalled []string
	e.Journal = func(ev report.Event) error {
		if ev.Type == report.HostFinish {
			return errors.New("journal /state/runs/x/journal.jsonl: write: no space left on device")
		}
		journalled = append(journalled, ev.Type)
		return nil
	}
	rep := mustRun(t, e)
	if rep.Status != report.Halted || report.ExitCode(rep.Status) != 3 || !strings.Contains(rep.Error, "journal.jsonl: write: no space left") {
		t.Fatalf("status %s, error %q", rep.Status, rep.Error)
	}
	if len(f.journal.grep("h2: ")) != 0 {
		t.Errorf("a host started after the journal failed: %q", f.journal.all())
	}
	if slices.Contains(journalled, report.RunFinish) {
		t.Errorf("events were offered to the journal after it failed: %v", journalled)
	}
	if rec.index(func(ev report.Event) bool { return ev.Type == report.RunFinish }) < 0 {
		t.Errorf("the event printer missed run_finish")
	}
}

// A gate that failed halts the run; resumed, the batch's hosts (finished)
// are not run again, the gate is checked again and, passing, the rollout
// goes on.
func TestResumeRechecksFailedGate(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "healthy")
	p := loadPlaybook(t, fmt.Sprintf(`playbook "g" {}
canary {
  hosts = 1
  gate {
    timeout = "5s"
    command "lb" { run = "test -e %s" }
  }
}
remaining {}
steps {
  command "one" { run = "echo one" }
}`, flag))
	hosts := hostNames(3)
	dir := t.TempDir()
	f := newFleet(t, hosts...)
	e, _ := setup(t, p, f, hosts...)
	j := journalled(t, e, dir)
	if rep := mustRun(t, e); rep.Status != report.Halted || !strings.Contains(rep.Error, "gate failed") {
		t.Fatalf("attempt 1: %s %s", rep.Status, rep.Error)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f2 := newFleet(t, hosts...)
	e2, rec := setup(t, p, f2, hosts...)
	e2.Resume = replay(t, j)
	rep := mustRun(t, e2)
	if rep.Status != report.Succeeded {
		t.Fatalf("attempt 2: %s %s", rep.Status, rep.Error)
	}
	if len(f2.journal.grep("h1: ")) != 0 || len(f2.journal.grep("h2: ")) != 1 || len(f2.journal.grep("h3: ")) != 1 {
		t.Errorf("attempt 2 ran %q, want h2 and h3 only", f2.journal.all())
	}
	if rec.index(func(ev report.Event) bool { return ev.Type == report.GateFinish && ev.Status == report.Passed }) < 0 {
		t.Errorf("the failed gate was not checked again")
	}
	if g := rep.Stages[0].Gate; g == nil || g.Status != report.Passed || len(rep.Stages[0].Batches) != 1 {
		t.Errorf("canary gate %+v, batches %d", g, len(rep.Stages[0].Batches))
	}
}
