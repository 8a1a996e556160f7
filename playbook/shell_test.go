package playbook

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostileValues are fact values an attacker controlling a host's facts might
// plant; each must reach the shell as one literal argument.
var hostileValues = map[string]string{
	"semicolon": "x;touch PWNED",
	"subshell":  "$(touch PWNED)",
	"backtick":  "`touch PWNED`",
	"single":    "it's'; touch PWNED; '",
	"double":    `a"; touch PWNED; "`,
	"newline":   "a\ntouch PWNED",
	"spaces":    "  two  words  ",
	"empty":     "",
	"backslash": `a\'; touch PWNED #`,
	"dollar":    "${HOME} $HOME",
	"glob":      "*",
	"option":    "-n",
	"unicode":   "é ü",
}

// render evaluates step 0's run for facts {"v": value, ...extra}.
func renderRun(t *testing.T, p *Playbook, facts map[string]any) (string, error) {
	t.Helper()
	ctx, err := p.HostContext(HostData{Name: "h", Vars: map[string]any{"x": "host;var"}}, facts)
	if err != nil {
		t.Fatal(err)
	}
	spec, diags := p.Steps[0].Evaluate(ctx)
	if diags.HasErrors() {
		return "", diags
	}
	return spec.Command.Run, nil
}

func commandPlaybook(t *testing.T, run string) *Playbook {
	t.Helper()
	return mustLoad(t, "playbook \"x\" {}\nvariable \"n\" {\n  default = 3\n}\nsteps {\n  command \"c\" {\n    run = "+run+"\n  }\n}\n", VarInputs{})
}

// shellOut runs cmd with sh and returns its stdout; the working directory is a
// fresh temp dir in which nothing named PWNED may appear.
func shellOut(t *testing.T, cmd string) string {
	t.Helper()
	dir := t.TempDir()
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Dir = dir
	out, err := c.Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", cmd, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
		t.Fatalf("sh -c %q created PWNED", cmd)
	}
	return string(out)
}

// TestShellTemplateQuotesEveryContext runs the rendered command through a real
// /bin/sh and checks that each hostile value arrived byte for byte, in a bare
// word, inside '…', inside "…", inside $( ) and with literal text around it.
func TestShellTemplateQuotesEveryContext(t *testing.T) {
	templates := []struct {
		name, run, wantFmt string // wantFmt: %s is the value
	}{
		{"bare", `"printf '[%s]' ${facts.v}"`, "[%s]"},
		{"wrapped", `"printf [%s] ${facts.v}"`, "[%s]"},
		{"glued", `"printf '[%s]' pre${facts.v}post"`, "[pre%spost]"},
		{"single", `"printf '[%s]' '<${facts.v}>'"`, "[<%s>]"},
		{"double", `"printf '[%s]' \"<${facts.v}>\""`, "[<%s>]"},
		{"subst", `"printf '[%s]' \"$(printf '%s' ${facts.v})\""`, "[%s]"},
		{"subst in double", `"printf '[%s]' \"x$(printf '%s' \"${facts.v}\")y\""`, "[x%sy]"},
		{"case in subst", `"printf '[%s]' \"$(case x in x) printf '%s' ${facts.v};; esac)\""`, "[%s]"},
		{"after case", `"case a in (a) true;; esac; printf '[%s]' \"${facts.v}\""`, "[%s]"},
		{"after subshell parens", `"(true); printf '[%s]' ${facts.v}"`, "[%s]"},
	}
	for _, tt := range templates {
		p := commandPlaybook(t, tt.run)
		for vname, v := range hostileValues {
			t.Run(tt.name+"/"+vname, func(t *testing.T) {
				cmd, err := renderRun(t, p, map[string]any{"v": v})
				if err != nil {
					t.Fatal(err)
				}
				got := shellOut(t, cmd)
				want := strings.ReplaceAll(tt.wantFmt, "%s", v)
				if tt.name == "bare" || tt.name == "wrapped" {
					want = "[" + v + "]"
				}
				if got != want {
					t.Fatalf("command %q printed %q, want %q", cmd, got, want)
				}
			})
		}
	}
}

// TestShellTemplateRendering checks the exact text of rendered commands.
func TestShellTemplateRendering(t *testing.T) {
	tests := []struct {
		name, run string
		facts     map[string]any
		want      string
		wantErr   string
	}{
		{"literal untouched", `"echo 'a b' | grep -c \"a\" ; true"`, nil, `echo 'a b' | grep -c "a" ; true`, ""},
		{"escaped interpolation stays literal", `"echo $${HOME}"`, nil, `echo ${HOME}`, ""},
		{"bare word", `"echo ${facts.v}"`, map[string]any{"v": "a;b"}, `echo 'a;b'`, ""},
		{"safe word unquoted", `"echo ${facts.v}"`, map[string]any{"v": "nginx-1.2"}, `echo nginx-1.2`, ""},
		{"number", `"sleep ${facts.n}"`, map[string]any{"n": 2.5}, `sleep 2.5`, ""},
		{"bool", `"echo ${facts.b}"`, map[string]any{"b": true}, `echo true`, ""},
		{"var number at load", `"echo ${var.n}"`, nil, `echo 3`, ""},
		{"host var", `"echo ${host.vars.x}"`, nil, `echo 'host;var'`, ""},
		{"list", `"echo ${facts.l}"`, map[string]any{"l": []any{"a b", "c", "$(x)"}}, `echo 'a b' c '$(x)'`, ""},
		{"list in double quotes", `"echo \"${facts.l}\""`, map[string]any{"l": []any{"a", "$b"}}, `echo "a \$b"`, ""},
		{"single quotes", `"echo '${facts.v}'"`, map[string]any{"v": "it's"}, `echo 'it'\''s'`, ""},
		{"double quotes", `"echo \"${facts.v}\""`, map[string]any{"v": "\"$(x)`y`\\"}, "echo \"\\\"\\$(x)\\`y\\`\\\\\"", ""},
		{"whole value is one word", `facts.v`, map[string]any{"v": "rm -rf /"}, `'rm -rf /'`, ""},
		{"wrap is one word", `"${facts.v}"`, map[string]any{"v": "a b"}, `'a b'`, ""},
		{"raw", `"echo ${raw(facts.v)}"`, map[string]any{"v": "a | wc -c"}, `echo a | wc -c`, ""},
		{"raw whole", `raw(facts.v)`, map[string]any{"v": "ls -l"}, `ls -l`, ""},
		{"raw through a function", `"echo ${upper(raw(facts.v))}"`, map[string]any{"v": "a;b"}, `echo A;B`, ""},
		{"raw inside quotes", `"echo '${raw(facts.v)}'"`, map[string]any{"v": "a'b"}, `echo 'a'b'`, ""},
		{"conditional command", `facts.b ? "echo ${facts.v}" : "true"`, map[string]any{"b": true, "v": "a b"}, `echo 'a b'`, ""},
		{"if directive", `"echo %{if facts.b}${facts.v}%{else}no%{endif} end"`, map[string]any{"b": true, "v": "a;b"}, `echo 'a;b' end`, ""},
		{"if directive false", `"echo %{if facts.b}${facts.v}%{else}no%{endif} end"`, map[string]any{"b": false, "v": "a;b"}, `echo no end`, ""},
		{"for directive", `"echo%{for x in facts.l} -e ${x}%{endfor}"`, map[string]any{"l": []any{"a;b", "c"}}, `echo -e 'a;b' -e c`, ""},
		{"for directive in quotes", `"echo '%{for x in facts.l}${x},%{endfor}'"`, map[string]any{"l": []any{"a'b", "c"}}, `echo 'a'\''b,c,'`, ""},
		{"heredoc template", "<<EOT\necho ${facts.v}\nEOT", map[string]any{"v": "$(id)"}, "echo '$(id)'\n", ""},
		{"NUL refused", `"echo ${facts.v}"`, map[string]any{"v": "a\x00b"}, "", "NUL byte"},
		{"null refused", `"echo ${facts.v}"`, map[string]any{"v": nil}, "", "null"},
		{"map refused", `"echo ${facts.m}"`, map[string]any{"m": map[string]any{"a": "b"}}, "", "cannot be part of a command"},
		{"missing fact", `"echo ${facts.nope}"`, map[string]any{}, "", "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := commandPlaybook(t, tt.run)
			got, err := renderRun(t, p, tt.facts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "shell_quote") {
					t.Fatalf("error names drover's internal function: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestShellTemplateRefusesUnsafePlaces: where no quoting is safe, the playbook
// does not load, unless the interpolation is raw().
func TestShellTemplateRefusesUnsafePlaces(t *testing.T) {
	tests := []struct {
		name, run, wantErr string
	}{
		{"backticks", "\"echo `echo ${facts.v}`\"", "inside backticks"},
		{"comment", `"true # ${facts.v}"`, "comment"},
		{"heredoc", "\"cat <<EOF\\n${facts.v}\\nEOF\"", "here-document"},
		{"after backslash", `"echo \\${facts.v}"`, "backslash"},
		{"unbalanced if", `"echo %{if facts.b}'%{endif}${facts.v}"`, "Unbalanced quotes"},
		{"unbalanced for", `"echo %{for x in facts.l}'${x}%{endfor}"`, "Unbalanced quotes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "playbook \"x\" {}\nsteps {\n  command \"c\" {\n    run = " + tt.run + "\n  }\n}\n"
			_, _, diags := Load(writePlaybook(t, src), VarInputs{})
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.wantErr) {
				t.Fatalf("diags %v, want %q", diags, tt.wantErr)
			}
		})
	}
	// raw() is the author's escape hatch even there.
	p := mustLoad(t, "playbook \"x\" {}\nsteps {\n  command \"c\" {\n    run = \"true # ${raw(facts.v)}\"\n  }\n}\n", VarInputs{})
	if got, err := renderRun(t, p, map[string]any{"v": "x"}); err != nil || got != "true # x" {
		t.Fatalf("raw in comment: %q %v", got, err)
	}
}

// TestShellTemplateChecks: health/before/after and gate command checks quote too.
func TestShellTemplateChecks(t *testing.T) {
	p := mustLoad(t, `
playbook "x" {}
variable "v" {
  default = "a;b"
}
canary {
  gate {
    command "g" { run = "echo ${var.v} ${stage.name}" }
  }
}
steps {
  command "c" { run = "true" }
}
health {
  command "h" { run = "echo ${facts.v}" }
}
before {
  command "b" { run = "echo '${host.vars.x}'" }
}
`, VarInputs{})
	ctx, err := p.HostContext(HostData{Name: "h", Vars: map[string]any{"x": "it's"}}, map[string]any{"v": "$(id)"})
	if err != nil {
		t.Fatal(err)
	}
	h, diags := p.Health[0].Evaluate(ctx)
	if diags.HasErrors() || h.Command.Run != `echo '$(id)'` {
		t.Fatalf("health: %q %v", h.Command.Run, diags)
	}
	b, diags := p.Before[0].Evaluate(ctx)
	if diags.HasErrors() || b.Command.Run != `echo 'it'\''s'` {
		t.Fatalf("before: %q %v", b.Command.Run, diags)
	}
	g, diags := p.Stages[0].Gate.Checks[0].Evaluate(p.StageContext(StageRef{Name: "canary;x", Kind: KindCanary}))
	if diags.HasErrors() || g.Command.Run != `echo 'a;b' 'canary;x'` {
		t.Fatalf("gate: %q %v", g.Command.Run, diags)
	}
}

// TestRawIsIdentityElsewhere: outside commands raw() changes nothing.
func TestRawIsIdentityElsewhere(t *testing.T) {
	p := mustLoad(t, `
playbook "x" {}
steps {
  command "c" {
    run  = "true"
    when = raw(facts.role) == "web"
  }
  upload "u" {
    destination = "/tmp/x"
    content     = raw("a;b")
  }
}`, VarInputs{})
	ctx, err := p.HostContext(HostData{Name: "h"}, map[string]any{"role": "web"})
	if err != nil {
		t.Fatal(err)
	}
	c, diags := p.Steps[0].Evaluate(ctx)
	if diags.HasErrors() || c.Skip {
		t.Fatalf("when with raw: %+v %v", c, diags)
	}
	u, diags := p.Steps[1].Evaluate(ctx)
	if diags.HasErrors() || u.Upload.Content != "a;b" {
		t.Fatalf("upload content: %+v %v", u.Upload, diags)
	}
}
