package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "srv")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return &daemon{name: "testd", marker: "drover-daemon-test-" + filepath.Base(t.TempDir()), log: filepath.Join(dir, "testd.log")}, dir
}

// waitReady's three ways out: ready, the server exits (its log in the error), ctx ends.
func TestDaemonWaitReady(t *testing.T) {
	notYet := func(context.Context) error { return errors.New("not yet") }
	tests := []struct {
		name    string
		script  string
		ready   func(context.Context) error
		timeout time.Duration
		wantErr []string // "" entries: no error wanted
	}{
		{"ready", "sleep 60", func(context.Context) error { return nil }, time.Minute, nil},
		{"exits", "echo boom-in-log; exit 3", notYet, time.Minute, []string{"testd exited", "exit status 3", "boom-in-log"}},
		{"ctx ends", "sleep 60", notYet, 300 * time.Millisecond, []string{"context deadline exceeded", "last: not yet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dir := testDaemon(t)
			if err := d.start(exec.Command("sh", "-c", tt.script), false); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.stop(dir) })
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err := d.waitReady(ctx, tt.ready, 10*time.Millisecond, 50*time.Millisecond)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("waitReady: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("waitReady: no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("waitReady error %q lacks %q", err, w)
				}
			}
		})
	}
}

// stop kills the whole process group (a grandchild too), removes the dir, and a
// second stop is a no-op.
func TestDaemonStopKillsGroup(t *testing.T) {
	d, dir := testDaemon(t)
	pidFile := filepath.Join(dir, "child.pid")
	if err := d.start(exec.Command("sh", "-c", `sleep 60 & echo $! > "$1"; wait`, "sh", pidFile), false); err != nil {
		t.Fatal(err)
	}
	var child int
	err := d.waitReady(context.Background(), func(context.Context) error {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return err
		}
		_, err = fmt.Sscanf(string(b), "%d", &child)
		return err
	}, 10*time.Millisecond, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !d.isOurs() {
		t.Fatal("isOurs false for a running child")
	}
	if err := d.stop(dir); err != nil {
		t.Fatal(err)
	}
	if d.isOurs() {
		t.Error("isOurs true after stop")
	}
	// The grandchild was reparented to init (or a subreaper) and reaped there; poll
	// briefly for its exit rather than sleeping.
	deadline := time.Now().Add(stopTimeout)
	for syscall.Kill(child, 0) == nil && time.Now().Before(deadline) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); strings.Contains(string(b), ") Z ") {
			break // killed, waiting for its reaper
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child)); err == nil && strings.Contains(string(b), "sleep") {
		t.Errorf("grandchild %d still runs after stop: %q", child, b)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists after stop: %v", dir, err)
	}
	if err := d.stop(dir); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// A detached server (not our child: done is nil) is recognised by its command line
// marker only, and stop waits for it through /proc.
func TestDaemonDetachedByMarker(t *testing.T) {
	d, dir := testDaemon(t)
	cmd := exec.Command("sh", "-c", "sleep 60; true", d.marker)
	// A process group of its own, as start makes one; not started through d, so d
	// has no done channel and must go by /proc.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	d.pid = cmd.Process.Pid
	other := &daemon{name: "other", marker: "not-this-one", pid: cmd.Process.Pid}
	if other.isOurs() {
		t.Error("isOurs true for a process without the marker (pid reused)")
	}
	if !d.isOurs() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.pid))
		t.Fatalf("isOurs false for pid %d with cmdline %q (marker %q)", d.pid, b, d.marker)
	}
	// Our own zombie has an empty cmdline, so waitGone sees it gone before it is reaped.
	if err := d.stop(dir); err != nil {
		t.Fatal(err)
	}
	if d.isOurs() {
		t.Error("isOurs true after stop")
	}
}
