package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/drover-sh/drover/transport"
)

// logTS is the timestamp --log puts before each line.
var logTS = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z `)

// readLog returns the log's lines without their timestamps, checking that
// every line has one, that there is no colour, and that the file is 0600.
func readLog(t *testing.T, path string) []string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("--log file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("--log file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "\x1b") {
		t.Errorf("--log has escape codes: %q", b)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !logTS.MatchString(l) {
			t.Errorf("log line without a timestamp: %q", l)
			continue
		}
		out = append(out, logTS.ReplaceAllString(l, ""))
	}
	return out
}

// hostLines are the lines of out before the summary's blank line.
func hostLines(out string) []string {
	head, _, _ := strings.Cut(out, "\n\n")
	if head == "" {
		return nil
	}
	return strings.Split(head, "\n")
}

// The ad-hoc commands' --log gets the per-host lines they print (uncoloured,
// timestamped, 0600); --quiet leaves only the failed and unreachable hosts'
// lines and the summary on the terminal, while the log keeps everything.
func TestAdhocLogAndQuiet(t *testing.T) {
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	tests := []struct {
		name string
		args []string
		// wantLog are the log's lines (any order: hosts finish concurrently).
		wantLog []string
		// wantQuiet are the host lines printed with --quiet.
		wantQuiet []string
	}{
		{
			name: "package status",
			args: []string{"package", "status", "demo-web", "-i", "web1,db1,down"},
			wantLog: []string{
				"web1  ok           2.0 (candidate 3.0)",
				"db1   ok           absent (candidate 3.0)",
				"down  unreachable  dial: refused: " + transport.ErrUnreachable.Error(),
			},
			wantQuiet: []string{"down  unreachable  dial: refused: " + transport.ErrUnreachable.Error()},
		},
		{
			name:    "exec streamed",
			args:    []string{"exec", "-i", "web1,db1,down", "--", "echo", "hi"},
			wantLog: []string{"web1: echo hi", "db1: echo hi", "down: [unreachable: dial: refused: " + transport.ErrUnreachable.Error() + "]"},
			// Host output is not shown with --quiet; the lost host is.
			wantQuiet: []string{"down: [unreachable: dial: refused: " + transport.ErrUnreachable.Error() + "]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup := func() *harness {
				h, _ := aptLab(t, map[string]string{"web1": "2.0", "db1": ""})
				if tt.args[0] == "exec" {
					h.conn.hosts["web1"].run = echoRun(0, 0)
					h.conn.hosts["db1"].run = echoRun(0, 0)
				}
				h.conn.hosts["down"] = &fakeHost{dialErr: fmt.Errorf("dial: refused: %w", transport.ErrUnreachable)}
				h.tty = true // coloured terminal output; the log must stay plain
				return h
			}
			// with puts the flags before exec's --.
			with := func(extra ...string) []string {
				extra = append(slices.Clone(sshConfigNone), extra...)
				i := slices.Index(tt.args, "--")
				if i < 0 {
					return append(slices.Clone(tt.args), extra...)
				}
				return append(append(slices.Clone(tt.args[:i]), extra...), tt.args[i:]...)
			}

			// Plain: the log has exactly the lines printed.
			h := setup()
			logPath := filepath.Join(t.TempDir(), "adhoc.log")
			if code := h.run(t, with("--log", logPath)...); code != exitHostsFailed {
				t.Fatalf("exit %d, want 1\n%s", code, h.stderrString())
			}
			got := readLog(t, logPath)
			if !slices.Equal(sorted(got), sorted(tt.wantLog)) {
				t.Errorf("log lines\n%q\nwant\n%q", got, tt.wantLog)
			}
			printed := hostLines(sgrTest.ReplaceAllString(h.stdout.String(), ""))
			if !slices.Equal(sorted(printed), sorted(got)) {
				t.Errorf("printed lines\n%q\ndiffer from the log's\n%q", printed, got)
			}

			// --quiet: only the failure and the summary; the log still has all,
			// appended after the first run's.
			h = setup()
			if code := h.run(t, with("--log", logPath, "--quiet")...); code != exitHostsFailed {
				t.Fatalf("exit %d, want 1\n%s", code, h.stderrString())
			}
			out := sgrTest.ReplaceAllString(h.stdout.String(), "")
			if q := hostLines(out); !slices.Equal(q, tt.wantQuiet) {
				t.Errorf("--quiet printed\n%q\nwant\n%q", q, tt.wantQuiet)
			}
			if !strings.Contains(out, "3 hosts: 2 ok") {
				t.Errorf("--quiet lost the summary:\n%s", out)
			}
			if got := readLog(t, logPath); len(got) != 2*len(tt.wantLog) {
				t.Errorf("log after two runs has %d lines, want %d:\n%q", len(got), 2*len(tt.wantLog), got)
			}

			// --json: stdout is the document alone; the log still gets the lines.
			h = setup()
			jsonLog := filepath.Join(t.TempDir(), "json.log")
			h.run(t, with("--log", jsonLog, "--json")...)
			var doc map[string]any
			if err := json.Unmarshal(h.stdout.Bytes(), &doc); err != nil {
				t.Errorf("stdout is not one JSON document: %v\n%s", err, h.stdout.String())
			}
			if got := readLog(t, jsonLog); !slices.Equal(sorted(got), sorted(tt.wantLog)) {
				t.Errorf("--json log lines\n%q\nwant\n%q", got, tt.wantLog)
			}
		})
	}
}

var sgrTest = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// A --log that cannot be opened is bad input (exit 2).
func TestAdhocLogUnwritable(t *testing.T) {
	h, _ := aptLab(t, map[string]string{"web1": "2.0", "db1": "2.0"})
	bad := filepath.Join(t.TempDir(), "missing-dir", "x.log")
	code := h.run(t, append([]string{"service", "status", "demo-web", "-i", "web1,db1", "--log", bad}, sshConfigNone...)...)
	if code != exitBadInput || !strings.Contains(h.stderrString(), "--log") {
		t.Errorf("exit %d, stderr %q; want 2 naming --log", code, h.stderrString())
	}
}
