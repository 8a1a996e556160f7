package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is a server the lab runs on the controller in its own process group
// (Prometheus, puppetserver): either our child (started here, reaped through done) or,
// after Open, a detached one another process started, found by pid and recognised by
// a marker in its command line. Its stop is safe for concurrent use.
type daemon struct {
	name   string // for messages: "prometheus", "puppetserver"
	marker string // a string in /proc/PID/cmdline only this server has
	log    string // its stdout and stderr

	pid  int
	cmd  *exec.Cmd     // nil when attached to a detached server (Open)
	done chan struct{} // closed when our child was reaped; nil when not our child

	stopMu  sync.Mutex
	stopped bool
}

// start runs cmd (its Path, Args, Dir and Env set by the caller) in its own process
// group with stdout and stderr appended to d.log. The group keeps a Ctrl-C at the
// terminal from reaching it and lets stop kill all it forks; unless detached it also
// dies with the calling process, so a crashed test leaves nothing running.
func (d *daemon) start(cmd *exec.Cmd, detached bool) error {
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("lab: %s: %w", d.name, err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !detached {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: %s: start: %w", d.name, err)
	}
	d.cmd, d.pid, d.done = cmd, cmd.Process.Pid, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	return nil
}

// claim checks that the server can have lab l's address .host and addr, and that dir
// does not exist yet (no other server for this lab).
func (d *daemon) claim(ctx context.Context, l *Lab, host int, addr, dir string) error {
	if len(l.Hosts) >= host {
		return fmt.Errorf("lab: %s: address .%d is taken by a host (lab of %d hosts)", d.name, host, len(l.Hosts))
	}
	if portOpen(ctx, addr) {
		return fmt.Errorf("lab: %s: something already listens on %s", d.name, addr)
	}
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("lab: %s: %s exists (another server for this lab?)", d.name, dir)
	}
	return nil
}

// waitUp waits until the server on addr is ready (see waitReady) and returns the time
// since began, which it logs to l.
func (d *daemon) waitUp(ctx context.Context, l *Lab, addr string, began time.Time, ready func(context.Context) error, first, most time.Duration) (time.Duration, error) {
	if err := d.waitReady(ctx, ready, first, most); err != nil {
		return 0, fmt.Errorf("lab: %s on %s did not start: %w", d.name, addr, err)
	}
	took := time.Since(began)
	l.logf("lab: %s up on %s in %s", d.name, addr, took.Round(time.Millisecond))
	return took, nil
}

// waitReady calls ready with a backoff (first, doubling up to most) until it returns
// nil, the server exits or ctx ends. Its error carries the end of the server's log.
func (d *daemon) waitReady(ctx context.Context, ready func(context.Context) error, first, most time.Duration) error {
	delay := first
	var last error = errors.New("no answer yet")
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-d.done:
			return d.withLog(fmt.Errorf("%s exited (%v)", d.name, d.cmd.ProcessState))
		case <-ctx.Done():
			return d.withLog(fmt.Errorf("%w (last: %v)", ctx.Err(), last))
		case <-time.After(delay):
		}
		delay = min(delay*2, most)
	}
}

func (d *daemon) withLog(err error) error {
	return fmt.Errorf("%w\n--- %s ---\n%s", err, d.log, consoleTail(d.log, 0))
}

// Log returns the end of the server's log, for test failure messages.
func (d *daemon) Log() string { return consoleTail(d.log, 0) }

// stop kills the server's process group, waits for it and removes dir. Idempotent.
func (d *daemon) stop(dir string) error {
	d.stopMu.Lock()
	defer d.stopMu.Unlock()
	if d.stopped {
		return nil
	}
	if d.pid != 0 && d.isOurs() {
		// No graceful shutdown: every file it has is about to go.
		if err := syscall.Kill(-d.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("lab: %s: kill: %w", d.name, err)
		}
		if err := d.waitGone(); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("lab: %s: remove files: %w", d.name, err)
	}
	d.stopped = true
	return nil
}

// isOurs: the pid is still this server (not exited, not reused by another process).
func (d *daemon) isOurs() bool {
	if d.done != nil {
		select {
		case <-d.done:
			return false
		default:
			return true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.pid))
	return err == nil && strings.Contains(string(b), d.marker)
}

// waitGone waits for a killed server: our child is reaped by the goroutine in start;
// a detached one (not our child) is reaped by init, so its /proc entry is polled.
func (d *daemon) waitGone() error {
	if d.done != nil {
		select {
		case <-d.done:
			return nil
		case <-time.After(stopTimeout):
			return fmt.Errorf("lab: %s: pid %d did not exit after SIGKILL", d.name, d.pid)
		}
	}
	deadline := time.Now().Add(stopTimeout)
	for d.isOurs() {
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: %s: pid %d did not exit after SIGKILL", d.name, d.pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
