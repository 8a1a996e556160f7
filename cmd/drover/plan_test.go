package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/inventory"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/steps"
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

// The preview prints the steps package's exact command lines, quoted as they run,
// for the backend the host's facts name.
func TestStepsPreviewer(t *testing.T) {
	yes := true
	apt := map[string]any{"package_manager": "apt", "init_system": "systemd"}
	dnfSysv := map[string]any{"package_manager": "dnf", "init_system": "sysv"}
	const aptInstall = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --allow-downgrades "
	tests := []struct {
		name  string
		spec  playbook.StepSpec
		facts map[string]any
		want  []string
	}{
		{"apt pinned", playbook.StepSpec{Package: &playbook.PackageSpec{Name: "nginx", Version: "1.2", State: "present"}}, apt,
			[]string{aptInstall + "nginx=1.2"}},
		// A version with a shell metacharacter the validator allows (~) is quoted.
		{"apt quoted", playbook.StepSpec{Package: &playbook.PackageSpec{Name: "demo-web", Version: "2.0~rc1"}}, apt,
			[]string{aptInstall + "'demo-web=2.0~rc1'"}},
		{"apt absent", playbook.StepSpec{Package: &playbook.PackageSpec{Name: "nginx", State: "absent"}}, apt,
			[]string{"DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=60 nginx"}},
		{"systemd", playbook.StepSpec{Service: &playbook.ServiceSpec{Name: "nginx", State: "reloaded", Enabled: &yes}}, apt,
			[]string{"systemctl enable nginx", "systemctl reload nginx"}},
		{"sysv", playbook.StepSpec{Service: &playbook.ServiceSpec{Name: "demo-web", State: "restarted"}}, dnfSysv,
			[]string{"if command -v service >/dev/null 2>&1; then service demo-web restart; else /etc/init.d/demo-web restart; fi"}},
		{"puppet run", playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run", Tags: []string{"a", "b"}, Noop: true}}, apt,
			[]string{"puppet agent --onetime --no-daemonize --no-splay --detailed-exitcodes --color=false --logdest console --no-usecacheonfailure --noop --tags a,b"}},
		{"puppet disable", playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "disable", Reason: "drover's run"}}, apt,
			[]string{`puppet agent --disable 'drover'"'"'s run'`}},
		{"puppet apply", playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run", Manifest: "/srv/site.pp"}}, apt,
			[]string{"upload /srv/site.pp -> " + manifestPath, "puppet apply --detailed-exitcodes --color=false --logdest console " + manifestPath}},
		{"command creates", playbook.StepSpec{Command: &playbook.CommandSpec{Run: "make install", Creates: "/usr/bin/my x"}}, apt,
			[]string{"test -e '/usr/bin/my x'   (skipped when this succeeds)", "make install"}},
		{"upload", playbook.StepSpec{Upload: &playbook.UploadSpec{Source: "/a", Destination: "/b c", Mode: 0o600, Owner: "root"}}, apt,
			[]string{"upload /a -> '/b c' (mode 0600, owner root, unless the host has the same sha256, mode and owner)"}},
		{"upload content", playbook.StepSpec{Upload: &playbook.UploadSpec{Content: "abc", HasContent: true, Destination: "/b"}}, apt,
			[]string{"upload 3 bytes of inline content -> /b (mode 0644, unless the host has the same sha256, mode and owner)"}},
		// The refresh-and-simulate listing, then the upgrade of the chosen packages.
		{"patch", playbook.StepSpec{Patch: &playbook.PatchSpec{SecurityOnly: true, Exclude: []string{"kernel"}}}, apt,
			[]string{"apt-get update -q -o DPkg::Lock::Timeout=60 >&2 || exit 97; LC_ALL=C apt-get -s -q upgrade || exit 97",
				"DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --only-upgrade PACKAGES…"}},
		{"patch dnf", playbook.StepSpec{Patch: &playbook.PatchSpec{Mode: "dist-upgrade"}}, dnfSysv,
			must(steps.PatchCommands("dnf", steps.PatchAction{Mode: "dist-upgrade"}))},
		{"reboot", playbook.StepSpec{Reboot: &playbook.RebootSpec{}}, apt, steps.RebootCommands(steps.RebootAction{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stepsPreviewer{}.Commands(&tt.spec, tt.facts)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Commands = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	refused := []struct {
		name  string
		spec  playbook.StepSpec
		facts map[string]any
		want  string
	}{
		{"empty", playbook.StepSpec{}, apt, "nothing to preview"},
		{"no package_manager fact", playbook.StepSpec{Package: &playbook.PackageSpec{Name: "x"}}, map[string]any{}, `package manager ""`},
		{"unknown init system", playbook.StepSpec{Service: &playbook.ServiceSpec{Name: "x", State: "started"}}, map[string]any{"init_system": "upstart"}, `init system "upstart"`},
		{"bad package name", playbook.StepSpec{Package: &playbook.PackageSpec{Name: "x; rm -rf /"}}, apt, "invalid input"},
		{"patch without package_manager", playbook.StepSpec{Patch: &playbook.PatchSpec{}}, map[string]any{}, `package manager ""`},
		{"patch bad exclude", playbook.StepSpec{Patch: &playbook.PatchSpec{Exclude: []string{"x y"}}}, apt, "invalid input"},
		{"bad puppet tag", playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run", Tags: []string{"a b"}}}, apt, "invalid input"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := (stepsPreviewer{}).Commands(&tt.spec, tt.facts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want it to mention %q", err, tt.want)
			}
		})
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

// checkHostFake is a host as plan --live sees it: it answers the read-only
// queries of the steps package from its state and records every command, so a
// test can assert that nothing else (a change) was ever sent.
type checkHostFake struct {
	version  string // installed demo-web; "" not installed
	running  bool   // the service
	noInitd  bool   // the service does not exist
	puppetRC int    // exit status of puppet agent --noop
	disabled bool   // puppet agent disabled
	fileSum  string // sha256 of the upload destination; "" missing
	exists   bool   // command's creates path exists
	upgrades string // apt-get -s upgrade's output
	// rebootPkgs: non-nil when the host requires a reboot, naming the packages that asked.
	rebootPkgs []string
	err        error // every Run fails with this

	mu   sync.Mutex
	cmds []string
}

// queryMarkers identify the read-only commands a check may send.
var queryMarkers = []string{"apt-get -s -q", "/var/run/reboot-required", "dpkg-query -W", "systemctl show", "echo exists=yes", "puppet agent --onetime", "puppet config print", "sha256sum -- ", "test -e "}

func (f *checkHostFake) Run(_ context.Context, cmd *transport.Command) (*transport.Result, error) {
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd.Cmd)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	c := cmd.Cmd
	switch {
	case strings.Contains(c, "apt-get -s -q"):
		return &transport.Result{Stdout: []byte(f.upgrades)}, nil
	case strings.Contains(c, "/var/run/reboot-required"):
		out := "3f1c2a9e-4b7d-4c1e-9a2b-8d6e5f4a3b21\n"
		if f.rebootPkgs != nil {
			out += "@@required\n"
			for _, p := range f.rebootPkgs {
				out += "@@pkg " + p + "\n"
			}
		}
		return &transport.Result{Stdout: []byte(out)}, nil
	case strings.Contains(c, "dpkg-query -W"):
		out := ""
		installed := "(none)"
		if f.version != "" {
			out, installed = "install ok installed\t"+f.version+"\n", f.version
		}
		return &transport.Result{Stdout: []byte(out + "demo-web:\n  Installed: " + installed + "\n  Candidate: 3.0\n")}, nil
	case strings.Contains(c, "systemctl show"):
		load, active := "loaded", "inactive"
		if f.noInitd {
			load = "not-found"
		}
		if f.running {
			active = "active"
		}
		return &transport.Result{Stdout: []byte("LoadState=" + load + "\nActiveState=" + active + "\nSubState=x\nUnitFileState=enabled\n")}, nil
	case strings.Contains(c, "echo exists=yes"):
		out := "status=3\nenabled=yes\n"
		if f.running {
			out = "status=0\nenabled=yes\n"
		}
		if !f.noInitd {
			out = "exists=yes\n" + out
		}
		return &transport.Result{Stdout: []byte(out)}, nil
	case strings.Contains(c, "puppet agent --onetime"):
		if !strings.Contains(c, "--noop") {
			return &transport.Result{ExitCode: 99}, nil // a real run: the test fails on the command list
		}
		return &transport.Result{ExitCode: f.puppetRC, Stdout: []byte("@@summary\nversion:\n  config: 42\nresources:\n  changed: 0\n  out_of_sync: 3\n  failed: 0\n")}, nil
	case strings.Contains(c, "puppet config print"):
		return &transport.Result{}, nil // Debian's default paths
	case strings.Contains(c, "@@applying"): // puppet status
		if f.disabled {
			return &transport.Result{Stdout: []byte("@@disabled\n{\"disabled_message\":\"maintenance\"}\n")}, nil
		}
		return &transport.Result{}, nil
	case strings.Contains(c, "sha256sum -- "):
		if f.fileSum == "" {
			return &transport.Result{}, nil
		}
		return &transport.Result{Stdout: []byte(f.fileSum + "\n644 root\n")}, nil
	case strings.HasPrefix(c, "test -e "):
		if f.exists {
			return &transport.Result{}, nil
		}
		return &transport.Result{ExitCode: 1}, nil
	}
	return &transport.Result{}, nil
}

func (f *checkHostFake) Upload(context.Context, io.Reader, string, fs.FileMode, *transport.Become) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, "UPLOAD")
	return nil
}

func (f *checkHostFake) Close() error { return nil }

// changes are the commands sent that are not read-only queries.
func (f *checkHostFake) changes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.cmds {
		query := slices.ContainsFunc(queryMarkers, func(m string) bool { return strings.Contains(c, m) }) ||
			strings.Contains(c, "@@applying")
		// A puppet agent run is a query only with --noop.
		if !query || (strings.Contains(c, "puppet agent --onetime") && !strings.Contains(c, "--noop")) {
			out = append(out, c)
		}
	}
	return out
}

// aptSim is `apt-get -s upgrade` with two upgrades.
const aptSim = `Reading package lists...
Calculating upgrade...
The following packages will be upgraded:
  demo-tool openssl
2 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst demo-tool [1.0] (1.1 lab:lab [all])
Inst openssl [3.0.1] (3.0.2 Debian-Security:12/stable-security [amd64])
Conf demo-tool (1.1 lab:lab [all])
Conf openssl (3.0.2 Debian-Security:12/stable-security [amd64])
`

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestCheckStep(t *testing.T) {
	sum := sha256.Sum256([]byte("hello\n"))
	hello := hex.EncodeToString(sum[:])
	apt := map[string]any{"package_manager": "apt", "init_system": "sysv"}
	pkg := func(v string) *playbook.StepSpec {
		return &playbook.StepSpec{Package: &playbook.PackageSpec{Name: "demo-web", Version: v}}
	}
	svc := func(state string) *playbook.StepSpec {
		return &playbook.StepSpec{Service: &playbook.ServiceSpec{Name: "demo-web", State: state}}
	}
	upload := &playbook.StepSpec{Upload: &playbook.UploadSpec{Content: "hello\n", HasContent: true, Destination: "/etc/x.conf"}}
	tests := []struct {
		name    string
		host    *checkHostFake
		spec    *playbook.StepSpec
		facts   map[string]any
		earlier bool
		want    stepCheck
	}{
		{"package older", &checkHostFake{version: "1.0"}, pkg("2.0"), apt, false, stepCheck{Mark: markWouldChange, Detail: "1.0 -> 2.0"}},
		{"package at target", &checkHostFake{version: "2.0"}, pkg("2.0"), apt, false, stepCheck{Mark: markNoChange, Detail: "2.0"}},
		{"package missing", &checkHostFake{}, pkg("2.0"), apt, false, stepCheck{Mark: markWouldChange, Detail: "absent -> 2.0"}},
		{"package latest", &checkHostFake{version: "2.0"}, &playbook.StepSpec{Package: &playbook.PackageSpec{Name: "demo-web", State: "latest"}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "2.0 -> 3.0"}},
		{"package no backend", &checkHostFake{}, pkg("2.0"), map[string]any{"package_manager": "pacman"}, false,
			stepCheck{Mark: markError, Error: `unsupported: package manager "pacman" (want apt, dnf, yum, zypper or apk)`}},
		{"service restart", &checkHostFake{running: true}, svc("restarted"), apt, false, stepCheck{Mark: markWouldChange, Detail: "restarted"}},
		{"service started already", &checkHostFake{running: true}, svc("started"), apt, false, stepCheck{Mark: markNoChange, Detail: "running, enabled"}},
		{"service stopped, start", &checkHostFake{}, svc("started"), apt, false, stepCheck{Mark: markWouldChange, Detail: "started"}},
		{"systemd", &checkHostFake{running: true}, svc("stopped"), map[string]any{"init_system": "systemd"}, false, stepCheck{Mark: markWouldChange, Detail: "stopped"}},
		{"service missing", &checkHostFake{noInitd: true}, svc("restarted"), apt, false,
			stepCheck{Mark: markError, Error: "service demo-web: not found on this host (sysv)"}},
		{"service missing after a change", &checkHostFake{noInitd: true}, svc("restarted"), apt, true,
			stepCheck{Mark: markNotChecked, Detail: "service not found yet; an earlier step would change the host first"}},
		{"puppet noop changes", &checkHostFake{puppetRC: 2}, &playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run", Tags: []string{"web"}}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "0 changed, 3 out of sync, 0 failed"}},
		{"puppet noop in sync", &checkHostFake{}, &playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run"}}, apt, false,
			stepCheck{Mark: markNoChange, Detail: "no changes: 0 changed, 3 out of sync, 0 failed"}},
		{"puppet noop fails", &checkHostFake{puppetRC: 4}, &playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run"}}, apt, false,
			stepCheck{Mark: markError, Error: "puppet run: failures (exit 4): 0 changed, 3 out of sync, 0 failed: "}},
		{"puppet disable", &checkHostFake{}, &playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "disable", Reason: "r"}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "disabled"}},
		{"puppet enable when disabled", &checkHostFake{disabled: true}, &playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "enable"}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "enabled"}},
		{"puppet apply", &checkHostFake{}, &playbook.StepSpec{Puppet: &playbook.PuppetSpec{Action: "run", Manifest: "/x.pp"}}, apt, false,
			stepCheck{Mark: markNotChecked, Detail: "puppet apply needs the manifest uploaded, so it is not checked"}},
		{"command", &checkHostFake{}, &playbook.StepSpec{Command: &playbook.CommandSpec{Run: "rm -rf /srv/x"}}, apt, false,
			stepCheck{Mark: markWouldRun, Detail: "not run in check mode"}},
		{"command creates exists", &checkHostFake{exists: true}, &playbook.StepSpec{Command: &playbook.CommandSpec{Run: "make", Creates: "/bin/x"}}, apt, false,
			stepCheck{Mark: markSkipped, Detail: "/bin/x exists"}},
		{"command creates missing", &checkHostFake{}, &playbook.StepSpec{Command: &playbook.CommandSpec{Run: "make", Creates: "/bin/x"}}, apt, false,
			stepCheck{Mark: markWouldRun, Detail: "/bin/x is missing; not run in check mode"}},
		{"upload same", &checkHostFake{fileSum: hello}, upload, apt, false, stepCheck{Mark: markNoChange, Detail: "same sha256, mode and owner"}},
		{"upload differs", &checkHostFake{fileSum: strings.Repeat("0", 64)}, upload, apt, false, stepCheck{Mark: markWouldChange, Detail: "content differs"}},
		{"upload missing", &checkHostFake{}, upload, apt, false, stepCheck{Mark: markWouldChange, Detail: "/etc/x.conf does not exist"}},
		{"patch upgrades", &checkHostFake{upgrades: aptSim}, &playbook.StepSpec{Patch: &playbook.PatchSpec{}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "2 to upgrade: demo-tool 1.0 -> 1.1, openssl 3.0.1 -> 3.0.2"}},
		{"patch excluded", &checkHostFake{upgrades: aptSim}, &playbook.StepSpec{Patch: &playbook.PatchSpec{Exclude: []string{"openssl"}}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "1 to upgrade: demo-tool 1.0 -> 1.1"}},
		{"patch up to date", &checkHostFake{}, &playbook.StepSpec{Patch: &playbook.PatchSpec{}}, apt, false,
			stepCheck{Mark: markNoChange, Detail: "nothing to upgrade"}},
		{"patch no backend", &checkHostFake{}, &playbook.StepSpec{Patch: &playbook.PatchSpec{}}, map[string]any{"package_manager": "pacman"}, false,
			stepCheck{Mark: markError, Error: `unsupported: package manager "pacman" for patch (want apt, dnf, yum, zypper or apk)`}},
		{"reboot required", &checkHostFake{rebootPkgs: []string{"linux-image-amd64", "libc6"}}, &playbook.StepSpec{Reboot: &playbook.RebootSpec{}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "reboot required (by linux-image-amd64, libc6)"}},
		{"reboot required, no packages", &checkHostFake{rebootPkgs: []string{}}, &playbook.StepSpec{Reboot: &playbook.RebootSpec{}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "reboot required"}},
		{"reboot not required", &checkHostFake{}, &playbook.StepSpec{Reboot: &playbook.RebootSpec{}}, apt, false,
			stepCheck{Mark: markNoChange, Detail: "no reboot required"}},
		{"reboot not required yet", &checkHostFake{}, &playbook.StepSpec{Reboot: &playbook.RebootSpec{}}, apt, true,
			stepCheck{Mark: markNoChange, Detail: "no reboot required now; an earlier step would change the host first and may require one"}},
		{"reboot forced", &checkHostFake{}, &playbook.StepSpec{Reboot: &playbook.RebootSpec{Force: true}}, apt, false,
			stepCheck{Mark: markWouldChange, Detail: "forced reboot (force = true)"}},
		{"connection lost", &checkHostFake{err: transport.ErrConnLost}, pkg("2.0"), apt, false,
			stepCheck{Mark: markError, Error: "package demo-web: status: " + transport.ErrConnLost.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkStep(context.Background(), tt.host, tt.spec, tt.facts, steps.Options{}, tt.earlier)
			if got != tt.want {
				t.Errorf("checkStep = %+v\nwant         %+v", got, tt.want)
			}
			if ch := tt.host.changes(); len(ch) > 0 {
				t.Errorf("check mode sent changes: %q", ch)
			}
		})
	}
}

// liveHarness is planHarness whose hosts answer the live checks: h1 has
// demo-web 1.0, h2 2.0 (the target), h3 none and h6 loses its connection.
func liveHarness(t *testing.T) (*harness, map[string]*checkHostFake) {
	fakes := map[string]*checkHostFake{
		"h1": {version: "1.0", running: true},
		"h2": {version: "2.0", running: true},
		"h3": {noInitd: true},
		"h6": {err: fmt.Errorf("reading output: %w", transport.ErrConnLost)},
	}
	h := planHarness(t)
	for name, f := range fakes {
		h.conn.hosts[name] = &fakeHost{run: f.Run}
	}
	return h, fakes
}

func TestPlanLiveGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		{"plan-live.txt", nil},
		{"plan-live.json", []string{"--json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			h, fakes := liveHarness(t)
			args := append(append([]string{"plan", "testdata/plan/web.hcl", "--live", "-i", planInventory}, sshConfigNone...), tt.args...)
			if code := h.run(t, args...); code != exitHostsFailed {
				t.Fatalf("exit %d, want 1\n%s", code, h.stderrString())
			}
			golden(t, tt.golden, h.stdout.Bytes())
			for name, f := range fakes {
				if ch := f.changes(); len(ch) > 0 {
					t.Errorf("%s: plan --live sent changes: %q", name, ch)
				}
				if name != "h6" && len(f.cmds) == 0 {
					t.Errorf("%s was not asked", name)
				}
			}
		})
	}
}

// The JSON marks are data a script can act on: per host and per step, and
// on the previewed host's steps.
func TestPlanLiveJSON(t *testing.T) {
	h, _ := liveHarness(t)
	h.run(t, append([]string{"plan", "testdata/plan/web.hcl", "--live", "--json", "-i", planInventory}, sshConfigNone...)...)
	var doc planDoc
	if err := json.Unmarshal(h.stdout.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, h.stdout.String())
	}
	if doc.Live == nil {
		t.Fatal("no live section")
	}
	got := map[string]string{}
	for _, lh := range doc.Live.Hosts {
		var marks []string
		for _, s := range lh.Steps {
			marks = append(marks, s.Kind+"="+s.Mark+"("+s.Detail+s.Error+")")
		}
		got[lh.Host] = lh.Status + ": " + strings.Join(marks, " ")
	}
	lost := "package demo-web: status: reading output: " + transport.ErrConnLost.Error()
	want := map[string]string{
		"h1": "would change: package=would change(1.0 -> 2.0) service=would change(restarted) command=would run(not run in check mode)",
		// The smoke command would run, but a command alone is not a change.
		"h2": `no change: package=no change(2.0) service=skipped(when is false: facts.init_system = "sysv") command=would run(not run in check mode)`,
		"h3": "would change: package=would change(absent -> 2.0) service=not checked(service not found yet; an earlier step would change the host first) command=would run(not run in check mode)",
		// The host stops at its first failure, as in a run.
		"h6": "error: package=error(" + lost + ") service=not checked(an earlier check failed) command=not checked(an earlier check failed)",
	}
	for host, w := range want {
		if got[host] != w {
			t.Errorf("%s:\n got  %s\n want %s", host, got[host], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("checked %v, want h1 h2 h3 h6", got)
	}
	l := doc.Live
	if !slices.Equal(l.WouldChange, []string{"h1", "h3"}) || !slices.Equal(l.NoChange, []string{"h2"}) || !slices.Equal(l.Errors, []string{"h6"}) {
		t.Errorf("would change %v, no change %v, errors %v; want [h1 h3] [h2] [h6]", l.WouldChange, l.NoChange, l.Errors)
	}
	if l.Hosts[3].Error != lost {
		t.Errorf("h6 error %q, want %q", l.Hosts[3].Error, lost)
	}
	p := doc.Previews[0]
	if c := p.Steps[0].Check; c == nil || c.Mark == "" {
		t.Errorf("previewed host %s: step without a check: %+v", p.Host, p.Steps[0])
	}
}

// Without --live nothing beyond fact gathering is sent; with --cached, --live is refused.
func TestPlanLiveFlags(t *testing.T) {
	h, fakes := liveHarness(t)
	h.run(t, append([]string{"plan", "testdata/plan/web.hcl", "-i", planInventory}, sshConfigNone...)...)
	for name, f := range fakes {
		if len(f.cmds) != 0 {
			t.Errorf("plan without --live ran %q on %s", f.cmds, name)
		}
	}
	if strings.Contains(h.stdout.String(), "Live check") {
		t.Errorf("live section without --live:\n%s", h.stdout.String())
	}
	h, _ = liveHarness(t)
	code := h.run(t, append([]string{"plan", "testdata/plan/web.hcl", "--live", "--cached", "-i", planInventory}, sshConfigNone...)...)
	if code != exitBadInput || !strings.Contains(h.stderrString(), "--cached never connects; it cannot go with --live") {
		t.Errorf("exit %d, stderr %q", code, h.stderrString())
	}
}

// --live with every host at the target and a clean check: exit 0, all no change.
func TestPlanLiveNoChange(t *testing.T) {
	dir := t.TempDir()
	pb := filepath.Join(dir, "pb.hcl")
	src := "playbook \"p\" {}\nsteps {\n  package \"demo-web\" { version = \"2.0\" }\n}\n"
	if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(map[string]*fakeHost{})
	hosts := map[string]*checkHostFake{"h1": {version: "2.0"}, "h2": {version: "2.0"}}
	for n, f := range hosts {
		h.conn.hosts[n] = &fakeHost{run: f.Run}
	}
	seedCache(t, h, map[string]facts.Facts{"h1": planFacts()["h1"], "h2": planFacts()["h2"]})
	code := h.run(t, append([]string{"plan", pb, "--live", "-i", "h1,h2"}, sshConfigNone...)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, h.stderrString())
	}
	out := h.stdout.String()
	for _, want := range []string{"Live check: 2 hosts asked in check mode, nothing changed: 0 would change, 2 no change, 0 errors",
		"h1  no change\n", "package \"demo-web\": no change: 2.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Patch and reboot steps: plan prints the command lines they would run; --live
// asks each host what it would upgrade and whether it needs a reboot, and
// sends neither the upgrade nor the reboot.
func TestPlanPatchReboot(t *testing.T) {
	dir := t.TempDir()
	pb := filepath.Join(dir, "pb.hcl")
	src := "playbook \"p\" {}\nsteps {\n  patch {\n    exclude = [\"openssl\"]\n  }\n  reboot {\n    timeout = \"15m\"\n  }\n}\n"
	if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	newH := func() (*harness, map[string]*checkHostFake) {
		h := newHarness(map[string]*fakeHost{})
		hosts := map[string]*checkHostFake{"h1": {upgrades: aptSim, rebootPkgs: []string{"linux-image-amd64"}}, "h2": {}}
		for n, f := range hosts {
			h.conn.hosts[n] = &fakeHost{run: f.Run}
		}
		seedCache(t, h, map[string]facts.Facts{"h1": planFacts()["h1"], "h2": planFacts()["h2"]})
		return h, hosts
	}

	h, hosts := newH()
	if code := h.run(t, append([]string{"plan", pb, "-i", "h1,h2"}, sshConfigNone...)...); code != exitOK {
		t.Fatalf("plan: exit %d\n%s", code, h.stderrString())
	}
	out := h.stdout.String()
	for _, want := range []string{
		"    1. patch\n         - apt-get update -q -o DPkg::Lock::Timeout=60 >&2 || exit 97; LC_ALL=C apt-get -s -q upgrade || exit 97\n",
		"install --only-upgrade PACKAGES…\n",
		// The reboot check is a script: its lines stay under its dash.
		"    2. reboot (timeout 15m)\n         - cat /proc/sys/kernel/random/boot_id || exit 1\n           if [ -e /var/run/reboot-required ]",
		"shutdown -r now",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "not checked") {
		t.Errorf("plan still says not checked:\n%s", out)
	}
	for n, f := range hosts {
		if len(f.cmds) != 0 {
			t.Errorf("plan without --live ran %q on %s", f.cmds, n)
		}
	}

	h, hosts = newH()
	if code := h.run(t, append([]string{"plan", pb, "--live", "-i", "h1,h2"}, sshConfigNone...)...); code != exitOK {
		t.Fatalf("plan --live: exit %d\n%s", code, h.stderrString())
	}
	out = h.stdout.String()
	for _, want := range []string{
		"1 would change, 1 no change, 0 errors",
		"h1  would change\n",
		"patch: would change: 1 to upgrade: demo-tool 1.0 -> 1.1\n",
		"reboot: would change: reboot required (by linux-image-amd64)\n",
		"h2  no change\n",
		"patch: no change: nothing to upgrade\n",
		"reboot: no change: no reboot required\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan --live lacks %q:\n%s", want, out)
		}
	}
	for n, f := range hosts {
		if ch := f.changes(); len(ch) > 0 {
			t.Errorf("%s: plan --live sent changes: %q", n, ch)
		}
		if len(f.cmds) != 2 {
			t.Errorf("%s: %d commands sent, want the patch listing and the reboot check: %q", n, len(f.cmds), f.cmds)
		}
	}
}
