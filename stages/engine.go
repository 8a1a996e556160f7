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
	r.emit(report.Event{Type: report.RunStart, Detail: rep.Playbook})
	for i := range e.Plan.Stages {
		if r.stopping() {
			break // stages not reached stay "skipped"
		}
		r.runStage(i)
	}
	rep.Status = r.runStatus()
	if rep.Status == report.Halted || rep.Status == report.Interrupted {
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
	if id == "" {
		id = newRunID(now())
	}
	r := &run{
		e: e, ctx: ctx, work: context.WithoutCancel(ctx), now: now, steps: e.stepExecutor(),
		red: report.NewRedactor(secrets...), halted: make(chan struct{}), haltStage: -1,
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

// newRunID is sortable by time and unique enough for one state directory.
func newRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (r *run) emit(ev report.Event) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	if r.e.Events == nil {
		return
	}
	ev.Time = report.At(r.now())
	ev.RunID = r.rep.RunID
	r.e.Events(r.red.Event(ev))
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
func (r *run) stopping() bool { return r.isHalted() || r.ctx.Err() != nil }

func (r *run) stopReason() string {
	if r.isHalted() {
		r.stopMu.Lock()
		defer r.stopMu.Unlock()
		return r.haltReason
	}
	if r.ctx.Err() != nil {
		return "interrupted"
	}
	return ""
}

// runStatus: a halt wins over an interruption that came after it.
func (r *run) runStatus() string {
	switch {
	case r.isHalted():
		return report.Halted
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
	for _, h := range sr.rep.Hosts {
		sr.host[h.Name] = h
	}
	sr.rep.Started = report.At(r.now())
	r.emit(report.Event{Type: report.StageStart, Stage: ps.Name, Hosts: ps.Hosts})
	for b, hosts := range ps.Batches {
		if r.stopping() {
			break
		}
		br := &report.Batch{Hosts: hosts, Started: report.At(r.now())}
		sr.rep.Batches = append(sr.rep.Batches, br)
		r.emit(report.Event{Type: report.BatchStart, Stage: ps.Name, Batch: b + 1, Hosts: hosts})
		r.runBatch(sr, hosts)
		br.Finished = report.At(r.now())
		r.emit(report.Event{Type: report.BatchFinish, Stage: ps.Name, Batch: b + 1})
		if r.stopping() {
			break
		}
		if ps.Gate != nil && !r.runGate(sr, b) {
			break
		}
		if b < len(ps.Batches)-1 && ps.Pause > 0 {
			r.emit(report.Event{Type: report.PauseStart, Stage: ps.Name, Batch: b + 1, DurationMS: ps.Pause.Milliseconds()})
			err := r.sleep(r.ctx, ps.Pause)
			r.emit(report.Event{Type: report.PauseFinish, Stage: ps.Name, Batch: b + 1})
			if err != nil {
				break
			}
		}
	}
	r.stopMu.Lock()
	haltedHere := r.haltStage == i
	r.stopMu.Unlock()
	switch {
	case haltedHere:
		sr.rep.Status = report.Halted
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
		if r.stopping() {
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
