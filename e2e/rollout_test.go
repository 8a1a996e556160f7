package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/report"
)

// rolloutTimeout bounds one drover run: apt on 20 hosts of a loaded 2-core
// machine takes minutes, far more than drover's own work.
const rolloutTimeout = 15 * time.Minute

// rolloutDrover is droverHome with a longer limit (a rollout, not a command).
func rolloutDrover(t *testing.T, home string, args ...string) result {
	t.Helper()
	return droverWithin(t, rolloutTimeout, home, args...)
}

// rolloutOnAll runs sh -c script in every lab host, a few at a time, and
// returns each host's output.
func rolloutOnAll(t *testing.T, script string) map[string]string {
	t.Helper()
	var mu sync.Mutex
	out := map[string]string{}
	var errs []error
	sem := make(chan struct{}, 5)
	var wg sync.WaitGroup
	for _, h := range shared.lab.Hosts {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b, err := shared.lab.Exec(ctx, name, "sh", "-c", script)
			mu.Lock()
			defer mu.Unlock()
			out[name] = strings.TrimSpace(string(b))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w\n%s", name, err, b))
			}
		}(h.Name)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%q: %v", script, err)
	}
	return out
}

// rolloutVersions is each host's demo-web version ("" when absent).
func rolloutVersions(t *testing.T) map[string]string {
	t.Helper()
	return rolloutOnAll(t, "dpkg-query -W -f '${db:Status-Abbrev}${Version}' demo-web 2>/dev/null | sed -n 's/^ii *//p'; true")
}

func rolloutHealth(t *testing.T, addr string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + ":8080/health")
	if err != nil {
		t.Errorf("GET %s:8080/health: %v", addr, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("reading %s:8080/health: %v", addr, err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func rolloutReport(t *testing.T, path string) *report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report %s: %v\n%s", path, err, b)
	}
	return &rep
}

// TestRollout is the demo rollout on the shared lab: the fleet on demo-web 1.0;
// 3.0 (health answers 500) halts at the canary, which is rolled back; 2.0 goes
// through stage by stage, batch by batch, each gate passing before the next
// batch; and the run did exactly what `drover plan` showed.
func TestRollout(t *testing.T) {
	t.Cleanup(func() { rolloutOnAll(t, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q demo-web") })
	began := time.Now()
	rolloutOnAll(t, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades demo-web=1.0")
	t.Logf("demo-web 1.0 installed on %d hosts in %s", len(shared.lab.Hosts), time.Since(began).Round(time.Millisecond))
	for h, v := range rolloutVersions(t) {
		if v != "1.0" {
			t.Fatalf("setup: %s has demo-web %q, want 1.0", h, v)
		}
	}

	home, reports := t.TempDir(), t.TempDir()   // the parent's: subtests read each other's reports
	gate := shared.lab.Hosts[0].Address + ":22" // the playbook's "load balancer"
	args := func(version string, extra ...string) []string {
		a := append([]string{"run", "../examples/demo-web-canary.hcl", "--var", "version=" + version, "--var", "gate_address=" + gate}, labArgs()...)
		return append(a, extra...)
	}

	t.Run("bad version halts at the canary and rolls it back", func(t *testing.T) {
		rep3 := filepath.Join(reports, "report-3.0.json")
		r := rolloutDrover(t, home, args("3.0", "--report", rep3)...)
		t.Logf("3.0 run: exit %d in %s", r.code, r.elapsed.Round(time.Millisecond))
		if r.code != 3 {
			t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		rep := rolloutReport(t, rep3)
		if rep.Status != report.Halted {
			t.Errorf("status %s, want halted", rep.Status)
		}
		canary := rep.Stages[0]
		if canary.Kind != "canary" || len(canary.Hosts) != 1 {
			t.Fatalf("first stage %+v, want a one-host canary", canary)
		}
		ch := canary.Hosts[0]
		if ch.Status != report.HostRolledBack || !strings.Contains(ch.Error, "500") {
			t.Errorf("canary %s: %s (%s), want rolled_back after health 500", ch.Name, ch.Status, ch.Error)
		}
		for _, st := range rep.Stages[1:] {
			if len(st.Batches) != 0 {
				t.Errorf("stage %s started batches %v after the halt", st.Name, st.Batches)
			}
			for _, h := range st.Hosts {
				if h.Status != report.HostSkipped || len(h.Steps) != 0 {
					t.Errorf("%s touched after the halt: %s %+v", h.Name, h.Status, h.Steps)
				}
			}
		}
		for h, v := range rolloutVersions(t) {
			if v != "1.0" {
				t.Errorf("%s has demo-web %q, want 1.0 (canary rolled back, others untouched)", h, v)
			}
		}
		if code, body := rolloutHealth(t, shared.lab.Hosts[0].Address); code != 200 || body != "ok 1.0" {
			t.Errorf("canary health after rollback: %d %q, want 200 ok 1.0", code, body)
		}
	})
	if t.Failed() {
		return
	}

	var rep2 string
	t.Run("good version goes through stage by stage", func(t *testing.T) {
		rep2 = filepath.Join(reports, "report-2.0.json")
		r := rolloutDrover(t, home, args("2.0", "--report", rep2, "--output", "json")...)
		t.Logf("2.0 run on %d hosts: exit %d in %s", len(shared.lab.Hosts), r.code, r.elapsed.Round(time.Millisecond))
		if r.code != 0 {
			t.Fatalf("exit %d, want 0\nstderr: %s", r.code, r.stderr)
		}
		rep := rolloutReport(t, rep2)
		if rep.Status != report.Succeeded {
			t.Errorf("status %s", rep.Status)
		}
		for h, v := range rolloutVersions(t) {
			if v != "2.0" {
				t.Errorf("%s has demo-web %q, want 2.0", h, v)
			}
		}
		for _, h := range shared.lab.Hosts {
			if code, body := rolloutHealth(t, h.Address); code != 200 || body != "ok 2.0" {
				t.Errorf("%s health: %d %q, want 200 ok 2.0", h.Name, code, body)
			}
		}
		// Order, from the report: a stage's first batch starts after the previous
		// stage finished; a batch starts after the previous batch finished.
		var prevFinished time.Time
		for _, st := range rep.Stages {
			for i, b := range st.Batches {
				if i == 0 && b.Started.Before(prevFinished) {
					t.Errorf("stage %s started %s, before the previous stage finished %s", st.Name, b.Started, prevFinished)
				}
				if i > 0 && b.Started.Before(st.Batches[i-1].Finished.Time) {
					t.Errorf("stage %s batch %d started before batch %d finished", st.Name, i+1, i)
				}
			}
			if st.Gate != nil && st.Gate.Status != report.Passed {
				t.Errorf("stage %s gate %s", st.Name, st.Gate.Status)
			}
			prevFinished = st.Finished.Time
		}
		// Gates, from the events: every batch after the first starts only once
		// the gate after the previous batch passed.
		type key struct {
			stage string
			batch int
		}
		gateAt := map[key]time.Time{}
		batchStarts := 0
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var ev report.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("stdout line is not an event: %q", line)
			}
			switch ev.Type {
			case report.GateFinish:
				if ev.Status != report.Passed {
					t.Errorf("gate of %s after batch %d: %s %s", ev.Stage, ev.Batch, ev.Status, ev.Detail)
				}
				gateAt[key{ev.Stage, ev.Batch}] = ev.Time.Time
			case report.BatchStart:
				batchStarts++
				if ev.Batch == 1 {
					break
				}
				g, ok := gateAt[key{ev.Stage, ev.Batch - 1}]
				if !ok && ev.Stage != "remaining" {
					t.Errorf("stage %s batch %d started with no gate passed after batch %d", ev.Stage, ev.Batch, ev.Batch-1)
				}
				if ok && ev.Time.Before(g) {
					t.Errorf("stage %s batch %d started before its gate passed", ev.Stage, ev.Batch)
				}
			}
		}
		if batchStarts < 3 {
			t.Errorf("%d batches started, want the canary, early batches and remaining", batchStarts)
		}
		if gateAt[key{"canary", 1}].IsZero() {
			t.Errorf("no gate after the canary")
		}
	})
	if t.Failed() || rep2 == "" {
		return
	}

	t.Run("run did what plan showed", func(t *testing.T) {
		r := rolloutDrover(t, home, append([]string{"plan", "../examples/demo-web-canary.hcl", "--json", "--var", "version=2.0", "--var", "gate_address=" + gate}, labArgs()...)...)
		if r.code != 0 {
			t.Fatalf("plan exit %d\n%s", r.code, r.stderr)
		}
		doc := parsePlan(t, r)
		rep := rolloutReport(t, rep2)
		type stage struct {
			Name    string
			Kind    string
			Batches [][]string
		}
		var planned, ran []stage
		for _, st := range doc.Stages {
			planned = append(planned, stage{st.Name, st.Kind, st.Batches})
		}
		for _, st := range rep.Stages {
			s := stage{Name: st.Name, Kind: st.Kind}
			for _, b := range st.Batches {
				s.Batches = append(s.Batches, b.Hosts)
			}
			ran = append(ran, s)
		}
		if !reflect.DeepEqual(planned, ran) {
			t.Errorf("plan and run differ:\nplan %v\nrun  %v", planned, ran)
		}
		if len(planned) != 3 || len(planned[0].Batches) != 1 {
			t.Errorf("plan %v: want canary, early, remaining", planned)
		}
	})
}
