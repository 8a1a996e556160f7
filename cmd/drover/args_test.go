package main

import (
	"slices"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"flags after positional",
			[]string{"ping", "h1", "--forks", "3"},
			[]string{"ping", "--forks", "3", "--", "h1"}},
		{"flags before positional unchanged in meaning",
			[]string{"ping", "--forks", "3", "h1"},
			[]string{"ping", "--forks", "3", "--", "h1"}},
		{"value flag value looks like a flag",
			[]string{"ping", "web", "-u", "-weird", "--json"},
			[]string{"ping", "-u", "-weird", "--json", "--", "web"}},
		{"flag=value is one token",
			[]string{"ping", "web", "--forks=3", "-i=h1,h2"},
			[]string{"ping", "--forks=3", "-i=h1,h2", "--", "web"}},
		{"bool flag does not eat the next argument",
			[]string{"ping", "--json", "web"},
			[]string{"ping", "--json", "--", "web"}},
		{"short aliases take values",
			[]string{"ping", "web", "-i", "inv.hcl", "-I", "/h[0-9]/"},
			[]string{"ping", "-i", "inv.hcl", "-I", "/h[0-9]/", "--", "web"}},
		{"everything after -- untouched",
			[]string{"ping", "web", "--json", "--", "uptime", "--forks", "2"},
			[]string{"ping", "--json", "--", "web", "--", "uptime", "--forks", "2"}},
		{"-- with no positional",
			[]string{"ping", "--json", "--", "-x"},
			[]string{"ping", "--json", "--", "--", "-x"}},
		{"subcommands",
			[]string{"inventory", "show", "h1", "--json", "-i", "a,b"},
			[]string{"inventory", "show", "--json", "-i", "a,b", "--", "h1"}},
		{"no positionals",
			[]string{"inventory", "list", "--json"},
			[]string{"inventory", "list", "--json"}},
		{"unknown flag kept in place of a flag",
			[]string{"ping", "h1", "--bogus"},
			[]string{"ping", "--bogus", "--", "h1"}},
		{"trailing value flag without value is left for the parser to reject",
			[]string{"ping", "h1", "--forks"},
			[]string{"ping", "--forks", "--", "h1"}},
		{"lone dash is a positional",
			[]string{"ping", "-"},
			[]string{"ping", "--", "-"}},
		{"unknown command is a positional of the root",
			[]string{"bogus", "x"},
			[]string{"--", "bogus", "x"}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newApp(&env{})
			got := reorderArgs(app, append([]string{"drover"}, tt.in...))
			want := append([]string{"drover"}, tt.want...)
			if !slices.Equal(got, want) {
				t.Errorf("reorderArgs(%q)\n got %q\nwant %q", tt.in, got, want)
			}
		})
	}
}

// The value-taking flags come from the definitions: every non-bool flag of ping, and
// none of its bool flags.
func TestValueFlagsFromDefinitions(t *testing.T) {
	m := valueFlags(append(commonFlags(), targetingFlags()...))
	for _, n := range []string{"inventory", "i", "ssh-config", "known-hosts", "user", "u", "key", "forks", "connect-timeout", "timeout", "with-fact", "F", "identity", "I", "select", "S"} {
		if !m[n] {
			t.Errorf("%s should take a value", n)
		}
	}
	for _, n := range []string{"json", "no-color", "verbose", "v", "become", "ask-become-pass"} {
		if m[n] {
			t.Errorf("%s should not take a value", n)
		}
	}
}
