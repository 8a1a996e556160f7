// Package journal keeps a run's journal: an append-only JSON-lines file in the
// run's state directory with a header (what was run, the plan) and every
// report.Event as it happens, each record fsync'd, so a crash, SIGKILL or power
// loss loses nothing. Replay turns a journal back into the State --resume
// continues from. It imports only report: records are the engine's events,
// already redacted, so the journal never holds a secret.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/drover-sh/drover/report"
)

// FileName is the journal's name inside a run directory.
const FileName = "journal.jsonl"

// HeaderType is the Type of the header record, the first line of a journal.
const HeaderType = "header"

// StoppedPrefix starts the error of a host the rollout stopped between two of
// its steps (interrupted, halted, window closed): such a host did not finish
// and --resume runs it again from its first step.
const StoppedPrefix = "stopped: "

// Header says what the run is, so --resume can find the newest run of a
// playbook and refuse one whose plan no longer matches.
type Header struct {
	RunID           string      `json:"run_id"`
	Playbook        string      `json:"playbook"`
	PlaybookFile    string      `json:"playbook_file"`    // absolute path
	PlaybookSHA256  string      `json:"playbook_sha256"`  // of the playbook's source
	VarsFingerprint string      `json:"vars_fingerprint"` // sensitive values left out
	Plan            []PlanStage `json:"plan"`
	Created         time.Time   `json:"created"` // when the run was first started: "--resume last" is the newest
}

// PlanStage is one planned stage with its batches' hosts.
type PlanStage struct {
	Name    string     `json:"name"`
	Kind    string     `json:"kind"`
	Batches [][]string `json:"batches"`
}

// Record is one journal line: the header, or an event.
type Record struct {
	report.Event
	Header *Header `json:"header,omitempty"`
}

// Journal appends records to one run's journal. Safe for concurrent use.
type Journal struct {
	path string

	mu  sync.Mutex
	f   *os.File
	err error // the first write error; every later Append returns it
}

// Create makes dir (0700) and a new journal in it (0600) starting with h. It
// fails if the journal exists: a run id is used once.
func Create(dir string, h Header) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{path: path, f: f}
	if err := j.append(Record{Event: report.Event{Type: HeaderType, RunID: h.RunID}, Header: &h}); err != nil {
		f.Close()
		return nil, err
	}
	// The new directory entry is durable only once the directory is synced.
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return j, nil
}

// Open reopens an existing journal to append to it (a resumed run). A torn last
// line, left by a crash in the middle of a write, is cut off first so the next
// record starts on a line of its own.
func Open(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if keep := int64(bytes.LastIndexByte(data, '\n') + 1); keep < int64(len(data)) {
		if err := f.Truncate(keep); err != nil {
			f.Close()
			return nil, fmt.Errorf("journal %s: cutting a torn last line: %w", path, err)
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{path: path, f: f}, nil
}

// Path is the journal file.
func (j *Journal) Path() string { return j.path }

// Append writes ev as one line and fsyncs it. After a failure (disk full, I/O
// error) the journal is unusable: this and every later call return an error
// naming the file and the cause.
func (j *Journal) Append(ev report.Event) error {
	return j.append(Record{Event: ev})
}

func (j *Journal) append(rec Record) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if j.f == nil {
		return fmt.Errorf("journal %s: closed", j.path)
	}
	if _, err := j.f.Write(line); err != nil {
		j.err = fmt.Errorf("journal %s: write: %w", j.path, err)
		return j.err
	}
	if err := j.f.Sync(); err != nil {
		j.err = fmt.Errorf("journal %s: fsync: %w", j.path, err)
		return j.err
	}
	return nil
}

// Close closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadHeader reads only the header of the journal at path (cheap, for finding
// the newest run of a playbook).
func ReadHeader(path string) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("journal %s: no complete header: %w", path, err)
	}
	var rec Record
	if err := json.Unmarshal(line, &rec); err != nil || rec.Type != HeaderType || rec.Header == nil {
		return nil, fmt.Errorf("journal %s: the first line is not a header", path)
	}
	return rec.Header, nil
}

// State is what a journal says happened, over every attempt of the run.
type State struct {
	Header   Header
	Attempts int         // run_start records: 1 + the times it was resumed
	Status   string      // the last run_finish's status; "" when the last attempt never finished (crash, SIGKILL)
	Error    string      // the last run_finish's detail
	Started  report.Time // the first attempt's start
	Stages   map[string]*Stage
	// InFlight are the hosts that started and did not finish (stopped between
	// steps, or the process died), in the order they started.
	InFlight []string
	Records  int // events read (the header not counted)
	Torn     bool
}

// Stage is one stage's progress.
type Stage struct {
	Name              string
	Status            string // the last stage_finish status; "" when never finished
	Started, Finished report.Time
	// Batches by number-1: when each batch first started and last finished
	// (nil: never started).
	Batches []*report.Batch
	// GatePassed: batch numbers (1-based) after which the gate passed.
	GatePassed map[int]bool
	Gate       *report.Gate // the last gate outcome; nil when never checked
	Hosts      map[string]*report.Host
	Failures   int // finished hosts that count against max_failed
	OK         int
}

// Done says whether the stage ran to its end in an earlier attempt.
func (s *Stage) Done() bool {
	return s != nil && (s.Status == report.Succeeded || s.Status == report.CompletedWithFailures)
}

// Finished is the report entry of a host that finished in stage, or nil.
func (st *State) Finished(stage, host string) *report.Host {
	if st == nil || st.Stages[stage] == nil {
		return nil
	}
	return st.Stages[stage].Hosts[host]
}

// Complete says whether the run already ended with every host done
// (succeeded or completed with failures): nothing is left to resume.
func (st *State) Complete() bool {
	return st.Status == report.Succeeded || st.Status == report.CompletedWithFailures
}

// hostFinished says whether a host_finish means the host is done for good.
// Hosts the rollout stopped (skipped, or "stopped: …") are not.
func hostFinished(ev report.Event) bool {
	if ev.Status == report.HostSkipped || ev.Status == "" {
		return false
	}
	return !(ev.Status == report.HostFailed && strings.HasPrefix(ev.Detail, StoppedPrefix))
}

// Replay reads the journal at path. A torn last line (a crash mid-write) is
// ignored and reported in State.Torn; a bad line anywhere else is an error.
func Replay(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	st := &State{Stages: map[string]*Stage{}}
	inflight := map[string]*report.Host{} // host -> started, not yet finished
	hostStage := map[string]string{}
	var order []string
	lines := bytes.Split(data, []byte("\n"))
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if i == len(lines)-1 {
			// No newline after it: the write never completed (Open cuts it off).
			st.Torn = true
			break
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("journal %s: line %d: %w", path, i+1, err)
		}
		if i == 0 {
			if rec.Type != HeaderType || rec.Header == nil {
				return nil, fmt.Errorf("journal %s: the first line is not a header", path)
			}
			st.Header = *rec.Header
			continue
		}
		st.Records++
		ev := rec.Event
		stage := func() *Stage {
			s := st.Stages[ev.Stage]
			if s == nil {
				s = &Stage{Name: ev.Stage, GatePassed: map[int]bool{}, Hosts: map[string]*report.Host{}}
				st.Stages[ev.Stage] = s
			}
			return s
		}
		switch ev.Type {
		case report.RunStart:
			st.Attempts++
			if st.Started.IsZero() {
				st.Started = ev.Time
			}
			st.Status, st.Error = "", ""
		case report.RunFinish:
			st.Status, st.Error = ev.Status, ev.Detail
		case report.StageStart:
			if s := stage(); s.Started.IsZero() {
				s.Started = ev.Time
			}
		case report.StageFinish:
			s := stage()
			s.Status, s.Finished = ev.Status, ev.Time
		case report.BatchStart:
			s := stage()
			for len(s.Batches) < ev.Batch {
				s.Batches = append(s.Batches, nil)
			}
			if ev.Batch > 0 && s.Batches[ev.Batch-1] == nil {
				s.Batches[ev.Batch-1] = &report.Batch{Started: ev.Time}
			}
		case report.BatchFinish:
			s := stage()
			if ev.Batch > 0 && ev.Batch <= len(s.Batches) && s.Batches[ev.Batch-1] != nil {
				s.Batches[ev.Batch-1].Finished = ev.Time
			}
		case report.GateFinish:
			s := stage()
			s.Gate = &report.Gate{Status: ev.Status, Checks: append([]report.Check{}, ev.Checks...)}
			if ev.Status == report.Passed {
				s.GatePassed[ev.Batch] = true
			}
		case report.HostStart:
			// A host started again (resumed) begins a fresh record.
			inflight[ev.Host] = &report.Host{Name: ev.Host, Started: ev.Time, Steps: []report.Step{}}
			hostStage[ev.Host] = ev.Stage
			order = append(order, ev.Host)
		case report.StepFinish:
			if h := inflight[ev.Host]; h != nil {
				name := ev.Step
				if ev.Phase != "" && ev.Phase != report.PhaseSteps {
					name = ev.Phase + ": " + ev.Step
				}
				h.Steps = append(h.Steps, report.Step{Name: name, Status: ev.Status, Detail: ev.Detail, DurationMS: ev.DurationMS})
			}
		case report.HostFinish:
			h := inflight[ev.Host]
			delete(inflight, ev.Host)
			if h == nil || !hostFinished(ev) {
				continue
			}
			h.Status, h.Error, h.Finished = ev.Status, ev.Detail, ev.Time
			s := stage()
			s.Hosts[ev.Host] = h
			if report.HostFailedStatus(h.Status) {
				s.Failures++
			} else {
				s.OK++
			}
		}
	}
	if st.Header.RunID == "" {
		return nil, fmt.Errorf("journal %s: %w", path, errors.New("empty or without a header"))
	}
	seen := map[string]bool{}
	for _, h := range order {
		if seen[h] || st.Finished(hostStage[h], h) != nil {
			continue
		}
		seen[h] = true
		st.InFlight = append(st.InFlight, h)
	}
	return st, nil
}
