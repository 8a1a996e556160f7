package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/lab"
	"github.com/drover-sh/drover/report"
)

// streamRun runs `drover run … --output json` and hands every event to onEvent as it
// arrives (so a test can act mid-run), then returns the result.
func streamRun(t *testing.T, home string, onEvent func(report.Event), args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rolloutTimeout)
	defer cancel()
	cmd := droverCmd(ctx, home, append(args, "--output", "json")...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		var ev report.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Errorf("stdout line is not an event: %q", line)
			continue
		}
		onEvent(ev)
	}
	err = cmd.Wait()
	return withExit(t, result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}, err, args)
}

// gatesInstall installs demo-web VERSION on hosts (in parallel) and purges it again when
// the test ends.
func gatesInstall(t *testing.T, version string, hosts ...string) {
	t.Helper()
	t.Cleanup(func() { gatesOn(t, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q demo-web", hosts...) })
	gatesOn(t, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades demo-web="+version, hosts...)
}

// gatesOn runs sh -c script in each host and returns the outputs by host.
func gatesOn(t *testing.T, script string, hosts ...string) map[string]string {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]string{}
	var errs []error
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b, err := shared.lab.Exec(ctx, h, "sh", "-c", script)
			mu.Lock()
			defer mu.Unlock()
			out[h] = strings.TrimSpace(string(b))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w\n%s", h, err, b))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%q: %v", script, err)
	}
	return out
}

func gatesVersions(t *testing.T, hosts ...string) map[string]string {
	t.Helper()
	return gatesOn(t, "dpkg-query -W -f '${db:Status-Abbrev}${Version}' demo-web 2>/dev/null | sed -n 's/^ii *//p'; true", hosts...)
}

// reportHost finds host name in the report.
func reportHost(t *testing.T, rep *report.Report, name string) *report.Host {
	t.Helper()
	for _, st := range rep.Stages {
		for _, h := range st.Hosts {
			if h.Name == name {
				return h
			}
		}
	}
	t.Fatalf("host %s not in the report", name)
	return nil
}

// The canary's gate asks a real Prometheus (scraping every lab host's demo-web each
// second): first that the canary serves the new version, then that every scraped
// demo-web is healthy. 3.0 starts and passes no health check here, so only the gate can
// catch it: the rollout halts with the other hosts untouched. 2.0 goes through.
const promGatePlaybook = `playbook "prom-gate" {}
variable "version" { type = string }
variable "prometheus" { type = string }
targets { hosts = ["h1", "h2", "h3"] }
settings { step_timeout = "5m" }
canary {
  hosts = 1
  gate {
    timeout  = "20s"
    interval = "1s"
    prometheus "rolled-out" {
      url   = var.prometheus
      query = "sum(demo_web_version_info{version=\"${var.version}\",host=~\"h1|h2|h3\"})"
      min   = 1
    }
    prometheus "healthy" {
      url   = var.prometheus
      query = "min(demo_web_healthy{host=~\"h1|h2|h3\"})"
      min   = 1
    }
  }
}
remaining { parallel = 2 }
steps {
  package "demo-web" { version = var.version }
}
`

func TestPrometheusGate(t *testing.T) {
	if _, err := os.Stat("/usr/bin/prometheus"); err != nil {
		t.Fatal("/usr/bin/prometheus missing: install the Debian package prometheus (scripts/install-deps.sh does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prom, err := lab.StartPrometheus(ctx, shared.lab)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := prom.Stop(); err != nil {
			t.Errorf("stop prometheus: %v", err)
		}
	})
	t.Logf("prometheus up in %s at %s", prom.StartTime.Round(time.Millisecond), prom.URL())
	hosts := []string{"h1", "h2", "h3"}
	gatesInstall(t, "1.0", hosts...)
	pb := writePlaybook(t, promGatePlaybook)
	home := t.TempDir()
	run := func(t *testing.T, version string) (result, *report.Report) {
		rep := filepath.Join(t.TempDir(), "report.json")
		r := rolloutDrover(t, home, append([]string{"run", pb, "--var", "version=" + version, "--var", "prometheus=" + prom.URL(),
			"--report", rep}, labArgs()...)...)
		t.Logf("%s run: exit %d in %s", version, r.code, r.elapsed.Round(time.Millisecond))
		return r, rolloutReport(t, rep)
	}

	t.Run("a gate on a broken metric halts the rollout", func(t *testing.T) {
		r, rep := run(t, "3.0")
		if r.code != 3 || rep.Status != report.Halted {
			t.Fatalf("exit %d, status %s; want 3, halted\nstderr: %s", r.code, rep.Status, r.stderr)
		}
		g := rep.Stages[0].Gate
		if g == nil || g.Status != report.Failed {
			t.Fatalf("canary gate %+v, want failed", g)
		}
		var healthy *report.Check
		for i, c := range g.Checks {
			if c.Name == "prometheus healthy" {
				healthy = &g.Checks[i]
			}
		}
		if healthy == nil || healthy.Status != report.Failed || !strings.Contains(healthy.Detail, "value 0 below min 1") {
			t.Errorf("check healthy %+v, want failed with value 0 below min 1 (all checks %+v)", healthy, g.Checks)
		}
		if h := reportHost(t, rep, "h1"); h.Status != report.HostChanged {
			t.Errorf("canary h1 %s, want changed (it passed its own checks)", h.Status)
		}
		for _, h := range []string{"h2", "h3"} {
			if rh := reportHost(t, rep, h); rh.Status != report.HostSkipped || len(rh.Steps) != 0 {
				t.Errorf("%s touched after the gate failed: %s %+v", h, rh.Status, rh.Steps)
			}
		}
		if v := gatesVersions(t, hosts...); v["h1"] != "3.0" || v["h2"] != "1.0" || v["h3"] != "1.0" {
			t.Errorf("versions %v, want h1 3.0 and the others untouched on 1.0", v)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("a gate on real metrics passes", func(t *testing.T) {
		r, rep := run(t, "2.0")
		if r.code != 0 || rep.Status != report.Succeeded {
			t.Fatalf("exit %d, status %s; want 0, succeeded\nstderr: %s", r.code, rep.Status, r.stderr)
		}
		g := rep.Stages[0].Gate
		if g == nil || g.Status != report.Passed || len(g.Checks) != 2 {
			t.Fatalf("canary gate %+v, want passed with two checks", g)
		}
		for _, c := range g.Checks {
			if c.Status != report.Passed || !strings.HasPrefix(c.Detail, "value 1") {
				t.Errorf("check %+v, want passed with value 1", c)
			}
		}
		if v := gatesVersions(t, hosts...); v["h1"] != "2.0" || v["h2"] != "2.0" || v["h3"] != "2.0" {
			t.Errorf("versions %v, want 2.0 everywhere", v)
		}
	})
}

// A host frozen (SIGSTOP, a hang) while the rollout is in its stage: it ends up
// unreachable after the timeouts, and the stage's max_failed decides whether the
// rollout completes (exit 1) or halts (exit 3).
func TestFrozenHostMidBatch(t *testing.T) {
	const frozen = "h3"
	tests := []struct {
		maxFailed int
		code      int
		status    string
	}{
		{1, 1, report.CompletedWithFailures},
		{0, 3, report.Halted},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max_failed=%d", tt.maxFailed), func(t *testing.T) {
			pb := writePlaybook(t, fmt.Sprintf(`playbook "frozen" {}
targets { hosts = ["h1", "h2", "h3", "h4", "h5"] }
settings { step_timeout = "5s" }
batch "early" {
  hosts      = 4
  size       = 1
  pause      = "3s"
  max_failed = %d
}
remaining {}
steps {
  command "work" { run = "hostname" }
}
`, tt.maxFailed))
			var once sync.Once
			thaw := func() {
				if err := shared.lab.Thaw(frozen); err != nil {
					t.Errorf("thaw %s: %v", frozen, err)
				}
			}
			t.Cleanup(thaw)
			rep := filepath.Join(t.TempDir(), "report.json")
			home := t.TempDir()
			// Facts cached first, so the run connects to each host only when its batch
			// starts: h3 is still running when the run starts, and frozen before drover
			// first connects to it.
			if f := droverHome(t, home, append([]string{"facts", "h1,h2,h3,h4,h5", "--json"}, labArgs()...)...); f.code != 0 {
				t.Fatalf("drover facts: exit %d\n%s", f.code, f.stderr)
			}
			batchOf := map[string]int{}
			r := streamRun(t, home, func(ev report.Event) {
				if ev.Type == report.BatchStart {
					for _, h := range ev.Hosts {
						batchOf[h] = ev.Batch
					}
					// h3 is in the stage's third batch: freeze it while the first runs, after
					// the run gathered its facts over a live connection.
					if ev.Stage == "early" && ev.Batch == 1 {
						once.Do(func() {
							if err := shared.lab.Freeze(frozen); err != nil {
								t.Errorf("freeze %s: %v", frozen, err)
							}
						})
					}
				}
			}, append([]string{"run", pb, "--report", rep, "--connect-timeout", "2s"}, labArgs()...)...)
			t.Logf("exit %d in %s", r.code, r.elapsed.Round(time.Millisecond))
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			got := rolloutReport(t, rep)
			if got.Status != tt.status {
				t.Errorf("status %s, want %s", got.Status, tt.status)
			}
			if batchOf[frozen] != 3 {
				t.Errorf("%s ran in batch %d of its stage, want 3 (frozen while batch 1 ran)", frozen, batchOf[frozen])
			}
			fh := reportHost(t, got, frozen)
			if fh.Status != report.HostUnreachable {
				t.Errorf("%s: %s (%s), want unreachable", frozen, fh.Status, fh.Error)
			}
			want := map[string]string{"h1": report.HostChanged, "h2": report.HostChanged, "h4": report.HostChanged, "h5": report.HostChanged}
			if tt.maxFailed == 0 {
				want["h4"], want["h5"] = report.HostSkipped, report.HostSkipped
			}
			for h, st := range want {
				if rh := reportHost(t, got, h); rh.Status != st {
					t.Errorf("%s: %s (%s), want %s", h, rh.Status, rh.Error, st)
				}
			}
		})
	}
}

// drainLog records what the "load balancer" was asked, per host, in arrival order.
type drainLog struct {
	mu   sync.Mutex
	reqs map[string][]drainReq
}

type drainReq struct {
	method string
	at     time.Time
}

func (d *drainLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := strings.TrimPrefix(r.URL.Path, "/pool/")
	d.mu.Lock()
	d.reqs[host] = append(d.reqs[host], drainReq{r.Method, time.Now()})
	d.mu.Unlock()
	fmt.Fprintln(w, "ok")
}

// Before/after actions hit a real HTTP server: per host drain (DELETE), then the steps,
// then the health check (GET), then undrain (PUT); a host whose steps fail is drained and
// never undrained.
func TestDrainStepsHealthUndrainOrder(t *testing.T) {
	lb := &drainLog{reqs: map[string][]drainReq{}}
	srv := httptest.NewServer(lb)
	defer srv.Close()
	const broken = "h3"
	pb := writePlaybook(t, `playbook "drain" {}
variable "lb" { type = string }
targets { hosts = ["h1", "h2", "h3", "h4"] }
remaining {
  parallel   = 2
  max_failed = 1
}
before {
  http "drain" {
    url    = "${var.lb}/pool/${host.name}"
    method = "DELETE"
  }
}
steps {
  command "work" { run = "hostname" }
  command "break" {
    run  = "exit 1"
    when = host.name == "`+broken+`"
  }
}
health {
  http "lb-health" { url = "${var.lb}/pool/${host.name}" }
}
after {
  http "undrain" {
    url    = "${var.lb}/pool/${host.name}"
    method = "PUT"
  }
}
`)
	type times struct{ firstStep, healthStart time.Time }
	var mu sync.Mutex
	seen := map[string]*times{}
	repPath := filepath.Join(t.TempDir(), "report.json")
	r := streamRun(t, t.TempDir(), func(ev report.Event) {
		if ev.Type != report.StepStart {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[ev.Host] == nil {
			seen[ev.Host] = &times{}
		}
		s := seen[ev.Host]
		switch {
		case ev.Phase == report.PhaseSteps && s.firstStep.IsZero():
			s.firstStep = ev.Time.Time
		case ev.Phase == report.PhaseHealth && s.healthStart.IsZero():
			s.healthStart = ev.Time.Time
		}
	}, append([]string{"run", pb, "--var", "lb=" + srv.URL, "--report", repPath}, labArgs()...)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (one failed host within max_failed)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	rep := rolloutReport(t, repPath)
	lb.mu.Lock()
	defer lb.mu.Unlock()
	// Event times have millisecond resolution.
	ms := func(tm time.Time) time.Time { return tm.Truncate(time.Millisecond) }
	for _, h := range []string{"h1", "h2", "h4"} {
		reqs := lb.reqs[h]
		var methods []string
		for _, q := range reqs {
			methods = append(methods, q.method)
		}
		if strings.Join(methods, " ") != "DELETE GET PUT" {
			t.Errorf("%s: the load balancer saw %v, want DELETE (drain), GET (health), PUT (undrain)", h, methods)
			continue
		}
		s := seen[h]
		if s == nil || s.firstStep.IsZero() {
			t.Errorf("%s: no step_start event", h)
			continue
		}
		drain, health, undrain := reqs[0].at, reqs[1].at, reqs[2].at
		if !(ms(drain).Compare(s.firstStep) <= 0 && s.firstStep.Compare(ms(health)) <= 0 && health.Before(undrain)) {
			t.Errorf("%s: drain %s, first step %s, health %s, undrain %s: out of order", h,
				drain.Format(report.TimeFormat), s.firstStep.Format(report.TimeFormat), health.Format(report.TimeFormat), undrain.Format(report.TimeFormat))
		}
		rh := reportHost(t, rep, h)
		var names []string
		for _, st := range rh.Steps {
			names = append(names, st.Name)
		}
		if want := "before: http drain,command work,command break,health: http lb-health,after: http undrain"; strings.Join(names, ",") != want {
			t.Errorf("%s steps %q, want %q", h, names, want)
		}
	}
	if reqs := lb.reqs[broken]; len(reqs) != 1 || reqs[0].method != http.MethodDelete {
		t.Errorf("%s (failed in its steps): the load balancer saw %+v, want only the drain", broken, reqs)
	}
	if bh := reportHost(t, rep, broken); bh.Status != report.HostFailed || !strings.Contains(bh.Error, "command break") {
		t.Errorf("%s: %s (%s), want failed in command break", broken, bh.Status, bh.Error)
	}
}
