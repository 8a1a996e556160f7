package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLockWait(t *testing.T) {
	tests := []struct {
		lock, cmd, want time.Duration
	}{
		{60 * time.Second, 0, 60 * time.Second},                // no step timeout: the action's own
		{60 * time.Second, 20 * time.Second, 10 * time.Second}, // half the step, so the lock is what gets reported
		{5 * time.Second, 20 * time.Second, 5 * time.Second},   // already short enough
		{60 * time.Second, time.Second, time.Second},           // never below a second
	}
	for _, tt := range tests {
		if got := lockWait(tt.lock, tt.cmd); got != tt.want {
			t.Errorf("lockWait(%s, %s) = %s, want %s", tt.lock, tt.cmd, got, tt.want)
		}
	}
}

// A step timeout shorter than the lock timeout: apt is told to wait half the
// step, and the held lock is reported with who holds it and how long we waited.
func TestPackageLockWaitFollowsStepTimeout(t *testing.T) {
	m, _ := PackageManagerFor("apt")
	held := "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 917 (python3)\n" +
		"N: Be aware that removing the lock file is not a solution and may break your system.\n" +
		"E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n"
	f := &fakeRunner{t: t, replies: []reply{{stdout: aptStatus("1.0", "3.0")}, {exit: 100, stderr: held}}}
	res, err := m.Apply(context.Background(), f, PackageAction{Name: "demo-web", Version: "2.0"}, Options{Timeout: 20 * time.Second})
	f.done()
	if !errors.Is(err, ErrLocked) || res.Status != StatusFailed {
		t.Fatalf("status %s, err %v; want failed with ErrLocked", res.Status, err)
	}
	if cmd := f.cmds[1].Cmd; !strings.Contains(cmd, "-o DPkg::Lock::Timeout=10 ") {
		t.Errorf("install command %q does not wait 10s for the lock", cmd)
	}
	want := "dpkg lock /var/lib/dpkg/lock-frontend held by pid 917 (python3); gave up after 10s"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
}

// apt 2.6 with DPkg::Lock::Timeout, as captured on the lab: the holder is named
// only in stdout's progress lines; stderr has the generic error.
func TestAptLockProblemRealOutput(t *testing.T) {
	m, _ := PackageManagerFor("apt")
	stdout := "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 9 (python3)...\n" +
		"Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 9 (python3)...\n"
	stderr := "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n"
	tests := []struct {
		name, stdout, want string
	}{
		{"holder on stdout", stdout, "package demo-web: lock held by another process: dpkg lock /var/lib/dpkg/lock-frontend held by pid 9 (python3); gave up after 10s"},
		{"stderr only", "", "package demo-web: lock held by another process: dpkg lock /var/lib/dpkg/lock-frontend held by another process; gave up after 10s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{t: t, replies: []reply{{stdout: aptStatus("", "3.0")}, {exit: 100, stdout: tt.stdout, stderr: stderr}}}
			_, err := m.Apply(context.Background(), f, PackageAction{Name: "demo-web", Version: "1.0"}, Options{Timeout: 20 * time.Second})
			f.done()
			if !errors.Is(err, ErrLocked) || err.Error() != tt.want {
				t.Errorf("err %v\nwant %s", err, tt.want)
			}
		})
	}
}
