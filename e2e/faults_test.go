package e2e

// Fault injection on the lab's real hosts: a host frozen mid-step, a dpkg lock
// held during a package step, a jump host dying mid-run. Each case asserts the
// hosts' statuses and errors in the report, the exit code, and that the run
// ended within its configured timeouts plus a margin.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-sh/drover/report"
)

// liveRun is a drover run in the background with --output json, so a test can
// inject its fault at a known point of the rollout (a step has started).
type liveRun struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	events chan report.Event
	stderr bytes.Buffer
	done   chan struct{}
	res    result
}

func startRun(t *testing.T, home string, args ...string) *liveRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rolloutTimeout)
	lr := &liveRun{cancel: cancel, events: make(chan report.Event, 1024), done: make(chan struct{})}
	lr.cmd = droverCmd(ctx, home, append(args, "--output", "json")...)
	lr.cmd.Stderr = &lr.stderr
	out, err := lr.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := lr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(lr.events)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			stdout.WriteString(sc.Text() + "\n")
			var ev report.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type != "" {
				select {
				case lr.events <- ev:
				default: // nobody is waiting for this many events
				}
			}
		}
	}()
	go func() {
		defer close(lr.done)
		wg.Wait()
		err := lr.cmd.Wait()
		lr.res = result{stdout: stdout.String(), stderr: lr.stderr.String(), elapsed: time.Since(start)}
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			lr.res.code = ee.ExitCode()
		default:
			lr.res.code = -1
			lr.res.stderr += "\n" + err.Error()
		}
	}()
	t.Cleanup(func() { cancel(); <-lr.done })
	return lr
}

// waitSteps returns once every host in hosts has started a step, or fails.
func (lr *liveRun) waitSteps(t *testing.T, hosts ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, h := range hosts {
		want[h] = true
	}
	limit := time.After(2 * time.Minute)
	for len(want) > 0 {
		select {
		case ev, ok := <-lr.events:
			if !ok {
				<-lr.done
				t.Fatalf("run ended before steps started on %v: exit %d\n%s", want, lr.res.code, lr.res.stderr)
			}
			if ev.Type == report.StepStart {
				delete(want, ev.Host)
			}
		case <-limit:
			t.Fatalf("no step started on %v within 2m", want)
		}
	}
}

// wait returns the finished run's result.
func (lr *liveRun) wait() result {
	for range lr.events { // drain, so the reader never blocks
	}
	<-lr.done
	return lr.res
}

func faultHost(rep *report.Report, name string) *report.Host {
	for _, st := range rep.Stages {
		for _, h := range st.Hosts {
			if h.Name == name {
				return h
			}
		}
	}
	return nil
}

// within fails unless d is at most budget*1.5+3s, the margin every fault case gets
// (the machine is loaded; the point is that nothing waits unbounded).
func within(t *testing.T, what string, d, budget time.Duration) {
	t.Helper()
	if limit := budget*3/2 + 3*time.Second; d > limit {
		t.Errorf("%s took %s; configured timeout %s, limit %s", what, d.Round(time.Millisecond), budget, limit)
	}
}

// Two hosts in one batch, both frozen mid-step: h7 is thawed after a second and
// its step completes; h8 stays frozen and its step fails at step_timeout. The
// run ends at the timeout, not when h8 comes back.
func TestFaultHostFrozenMidStep(t *testing.T) {
	const stepTimeout = 6 * time.Second
	pb := writePlaybook(t, fmt.Sprintf(`playbook "frozen" {}
settings { step_timeout = %q }
batch "pair" {
  size       = 2
  max_failed = 1
}
steps {
  command "slow" { run = "sleep 2" }
}
`, stepTimeout))
	t.Cleanup(func() { _ = shared.lab.Thaw("h7"); _ = shared.lab.Thaw("h8") })
	rep := filepath.Join(t.TempDir(), "report.json")
	lr := startRun(t, t.TempDir(), "run", pb, "-i", "h7,h8", "--ssh-config", shared.lab.SSHConfig, "--report", rep)
	lr.waitSteps(t, "h7", "h8")
	frozen := time.Now()
	for _, h := range []string{"h7", "h8"} {
		if err := shared.lab.Freeze(h); err != nil {
			t.Fatal(err)
		}
	}
	<-time.After(time.Second) // how long h7 stays frozen: the fault itself, not synchronisation
	if err := shared.lab.Thaw("h7"); err != nil {
		t.Fatal(err)
	}
	r := lr.wait()
	sinceFreeze := time.Since(frozen)
	if err := shared.lab.Thaw("h8"); err != nil {
		t.Fatal(err)
	}
	t.Logf("frozen mid-step: exit %d, %s after the freeze (whole run %s)", r.code, sinceFreeze.Round(time.Millisecond), r.elapsed.Round(time.Millisecond))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	within(t, "the run after the freeze", sinceFreeze, stepTimeout)
	got := rolloutReport(t, rep)
	if h := faultHost(got, "h7"); h == nil || h.Status != report.HostChanged {
		t.Errorf("h7 (thawed): %+v, want changed", h)
	}
	h8 := faultHost(got, "h8")
	if h8 == nil || h8.Status != report.HostFailed || !strings.Contains(h8.Error, "after 6s: command timed out") {
		t.Errorf("h8 (still frozen): %+v, want failed: after 6s: command timed out", h8)
	}
}

// holdDpkgLock takes dpkg's frontend lock on host the way apt does (fcntl, not
// flock(1), which apt would not see) and keeps it until the host dies.
func holdDpkgLock(t *testing.T, host string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	script := `rm -f /run/drover-lock-held
setsid python3 -c '
import fcntl, time
f = open("/var/lib/dpkg/lock-frontend", "w")
fcntl.lockf(f, fcntl.LOCK_EX)
open("/run/drover-lock-held", "w").close()
time.sleep(3600)
' </dev/null >/dev/null 2>&1 &
for i in $(seq 100); do [ -e /run/drover-lock-held ] && exit 0; sleep 0.1; done
echo "lock not taken" >&2; exit 1`
	if out, err := shared.lab.Exec(ctx, host, "sh", "-c", script); err != nil {
		t.Fatalf("holding the dpkg lock on %s: %v\n%s", host, err, out)
	}
}

// A package step meets a dpkg lock held by another process: apt waits half the
// step timeout for it, then the host fails naming the lock, its holder and the
// wait. The host is then killed (the holder dies with it, as in a crash) and
// restarted; the next run installs the package.
func TestFaultDpkgLockHeld(t *testing.T) {
	const host = "h9"
	const stepTimeout = 20 * time.Second
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if st, _ := shared.lab.HostState(host); st == "down" {
			if err := shared.lab.Restart(ctx, host); err != nil {
				t.Errorf("restarting %s: %v", host, err)
			}
		}
		_, _ = shared.lab.Exec(ctx, host, "sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q demo-web")
	})
	pb := writePlaybook(t, fmt.Sprintf(`playbook "locked" {}
settings { step_timeout = %q }
steps {
  package "demo-web" { version = "1.0" }
}
`, stepTimeout))
	home := t.TempDir()
	rep := filepath.Join(t.TempDir(), "report.json")
	holdDpkgLock(t, host)
	r := rolloutDrover(t, home, "run", pb, "-i", host+",", "--ssh-config", shared.lab.SSHConfig, "--report", rep)
	t.Logf("dpkg lock held: exit %d in %s", r.code, r.elapsed.Round(time.Millisecond))
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 (max_failed 0)\n%s", r.code, r.stderr)
	}
	h := faultHost(rolloutReport(t, rep), host)
	if h == nil || h.Status != report.HostFailed {
		t.Fatalf("%s: %+v, want failed", host, h)
	}
	for _, w := range []string{"dpkg lock /var/lib/dpkg/lock-frontend held by pid", "(python3)", "gave up after 10s"} {
		if !strings.Contains(h.Error, w) {
			t.Errorf("error %q lacks %q", h.Error, w)
		}
	}
	var stepMS int64
	for _, s := range h.Steps {
		stepMS += s.DurationMS
	}
	step := time.Duration(stepMS) * time.Millisecond
	if step < 10*time.Second {
		t.Errorf("the package step gave up after %s; it should wait 10s for the lock", step)
	}
	within(t, "the package step", step, stepTimeout)

	// Crash the host while the lock is held, bring it back, run again.
	if err := shared.lab.Kill(host); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := shared.lab.Restart(ctx, host); err != nil {
		t.Fatal(err)
	}
	rep2 := filepath.Join(t.TempDir(), "report.json")
	r = rolloutDrover(t, home, "run", pb, "-i", host+",", "--ssh-config", shared.lab.SSHConfig, "--report", rep2)
	t.Logf("after kill and restart: exit %d in %s", r.code, r.elapsed.Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("exit %d after restart, want 0\n%s", r.code, r.stderr)
	}
	if h := faultHost(rolloutReport(t, rep2), host); h == nil || h.Status != report.HostChanged {
		t.Errorf("%s after restart: %+v, want changed", host, h)
	}
}

// The jump host dies mid-step: the host behind it fails with the connection
// lost, the direct host is unaffected; a second run while the jump host is
// down reports the host behind it unreachable, naming the jump host, within
// the connect timeout.
func TestFaultJumpHostDies(t *testing.T) {
	const connect = 3 * time.Second
	cfg := jumpConfig(t, shared.lab.KnownHosts) // h4 through h1
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if st, _ := shared.lab.HostState("h1"); st == "down" {
			if err := shared.lab.Restart(ctx, "h1"); err != nil {
				t.Errorf("restarting h1: %v", err)
			}
		}
	})
	// The where reads a fact, so the first run gathers and caches every fact (a run
	// whose playbook reads none gathers only the core, uncached); the second run can
	// then reach h4 only from the engine.
	pb := writePlaybook(t, `playbook "jump" {}
targets { where = facts.kernel == "Linux" }
settings { step_timeout = "30s" }
remaining { max_failed = 1 }
steps {
  command "slow" { run = "sleep 4" }
}
`)
	home := t.TempDir()
	rep := filepath.Join(t.TempDir(), "report.json")
	args := []string{"run", pb, "-i", "h4,h5", "--ssh-config", cfg, "--connect-timeout", connect.String()}
	lr := startRun(t, home, append(args, "--report", rep)...)
	lr.waitSteps(t, "h4", "h5")
	killed := time.Now()
	if err := shared.lab.Kill("h1"); err != nil {
		t.Fatal(err)
	}
	r := lr.wait()
	t.Logf("jump host killed mid-step: exit %d, %s after the kill", r.code, time.Since(killed).Round(time.Millisecond))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	within(t, "the run after the kill", time.Since(killed), 4*time.Second) // h5's sleep bounds it
	got := rolloutReport(t, rep)
	h4 := faultHost(got, "h4")
	// step_start is emitted before the session opens on h4, so the kill may land
	// before the command started (the redial through the dead jump host fails:
	// unreachable, naming it) or while it runs (connection lost). Either is a
	// clear, correct report; anything else is not.
	switch {
	case h4 == nil:
		t.Errorf("h4 missing from the report")
	case h4.Status == report.HostFailed && strings.Contains(h4.Error, "connection lost"):
	case h4.Status == report.HostUnreachable && strings.Contains(h4.Error, "via jump host h1"):
	default:
		t.Errorf("h4 (behind h1): %+v, want failed: connection lost, or unreachable via jump host h1", h4)
	}
	if h5 := faultHost(got, "h5"); h5 == nil || h5.Status != report.HostChanged {
		t.Errorf("h5 (direct): %+v, want changed", h5)
	}

	// h1 stays down: facts are cached from the first run, so the engine itself
	// connects and reports h4 unreachable through the dead jump host.
	rep2 := filepath.Join(t.TempDir(), "report.json")
	r = rolloutDrover(t, home, append(args, "--report", rep2)...)
	t.Logf("jump host down: exit %d in %s", r.code, r.elapsed.Round(time.Millisecond))
	if r.code != 1 {
		t.Fatalf("exit %d with h1 down, want 1\n%s", r.code, r.stderr)
	}
	h4 = faultHost(rolloutReport(t, rep2), "h4")
	if h4 == nil || h4.Status != report.HostUnreachable || !strings.Contains(h4.Error, "via jump host h1") {
		t.Errorf("h4 with h1 down: %+v, want unreachable via jump host h1", h4)
	}
	within(t, "the run with the jump host down", r.elapsed, connect+4*time.Second) // connect, then h5's step
}

// The controller's disk fills up mid-run: the journal can no longer be written,
// so the run halts (it must not go on unrecorded), says why, and still hands
// over its report (--report on another filesystem).
func TestFaultJournalDiskFull(t *testing.T) {
	home := t.TempDir()
	state := filepath.Join(home, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", state).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tiny tmpfs as the state directory (needs root and mount): %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", state).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", state, err, out)
		}
	})
	const stepTimeout = 10 * time.Second
	pb := writePlaybook(t, fmt.Sprintf(`playbook "diskfull" {}
settings { step_timeout = %q }
batch "one" {
  size = 1
}
steps {
  command "slow" { run = "sleep 1" }
}
`, stepTimeout))
	rep := filepath.Join(t.TempDir(), "report.json")
	hosts := []string{"h11", "h12", "h13", "h14", "h15", "h16", "h17", "h18"}
	lr := startRun(t, home, "run", pb, "-i", strings.Join(hosts, ","), "--ssh-config", shared.lab.SSHConfig, "--report", rep)
	lr.waitSteps(t, "h11")
	// Fill the state directory. The journal's last page may still take an event
	// or two (tmpfs allocates by page); eight one-host batches need far more.
	f, err := os.Create(filepath.Join(state, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(make([]byte, 1<<20))
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v, want ENOSPC", err)
	}
	full := time.Now()
	r := lr.wait()
	t.Logf("disk full mid-run: exit %d, %s after the disk filled", r.code, time.Since(full).Round(time.Millisecond))
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 (halted: the journal cannot be written)\nstderr: %s", r.code, r.stderr)
	}
	within(t, "the run after the disk filled", time.Since(full), stepTimeout)
	if !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("stderr does not say why:\n%s", r.stderr)
	}
	got := rolloutReport(t, rep)
	if got.Status != report.Halted || !strings.Contains(got.Error, "no space left on device") {
		t.Errorf("report: status %s, error %q; want halted, no space left on device", got.Status, got.Error)
	}
	if h := faultHost(got, hosts[len(hosts)-1]); h == nil || h.Status != report.HostSkipped || len(h.Steps) != 0 {
		t.Errorf("%s (the last batch): %+v, want never started after the journal failed", hosts[len(hosts)-1], h)
	}
}
