package inventory

import (
	"reflect"
	"strings"
	"testing"
)

const patternINI = `
[web]
web-[01:04]
[db]
db1
db2
[dc1:children]
web
db
[dc1]
lb1
[dc2]
web-04
cache.example.com
[empty]
`

func patternInventory(t testing.TB) *Inventory {
	t.Helper()
	inv, err := parseINI("p.ini", []byte("loose\n"+patternINI))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestSelect(t *testing.T) {
	inv := patternInventory(t)
	allHosts := names(inv.Hosts)
	tests := []struct {
		pattern string
		want    []string
	}{
		{"all", allHosts},
		{"*", allHosts},
		{"web", []string{"web-01", "web-02", "web-03", "web-04"}},
		{"web,db", []string{"web-01", "web-02", "web-03", "web-04", "db1", "db2"}},
		{"db:web", []string{"web-01", "web-02", "web-03", "web-04", "db1", "db2"}}, // inventory order
		{"web:&dc2", []string{"web-04"}},
		{"web:&dc1:!web-03", []string{"web-01", "web-02", "web-04"}},
		{"dc1", []string{"web-01", "web-02", "web-03", "web-04", "db1", "db2", "lb1"}},
		{"all:!web", []string{"loose", "db1", "db2", "lb1", "cache.example.com"}},
		{"!web", []string{"loose", "db1", "db2", "lb1", "cache.example.com"}},
		{"web-0[13]", []string{"web-01", "web-03"}},
		{"web-*", []string{"web-01", "web-02", "web-03", "web-04"}},
		{"db?", []string{"db1", "db2"}},
		{"db[!1]", []string{"db2"}},
		{"~web-0[12]", []string{"web-01", "web-02"}},
		{"~(db|lb)1", []string{"db1", "lb1"}},
		{"d*", []string{"web-01", "web-02", "web-03", "web-04", "db1", "db2", "lb1", "cache.example.com"}}, // groups dc1, dc2, db
		{"cache.example.com", []string{"cache.example.com"}},
		{"ungrouped", []string{"loose"}},
		{"empty", []string{}},
		{" web-01 , db1 ", []string{"web-01", "db1"}},
		{"web-01 db1", []string{"web-01", "db1"}},
		{"web,web-01", []string{"web-01", "web-02", "web-03", "web-04"}},
		{"&web", []string{"web-01", "web-02", "web-03", "web-04"}}, // no plain term means all
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := inv.Select(tt.pattern)
			if err != nil {
				t.Fatalf("Select(%q): %v", tt.pattern, err)
			}
			if n := names(got); !reflect.DeepEqual(n, tt.want) {
				t.Errorf("Select(%q) = %v, want %v", tt.pattern, n, tt.want)
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	inv := patternInventory(t)
	tests := []struct {
		pattern, want string
	}{
		{"", "empty host pattern"},
		{" , ,", "empty host pattern"},
		{"wbe", `"wbe" matches no host or group`},
		{"web:!wbe-01", `"wbe-01" matches no host or group`},
		{"web:&dc9", `"dc9" matches no host or group`},
		{"zz*", `"zz*" matches no host or group`},
		{"~web-(", "invalid regular expression"},
		{"web:!", `"!" must be followed`},
		{"web,&", `"&" must be followed`},
		{"web:db]", "unexpected ']'"},
		{"web:[db", "unclosed '['"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			_, err := inv.Select(tt.pattern)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Select(%q) error = %v, want it to contain %q", tt.pattern, err, tt.want)
			}
		})
	}
}
