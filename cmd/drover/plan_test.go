package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/inventory"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/transport"
)

// TestValidateInvalid runs validate on broken playbooks through the command line:
// exit 2, the diagnostics on stderr, nothing on stdout.
func TestValidateInvalid(t *testing.T) {
	corpus := "../../playbook/testdata/invalid/"
	tests := []struct {
		golden string
		args   []string
	}{
		{"validate-unknown-block.txt", []string{corpus + "03-unknown-block.hcl"}},
		{"validate-bad-duration.txt", []string{corpus + "07-bad-duration.hcl"}},
		{"validate-unknown-function.txt", []string{corpus + "13-unknown-function.hcl"}},
		{"validate-bad-service-state.txt", []string{corpus + "21-bad-service-state.hcl"}},
		{"validate-undeclared-var.txt", []string{corpus + "19-undeclared-var-flag.hcl", "--var", "nope=1"}},
		// Every problem at once, in file order.
		{"validate-many-errors.txt", []string{"testdata/plan/many-errors.hcl"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			h := newHarness(nil)
			if code := h.run(t, append([]string{"validate"}, tt.args...)...); code != exitBadInput {
				t.Fatalf("exit %d, want 2\n%s", code, h.stderrString())
			}
			if h.stdout.Len() != 0 {
				t.Errorf("stdout not empty: %q", h.stdout.String())
			}
			golden(t, tt.golden, []byte(h.stderrString()))
		})
	}
}

func TestValidateManyErrorsAllReported(t *testing.T) {
	h := newHarness(nil)
	h.run(t, "validate", "testdata/plan/many-errors.hcl")
	out := h.stderrString()
	if n := strings.Count(out, ": Error: "); n < 5 {
		t.Errorf("%d errors reported, want at least 5:\n%s", n, out)
	}
}

func TestValidateExamples(t *testing.T) {
	paths, err := filepath.Glob("../../examples/*.hcl")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			h := newHarness(nil)
			if code := h.run(t, "validate", path); code != exitOK {
				t.Fatalf("exit %d\n%s", code, h.stderrString())
			}
			if h.stdout.Len() != 0 || h.stderr.Len() != 0 {
				t.Errorf("output on a valid playbook: stdout %q stderr %q", h.stdout.String(), h.stderrString())
			}
		})
	}
}

// Variables come from --var, --var-file and DROVER_VAR_*; a bad value from any of
// them fails the example's validation block.
func TestValidateVariableInputs(t *testing.T) {
	varFile := filepath.Join(t.TempDir(), "vars.hcl")
	if err := os.WriteFile(varFile, []byte(`version = "bad version!"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"default", nil, nil, exitOK},
		{"flag", []string{"--var", "version=bad version!"}, nil, exitBadInput},
		{"flag ok", []string{"--var", "version=2.1-1"}, nil, exitOK},
		{"file", []string{"--var-file", varFile}, nil, exitBadInput},
		{"environment", nil, map[string]string{"DROVER_VAR_version": "bad version!"}, exitBadInput},
		{"flag wins over environment", []string{"--var", "version=3.0"}, map[string]string{"DROVER_VAR_version": "bad version!"}, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(nil)
			for k, v := range tt.env {
				h.environ[k] = v
			}
			args := append([]string{"validate", "../../examples/demo-web-canary.hcl"}, tt.args...)
			if code := h.run(t, args...); code != tt.want {
				t.Fatalf("exit %d, want %d\n%s", code, tt.want, h.stderrString())
			}
			if tt.want == exitBadInput && !strings.Contains(h.stderrString(), "version must be a Debian version") {
				t.Errorf("stderr lacks the validation message:\n%s", h.stderrString())
			}
		})
	}
}

// With an inventory, validate checks fact names against the cache, without
// connecting; both typos are reported.
func TestValidateUnknownFactFromCache(t *testing.T) {
	h := newHarness(nil)
	seedCache(t, h, map[string]facts.Facts{"h1": labFacts("web", "dc1", "Debian", 2)})
	code := h.run(t, "validate", "testdata/plan/typo.hcl", "-i", "h1,h2")
	if code != exitBadInput {
		t.Fatalf("exit %d, want 2\n%s", code, h.stderrString())
	}
	golden(t, "validate-unknown-fact.txt", []byte(h.stderrString()))
	if len(h.conn.dialled) != 0 {
		t.Errorf("validate connected to %v", h.conn.dialled)
	}
	// Without an inventory there is nothing to check fact names against.
	h = newHarness(nil)
	if code := h.run(t, "validate", "testdata/plan/typo.hcl"); code != exitOK {
		t.Errorf("without -i: exit %d, want 0\n%s", code, h.stderrString())
	}
}

// planFacts is the imaginary fleet of the plan tests: h4 is RedHat and h7 has no
// os.family (both left out by where), h5 has no cached facts and does not answer,
// h8 is excluded by the playbook's pattern.
func planFacts() map[string]facts.Facts {
	host := func(family, dc, initSystem string) facts.Facts {
		f := facts.Facts{"datacenter": dc, "init_system": initSystem, "package_manager": "apt",
			"os": map[string]any{"family": family, "name": family}}
		return f
	}
	return map[string]facts.Facts{
		"h1": host("Debian", "dc1", "systemd"),
		"h2": host("Debian", "dc1", "sysv"),
		"h3": host("Debian", "dc2", "systemd"),
		"h4": host("RedHat", "dc2", "systemd"),
		"h6": host("Debian", "dc1", "systemd"),
		"h7": {"datacenter": "dc2", "os": map[string]any{"name": "Alpine"}},
		"h8": host("Debian", "dc1", "systemd"),
	}
}

const planInventory = "h1,h2,h3,h4,h5,h6,h7,h8"

func planHarness(t *testing.T) *harness {
	h := newHarness(map[string]*fakeHost{
		"h5": {dialErr: fmt.Errorf("dial tcp 127.1.0.5:22: connect: connection refused: %w", transport.ErrUnreachable)},
	})
	seedCache(t, h, planFacts())
	return h
}

func TestPlanGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		{"plan.txt", nil},
		{"plan.json", []string{"--json"}},
		{"plan-all-hosts.txt", []string{"-v"}},
		{"plan-host.txt", []string{"--host", "h2"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			h := planHarness(t)
			args := append(append([]string{"plan", "testdata/plan/web.hcl", "-i", planInventory}, sshConfigNone...), tt.args...)
			// h5 is unreachable: the plan is complete but says so, exit 1.
			if code := h.run(t, args...); code != exitHostsFailed {
				t.Fatalf("exit %d, want 1\n%s", code, h.stderrString())
			}
			golden(t, tt.golden, h.stdout.Bytes())
			if slices.ContainsFunc(h.conn.dialled, func(n string) bool { return n != "h5" }) {
				t.Errorf("dialled %v; only h5 has no fresh cached facts", h.conn.dialled)
			}
			for _, out := range []string{h.stdout.String(), h.stderrString()} {
				if strings.Contains(out, "s3cr3t-t0ken") {
					t.Errorf("the sensitive variable's value was printed:\n%s", out)
				}
			}
		})
	}
}

// The JSON plan is data a cron job can check: every targeted host in exactly one
// batch, the left-out hosts with their fact values.
func TestPlanJSONCoversTargetsOnce(t *testing.T) {
	h := planHarness(t)
	h.run(t, append([]string{"plan", "testdata/plan/web.hcl", "-i", planInventory, "--json"}, sshConfigNone...)...)
	var doc planDoc
	if err := json.Unmarshal(h.stdout.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, h.stdout.String())
	}
	count := map[string]int{}
	for _, st := range doc.Stages {
		for _, b := range st.Batches {
			for _, n := range b {
				count[n]++
			}
		}
	}
	want := map[string]int{"h1": 1, "h2": 1, "h3": 1, "h6": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) || doc.Targets != 4 || doc.Matched != 7 {
		t.Errorf("batches cover %v (targets %d, matched %d), want %v, 4, 7", count, doc.Targets, doc.Matched, want)
	}
	got := map[string]string{}
	for _, l := range doc.LeftOut {
		got[l.Host] = factValuesText(l.Facts)
	}
	wantLeft := map[string]string{"h4": `facts.os.family = "RedHat"`, "h7": "facts.os.family is not set"}
	if fmt.Sprint(got) != fmt.Sprint(wantLeft) {
		t.Errorf("left out %v, want %v", got, wantLeft)
	}
	if len(doc.Unreachable) != 1 || doc.Unreachable[0].Host != "h5" {
		t.Errorf("unreachable %+v, want h5", doc.Unreachable)
	}
}

// --cached with nothing cached names the hosts and never connects.
func TestPlanCachedEmptyCache(t *testing.T) {
	h := newHarness(nil)
	h.environ["DROVER_STATE_DIR"] = t.TempDir()
	code := h.run(t, append([]string{"plan", "--cached", "../../examples/demo-web-canary.hcl", "-i", "h1,h2,h3"}, sshConfigNone...)...)
	if code != exitBadInput {
		t.Fatalf("exit %d, want 2\n%s", code, h.stderrString())
	}
	if want := "no cached facts for 3 of 3 target hosts: h1, h2, h3"; !strings.Contains(h.stderrString(), want) {
		t.Errorf("stderr %q lacks %q", h.stderrString(), want)
	}
	if len(h.conn.dialled) != 0 || h.stdout.Len() != 0 {
		t.Errorf("dialled %v, stdout %q; want no connection and no plan", h.conn.dialled, h.stdout.String())
	}
}

// --cached uses stale facts too (with a warning) and still never connects.
func TestPlanCachedStale(t *testing.T) {
	h := newHarness(nil)
	redhat := planFacts()["h4"]
	seedCache(t, h, map[string]facts.Facts{"h1": redhat, "h8": redhat})
	code := h.run(t, append([]string{"plan", "--cached", "--fact-cache-ttl", "0s", "testdata/plan/web.hcl", "-i", "h1,h8"}, sshConfigNone...)...)
	// h1 is RedHat: the where leaves nothing, which is exit 1.
	if code != exitHostsFailed {
		t.Fatalf("exit %d, want 1\n%s", code, h.stderrString())
	}
	for _, want := range []string{"older than --fact-cache-ttl: h1", "no target hosts"} {
		if !strings.Contains(h.stderrString(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, h.stderrString())
		}
	}
	if !strings.Contains(h.stdout.String(), "No host is left to run on.") {
		t.Errorf("stdout:\n%s", h.stdout.String())
	}
	if len(h.conn.dialled) != 0 {
		t.Errorf("dialled %v", h.conn.dialled)
	}
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown fact", []string{"testdata/plan/typo.hcl"}, exitBadInput, `No inventory host has the fact "os.famliy"`},
		{"unknown fact in when", []string{"testdata/plan/typo.hcl"}, exitBadInput, `No inventory host has the fact "rol"`},
		{"host left out", []string{"testdata/plan/web.hcl", "--host", "h4"}, exitBadInput, "--host h4: left out by targets.where"},
		{"host unreachable", []string{"testdata/plan/web.hcl", "--host", "h5"}, exitBadInput, "--host h5: unreachable"},
		{"host not targeted", []string{"testdata/plan/web.hcl", "--host", "h8"}, exitBadInput, "--host h8: not a target"},
		{"no playbook", nil, exitBadInput, "missing PLAYBOOK"},
		{"bad playbook", []string{"testdata/plan/many-errors.hcl"}, exitBadInput, "Unsupported block type"},
		{"cached and refresh", []string{"testdata/plan/web.hcl", "--cached", "--refresh"}, exitBadInput, "--cached never gathers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := planHarness(t)
			args := append(append([]string{"plan", "-i", planInventory}, sshConfigNone...), tt.args...)
			if code := h.run(t, args...); code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, h.stderrString())
			}
			if !strings.Contains(h.stderrString(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, h.stderrString())
			}
			if h.stdout.Len() != 0 {
				t.Errorf("stdout not empty: %s", h.stdout.String())
			}
		})
	}
}

// A pattern that selects nothing (a known but empty group) is an empty target
// set: a clear message and exit 1, not a usage error.
func TestPlanEmptyPattern(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.ini")
	pb := filepath.Join(dir, "pb.hcl")
	if err := os.WriteFile(inv, []byte("h1\n[web]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pb, []byte("playbook \"p\" {}\ntargets { hosts = [\"web\"] }\nsteps {\n command \"a\" { run = \"true\" }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(nil)
	h.environ["DROVER_STATE_DIR"] = dir
	code := h.run(t, append([]string{"plan", pb, "-i", inv}, sshConfigNone...)...)
	if code != exitHostsFailed {
		t.Fatalf("exit %d, want 1\n%s", code, h.stderrString())
	}
	if !strings.Contains(h.stderrString(), `no target hosts: targets.hosts ["web"] matches no host`) {
		t.Errorf("stderr:\n%s", h.stderrString())
	}
}

func TestSpecPreviewer(t *testing.T) {
	yes := true
	hf := map[string]any{"package_manager": "apt", "init_system": "systemd"}
	tests := []struct {
		spec playbook.StepSpec
		want []string
	}{
		{playbook.StepSpec{Package: &playbook.PackageSpec{Name: "nginx", Version: "1.2", State: "present"}}, []string{"install package nginx version 1.2 (apt)"}},
		{playbook.StepSpec{Package: &playbook.PackageSpec{Name: "nginx", State: "present"}}, []string{"install package nginx (any version) (apt)"}},
		{playbook.StepSpec{Package: &playbook.PackageSpec{Name: "nginx", State: "latest"}}, []string{"upgrade package nginx to the latest version (apt)"}},
		{playbook.StepSpec{Package: &playbook.PackageSpec{Name: "nginx", State: "absent"}}, []string{"remove package nginx (apt)"}},
		{playbook.StepSpec{Service: &playbook.ServiceSpec{Name: "nginx", State: "reloaded", Enabled: &yes}},
			[]string{"service nginx: reloaded (systemd)", "enable service nginx at boot (systemd)"}},
		{playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run", Tags: []string{"a", "b"}, Noop: true}},
			[]string{"puppet agent --onetime --no-daemonize --tags a,b --noop"}},
		{playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "disable", Reason: "drover's run"}},
			[]string{`puppet agent --disable 'drover'"'"'s run'`}},
		{playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run", Manifest: "/srv/site.pp"}}, []string{"puppet apply /srv/site.pp"}},
		{playbook.StepSpec{Command: &playbook.CommandSpec{Run: "make install", Creates: "/usr/bin/x"}},
			[]string{"make install", "(skipped when /usr/bin/x exists)"}},
		{playbook.StepSpec{Upload: &playbook.UploadSpec{Source: "/a", Destination: "/b", Mode: 0o600, Owner: "root"}},
			[]string{"upload /a -> /b (mode 0600, owner root)"}},
		{playbook.StepSpec{Upload: &playbook.UploadSpec{Content: "abc", HasContent: true, Destination: "/b"}},
			[]string{"upload 3 bytes of inline content -> /b (mode 0644)"}},
		{playbook.StepSpec{Patch: &playbook.PatchSpec{SecurityOnly: true, Exclude: []string{"kernel"}}},
			[]string{"apply security updates (apt), excluding kernel"}},
		{playbook.StepSpec{Reboot: &playbook.RebootSpec{}}, []string{"reboot if the system requires it, then wait for SSH to return"}},
	}
	for _, tt := range tests {
		got, err := specPreviewer{}.Commands(&tt.spec, hf)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Commands = %q, %v; want %q", got, err, tt.want)
		}
	}
	if _, err := (specPreviewer{}).Commands(&playbook.StepSpec{}, hf); err == nil {
		t.Error("an empty spec previewed without error")
	}
}

// A previewer error (the steps package refusing a name, say) is shown on the step
// and fails the plan.
type refusingPreviewer struct{}

func (refusingPreviewer) Commands(*playbook.StepSpec, map[string]any) ([]string, error) {
	return nil, errors.New("package name refused")
}

func TestPlanPreviewerError(t *testing.T) {
	p, files, diags := playbook.Load("testdata/plan/web.hcl", playbook.VarInputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var ts []target
	for _, n := range []string{"h1", "h2"} {
		ts = append(ts, target{host: &inventory.Host{Name: n, Groups: []string{"all"}}})
	}
	all := planFacts()
	doc, diags, err := buildPlan(planInput{p: p, files: files, targets: ts, facts: map[string]facts.Facts{"h1": all["h1"], "h2": all["h2"]},
		previewer: refusingPreviewer{}})
	if err != nil || doc == nil {
		t.Fatalf("buildPlan: %v", err)
	}
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "package name refused") {
		t.Errorf("diags %v, want the previewer's error", diags)
	}
	if got := doc.Previews[0].Steps[0].Error; got != "package name refused" {
		t.Errorf("step error %q", got)
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor([]string{"abc", "abcdef"})
	if got := r.s("x abcdef y abc"); got != "x (sensitive) y (sensitive)" {
		t.Errorf("got %q", got)
	}
}
