package main

// The playbook lock (settings.lock, --lock): one run of a playbook at a time.
// The kernel's flock is the truth on this controller (it dies with its
// process, so a crashed run never blocks the next); the file's content names
// the holder for the refusal message and for state directories shared between
// controllers, where flock proves nothing about another machine's process.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// lockHolder is what a lock file records about the run that holds it.
type lockHolder struct {
	PID      int       `json:"pid"`
	Host     string    `json:"host"`
	Started  time.Time `json:"started"`
	Playbook string    `json:"playbook"`
}

func (h lockHolder) String() string {
	return fmt.Sprintf("pid %d on %s since %s", h.PID, h.Host, h.Started.UTC().Format(time.RFC3339))
}

var unsafeLockChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// lockPath is where the lock of playbook name lives.
func lockPath(state, name string) string {
	return filepath.Join(state, "locks", unsafeLockChars.ReplaceAllString(name, "_")+".lock")
}

// lockPlaybook takes the playbook's lock, warnings discarded.
func lockPlaybook(state, name string) (func(), error) {
	return acquireLock(state, name, func(string) {})
}

// acquireLock takes the lock of playbook name, or fails with exit 5 naming the
// holder. A record left by a run that is gone (its flock released: it crashed
// or was killed) is taken over with a warning. The returned func releases it.
func acquireLock(state, name string, warn func(string)) (func(), error) {
	if state == "" {
		return nil, errors.New("settings.lock: no state directory ($DROVER_STATE_DIR, $XDG_STATE_HOME or $HOME) to keep the lock in")
	}
	path := lockPath(state, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("settings.lock: %w", err)
	}
	l := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("settings.lock: %w", err)
	}
	me, _ := os.Hostname()
	if !ok {
		who := "another run (it has not recorded itself yet)"
		if h, ok := readLockHolder(path); ok {
			who = "another run: " + h.String()
		}
		return nil, &runExitError{code: exitNotStarted,
			msg: fmt.Sprintf("not started: playbook %q is locked by %s (lock file %s)", name, who, path)}
	}
	release := func() {
		// Truncate, never remove: a run that opened the file just before a
		// remove would lock an orphaned inode while a third locks a new one.
		_ = os.Truncate(path, 0)
		_ = l.Unlock()
	}
	if h, ok := readLockHolder(path); ok {
		if h.Host != me {
			_ = l.Unlock()
			return nil, &runExitError{code: exitNotStarted, msg: fmt.Sprintf(
				"not started: playbook %q is locked by a run on another controller: %s (lock file %s; remove it if that run is gone)",
				name, h, path)}
		}
		why := "it ended without releasing the lock"
		if !processAlive(h.PID) {
			why = "the process is gone"
		}
		warn(fmt.Sprintf("taking over the stale lock of playbook %q left by %s: %s", name, h, why))
	}
	rec, err := json.Marshal(lockHolder{PID: os.Getpid(), Host: me, Started: time.Now().UTC(), Playbook: name})
	if err != nil {
		release()
		return nil, fmt.Errorf("settings.lock: %w", err)
	}
	if err := writeLockRecord(path, append(rec, '\n')); err != nil {
		release()
		return nil, fmt.Errorf("settings.lock: %w", err)
	}
	return release, nil
}

// readLockHolder reads a lock file's record; false when it has none (free,
// or the holder has not written it yet).
func readLockHolder(path string) (lockHolder, bool) {
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return lockHolder{}, false
	}
	var h lockHolder
	if json.Unmarshal(b, &h) != nil || h.PID == 0 {
		return lockHolder{}, false
	}
	return h, true
}

func writeLockRecord(path string, rec []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(rec); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// processAlive says whether pid exists on this machine (EPERM: it exists but
// belongs to someone else).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
