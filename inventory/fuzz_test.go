package inventory

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// fuzzRangeRE finds numeric host ranges such as [1:99999] or [01:50:2].
var fuzzRangeRE = regexp.MustCompile(`\[(\d{1,9}):(\d{1,9})(?::\d{1,9})?\]`)

// fuzzAnyRangeRE finds any range, letters included.
var fuzzAnyRangeRE = regexp.MustCompile(`\[[^\]\n]{0,20}:[^\]\n]{0,20}\]`)

// expandsHuge reports whether data's host ranges could expand past a few
// thousand hosts. Such inputs are valid (the parser caps one range at
// maxRangeHosts) but take seconds each, which would stall the fuzzer, so they
// are skipped rather than run.
func expandsHuge(data []byte) bool {
	total := 0
	for _, m := range fuzzRangeRE.FindAllSubmatch(data, -1) {
		a, _ := strconv.Atoi(string(m[1]))
		b, _ := strconv.Atoi(string(m[2]))
		if n := b - a; n > 0 {
			total += n
		}
	}
	// Letter ranges multiply too: [a:z][a:z][a:z] is 17576 hosts.
	return total > 5000 || len(fuzzAnyRangeRE.FindAll(data, -1)) > 6
}

// seedFiles adds every testdata file matching glob to the corpus.
func seedFiles(f *testing.F, glob string) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files for %s: %v", glob, err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// checkInventory asserts invariants every successfully parsed inventory keeps.
func checkInventory(t *testing.T, inv *Inventory) {
	if inv.Groups["all"] == nil || inv.Groups["ungrouped"] == nil {
		t.Fatal("inventory lacks all or ungrouped")
	}
	for _, h := range inv.Hosts {
		if got, ok := inv.Lookup(h.Name); !ok || got != h {
			t.Fatalf("Lookup(%q) does not return the host", h.Name)
		}
	}
	list := inv.AnsibleList()
	if _, ok := list["_meta"]; !ok {
		t.Fatal("AnsibleList without _meta")
	}
	if _, err := inv.Select("all"); err != nil {
		t.Fatalf("Select(all): %v", err)
	}
}

func FuzzParseINI(f *testing.F) {
	seedFiles(f, "testdata/ansible/*.ini")
	f.Add([]byte("[a:children]\nb\n[b]\nh x=[1,{'a':(2,)}]\n"))
	f.Add([]byte("h[1:3]-[a:b]:22 v=0x1_0 w=1e5 s='\\x41'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if expandsHuge(data) {
			t.Skip("host ranges too large for a fuzz iteration")
		}
		inv, err := parseINI("fuzz.ini", data)
		if err == nil {
			checkInventory(t, inv)
		}
	})
}

func FuzzParseYAML(f *testing.F) {
	seedFiles(f, "testdata/ansible/*.y*ml")
	f.Add([]byte("all:\n  hosts: a\n  children:\n    g: {hosts: {'b[1:2]:22': {x: *y}}}\n"))
	f.Add([]byte("a: &x {children: {b: *x}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if expandsHuge(data) {
			t.Skip("host ranges too large for a fuzz iteration")
		}
		inv, err := parseYAML("fuzz.yml", data)
		if err == nil {
			checkInventory(t, inv)
		}
	})
}

func FuzzParseHCL(f *testing.F) {
	seedFiles(f, "testdata/*.hcl")
	f.Add([]byte(`host "a[1:3]" { vars = { i = index } }` + "\ngroup \"g\" { hosts = [\"a[1:2]\"] children = [\"g\"] }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if expandsHuge(data) {
			t.Skip("host ranges too large for a fuzz iteration")
		}
		inv, err := parseHCL("fuzz.hcl", data)
		if err == nil {
			checkInventory(t, inv)
		} else if err.Error() == "" {
			t.Fatal("error with an empty message")
		}
	})
}

func FuzzPattern(f *testing.F) {
	for _, s := range []string{"all", "web:&dc1:!web-03", "web,db", "~web-0[12]", "db?", "[!a]*", "all:!web",
		"", "!", "~(", "web]", "a:[b", "&&x", "web-[01:02]", "*.example.com", "~.*\\"} {
		f.Add(s)
	}
	inv := patternInventory(f)
	f.Fuzz(func(t *testing.T, pattern string) {
		hosts, err := inv.Select(pattern)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, h := range hosts {
			if seen[h.Name] {
				t.Fatalf("Select(%q) returned %s twice", pattern, h.Name)
			}
			seen[h.Name] = true
		}
	})
}
