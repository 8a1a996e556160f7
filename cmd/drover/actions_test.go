package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/internal/steptest"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

func parseActionDoc(t *testing.T, out string) actionDoc {
	t.Helper()
	var doc actionDoc
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not one action document: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document on stdout:\n%s", out)
	}
	return doc
}

// aptHost is a fake Debian host: one package, demo-web, whose installed version
// ("" = absent) the apt-get commands change, and one sysv service of that name.
type aptHost struct {
	mu        sync.Mutex
	version   string
	candidate string
	running   bool
	cmds      []*transport.Command
}

var aptInstallRe = regexp.MustCompile(`apt-get install .* '?demo-web(?:=([^' ]+))?'?$`)

func (a *aptHost) run(_ context.Context, cmd *transport.Command) (*transport.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cmds = append(a.cmds, cmd)
	if res, ok, err := steptest.RunComposite(cmd.Cmd, a.exec); ok {
		return res, err
	}
	return a.exec(cmd.Cmd)
}

// exec plays one plain command; a.mu is held.
func (a *aptHost) exec(c string) (*transport.Result, error) {
	var out string
	code := 0
	switch {
	case strings.HasPrefix(c, "dpkg-query"):
		if a.version != "" {
			out = "install ok installed\t" + a.version + "\n"
		}
		out += "demo-web:\n  Installed: (none)\n  Candidate: " + a.candidate + "\n"
	case strings.Contains(c, "apt-get install"):
		m := aptInstallRe.FindStringSubmatch(c)
		if m == nil {
			return &transport.Result{ExitCode: 100, Stderr: []byte("E: bad command " + c)}, nil
		}
		a.version = a.candidate
		if m[1] != "" {
			a.version = m[1]
		}
	case strings.Contains(c, "apt-get remove"):
		a.version = ""
	case strings.HasPrefix(c, "[ -x /etc/init.d/"): // sysv status
		status := 3
		if a.running {
			status = 0
		}
		if a.version != "" {
			out = "exists=yes\n"
		}
		out += fmt.Sprintf("status=%d\nenabled=yes\n", status)
	case strings.HasPrefix(c, "i=0; until"): // verify after start
		if !a.running {
			code = 1
		}
	case strings.Contains(c, "service demo-web stop"):
		a.running = false
	case strings.Contains(c, "service demo-web start"), strings.Contains(c, "service demo-web restart"):
		a.running = true
	default:
		return &transport.Result{ExitCode: 127, Stderr: []byte("unexpected: " + c)}, nil
	}
	return &transport.Result{ExitCode: code, Stdout: []byte(out)}, nil
}

func (a *aptHost) ran() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var s []string
	for _, c := range a.cmds {
		s = append(s, c.Cmd)
	}
	return s
}

var debianFacts = facts.Facts{"package_manager": "apt", "init_system": "sysv"}

// aptLab makes fake Debian hosts with the given installed versions and their facts
// in the cache.
func aptLab(t *testing.T, versions map[string]string) (*harness, map[string]*aptHost) {
	t.Helper()
	hosts := map[string]*fakeHost{}
	apts := map[string]*aptHost{}
	all := map[string]facts.Facts{}
	for name, v := range versions {
		a := &aptHost{version: v, candidate: "3.0", running: v != ""}
		apts[name] = a
		hosts[name] = &fakeHost{run: a.run}
		all[name] = debianFacts
	}
	h := newHarness(hosts)
	seedCache(t, h, all)
	return h, apts
}

func statuses(doc actionDoc) map[string]string {
	m := map[string]string{}
	for _, r := range doc.Hosts {
		m[r.Name] = r.Status
	}
	return m
}

func group(t *testing.T, s actionSummary, name string) map[string][]string {
	t.Helper()
	for _, g := range s.Groups {
		if g.Name == name {
			m := map[string][]string{}
			for _, v := range g.Values {
				if v.Count != len(v.Hosts) {
					t.Errorf("group %s value %s: count %d, hosts %v", name, v.Value, v.Count, v.Hosts)
				}
				m[v.Value] = v.Hosts
			}
			return m
		}
	}
	t.Fatalf("no group %q in %+v", name, s.Groups)
	return nil
}

// Hostile or malformed input is refused with exit 2 before any connection.
func TestActionsRefuseBadInputBeforeDialling(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"shell in package name", []string{"package", "install", "x; rm -rf /"}, "package name"},
		{"version with spaces", []string{"package", "install", "demo-web=1.0 ; reboot"}, "version"},
		{"empty version", []string{"package", "install", "demo-web="}, "empty version"},
		{"leading dash", []string{"package", "status", "-rf"}, ""},
		{"version on update", []string{"package", "update", "demo-web=2.0"}, "takes no version"},
		{"version on remove", []string{"package", "remove", "demo-web=2.0"}, "takes no version"},
		{"no name", []string{"package", "install"}, "missing NAME"},
		{"too many", []string{"package", "install", "a", "b", "c"}, "too many arguments"},
		{"bad batch", []string{"package", "install", "demo-web", "--batch", "0"}, "--batch 0"},
		{"package without verb", []string{"package"}, "missing subcommand"},
		{"unknown verb", []string{"package", "frob", "demo-web"}, "unknown subcommand"},
		{"service name", []string{"service", "restart", "demo-web$(id)"}, "service name"},
		{"service batch sleep", []string{"service", "status", "demo-web", "--batch-sleep", "-1s"}, "--batch-sleep"},
		{"puppet tags", []string{"puppet", "run", "--tags", "web;reboot"}, "puppet tag"},
		{"puppet environment", []string{"puppet", "run", "--environment", "pro duction"}, "puppet environment"},
		{"puppet server", []string{"puppet", "run", "--server", "-x"}, "puppet server"},
		{"puppet concurrency", []string{"puppet", "run", "--concurrency", "-1"}, "--concurrency"},
		{"puppet reason", []string{"puppet", "disable", "--reason", "a\nb"}, "--reason"},
		{"puppet two patterns", []string{"puppet", "status", "h1", "h2"}, "too many arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := aptLab(t, map[string]string{"h1": "1.0", "h2": ""})
			args := slices.Clone(tt.args)
			if !strings.Contains(tt.want, "subcommand") { // the group commands have no flags
				args = append(append(args, "-i", "h1,h2"), sshConfigNone...)
			}
			if code := h.run(t, args...); code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, h.stdout.String(), h.stderrString())
			}
			if !strings.Contains(h.stderrString(), tt.want) {
				t.Errorf("stderr %q lacks %q", h.stderrString(), tt.want)
			}
			if len(h.conn.dialled) != 0 {
				t.Errorf("dialled %v on bad input", h.conn.dialled)
			}
		})
	}
}

func TestPackageInstallChangesThenIsIdempotent(t *testing.T) {
	h, apts := aptLab(t, map[string]string{"h1": "1.0", "h2": "1.0", "h3": "", "h4": "2.0"})
	args := append([]string{"package", "install", "demo-web=2.0", "--json", "--become", "-i", "h1,h2,h3,h4"}, sshConfigNone...)
	if code := h.run(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	doc := parseActionDoc(t, h.stdout.String())
	if doc.Command != "package install demo-web=2.0" {
		t.Errorf("command %q", doc.Command)
	}
	want := map[string]string{"h1": statusChanged, "h2": statusChanged, "h3": statusChanged, "h4": statusOK}
	if got := statuses(doc); !mapsEqual(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	for _, r := range doc.Hosts {
		if r.Backend != "apt" {
			t.Errorf("%s: backend %q", r.Name, r.Backend)
		}
		if apts[r.Name].version != "2.0" {
			t.Errorf("%s: version now %q", r.Name, apts[r.Name].version)
		}
	}
	if d := doc.Hosts[0].Detail; d != "1.0 -> 2.0" {
		t.Errorf("h1 detail %q", d)
	}
	if d := doc.Hosts[2].Detail; d != "absent -> 2.0" {
		t.Errorf("h3 detail %q", d)
	}
	for _, c := range apts["h1"].cmds {
		if c.Become == nil {
			t.Errorf("--become not passed for %q", c.Cmd)
		}
	}
	s := doc.Summary
	if s.Changed != 3 || s.OK != 1 || s.Failed != 0 {
		t.Errorf("summary %+v", s)
	}
	if b := group(t, s, "before"); !slices.Equal(b["1.0"], []string{"h1", "h2"}) || !slices.Equal(b["absent"], []string{"h3"}) || !slices.Equal(b["2.0"], []string{"h4"}) {
		t.Errorf("before %v", b)
	}
	if a := group(t, s, "after"); len(a) != 1 || len(a["2.0"]) != 4 {
		t.Errorf("after %v", a)
	}

	// Again: nothing to do anywhere, and only the status query ran.
	h.stdout.Reset()
	n := len(apts["h1"].ran())
	if code := h.run(t, args...); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, h.stderrString())
	}
	doc = parseActionDoc(t, h.stdout.String())
	if s := doc.Summary; s.OK != 4 || s.Changed != 0 {
		t.Errorf("second run summary %+v", s)
	}
	if ran := apts["h1"].ran()[n:]; len(ran) != 1 || !strings.HasPrefix(ran[0], "dpkg-query") {
		t.Errorf("second run on h1 ran %q, want only the status query", ran)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Text output: one line per host as it finishes, then counts and versions.
func TestPackageStatusTextAndFailures(t *testing.T) {
	h, _ := aptLab(t, map[string]string{"web1": "2.0", "web2": "2.0", "db1": ""})
	h.conn.hosts["down"] = &fakeHost{dialErr: fmt.Errorf("dial: refused: %w", transport.ErrUnreachable)}
	// A host whose facts lack package_manager fails with a reason, not a guess.
	c := &facts.Cache{Dir: h.environ["DROVER_STATE_DIR"] + "/facts", TTL: facts.DefaultTTL}
	if err := c.Store("odd", facts.Facts{"init_system": "sysv"}); err != nil {
		t.Fatal(err)
	}
	code := h.run(t, append([]string{"package", "status", "demo-web", "-i", "web1,web2,db1,odd,down"}, sshConfigNone...)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, h.stderrString())
	}
	out := h.stdout.String()
	for _, want := range []string{
		"web1  ok           2.0 (candidate 3.0)\n",
		"db1   ok           absent (candidate 3.0)\n",
		"odd   failed       the host has no package_manager fact",
		"down  unreachable  dial: refused",
		"\n5 hosts: 3 ok, 1 failed, 1 unreachable\nversions:\n  2.0: 2 hosts\n  absent: 1 host\nfailed: odd\nunreachable: down\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestPackageBatchesOneAfterAnother(t *testing.T) {
	versions := map[string]string{}
	var names []string
	for i := 1; i <= 5; i++ {
		n := fmt.Sprintf("h%d", i)
		names = append(names, n)
		versions[n] = "1.0"
	}
	h, _ := aptLab(t, versions)
	const sleep = 30 * time.Millisecond
	code := h.run(t, append([]string{"package", "install", "demo-web=2.0", "--json", "--batch", "2", "--batch-sleep", sleep.String(),
		"-i", strings.Join(names, ",")}, sshConfigNone...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	doc := parseActionDoc(t, h.stdout.String())
	var batches []int
	first, last := map[int]time.Time{}, map[int]time.Time{}
	for _, r := range doc.Hosts {
		batches = append(batches, r.Batch)
		if f, ok := first[r.Batch]; !ok || r.Started.Before(f) {
			first[r.Batch] = r.Started
		}
		if l, ok := last[r.Batch]; !ok || r.Finished.After(l) {
			last[r.Batch] = r.Finished
		}
	}
	if !slices.Equal(batches, []int{1, 1, 2, 2, 3}) || doc.Summary.Batches != 3 {
		t.Fatalf("batches %v (summary %d)", batches, doc.Summary.Batches)
	}
	for b := 2; b <= 3; b++ {
		if gap := first[b].Sub(last[b-1]); gap < sleep {
			t.Errorf("batch %d started %s after batch %d finished, want ≥ %s", b, gap, b-1, sleep)
		}
	}
}

func TestServiceStopStartAndStatus(t *testing.T) {
	h, apts := aptLab(t, map[string]string{"h1": "2.0", "h2": "2.0", "h3": ""})
	apts["h2"].running = false
	base := append([]string{"-i", "h1,h2,h3", "--json"}, sshConfigNone...)

	if code := h.run(t, append([]string{"service", "status", "demo-web"}, base...)...); code != 0 {
		t.Fatalf("status: exit %d: %s", code, h.stderrString())
	}
	doc := parseActionDoc(t, h.stdout.String())
	if st := group(t, doc.Summary, "states"); !slices.Equal(st["running"], []string{"h1"}) || !slices.Equal(st["stopped"], []string{"h2"}) ||
		!slices.Equal(st["absent"], []string{"h3"}) {
		t.Errorf("states %v", st)
	}
	if r := doc.Hosts[0]; r.Backend != "sysv" || r.Service == nil || !r.Service.Running || r.Detail != "running, enabled" {
		t.Errorf("h1 %+v", r)
	}

	h.stdout.Reset()
	if code := h.run(t, append([]string{"service", "stop", "demo-web", "h1,h2"}, base...)...); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, h.stderrString())
	}
	doc = parseActionDoc(t, h.stdout.String())
	if got := statuses(doc); !mapsEqual(got, map[string]string{"h1": statusChanged, "h2": statusOK}) {
		t.Errorf("stop statuses %v", got)
	}
	if apts["h1"].running {
		t.Error("h1 still running after stop")
	}
	if st := group(t, doc.Summary, "states"); len(st["stopped"]) != 2 {
		t.Errorf("states after stop %v", st)
	}

	// start on a host without the service fails there, exit 1.
	h.stdout.Reset()
	if code := h.run(t, append([]string{"service", "start", "demo-web"}, base...)...); code != 1 {
		t.Fatalf("start: exit %d, want 1: %s", code, h.stderrString())
	}
	doc = parseActionDoc(t, h.stdout.String())
	if got := statuses(doc); !mapsEqual(got, map[string]string{"h1": statusChanged, "h2": statusChanged, "h3": statusFailed}) {
		t.Errorf("start statuses %v", got)
	}
	if !apts["h1"].running || !apts["h2"].running || !strings.Contains(doc.Hosts[2].Error, "not found") {
		t.Errorf("after start: h1 %v h2 %v, h3 error %q", apts["h1"].running, apts["h2"].running, doc.Hosts[2].Error)
	}
}

// --concurrency N: at most N agent runs at once, even with more forks. Each run
// blocks until the test releases it, so the count is exact without any sleep.
func TestPuppetRunConcurrencyLimit(t *testing.T) {
	const n, limit = 6, 2
	var mu sync.Mutex
	active, maxActive := 0, 0
	entered := make(chan string)
	release := make(chan struct{})
	var seen []string
	agent := func(_ context.Context, cmd *transport.Command) (*transport.Result, error) {
		if !strings.Contains(cmd.Cmd, "puppet agent --onetime") {
			return &transport.Result{ExitCode: 127}, nil
		}
		mu.Lock()
		active++
		maxActive = max(maxActive, active)
		seen = append(seen, cmd.Cmd)
		mu.Unlock()
		entered <- "run"
		<-release
		mu.Lock()
		active--
		mu.Unlock()
		summary := "@@summary\nversion:\n  config: 42\nresources:\n  changed: 1\n  failed: 0\n  out_of_sync: 1\n  total: 9\ntime:\n  last_run: 1714557600\n"
		return &transport.Result{ExitCode: 2, Stdout: []byte(summary)}, nil
	}
	hosts := map[string]*fakeHost{}
	var names []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		names = append(names, name)
		hosts[name] = &fakeHost{run: agent}
	}
	h := newHarness(hosts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		inflight, started := 0, 0
		timeout := time.NewTimer(30 * time.Second) // a broken limit must fail, not hang
		defer timeout.Stop()
		for started < n || inflight > 0 {
			if inflight < limit && started < n {
				select {
				case <-entered:
					started++
					inflight++
				case <-timeout.C:
					t.Errorf("only %d runs started", started)
					return
				}
				continue
			}
			release <- struct{}{}
			inflight--
		}
	}()
	code := h.run(t, append([]string{"puppet", "run", "--json", "--concurrency", "2", "--forks", "6", "--tags", "web,db", "--noop",
		"-i", strings.Join(names, ",")}, sshConfigNone...)...)
	<-done
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	if maxActive != limit {
		t.Errorf("at most %d agent runs at once, want exactly %d", maxActive, limit)
	}
	doc := parseActionDoc(t, h.stdout.String())
	if doc.Summary.Changed != n {
		t.Errorf("summary %+v", doc.Summary)
	}
	if r := doc.Hosts[0]; !strings.Contains(r.Detail, "would change (noop): 1 changed, 1 out of sync, 0 failed") || r.After["config_version"] != "42" {
		t.Errorf("h1 %+v", r)
	}
	if len(seen) != n || !strings.Contains(seen[0], "--noop --tags web,db") {
		t.Errorf("agent commands %q", seen)
	}
}

// puppetFake answers steps.Puppet's config and status queries from fixed state.
func puppetFake(disabled string, applying bool, summary string) func(context.Context, *transport.Command) (*transport.Result, error) {
	return func(_ context.Context, cmd *transport.Command) (*transport.Result, error) {
		switch {
		case strings.Contains(cmd.Cmd, "puppet config print agent_catalog_run_lockfile agent_disabled_lockfile"):
			return &transport.Result{Stdout: []byte("agent_catalog_run_lockfile = /s/run.lock\nagent_disabled_lockfile = /s/dis.lock\nstatedir = /s\nlastrunfile = /s/last.yaml\n")}, nil
		case strings.Contains(cmd.Cmd, "/s/dis.lock"):
			var out string
			if applying {
				out += "@@applying 4242\n"
			}
			if disabled != "" {
				out += "@@disabled\n" + `{"disabled_message":"` + disabled + `"}` + "\n"
			}
			if summary != "" {
				out += "@@summary\n" + summary
			}
			return &transport.Result{Stdout: []byte(out)}, nil
		}
		return &transport.Result{ExitCode: 127, Stderr: []byte("unexpected " + cmd.Cmd)}, nil
	}
}

func TestPuppetStatusTotals(t *testing.T) {
	sum := func(changed, failed int, at int64) string {
		return fmt.Sprintf("version:\n  config: 7\nresources:\n  changed: %d\n  failed: %d\n  out_of_sync: %d\ntime:\n  last_run: %d\n", changed, failed, changed, at)
	}
	h := newHarness(map[string]*fakeHost{
		"h1": {run: puppetFake("", false, sum(2, 0, 1714557600))},
		"h2": {run: puppetFake("kernel upgrade", false, sum(0, 1, 1714550000))},
		"h3": {run: puppetFake("", true, "")},
	})
	if code := h.run(t, append([]string{"puppet", "status", "-i", "h1,h2,h3", "--json"}, sshConfigNone...)...); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	doc := parseActionDoc(t, h.stdout.String())
	p := doc.Summary.Puppet
	if p == nil {
		t.Fatal("no puppet totals")
	}
	if p.Enabled != 2 || p.Disabled != 1 || p.Applying != 1 || p.Idle != 2 || p.Changed != 2 || p.Failed != 1 ||
		!slices.Equal(p.FailedHosts, []string{"h2"}) || !slices.Equal(p.NeverRun, []string{"h3"}) ||
		len(p.DisabledHosts) != 1 || p.DisabledHosts[0] != (hostNote{"h2", "kernel upgrade"}) ||
		p.OldestRun == nil || p.OldestRun.Host != "h2" || p.NewestRun.Host != "h1" {
		t.Errorf("totals %+v", p)
	}
	if d := doc.Hosts[1].Detail; d != "disabled (kernel upgrade), idle; last run 2024-05-01T07:53:20Z: 0 changed, 1 failed, 0 out of sync, config 7" {
		t.Errorf("h2 detail %q", d)
	}
}

// actionFixture is a package install across six hosts with every outcome.
func actionFixture() []actionResult {
	v := func(s string) map[string]string {
		if s == "" {
			return map[string]string{"state": "absent", "version": ""}
		}
		return map[string]string{"state": "present", "version": s}
	}
	return []actionResult{
		{Name: "web1", Status: statusChanged, Detail: "1.0 -> 2.0", Before: v("1.0"), After: v("2.0"), Batch: 1},
		{Name: "web2", Status: statusChanged, Detail: "1.0 -> 2.0", Before: v("1.0"), After: v("2.0"), Batch: 1},
		{Name: "web3", Status: statusOK, Detail: "2.0", Before: v("2.0"), After: v("2.0"), Batch: 2},
		{Name: "web4", Status: statusChanged, Detail: "absent -> 2.0", Before: v(""), After: v("2.0"), Batch: 2},
		{Name: "web5", Status: statusFailed, Error: "package demo-web: apt present exited 100: E: Unable to locate package", Before: v(""), Batch: 3},
		{Name: "web6-long", Status: statusUnreachable, Error: "dial tcp 127.1.0.6:22: connect: connection refused: host unreachable", Batch: 3},
	}
}

func TestGoldenPackageInstall(t *testing.T) {
	rs := actionFixture()
	var b bytes.Buffer
	pal := newPalette(false)
	for _, r := range rs {
		b.WriteString(actionLine(pal, len("web6-long"), r))
	}
	groups := []groupSpec{{"before", stateVersion(func(r actionResult) map[string]string { return r.Before })},
		{"after", stateVersion(func(r actionResult) map[string]string { return r.After })}}
	sum := summarizeActions(rs, groups, false, 2345*time.Millisecond)
	if err := renderActionSummary(&b, pal, sum, rs, true); err != nil {
		t.Fatal(err)
	}
	golden(t, "package-install.txt", b.Bytes())
}

func TestGoldenPackageStatus(t *testing.T) {
	var rs []actionResult
	for i, v := range []string{"2.0", "2.0", "1.0", "", "2.0"} {
		st := steps.PkgStatus{Name: "demo-web", Installed: v != "", Version: v, Candidate: "3.0"}
		rs = append(rs, actionResult{Name: fmt.Sprintf("h%d", i+1), Status: statusOK, Package: &st, Batch: 1})
	}
	var b bytes.Buffer
	sum := summarizeActions(rs, []groupSpec{{"versions", statusVersion}}, false, 120*time.Millisecond)
	if err := renderActionSummary(&b, newPalette(false), sum, rs, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "package-status.txt", b.Bytes())
}

func TestGoldenPuppetStatus(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	rs := []actionResult{
		{Name: "h1", Status: statusOK, Puppet: &steps.PuppetStatus{Enabled: true, LastRun: &steps.LastRunSummary{ConfigVersion: "7", LastRun: at, Changed: 3, OutOfSync: 3}}},
		{Name: "h2", Status: statusOK, Puppet: &steps.PuppetStatus{Enabled: false, DisabledReason: "maintenance", LastRun: &steps.LastRunSummary{LastRun: at.Add(-time.Hour), Failed: 2}}},
		{Name: "h3", Status: statusOK, Puppet: &steps.PuppetStatus{Enabled: true, Applying: true, PID: 99}},
		{Name: "h4", Status: statusUnreachable, Error: "no answer within 10s: context deadline exceeded"},
	}
	var b bytes.Buffer
	pal := newPalette(false)
	for i := range rs {
		if rs[i].Puppet != nil {
			rs[i].Detail = puppetStatusText(*rs[i].Puppet)
		}
		b.WriteString(actionLine(pal, 2, rs[i]))
	}
	sum := summarizeActions(rs, nil, false, time.Second)
	sum.Puppet = puppetTotalsOf(rs)
	if err := renderActionSummary(&b, pal, sum, rs, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "puppet-status.txt", b.Bytes())
	b.Reset()
	if err := writeJSON(&b, sum); err != nil {
		t.Fatal(err)
	}
	golden(t, "puppet-status-summary.json", b.Bytes())
}
