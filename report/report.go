// Package report holds the record of a rollout: the JSON run report of SPEC §5,
// the events a run emits as it goes (what progress output, --output json and the
// journal are built from), the mapping of a run's status to the exit code, and
// the redaction of secrets from both.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Run statuses (SPEC §5). NotStarted is drover's own: the engine refused to
// start (bad input), nothing ran.
const (
	Succeeded             = "succeeded"
	CompletedWithFailures = "completed_with_failures"
	Halted                = "halted"
	Interrupted           = "interrupted"
	WindowClosed          = "window_closed"
	NotStarted            = "not_started"
)

// Stage statuses are the run statuses plus Skipped (never reached).

// Host statuses (SPEC §5).
const (
	HostOK          = "ok"
	HostChanged     = "changed"
	HostFailed      = "failed"
	HostUnreachable = "unreachable"
	HostSkipped     = "skipped" // never started: the rollout halted or was interrupted first
	HostRolledBack  = "rolled_back"
)

// Gate and check statuses.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped"
)

// ExitCode maps a run status to the process exit code of SPEC §2.
func ExitCode(status string) int {
	switch status {
	case Succeeded:
		return 0
	case CompletedWithFailures:
		return 1
	case Halted, WindowClosed:
		// window_closed: the rollout started and stopped short, resumable with
		// --resume; 5 is kept for runs that did not start at all.
		return 3
	case Interrupted:
		return 4
	}
	return 2 // not_started or unknown: nothing (trustworthy) ran
}

// HostFailedStatus says whether a host status counts against a failure budget.
func HostFailedStatus(s string) bool {
	return s == HostFailed || s == HostUnreachable || s == HostRolledBack
}

// Report is one run (SPEC §5).
type Report struct {
	RunID    string   `json:"run_id"`
	Playbook string   `json:"playbook"`
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"` // why the run halted, was interrupted or did not start
	Started  Time     `json:"started"`
	Finished Time     `json:"finished"`
	Stages   []*Stage `json:"stages"`
}

// Stage is one stage of the run. Gate is nil when the stage has no gate; it
// holds the last evaluation (one runs after every batch).
type Stage struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Status   string   `json:"status"`
	Started  Time     `json:"started"`
	Finished Time     `json:"finished"`
	Batches  []*Batch `json:"batches"`
	Gate     *Gate    `json:"gate,omitempty"`
	Hosts    []*Host  `json:"hosts"`
}

// Batch is a set of hosts worked on before the stage's gate is checked.
type Batch struct {
	Hosts    []string `json:"hosts"`
	Started  Time     `json:"started"`
	Finished Time     `json:"finished"`
}

// Gate is the outcome of a stage's gate.
type Gate struct {
	Status string  `json:"status"`
	Checks []Check `json:"checks"`
}

// Check is one gate check's last result.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// Host is one host's work in a stage. Steps lists before actions, steps,
// health checks, after actions and rollback steps in the order they ran;
// all but the steps themselves carry their phase as a name prefix.
type Host struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Started  Time   `json:"started"`
	Finished Time   `json:"finished"`
	Error    string `json:"error,omitempty"`
	Steps    []Step `json:"steps"`
}

// Step is one step, action or check on a host.
type Step struct {
	Name       string `json:"name"`
	Status     string `json:"status"`
	Detail     string `json:"detail"`
	DurationMS int64  `json:"duration_ms"`
}

// JSON renders the report as indented JSON (without HTML escaping, so
// "1.0 -> 2.0" reads as written), ending with a newline: what --report FILE
// and the run directory hold.
func (r *Report) JSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return b.Bytes(), nil
}

// Time is a timestamp rendered as RFC 3339 in UTC with milliseconds, or null
// when it never happened (a stage that was not reached).
type Time struct{ time.Time }

// TimeFormat is RFC 3339 with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// At wraps t.
func At(t time.Time) Time { return Time{t} }

// MarshalJSON renders null for the zero time.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(TimeFormat))
}

// UnmarshalJSON reads what MarshalJSON wrote (any RFC 3339 time, or null).
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time: %w", err)
	}
	t.Time = v
	return nil
}

// Event types, one per transition. Each *Start has a matching *Finish.
const (
	RunStart      = "run_start"
	RunFinish     = "run_finish"
	StageStart    = "stage_start"
	StageFinish   = "stage_finish"
	BatchStart    = "batch_start"
	BatchFinish   = "batch_finish"
	HostStart     = "host_start"
	HostFinish    = "host_finish"
	StepStart     = "step_start"
	StepFinish    = "step_finish"
	GateStart     = "gate_start"
	GateCheck     = "gate_check" // one round of a gate's checks, with their results
	GateFinish    = "gate_finish"
	PauseStart    = "pause_start"
	PauseFinish   = "pause_finish"
	HaltRequested = "halt" // a budget or a gate stopped the rollout; Detail says why
)

// Step phases, as Event.Phase and report step name prefixes.
const (
	PhaseBefore   = "before"
	PhaseSteps    = "steps"
	PhaseHealth   = "health"
	PhaseAfter    = "after"
	PhaseRollback = "rollback"
)

// Event is one transition of a run. Fields that do not apply are empty. Batch
// is 1-based (0: not about a batch).
type Event struct {
	Time       Time     `json:"time"`
	Type       string   `json:"type"`
	RunID      string   `json:"run_id,omitempty"`
	Stage      string   `json:"stage,omitempty"`
	Batch      int      `json:"batch,omitempty"`
	Host       string   `json:"host,omitempty"`
	Phase      string   `json:"phase,omitempty"`
	Step       string   `json:"step,omitempty"`
	Status     string   `json:"status,omitempty"`
	Detail     string   `json:"detail,omitempty"`
	Hosts      []string `json:"hosts,omitempty"`  // batch_start
	Checks     []Check  `json:"checks,omitempty"` // gate_check, gate_finish
	DurationMS int64    `json:"duration_ms,omitempty"`
}

// Redacted is what a secret is replaced with.
const Redacted = "[redacted]"

// Redactor replaces secrets in text. The zero value redacts nothing.
type Redactor struct{ secrets []string }

// NewRedactor redacts each non-empty secret, longest first so a secret that
// contains another is replaced whole.
func NewRedactor(secrets ...string) *Redactor {
	var s []string
	seen := map[string]bool{}
	for _, x := range secrets {
		if x != "" && !seen[x] {
			seen[x] = true
			s = append(s, x)
		}
	}
	sort.SliceStable(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return &Redactor{secrets: s}
}

// String redacts s.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	for _, x := range r.secrets {
		if strings.Contains(s, x) {
			s = strings.ReplaceAll(s, x, Redacted)
		}
	}
	return s
}

// Event returns a copy of ev with every string redacted.
func (r *Redactor) Event(ev Event) Event {
	ev.RunID, ev.Stage, ev.Host = r.String(ev.RunID), r.String(ev.Stage), r.String(ev.Host)
	ev.Phase, ev.Step, ev.Status, ev.Detail = r.String(ev.Phase), r.String(ev.Step), r.String(ev.Status), r.String(ev.Detail)
	ev.Hosts = r.strings(ev.Hosts)
	ev.Checks = r.checks(ev.Checks)
	return ev
}

// Report redacts every string of rep in place.
func (r *Redactor) Report(rep *Report) {
	rep.RunID, rep.Playbook, rep.Status, rep.Error = r.String(rep.RunID), r.String(rep.Playbook), r.String(rep.Status), r.String(rep.Error)
	for _, s := range rep.Stages {
		s.Name, s.Kind, s.Status = r.String(s.Name), r.String(s.Kind), r.String(s.Status)
		for _, b := range s.Batches {
			b.Hosts = r.strings(b.Hosts)
		}
		if s.Gate != nil {
			s.Gate.Status = r.String(s.Gate.Status)
			s.Gate.Checks = r.checks(s.Gate.Checks)
		}
		for _, h := range s.Hosts {
			h.Name, h.Status, h.Error = r.String(h.Name), r.String(h.Status), r.String(h.Error)
			for i := range h.Steps {
				st := &h.Steps[i]
				st.Name, st.Status, st.Detail = r.String(st.Name), r.String(st.Status), r.String(st.Detail)
			}
		}
	}
}

func (r *Redactor) strings(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = r.String(s)
	}
	return out
}

func (r *Redactor) checks(in []Check) []Check {
	if in == nil {
		return nil
	}
	out := make([]Check, len(in))
	for i, c := range in {
		out[i] = Check{Name: r.String(c.Name), Status: r.String(c.Status), Detail: r.String(c.Detail)}
	}
	return out
}
