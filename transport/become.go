package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"al.essio.dev/pkg/shellescape"
)

// ErrBecome: sudo refused to run the command (wrong or missing password, user
// not allowed). The command itself never ran.
var ErrBecome = errors.New("become (sudo) failed")

// becomeRun drives one command through sudo.
//
// The remote side is
//
//	sudo -S -p PROMPT -H -u USER -- sh -c 'echo MARKER && exec sh -c "$1"' drover-become CMD
//
// (sudo -n instead of -S -p when there is no password). The password is written
// only after sudo prints our random PROMPT on stderr, and the command's own stdin
// only after MARKER shows on stdout, i.e. once sudo has let the command run. So
// with NOPASSWD or a cached ticket the password is never fed to the command as
// input, and a second prompt means the password was wrong. PROMPT and MARKER are
// stripped from the captured output.
type becomeRun struct {
	command  string
	user     string
	password []byte
	prompt   string
	marker   string
	stdout   *markerFilter
	stderr   io.Writer

	prompts chan struct{} // one per prompt sudo printed
	ok      chan struct{} // closed when MARKER arrived: the command is running
	okOnce  sync.Once
	seen    atomic.Bool
	failed  chan struct{} // closed when sudo re-prompted (wrong password)
	done    chan struct{} // closed by stop: the session is over
	stopper sync.Once
}

func randomToken() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func newBecomeRun(cmd *Command, stdout, stderr io.Writer) (*becomeRun, error) {
	tok, err := randomToken()
	if err != nil {
		return nil, err
	}
	user := cmd.Become.User
	if user == "" {
		user = "root"
	}
	b := &becomeRun{
		user:    user,
		prompt:  "[drover-sudo:" + tok + "]",
		marker:  "drover-become-ok-" + tok,
		prompts: make(chan struct{}, 8),
		ok:      make(chan struct{}),
		failed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	inner := shellescape.Quote(`echo ` + b.marker + ` && exec sh -c "$1"`)
	if len(cmd.Become.Password) > 0 {
		b.password = append([]byte(nil), cmd.Become.Password...)
		b.command = fmt.Sprintf("sudo -S -p %s -H -u %s -- sh -c %s drover-become %s",
			shellescape.Quote(b.prompt), shellescape.Quote(user), inner, shellescape.Quote(cmd.Cmd))
		b.stderr = &promptFilter{next: stderr, prompt: []byte(b.prompt), onPrompt: b.onPrompt}
	} else {
		b.command = fmt.Sprintf("sudo -n -H -u %s -- sh -c %s drover-become %s",
			shellescape.Quote(user), inner, shellescape.Quote(cmd.Cmd))
		b.stderr = stderr
	}
	b.stdout = &markerFilter{next: stdout, marker: []byte(b.marker + "\n"), onMarker: b.onMarker}
	return b, nil
}

func (b *becomeRun) onPrompt() {
	select {
	case b.prompts <- struct{}{}:
	default:
	}
}

func (b *becomeRun) onMarker() {
	b.seen.Store(true)
	b.okOnce.Do(func() { close(b.ok) })
}

func (b *becomeRun) stop() { b.stopper.Do(func() { close(b.done) }) }

// feed answers sudo's prompt with the password, then hands stdin to the command.
func (b *becomeRun) feed(stdin io.WriteCloser, src io.Reader) {
	defer stdin.Close()
	defer clear(b.password)
	if len(b.password) > 0 {
		select {
		case <-b.prompts:
			line := append(append([]byte(nil), b.password...), '\n')
			_, err := stdin.Write(line)
			clear(line)
			if err != nil {
				return
			}
		case <-b.ok: // no password needed (NOPASSWD or cached): never send it
		case <-b.done:
			return
		}
	}
	select {
	case <-b.ok:
		if src != nil {
			_, _ = io.Copy(stdin, src)
		}
	case <-b.prompts:
		close(b.failed) // sudo asked again: the password was wrong
	case <-b.done:
	}
}

func (b *becomeRun) failure() error {
	return fmt.Errorf("%w: incorrect sudo password for becoming %s", ErrBecome, b.user)
}

// check turns a finished sudo run that never reached the command into ErrBecome,
// quoting sudo's own complaint (it never contains the password).
func (b *becomeRun) check(res *Result) error {
	if b.seen.Load() {
		return nil
	}
	msg := strings.TrimSpace(firstLines(res.Stderr, 3))
	switch {
	case strings.Contains(msg, "password is required"):
		return fmt.Errorf("%w: sudo needs a password to become %s (give a become password): %s", ErrBecome, b.user, msg)
	case strings.Contains(msg, "incorrect password"):
		return b.failure()
	case msg == "":
		msg = fmt.Sprintf("exit status %d", res.ExitCode)
	}
	return fmt.Errorf("%w: becoming %s: %s", ErrBecome, b.user, msg)
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " / ")
}

// markerFilter passes stdout through once the leading MARKER line has arrived,
// dropping the marker itself.
type markerFilter struct {
	next     io.Writer
	marker   []byte
	onMarker func()
	pending  []byte
	through  bool
}

func (m *markerFilter) Write(p []byte) (int, error) {
	if m.through {
		return m.next.Write(p)
	}
	m.pending = append(m.pending, p...)
	switch {
	case bytes.HasPrefix(m.pending, m.marker):
		m.through = true
		m.onMarker()
		rest := m.pending[len(m.marker):]
		m.pending = nil
		if len(rest) > 0 {
			if _, err := m.next.Write(rest); err != nil {
				return 0, err
			}
		}
	case bytes.HasPrefix(m.marker, m.pending):
		// Partial marker: wait for more.
	default:
		// Output that isn't ours came first; pass it on untouched.
		m.through = true
		out := m.pending
		m.pending = nil
		if _, err := m.next.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// promptFilter removes every occurrence of sudo's PROMPT from stderr and reports it.
type promptFilter struct {
	next     io.Writer
	prompt   []byte
	onPrompt func()
	pending  []byte
}

func (f *promptFilter) Write(p []byte) (int, error) {
	f.pending = append(f.pending, p...)
	for {
		i := bytes.Index(f.pending, f.prompt)
		if i < 0 {
			break
		}
		if i > 0 {
			if _, err := f.next.Write(f.pending[:i]); err != nil {
				return 0, err
			}
		}
		f.pending = f.pending[i+len(f.prompt):]
		f.onPrompt()
	}
	// Hold back a tail that could be the start of a prompt split across writes.
	keep := 0
	for k := min(len(f.pending), len(f.prompt)-1); k > 0; k-- {
		if bytes.HasSuffix(f.pending, f.prompt[:k]) {
			keep = k
			break
		}
	}
	if out := f.pending[:len(f.pending)-keep]; len(out) > 0 {
		if _, err := f.next.Write(out); err != nil {
			return 0, err
		}
	}
	f.pending = append([]byte(nil), f.pending[len(f.pending)-keep:]...)
	return len(p), nil
}
