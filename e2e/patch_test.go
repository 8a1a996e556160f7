package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/report"
)

// patchPlaybook is examples/nightly-patching.hcl cut down for the lab: no window,
// lock or Prometheus gate, the broken demo-web release excluded, and a short reboot
// timeout.
const patchPlaybook = `
playbook "lab-patching" {}

targets {
  hosts = [%s]
}

canary {
  hosts = 1
}

batch "early" {
  hosts = 2
  size  = 1
}

remaining {}

steps {
  patch  { exclude = ["demo-web"] }
  reboot { timeout = "3m" }
}

health {
  tcp "ssh" {
    address = "${host.address}:22"
  }
  command "tool" {
    run = "demo-tool | grep -qx 'demo-tool 1.1'"
  }
}
`

// TestPatchAndReboot: four hosts on demo-tool 1.0, two of them needing a reboot. A
// patch + reboot rollout leaves demo-tool 1.1 everywhere; only the two marked hosts
// reboot (a new boot id), come back and pass their health checks over the new
// connection; the others keep their boot id.
func TestPatchAndReboot(t *testing.T) {
	hosts := []string{"h13", "h14", "h15", "h16"}
	marked := map[string]bool{"h14": true, "h16": true}
	ctx := context.Background()
	exec := func(h, script string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		out, err := shared.lab.Exec(cctx, h, "sh", "-c", script)
		if err != nil {
			t.Fatalf("%s: %q: %v\n%s", h, script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	const toolVersion = "dpkg-query -W -f '${db:Status-Abbrev}${Version}' demo-tool 2>/dev/null | sed -n 's/^ii *//p'; true"

	// Setup, undone at the end: demo-tool as it was, no reboot marker.
	prior := map[string]string{}
	for _, h := range hosts {
		prior[h] = exec(h, toolVersion)
	}
	t.Cleanup(func() {
		for _, h := range hosts {
			restore := "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q demo-tool"
			if prior[h] != "" {
				restore = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades demo-tool=" + prior[h]
			}
			exec(h, "rm -f /run/reboot-required /run/reboot-required.pkgs; "+restore+" >/dev/null")
		}
	})
	boot := map[string]string{}
	for _, h := range hosts {
		exec(h, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades demo-tool=1.0 >/dev/null")
		if v := exec(h, toolVersion); v != "1.0" {
			t.Fatalf("setup: %s has demo-tool %q, want 1.0", h, v)
		}
		if marked[h] {
			exec(h, "touch /run/reboot-required && echo demo-tool >/run/reboot-required.pkgs")
		} else {
			exec(h, "rm -f /run/reboot-required")
		}
		id, err := shared.lab.BootID(h)
		if err != nil {
			t.Fatal(err)
		}
		boot[h] = id
	}

	dir := t.TempDir()
	pb := filepath.Join(dir, "patching.hcl")
	if err := os.WriteFile(pb, []byte(fmt.Sprintf(patchPlaybook, `"`+strings.Join(hosts, `", "`)+`"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := filepath.Join(dir, "report.json")
	r := rolloutDrover(t, t.TempDir(), append([]string{"run", pb, "--yes", "--report", rep}, labArgs()...)...)
	t.Logf("drover run: exit %d in %s\n%s", r.code, r.elapsed.Round(time.Millisecond), r.stdout)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	got := rolloutReport(t, rep)
	if got.Status != report.Succeeded {
		t.Errorf("report status %s, want succeeded", got.Status)
	}

	seen := map[string]bool{}
	for _, st := range got.Stages {
		for _, h := range st.Hosts {
			seen[h.Name] = true
			steps := map[string]report.Step{}
			for _, s := range h.Steps {
				steps[s.Name] = s
			}
			p := steps["patch"]
			if p.Status != "changed" || p.Detail != "1 upgraded: demo-tool 1.0 -> 1.1" {
				t.Errorf("%s: patch step %s %q, want changed \"1 upgraded: demo-tool 1.0 -> 1.1\"", h.Name, p.Status, p.Detail)
			}
			rb := steps["reboot"]
			switch {
			case marked[h.Name] && (rb.Status != "changed" || !strings.HasPrefix(rb.Detail, "rebooted (boot id "+boot[h.Name][:8]+" -> ")):
				t.Errorf("%s (reboot required): reboot step %s %q, want changed \"rebooted (boot id %s -> …\"", h.Name, rb.Status, rb.Detail, boot[h.Name][:8])
			case !marked[h.Name] && (rb.Status != "ok" || rb.Detail != "no reboot required"):
				t.Errorf("%s: reboot step %s %q, want ok \"no reboot required\"", h.Name, rb.Status, rb.Detail)
			}
			for _, hc := range []string{"health: tcp ssh", "health: command tool"} {
				if steps[hc].Status != "ok" {
					t.Errorf("%s: %s %s %q, want ok", h.Name, hc, steps[hc].Status, steps[hc].Detail)
				}
			}
			if marked[h.Name] {
				t.Logf("%s: %s (%d ms)", h.Name, rb.Detail, rb.DurationMS)
			}
		}
	}
	for _, h := range hosts {
		if !seen[h] {
			t.Errorf("%s missing from the report", h)
		}
		if v := exec(h, toolVersion); v != "1.1" {
			t.Errorf("%s: demo-tool %q after the run, want 1.1", h, v)
		}
		id, _ := shared.lab.BootID(h)
		switch {
		case marked[h] && id == boot[h]:
			t.Errorf("%s needed a reboot but its boot id %s did not change", h, id)
		case !marked[h] && id != boot[h]:
			t.Errorf("%s did not need a reboot but its boot id changed %s -> %s", h, boot[h], id)
		}
		if marked[h] && exec(h, "test -e /run/reboot-required && echo yes || echo no") != "no" {
			t.Errorf("%s: /run/reboot-required survived the reboot", h)
		}
	}
}
