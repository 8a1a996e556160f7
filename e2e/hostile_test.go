package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/report"
)

// hostileHost is the one lab host whose facts are poisoned.
const hostileHost = "h20"

// hostileFacts are external facts an attacker with write access to one host's
// facts.d might plant. Each would create /tmp/pwned-N if it ever reached a shell
// unquoted.
var hostileFacts = map[string]string{
	"hostile_semi":    "x;touch /tmp/pwned-1",
	"hostile_subst":   "$(touch /tmp/pwned-2)",
	"hostile_tick":    "`touch /tmp/pwned-3`",
	"hostile_quotes":  `it's "q" '; touch /tmp/pwned-4; '`,
	"hostile_newline": "a\ntouch /tmp/pwned-5",
	"hostile_nul":     "a\x00touch /tmp/pwned-6",
	"hostile_svc":     "demo-web;touch /tmp/pwned-7",
	"hostile_ver":     "1.0$(touch /tmp/pwned-8)",
	"hostile_esc":     "\x1b]0;pwned\x07\x1b[2J\rforged",
}

// TestHostileFactsNeverReachAShell plants hostile facts on one lab host, uses
// them in `when`, command templates, a health command, a service name and a
// package version, and proves nothing unintended ran: no /tmp/pwned-* on the
// host or the controller, the command saw each value byte for byte, and names
// were refused with a clear error before anything ran.
func TestHostileFactsNeverReachAShell(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	factFile := "/etc/facter/facts.d/hostile.json"
	clean := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := shared.lab.Exec(ctx, hostileHost, "sh", "-c", "rm -f /tmp/pwned-* /tmp/hostile-out "+factFile); err != nil {
			t.Errorf("cleanup on %s: %v: %s", hostileHost, err, out)
		}
		old, _ := filepath.Glob("/tmp/pwned-*")
		for _, f := range old {
			os.Remove(f)
		}
	}
	clean()
	t.Cleanup(clean)
	js, err := json.Marshal(hostileFacts)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := shared.lab.Exec(ctx, hostileHost, "sh", "-c", `printf '%s' "$1" > "$2"`, "sh", string(js), factFile); err != nil {
		t.Fatalf("planting facts: %v: %s", err, out)
	}

	// The facts arrive intact, NUL included: the refusals below are about values
	// drover really holds, not about a fact that got lost on the way.
	r := drover(t, append([]string{"facts", hostileHost, "--json", "--refresh"}, labArgs()...)...)
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
		t.Fatalf("facts: exit %d, %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
	}
	for k, v := range hostileFacts {
		if got[hostileHost][k] != v {
			t.Errorf("fact %s = %q, want %q", k, got[hostileHost][k], v)
		}
	}

	dir := t.TempDir()
	play := func(name, body string) string {
		p := filepath.Join(dir, name+".hcl")
		src := "playbook \"" + name + "\" {}\ntargets { hosts = [\"" + hostileHost + "\"] }\n" + body
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	runPlay := func(t *testing.T, path string) (result, *report.Report) {
		t.Helper()
		rep := filepath.Join(t.TempDir(), "report.json")
		r := drover(t, append([]string{"run", path, "--yes", "--report", rep}, labArgs()...)...)
		b, err := os.ReadFile(rep)
		if err != nil {
			t.Fatalf("no report (exit %d): %v\nstdout: %s\nstderr: %s", r.code, err, r.stdout, r.stderr)
		}
		var run report.Report
		if err := json.Unmarshal(b, &run); err != nil {
			t.Fatal(err)
		}
		return r, &run
	}
	noPwned := func(t *testing.T) {
		t.Helper()
		out, err := shared.lab.Exec(ctx, hostileHost, "sh", "-c", "ls -d /tmp/pwned-* 2>/dev/null; true")
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("on %s: %v %q: a hostile fact ran", hostileHost, err, out)
		}
		if local, _ := filepath.Glob("/tmp/pwned-*"); len(local) > 0 {
			t.Errorf("on the controller: %v: a hostile fact ran", local)
		}
	}

	t.Run("templates carry the literal values", func(t *testing.T) {
		p := play("hostile-ok", `
steps {
  command "write" {
    when = facts.hostile_subst == "$(touch /tmp/pwned-2)" && facts.hostile_semi != ""
    run  = "printf '%s|' ${facts.hostile_semi} ${facts.hostile_subst} '${facts.hostile_tick}' \"${facts.hostile_quotes}\" ${facts.hostile_newline} ${facts.hostile_esc} > /tmp/hostile-out"
  }
}
health {
  command "read" { run = "test \"$(head -c 21 /tmp/hostile-out)\" = ${facts.hostile_semi}'|'" }
}
`)
		r, rep := runPlay(t, p)
		if r.code != 0 {
			t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		h := rep.Stages[0].Hosts[0]
		if h.Status != report.HostChanged || len(h.Steps) < 2 {
			t.Fatalf("host %s %s, steps %+v", h.Name, h.Status, h.Steps)
		}
		out, err := shared.lab.Exec(ctx, hostileHost, "cat", "/tmp/hostile-out")
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		for _, k := range []string{"hostile_semi", "hostile_subst", "hostile_tick", "hostile_quotes", "hostile_newline", "hostile_esc"} {
			want += hostileFacts[k] + "|"
		}
		if string(out) != want {
			t.Errorf("command wrote %q, want %q", out, want)
		}
		// The ESC fact is in the run's output only neutralised.
		if strings.Contains(r.stdout+r.stderr, "\x1b") {
			t.Errorf("raw ESC reached the terminal output:\n%q", r.stdout+r.stderr)
		}
		noPwned(t)
	})

	// Control characters in remote output reach the operator's terminal only
	// neutralised: in a failed step's detail of a run, and in exec output.
	t.Run("terminal controls in output are neutralised", func(t *testing.T) {
		r, _ := runPlay(t, play("hostile-esc", `
steps {
  command "shout" { run = "printf '%s\\n' ${facts.hostile_esc} >&2; exit 1" }
}
`))
		if r.code == 0 {
			t.Fatalf("exit 0, want the step to fail\nstderr: %s", r.stderr)
		}
		all := r.stdout + r.stderr
		if strings.ContainsAny(all, "\x1b\x07\r") || !strings.Contains(all, `\x1b]0;pwned\x07`) {
			t.Errorf("run output does not show the controls neutralised:\n%q", all)
		}
		r = drover(t, append([]string{"facts", hostileHost, "hostile_esc", "hostile_nul"}, labArgs()...)...)
		all = r.stdout + r.stderr
		if r.code != 0 || strings.ContainsAny(all, "\x1b\x07\r\x00") || !strings.Contains(all, `\x1b]0;pwned\x07`) || !strings.Contains(all, `a\x00touch`) {
			t.Errorf("facts: exit %d, output does not show the controls neutralised:\n%q", r.code, all)
		}
		r = drover(t, append([]string{"exec", hostileHost}, append(labArgs(), "--", `printf '\033[2J\033]0;pwned\007x\rforged\n'`)...)...)
		all = r.stdout + r.stderr
		if r.code != 0 || strings.ContainsAny(all, "\x1b\x07\r") || !strings.Contains(all, `\x1b[2J\x1b]0;pwned\x07x\rforged`) {
			t.Errorf("exec: exit %d, output does not show the controls neutralised:\n%q", r.code, all)
		}
	})

	// An upload replaces a symlink planted at its destination instead of writing
	// through it, and its content is the fact's bytes, untouched.
	t.Run("upload never writes through a symlink", func(t *testing.T) {
		setup := "rm -rf /etc/hostile-link /etc/hostile-victim && printf precious > /etc/hostile-victim && ln -s /etc/hostile-victim /etc/hostile-link"
		if out, err := shared.lab.Exec(ctx, hostileHost, "sh", "-c", setup); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			shared.lab.Exec(ctx, hostileHost, "rm", "-f", "/etc/hostile-link", "/etc/hostile-victim")
		})
		r, _ := runPlay(t, play("hostile-upload", `
steps {
  upload "link" {
    content     = facts.hostile_quotes
    destination = "/etc/hostile-link"
  }
}
`))
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		out, err := shared.lab.Exec(ctx, hostileHost, "sh", "-c", "cat /etc/hostile-victim; echo; test -L /etc/hostile-link && echo LINK; cat /etc/hostile-link")
		if err != nil {
			t.Fatal(err)
		}
		if want := "precious\n" + hostileFacts["hostile_quotes"]; string(out) != want {
			t.Errorf("after the upload: %q, want %q (victim untouched, link replaced by the file)", out, want)
		}
		noPwned(t)
	})

	refusals := []struct{ name, body, want string }{
		{"service name", `steps {
  service "svc" {
    name  = facts.hostile_svc
    state = "restarted"
  }
}`, "not a valid service name"},
		{"package version", `steps {
  package "demo-web" { version = facts.hostile_ver }
}`, "not a valid package version"},
		{"upload outside its destination", `steps {
  upload "u" {
    content     = "x"
    destination = "/tmp/${facts.hostile_semi}/../../../etc/hostile"
  }
}`, "not a clean path"},
		{"NUL in a command", `steps {
  command "nul" { run = "echo ${facts.hostile_nul}" }
}`, "NUL byte"},
		{"NUL in a health command", `steps {
  command "ok" { run = "true" }
}
health {
  command "nul" { run = "echo ${facts.hostile_nul}" }
}`, "NUL byte"},
	}
	// A computed value that is not a valid name, or that no shell command can
	// carry, is refused when drover evaluates the host's steps before the run:
	// bad input (exit 2), nothing ran, and the error names the host.
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			path := play("hostile-"+strings.ReplaceAll(tc.name, " ", "-"), tc.body)
			r := drover(t, append([]string{"run", path, "--yes"}, labArgs()...)...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2 (bad input, nothing ran)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "(on host "+hostileHost+")") {
				t.Errorf("stderr does not say %q on host %s:\n%s", tc.want, hostileHost, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, hostileHost+" started") {
				t.Errorf("the host was worked on:\n%s", r.stderr)
			}
			noPwned(t)
		})
	}
}

func stepDetails(h *report.Host) string {
	var b strings.Builder
	for _, s := range h.Steps {
		b.WriteString(s.Name + ": " + s.Status + " " + s.Detail + "; ")
	}
	return b.String()
}
