package stages

// The rollout engine: it walks a Plan stage by stage, batch by batch, runs each
// host's before actions, steps, health checks and after actions over one
// connection, checks the stage's gate after every batch, enforces the failure
// budgets and rolls failed hosts back. Everything it does is reported as
// report.Events and summed up in a report.Report.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jn "github.com/drover-sh/drover/journal" // named: the tests have a type journal
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/report"
	"github.com/drover-sh/drover/transport"
)

// Connector hands out one connection per host. The engine asks once per host
// and stage and reuses the Runner for every step, check and rollback of that
// host; it never closes it (the Connector, e.g. a transport.Pool, owns it).
type Connector interface {
	Connect(ctx context.Context, host string) (transport.Runner, error)
}

// ConnectorFunc adapts a function to Connector.
type ConnectorFunc func(ctx context.Context, host string) (transport.Runner, error)

// Connect calls f.
func (f ConnectorFunc) Connect(ctx context.Context, host string) (transport.Runner, error) {
	return f(ctx, host)
}

// Engine runs one rollout. Playbook, Plan, Targets and Conn are required; the
// rest have working zero values.
type Engine struct {
	Playbook *playbook.Playbook
	Plan     *Plan
	Targets  map[string]Target // by host name: host data and facts for expressions
	Conn     Connector
	Forks    int // caps hosts at once on top of the plan's parallelism; 0: the plan's

	NoRollback  bool          // never run the playbook's rollback block
	Yes         bool          // confirm gates pass without asking
	StepTimeout time.Duration // steps without their own timeout; 0: none
	Become      *transport.Become

	// Events receives every transition, already redacted, one at a time (calls
	// never overlap), in the order they happened.
	Events  func(report.Event)
	Now     func() time.Time                                 // nil: time.Now
	Sleep   func(ctx context.Context, d time.Duration) error // waits, pauses, retry intervals; nil: a timer
	HTTP    *http.Client                                     // http and prometheus checks and actions; nil: a default client
	Confirm func(ctx context.Context, prompt string) (bool, error)
	Steps   StepExecutor // nil: DefaultSteps, the steps package
	RunID   string       // "" : generated from the start time
	Secrets []string     // redacted besides the playbook's sensitive variables (e.g. the become password)

	// Journal receives every event (redacted) before Events, to make it
	// durable. An error stops the rollout as a halt does: nothing new starts,
	// hosts in flight finish their current step, the run ends halted with the
	// error as its reason. Later events are not offered to it.
	Journal func(report.Event) error
	// Resume continues an earlier attempt of the same run (journal.Replay):
	// hosts that finished keep their report entries and are not run again,
	// hosts that were in flight run again from their first step, failure
	// counts carry over (a budget already spent still halts), finished
	// batches and passed gates are not repeated. RunID defaults to its run id.
	Resume *jn.State
	// Window, when set, is asked before each new batch and before each new
	// host of a remaining stage; once it says closed nothing new starts and the
	// run ends window_closed (resumable). why is the reason shown.
	Window func() (open bool, why string)
}

// Run executes the rollout. Cancelling ctx interrupts it gracefully: hosts in
// flight finish their current step and stop, nothing new starts, and the
// status is interrupted (a hard stop is the caller's business, e.g. exiting on
// a second signal). The report is never nil; the error is non-nil only when the
// engine could not start (report status not_started).
func (e *Engine) Run(ctx context.Context) (*report.Report, error) {
	r := e.newRun(ctx)
	rep := r.rep
	if err := e.validate(); err != nil {
		rep.Status, rep.Error = report.NotStarted, r.red.String(err.Error())
		rep.Started, rep.Finished = report.At(r.now()), report.At(r.now())
		return rep, err
	}
	rep.Started = report.At(r.now())
	if e.Resume != nil && !e.Resume.Started.IsZero() {
		rep.Started = e.Resume.Started // one report for the run, across attempts
	}
	r.emit(report.Event{Type: report.RunStart, Detail: rep.Playbook})
	for i := range e.Plan.Stages {
		if r.stopping() {
			break // stages not reached stay "skipped"
		}
		r.runStage(i)
	}
	rep.Status = r.runStatus()
	if rep.Status != report.Succeeded && rep.Status != report.CompletedWithFailures {
		rep.Error = r.stopReason()
	}
	rep.Finished = report.At(r.now())
	r.emit(report.Event{Type: report.RunFinish, Status: rep.Status, Detail: rep.Error})
	r.red.Report(rep)
	return rep, nil
}

func (e *Engine) validate() error {
	switch {
	case e.Playbook == nil:
		return errors.New("engine: no playbook")
	case e.Plan == nil:
		return errors.New("engine: no plan")
	case e.Conn == nil:
		return errors.New("engine: no connector")
	}
	for _, ps := range e.Plan.Stages {
		for _, h := range ps.Hosts {
			if _, ok := e.Targets[h]; !ok {
				return fmt.Errorf("engine: planned host %s is not among the targets", h)
			}
		}
	}
	ex := e.stepExecutor()
	for _, list := range [][]*playbook.Step{e.Playbook.Steps, e.Playbook.Rollback} {
		for _, s := range list {
			if err := ex.Supports(s.Kind); err != nil {
				return fmt.Errorf("step %s %q: %w", s.Kind, s.Name, err)
			}
		}
	}
	return nil
}

func (e *Engine) stepExecutor() StepExecutor {
	if e.Steps != nil {
		return e.Steps
	}
	return DefaultSteps{}
}

// run is the state of one Run.
type run struct {
	e     *Engine
	rep   *report.Report
	red   *report.Redactor
	ctx   context.Context // cancelled on interruption
	work  context.Context // never cancelled: a host's current step finishes
	now   func() time.Time
	steps StepExecutor

	emitMu sync.Mutex

	stopMu     sync.Mutex
	halted     chan struct{} // closed by halt
	haltReason string
	haltStage  int

	windowShut chan struct{} // closed when the maintenance window was found closed
	windowWhy  string
	jmu        sync.Mutex    // a leaf lock: taken under emitMu and under stopMu
	jfailed    chan struct{} // closed when the journal could not be written
	jerr       error
}

func (e *Engine) newRun(ctx context.Context) *run {
	now := e.Now
	if now == nil {
		now = time.Now
	}
	secrets := append([]string(nil), e.Secrets...)
	if e.Become != nil && len(e.Become.Password) > 0 {
		secrets = append(secrets, string(e.Become.Password))
	}
	name := ""
	if e.Playbook != nil {
		secrets = append(secrets, e.Playbook.Secrets()...)
		name = e.Playbook.Name
	}
	id := e.RunID
	if id == "" && e.Resume != nil {
		id = e.Resume.Header.RunID
	}
	if id == "" {
		id = newRunID(now())
	}
	r := &run{
		e: e, ctx: ctx, work: context.WithoutCancel(ctx), now: now, steps: e.stepExecutor(),
		red: report.NewRedactor(secrets...), halted: make(chan struct{}), haltStage: -1,
		windowShut: make(chan struct{}), jfailed: make(chan struct{}),
		rep: &report.Report{RunID: id, Playbook: name, Stages: []*report.Stage{}},
	}
	if e.Plan != nil {
		for _, ps := range e.Plan.Stages {
			st := &report.Stage{Name: ps.Name, Kind: string(ps.Kind), Status: report.Skipped,
				Batches: []*report.Batch{}, Hosts: make([]*report.Host, 0, len(ps.Hosts))}
			if ps.Gate != nil {
				st.Gate = &report.Gate{Status: report.Skipped, Checks: []report.Check{}}
			}
			for _, h := range ps.Hosts {
				st.Hosts = append(st.Hosts, &report.Host{Name: h, Status: report.HostSkipped, Steps: []report.Step{}})
			}
			r.rep.Stages = append(r.rep.Stages, st)
		}
	}
	return r
}

// NewRunID is a run id for a run starting at t: sortable by time and unique
// enough for one state directory.
func NewRunID(t time.Time) string { return newRunID(t) }

// newRunID is sortable by time and unique enough for one state directory.
func newRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (r *run) emit(ev report.Event) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if r.e.Events == nil && r.e.Journal == nil {
		return
	}
	ev.Time = report.At(r.now())
	ev.RunID = r.rep.RunID
	ev = r.red.Event(ev)
	if r.e.Journal != nil && !r.journalFailed() {
		if err := r.e.Journal(ev); err != nil {
			// Not through halt: it emits, and emitMu is held here.
			r.jmu.Lock()
			r.jerr = err
			close(r.jfailed)
			r.jmu.Unlock()
		}
	}
	if r.e.Events != nil {
		r.e.Events(ev)
	}
}

func (r *run) journalFailed() bool {
	select {
	case <-r.jfailed:
		return true
	default:
		return false
	}
}

func (r *run) windowClosed() bool {
	select {
	case <-r.windowShut:
		return true
	default:
		return false
	}
}

// windowOpen asks the maintenance window whether new work may start; the
// first "closed" is final for this attempt.
func (r *run) windowOpen() bool {
	if r.e.Window == nil {
		return true
	}
	if r.windowClosed() {
		return false
	}
	open, why := r.e.Window()
	if open {
		return true
	}
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	if !r.windowClosed() {
		r.windowWhy = why
		close(r.windowShut)
	}
	return false
}

func (r *run) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if r.e.Sleep != nil {
		return r.e.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// halt stops the rollout (budget exceeded, gate failed); the first reason wins.
func (r *run) halt(stage int, reason string) {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	select {
	case <-r.halted:
		return
	default:
	}
	r.haltReason, r.haltStage = reason, stage
	close(r.halted)
	r.emit(report.Event{Type: report.HaltRequested, Stage: r.rep.Stages[stage].Name, Detail: reason})
}

func (r *run) isHalted() bool {
	select {
	case <-r.halted:
		return true
	default:
		return false
	}
}

// stopping: no new host, step or batch may start.
func (r *run) stopping() bool {
	return r.isHalted() || r.journalFailed() || r.windowClosed() || r.ctx.Err() != nil
}

func (r *run) stopReason() string {
	r.stopMu.Lock()
	defer r.stopMu.Unlock()
	switch {
	case r.isHalted():
		return r.haltReason
	case r.journalFailed():
		r.jmu.Lock()
		defer r.jmu.Unlock()
		return r.jerr.Error()
	case r.windowClosed():
		return "the maintenance window closed: " + r.windowWhy
	case r.ctx.Err() != nil:
		return "interrupted"
	}
	return ""
}

// runStatus: a halt wins over an interruption that came after it. A journal
// that cannot be written halts the run: it must not go on unrecorded.
func (r *run) runStatus() string {
	switch {
	case r.isHalted(), r.journalFailed():
		return report.Halted
	case r.windowClosed():
		return report.WindowClosed
	case r.ctx.Err() != nil:
		return report.Interrupted
	}
	for _, st := range r.rep.Stages {
		if st.Status == report.CompletedWithFailures {
			return report.CompletedWithFailures
		}
	}
	return report.Succeeded
}

// stageRun is one stage in progress.
type stageRun struct {
	idx  int
	ps   *PlannedStage
	rep  *report.Stage
	host map[string]*report.Host

	mu       sync.Mutex
	failures int
	ok       int
}

func (r *run) runStage(i int) {
	ps := &r.e.Plan.Stages[i]
	sr := &stageRun{idx: i, ps: ps, rep: r.rep.Stages[i], host: map[string]*report.Host{}}
	var prev *jn.Stage // this stage in an earlier attempt
	if r.e.Resume != nil {
		prev = r.e.Resume.Stages[ps.Name]
	}
	for j, h := range sr.rep.Hosts {
		if done := finishedIn(prev, h.Name); done != nil {
			sr.rep.Hosts[j] = done // kept as it was, never run again
			if report.HostFailedStatus(done.Status) {
				sr.failures++
			} else {
				sr.ok++
			}
		}
		sr.host[sr.rep.Hosts[j].Name] = sr.rep.Hosts[j]
	}
	if prev != nil && prev.Gate != nil && sr.rep.Gate != nil {
		g := *prev.Gate
		sr.rep.Gate = &g
	}
	if prev.Done() {
		// Finished in an earlier attempt: its record stands, nothing to do.
		sr.rep.Status, sr.rep.Started, sr.rep.Finished = prev.Status, prev.Started, prev.Finished
		sr.rep.Batches = prevBatches(prev, ps)
		return
	}
	sr.rep.Started = report.At(r.now())
	if prev != nil && !prev.Started.IsZero() {
		sr.rep.Started = prev.Started
	}
	r.emit(report.Event{Type: report.StageStart, Stage: ps.Name, Hosts: ps.Hosts})
	if sr.failures > ps.MaxFailed {
		// The budget was spent in an earlier attempt: resuming does not refill it.
		r.halt(i, fmt.Sprintf("stage %s: %d host(s) failed, more than max_failed = %d (in an earlier attempt of this run)",
			ps.Name, sr.failures, ps.MaxFailed))
	}
	ran := false // a batch ran in this attempt: pause before the next
	for b, hosts := range ps.Batches {
		if r.stopping() {
			break
		}
		var todo []string
		for _, h := range hosts {
			if finishedIn(prev, h) == nil {
				todo = append(todo, h)
			}
		}
		var pb *report.Batch
		if prev != nil && b < len(prev.Batches) && prev.Batches[b] != nil {
			pb = prev.Batches[b]
		}
		gateDone := ps.Gate == nil || (prev != nil && prev.GatePassed[b+1])
		if len(todo) == 0 && gateDone {
			if pb != nil { // done in an earlier attempt
				sr.rep.Batches = append(sr.rep.Batches, &report.Batch{Hosts: hosts, Started: pb.Started, Finished: pb.Finished})
			}
			continue
		}
		if ran && ps.Pause > 0 {
			r.emit(report.Event{Type: report.PauseStart, Stage: ps.Name, Batch: b, DurationMS: ps.Pause.Milliseconds()})
			err := r.sleep(r.ctx, ps.Pause)
			r.emit(report.Event{Type: report.PauseFinish, Stage: ps.Name, Batch: b})
			if err != nil {
				break
			}
		}
		if !r.windowOpen() {
			break
		}
		br := &report.Batch{Hosts: hosts, Started: report.At(r.now())}
		if pb != nil {
			br.Started = pb.Started
		}
		sr.rep.Batches = append(sr.rep.Batches, br)
		ran = true
		if len(todo) > 0 {
			r.emit(report.Event{Type: report.BatchStart, Stage: ps.Name, Batch: b + 1, Hosts: todo})
			r.runBatch(sr, todo)
			br.Finished = report.At(r.now())
			r.emit(report.Event{Type: report.BatchFinish, Stage: ps.Name, Batch: b + 1})
		} else if pb != nil {
			br.Finished = pb.Finished // only its gate is left from an earlier attempt
		}
		if r.stopping() {
			break
		}
		if ps.Gate != nil && !r.runGate(sr, b) {
			break
		}
	}
	r.stopMu.Lock()
	haltedHere := r.haltStage == i
	r.stopMu.Unlock()
	switch {
	case haltedHere:
		sr.rep.Status = report.Halted
	case r.journalFailed():
		sr.rep.Status = report.Halted
	case r.windowClosed():
		sr.rep.Status = report.WindowClosed
	case r.ctx.Err() != nil:
		sr.rep.Status = report.Interrupted
	case sr.failures > 0:
		sr.rep.Status = report.CompletedWithFailures
	default:
		sr.rep.Status = report.Succeeded
	}
	for _, h := range sr.rep.Hosts {
		if h.Status == report.HostSkipped && h.Started.IsZero() {
			h.Error = "not started: " + r.stopReason()
		}
	}
	sr.rep.Finished = report.At(r.now())
	r.emit(report.Event{Type: report.StageFinish, Stage: ps.Name, Status: sr.rep.Status})
}

// finishedIn is host's report entry when it finished in prev, else nil.
func finishedIn(prev *jn.Stage, host string) *report.Host {
	if prev == nil {
		return nil
	}
	return prev.Hosts[host]
}

// prevBatches is a finished stage's batches as an earlier attempt recorded them.
func prevBatches(prev *jn.Stage, ps *PlannedStage) []*report.Batch {
	out := []*report.Batch{}
	for b, hosts := range ps.Batches {
		if b < len(prev.Batches) && prev.Batches[b] != nil {
			out = append(out, &report.Batch{Hosts: hosts, Started: prev.Batches[b].Started, Finished: prev.Batches[b].Finished})
		}
	}
	return out
}

// runBatch works through hosts with a sliding window of the stage's
// parallelism, starting hosts in order while the rollout is not stopping.
func (r *run) runBatch(sr *stageRun, hosts []string) {
	par := sr.ps.Parallel
	if r.e.Forks > 0 && r.e.Forks < par {
		par = r.e.Forks
	}
	par = max(par, 1)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for _, name := range hosts {
		acquired := false
		select {
		case sem <- struct{}{}:
			acquired = true
		case <-r.halted:
		case <-r.ctx.Done():
		}
		// A remaining stage is one long sliding window: the maintenance
		// window is asked again before each host.
		if r.stopping() || (sr.ps.Kind == playbook.KindRemaining && !r.windowOpen()) {
			if acquired {
				<-sem
			}
			break
		}
		wg.Add(1)
		go func(h *report.Host) {
			defer wg.Done()
			defer func() { <-sem }()
			if stopped := r.runHost(sr, h); !stopped {
				r.account(sr, h)
			}
		}(sr.host[name])
	}
	wg.Wait()
}

// account counts a finished host against the stage's budget. Hosts the
// rollout stopped are not counted: they did not fail by themselves.
func (r *run) account(sr *stageRun, h *report.Host) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if !report.HostFailedStatus(h.Status) {
		sr.ok++
		return
	}
	sr.failures++
	if sr.failures > sr.ps.MaxFailed {
		r.halt(sr.idx, fmt.Sprintf("stage %s: %d host(s) failed, more than max_failed = %d (last: %s: %s)",
			sr.ps.Name, sr.failures, sr.ps.MaxFailed, h.Name, h.Error))
	}
}
