package inventory

import (
	"strings"
	"testing"
)

func FuzzFactFilter(f *testing.F) {
	for _, s := range []string{
		"role=db", "role = db", "role!=db", "processors.count>=4", "kernelrelease<6.1",
		"os.release.full>=12.1", "os.name=~/^(Debian|Ubuntu)$/", "os.name=~/x/i", "a==b",
		"x<=-1e3", "k='v'", "=", "!", "a=~/(/", "a.b..c=1", "k=>v", "v1.2.3<v1.10", "1:1.0>2.0~rc1",
	} {
		f.Add(s, "12.11")
	}
	f.Add("n>5", "007")
	f.Add("n=~/./", "\xff")
	f.Fuzz(func(t *testing.T, filter, value string) {
		ff, err := ParseFactFilter(filter)
		if err != nil {
			if !strings.Contains(err.Error(), "fact filter") {
				t.Fatalf("error %q does not say what failed", err)
			}
			return
		}
		switch ff.Op {
		case OpEq, OpNe, OpLt, OpGt, OpLe, OpGe, OpMatch:
		default:
			t.Fatalf("%q: operator %q", filter, ff.Op)
		}
		if ff.Key == "" || ff.Value == "" || strings.ContainsAny(ff.Key, " \t\r\n") {
			t.Fatalf("%q: parsed into %+v", filter, ff)
		}
		if (ff.Op == OpMatch) != (ff.Regex != nil) {
			t.Fatalf("%q: op %s with regex %v", filter, ff.Op, ff.Regex)
		}
		facts := map[string]any{
			ff.Key: value,
			"n":    int64(len(value)),
			"f":    float64(len(value)) / 3,
			"b":    len(value)%2 == 0,
			"m":    map[string]any{"v": value, "l": []any{value, nil}},
		}
		if m, known := ff.Match(facts); !known || (m && ff.Op == OpNe && ff.Value == value) {
			t.Fatalf("%q on %q: Match = %v, %v", filter, value, m, known)
		}
		for _, k := range []string{"n", "f", "b", "m", "m.l", "m.l.1", "absent"} {
			ff.Key = k
			if m, known := ff.Match(facts); !known && m {
				t.Fatalf("%s: matched a missing fact", ff)
			}
		}
	})
}

func FuzzSelectExpr(f *testing.F) {
	for _, s := range []string{
		`facts.role == "db" || facts.processors.count > 8`,
		`contains(host.groups, "web") && host.vars.tier == "w"`,
		`version_gte(facts.os.release.full, "12.2")`,
		`try(facts.nope, false)`,
		`facts.role`,
		`facts.role ==`,
		`[for k, v in facts : k][0] == "role"`,
		`facts["os"].release.full > 12`,
		`regex("^d", facts.role) == "d"`,
		`!can(facts.x.y.z)`,
		`facts.list[*].a == []`,
		`"${facts.role}x" == "dbx"`,
		`fact.role`,
		`uper("x") == "X"`,
	} {
		f.Add(s)
	}
	hosts := []*Host{
		{Name: "db1", Groups: []string{"all", "db"}, Vars: map[string]any{"tier": "d"}},
		{Name: "web1", Groups: []string{"all", "web"}, Vars: map[string]any{"tier": "w", "n": int64(3)}},
		{Name: "gone"},
	}
	facts := map[string]map[string]any{
		"db1": {"role": "db", "processors": map[string]any{"count": int64(16)},
			"os": map[string]any{"release": map[string]any{"full": "12.11"}}, "list": []any{map[string]any{"a": int64(1)}}},
		"web1": {"processors": map[string]any{"count": "x"}, "nothing": nil},
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := ParseSelector(nil, nil, src)
		if err != nil {
			if !strings.Contains(err.Error(), "-S/--select") {
				t.Fatalf("error %q does not name the flag", err)
			}
			return
		}
		matched, unknown, _, err := s.Apply(hosts, func(h *Host) (map[string]any, bool) {
			fs, ok := facts[h.Name]
			return fs, ok
		})
		if err != nil {
			_ = err.Error()
			return
		}
		if len(matched)+len(unknown) > len(hosts) {
			t.Fatalf("%q: %d matched + %d unknown of %d hosts", src, len(matched), len(unknown), len(hosts))
		}
	})
}
