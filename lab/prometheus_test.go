package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// promQuery asks p an instant query and returns each series' value by its host label.
func promQuery(t *testing.T, p *Prometheus, query string) map[string]string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.URL() + "/api/v1/query?" + url.Values{"query": {query}}.Encode())
	if err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %q: %v %s", query, err, b)
	}
	out := map[string]string{}
	for _, s := range r.Data.Result {
		v, _ := s.Value[1].(string)
		out[s.Metric["host"]] = v
	}
	return out
}

// waitQuery retries query (Prometheus scrapes each second) until want holds or a
// minute passed, and returns the last answer.
func waitQuery(t *testing.T, p *Prometheus, query string, want func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := promQuery(t, p, query)
		if want(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(250 * time.Millisecond) // polling a real server's scrape, not synchronising goroutines
	}
}

func TestPrometheus(t *testing.T) {
	requireLab(t)
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Fatalf("%s missing: install the Debian package prometheus (scripts/install-deps.sh does)", prometheusBin)
	}
	l := startLab(t, Config{Hosts: 2, Net: -1, Prometheus: true})
	p := l.Prometheus
	if p == nil {
		t.Fatal("Config.Prometheus set but Lab.Prometheus is nil")
	}
	if p.Address != l.PrometheusAddress() || !strings.HasSuffix(p.Address, ".253") {
		t.Errorf("address %s, want 127.1.NET.253", p.Address)
	}
	if err := p.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("prometheus ready in %s", p.StartTime.Round(time.Millisecond))

	// Its config is the lab's own, not Debian's /etc/prometheus.
	b, err := os.ReadFile(p.configFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range l.Hosts {
		if !strings.Contains(string(b), h.Address+":8080") {
			t.Errorf("config lacks target %s:8080:\n%s", h.Address, b)
		}
	}

	sshRoot(t, l, "h1", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q demo-web=2.0")
	sshRoot(t, l, "h2", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q demo-web=3.0")

	healthy := waitQuery(t, p, `demo_web_healthy`, func(m map[string]string) bool { return m["h1"] == "1" && m["h2"] == "0" })
	if healthy["h1"] != "1" || healthy["h2"] != "0" {
		t.Errorf("demo_web_healthy by host = %v, want h1 1 (2.0), h2 0 (3.0)", healthy)
	}
	if got := promQuery(t, p, `demo_web_version_info{version="2.0",role="web"}`); got["h1"] != "1" || len(got) != 1 {
		t.Errorf("version_info 2.0 on web = %v, want h1 only", got)
	}
	if got := promQuery(t, p, `min(demo_web_up)`); got[""] != "1" {
		t.Errorf("min(demo_web_up) = %v, want 1", got)
	}

	// The server goes with the lab, files and all.
	dir := p.Dir
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop: %v", dir, err)
	}
	if err := p.Ready(context.Background()); err == nil {
		t.Error("prometheus still answers after the lab stopped")
	}
}

// drover-lab up --prometheus leaves Prometheus running for other processes; down (Open,
// then Stop) must find it through state.json and stop it.
func TestDetachedPrometheusStoppedByOpen(t *testing.T) {
	requireLab(t)
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Fatalf("%s missing: install the Debian package prometheus (scripts/install-deps.sh does)", prometheusBin)
	}
	l := startLab(t, Config{Hosts: 1, Net: -1, Prometheus: true, Detached: true})
	pid := l.Prometheus.pid
	o, err := Open(l.Dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if o.Prometheus == nil || o.Prometheus.URL() != l.Prometheus.URL() || !o.Prometheus.isOurs() {
		t.Fatalf("opened lab's Prometheus = %+v, want the running one at %s (pid %d)", o.Prometheus, l.Prometheus.URL(), pid)
	}
	if err := o.Prometheus.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := o.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := l.Prometheus.Ready(context.Background()); err == nil {
		t.Error("prometheus still answers after the opened lab stopped")
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), "prometheus") {
		t.Errorf("pid %d still runs: %q", pid, b)
	}
}
