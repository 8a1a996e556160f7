package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// actionDoc is the --json document of drover package|service|puppet (the fields
// these tests read).
type actionDoc struct {
	Command string `json:"command"`
	Hosts   []struct {
		Name     string            `json:"name"`
		Status   string            `json:"status"`
		Detail   string            `json:"detail"`
		Error    string            `json:"error"`
		Backend  string            `json:"backend"`
		Before   map[string]string `json:"before"`
		After    map[string]string `json:"after"`
		Started  time.Time         `json:"started"`
		Finished time.Time         `json:"finished"`
		Batch    int               `json:"batch"`
	} `json:"hosts"`
	Summary struct {
		OK, Changed, Failed, Unreachable int
		Batches                          int `json:"batches"`
		Groups                           []struct {
			Name   string `json:"name"`
			Values []struct {
				Value string   `json:"value"`
				Count int      `json:"count"`
				Hosts []string `json:"hosts"`
			} `json:"values"`
		} `json:"groups"`
	} `json:"summary"`
}

func parseAction(t *testing.T, r result) actionDoc {
	t.Helper()
	var doc actionDoc
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("--json output is not one document (%v):\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return doc
}

// groupCounts is one summary group as value -> host count.
func (d actionDoc) groupCounts(name string) map[string]int {
	for _, g := range d.Summary.Groups {
		if g.Name == name {
			m := map[string]int{}
			for _, v := range g.Values {
				m[v.Value] = v.Count
			}
			return m
		}
	}
	return nil
}

func (d actionDoc) statuses() map[string]string {
	m := map[string]string{}
	for _, h := range d.Hosts {
		m[h.Name] = h.Status
	}
	return m
}

// installedVersion asks dpkg inside the host, not drover: "" when not installed.
func installedVersion(t *testing.T, host string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := shared.lab.Exec(ctx, host, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Version}", "demo-web")
	if err != nil {
		if strings.Contains(string(out), "no packages found") {
			return ""
		}
		t.Fatalf("dpkg-query on %s: %v\n%s", host, err, out)
	}
	status, version, _ := strings.Cut(string(out), "|")
	if strings.TrimSpace(status) != "ii" {
		return ""
	}
	return version
}

// healthOf GETs the demo-web health URL of a host from the controller; code 0 when
// nothing answers.
func healthOf(t *testing.T, host string) (int, string) {
	t.Helper()
	h, err := shared.lab.Host(host)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + h.Address + ":8080/health")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading health of %s: %v", host, err)
	}
	return resp.StatusCode, string(b)
}

func labHostNames() []string {
	var names []string
	for _, h := range shared.lab.Hosts {
		names = append(names, h.Name)
	}
	return names
}

// purgeDemoWeb leaves every lab host as the lab made it.
func purgeDemoWeb(t *testing.T) {
	for _, n := range labHostNames() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := shared.lab.Exec(ctx, n, "sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q demo-web")
		cancel()
		if err != nil {
			t.Errorf("cleanup: purging demo-web on %s: %v\n%s", n, err, out)
		}
	}
}

// A hostile package name or version is refused with exit 2 before anything
// connects: the target is a listener that counts the connections it gets, and the
// same command with a good name shows it would have seen one.
func TestPackageHostileInputRefusedBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl := ln.(*net.TCPListener)
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	port := ln.Addr().(*net.TCPAddr).Port
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "Host trap\n  HostName 127.0.0.1\n  Port %d\n", port), 0o600); err != nil {
		t.Fatal(err)
	}
	// connected reports whether a TCP connection reached the listener (the kernel
	// completes the handshake even before Accept).
	connected := func() bool {
		tl.SetDeadline(time.Now().Add(200 * time.Millisecond))
		c, err := tl.Accept()
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	args := func(a ...string) []string {
		return append(a, "-i", "trap,", "--ssh-config", cfg, "--connect-timeout", "1s")
	}
	for _, bad := range [][]string{
		{"package", "install", "x; rm -rf /"},
		{"package", "install", "demo-web=1.0 ; reboot"},
		{"package", "install", "demo-web=1 0"},
		{"service", "restart", "demo-web;id"},
	} {
		r := drover(t, args(bad...)...)
		if r.code != 2 {
			t.Errorf("%q: exit %d, want 2\nstderr: %s", bad, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "invalid input") {
			t.Errorf("%q: stderr %q does not say why", bad, r.stderr)
		}
		if connected() {
			t.Errorf("%q: drover connected before refusing", bad)
		}
	}
	r := drover(t, args("package", "status", "demo-web")...)
	if r.code != 1 || !connected() {
		t.Errorf("a valid name: exit %d (want 1: no sshd there), connected %v; the trap does not work", r.code, connected())
	}
}

// The package and service actions on the lab (apt + sysv), each checked against what
// the hosts really have.
func TestPackageAndServiceActionsOnLab(t *testing.T) {
	for _, n := range labHostNames() {
		if v := installedVersion(t, n); v != "" {
			t.Fatalf("%s already has demo-web %s; a test before this one did not clean up", n, v)
		}
	}
	t.Cleanup(func() { purgeDemoWeb(t) })
	lab := labArgs()
	// One HOME for the whole test: the facts (package_manager, init_system) are
	// gathered by the first command and served from the cache after that.
	home := t.TempDir()
	drover := func(t *testing.T, args ...string) result {
		t.Helper()
		return droverHome(t, home, args...)
	}
	webHosts := labWhere(func(i int) bool { return labRole(i) == "web" })

	t.Run("install 1.0 on three hosts, then again", func(t *testing.T) {
		r := drover(t, append([]string{"package", "install", "demo-web=1.0", "h1,h2,h3", "--become", "--json"}, lab...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		doc := parseAction(t, r)
		for _, h := range doc.Hosts {
			if h.Status != "changed" || h.Detail != "absent -> 1.0" || h.Backend != "apt" {
				t.Errorf("%s: %s %q (%s), backend %s", h.Name, h.Status, h.Detail, h.Error, h.Backend)
			}
		}
		for _, n := range []string{"h1", "h2", "h3"} {
			if v := installedVersion(t, n); v != "1.0" {
				t.Errorf("%s: dpkg says %q, want 1.0", n, v)
			}
			if code, body := healthOf(t, n); code != 200 || body != "ok 1.0" {
				t.Errorf("%s: health %d %q", n, code, body)
			}
		}
		r = drover(t, append([]string{"package", "install", "demo-web=1.0", "h1,h2,h3"}, lab...)...)
		if r.code != 0 {
			t.Fatalf("second install: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "3 hosts: 3 ok, 0 changed, 0 failed, 0 unreachable\nbefore:\n  1.0: 3 hosts\nafter:\n  1.0: 3 hosts\n") {
			t.Errorf("second install is not all ok:\n%s", r.stdout)
		}
	})

	t.Run("upgrade web hosts to 2.0 three at a time", func(t *testing.T) {
		r := drover(t, append([]string{"package", "install", "demo-web=2.0", "-F", "role=web", "--batch", "3", "--json"}, lab...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		doc := parseAction(t, r)
		var names []string
		var batches []int
		first, last := map[int]time.Time{}, map[int]time.Time{}
		for _, h := range doc.Hosts {
			names = append(names, h.Name)
			batches = append(batches, h.Batch)
			if h.Status != "changed" {
				t.Errorf("%s: %s %s", h.Name, h.Status, h.Error)
			}
			if f, ok := first[h.Batch]; !ok || h.Started.Before(f) {
				first[h.Batch] = h.Started
			}
			if l, ok := last[h.Batch]; !ok || h.Finished.After(l) {
				last[h.Batch] = h.Finished
			}
		}
		if !slices.Equal(names, webHosts) {
			t.Errorf("hosts %v, want the web hosts %v", names, webHosts)
		}
		if !slices.Equal(batches, []int{1, 1, 1, 2, 2, 2, 3, 3, 3, 4}) || doc.Summary.Batches != 4 {
			t.Errorf("batches %v (summary %d), want 3 hosts a batch", batches, doc.Summary.Batches)
		}
		for b := 2; b <= 4; b++ {
			if first[b].Before(last[b-1]) {
				t.Errorf("batch %d started at %s, before batch %d finished at %s", b, first[b], b-1, last[b-1])
			}
		}
		if got := doc.groupCounts("before"); got["1.0"] != 2 || got["absent"] != 8 || len(got) != 2 {
			t.Errorf("before %v, want 1.0: 2 (h1, h3), absent: 8", got)
		}
		if got := doc.groupCounts("after"); got["2.0"] != 10 || len(got) != 1 {
			t.Errorf("after %v, want 2.0: 10", got)
		}
		for i, n := range labHostNames() {
			want := "2.0"
			switch {
			case labRole(i+1) == "web":
			case n == "h2":
				want = "1.0"
			default:
				want = ""
			}
			if v := installedVersion(t, n); v != want {
				t.Errorf("%s (%s): dpkg says %q, want %q", n, labRole(i+1), v, want)
			}
		}
		if code, body := healthOf(t, "h3"); code != 200 || body != "ok 2.0" {
			t.Errorf("h3 health %d %q", code, body)
		}
	})

	t.Run("update h2 to the latest (the broken 3.0)", func(t *testing.T) {
		r := drover(t, append([]string{"package", "update", "demo-web", "h2"}, lab...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"h2  changed      1.0 -> 3.0\n", "before:\n  1.0: 1 host\nafter:\n  3.0: 1 host\n"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("no %q in\n%s", want, r.stdout)
			}
		}
		if v := installedVersion(t, "h2"); v != "3.0" {
			t.Errorf("h2: dpkg says %q", v)
		}
	})

	t.Run("status summary", func(t *testing.T) {
		r := drover(t, append([]string{"package", "status", "demo-web", "--json"}, lab...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		doc := parseAction(t, r)
		if got := doc.groupCounts("versions"); got["2.0"] != 10 || got["3.0"] != 1 || got["absent"] != 9 || len(got) != 3 {
			t.Errorf("versions %v, want 2.0: 10, 3.0: 1, absent: 9", got)
		}
	})

	t.Run("service status, stop, start, restart", func(t *testing.T) {
		service := func(args ...string) actionDoc {
			t.Helper()
			r := drover(t, append(append([]string{"service"}, args...), append([]string{"--json"}, lab...)...)...)
			if r.code != 0 {
				t.Fatalf("service %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
			}
			return parseAction(t, r)
		}
		doc := service("status", "demo-web", "h1,h2,h4")
		if got := doc.groupCounts("states"); got["running"] != 2 || got["absent"] != 1 {
			t.Errorf("states %v, want running: 2 (h1, h2), absent: 1 (h4)", got)
		}

		doc = service("stop", "demo-web", "h1")
		if doc.Hosts[0].Status != "changed" {
			t.Errorf("stop: %+v", doc.Hosts[0])
		}
		if code, _ := healthOf(t, "h1"); code != 0 {
			t.Errorf("h1 still answers on :8080 after stop (%d)", code)
		}
		if doc = service("stop", "demo-web", "h1"); doc.Hosts[0].Status != "ok" {
			t.Errorf("second stop: %+v, want ok", doc.Hosts[0])
		}
		if doc = service("status", "demo-web", "h1"); doc.groupCounts("states")["stopped"] != 1 {
			t.Errorf("status after stop: %v", doc.groupCounts("states"))
		}

		if doc = service("start", "demo-web", "h1"); doc.Hosts[0].Status != "changed" {
			t.Errorf("start: %+v", doc.Hosts[0])
		}
		if code, body := healthOf(t, "h1"); code != 200 || body != "ok 2.0" {
			t.Errorf("h1 health after start %d %q", code, body)
		}

		pid := func() string {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := shared.lab.Exec(ctx, "h1", "cat", "/run/demo-web.pid")
			if err != nil {
				t.Fatalf("reading pid: %v\n%s", err, out)
			}
			return strings.TrimSpace(string(out))
		}
		before := pid()
		if doc = service("restart", "demo-web", "h1"); doc.Hosts[0].Status != "changed" || doc.groupCounts("states")["running"] != 1 {
			t.Errorf("restart: %+v %v", doc.Hosts[0], doc.groupCounts("states"))
		}
		if after := pid(); after == before {
			t.Errorf("restart kept pid %s", before)
		}
		if code, body := healthOf(t, "h1"); code != 200 || body != "ok 2.0" {
			t.Errorf("h1 health after restart %d %q", code, body)
		}
	})

	t.Run("remove", func(t *testing.T) {
		r := drover(t, append([]string{"package", "remove", "demo-web", "h1,h2,h3", "--json"}, lab...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		doc := parseAction(t, r)
		if got := doc.groupCounts("after"); got["absent"] != 3 {
			t.Errorf("after %v, want absent: 3", got)
		}
		for _, n := range []string{"h1", "h2", "h3"} {
			if v := installedVersion(t, n); v != "" {
				t.Errorf("%s: dpkg still says %q", n, v)
			}
			if code, _ := healthOf(t, n); code != 0 {
				t.Errorf("%s still serves after remove (%d)", n, code)
			}
		}
		if doc.statuses()["h1"] != "changed" {
			t.Errorf("statuses %v", doc.statuses())
		}
	})
}
