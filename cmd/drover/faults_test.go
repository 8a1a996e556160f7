package main

// Fault injection through the whole `drover run` code path: the real pool,
// dialer and engine against in-process SSH servers that misbehave on purpose
// (internal/sshtest). Every case checks the host's status and error in the
// report, the exit code, that the run ended within its timeouts, and that no
// goroutine outlived it.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/internal/sshtest"
	"github.com/drover-sh/drover/report"
)

const faultTrigger = "@fault@"

// faultRun is one `drover run` against a healthy host "good" and a broken host "bad".
type faultRun struct {
	fault       sshtest.Fault
	floodBytes  int64
	maxFailed   int
	stepTimeout time.Duration
	connTimeout time.Duration
	gatherFacts bool // gather bad's facts; false: from the cache, so the engine makes the first connection
}

type faultOutcome struct {
	code    int
	elapsed time.Duration
	rep     *report.Report
	stdout  string
	stderr  string
	bad     *sshtest.Server
	peak    uint64 // highest HeapInuse sampled during the run
}

func (fr faultRun) run(t *testing.T) faultOutcome {
	t.Helper()
	fleet := sshtest.NewFleet(t)
	fleet.Add("good", sshtest.Options{Trigger: faultTrigger})
	bad := fleet.Add("bad", sshtest.Options{Fault: fr.fault, Trigger: faultTrigger, FloodBytes: fr.floodBytes})
	cfg := fleet.SSHConfig()

	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cached := []string{"good"} // the healthy host's facts are not what is tested
	if !fr.gatherFacts {
		cached = append(cached, "bad")
	}
	cache := &facts.Cache{Dir: factCacheDir(state), TTL: time.Hour}
	for _, h := range cached {
		if err := cache.Store(h, facts.Facts{"os": map[string]any{"family": "Debian"}}); err != nil {
			t.Fatal(err)
		}
	}
	pb := filepath.Join(dir, "faults.hcl")
	text := fmt.Sprintf(`playbook "faults" {}
settings { step_timeout = %q }
remaining { max_failed = %d }
steps {
  command "probe" { run = "echo %s" }
}
`, fr.stepTimeout, fr.maxFailed, faultTrigger)
	if err := os.WriteFile(pb, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	repFile := filepath.Join(dir, "report.json")

	h := newHarness(nil)
	h.environ["DROVER_STATE_DIR"] = state
	e := h.env()
	e.newConnector = newPoolConnector

	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	if fr.fault == sshtest.Flood {
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stopSampling:
					return
				case <-tick.C:
				}
			}
		}()
	}

	start := time.Now()
	code := run([]string{"drover", "run", pb, "-i", "good,bad", "--ssh-config", cfg,
		"--connect-timeout", fr.connTimeout.String(), "--report", repFile, "--yes"}, e, h.sigs, func() {})
	elapsed := time.Since(start)
	close(stopSampling)
	sampler.Wait()

	out := faultOutcome{code: code, elapsed: elapsed, stdout: h.stdout.String(), stderr: h.stderrString(), bad: bad, peak: peak.Load()}
	if data, err := os.ReadFile(repFile); err == nil {
		out.rep = &report.Report{}
		if err := json.Unmarshal(data, out.rep); err != nil {
			t.Fatalf("report: %v\n%s", err, data)
		}
	}
	return out
}

// host is the named host's entry in the report, or nil.
func (o faultOutcome) host(name string) *report.Host {
	if o.rep == nil {
		return nil
	}
	for _, st := range o.rep.Stages {
		for _, h := range st.Hosts {
			if h.Name == name {
				return h
			}
		}
	}
	return nil
}

// settleGoroutines waits (polling, bounded) for the goroutine count to come back
// to at most want, and fails with a dump of the survivors otherwise.
func settleGoroutines(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines still running, want at most %d:\n%s", n, want, buf)
		}
		runtime.Gosched()
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation: the loop re-checks
	}
}

func TestRunFaults(t *testing.T) {
	const (
		connect = 2 * time.Second
		step    = 1 * time.Second
	)
	cases := []struct {
		name string
		fr   faultRun
		// budget is the configured timeout the case is bound by; the run must end
		// within budget*1.5+3s (generous: CI machines are loaded) and, when
		// atLeast, not before budget (proof that the timeout ended it).
		budget     time.Duration
		atLeast    bool
		wantStatus string
		wantErr    []string
		wantCode   int
	}{
		{name: "connection refused", fr: faultRun{fault: sshtest.Refuse, maxFailed: 1},
			budget: connect, wantStatus: report.HostUnreachable, wantErr: []string{"connection refused"}, wantCode: 1},
		{name: "connection refused halts with max_failed 0", fr: faultRun{fault: sshtest.Refuse, maxFailed: 0},
			budget: connect, wantStatus: report.HostUnreachable, wantErr: []string{"connection refused"}, wantCode: 3},
		{name: "TCP accepted, no SSH banner", fr: faultRun{fault: sshtest.Silent, maxFailed: 1},
			budget: connect, atLeast: true, wantStatus: report.HostUnreachable, wantErr: []string{"no SSH handshake within 2s"}, wantCode: 1},
		{name: "handshake stalls after the banner", fr: faultRun{fault: sshtest.StallHandshake, maxFailed: 1},
			budget: connect, atLeast: true, wantStatus: report.HostUnreachable, wantErr: []string{"no SSH handshake within 2s"}, wantCode: 1},
		{name: "authentication refused", fr: faultRun{fault: sshtest.AuthRefused, maxFailed: 1},
			budget: connect, wantStatus: report.HostFailed, wantErr: []string{"authentication failed", `as "drover-test"`}, wantCode: 1},
		{name: "host key changed", fr: faultRun{fault: sshtest.WrongHostKey, maxFailed: 1},
			budget: connect, wantStatus: report.HostFailed, wantErr: []string{"REMOTE HOST IDENTIFICATION HAS CHANGED"}, wantCode: 1},
		{name: "connection reset mid-step", fr: faultRun{fault: sshtest.ResetMidCommand, maxFailed: 1},
			budget: step, wantStatus: report.HostFailed, wantErr: []string{"command probe", "connection lost"}, wantCode: 1},
		{name: "command hangs past step_timeout", fr: faultRun{fault: sshtest.HangCommand, maxFailed: 1},
			budget: step, atLeast: true, wantStatus: report.HostFailed, wantErr: []string{"command probe", "after 1s: command timed out"}, wantCode: 1},
		{name: "command hangs, max_failed 0 halts", fr: faultRun{fault: sshtest.HangCommand, maxFailed: 0},
			budget: step, atLeast: true, wantStatus: report.HostFailed, wantErr: []string{"after 1s: command timed out"}, wantCode: 3},
		{name: "unreachable while gathering facts is left out", fr: faultRun{fault: sshtest.Silent, maxFailed: 0, gatherFacts: true},
			budget: connect, atLeast: true, wantStatus: "", wantErr: []string{"no SSH handshake within 2s"}, wantCode: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.fr.connTimeout, tc.fr.stepTimeout = connect, step
			base := runtime.NumGoroutine()
			o := tc.fr.run(t)
			if bad := o.host("bad"); bad != nil {
				t.Logf("%s: exit %d in %s; bad %s: %s", tc.name, o.code, o.elapsed.Round(time.Millisecond), bad.Status, bad.Error)
			} else {
				t.Logf("%s: exit %d in %s", tc.name, o.code, o.elapsed.Round(time.Millisecond))
			}
			if o.code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", o.code, tc.wantCode, o.stdout, o.stderr)
			}
			limit := tc.budget*3/2 + 3*time.Second
			if o.elapsed > limit || (tc.atLeast && o.elapsed < tc.budget) {
				t.Errorf("took %s; the configured timeout is %s (limit %s)", o.elapsed, tc.budget, limit)
			}
			if o.rep == nil {
				t.Fatalf("no report written\nstderr: %s", o.stderr)
			}
			bad := o.host("bad")
			if tc.wantStatus == "" {
				// Facts could not be gathered: the host never entered the rollout, and
				// the run says so.
				if bad != nil {
					t.Errorf("bad is in the report as %q; want it left out", bad.Status)
				}
				for _, w := range append([]string{"bad: unreachable, left out of the rollout"}, tc.wantErr...) {
					if !strings.Contains(o.stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, o.stderr)
					}
				}
			} else {
				if bad == nil {
					t.Fatalf("bad missing from the report: %+v", o.rep)
				}
				if bad.Status != tc.wantStatus {
					t.Errorf("bad: %q (%s), want %q", bad.Status, bad.Error, tc.wantStatus)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(bad.Error, w) {
						t.Errorf("bad's error %q lacks %q", bad.Error, w)
					}
				}
			}
			if good := o.host("good"); tc.wantCode == 1 && (good == nil || good.Status != report.HostChanged) {
				t.Errorf("good: %+v, want changed: one broken host must not hurt another", good)
			}
			if tc.wantCode == 3 && o.rep.Status != report.Halted {
				t.Errorf("run status %q, want halted", o.rep.Status)
			}
			// The servers stay up until the test ends; what the run started must be gone.
			settleGoroutines(t, base+2)
		})
	}
}

// A host printing 100 MB: the step completes, the capture is capped, and the
// controller's heap stays far below the output's size.
func TestRunFaultFloodOutput(t *testing.T) {
	const (
		flood   = 100 << 20
		maxHeap = 64 << 20
	)
	base := runtime.NumGoroutine()
	o := faultRun{fault: sshtest.Flood, floodBytes: flood, maxFailed: 0, stepTimeout: 2 * time.Minute, connTimeout: 5 * time.Second}.run(t)
	t.Logf("100 MB flood: exit %d in %s, peak HeapInuse %.1f MiB", o.code, o.elapsed.Round(time.Millisecond), float64(o.peak)/(1<<20))
	if o.code != 0 {
		t.Fatalf("exit %d, want 0\nstderr: %s", o.code, o.stderr)
	}
	bad := o.host("bad")
	if bad == nil || bad.Status != report.HostChanged {
		t.Fatalf("flooding host: %+v, want changed", bad)
	}
	if o.bad.Faulted() != 1 {
		t.Errorf("the flood ran %d times, want 1", o.bad.Faulted())
	}
	if o.peak == 0 || o.peak > maxHeap {
		t.Errorf("peak HeapInuse %d bytes, want (0, %d] while %d bytes streamed through", o.peak, maxHeap, flood)
	}
	settleGoroutines(t, base+2)
}
