package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReorder(t *testing.T) {
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	tests := []struct {
		in, want []string
	}{
		{[]string{"drover-lab", "kill", "h2", "--dir", "x"}, []string{"drover-lab", "kill", "--dir", "x", "h2"}},
		{[]string{"drover-lab", "kill", "--dir=x", "h2"}, []string{"drover-lab", "kill", "--dir=x", "h2"}},
		{[]string{"drover-lab", "status", "--json", "--dir", "x"}, []string{"drover-lab", "status", "--json", "--dir", "x"}},
		{[]string{"drover-lab", "exec", "h1", "--dir", "x", "--", "ls", "--dir", "y"}, []string{"drover-lab", "exec", "--dir", "x", "h1", "--", "ls", "--dir", "y"}},
		{[]string{"drover-lab", "up", "--hosts", "3", "--net", "-1"}, []string{"drover-lab", "up", "--hosts", "3", "--net", "-1"}},
		{[]string{"drover-lab", "nosuch", "a", "--b"}, []string{"drover-lab", "nosuch", "a", "--b"}},
	}
	for _, tt := range tests {
		if got := reorder(app, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("reorder(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestUpStatusDown drives the CLI as the demo does: up, control a host, down.
func TestUpStatusDown(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: boots real sshd hosts (needs root); run without -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("drover-lab needs root; run the tests as root")
	}
	dir := filepath.Join(t.TempDir(), "lab")
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		app := newApp(&out, &errOut)
		if err := app.RunContext(context.Background(), reorder(app, append([]string{"drover-lab"}, args...))); err != nil {
			t.Fatalf("drover-lab %q: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	run("up", "--hosts", "2", "--net", "-1", "--dir", dir)
	downed := false
	t.Cleanup(func() {
		if !downed {
			run("down", "--dir", dir)
		}
	})
	var st struct {
		Hosts []hostStatus `json:"hosts"`
	}
	states := func() []string {
		if err := json.Unmarshal([]byte(run("status", "--json", "--dir", dir)), &st); err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, h := range st.Hosts {
			s = append(s, h.State)
		}
		return s
	}
	if got := states(); !reflect.DeepEqual(got, []string{"running", "running"}) {
		t.Fatalf("states after up = %q", got)
	}
	if got := run("exec", "h2", "--dir", dir, "--", "hostname"); got != "h2\n" {
		t.Errorf("exec hostname = %q", got)
	}
	run("freeze", "h1", "--dir", dir)
	if got := states(); !reflect.DeepEqual(got, []string{"frozen", "running"}) {
		t.Errorf("states after freeze = %q", got)
	}
	run("thaw", "h1", "--dir", dir)
	run("kill", "h2", "--dir", dir)
	if got := states(); !reflect.DeepEqual(got, []string{"running", "down"}) {
		t.Errorf("states after kill = %q", got)
	}
	run("restart", "h2", "--dir", dir)
	if got := states(); !reflect.DeepEqual(got, []string{"running", "running"}) {
		t.Errorf("states after restart = %q", got)
	}
	if out := run("status", "--dir", dir); !strings.Contains(out, "h2") || !strings.Contains(out, "running") {
		t.Errorf("status table:\n%s", out)
	}
	run("down", "--dir", dir)
	downed = true
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s remains after down (%v)", dir, err)
	}
}
