package playbook

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func writePlaybook(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, src string, in VarInputs) *Playbook {
	t.Helper()
	p, fs, diags := Load(writePlaybook(t, src), in)
	if diags.HasErrors() {
		var b strings.Builder
		_ = WriteDiagnostics(&b, fs, diags, false, 0)
		t.Fatalf("unexpected diagnostics:\n%s", b.String())
	}
	return p
}

// TestExamplesLoadClean loads every playbook in examples/ with no inputs.
func TestExamplesLoadClean(t *testing.T) {
	files, err := filepath.Glob("../examples/*.hcl")
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 examples, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, fs, diags := Load(f, VarInputs{})
			if len(diags) > 0 {
				var b strings.Builder
				_ = WriteDiagnostics(&b, fs, diags, false, 0)
				t.Fatalf("diagnostics:\n%s", b.String())
			}
			if p.Name == "" || len(p.Steps) == 0 {
				t.Fatalf("name %q, %d steps", p.Name, len(p.Steps))
			}
		})
	}
}

const specExample = `
playbook "demo-web" { description = "Upgrade demo-web" }
variable "version" {
  type    = string
  default = "2.0"
}
variable "token" {
  default   = "s3cret"
  sensitive = true
}
targets {
  hosts = ["web"]
  where = facts.os.family == "Debian"
}
settings {
  forks        = 50
  become       = true
  step_timeout = "5m"
  window {
    days     = ["mon", "fri"]
    start    = "01:00"
    end      = "05:00"
    timezone = "UTC"
  }
  lock         = true
}
canary {
  hosts     = 1
  spread_by = facts.datacenter
  gate {
    wait = "30s"
    http "site" {
      url    = "http://lb.example/healthz"
      status = 200
    }
  }
}
batch "early" {
  hosts      = "25%"
  size       = 2
  pause      = "10s"
  max_failed = 0
  gate {
    prometheus "errors" {
      url   = "http://127.0.0.1:9090"
      query = "sum(rate(errors_total[1m]))"
      max   = 0.1
    }
  }
}
remaining {
  parallel   = 10
  max_failed = "5%"
}
before {
  http "drain" {
    url    = "http://lb.example/pool/web/${host.name}"
    method = "DELETE"
  }
}
steps {
  package "demo-web" { version = var.version }
  service "demo-web" { state = "restarted" }
  puppet { tags = ["web"] }
  command "smoke" {
    run  = "test -f /etc/demo-web.conf"
    when = facts.role == "web"
  }
  upload "conf" {
    content     = "v=${var.version}"
    destination = "/etc/demo-web.conf"
    mode        = "0640"
  }
}
health {
  http {
    url      = "http://${host.address}:8080/health"
    status   = 200
    body     = "ok ${var.version}"
    retries  = 10
    interval = "1s"
  }
}
after {
  http "undrain" {
    url    = "http://lb.example/pool/web/${host.name}"
    method = "PUT"
  }
}
rollback {
  package "demo-web" { version = prior.package["demo-web"] }
  service "demo-web" { state = "restarted" }
}
notify { webhook = "http://127.0.0.1:9000/hook" }
`

func TestLoadSpecExample(t *testing.T) {
	p := mustLoad(t, specExample, VarInputs{Flags: []string{"version=2.1"}})
	if p.Name != "demo-web" || p.Settings.Forks != 50 || p.Settings.StepTimeout != 5*time.Minute || !*p.Settings.Become {
		t.Fatalf("settings: %+v", p.Settings)
	}
	if w := p.Settings.Window; w == nil || !reflect.DeepEqual(w.Days, []string{"mon", "fri"}) || w.Start != "01:00" {
		t.Fatalf("window: %+v", w)
	}
	var kinds []string
	for _, s := range p.Stages {
		kinds = append(kinds, string(s.Kind)+":"+s.Name)
	}
	if got := strings.Join(kinds, ","); got != "canary:canary,batch:early,remaining:remaining" {
		t.Fatalf("stages %s", got)
	}
	early := p.Stages[1]
	if !early.Hosts.IsPercent || early.Hosts.Hundredths != 2500 || early.Size.Count != 2 || early.Pause != 10*time.Second {
		t.Fatalf("early: %+v", early)
	}
	if g := p.Stages[0].Gate; g.Wait != 30*time.Second || len(g.Checks) != 1 || g.Checks[0].Name != "site" || g.Timeout != DefaultGateTimeout {
		t.Fatalf("canary gate: %+v", g)
	}
	if len(p.Steps) != 5 || p.Steps[2].Name != "puppet" || len(p.Health) != 1 || p.Health[0].Name != "http" || len(p.Rollback) != 2 {
		t.Fatalf("steps %d, health %d, rollback %d", len(p.Steps), len(p.Health), len(p.Rollback))
	}
	if p.Notify == nil || p.Notify.Webhook != "http://127.0.0.1:9000/hook" {
		t.Fatalf("notify %+v", p.Notify)
	}
	if got := p.Secrets(); !reflect.DeepEqual(got, []string{"s3cret"}) {
		t.Fatalf("secrets %q", got)
	}
}

func TestEvaluatePerHost(t *testing.T) {
	p := mustLoad(t, specExample, VarInputs{Flags: []string{"version=2.1"}})
	cases := []struct {
		name  string
		facts map[string]any
		skip  bool
	}{
		{"web", map[string]any{"role": "web", "os": map[string]any{"family": "Debian"}}, false},
		{"db", map[string]any{"role": "db"}, true},
		{"no role", map[string]any{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, err := p.HostContext(HostData{Name: "h1", Address: "10.0.0.1",
				Prior: map[string]any{"package": map[string]any{"demo-web": "1.0"}}}, tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			pkg, diags := p.Steps[0].Evaluate(ctx)
			if diags.HasErrors() || pkg.Package == nil || pkg.Package.Version != "2.1" || pkg.Package.State != "present" {
				t.Fatalf("package: %+v %v", pkg.Package, diags)
			}
			cmd, diags := p.Steps[3].Evaluate(ctx)
			if diags.HasErrors() || cmd.Skip != tc.skip || (!tc.skip && cmd.Command.Run != "test -f /etc/demo-web.conf") {
				t.Fatalf("command: %+v %v", cmd, diags)
			}
			up, _ := p.Steps[4].Evaluate(ctx)
			if up.Upload.Content != "v=2.1" || up.Upload.Mode != 0o640 || !up.Upload.HasContent {
				t.Fatalf("upload: %+v", up.Upload)
			}
			h, diags := p.Health[0].Evaluate(ctx)
			if diags.HasErrors() || h.HTTP.URL != "http://10.0.0.1:8080/health" || h.HTTP.Body != "ok 2.1" || h.Retries != 10 || h.Interval != time.Second {
				t.Fatalf("health: %+v %+v %v", h, h.HTTP, diags)
			}
			rb, diags := p.Rollback[0].Evaluate(ctx)
			if diags.HasErrors() || rb.Package.Version != "1.0" {
				t.Fatalf("rollback: %+v %v", rb.Package, diags)
			}
			ok, _, diags := p.Matches(ctx)
			if want := tc.name == "web"; ok != want || diags.HasErrors() {
				t.Fatalf("where: %v %v", ok, diags)
			}
		})
	}
}

// TestEvaluateRejectsUnsafeComputedName: a name computed from facts that holds
// shell syntax is refused at evaluation, not passed on.
func TestEvaluateRejectsUnsafeComputedName(t *testing.T) {
	p := mustLoad(t, `
playbook "x" {}
steps {
  package "pkg" { name = facts.pkg }
  service "svc" {
    state = facts.state
  }
}`, VarInputs{})
	cases := []struct {
		facts   map[string]any
		step    int
		wantErr string
	}{
		{map[string]any{"pkg": "nginx; reboot", "state": "started"}, 0, "not a valid package name"},
		{map[string]any{"pkg": "nginx", "state": "running"}, 1, "is not one of"},
		{map[string]any{"pkg": "nginx", "state": "started"}, 0, ""},
	}
	for _, tc := range cases {
		ctx, err := p.HostContext(HostData{Name: "h"}, tc.facts)
		if err != nil {
			t.Fatal(err)
		}
		_, diags := p.Steps[tc.step].Evaluate(ctx)
		if got := diags.Error(); (tc.wantErr == "") != !diags.HasErrors() || !strings.Contains(got, tc.wantErr) {
			t.Errorf("facts %v: diags %q, want %q", tc.facts, got, tc.wantErr)
		}
	}
}

func TestVariableInputs(t *testing.T) {
	src := `
playbook "x" {}
variable "a" { default = "d" }
variable "n" {
  type    = number
  default = 1
}
variable "l" {
  type    = list(string)
  default = []
}
steps {
  command "c" { run = "echo ${var.a} ${var.n} ${join(",", var.l)}" }
}`
	dir := t.TempDir()
	vf := filepath.Join(dir, "v.hcl")
	if err := os.WriteFile(vf, []byte("a = \"file\"\nn = 3\nunused = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   VarInputs
		want string
		warn int
	}{
		// Interpolations in a command are shell-quoted: an empty one is ''.
		{"defaults", VarInputs{}, "echo d 1 ''", 0},
		{"env", VarInputs{Environ: []string{"DROVER_VAR_a=env", "DROVER_VAR_n=2", "PATH=/bin"}}, "echo env 2 ''", 0},
		{"file over env", VarInputs{Environ: []string{"DROVER_VAR_a=env"}, Files: []string{vf}}, "echo file 3 ''", 1},
		{"flag over file", VarInputs{Files: []string{vf}, Flags: []string{"a=flag", `l=["x","y"]`}}, "echo flag 3 x,y", 1},
		{"last flag wins", VarInputs{Flags: []string{"a=1", "a=2=3"}}, "echo 2=3 1 ''", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, _, diags := Load(writePlaybook(t, src), tc.in)
			if diags.HasErrors() || len(diags) != tc.warn {
				t.Fatalf("diags %v, want %d warnings", diags, tc.warn)
			}
			ctx, _ := p.HostContext(HostData{Name: "h"}, nil)
			s, d := p.Steps[0].Evaluate(ctx)
			if d.HasErrors() || s.Command.Run != tc.want {
				t.Fatalf("run %q, want %q (%v)", s.Command.Run, tc.want, d)
			}
		})
	}
}

// TestSensitiveValueNeverInDiagnostics: a bad value for a sensitive variable is
// reported without echoing it.
func TestSensitiveValueNeverInDiagnostics(t *testing.T) {
	src := `
playbook "x" {}
variable "pw" {
  type      = number
  sensitive = true
}
variable "tok" {
  sensitive = true
  default   = "x"
}
steps {
  command "c" { run = "echo ${var.tok + 1}" }
}`
	_, fs, diags := Load(writePlaybook(t, src), VarInputs{Flags: []string{"pw=hunter2-secret", "tok=topsecret"}})
	var b strings.Builder
	if err := WriteDiagnostics(&b, fs, diags, false, 0); err != nil {
		t.Fatal(err)
	}
	if !diags.HasErrors() {
		t.Fatal("want errors")
	}
	for _, secret := range []string{"hunter2", "topsecret"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("secret %q leaked:\n%s", secret, b.String())
		}
	}
}

func TestCheckFactRefs(t *testing.T) {
	p := mustLoad(t, `
playbook "x" {}
targets { where = facts.os.family == "Debian" && facts["role"] == "web" }
canary { spread_by = facts.dc }
steps {
  command "c" {
    run  = "echo ${facts.networking.ip}"
    when = facts.l[0] == 1
  }
}`, VarInputs{})
	known := KnownFacts([]map[string]any{
		{"os": map[string]any{"family": "Debian"}, "role": "web", "l": []any{1}},
		{"networking": map[string]any{"ip": "10.0.0.1"}},
	})
	diags := p.CheckFactRefs(known)
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, `"dc"`) || diags[0].Subject.Start.Line != 4 {
		t.Fatalf("diags %v", diags)
	}
	if d := p.CheckFactRefs(func(string) bool { return true }); len(d) != 0 {
		t.Fatalf("all known: %v", d)
	}
}

func TestUsesFacts(t *testing.T) {
	tests := []struct {
		name, body string
		want       bool
	}{
		{"none", `steps {
  package "demo-web" { version = var.v }
  service "demo-web" { state = "restarted" }
}
health {
  http { url = "http://${host.address}:8080/" }
}`, false},
		{"where", `targets { where = facts.role == "web" }
steps {
  command "c" { run = "true" }
}`, true},
		{"a step template", `steps {
  command "c" { run = "echo ${facts.networking.ip}" }
}`, true},
		{"a health check's when", `steps {
  command "c" { run = "true" }
}
health {
  command "h" {
    run  = "true"
    when = facts.os.family == "Debian"
  }
}`, true},
		{"spread_by", `canary { spread_by = facts.dc }
steps {
  command "c" { run = "true" }
}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustLoad(t, "playbook \"x\" {}\nvariable \"v\" {\n  default = \"2.0\"\n}\n"+tt.body, VarInputs{})
			if got := p.UsesFacts(); got != tt.want {
				t.Errorf("UsesFacts() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWriteDiagnosticsColorAndPosition(t *testing.T) {
	_, fs, diags := Load("testdata/invalid/04-unknown-attribute.hcl", VarInputs{})
	var plain, color strings.Builder
	if err := WriteDiagnostics(&plain, fs, diags, false, 40); err != nil {
		t.Fatal(err)
	}
	if err := WriteDiagnostics(&color, fs, diags, true, 40); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain.String(), "testdata/invalid/04-unknown-attribute.hcl:4:3: Error:") || strings.Contains(plain.String(), "\x1b[") {
		t.Fatalf("plain:\n%s", plain.String())
	}
	if !strings.Contains(color.String(), "\x1b[31m") {
		t.Fatalf("no colour:\n%q", color.String())
	}
	var _ hcl.Diagnostics = diags
}

func TestQuantityString(t *testing.T) {
	for _, tc := range []struct {
		q    Quantity
		want string
	}{
		{Quantity{Count: 3}, "3"},
		{Quantity{IsPercent: true, Hundredths: 2500}, "25%"},
		{Quantity{IsPercent: true, Hundredths: 1250}, "12.5%"},
		{Quantity{IsPercent: true, Hundredths: 5}, "0.05%"},
		{Quantity{IsPercent: true, Hundredths: 10000}, "100%"},
	} {
		if got := tc.q.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.q, got, tc.want)
		}
	}
}
