// Package notify delivers a finished run's summary: a JSON POST to a webhook
// (retried, with a timeout) and/or a controller command that reads it on
// stdin. A notification is best effort: callers report its error as a warning
// and never let it change the run's outcome.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/drover-sh/drover/playbook"
)

// Defaults, documented in docs/playbooks.md (notify).
const (
	DefaultTimeout  = 10 * time.Second // per webhook attempt; the whole command
	DefaultAttempts = 3
	DefaultBackoff  = time.Second // doubled after every failed attempt
)

// maxErrBody is how much of a failing response or a command's stderr an error
// quotes: enough to say why, never a whole HTML page.
const maxErrBody = 512

// Option changes how Send delivers.
type Option func(*sender)

// WithBackoff sets the wait before the second attempt (doubled after that).
func WithBackoff(d time.Duration) Option { return func(s *sender) { s.backoff = d } }

// WithAttempts sets how many times the webhook is tried (at least 1).
func WithAttempts(n int) Option { return func(s *sender) { s.attempts = max(n, 1) } }

// WithClient sets the HTTP client (its Timeout is left alone; Send adds a
// per-attempt deadline of its own).
func WithClient(c *http.Client) Option { return func(s *sender) { s.client = c } }

// WithEnv adds KEY=VALUE pairs to the command's environment (after Env's).
func WithEnv(kv ...string) Option { return func(s *sender) { s.env = append(s.env, kv...) } }

type sender struct {
	attempts int
	backoff  time.Duration
	client   *http.Client
	env      []string
}

// Send delivers summary (a JSON document) to n's webhook and command. Both are
// tried even when one fails; the error joins what failed. Errors name the
// webhook by scheme and host only: its path, query and user info often carry
// the credentials (Slack-style hook tokens, basic auth).
func Send(ctx context.Context, n *playbook.Notify, summary []byte, opts ...Option) error {
	if n == nil {
		return nil
	}
	s := &sender{attempts: DefaultAttempts, backoff: DefaultBackoff, client: http.DefaultClient}
	for _, o := range opts {
		o(s)
	}
	s.env = append(Env(summary), s.env...)
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var errs []error
	if n.Webhook != "" {
		if err := s.webhook(ctx, n.Webhook, n.Headers, timeout, summary); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Command != "" {
		if err := s.command(ctx, n.Command, timeout, summary); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// webhook POSTs summary, retrying network errors, 5xx and 429 with a doubling
// backoff. Other 4xx are the receiver saying no: retrying would not help.
func (s *sender) webhook(ctx context.Context, raw string, headers map[string]string, timeout time.Duration, summary []byte) error {
	safe := RedactURL(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("notify webhook %s: not an http:// or https:// URL", safe)
	}
	wait := s.backoff
	var last error
	for attempt := 1; attempt <= s.attempts; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("notify webhook %s: gave up after %d attempt(s): %w (last: %w)", safe, attempt-1, ctx.Err(), last)
			case <-t.C:
			}
			wait *= 2
		}
		var retry bool
		retry, last = s.post(ctx, raw, headers, timeout, summary)
		if last == nil {
			return nil
		}
		if !retry {
			return fmt.Errorf("notify webhook %s: %w", safe, last)
		}
	}
	return fmt.Errorf("notify webhook %s: %d attempts failed, last: %w", safe, s.attempts, last)
}

// post makes one attempt; retry says whether another could succeed.
func (s *sender) post(ctx context.Context, raw string, headers map[string]string, timeout time.Duration, summary []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, raw, bytes.NewReader(summary))
	if err != nil {
		return false, errors.New("cannot build the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "drover-notify")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return true, fmt.Errorf("no answer within %s", timeout)
		}
		return true, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	err = fmt.Errorf("HTTP %s", resp.Status)
	if b := strings.TrimSpace(string(body)); b != "" {
		err = fmt.Errorf("HTTP %s: %s", resp.Status, strconv.Quote(b))
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
}

// command runs cmdline with sh -c, summary on stdin, in its own process group
// so a timeout stops everything it started (a mail program's children too).
func (s *sender) command(ctx context.Context, cmdline string, timeout time.Duration, summary []byte) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cmdline)
	cmd.Stdin = bytes.NewReader(summary)
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: maxErrBody}
	cmd.Env = append(os.Environ(), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second // a grandchild holding stderr open must not hang us
	err := cmd.Run()
	if err == nil {
		return nil
	}
	// The command line is the playbook author's, but it may interpolate a
	// sensitive variable: errors say "notify command", never the text.
	if ctx.Err() != nil {
		return fmt.Errorf("notify command: no exit within %s: killed", timeout)
	}
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if msg != "" {
			return fmt.Errorf("notify command: exit %d: %s", ee.ExitCode(), strconv.Quote(msg))
		}
		return fmt.Errorf("notify command: exit %d", ee.ExitCode())
	}
	return fmt.Errorf("notify command: %w", err)
}

// limitedBuffer keeps the first max bytes and swallows the rest, so a chatty
// command neither blocks on a full pipe nor fills memory.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// RedactURL is raw as errors and logs may show it: scheme and host, the rest
// elided, because a webhook's path, query or user info is often its secret.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "[redacted URL]"
	}
	out := u.Scheme + "://" + u.Host
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		out += "/…"
	}
	return out
}

// Env is the environment a notify command gets besides drover's own:
// DROVER_RUN_ID, DROVER_PLAYBOOK and DROVER_STATUS read from summary, so a
// one-line `mail -s "$DROVER_PLAYBOOK $DROVER_STATUS"` needs no JSON parsing.
func Env(summary []byte) []string {
	var s struct {
		RunID    string `json:"run_id"`
		Playbook string `json:"playbook"`
		Status   string `json:"status"`
	}
	if json.Unmarshal(summary, &s) != nil {
		return nil
	}
	return []string{"DROVER_RUN_ID=" + s.RunID, "DROVER_PLAYBOOK=" + s.Playbook, "DROVER_STATUS=" + s.Status}
}
