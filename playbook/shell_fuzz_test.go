package playbook

import (
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// FuzzShellValue: whatever a fact holds (short of NUL, which is refused), the
// shell receives it byte for byte in every quoting context: byte for byte as cty
// holds it, which is in Unicode NFC (cty.StringVal normalizes every string, so a
// fact's "ώ" U+1F7D arrives as its canonical equivalent U+03CE).
func FuzzShellValue(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v)
	}
	f.Add("'\"\\`$(){}[]*?~!#&|;<>\n\t\r\x1b")
	// NFC turns these into ";" and "`": quoting must see the normalized string.
	f.Add("a\u037e reboot \u1fefid\u1fef")
	f.Fuzz(func(t *testing.T, v string) {
		if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
			return // NUL is refused (see TestShellTemplateRendering); facts are UTF-8 JSON
		}
		for _, tmpl := range []string{
			`printf '%s' ${v}`,
			`printf '%s' '${v}'`,
			`printf '%s' "${v}"`,
			`printf '%s' "$(printf '%s' ${v})"`,
		} {
			e, diags := hclsyntax.ParseTemplate([]byte(tmpl), "t", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			se, diags := shellExpr(e)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			ctx := shellContext(&hcl.EvalContext{Variables: map[string]cty.Value{"v": cty.StringVal(v)}})
			cmd, diags := se.Value(ctx)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			out, err := exec.Command("/bin/sh", "-c", cmd.AsString()).Output()
			if err != nil {
				t.Fatalf("%q: %v", cmd.AsString(), err)
			}
			want := cty.StringVal(v).AsString()
			if strings.Contains(tmpl, "$(") {
				want = strings.TrimRight(want, "\n") // command substitution strips trailing newlines
			}
			if string(out) != want {
				t.Fatalf("%q printed %q, want %q", cmd.AsString(), out, want)
			}
		}
	})
}

// FuzzShellTemplate: the rewriter never panics on any template the HCL parser
// accepts, and either refuses it or yields an expression.
func FuzzShellTemplate(f *testing.F) {
	for _, s := range []string{"echo ${x}", "a '${x}' \"${x}\" $(b ${x})", "%{if x}'${x}'%{endif}", "%{for a in x}${a}%{endfor}", "`${x}`", "# ${x}", "cat <<E\n${x}\nE", `\${x}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, diags := hclsyntax.ParseTemplate([]byte(src), "t", hcl.InitialPos)
		if diags.HasErrors() {
			return
		}
		se, diags := shellExpr(e)
		if !diags.HasErrors() && se == nil {
			t.Fatal("no expression and no error")
		}
	})
}
