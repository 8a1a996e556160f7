package expr

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0.1", -1},
		{"1.0.1", "1.0", 1},
		{"2.0~rc1", "2.0", -1},
		{"2.0", "2.0~rc1", 1},
		{"1:1.0", "2.0", 1},
		{"12.11", "12.2", 1},
		{"12.2", "12.11", -1},
		{"1.0", "1.0", 0},
		{"1.0-1", "1.0-2", -1},
		{"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
		{"6.1.0-13-amd64", "6.1", 1},
		{"6.1.0-13-amd64", "6.2", -1},
		{"007", "7", 0},
		// Not Debian versions: dotted-numeric fallback.
		{"v1.2.3", "v1.10.0", -1},
		{"v2", "1.9", 1},
		{"release-7", "release-10", -1},
		{"abc", "abd", -1},
		{"", "", 0},
		{"", "1", -1},
		{"99999999999999999999999", "99999999999999999999998", 1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestVersionFunctions(t *testing.T) {
	tests := []struct {
		src  string
		want cty.Value
	}{
		{`version_compare("1.0", "1.0.1")`, cty.NumberIntVal(-1)},
		{`version_compare("2.0~rc1", "2.0")`, cty.NumberIntVal(-1)},
		{`version_compare("1:1.0", "2.0")`, cty.NumberIntVal(1)},
		{`version_compare("12.11", "12.2")`, cty.NumberIntVal(1)},
		{`version_compare("3.1", "3.1")`, cty.NumberIntVal(0)},
		{`version_gte("12.11", "12.2")`, cty.True},
		{`version_gte("12.2", "12.2")`, cty.True},
		{`version_gt("12.2", "12.2")`, cty.False},
		{`version_lt("6.1.0-13-amd64", "6.2")`, cty.True},
		{`version_lte("2.0", "2.0~rc1")`, cty.False},
		{`version_gte(12, "9")`, cty.True}, // numbers convert to strings
		{`upper("web")`, cty.StringVal("WEB")},
		{`contains(["a", "b"], "b")`, cty.True},
		{`try(facts.nope, "fallback")`, cty.StringVal("fallback")},
		{`can(facts.nope)`, cty.False},
		{`can(facts.os.name)`, cty.True},
		{`length(keys(facts.os))`, cty.NumberIntVal(1)},
		{`tostring(5)`, cty.StringVal("5")},
	}
	facts, err := ToCty(map[string]any{"os": map[string]any{"name": "Debian"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := NewContext(map[string]cty.Value{"facts": facts})
	for _, tt := range tests {
		e, diags := ParseExpression(tt.src, "<test>")
		if diags.HasErrors() {
			t.Fatalf("%s: parse: %s", tt.src, diags)
		}
		got, diags := e.Value(ctx)
		if diags.HasErrors() {
			t.Errorf("%s: %s", tt.src, diags)
			continue
		}
		if !got.RawEquals(tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.src, got, tt.want)
		}
	}
}

func TestFunctionsDocumented(t *testing.T) {
	// Every function in the table is listed in the Functions doc comment, a few
	// names users will reach for exist, and callers get their own map.
	src, err := os.ReadFile("functions.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src[:strings.Index(string(src), "func Functions()")])
	fns := Functions()
	for name := range fns {
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(doc) {
			t.Errorf("function %q is not documented in Functions' comment", name)
		}
	}
	for _, n := range []string{"upper", "lower", "contains", "length", "keys", "lookup", "regex", "regexall",
		"format", "join", "split", "replace", "trimspace", "coalesce", "tostring", "tonumber", "min", "max", "abs",
		"version_compare", "version_gte", "version_lt", "try", "can"} {
		if _, ok := fns[n]; !ok {
			t.Errorf("function %q missing", n)
		}
	}
	fns["extra"] = fns["upper"]
	if _, ok := Functions()["extra"]; ok {
		t.Error("Functions returns a shared map; callers' additions leak")
	}
}

func TestToCty(t *testing.T) {
	big := json.Number("123456789012345678901234567890")
	bigVal, _ := cty.ParseNumberVal("123456789012345678901234567890")
	tests := []struct {
		name string
		in   any
		want cty.Value
	}{
		{"nil", nil, cty.NullVal(cty.DynamicPseudoType)},
		{"string", "x", cty.StringVal("x")},
		{"bool", true, cty.True},
		{"int", 3, cty.NumberIntVal(3)},
		{"int64", int64(-7), cty.NumberIntVal(-7)},
		{"uint8", uint8(7), cty.NumberIntVal(7)},
		{"float64", 2.5, cty.NumberFloatVal(2.5)},
		{"json.Number int", json.Number("42"), cty.NumberIntVal(42)},
		{"json.Number big", big, bigVal},
		{"json.Number float", json.Number("1.5"), cty.NumberFloatVal(1.5)},
		{"empty map", map[string]any{}, cty.EmptyObjectVal},
		{"empty list", []any{}, cty.EmptyTupleVal},
		{"invalid utf8", "a\xffb", cty.StringVal("a\uFFFDb")},
		{"nested", map[string]any{
			"os":         map[string]any{"name": "Debian", "release": map[string]any{"major": "12"}},
			"processors": map[string]any{"count": int64(4)},
			"mixed":      []any{int64(1), "two", false, nil},
		}, cty.ObjectVal(map[string]cty.Value{
			"os": cty.ObjectVal(map[string]cty.Value{
				"name":    cty.StringVal("Debian"),
				"release": cty.ObjectVal(map[string]cty.Value{"major": cty.StringVal("12")}),
			}),
			"processors": cty.ObjectVal(map[string]cty.Value{"count": cty.NumberIntVal(4)}),
			"mixed":      cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.StringVal("two"), cty.False, cty.NullVal(cty.DynamicPseudoType)}),
		})},
		{"typed", map[string]string{"a": "b"}, cty.ObjectVal(map[string]cty.Value{"a": cty.StringVal("b")})},
		{"[]string", []string{"a"}, cty.TupleVal([]cty.Value{cty.StringVal("a")})},
		{"cty passthrough", cty.StringVal("c"), cty.StringVal("c")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ToCty(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.RawEquals(tt.want) {
				t.Errorf("ToCty(%#v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestToCtyErrors(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"NaN", map[string]any{"load": map[string]any{"avg": math.NaN()}}, "load.avg: NaN"},
		{"chan", map[string]any{"c": make(chan int)}, "c: unsupported value of type chan int"},
		{"int keys", map[string]any{"m": map[int]string{1: "a"}}, "m: map keys must be strings"},
	}
	for _, tt := range tests {
		_, err := ToCty(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestHostValue(t *testing.T) {
	hv, err := HostValue("web1", "127.1.0.1", []string{"all", "web"}, map[string]any{"tier": "gold", "n": int64(2)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := NewContext(map[string]cty.Value{"host": hv})
	for src, want := range map[string]cty.Value{
		`host.name`:                    cty.StringVal("web1"),
		`host.address`:                 cty.StringVal("127.1.0.1"),
		`contains(host.groups, "web")`: cty.True,
		`host.vars.tier`:               cty.StringVal("gold"),
		`host.vars.n + 1`:              cty.NumberIntVal(3),
		`length(host.groups)`:          cty.NumberIntVal(2),
	} {
		e, _ := ParseExpression(src, "<t>")
		got, diags := e.Value(ctx)
		if diags.HasErrors() || !got.RawEquals(want) {
			t.Errorf("%s = %#v (%s), want %#v", src, got, diags, want)
		}
	}
	empty, err := HostValue("h", "h", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !empty.GetAttr("groups").RawEquals(cty.ListValEmpty(cty.String)) || !empty.GetAttr("vars").RawEquals(cty.EmptyObjectVal) {
		t.Errorf("empty host value = %#v", empty)
	}
	if _, err := HostValue("h", "h", nil, map[string]any{"x": math.NaN()}); err == nil || !strings.Contains(err.Error(), "host.vars.x") {
		t.Errorf("NaN var: err = %v", err)
	}
}

func evalCtx(t *testing.T, facts map[string]any) *hcl.EvalContext {
	t.Helper()
	fv, err := ToCty(facts)
	if err != nil {
		t.Fatal(err)
	}
	hv, err := HostValue("h1", "10.0.0.1", []string{"all", "db"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewContext(map[string]cty.Value{"facts": fv, "host": hv})
}

func TestEvalBool(t *testing.T) {
	full := map[string]any{
		"role":       "db",
		"processors": map[string]any{"count": int64(16)},
		"os":         map[string]any{"name": "Debian", "release": map[string]any{"full": "12.11"}},
		"disks":      []any{map[string]any{"size": int64(10)}},
		"nothing":    nil,
	}
	noRole := map[string]any{"processors": map[string]any{"count": int64(16)}}
	small := map[string]any{"processors": map[string]any{"count": int64(2)}}
	tests := []struct {
		name      string
		facts     map[string]any
		src       string
		want      bool
		missing   string // comma-joined Ref.String()s
		wantError string
	}{
		{"equal", full, `facts.role == "db"`, true, "", ""},
		{"missing fact is no match", noRole, `facts.role == "db"`, false, "facts.role", ""},
		{"negated missing is no match", noRole, `facts.role != "db"`, false, "facts.role", ""},
		{"or with decisive other side", noRole, `facts.role == "db" || facts.processors.count > 8`, true, "facts.role", ""},
		{"or, other side false", small, `facts.role == "db" || facts.processors.count > 8`, false, "facts.role", ""},
		{"and with false side", small, `facts.processors.count > 8 && facts.role == "db"`, false, "facts.role", ""},
		{"nested missing cut at first step", full, `facts.os.nmae.x == "Debian"`, false, "facts.os.nmae", ""},
		{"index out of range", full, `facts.disks[3].size > 1`, false, "facts.disks[3]", ""},
		{"index ok", full, `facts.disks[0].size == 10`, true, "", ""},
		{"string key", full, `facts["os"].name == "Debian"`, true, "", ""},
		{"through null", full, `facts.nothing.x == 1`, false, "facts.nothing.x", ""},
		{"try hides missing", noRole, `try(facts.role, "none") == "none"`, true, "facts.role", ""},
		{"host", full, `contains(host.groups, "db") && host.name == "h1"`, true, "", ""},
		{"version fn", full, `version_gte(facts.os.release.full, "12.2")`, true, "", ""},
		{"null result is false", full, `facts.nothing`, false, "", ""},
		{"string true converts", map[string]any{"v": "true"}, `facts.v`, true, "", ""},
		{"not a bool", full, `facts.role`, false, "", "Incorrect condition type"},
		{"type error is an error", full, `facts.role > 3`, false, "", "Invalid operand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, diags := ParseExpression(tt.src, "<select>")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			got, missing, diags := EvalBool(e, evalCtx(t, tt.facts))
			if tt.wantError != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.wantError) {
					t.Fatalf("diags = %v, want %q", diags, tt.wantError)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("unexpected diags: %s", diags)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			var ms []string
			for _, m := range missing {
				ms = append(ms, m.String())
			}
			if s := strings.Join(ms, ","); s != tt.missing {
				t.Errorf("missing = %q, want %q", s, tt.missing)
			}
		})
	}
}

func TestRefRendering(t *testing.T) {
	r := Ref{Root: "facts", Path: []string{"os", "a.b", "0", "x"}}
	if got, want := r.String(), `facts.os["a.b"][0].x`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := r.Dotted(), "os.a.b.0.x"; got != want {
		t.Errorf("Dotted() = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		src  string
		want string // "" = valid
	}{
		{`facts.role == "db" && contains(host.groups, "web")`, ""},
		{`[for k, v in facts : k if v == 1] == []`, ""},
		{`fact.role == "db"`, `Unknown variable; There is no variable named "fact"`},
		{`uper(facts.role) == "DB"`, `Call to unknown function; There is no function named "uper"`},
	}
	for _, tt := range tests {
		e, diags := ParseExpression(tt.src, "<select>")
		if diags.HasErrors() {
			t.Fatalf("%s: %s", tt.src, diags)
		}
		diags = Validate(e, []string{"facts", "host"})
		switch {
		case tt.want == "" && diags.HasErrors():
			t.Errorf("%s: unexpected %s", tt.src, diags)
		case tt.want != "" && !strings.Contains(diags.Error(), tt.want):
			t.Errorf("%s: diags %q, want %q", tt.src, diags.Error(), tt.want)
		}
	}
}

func TestParseExpressionDiagnostics(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{`facts.role ==`, "<select>:1:14: Missing expression"},
		{`facts.role == "db" )`, "<select>:1:20: Extra characters after expression"},
		{`facts.role == "db`, "<select>:1:18: Unterminated template string"},
	}
	for _, tt := range tests {
		e, diags := ParseExpression(tt.src, "<select>")
		if e != nil || !diags.HasErrors() {
			t.Fatalf("%q: want a parse error", tt.src)
		}
		err := error(&DiagError{Diags: diags, Source: []byte(tt.src)})
		var de *DiagError
		if !errors.As(err, &de) {
			t.Fatal("DiagError does not unwrap")
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, tt.want) {
			t.Errorf("%q: error = %q, want prefix %q", tt.src, msg, tt.want)
		}
		if !strings.Contains(msg, "\n  "+tt.src+"\n") || !strings.Contains(msg, "^") {
			t.Errorf("%q: error lacks a source snippet with caret:\n%s", tt.src, msg)
		}
	}
}

func TestSnippetCaret(t *testing.T) {
	src := []byte("a == \"é\" && bad")
	rng := hcl.Range{Filename: "<s>", Start: hcl.Pos{Line: 1, Column: 13, Byte: 13}, End: hcl.Pos{Line: 1, Column: 16, Byte: 16}}
	got := FormatDiagnostics(hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Bad", Subject: &rng}}, src)
	want := "<s>:1:13: Bad\n  a == \"é\" && bad\n              ^^^"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
