package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/transport"
)

// localRun runs the command on this machine with /bin/sh, standing in for a host:
// the real fact gatherer then runs end to end.
func localRun(ctx context.Context, c *transport.Command) (*transport.Result, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Cmd)
	cmd.Stdin = c.Stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := &transport.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		return nil, err
	}
	return res, nil
}

// seedCache writes facts for hosts into a fresh state directory, as an earlier
// run would have.
func seedCache(t *testing.T, h *harness, all map[string]facts.Facts) {
	t.Helper()
	dir := t.TempDir()
	h.environ["DROVER_STATE_DIR"] = dir
	c := &facts.Cache{Dir: filepath.Join(dir, "facts"), TTL: facts.DefaultTTL}
	for name, f := range all {
		if err := c.Store(name, f); err != nil {
			t.Fatal(err)
		}
	}
}

func labFacts(role, dc, osName string, cpus int64) facts.Facts {
	return facts.Facts{
		"role": role, "datacenter": dc,
		"os":         map[string]any{"name": osName, "release": map[string]any{"major": "12"}},
		"processors": map[string]any{"count": cpus},
	}
}

func TestFactsGatherCacheAndRefresh(t *testing.T) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(map[string]*fakeHost{"h1": {run: localRun}, "h2": {run: localRun}})
	h.environ["DROVER_STATE_DIR"] = t.TempDir()
	args := append([]string{"facts", "--json", "-i", "h1,h2"}, sshConfigNone...)
	if code := h.run(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	var doc map[string]facts.Facts
	if err := json.Unmarshal(h.stdout.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, h.stdout.String())
	}
	if len(doc) != 2 {
		t.Fatalf("hosts %v, want h1 and h2", doc)
	}
	for _, n := range []string{"h1", "h2"} {
		if v, _ := doc[n].Get("networking.hostname"); v != hostname {
			t.Errorf("%s networking.hostname %v, want %q", n, v, hostname)
		}
		if v, ok := doc[n].Get("processors.count"); !ok || v.(float64) < 1 {
			t.Errorf("%s processors.count %v", n, v)
		}
	}

	// Second run: the cache is fresh, so no host is contacted even though they now fail.
	h2 := newHarness(map[string]*fakeHost{"h1": {dialErr: transport.ErrUnreachable}, "h2": {dialErr: transport.ErrUnreachable}})
	h2.environ["DROVER_STATE_DIR"] = h.environ["DROVER_STATE_DIR"]
	if code := h2.run(t, append(args, "-I", "h1")...); code != 0 {
		t.Fatalf("cached run: exit %d: %s", code, h2.stderrString())
	}
	if len(h2.conn.dialled) != 0 {
		t.Errorf("fresh cache, yet dialled %v", h2.conn.dialled)
	}
	if !strings.Contains(h2.stdout.String(), hostname) {
		t.Errorf("cached facts lack the hostname:\n%s", h2.stdout.String())
	}

	// --refresh gathers again; an unreachable host is on stderr only, exit 1.
	h3 := newHarness(map[string]*fakeHost{"h1": {run: localRun}, "h2": {dialErr: fmt.Errorf("refused: %w", transport.ErrUnreachable)}})
	h3.environ["DROVER_STATE_DIR"] = h.environ["DROVER_STATE_DIR"]
	if code := h3.run(t, append(args, "--refresh")...); code != 1 {
		t.Fatalf("refresh: exit %d, want 1: %s", code, h3.stderrString())
	}
	var doc3 map[string]any
	if err := json.Unmarshal(h3.stdout.Bytes(), &doc3); err != nil || len(doc3) != 1 || doc3["h1"] == nil {
		t.Errorf("refresh stdout (%v): %s", err, h3.stdout.String())
	}
	if !strings.Contains(h3.stderrString(), "h2: unreachable:") {
		t.Errorf("stderr %q does not report h2 unreachable", h3.stderrString())
	}
}

func TestFindFilters(t *testing.T) {
	seed := map[string]facts.Facts{
		"h1": labFacts("web", "dc1", "Debian", 2),
		"h2": labFacts("db", "dc1", "Debian", 4),
		"h3": labFacts("web", "dc2", "Debian", 1),
		"h4": labFacts("db", "dc2", "Debian", 8),
		"h5": labFacts("web", "dc1", "Ubuntu", 2),
	}
	inv := []string{"-i", "h1,h2,h3,h4,h5"}
	tests := []struct {
		name     string
		args     []string
		want     []string
		code     int
		stderr   string
		noDialIn bool
	}{
		{"os.name", []string{"-F", "os.name=Ubuntu"}, []string{"h5"}, 0, "", true},
		{"and", []string{"-F", "processors.count>=2", "-F", "role=db"}, []string{"h2", "h4"}, 0, "", true},
		{"select", []string{"-S", `facts.role == "db" || facts.datacenter == "dc2"`}, []string{"h2", "h3", "h4"}, 0, "", true},
		{"pattern and -I", []string{"h1,h2,h3", "-I", "/^h[12]$/", "-F", "datacenter=dc1"}, []string{"h1", "h2"}, 0, "", true},
		{"no filter", nil, []string{"h1", "h2", "h3", "h4", "h5"}, 0, "", true},
		{"typo", []string{"-F", "rolee=db"}, nil, 2, `no host has fact "rolee"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(map[string]*fakeHost{})
			seedCache(t, h, seed)
			args := append(append(append([]string{"find"}, tt.args...), inv...), sshConfigNone...)
			code := h.run(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, h.stderrString())
			}
			got := strings.Fields(h.stdout.String())
			if !slices.Equal(got, tt.want) {
				t.Errorf("found %v, want %v", got, tt.want)
			}
			if !strings.Contains(h.stderrString(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", h.stderrString(), tt.stderr)
			}
			if tt.noDialIn && len(h.conn.dialled) != 0 {
				t.Errorf("facts were cached, yet dialled %v", h.conn.dialled)
			}
		})
	}
}

// A host whose facts cannot be gathered is reported, never silently dropped.
func TestFindUnreachableHostExitsOne(t *testing.T) {
	h := newHarness(map[string]*fakeHost{"h3": {dialErr: fmt.Errorf("connect: %w", transport.ErrUnreachable)}})
	seedCache(t, h, map[string]facts.Facts{"h1": labFacts("db", "dc1", "Debian", 2), "h2": labFacts("web", "dc1", "Debian", 2)})
	code := h.run(t, append([]string{"find", "-F", "role=db", "-i", "h1,h2,h3"}, sshConfigNone...)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, h.stderrString())
	}
	if h.stdout.String() != "h1\n" {
		t.Errorf("stdout %q, want h1 only", h.stdout.String())
	}
	if !strings.Contains(h.stderrString(), "h3: unreachable:") {
		t.Errorf("stderr %q", h.stderrString())
	}
	if !slices.Equal(h.conn.dialled, []string{"h3"}) {
		t.Errorf("dialled %v, want only the uncached h3", h.conn.dialled)
	}
}

// exec and ping share the filters; a host lost while gathering is unreachable in
// their results.
func TestExecAndPingWithFactFilter(t *testing.T) {
	for _, cmd := range []string{"exec", "ping"} {
		t.Run(cmd, func(t *testing.T) {
			h := newHarness(map[string]*fakeHost{"h3": {dialErr: fmt.Errorf("connect: %w", transport.ErrUnreachable)}})
			seedCache(t, h, map[string]facts.Facts{"h1": labFacts("db", "dc1", "Debian", 2), "h2": labFacts("web", "dc1", "Debian", 2)})
			args := append([]string{cmd, "--json", "-F", "role=db", "-i", "h1,h2,h3"}, sshConfigNone...)
			if cmd == "exec" {
				args = append(args, "--", "true")
			}
			if code := h.run(t, args...); code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, h.stderrString())
			}
			var doc struct {
				Hosts []struct{ Name, Status string }
			}
			if err := json.Unmarshal(h.stdout.Bytes(), &doc); err != nil {
				t.Fatalf("%v\n%s", err, h.stdout.String())
			}
			got := fmt.Sprint(doc.Hosts)
			if got != "[{h1 ok} {h3 unreachable}]" {
				t.Errorf("hosts %s, want h1 ok and h3 unreachable", got)
			}
		})
	}
}

func TestFactsRendering(t *testing.T) {
	all := map[string]map[string]any{
		"h1": labFacts("web", "dc1", "Debian", 2),
		"h2": labFacts("db", "dc1", "Debian", 4),
		"h3": labFacts("web", "dc2", "Ubuntu", 2),
		"h4": {"os": map[string]any{"name": "Debian"}},
	}
	hosts := []string{"h1", "h2", "h3", "h4"}
	pal := newPalette(false)
	var b bytes.Buffer
	if err := renderFactTable(&b, []string{"role", "processors.count", "os.name"}, hosts, all); err != nil {
		t.Fatal(err)
	}
	if err := renderFactValues(&b, pal, "os.name", hosts, all); err != nil {
		t.Fatal(err)
	}
	if err := renderFactValues(&b, pal, "role", hosts, all); err != nil {
		t.Fatal(err)
	}
	if err := renderFactSummary(&b, pal, hosts, all); err != nil {
		t.Fatal(err)
	}
	golden(t, "facts.txt", b.Bytes())
}

// A run whose playbook reads no fact gathers only what its steps need and caches none
// of it; one that reads a fact gathers, and caches, everything.
func TestRunGathersCoreFactsOnlyWhenThePlaybookReadsNone(t *testing.T) {
	for _, tt := range []struct {
		name, targets string
		core          bool
	}{
		{"no fact read", "", true},
		{"where reads a fact", "targets {\n  where = facts.kernel == \"Linux\"\n}\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var gathers []string
			rec := func(ctx context.Context, c *transport.Command) (*transport.Result, error) {
				if c.Stdin != nil { // the gatherer arrives on stdin (sh -s)
					in, err := io.ReadAll(c.Stdin)
					if err != nil {
						return nil, err
					}
					if strings.Contains(string(in), "DROVER_BOUNDARY=") {
						mu.Lock()
						gathers = append(gathers, string(in))
						mu.Unlock()
					}
					cc := *c
					cc.Stdin = bytes.NewReader(in)
					c = &cc
				}
				return localRun(ctx, c)
			}
			h := newHarness(map[string]*fakeHost{"h1": {run: rec}})
			state := t.TempDir()
			h.environ["DROVER_STATE_DIR"] = state
			pb := filepath.Join(t.TempDir(), "p.hcl")
			src := "playbook \"p\" {}\n" + tt.targets + "steps {\n  command \"c\" { run = \"true\" }\n}\n"
			if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			if code := h.run(t, append([]string{"run", pb, "-i", "h1,", "--yes"}, sshConfigNone...)...); code != 0 {
				t.Fatalf("exit %d: %s", code, h.stderrString())
			}
			if len(gathers) != 1 {
				t.Fatalf("%d fact gatherings, want 1", len(gathers))
			}
			if got := strings.Contains(gathers[0], "\nDROVER_CORE=1\n"); got != tt.core {
				t.Errorf("core gathering %v, want %v", got, tt.core)
			}
			c := &facts.Cache{Dir: filepath.Join(state, "facts"), TTL: facts.DefaultTTL}
			_, _, fresh, _ := c.Load("h1")
			if fresh == tt.core {
				t.Errorf("facts cached: %v, want %v (core facts are never cached)", fresh, !tt.core)
			}
		})
	}
}
