package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/transport"
)

func parseExecDoc(t *testing.T, out string) execDoc {
	t.Helper()
	var doc execDoc
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not one exec document: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document on stdout:\n%s", out)
	}
	return doc
}

// echoRun answers every command with its own text on stdout, after an optional delay.
func echoRun(delay time.Duration, code int) func(context.Context, *transport.Command) (*transport.Result, error) {
	return func(ctx context.Context, cmd *transport.Command) (*transport.Result, error) {
		if delay > 0 {
			timer := time.NewTimer(delay)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		out := cmd.Cmd + "\n"
		if cmd.Stdout != nil {
			io.WriteString(cmd.Stdout, out)
		}
		return &transport.Result{ExitCode: code, Stdout: []byte(out)}, nil
	}
}

func hostList(n int) (names []string, hosts map[string]*fakeHost) {
	hosts = map[string]*fakeHost{}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		names = append(names, name)
		hosts[name] = &fakeHost{run: echoRun(20*time.Millisecond, 0)}
	}
	return names, hosts
}

func TestParseBatch(t *testing.T) {
	tests := []struct {
		in      string
		total   int
		want    int
		wantErr bool
	}{
		{"", 7, 7, false}, {"", 0, 1, false}, {"3", 7, 3, false}, {"10", 7, 10, false},
		{"50%", 7, 4, false}, {"10%", 7, 1, false}, {"100%", 7, 7, false}, {"25%", 20, 5, false}, {"1%", 1, 1, false},
		{"0", 7, 0, true}, {"-2", 7, 0, true}, {"x", 7, 0, true}, {"0%", 7, 0, true}, {"150%", 7, 0, true}, {"%", 7, 0, true},
	}
	for _, tt := range tests {
		got, err := parseBatch(tt.in, tt.total)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseBatch(%q, %d) = %d, %v; want %d, error %v", tt.in, tt.total, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestExecBatchesRunInOrderWithSleep(t *testing.T) {
	names, hosts := hostList(7)
	h := newHarness(hosts)
	const sleep = 60 * time.Millisecond
	code := h.run(t, append(append([]string{"exec", "--json", "-i", strings.Join(names, ","), "--batch", "3", "--batch-sleep", sleep.String()},
		sshConfigNone...), "--", "echo", "hi")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	doc := parseExecDoc(t, h.stdout.String())
	if doc.Command != "echo hi" {
		t.Errorf("command %q, want the words after -- joined", doc.Command)
	}
	var batches []int
	first := map[int]time.Time{}
	last := map[int]time.Time{}
	for _, r := range doc.Hosts {
		batches = append(batches, r.Batch)
		if r.Status != statusOK || r.ExitCode == nil || *r.ExitCode != 0 || r.Stdout != "echo hi\n" {
			t.Errorf("%s: %+v", r.Name, r)
		}
		if f, ok := first[r.Batch]; !ok || r.Started.Before(f) {
			first[r.Batch] = r.Started
		}
		if l, ok := last[r.Batch]; !ok || r.Finished.After(l) {
			last[r.Batch] = r.Finished
		}
	}
	if !slices.Equal(batches, []int{1, 1, 1, 2, 2, 2, 3}) {
		t.Fatalf("batches %v", batches)
	}
	for b := 2; b <= 3; b++ {
		if gap := first[b].Sub(last[b-1]); gap < sleep {
			t.Errorf("batch %d started %s after batch %d finished, want ≥ %s", b, gap, b-1, sleep)
		}
	}
	if doc.Summary.Batches != 3 || doc.Summary.OK != 7 || len(doc.Summary.OKHosts) != 7 {
		t.Errorf("summary %+v", doc.Summary)
	}
}

func TestExecStatusesAndExitCode(t *testing.T) {
	hosts := map[string]*fakeHost{
		"h1": {run: echoRun(0, 0)},
		"h2": {run: echoRun(0, 3)},
		"h3": {dialErr: fmt.Errorf("dial: refused: %w", transport.ErrUnreachable)},
		"h4": {run: func(context.Context, *transport.Command) (*transport.Result, error) {
			return &transport.Result{ExitCode: -1}, fmt.Errorf("h4: %q after 1s: %w", "x", transport.ErrTimeout)
		}},
		"h5": {run: func(context.Context, *transport.Command) (*transport.Result, error) {
			return &transport.Result{ExitCode: -1, Signal: "KILL"}, nil
		}},
	}
	h := newHarness(hosts)
	code := h.run(t, append(append([]string{"exec", "-i", "h1,h2,h3,h4,h5", "--json"}, sshConfigNone...), "--", "true")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, h.stderrString())
	}
	doc := parseExecDoc(t, h.stdout.String())
	want := map[string]string{"h1": statusOK, "h2": statusFailed, "h3": statusUnreachable, "h4": statusFailed, "h5": statusFailed}
	for _, r := range doc.Hosts {
		if r.Status != want[r.Name] {
			t.Errorf("%s: %q (%s), want %q", r.Name, r.Status, r.Error, want[r.Name])
		}
	}
	if r := doc.Hosts[1]; r.ExitCode == nil || *r.ExitCode != 3 || r.Error != "exit status 3" {
		t.Errorf("h2: %+v", r)
	}
	if doc.Hosts[2].ExitCode != nil || doc.Hosts[3].ExitCode != nil {
		t.Error("exit_code set for a host whose command did not finish")
	}
	s := doc.Summary
	if s.OK != 1 || s.Failed != 3 || s.Unreachable != 1 || !slices.Equal(s.FailedHosts, []string{"h2", "h4", "h5"}) ||
		!slices.Equal(s.UnreachableHosts, []string{"h3"}) {
		t.Errorf("summary %+v", s)
	}
}

// Lines are prefixed per host and a line written in pieces comes out whole.
func TestExecStreamsPrefixedLines(t *testing.T) {
	chunky := func(ctx context.Context, cmd *transport.Command) (*transport.Result, error) {
		for _, p := range []string{"par", "tial\nline", "2\n", "last"} {
			io.WriteString(cmd.Stdout, p)
		}
		io.WriteString(cmd.Stderr, "oops\n")
		return &transport.Result{}, nil
	}
	h := newHarness(map[string]*fakeHost{"web1": {run: chunky}, "web2": {run: chunky}})
	code := h.run(t, append(append([]string{"exec", "-i", "web1,web2"}, sshConfigNone...), "--", "x")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	out := h.stdout.String()
	for _, host := range []string{"web1", "web2"} {
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, host+": ") {
				got = append(got, strings.TrimPrefix(l, host+": "))
			}
		}
		if !slices.Equal(got, []string{"partial", "line2", "last"}) {
			t.Errorf("%s lines %q in\n%s", host, got, out)
		}
		if !strings.Contains(h.stderrString(), host+": oops\n") {
			t.Errorf("remote stderr of %s not on stderr: %q", host, h.stderrString())
		}
	}
	if !strings.Contains(out, "2 hosts: 2 ok, 0 failed, 0 unreachable") || !strings.Contains(out, "ok: web1, web2") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestExecGroupPrintsHostsWhole(t *testing.T) {
	h := newHarness(map[string]*fakeHost{"h1": {run: echoRun(0, 0)}, "h2": {run: echoRun(0, 1)}})
	code := h.run(t, append(append([]string{"exec", "-i", "h1,h2", "--group", "--forks", "1"}, sshConfigNone...), "--", "uname", "-r")...)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	out := h.stdout.String()
	for _, want := range []string{"h1 [ok] ", "    uname -r\n", "h2 [failed: exit status 1] ", "failed: h2 (exit status 1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "h1: uname") {
		t.Errorf("--group streamed prefixed lines:\n%s", out)
	}
}

func TestExecPassesTimeoutAndBecome(t *testing.T) {
	var mu sync.Mutex
	var seen []*transport.Command
	record := func(_ context.Context, cmd *transport.Command) (*transport.Result, error) {
		mu.Lock()
		seen = append(seen, cmd)
		mu.Unlock()
		return &transport.Result{}, nil
	}
	h := newHarness(map[string]*fakeHost{"h1": {run: record}})
	h.readPassword = func(string) ([]byte, error) { return []byte("s3cret-pw"), nil }
	code := h.run(t, append(append([]string{"exec", "h1", "-i", "h1,h2", "--timeout", "7s", "--ask-become-pass", "--json"}, sshConfigNone...), "--", "id")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	if len(seen) != 1 || seen[0].Timeout != 7*time.Second || seen[0].Become == nil || string(seen[0].Become.Password) != "s3cret-pw" {
		t.Fatalf("commands %+v", seen)
	}
	if strings.Contains(h.stdout.String()+h.stderrString(), "s3cret") {
		t.Error("become password printed")
	}
}

func TestExecBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"exec", "-i", "h1,h2"}, "no remote command"},
		{"empty command", []string{"exec", "-i", "h1,h2", "--"}, "no remote command"},
		{"two patterns", []string{"exec", "h1", "h2", "-i", "h1,h2", "--", "true"}, "at most one PATTERN"},
		{"batch zero", []string{"exec", "-i", "h1,h2", "--batch", "0", "--", "true"}, "--batch 0"},
		{"batch percent", []string{"exec", "-i", "h1,h2", "--batch", "150%", "--", "true"}, "--batch 150%"},
		{"negative sleep", []string{"exec", "-i", "h1,h2", "--batch-sleep", "-1s", "--", "true"}, "--batch-sleep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(nil)
			args := slices.Clone(tc.args)
			if i := slices.Index(args, "--"); i >= 0 {
				args = slices.Insert(args, i, sshConfigNone...)
			} else {
				args = append(args, sshConfigNone...)
			}
			if code := h.run(t, args...); code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, h.stderrString())
			}
			if !strings.Contains(h.stderrString(), tc.want) {
				t.Errorf("stderr %q lacks %q", h.stderrString(), tc.want)
			}
			if len(h.conn.dialled) != 0 {
				t.Errorf("dialled %v on bad input", h.conn.dialled)
			}
		})
	}
}

// A first signal during batch 1 means batch 2 never starts; exit 4.
func TestExecInterruptStopsBatches(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan struct{})
	names, hosts := hostList(4)
	hosts["h1"].gate, hosts["h1"].started = gate, started
	h := newHarness(hosts)
	noticed := h.waitFor("stopping")
	go func() {
		<-started
		h.sigs <- os.Interrupt
		<-noticed
		close(gate)
	}()
	code := h.run(t, append(append([]string{"exec", "--json", "-i", strings.Join(names, ","), "--batch", "2"}, sshConfigNone...), "--", "true")...)
	if code != 4 {
		t.Fatalf("exit %d, want 4: %s", code, h.stderrString())
	}
	doc := parseExecDoc(t, h.stdout.String())
	var got []string
	for _, r := range doc.Hosts {
		got = append(got, r.Status)
	}
	if !slices.Equal(got, []string{statusOK, statusOK, statusSkipped, statusSkipped}) || !doc.Summary.Interrupted {
		t.Errorf("statuses %v, summary %+v", got, doc.Summary)
	}
}

func TestExecFlagsAfterCommandAreRemote(t *testing.T) {
	var got string
	h := newHarness(map[string]*fakeHost{"h1": {run: func(_ context.Context, cmd *transport.Command) (*transport.Result, error) {
		got = cmd.Cmd
		return &transport.Result{}, nil
	}}})
	code := h.run(t, append(append([]string{"exec", "h1", "--json", "-i", "h1,"}, sshConfigNone...), "--", "ls", "-l", "--json", "/")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	if got != "ls -l --json /" {
		t.Errorf("remote command %q", got)
	}
}
