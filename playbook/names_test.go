package playbook

import (
	"strings"
	"testing"
)

// TestNamesValidated: names and paths that reach a remote command are checked
// whether written literally (load time) or computed from facts (evaluation).
func TestNamesValidated(t *testing.T) {
	tests := []struct {
		name, step, value, wantErr string // wantErr "" means accepted
	}{
		{"package plain", `package "p" { name = %s }`, "nginx", ""},
		{"package arch", `package "p" { name = %s }`, "libc6:amd64", ""},
		{"package rpm", `package "p" { name = %s }`, "perl-Net_SSLeay", ""},
		{"package semicolon", `package "p" { name = %s }`, "x;touch /tmp/p", "not a valid package name"},
		{"package subshell", `package "p" { name = %s }`, "$(id)", "not a valid package name"},
		{"package option", `package "p" { name = %s }`, "--purge", "not a valid package name"},
		{"package space", `package "p" { name = %s }`, "a b", "not a valid package name"},
		{"package newline", `package "p" { name = %s }`, "a\nb", "not a valid package name"},
		{"version deb", `package "p" { version = %s }`, "1:2.0~rc1-3+deb12u1", ""},
		{"version backtick", `package "p" { version = %s }`, "1.0`id`", "not a valid package version"},
		{"version option", `package "p" { version = %s }`, "-1", "not a valid package version"},
		{"version NUL", `package "p" { version = %s }`, "1\x00", "not a valid package version"},
		{"service unit", `service "s" {
    state = "started"
    name  = %s
  }`, "getty@tty1.service", ""},
		{"service path", `service "s" {
    state = "started"
    name  = %s
  }`, "../../bin/sh", "not a valid service name"},
		{"service quote", `service "s" {
    state = "started"
    name  = %s
  }`, "a'b", "not a valid service name"},
		{"dest ok", `upload "u" {
    content     = "x"
    destination = %s
  }`, "/etc/app/app.conf", ""},
		{"dest relative", `upload "u" {
    content     = "x"
    destination = %s
  }`, "etc/app.conf", "not an absolute path"},
		{"dest dotdot", `upload "u" {
    content     = "x"
    destination = %s
  }`, "/etc/app/../../root/.ssh/authorized_keys", "not a clean path"},
		{"dest dir", `upload "u" {
    content     = "x"
    destination = %s
  }`, "/etc/app/", "not a clean path"},
		{"dest newline", `upload "u" {
    content     = "x"
    destination = %s
  }`, "/tmp/a\nb", "control character"},
		{"dest NUL", `upload "u" {
    content     = "x"
    destination = %s
  }`, "/tmp/a\x00", "control character"},
		{"owner option", `upload "u" {
    content     = "x"
    destination = "/tmp/x"
    owner       = %s
  }`, "-R", "not a valid owner"},
		{"owner user:group", `upload "u" {
    content     = "x"
    destination = "/tmp/x"
    owner       = %s
  }`, "www-data:adm", ""},
		{"source local", `upload "u" {
    source      = %s
    destination = "/tmp/x"
  }`, "files/app.conf", ""},
		{"source absolute", `upload "u" {
    source      = %s
    destination = "/tmp/x"
  }`, "/srv/files/app.conf", ""},
		{"source escapes", `upload "u" {
    source      = %s
    destination = "/tmp/x"
  }`, "../../.ssh/id_ed25519", "leaves the playbook's directory"},
		{"puppet tag", `puppet { tags = [%s] }`, "a;b", "not a valid Puppet tag"},
		{"puppet reason", `puppet {
    action = "disable"
    reason = %s
  }`, "maintenance by ops; see #123", ""},
		{"puppet reason newline", `puppet {
    action = "disable"
    reason = %s
  }`, "a\nb", "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Computed from a fact: refused when the host is evaluated.
			src := "playbook \"x\" {}\nsteps {\n  " + strings.Replace(tt.step, "%s", "facts.v", 1) + "\n}\n"
			p := mustLoad(t, src, VarInputs{})
			ctx, err := p.HostContext(HostData{Name: "h"}, map[string]any{"v": tt.value})
			if err != nil {
				t.Fatal(err)
			}
			_, diags := p.Steps[0].Evaluate(ctx)
			checkDiags(t, "evaluated", diags.Error(), diags.HasErrors(), tt.wantErr)

			// Passed through a variable: refused when the playbook loads.
			src = "playbook \"x\" {}\nvariable \"v\" {}\nsteps {\n  " + strings.Replace(tt.step, "%s", "var.v", 1) + "\n}\n"
			_, _, diags = Load(writePlaybook(t, src), VarInputs{Flags: []string{"v=" + tt.value}})
			checkDiags(t, "loaded", diags.Error(), diags.HasErrors(), tt.wantErr)
		})
	}
}

func checkDiags(t *testing.T, when, got string, hasErr bool, want string) {
	t.Helper()
	if want == "" {
		if hasErr {
			t.Fatalf("%s: unexpected error %s", when, got)
		}
		return
	}
	if !hasErr || !strings.Contains(got, want) {
		t.Fatalf("%s: got %q, want an error containing %q", when, got, want)
	}
}
