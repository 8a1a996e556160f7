package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drover-sh/drover/report"
)

// withBlock adds HCL blocks to the unit test playbook (before targets) and
// writes it next to the original.
func withBlock(t *testing.T, pb, hcl string) string {
	t.Helper()
	src := strings.Replace(runPlaybook, "targets {", hcl+"\n\ntargets {", 1)
	out := filepath.Join(filepath.Dir(pb), "variant.hcl")
	if err := os.WriteFile(out, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// hookServer is a webhook receiver on 127.0.0.1:0 answering status (200 when 0).
type hookServer struct {
	mu     sync.Mutex
	bodies [][]byte
	types  []string
	status int
	url    string
}

func newHookServer(t *testing.T, status int) *hookServer {
	t.Helper()
	hs := &hookServer{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hs.mu.Lock()
		hs.bodies = append(hs.bodies, b)
		hs.types = append(hs.types, r.Header.Get("Content-Type"))
		code := hs.status
		hs.mu.Unlock()
		if code != 0 {
			w.WriteHeader(code)
		}
	}))
	t.Cleanup(srv.Close)
	hs.url = srv.URL + "/hook/s3cret"
	return hs
}

func (hs *hookServer) summaries(t *testing.T) []runSummary {
	t.Helper()
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var out []runSummary
	for i, b := range hs.bodies {
		var s runSummary
		if err := json.Unmarshal(b, &s); err != nil || hs.types[i] != "application/json" {
			t.Fatalf("webhook got %q (%s): %v", b, hs.types[i], err)
		}
		out = append(out, s)
	}
	return out
}

// The webhook receives the summary at the end of a run, succeeded or halted,
// and the summary agrees with the report.
func TestRunNotifyWebhook(t *testing.T) {
	tests := []struct {
		name   string
		fail   map[string]bool
		status string
		code   int
	}{
		{"succeeded", nil, report.Succeeded, exitOK},
		{"halted", map[string]bool{"h1": true}, report.Halted, exitHalted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHookServer(t, 0)
			h, pb, _ := runSetup(t, &fleet{fail: tt.fail})
			pb = withBlock(t, pb, `notify { webhook = "`+hs.url+`" }`)
			out := filepath.Join(t.TempDir(), "r.json")
			if code := h.run(t, runArgs(pb, "--report", out)...); code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, h.stderrString())
			}
			got := hs.summaries(t)
			if len(got) != 1 {
				t.Fatalf("webhook called %d times, want once", len(got))
			}
			rep := readReport(t, out)
			s := got[0]
			if s.RunID != rep.RunID || s.Status != tt.status || s.Playbook != "t" || s.ExitCode != tt.code || s.Hosts.Total != 6 {
				t.Errorf("summary %+v, report %s %s", s, rep.RunID, rep.Status)
			}
			if tt.status == report.Halted && (len(s.FailedHosts) != 1 || s.FailedHosts[0].Name != "h1" || s.Error == "") {
				t.Errorf("halted summary: failed hosts %+v, error %q", s.FailedHosts, s.Error)
			}
			if !strings.HasSuffix(s.Report, filepath.Join("runs", rep.RunID, "report.json")) {
				t.Errorf("summary's report path %q", s.Report)
			}
			hs.mu.Lock()
			body := string(hs.bodies[0])
			hs.mu.Unlock()
			if strings.Contains(body, "tok-very-secret") {
				t.Errorf("the sensitive variable reached the webhook")
			}
		})
	}
}

// A webhook that is down or refuses never changes the run's result: a warning,
// with the URL's secret path elided, and the run's own exit code.
func TestRunNotifyFailureKeepsResult(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/hook/s3cret"
	l.Close()
	refusing := newHookServer(t, http.StatusForbidden)
	tests := []struct {
		name, url, want string
	}{
		{"down", down, "3 attempts failed"},
		{"403", refusing.url, "HTTP 403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, pb, _ := runSetup(t, &fleet{})
			pb = withBlock(t, pb, `notify { webhook = "`+tt.url+`" }`)
			if code := h.run(t, runArgs(pb)...); code != exitOK {
				t.Fatalf("exit %d, want 0: a failing webhook changed the result\n%s", code, h.stderrString())
			}
			stderr := h.stderrString()
			if !strings.Contains(stderr, "drover: warning: notify webhook") || !strings.Contains(stderr, tt.want) {
				t.Errorf("no notify warning with %q:\n%s", tt.want, stderr)
			}
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("the webhook's path leaked:\n%s", stderr)
			}
		})
	}
}

// notify { command } gets the summary on stdin, after an interrupt too.
func TestRunNotifyCommand(t *testing.T) {
	got := filepath.Join(t.TempDir(), "summary.json")
	h, pb, _ := runSetup(t, &fleet{fail: map[string]bool{"h5": true}})
	pb = withBlock(t, pb, `notify { command = "cat > `+got+`; echo \"$DROVER_STATUS\" >> `+got+`.status" }`)
	if code := h.run(t, runArgs(pb)...); code != exitHostsFailed {
		t.Fatalf("exit %d, want 1\n%s", code, h.stderrString())
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("the command did not run: %v\n%s", err, h.stderrString())
	}
	var s runSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	st, _ := os.ReadFile(got + ".status")
	if s.Status != report.CompletedWithFailures || s.Hosts.Failed+s.Hosts.RolledBack != 1 || string(st) != report.CompletedWithFailures+"\n" {
		t.Errorf("summary %+v, $DROVER_STATUS %q", s, st)
	}
}

// A closed maintenance window is an end of a run too: notified, exit 5.
func TestRunNotifyWindowClosed(t *testing.T) {
	hs := newHookServer(t, 0)
	h, pb, _ := runSetup(t, &fleet{})
	// Open only on the day after tomorrow: closed now whatever the time.
	day := weekdays[(int(time.Now().UTC().Weekday())+2)%7]
	pb = withBlock(t, pb, `settings {
  window {
    days  = ["`+day+`"]
    start = "00:00"
    end   = "23:59"
  }
}
notify { webhook = "`+hs.url+`" }`)
	if code := h.run(t, runArgs(pb)...); code != exitNotStarted {
		t.Fatalf("exit %d, want 5\n%s", code, h.stderrString())
	}
	got := hs.summaries(t)
	if len(got) != 1 || got[0].Status != report.WindowClosed || got[0].ExitCode != exitNotStarted || !strings.Contains(got[0].Error, "window") {
		t.Errorf("webhook got %+v", got)
	}
	if len(h.conn.dialled) != 0 {
		t.Errorf("dialled %v with the window closed", h.conn.dialled)
	}
}

// An interrupted run is notified too, though its context is cancelled.
func TestRunNotifyInterrupted(t *testing.T) {
	hs := newHookServer(t, 0)
	f, inStep, release := blockedFleet()
	h, pb, _ := runSetup(t, f)
	pb = withBlock(t, pb, `notify { webhook = "`+hs.url+`" }`)
	interruptInStep(t, h, inStep, release, syscall.SIGINT, runArgs(pb)...)
	if got := hs.summaries(t); len(got) != 1 || got[0].Status != report.Interrupted {
		t.Errorf("webhook got %+v, want one interrupted summary", got)
	}
}

var holderRE = regexp.MustCompile(`locked by another run: pid (\d+) on (\S+) since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// Two concurrent runs of one playbook: the first proceeds, the second exits 5
// at once naming the holder; after the first ends the lock is free again.
func TestRunLockConcurrent(t *testing.T) {
	f, inStep, release := blockedFleet()
	first, pb, _ := runSetup(t, f)
	pb = withBlock(t, pb, "settings {\n  lock = true\n}")
	code := make(chan int, 1)
	go func() { code <- first.run(t, runArgs(pb)...) }()
	select {
	case <-inStep:
	case c := <-code:
		t.Fatalf("the first run ended (exit %d) before its canary step\n%s", c, first.stderrString())
	case <-time.After(60 * time.Second):
		t.Fatal("the first run never reached its canary step")
	}
	second := newHarness((&fleet{cmds: map[string][]string{}}).hosts())
	second.environ = first.environ // the same state directory
	logf := filepath.Join(t.TempDir(), "second.log")
	if c := second.run(t, runArgs(pb, "--log", logf)...); c != exitNotStarted {
		close(release)
		t.Fatalf("second run: exit %d, want 5\n%s", c, second.stderrString())
	}
	if b, _ := os.ReadFile(logf); !regexp.MustCompile(`^\S+Z not started: playbook "t" is locked by another run: pid \d+`).Match(b) {
		t.Errorf("--log lacks the refusal: %q", b)
	}
	m := holderRE.FindStringSubmatch(second.stderrString())
	host, _ := os.Hostname()
	if m == nil || m[1] != strconv.Itoa(os.Getpid()) || m[2] != host {
		t.Errorf("the refusal does not name the holder (pid %d on %s):\n%s", os.Getpid(), host, second.stderrString())
	}
	if len(second.conn.dialled) != 0 {
		t.Errorf("the refused run dialled %v", second.conn.dialled)
	}
	close(release)
	if c := <-code; c != exitOK {
		t.Fatalf("first run: exit %d\n%s", c, first.stderrString())
	}
	third := newHarness((&fleet{cmds: map[string][]string{}}).hosts())
	third.environ = first.environ
	if c := third.run(t, runArgs(pb)...); c != exitOK {
		t.Fatalf("after the first run: exit %d\n%s", c, third.stderrString())
	}
}

// deadPID is the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("running /bin/true: %v", err)
	}
	return cmd.Process.Pid
}

// A lock record whose holder is gone is taken over with a warning; one from
// another controller is not (flock cannot vouch for another machine); --lock
// locks a playbook without settings.lock.
func TestRunLockRecords(t *testing.T) {
	host, _ := os.Hostname()
	started := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		holder   *lockHolder
		held     bool // hold the flock in this process
		args     []string
		wantCode int
		want     string
	}{
		{"stale record, process gone", &lockHolder{PID: -1, Host: host, Started: started}, false, nil, exitOK,
			"warning: taking over the stale lock of playbook \"t\" left by pid "},
		{"record from another controller", &lockHolder{PID: 4242, Host: "other-ctl", Started: started}, false, nil, exitNotStarted,
			"locked by a run on another controller: pid 4242 on other-ctl since 2026-03-02T01:00:00Z"},
		{"--lock without settings.lock", nil, true, []string{"--lock"}, exitNotStarted, "locked by another run: pid "},
		{"no --lock, no settings.lock: not locked", nil, true, nil, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, pb, state := runSetup(t, &fleet{})
			if tt.args == nil && !tt.held {
				pb = withBlock(t, pb, "settings {\n  lock = true\n}")
			}
			path := lockPath(state, "t")
			if tt.holder != nil {
				if tt.holder.PID == -1 {
					tt.holder.PID = deadPID(t)
				}
				b, _ := json.Marshal(tt.holder)
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.held {
				unlock, err := lockPlaybook(state, "t")
				if err != nil {
					t.Fatal(err)
				}
				defer unlock()
			}
			if c := h.run(t, runArgs(pb, tt.args...)...); c != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", c, tt.wantCode, h.stderrString())
			}
			if !strings.Contains(h.stderrString(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, h.stderrString())
			}
			if tt.wantCode == exitOK && !tt.held {
				if b, _ := os.ReadFile(path); len(b) != 0 {
					t.Errorf("the lock file still names a holder after the run: %s", b)
				}
			}
		})
	}
}

// acquireLock writes the holder record and refuses a second taker with it.
func TestAcquireLockRecord(t *testing.T) {
	state := t.TempDir()
	unlock, err := acquireLock(state, "web/deploy", func(s string) { t.Errorf("unexpected warning %s", s) })
	if err != nil {
		t.Fatal(err)
	}
	h, ok := readLockHolder(lockPath(state, "web/deploy"))
	host, _ := os.Hostname()
	if !ok || h.PID != os.Getpid() || h.Host != host || h.Playbook != "web/deploy" || time.Since(h.Started) > time.Hour {
		t.Errorf("record %+v", h)
	}
	if filepath.Base(lockPath(state, "web/deploy")) != "web_deploy.lock" {
		t.Errorf("lock path %s", lockPath(state, "web/deploy"))
	}
	_, err = acquireLock(state, "web/deploy", func(string) {})
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != exitNotStarted {
		t.Fatalf("second taker: %v, want exit 5", err)
	}
	unlock()
	unlock2, err := acquireLock(state, "web/deploy", func(s string) { t.Errorf("a released lock warned: %s", s) })
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	unlock2()
	if _, err := acquireLock("", "x", nil); err == nil {
		t.Error("no state directory was accepted")
	}
}

// --log appends exactly the event lines stderr shows, uncoloured, 0600; a
// second run appends. --quiet leaves stderr to errors and the summary.
func TestRunLogAndQuiet(t *testing.T) {
	h, pb, _ := runSetup(t, &fleet{fail: map[string]bool{"h5": true}})
	logf := filepath.Join(t.TempDir(), "drover.log")
	if code := h.run(t, runArgs(pb, "--log", logf)...); code != exitHostsFailed {
		t.Fatalf("exit %d\n%s", code, h.stderrString())
	}
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(logf); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(h.stderrString()), "\n") {
		if regexp.MustCompile(`^\d{4}-\d\d-\d\dT`).MatchString(line) {
			events = append(events, line)
		}
	}
	if len(events) < 10 || strings.TrimSpace(string(b)) != strings.Join(events, "\n") {
		t.Errorf("log differs from stderr's event lines:\n--- log\n%s\n--- stderr\n%s", b, h.stderrString())
	}

	q, pb2, _ := runSetup(t, &fleet{fail: map[string]bool{"h5": true}})
	if code := q.run(t, runArgs(pb2, "--quiet", "--log", logf)...); code != exitHostsFailed {
		t.Fatalf("--quiet: exit %d\n%s", code, q.stderrString())
	}
	stderr := q.stderrString()
	if strings.Contains(stderr, "stage canary started") || strings.Contains(stderr, "h1 changed") {
		t.Errorf("--quiet printed progress events:\n%s", stderr)
	}
	if !strings.Contains(stderr, " h5 rolled_back") && !strings.Contains(stderr, " h5 failed") {
		t.Errorf("--quiet hid the failed host:\n%s", stderr)
	}
	if !strings.Contains(q.stdout.String(), "completed_with_failures (exit 1)") {
		t.Errorf("--quiet lost the summary:\n%s", q.stdout.String())
	}
	b2, _ := os.ReadFile(logf)
	if !bytes.HasPrefix(b2, b) || bytes.Count(b2, []byte("stage canary started")) != 2 {
		t.Errorf("the second run did not append its full event log (--quiet must not thin the log):\n%s", b2)
	}
}

// The log never carries colour, even when stderr is a terminal that does.
func TestEventPrinterLogUncoloured(t *testing.T) {
	var stderr bytes.Buffer
	e := &env{stderr: &stderr, stderrTTY: true, getenv: func(string) string { return "" }}
	logf := filepath.Join(t.TempDir(), "l")
	l, err := openRunLog(logf)
	if err != nil {
		t.Fatal(err)
	}
	p := newEventPrinter(e, &options{}, false)
	p.log = l
	p.event(report.Event{Type: report.HostFinish, Host: "h1", Status: report.HostFailed, Time: report.At(time.Unix(0, 0))})
	p.warn("careful")
	p.close()
	b, _ := os.ReadFile(logf)
	if !strings.Contains(stderr.String(), "\x1b[") {
		t.Fatalf("stderr on a terminal is not coloured, the test proves nothing: %q", stderr.String())
	}
	if bytes.Contains(b, []byte("\x1b[")) || !strings.HasPrefix(string(b), "1970-01-01T00:00:00.000Z h1 failed\n") ||
		!regexp.MustCompile(`\n\d{4}-\d\d-\d\dT[^ ]+Z warning: careful\n$`).Match(b) {
		t.Errorf("log %q", b)
	}
}

// historyState builds a state directory with two finished runs and one that
// has only a journal (crashed), plus a stray directory that is neither.
func historyFixture(t *testing.T) string {
	t.Helper()
	state := t.TempDir()
	at := func(h, m, s int) report.Time { return report.At(time.Date(2026, 3, 2, h, m, s, 0, time.UTC)) }
	reps := []*report.Report{
		{RunID: "20260302T010000Z-aaaaaa", Playbook: "demo-web", Status: report.Halted,
			Error: "stage canary: 1 host(s) failed, more than max_failed = 0", Started: at(1, 0, 0), Finished: at(1, 0, 42),
			Stages: []*report.Stage{
				{Name: "canary", Kind: "canary", Status: report.Halted,
					Hosts: []*report.Host{{Name: "web1", Status: report.HostRolledBack, Error: "health http: status 500"}}},
				{Name: "remaining", Kind: "remaining", Status: report.Skipped,
					Hosts: []*report.Host{{Name: "web2", Status: report.HostSkipped}, {Name: "web3", Status: report.HostSkipped}}},
			}},
		{RunID: "20260302T020000Z-bbbbbb", Playbook: "demo-web", Status: report.Succeeded,
			Started: at(2, 0, 0), Finished: at(2, 3, 5),
			Stages: []*report.Stage{
				{Name: "canary", Kind: "canary", Status: report.Succeeded, Gate: &report.Gate{Status: report.Passed},
					Hosts: []*report.Host{{Name: "web1", Status: report.HostChanged}}},
				{Name: "remaining", Kind: "remaining", Status: report.Succeeded,
					Hosts: []*report.Host{{Name: "web2", Status: report.HostChanged}, {Name: "web3", Status: report.HostOK}}},
			}},
	}
	for _, rep := range reps {
		if err := writeReport(filepath.Join(state, "runs", rep.RunID, "report.json"), rep, true); err != nil {
			t.Fatal(err)
		}
	}
	crashed := filepath.Join(state, "runs", "20260302T030000Z-cccccc")
	stray := filepath.Join(state, "runs", "not-a-run")
	for _, d := range []string{crashed, stray} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(crashed, "journal.jsonl"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return state
}

func TestHistoryAndReport(t *testing.T) {
	state := historyFixture(t)
	h := newHarness(nil)
	h.environ["DROVER_STATE_DIR"] = state
	fixed := func(s string) []byte { return []byte(strings.ReplaceAll(s, state, "/state")) }

	if code := h.run(t, "history"); code != exitOK {
		t.Fatalf("history: exit %d\n%s", code, h.stderrString())
	}
	golden(t, "history.txt", fixed(h.stdout.String()))

	h.stdout.Reset()
	if code := h.run(t, "history", "--json"); code != exitOK {
		t.Fatalf("history --json: exit %d\n%s", code, h.stderrString())
	}
	golden(t, "history.json", fixed(h.stdout.String()))
	var list []runSummary
	if err := json.Unmarshal(h.stdout.Bytes(), &list); err != nil || len(list) != 3 {
		t.Fatalf("history --json: %d entries, %v", len(list), err)
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		golden string // of stdout
		stderr string // must contain
	}{
		{"report by id", []string{"report", "20260302T010000Z-aaaaaa"}, exitOK, "report-halted.txt", ""},
		{"report by unique prefix", []string{"report", "20260302T02"}, exitOK, "report-succeeded.txt", ""},
		{"last is the newest, here crashed", []string{"report", "last"}, exitHostsFailed, "",
			"run 20260302T030000Z-cccccc has no report: it is still running, or it crashed"},
		{"unknown id lists the nearest", []string{"report", "20260302T010000Z-aaaaab"}, exitBadInput, "",
			`no run "20260302T010000Z-aaaaab"; nearest: 20260302T010000Z-aaaaaa, `},
		{"ambiguous prefix", []string{"report", "2026"}, exitBadInput, "", "is ambiguous"},
		{"no argument", []string{"report"}, exitBadInput, "", "takes one RUN"},
		{"history takes no arguments", []string{"history", "x"}, exitBadInput, "", "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(nil)
			h.environ["DROVER_STATE_DIR"] = state
			if code := h.run(t, tt.args...); code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, h.stderrString())
			}
			if tt.golden != "" {
				golden(t, tt.golden, fixed(h.stdout.String()))
			}
			if !strings.Contains(h.stderrString(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, h.stderrString())
			}
		})
	}

	// --json is the report file, byte for byte.
	h2 := newHarness(nil)
	h2.environ["DROVER_STATE_DIR"] = state
	if code := h2.run(t, "report", "20260302T020000Z-bbbbbb", "--json"); code != exitOK {
		t.Fatalf("report --json: exit %d\n%s", code, h2.stderrString())
	}
	want, _ := os.ReadFile(filepath.Join(state, "runs", "20260302T020000Z-bbbbbb", "report.json"))
	if !bytes.Equal(h2.stdout.Bytes(), want) {
		t.Errorf("report --json:\n%s\nwant\n%s", h2.stdout.String(), want)
	}
}

// An empty state directory: history says so, report explains.
func TestHistoryEmpty(t *testing.T) {
	h := newHarness(nil)
	h.environ["DROVER_STATE_DIR"] = t.TempDir()
	if code := h.run(t, "history"); code != exitOK || h.stdout.Len() != 0 || !strings.Contains(h.stderrString(), "no runs in") {
		t.Errorf("history: exit %d, stdout %q, stderr %q", code, h.stdout.String(), h.stderrString())
	}
	if code := h.run(t, "report", "last"); code != exitBadInput || !strings.Contains(h.stderrString(), "no runs in the state directory") {
		t.Errorf("report last: exit %d, stderr %q", code, h.stderrString())
	}
}

// A real run shows up in history and report last.
func TestHistoryAfterRun(t *testing.T) {
	h, pb, _ := runSetup(t, &fleet{})
	if code := h.run(t, runArgs(pb)...); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, h.stderrString())
	}
	h.stdout.Reset()
	if code := h.run(t, "history"); code != exitOK {
		t.Fatalf("history: exit %d\n%s", code, h.stderrString())
	}
	if !regexp.MustCompile(`(?m)^\d{8}T\d{6}Z-[0-9a-f]{6}\s+t\s+\S+Z\s+\S+\s+succeeded\s+6\s+6\s+0\s*$`).MatchString(h.stdout.String()) {
		t.Errorf("history:\n%s", h.stdout.String())
	}
	h.stdout.Reset()
	if code := h.run(t, "report", "last"); code != exitOK || !strings.Contains(h.stdout.String(), "succeeded (exit 0)") {
		t.Errorf("report last: exit %d\n%s", code, h.stdout.String())
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"run-1", "run-1", 0}, {"run-1", "run-2", 1}}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestLockHelperProcess is not a test: TestRunLockOtherProcess runs the test
// binary again with DROVER_TEST_LOCK_STATE set, to hold the lock in another
// process until it is killed.
func TestLockHelperProcess(t *testing.T) {
	state := os.Getenv("DROVER_TEST_LOCK_STATE")
	if state == "" {
		return // the normal test run: nothing to do
	}
	if _, err := acquireLock(state, "t", func(string) {}); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	io.Copy(io.Discard, os.Stdin) // hold until killed (or stdin closes)
	os.Exit(0)
}

// The lock across processes: held by another process, a run exits 5 naming
// that pid; once that process is SIGKILLed (no chance to clean up), its
// record is stale and the next run takes the lock over with a warning.
func TestRunLockOtherProcess(t *testing.T) {
	h, pb, state := runSetup(t, &fleet{})
	pb = withBlock(t, pb, "settings {\n  lock = true\n}")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "DROVER_TEST_LOCK_STATE="+state)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 7)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "locked\n" {
		cmd.Process.Kill()
		t.Fatalf("helper: %q %v", line, err)
	}
	if c := h.run(t, runArgs(pb)...); c != exitNotStarted {
		cmd.Process.Kill()
		t.Fatalf("exit %d while another process holds the lock, want 5\n%s", c, h.stderrString())
	}
	if m := holderRE.FindStringSubmatch(h.stderrString()); m == nil || m[1] != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("the refusal does not name pid %d:\n%s", cmd.Process.Pid, h.stderrString())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	h2 := newHarness((&fleet{cmds: map[string][]string{}}).hosts())
	h2.environ = h.environ
	if c := h2.run(t, runArgs(pb)...); c != exitOK {
		t.Fatalf("after the holder died: exit %d\n%s", c, h2.stderrString())
	}
	want := "taking over the stale lock of playbook \"t\" left by pid " + strconv.Itoa(cmd.Process.Pid)
	if !strings.Contains(h2.stderrString(), want) || !strings.Contains(h2.stderrString(), "the process is gone") {
		t.Errorf("stderr lacks %q … the process is gone:\n%s", want, h2.stderrString())
	}
}

// The notify block's schema, through drover validate.
func TestValidateNotify(t *testing.T) {
	tests := []struct {
		name, block string
		code        int
		want        string
	}{
		{"webhook, headers, command, timeout", `notify {
  webhook = "https://hooks.example.com/x"
  headers = { "X-Team" = "web" }
  command = "cat >/dev/null"
  timeout = "20s"
}`, exitOK, ""},
		{"command only", `notify { command = "true" }`, exitOK, ""},
		{"neither", `notify { timeout = "5s" }`, exitBadInput, "Missing notify target"},
		{"headers without webhook", `notify {
  command = "true"
  headers = { a = "b" }
}`, exitBadInput, "headers are only sent with a webhook"},
		{"null header", `notify {
  webhook = "https://hooks.example.com/x"
  headers = { a = null }
}`, exitBadInput, "header \"a\" is null"},
		{"not a URL", `notify { webhook = "ftp://x" }`, exitBadInput, "is not an http:// or https:// URL"},
		{"timeout too long", `notify {
  command = "true"
  timeout = "2h"
}`, exitBadInput, "timeout"},
		{"unknown attribute", `notify {
  command = "true"
  email   = "ops@example.com"
}`, exitBadInput, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, pb, _ := runSetup(t, &fleet{})
			pb = withBlock(t, pb, tt.block)
			if code := h.run(t, "validate", pb); code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, h.stdout.String(), h.stderrString())
			}
			if !strings.Contains(h.stdout.String()+h.stderrString(), tt.want) {
				t.Errorf("output lacks %q:\n%s%s", tt.want, h.stdout.String(), h.stderrString())
			}
		})
	}
}
