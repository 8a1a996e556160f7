package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/drover-sh/drover/expr"
)

func TestParseFactFilter(t *testing.T) {
	tests := []struct {
		in             string
		key, op, value string
	}{
		{"role=db", "role", "=", "db"},
		{"role = db", "role", "=", "db"},
		{"role==db", "role", "=", "db"},
		{"role!=db", "role", "!=", "db"},
		{"processors.count>=4", "processors.count", ">=", "4"},
		{"processors.count <= 4", "processors.count", "<=", "4"},
		{"kernelrelease<6.1", "kernelrelease", "<", "6.1"},
		{"uptime > 100", "uptime", ">", "100"},
		{"os.name=~/^(Debian|Ubuntu)$/", "os.name", "=~", "/^(Debian|Ubuntu)$/"},
		{"os.name =~ /debian/i", "os.name", "=~", "/debian/i"},
		{`os.name="Debian GNU"`, "os.name", "=", "Debian GNU"},
		{`os.name='Debian'`, "os.name", "=", "Debian"},
		{"cmdline=a=b", "cmdline", "=", "a=b"},
		{"my-fact_1=x", "my-fact_1", "=", "x"},
	}
	for _, tt := range tests {
		f, err := ParseFactFilter(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if f.Key != tt.key || f.Op != tt.op || f.Value != tt.value {
			t.Errorf("%q: got %q %q %q, want %q %q %q", tt.in, f.Key, f.Op, f.Value, tt.key, tt.op, tt.value)
		}
		if (f.Op == OpMatch) != (f.Regex != nil) {
			t.Errorf("%q: Regex = %v for op %s", tt.in, f.Regex, f.Op)
		}
	}
}

func TestParseFactFilterErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "no operator"},
		{"role", "no operator"},
		{"=db", "missing KEY"},
		{"  != db", "missing KEY"},
		{"role=", "missing VALUE"},
		{"role=  ", "missing VALUE"},
		{`role=""`, "missing VALUE"},
		{"os name=Debian", `KEY "os name" contains a space`},
		{"role~=db", "contains '~'"},
		{".role=db", "empty path component"},
		{"os..name=x", "empty path component"},
		{"role!db", `unknown operator "!"`},
		{"role=>db", `unknown operator "=>"`},
		{"role<>db", `unknown operator "<>"`},
		{"role=!db", `unknown operator "=!"`},
		{"os.name=~Debian", `"Debian" is not a /regex/`},
		{"os.name=~/Debian", `is not a /regex/`},
		{"os.name=~/(/", "invalid regex /(/"},
		{"os.name=~/x/q", "unknown regex flag"},
	}
	for _, tt := range tests {
		_, err := ParseFactFilter(tt.in)
		if err == nil {
			t.Errorf("%q: no error, want %q", tt.in, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) {
			t.Errorf("%q: error %q, want it to contain %q and the filter text", tt.in, err, tt.want)
		}
	}
}

func filterFacts() map[string]any {
	return map[string]any{
		"role":          "db",
		"is_virtual":    true,
		"kernelrelease": "6.1.0-13-amd64",
		"os": map[string]any{
			"name":    "Debian",
			"release": map[string]any{"full": "12.11", "major": "12"},
		},
		"processors":   map[string]any{"count": int64(2), "models": []any{"Xeon", "Xeon"}},
		"load":         1.5,
		"big":          json.Number("123456789012345678901234567890"),
		"ruby.sitedir": "/usr/lib/ruby", // a top-level name with a dot
		"negative":     "-3",
		"ratio":        "0.75",
		"tags":         []any{"a", "b"},
		"empty":        nil,
		"plain":        "2.0",
	}
}

func TestFactFilterMatch(t *testing.T) {
	tests := []struct {
		filter  string
		matched bool
		known   bool
	}{
		// = and != : strings exactly, numbers and bools by value.
		{"role=db", true, true},
		{"role=DB", false, true},
		{"role!=db", false, true},
		{"role!=web", true, true},
		{"processors.count=2", true, true},
		{"processors.count=2.0", true, true},
		{"processors.count=02", true, true},
		{"processors.count=3", false, true},
		{"processors.count=two", false, true},
		{"processors.count!=two", true, true},
		{"is_virtual=true", true, true},
		{"is_virtual=TRUE", true, true},
		{"is_virtual=false", false, true},
		{"is_virtual=1", false, true},
		{"is_virtual!=false", true, true},
		{"load=1.5", true, true},
		{"big=123456789012345678901234567890", true, true},
		{"big=123456789012345678901234567891", false, true},
		{"plain=2", false, true}, // a string fact compares as a string
		{"plain=2.0", true, true},
		{`tags=["a","b"]`, true, true},
		{"empty=x", false, true},
		{"empty!=x", true, true},
		// ordering: numbers as numbers.
		{"processors.count>=2", true, true},
		{"processors.count>=4", false, true},
		{"processors.count<10", true, true}, // numeric, not "2" > "10" as text
		{"processors.count>1.5", true, true},
		{"load<2", true, true},
		{"big>123456789012345678901234567889", true, true},
		{"negative<-2", true, true},
		{"negative>-4", true, true},
		{"os.release.major>9", true, true},
		{"os.release.major<10", false, true},
		// ordering: versions.
		{"os.release.full>=12.1", true, true},
		{"os.release.full>12.2", true, true}, // 12.11 is a later release than 12.2
		{"os.release.full<12.2", false, true},
		{"os.release.full<=12.11", true, true},
		{"os.release.full<13", true, true},
		{"kernelrelease<6.1", false, true},
		{"kernelrelease>=6.1", true, true},
		{"kernelrelease<6.2", true, true},
		{"kernelrelease>6.1.0-12-amd64", true, true},
		{"ratio>0.8", true, true},            // dotted digits are releases: 0.75 is later than 0.8
		{"ratio>0.8e0", false, true},         // an exponent makes VALUE a number: 0.75 < 0.8
		{"processors.count>abc", true, true}, // not a number: versions, where digits sort above words
		// ordering never holds for bools, structures and null.
		{"is_virtual>false", false, true},
		{"tags>1", false, true},
		{"empty<1", false, true},
		{"os>1", false, true},
		// regex.
		{"os.name=~/^(Debian|Ubuntu)$/", true, true},
		{"os.name=~/^debian$/", false, true},
		{"os.name=~/^debian$/i", true, true},
		{"os.name=~/bia/", true, true},
		{"processors.count=~/^2$/", true, true},
		{"is_virtual=~/^true$/", true, true},
		{`tags=~/"b"/`, true, true},
		{`os=~/"name":"Debian"/`, true, true},
		{"empty=~/^$/", true, true},
		// paths.
		{"processors.models.1=Xeon", true, true},
		{"processors.models.2=Xeon", false, false},
		{"ruby.sitedir=/usr/lib/ruby", true, true},
		// missing facts: never a match, whatever the operator.
		{"datacenter=eu", false, false},
		{"datacenter!=eu", false, false},
		{"datacenter=~/./", false, false},
		{"os.nmae=Debian", false, false},
		{"role.x=1", false, false},
	}
	facts := filterFacts()
	for _, tt := range tests {
		f, err := ParseFactFilter(tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.filter, err)
		}
		m, k := f.Match(facts)
		if m != tt.matched || k != tt.known {
			t.Errorf("%s: Match = (%v, %v), want (%v, %v)", tt.filter, m, k, tt.matched, tt.known)
		}
	}
}

func TestIdentityFilter(t *testing.T) {
	tests := []struct {
		in    string
		name  string
		match bool
	}{
		{"web1", "web1", true},
		{"web1", "web10", false},
		{" web1 ", "web1", true},
		{"/^web[0-9]+$/", "web12", true},
		{"/^web[0-9]+$/", "db1", false},
		{"/web/", "old-web-3", true}, // unanchored
		{"/WEB/i", "web1", true},
		{"/WEB/", "web1", false},
	}
	for _, tt := range tests {
		f, err := ParseIdentityFilter(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if got := f.Match(tt.name); got != tt.match {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.in, tt.name, got, tt.match)
		}
	}
	for _, bad := range []struct{ in, want string }{
		{"", "empty"},
		{"  ", "empty"},
		{"/(/", "invalid regex"},
		{"/web", "not a /regex/"},
		{"/web/x", "unknown regex flag"},
	} {
		_, err := ParseIdentityFilter(bad.in)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err = %v, want %q", bad.in, err, bad.want)
		}
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct {
		name              string
		facts, identities []string
		sel               string
		want              []string
	}{
		{"bad -F", []string{"role=db", "role"}, nil, "", []string{"-F/--with-fact", `"role"`, "no operator"}},
		{"bad -I", nil, []string{"/(/"}, "", []string{"-I/--identity", `"/(/"`, "invalid regex"}},
		{"-S syntax", nil, nil, `facts.role == `, []string{"-S/--select", "<select>:1:15", "Missing expression", "\n  facts.role == \n", "^"}},
		{"-S extra", nil, nil, `facts.role == "db" db`, []string{"<select>:1:20: Extra characters after expression", "\n                     ^^"}},
		{"-S unknown variable", nil, nil, `fact.role == "db"`, []string{"<select>:1:1: Unknown variable", `"fact"`, "\n  ^^^^^^^^^"}},
		{"-S unknown function", nil, nil, `uper(facts.role) == "DB"`, []string{"Call to unknown function", `"uper"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSelector(tt.facts, tt.identities, tt.sel)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.sel != "" {
				var de *expr.DiagError
				if !errors.As(err, &de) || !de.Diags.HasErrors() {
					t.Errorf("-S error is not an *expr.DiagError: %T", err)
				}
			}
		})
	}
}

func TestParseSelector(t *testing.T) {
	s, err := ParseSelector([]string{"role=db", "processors.count>=4"}, []string{"web1", "/^db/"}, " ")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Facts) != 2 || len(s.Identities) != 2 || s.Select != nil {
		t.Errorf("selector = %+v", s)
	}
	tests := []struct {
		facts []string
		sel   string
		needs bool
	}{
		{nil, "", false},
		{[]string{"role=db"}, "", true},
		{nil, `facts.role == "db"`, true},
		{nil, `contains(host.groups, "web")`, false},
		{nil, `host.name == "x" || try(facts.x, 0) == 1`, true},
	}
	for _, tt := range tests {
		s, err := ParseSelector(tt.facts, nil, tt.sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.NeedsFacts(); got != tt.needs {
			t.Errorf("%v %q: NeedsFacts = %v, want %v", tt.facts, tt.sel, got, tt.needs)
		}
	}
}

func filterHosts() ([]*Host, map[string]map[string]any) {
	mk := func(name string, groups ...string) *Host {
		return &Host{Name: name, Address: "", Groups: append([]string{"all"}, groups...), Vars: map[string]any{"tier": name[:1]}}
	}
	hosts := []*Host{mk("db1", "db"), mk("db2", "db"), mk("web1", "web"), mk("web2", "web"), mk("gone", "web"), mk("bare")}
	facts := map[string]map[string]any{
		"db1":  {"role": "db", "processors": map[string]any{"count": int64(16)}, "os": map[string]any{"release": map[string]any{"full": "12.11"}}},
		"db2":  {"role": "db", "processors": map[string]any{"count": int64(2)}, "os": map[string]any{"release": map[string]any{"full": "11.9"}}},
		"web1": {"role": "web", "processors": map[string]any{"count": int64(8)}, "os": map[string]any{"release": map[string]any{"full": "12.2"}}},
		"web2": {"processors": map[string]any{"count": int64(32)}}, // no role fact
		// "gone" has no facts: unreachable.
		"bare": {},
	}
	return hosts, facts
}

func filterNames(hosts []*Host) []string {
	out := []string{}
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

func TestSelectorApply(t *testing.T) {
	tests := []struct {
		name       string
		facts, ids []string
		sel        string
		matched    []string
		unknown    []string
		missing    []string
		asked      []string // hosts whose facts were requested
	}{
		{name: "no filters", matched: []string{"db1", "db2", "web1", "web2", "gone", "bare"}, unknown: []string{}, missing: nil, asked: []string{}},
		{name: "fact equal", facts: []string{"role=db"}, matched: []string{"db1", "db2"}, unknown: []string{"gone"},
			asked: []string{"db1", "db2", "web1", "web2", "gone", "bare"}},
		{name: "-F AND", facts: []string{"role=db", "processors.count>=4"}, matched: []string{"db1"}, unknown: []string{"gone"}},
		{name: "version", facts: []string{"os.release.full>=12.2"}, matched: []string{"db1", "web1"}, unknown: []string{"gone"}},
		{name: "-I OR", ids: []string{"web1", "/^db/"}, matched: []string{"db1", "db2", "web1"}, unknown: []string{}, asked: []string{}},
		{name: "-I limits fact gathering", facts: []string{"role!=web"}, ids: []string{"/^(web|gone)/"}, matched: []string{}, unknown: []string{"gone"},
			asked: []string{"web1", "web2", "gone"}},
		{name: "typo reported", facts: []string{"rol=db"}, matched: []string{}, unknown: []string{"gone"}, missing: []string{"rol"}},
		{name: "key some hosts lack is no typo", facts: []string{"role!=web"}, matched: []string{"db1", "db2"}, unknown: []string{"gone"}},
		{name: "select", sel: `facts.role == "db" || facts.processors.count > 8`, matched: []string{"db1", "db2", "web2"}, unknown: []string{"gone"}},
		{name: "select typo", sel: `facts.os.relase.full == "12"`, matched: []string{}, unknown: []string{"gone"}, missing: []string{"os.relase"}},
		{name: "select host only needs no facts", sel: `contains(host.groups, "web") && host.vars.tier == "w"`, matched: []string{"web1", "web2"}, unknown: []string{}, asked: []string{}},
		{name: "select host var typo", sel: `host.vars.tir == "w"`, matched: []string{}, unknown: []string{}, missing: []string{"host.vars.tir"}},
		{name: "select and -F", facts: []string{"processors.count>4"}, sel: `version_lt(facts.os.release.full, "12.20")`, matched: []string{"db1", "web1"}, unknown: []string{"gone"}},
		{name: "duplicate missing key counted once per host", facts: []string{"zone=a", "zone!=b"}, sel: `facts.zone == "c"`, matched: []string{}, unknown: []string{"gone"}, missing: []string{"zone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSelector(tt.facts, tt.ids, tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			hosts, facts := filterHosts()
			asked := []string{}
			matched, unknown, missing, err := s.Apply(hosts, func(h *Host) (map[string]any, bool) {
				asked = append(asked, h.Name)
				f, ok := facts[h.Name]
				return f, ok
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := filterNames(matched); !reflect.DeepEqual(got, tt.matched) {
				t.Errorf("matched = %v, want %v", got, tt.matched)
			}
			if got := filterNames(unknown); !reflect.DeepEqual(got, tt.unknown) {
				t.Errorf("unknown = %v, want %v", got, tt.unknown)
			}
			if !reflect.DeepEqual(missing, tt.missing) {
				t.Errorf("missing = %#v, want %#v", missing, tt.missing)
			}
			if tt.asked != nil && !reflect.DeepEqual(asked, tt.asked) {
				t.Errorf("facts asked for %v, want %v", asked, tt.asked)
			}
		})
	}
}

func TestSelectorApplyErrors(t *testing.T) {
	hosts, facts := filterHosts()
	factsOf := func(h *Host) (map[string]any, bool) { f, ok := facts[h.Name]; return f, ok }
	tests := []struct {
		sel  string
		want []string
	}{
		{`facts.role`, []string{"-S/--select: host db1", "<select>:1:1: Incorrect condition type", "not string", "\n  facts.role\n  ^^^^^^^^^^"}},
		{`facts.role > 3`, []string{"host db1", "Invalid operand"}},
	}
	for _, tt := range tests {
		s, err := ParseSelector(nil, nil, tt.sel)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = s.Apply(hosts, factsOf)
		if err == nil {
			t.Fatalf("%s: no error", tt.sel)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tt.sel, err, w)
			}
		}
	}
	// A host that -F already excluded cannot fail the selection.
	s, err := ParseSelector([]string{"role=web"}, nil, `facts.role == "web" && facts.os.release.full > 1`)
	if err != nil {
		t.Fatal(err)
	}
	matched, _, _, err := s.Apply(hosts, factsOf)
	if err != nil || !reflect.DeepEqual(filterNames(matched), []string{"web1"}) {
		t.Errorf("matched %v, err %v; want [web1], nil", filterNames(matched), err)
	}
}

func BenchmarkSelectorApply10k(b *testing.B) {
	hosts := make([]*Host, 10000)
	facts := make(map[*Host]map[string]any, len(hosts))
	for i := range hosts {
		h := &Host{Name: fmt.Sprintf("h%05d", i), Groups: []string{"all"}}
		hosts[i] = h
		facts[h] = map[string]any{
			"role":       []string{"web", "db"}[i%2],
			"processors": map[string]any{"count": int64(i % 32)},
			"os":         map[string]any{"name": "Debian", "release": map[string]any{"full": fmt.Sprintf("12.%d", i%12)}},
		}
	}
	factsOf := func(h *Host) (map[string]any, bool) { f, ok := facts[h]; return f, ok }
	for _, bc := range []struct {
		name string
		f    []string
		sel  string
	}{
		{"F", []string{"role=db", "processors.count>=4", "os.release.full>=12.2"}, ""},
		{"S", nil, `facts.role == "db" && facts.processors.count >= 4 && version_gte(facts.os.release.full, "12.2")`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := ParseSelector(bc.f, nil, bc.sel)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				m, _, _, err := s.Apply(hosts, factsOf)
				if err != nil || len(m) == 0 {
					b.Fatalf("matched %d, err %v", len(m), err)
				}
			}
		})
	}
}
