package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// planJSON is the part of `drover plan --json` these tests check.
type planJSON struct {
	Matched int `json:"matched"`
	Targets int `json:"targets"`
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
	args := append([]string{"plan", "../examples/demo-web-canary.hcl", "--connect-timeout", "2s"}, labArgs()...)
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
	if len(steps) != 3 || steps[0].Kind != "package" || !strings.Contains(strings.Join(steps[0].Commands, " "), "demo-web version 2.0") {
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
