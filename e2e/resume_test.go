package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drover-sh/drover/journal"
	"github.com/drover-sh/drover/report"
)

// resumeCounter is bumped by the playbook's last step on each host: how many
// times the host ran its steps to the end.
const resumeCounter = "/var/tmp/drover-counter"

// resumePlaybook: 12 lab hosts in batches of 4, a slow step, then the counter.
func resumePlaybook(t *testing.T) (path string, hosts []string) {
	t.Helper()
	for _, h := range shared.lab.Hosts[:12] {
		hosts = append(hosts, h.Name)
	}
	quoted := make([]string, len(hosts))
	for i, h := range hosts {
		quoted[i] = strconv.Quote(h)
	}
	src := fmt.Sprintf(`playbook "e2e-resume" {}
targets {
  hosts = [%s]
}
batch "all" {
  size = 4
}
steps {
  command "slow" { run = "sleep 2" }
  command "count" { run = "n=$(cat %[2]s 2>/dev/null || echo 0); echo $((n+1)) > %[2]s" }
}
`, strings.Join(quoted, ", "), resumeCounter)
	path = filepath.Join(t.TempDir(), "resume.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, hosts
}

func resumeCounters(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for h, s := range rolloutOnAll(t, "cat "+resumeCounter+" 2>/dev/null || echo 0") {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s: counter %q", h, s)
		}
		out[h] = n
	}
	return out
}

// startDrover starts a run in the background with state under home.
func startDrover(t *testing.T, home string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := droverCmd(context.Background(), home, args...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &errb
}

// awaitJournal polls the run's journal (the only run under home) until an
// event matches, and returns the journal's path.
func awaitJournal(t *testing.T, home string, out *bytes.Buffer, match func(report.Event) bool) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		paths, _ := filepath.Glob(filepath.Join(home, "state", "runs", "*", journal.FileName))
		if len(paths) == 1 {
			b, _ := os.ReadFile(paths[0])
			for _, line := range strings.Split(string(b), "\n") {
				var rec journal.Record
				if json.Unmarshal([]byte(line), &rec) == nil && match(rec.Event) {
					return paths[0]
				}
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a file another process writes
	}
	t.Fatalf("the journal never showed the event\n%s", out.String())
	return ""
}

func exitOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// A run SIGKILLed while its second batch starts, then --resume last: every
// host ends patched, hosts that had finished exactly once, and one report for
// the run covers every host.
func TestResumeAfterSIGKILL(t *testing.T) {
	t.Cleanup(func() { rolloutOnAll(t, "rm -f "+resumeCounter) })
	rolloutOnAll(t, "rm -f "+resumeCounter)
	pb, hosts := resumePlaybook(t)
	home := t.TempDir()
	args := append([]string{"run", pb}, labArgs()...)

	cmd, out := startDrover(t, home, args...)
	jpath := awaitJournal(t, home, out, func(ev report.Event) bool { return ev.Type == report.BatchStart && ev.Batch == 2 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := exitOf(cmd.Wait()); code != -int(syscall.SIGKILL) {
		t.Fatalf("drover ended with %d before the SIGKILL\n%s", code, out.String())
	}
	st, err := journal.Replay(jpath)
	if err != nil {
		t.Fatalf("the journal after SIGKILL: %v", err)
	}
	if st.Status != "" {
		t.Fatalf("the killed run's journal says it finished: %s", st.Status)
	}
	finished := map[string]bool{}
	for _, h := range hosts {
		if st.Finished("all", h) != nil {
			finished[h] = true
		}
	}
	t.Logf("killed with %d hosts finished, in flight %v", len(finished), st.InFlight)
	for _, h := range hosts[:4] {
		if !finished[h] {
			t.Fatalf("%s (batch 1) not finished in the journal when batch 2 started", h)
		}
	}

	r := rolloutDrover(t, home, append(args, "--resume", "last")...)
	if r.code != 0 {
		t.Fatalf("resume: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	reports, _ := filepath.Glob(filepath.Join(home, "state", "runs", "*", "report.json"))
	if len(reports) != 1 || filepath.Base(filepath.Dir(reports[0])) != st.Header.RunID {
		t.Fatalf("reports %v, want one, of run %s", reports, st.Header.RunID)
	}
	rep := rolloutReport(t, reports[0])
	if rep.Status != report.Succeeded || rep.RunID != st.Header.RunID {
		t.Errorf("merged report: %s %s", rep.RunID, rep.Status)
	}
	statuses := map[string]string{}
	for _, s := range rep.Stages {
		for _, h := range s.Hosts {
			statuses[h.Name] = h.Status
		}
	}
	counters := resumeCounters(t)
	for _, h := range hosts {
		if statuses[h] != report.HostChanged {
			t.Errorf("%s: %s in the merged report, want changed", h, statuses[h])
		}
		switch n := counters[h]; {
		case finished[h] && n != 1:
			t.Errorf("%s finished before the kill, yet its steps ran %d times", h, n)
		case n < 1 || n > 2:
			t.Errorf("%s (in flight or not started at the kill): counter %d, want 1, or 2 if it had just finished", h, n)
		}
	}
	if st2, err := journal.Replay(jpath); err != nil || !st2.Complete() || st2.Attempts != 2 {
		t.Errorf("journal after the resume: %+v, %v", st2, err)
	}
}

// SIGTERM mid-run: hosts finish their current step, nothing new starts, exit
// 4, report interrupted, and the journal's last record is the run's end.
func TestSIGTERMCompletesJournal(t *testing.T) {
	t.Cleanup(func() { rolloutOnAll(t, "rm -f "+resumeCounter) })
	pb, hosts := resumePlaybook(t)
	home := t.TempDir()
	cmd, out := startDrover(t, home, append([]string{"run", pb}, labArgs()...)...)
	jpath := awaitJournal(t, home, out, func(ev report.Event) bool { return ev.Type == report.HostStart })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("drover did not stop after SIGTERM\n%s", out.String())
	}
	if code := exitOf(err); code != 4 {
		t.Fatalf("exit %d, want 4\n%s", code, out.String())
	}
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last journal.Record
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Type != report.RunFinish || last.Status != report.Interrupted {
		t.Fatalf("the journal's last record is %q, want run_finish interrupted", lines[len(lines)-1])
	}
	rep := rolloutReport(t, filepath.Join(filepath.Dir(jpath), "report.json"))
	if rep.Status != report.Interrupted {
		t.Errorf("report status %s, want interrupted", rep.Status)
	}
	skipped := 0
	for _, h := range rep.Stages[0].Hosts {
		if h.Status == report.HostSkipped {
			skipped++
		}
	}
	if skipped < len(hosts)-4 {
		t.Errorf("%d hosts skipped, want at least the %d after the first batch", skipped, len(hosts)-4)
	}
	// Nothing new started: a host's counter moved only if the journal
	// recorded its count step (hosts finish the step they are in).
	counted := map[string]int{}
	for _, line := range lines {
		var rec journal.Record
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Type == report.StepFinish && rec.Step == "command count" {
			counted[rec.Host]++
		}
	}
	for h, n := range resumeCounters(t) {
		if n != counted[h] {
			t.Errorf("%s: counter %d, journal recorded %d count steps", h, n, counted[h])
		}
	}
}
