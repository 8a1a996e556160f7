package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// planJSON is the part of `drover plan --json` these tests check.
type planJSON struct {
	Matched int `json:"matched"`
	Targets int `json:"targets"`
	Live    *struct {
		Hosts []struct {
			Host   string `json:"host"`
			Status string `json:"status"`
			Error  string `json:"error"`
			Steps  []struct {
				Kind   string `json:"kind"`
				Name   string `json:"name"`
				Mark   string `json:"mark"`
				Detail string `json:"detail"`
				Error  string `json:"error"`
			} `json:"steps"`
		} `json:"hosts"`
		WouldChange []string `json:"would_change"`
		NoChange    []string `json:"no_change"`
		Errors      []string `json:"errors"`
	} `json:"live"`
	LeftOut []struct {
		Host  string `json:"host"`
		Facts []struct {
			Fact  string `json:"fact"`
			Value any    `json:"value"`
		} `json:"facts"`
	} `json:"left_out"`
	Unreachable []struct {
		Host  string `json:"host"`
		Error string `json:"error"`
	} `json:"unreachable"`
	Stages []struct {
		Name    string     `json:"name"`
		Kind    string     `json:"kind"`
		Batches [][]string `json:"batches"`
	} `json:"stages"`
	Previews []struct {
		Host  string `json:"host"`
		Steps []struct {
			Kind     string   `json:"kind"`
			Commands []string `json:"commands"`
			Skipped  bool     `json:"skipped"`
		} `json:"steps"`
	} `json:"previews"`
}

func parsePlan(t *testing.T, r result) planJSON {
	t.Helper()
	var doc planJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("plan --json printed no JSON: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return doc
}

// TestPlanDemoCanaryWithFrozenHost plans the demo rollout (targets: all hosts whose
// os.family is Debian, i.e. the whole lab, Ubuntu included) with one host frozen:
// the frozen host is listed unreachable and every other host is in exactly one
// batch, the canary first.
func TestPlanDemoCanaryWithFrozenHost(t *testing.T) {
	const frozen = "h12"
	if err := shared.lab.Freeze(frozen); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := shared.lab.Thaw(frozen); err != nil {
			t.Errorf("thaw %s: %v", frozen, err)
		}
	})
	home := t.TempDir()
	args := append([]string{"plan", "../examples/demo-web-canary.hcl", "--connect-timeout", "10s"}, labArgs()...)
	r := droverHome(t, home, append(args, "--json")...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (one host unreachable)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	doc := parsePlan(t, r)
	if len(doc.Unreachable) != 1 || doc.Unreachable[0].Host != frozen {
		t.Fatalf("unreachable %+v, want only %s", doc.Unreachable, frozen)
	}
	if doc.Matched != labHosts || doc.Targets != labHosts-1 || len(doc.LeftOut) != 0 {
		t.Errorf("matched %d, targets %d, left out %d; want %d, %d, 0", doc.Matched, doc.Targets, len(doc.LeftOut), labHosts, labHosts-1)
	}
	seen := map[string]int{}
	for _, st := range doc.Stages {
		for _, b := range st.Batches {
			for _, h := range b {
				seen[h]++
			}
		}
	}
	for _, h := range shared.lab.Hosts {
		want := 1
		if h.Name == frozen {
			want = 0
		}
		if seen[h.Name] != want {
			t.Errorf("%s is in %d batches, want %d", h.Name, seen[h.Name], want)
		}
	}
	if len(doc.Stages) != 3 || doc.Stages[0].Kind != "canary" || len(doc.Stages[0].Batches) != 1 || len(doc.Stages[0].Batches[0]) != 1 {
		t.Fatalf("stages %+v, want a one-host canary, then early and remaining", doc.Stages)
	}
	// batch "early": 25% of 19 targets = 5 hosts, in batches of 2.
	if early := doc.Stages[1]; early.Name != "early" || len(early.Batches) != 3 || len(early.Batches[0]) != 2 {
		t.Errorf("early stage %+v, want 5 hosts in batches of 2", early)
	}
	canary := doc.Stages[0].Batches[0][0]
	if len(doc.Previews) != 1 || doc.Previews[0].Host != canary {
		t.Fatalf("previews %+v, want the canary %s", doc.Previews, canary)
	}
	steps := doc.Previews[0].Steps
	if len(steps) != 3 || steps[0].Kind != "package" || !strings.Contains(strings.Join(steps[0].Commands, " "), "apt-get install -y -q -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --allow-downgrades demo-web=2.0") {
		t.Errorf("canary steps %+v, want package demo-web 2.0 first", steps)
	}

	// The facts are cached now: --cached plans every reachable host without
	// connecting, and names the frozen one as having no cached facts.
	r = droverHome(t, home, append(args, "--cached")...)
	if r.code != 2 || !strings.Contains(r.stderr, "no cached facts for 1 of 20 target hosts: "+frozen) {
		t.Errorf("--cached: exit %d, want 2 naming %s\nstderr: %s", r.code, frozen, r.stderr)
	}

	// The text view names the frozen host as unreachable.
	r = droverHome(t, home, args...)
	if r.code != 1 || !strings.Contains(r.stdout, "Unreachable") || !strings.Contains(r.stdout, frozen+"  unreachable:") {
		t.Errorf("text plan: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// TestPlanWhereNamesFactValue narrows the lab to os.name Debian: the Ubuntu hosts
// (every fifth) are left out and the plan says so, with the value it saw.
func TestPlanWhereNamesFactValue(t *testing.T) {
	pb := filepath.Join(t.TempDir(), "debian-only.hcl")
	src := `playbook "debian-only" {}
targets { where = facts.os.name == "Debian" }
batch "pairs" { size = 2 }
steps {
  service "ssh" {
    state = "reloaded"
    when  = facts.role == "web"
  }
}
`
	if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := drover(t, append([]string{"plan", pb, "--json", "-v"}, labArgs()...)...)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("plan of %d hosts (gathering facts) took %s", labHosts, time.Since(start).Round(time.Millisecond))
	doc := parsePlan(t, r)
	left := map[string]any{}
	for _, l := range doc.LeftOut {
		if len(l.Facts) != 1 || l.Facts[0].Fact != "facts.os.name" {
			t.Errorf("%s left out with %+v, want facts.os.name", l.Host, l.Facts)
			continue
		}
		left[l.Host] = l.Facts[0].Value
	}
	for _, h := range []string{"h5", "h10", "h15", "h20"} {
		if left[h] != "Ubuntu" {
			t.Errorf("%s: left out with %v, want os.name Ubuntu", h, left[h])
		}
	}
	if len(left) != 4 || doc.Targets != labHosts-4 {
		t.Errorf("left out %v, targets %d; want the 4 Ubuntu hosts out, %d targeted", left, doc.Targets, labHosts-4)
	}
	// -v previews every targeted host; the when is evaluated per host (role=web on odd N).
	if len(doc.Previews) != doc.Targets {
		t.Fatalf("%d previews, want %d", len(doc.Previews), doc.Targets)
	}
	for _, p := range doc.Previews {
		n := strings.TrimPrefix(p.Host, "h")
		odd := strings.ContainsAny(n[len(n)-1:], "13579")
		if len(p.Steps) != 1 || p.Steps[0].Skipped == odd {
			t.Errorf("%s: steps %+v; want the service step skipped only on db (even) hosts", p.Host, p.Steps)
		}
	}
}

// pkgState is what a test compares before and after plan --live: dpkg's view of
// every package and a checksum of its status database.
func pkgState(t *testing.T, host string) (packages, statusMD5 string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pk, err := shared.lab.Exec(ctx, host, "dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n")
	if err != nil {
		t.Fatalf("%s: dpkg-query: %v\n%s", host, err, pk)
	}
	sum, err := shared.lab.Exec(ctx, host, "md5sum", "/var/lib/dpkg/status")
	if err != nil {
		t.Fatalf("%s: md5sum: %v\n%s", host, err, sum)
	}
	return string(pk), strings.Fields(string(sum))[0]
}

// TestPlanLiveChangesNothing installs demo-web 1.0 on four hosts and 2.0 on a
// fifth, then asks `plan --live` about an upgrade to 2.0: the 1.0 hosts would
// change "1.0 -> 2.0", the 2.0 host would not, and every host's package
// database is byte-for-byte what it was.
func TestPlanLiveChangesNothing(t *testing.T) {
	hosts := map[string]string{"h13": "1.0", "h14": "1.0", "h15": "1.0", "h16": "1.0", "h17": "2.0"}
	names := []string{"h13", "h14", "h15", "h16", "h17"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, h := range names {
			if out, err := shared.lab.Exec(ctx, h, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "-q", "demo-web"); err != nil {
				t.Errorf("%s: purge demo-web: %v\n%s", h, err, out)
			}
		}
	})
	for _, h := range names {
		out, err := shared.lab.Exec(ctx, h, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--allow-downgrades", "demo-web="+hosts[h])
		if err != nil {
			t.Fatalf("%s: install demo-web %s: %v\n%s", h, hosts[h], err, out)
		}
	}
	type state struct{ packages, md5 string }
	before := map[string]state{}
	for _, h := range names {
		p, m := pkgState(t, h)
		if !strings.Contains(p, "demo-web "+hosts[h]+" install ok installed") {
			t.Fatalf("%s: demo-web %s not installed:\n%s", h, hosts[h], p)
		}
		before[h] = state{p, m}
	}

	r := drover(t, "plan", "../examples/demo-web-canary.hcl", "--live", "--var", "version=2.0", "--json", "-v",
		"-i", strings.Join(names, ","), "--ssh-config", shared.lab.SSHConfig)
	t.Logf("plan --live of %d hosts took %s", len(names), r.elapsed.Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	doc := parsePlan(t, r)
	if doc.Live == nil || len(doc.Live.Hosts) != len(names) {
		t.Fatalf("live section %+v, want all %d hosts", doc.Live, len(names))
	}
	for _, lh := range doc.Live.Hosts {
		if len(lh.Steps) == 0 || lh.Steps[0].Kind != "package" {
			t.Errorf("%s: steps %+v, want the package step first", lh.Host, lh.Steps)
			continue
		}
		pkg := lh.Steps[0]
		wantMark, wantDetail, wantHost := "would change", "1.0 -> 2.0", "would change"
		if hosts[lh.Host] == "2.0" {
			wantMark, wantDetail, wantHost = "no change", "2.0", "no change"
		}
		if pkg.Mark != wantMark || pkg.Detail != wantDetail || lh.Status != wantHost {
			t.Errorf("%s: host %q, package %q %q (%s); want %q, %q %q", lh.Host, lh.Status, pkg.Mark, pkg.Detail, pkg.Error, wantHost, wantMark, wantDetail)
		}
		// The smoke command is never run in check mode.
		if last := lh.Steps[len(lh.Steps)-1]; last.Kind != "command" || last.Mark != "would run" {
			t.Errorf("%s: last step %+v, want the smoke command marked would run", lh.Host, last)
		}
	}
	if !slices.Equal(doc.Live.NoChange, []string{"h17"}) || len(doc.Live.WouldChange) != 4 || len(doc.Live.Errors) != 0 {
		t.Errorf("would change %v, no change %v, errors %v", doc.Live.WouldChange, doc.Live.NoChange, doc.Live.Errors)
	}

	for _, h := range names {
		p, m := pkgState(t, h)
		if m != before[h].md5 || p != before[h].packages {
			t.Errorf("%s: package state changed by plan --live: md5 %s -> %s\nbefore:\n%s\nafter:\n%s", h, before[h].md5, m, before[h].packages, p)
		}
	}
}
