package expr

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func FuzzCompareVersions(f *testing.F) {
	for _, s := range [][2]string{{"1.0", "1.0.1"}, {"2.0~rc1", "2.0"}, {"1:1.0", "2.0"}, {"12.11", "12.2"},
		{"v1.2", "1.10"}, {"6.1.0-13-amd64", "6.1"}, {"", "~"}, {"0:1", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("CompareVersions(%q, %q) = %d but reversed = %d", a, b, ab, ba)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("CompareVersions(%q, itself) != 0", a)
		}
	})
}

func FuzzParseEval(f *testing.F) {
	for _, s := range []string{`facts.a == 1 || facts.b.c > 2`, `try(facts.x, "y")`, `version_lt(facts.v, "2")`,
		`[for k, v in facts : v][0]`, `facts.l[*].x`, `facts["a.b"]`, `facts.`, `"${`} {
		f.Add(s)
	}
	vars, err := ToCty(map[string]any{"a": int64(1), "b": map[string]any{"c": "3"}, "v": "1.9", "l": []any{map[string]any{"x": true}}, "n": nil})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, diags := ParseExpression(src, "<fuzz>")
		if diags.HasErrors() {
			_ = FormatDiagnostics(diags, []byte(src))
			return
		}
		if Validate(e, []string{"facts"}).HasErrors() {
			return
		}
		_, _, diags = EvalBool(e, NewContext(map[string]cty.Value{"facts": vars}))
		_ = FormatDiagnostics(diags, []byte(src))
	})
}
