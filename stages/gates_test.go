package stages

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/drover-sh/drover/report"
)

func ptr(f float64) *float64 { return &f }

func TestProbeHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, "status: ok 2.0")
		case "/created":
			if r.Method != http.MethodPut || r.Header.Get("X-Token") != "t" {
				http.Error(w, "bad", http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	tests := []struct {
		name   string
		p      httpProbe
		ok     bool
		detail string
	}{
		{"any 2xx", httpProbe{URL: srv.URL + "/ok"}, true, "GET " + srv.URL + "/ok: 200"},
		{"exact status", httpProbe{URL: srv.URL + "/ok", Status: 200}, true, ": 200"},
		{"wrong status", httpProbe{URL: srv.URL + "/down", Status: 200}, false, "503, want 200"},
		{"not 2xx", httpProbe{URL: srv.URL + "/down"}, false, "503, want 2xx"},
		{"expected 503", httpProbe{URL: srv.URL + "/down", Status: 503}, true, ": 503"},
		{"body substring", httpProbe{URL: srv.URL + "/ok", Body: "ok 2.0"}, true, ": 200"},
		{"body missing", httpProbe{URL: srv.URL + "/ok", Body: "ok 3.0"}, false, `body lacks "ok 3.0"`},
		{"body regex", httpProbe{URL: srv.URL + "/ok", BodyRegex: regexp.MustCompile(`ok [0-9.]+$`)}, true, ": 200"},
		{"body regex fails", httpProbe{URL: srv.URL + "/ok", BodyRegex: regexp.MustCompile(`^down`)}, false, "does not match /^down/"},
		{"method and headers", httpProbe{URL: srv.URL + "/created", Method: "PUT", Headers: map[string]string{"X-Token": "t"}}, true, "PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, detail := probeHTTP(context.Background(), srv.Client(), tt.p)
			if ok != tt.ok || !strings.Contains(detail, tt.detail) {
				t.Errorf("got %v %q, want %v containing %q", ok, detail, tt.ok, tt.detail)
			}
		})
	}
}

// A password in a URL never reaches a detail, even in a transport error.
func TestProbeHTTPRedactsURLPassword(t *testing.T) {
	addr := closedAddr(t)
	ok, detail := probeHTTP(context.Background(), http.DefaultClient, httpProbe{URL: "http://user:hunter2@" + addr + "/x"})
	if ok || strings.Contains(detail, "hunter2") || !strings.Contains(detail, "user:xxxxx@") {
		t.Errorf("got %v %q", ok, detail)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestProbeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if ok, detail := probeTCP(context.Background(), l.Addr().String()); !ok {
		t.Errorf("open port: %s", detail)
	}
	if ok, detail := probeTCP(context.Background(), closedAddr(t)); ok || !strings.Contains(detail, "refused") {
		t.Errorf("closed port: %v %q", ok, detail)
	}
}

func TestProbeLocal(t *testing.T) {
	tests := []struct {
		run    string
		ok     bool
		detail string
	}{
		{"true", true, "exit 0"},
		{"echo fine", true, "exit 0: fine"},
		{"echo broken >&2; exit 3", false, "exit 3: broken"},
	}
	for _, tt := range tests {
		ok, detail := probeLocal(context.Background(), tt.run)
		if ok != tt.ok || detail != tt.detail {
			t.Errorf("%q: got %v %q, want %v %q", tt.run, ok, detail, tt.ok, tt.detail)
		}
	}
}

// fakePrometheus answers /api/v1/query by the query text.
func fakePrometheus(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prom/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		vec := func(vals ...string) string {
			var parts []string
			for i, v := range vals {
				parts = append(parts, fmt.Sprintf(`{"metric":{"instance":"h%d"},"value":[1700000000.1,%q]}`, i, v))
			}
			return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(parts, ",") + `]}}`
		}
		switch q := r.URL.Query().Get("query"); q {
		case "good":
			fmt.Fprint(w, vec("0.01"))
		case "bad":
			fmt.Fprint(w, vec("0.5"))
		case "two":
			fmt.Fprint(w, vec("0.01", "0.02"))
		case "one bad of two":
			fmt.Fprint(w, vec("0.01", "7"))
		case "empty":
			fmt.Fprint(w, vec())
		case "nan":
			fmt.Fprint(w, vec("NaN"))
		case "scalar":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}`)
		case "matrix":
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"parse error in %s"}`, q)
		}
	}))
}

func TestProbePrometheus(t *testing.T) {
	srv := fakePrometheus(t)
	defer srv.Close()
	tests := []struct {
		name   string
		p      promProbe
		ok     bool
		detail string
	}{
		{"within max", promProbe{Query: "good", Max: ptr(0.1)}, true, "value 0.01"},
		{"above max", promProbe{Query: "bad", Max: ptr(0.1)}, false, "value 0.5 above max 0.1"},
		{"below min", promProbe{Query: "good", Min: ptr(1)}, false, "value 0.01 below min 1"},
		{"two series", promProbe{Query: "two", Max: ptr(0.1)}, true, "2 series within bounds"},
		{"one of two out", promProbe{Query: "one bad of two", Max: ptr(0.1)}, false, "value 7 above max"},
		{"empty fails", promProbe{Query: "empty", Max: ptr(1)}, false, "empty result"},
		{"empty ok", promProbe{Query: "empty", Max: ptr(1), EmptyOK: true}, true, "empty result (allowed)"},
		{"nan", promProbe{Query: "nan", Max: ptr(1)}, false, "NaN"},
		{"scalar", promProbe{Query: "scalar", Min: ptr(3), Max: ptr(3)}, true, "value 3"},
		{"matrix refused", promProbe{Query: "matrix"}, false, `result type "matrix"`},
		{"query error", promProbe{Query: "sum(("}, false, "bad_data: parse error in sum(("},
		{"full API path given", promProbe{URL: srv.URL + "/prom/api/v1/query", Query: "good"}, true, "value 0.01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.p.URL == "" {
				tt.p.URL = srv.URL + "/prom/"
			}
			ok, detail := probePrometheus(context.Background(), srv.Client(), tt.p)
			if ok != tt.ok || !strings.Contains(detail, tt.detail) {
				t.Errorf("got %v %q, want %v containing %q", ok, detail, tt.ok, tt.detail)
			}
		})
	}
}

// A gate's checks are retried every interval until they pass, after the soak.
func TestGateRetriesUntilPass(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	p := loadPlaybook(t, `playbook "g" {}
variable "url" { type = string }
canary {
  gate {
    wait     = "30s"
    interval = "10s"
    http "site" {
      url    = var.url
      status = 200
    }
  }
}
steps {
  command "one" { run = "echo one" }
}`, "url="+srv.URL)
	f := newFleet(t, "h1", "h2")
	e, rec := setup(t, p, f, "h1", "h2")
	e.HTTP = srv.Client()
	start := e.Now()
	rep := mustRun(t, e)
	if rep.Status != report.Succeeded {
		t.Fatalf("status %s: %s", rep.Status, rep.Error)
	}
	g := rep.Stages[0].Gate
	if g.Status != report.Passed || len(g.Checks) != 1 || g.Checks[0].Status != report.Passed {
		t.Errorf("gate %+v", g)
	}
	if calls.Load() != 3 {
		t.Errorf("%d requests, want 3", calls.Load())
	}
	// 30s soak + two 10s intervals.
	if d := e.Now().Sub(start); d.Seconds() != 50 {
		t.Errorf("gate took %s on the clock, want 50s", d)
	}
	rounds := 0
	for _, ev := range rec.all() {
		if ev.Type == report.GateCheck {
			rounds++
		}
	}
	if rounds != 3 {
		t.Errorf("%d gate rounds, want 3", rounds)
	}
}

// A gate that never passes halts the rollout when its timeout runs out, and no
// further host is touched.
func TestGateFailureHalts(t *testing.T) {
	srv := fakePrometheus(t)
	defer srv.Close()
	p := loadPlaybook(t, `playbook "g" {}
variable "prom" { type = string }
batch "first" {
  hosts = 2
  size  = 1
  gate {
    timeout  = "1m"
    interval = "5s"
    prometheus "errors" {
      url   = var.prom
      query = "bad"
      max   = 0.1
    }
  }
}
steps {
  command "one" { run = "echo one" }
}`, "prom="+srv.URL+"/prom")
	f := newFleet(t, "h1", "h2", "h3")
	e, rec := setup(t, p, f, "h1", "h2", "h3")
	e.HTTP = srv.Client()
	rep := mustRun(t, e)
	if rep.Status != report.Halted || report.ExitCode(rep.Status) != 3 {
		t.Fatalf("status %s", rep.Status)
	}
	if !strings.Contains(rep.Error, "gate failed after batch 1") || !strings.Contains(rep.Error, "above max 0.1") {
		t.Errorf("reason %q", rep.Error)
	}
	g := rep.Stages[0].Gate
	if g.Status != report.Failed || g.Checks[0].Name != "prometheus errors" || g.Checks[0].Status != report.Failed {
		t.Errorf("gate %+v", g)
	}
	if l := f.journal.grep("h2: "); len(l) != 0 {
		t.Errorf("h2 (batch 2) ran after the gate failed: %q", l)
	}
	if st := hostStatuses(rep); st["h1"] != "changed" || st["h2"] != "skipped" || st["h3"] != "skipped" {
		t.Errorf("hosts %v", st)
	}
	if rep.Stages[1].Status != report.Skipped || !rep.Stages[1].Started.IsZero() {
		t.Errorf("remaining stage %+v", rep.Stages[1])
	}
	rounds := 0
	for _, ev := range rec.all() {
		if ev.Type == report.GateCheck {
			rounds++
		}
	}
	if rounds != 12 { // t = 0, 5, …, 55s; the next would be past the 1m timeout
		t.Errorf("%d rounds, want 12", rounds)
	}
}

func TestGateConfirm(t *testing.T) {
	tests := []struct {
		name    string
		yes     bool
		confirm func(context.Context, string) (bool, error)
		status  string
		detail  string
	}{
		{"--yes", true, nil, report.Succeeded, "--yes"},
		{"no terminal", false, nil, report.Halted, "no terminal"},
		{"declined", false, func(context.Context, string) (bool, error) { return false, nil }, report.Halted, "declined"},
		{"approved", false, func(_ context.Context, prompt string) (bool, error) {
			return strings.Contains(prompt, "Stage canary, batch 1/1 done: 1 host(s) ok, 0 failed"), nil
		}, report.Succeeded, "approved"},
		{"prompt error", false, func(context.Context, string) (bool, error) { return false, fmt.Errorf("tty gone") }, report.Halted, "tty gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPlaybook(t, `playbook "c" {}
canary {
  gate { confirm = true }
}
steps {
  command "one" { run = "echo one" }
}`)
			f := newFleet(t, "h1", "h2")
			e, _ := setup(t, p, f, "h1", "h2")
			e.Yes, e.Confirm = tt.yes, tt.confirm
			rep := mustRun(t, e)
			if rep.Status != tt.status {
				t.Errorf("status %s, want %s", rep.Status, tt.status)
			}
			g := rep.Stages[0].Gate
			if len(g.Checks) != 1 || g.Checks[0].Name != "confirm" || !strings.Contains(g.Checks[0].Detail, tt.detail) {
				t.Errorf("gate %+v", g)
			}
			ran := len(f.journal.grep("h2: ")) > 0
			if ran != (tt.status == report.Succeeded) {
				t.Errorf("h2 ran = %v with status %s", ran, tt.status)
			}
		})
	}
}

// before/after commands run on the controller with the host in the environment;
// health commands run on the host; a failed host gets no after action.
func TestBeforeAfterCommandsRunOnController(t *testing.T) {
	log := filepath.Join(t.TempDir(), "lb.log")
	p := loadPlaybook(t, `playbook "c" {}
variable "log" { type = string }
remaining {
  parallel   = 1
  max_failed = 1
}
before {
  command "drain" { run = "echo \"drain $DROVER_HOST $DROVER_HOST_ADDRESS $DROVER_STAGE ${host.name}\" >> ${var.log}" }
}
steps {
  command "work" { run = "echo work" }
}
health {
  command "up" { run = "${host.name == "h2" ? "fail" : "echo"} health" }
}
after {
  command "undrain" { run = "echo \"undrain $DROVER_HOST\" >> ${var.log}" }
}`, "log="+log)
	f := newFleet(t, "h1", "h2")
	e, _ := setup(t, p, f, "h1", "h2")
	rep := mustRun(t, e)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("the controller-side commands left no log: %v", err)
	}
	// setup gives every host the address 127.1.0.1.
	want := "drain h1 127.1.0.1 remaining h1\nundrain h1\ndrain h2 127.1.0.1 remaining h2\n"
	if string(b) != want {
		t.Errorf("controller log:\n%s\nwant:\n%s", b, want)
	}
	if got := f.journal.grep("drain"); len(got) != 0 {
		t.Errorf("before/after commands reached the hosts: %q", got)
	}
	if got := f.journal.grep("health"); len(got) != 2 {
		t.Errorf("health commands on the hosts: %q, want one per host", got)
	}
	if st := hostStatuses(rep); st["h1"] != report.HostChanged || st["h2"] != report.HostFailed {
		t.Errorf("statuses %v", st)
	}
}

// body_regex and empty_ok reach the probes from the playbook.
func TestCheckAttributesReachProbes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/query" {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
			return
		}
		fmt.Fprint(w, "version 2.0 ok")
	}))
	defer srv.Close()
	tests := []struct {
		name, check string
		status      string
		detail      string
	}{
		{"regex matches", "http \"h\" {\n url = \"${var.u}/health\"\n body_regex = \"^version [0-9.]+ ok$\"\n}", report.Passed, ": 200"},
		{"regex fails", "http \"h\" {\n url = \"${var.u}/health\"\n body_regex = \"^version 3\"\n}", report.Failed, "does not match /^version 3/"},
		{"empty fails", "prometheus \"p\" {\n url = var.u\n query = \"up\"\n max = 1\n}", report.Failed, "empty result"},
		{"empty ok", "prometheus \"p\" {\n url = var.u\n query = \"up\"\n max = 1\n empty_ok = true\n}", report.Passed, "empty result (allowed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPlaybook(t, `playbook "g" {}
variable "u" { type = string }
canary {
  gate {
    timeout = "1s"
    `+tt.check+`
  }
}
steps {
  command "one" { run = "echo one" }
}`, "u="+srv.URL)
			f := newFleet(t, "h1", "h2")
			e, _ := setup(t, p, f, "h1", "h2")
			e.HTTP = srv.Client()
			rep := mustRun(t, e)
			g := rep.Stages[0].Gate
			if g.Status != tt.status || len(g.Checks) != 1 || !strings.Contains(g.Checks[0].Detail, tt.detail) {
				t.Errorf("gate %s %+v, want %s with %q", g.Status, g.Checks, tt.status, tt.detail)
			}
		})
	}
}
