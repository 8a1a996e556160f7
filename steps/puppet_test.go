package steps

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const sampleSummary = `---
version:
  config: 1714000000
  puppet: 7.23.0
resources:
  changed: 2
  corrective_change: 0
  failed: 1
  failed_to_restart: 0
  out_of_sync: 3
  restarted: 0
  scheduled: 0
  skipped: 0
  total: 42
time:
  config_retrieval: 0.81
  total: 3.5
  last_run: 1714000123
changes:
  total: 2
events:
  failure: 1
  success: 2
  total: 3
`

func TestParseLastRunSummary(t *testing.T) {
	s, err := ParseLastRunSummary([]byte(sampleSummary))
	if err != nil {
		t.Fatal(err)
	}
	want := &LastRunSummary{ConfigVersion: "1714000000", PuppetVersion: "7.23.0", LastRun: time.Unix(1714000123, 0).UTC(),
		Changed: 2, Failed: 1, OutOfSync: 3, Total: 42, EventFailures: 1, Duration: 3.5}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	s, err = ParseLastRunSummary([]byte("version:\n  config: \"abc123\"\n  puppet: 7.1\n"))
	if err != nil || s.ConfigVersion != "abc123" || s.PuppetVersion != "7.1" || s.Changed != 0 || !s.LastRun.IsZero() {
		t.Errorf("string config version: %+v %v", s, err)
	}
	for _, bad := range []string{"", "  \n", "- a\n- b\n", "version: [1, 2\n"} {
		if _, err := ParseLastRunSummary([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzLastRunSummary(f *testing.F) {
	f.Add([]byte(sampleSummary))
	f.Add([]byte("version:\n  config: \"abc\"\nresources:\n  changed: 1e400\n"))
	f.Add([]byte("time:\n  last_run: -1\nresources: {failed: .nan}\n"))
	f.Add([]byte("resources: [1,2]\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseLastRunSummary(b)
		if err != nil {
			return
		}
		if s == nil {
			t.Fatal("nil summary without error")
		}
		s2, err := ParseLastRunSummary(b)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("not deterministic: %+v / %+v, %v", s, s2, err)
		}
	})
}

func TestPuppetRunCommand(t *testing.T) {
	tests := []struct {
		o    PuppetRun
		want string
	}{
		{PuppetRun{}, "puppet agent --onetime --no-daemonize --no-splay --detailed-exitcodes --color=false --logdest console --no-usecacheonfailure"},
		{PuppetRun{Noop: true, Tags: []string{"web", "demo::app"}, Environment: "production", Server: "puppet.lab"},
			"puppet agent --onetime --no-daemonize --no-splay --detailed-exitcodes --color=false --logdest console --no-usecacheonfailure --noop --tags web,demo::app --environment production --server puppet.lab"},
	}
	for _, tt := range tests {
		got, err := Puppet{}.RunCommand(tt.o)
		if err != nil || got != tt.want {
			t.Errorf("got  %s (%v)\nwant %s", got, err, tt.want)
		}
	}
}

func TestPuppetRunExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		o          PuppetRun
		dry        bool
		r          reply
		wantStatus Status
		wantDetail string
		wantErr    error
	}{
		{"0 ok", PuppetRun{}, false, reply{exit: 0}, StatusOK, "no changes", nil},
		{"2 changed with counts", PuppetRun{}, false, reply{exit: 2, stdout: "Notice: Applied catalog\n@@summary\n" + sampleSummary},
			StatusChanged, "changed: 2 changed, 3 out of sync, 1 failed", nil},
		{"2 noop", PuppetRun{Noop: true}, false, reply{exit: 2}, StatusChanged, "would change (noop)", nil},
		{"dry run is noop", PuppetRun{}, true, reply{exit: 2}, StatusChanged, "would change (noop)", nil},
		{"4 failed", PuppetRun{}, false, reply{exit: 4, stderr: "Error: Could not find package demo-web"}, StatusFailed,
			"puppet run: failures (exit 4): Error: Could not find package demo-web", nil},
		{"6 failed", PuppetRun{}, false, reply{exit: 6}, StatusFailed, "puppet run: failures (exit 6): ", nil},
		{"1 failed", PuppetRun{}, false, reply{exit: 1, stderr: "Error: Could not request certificate"}, StatusFailed,
			"puppet run failed (exit 1): Error: Could not request certificate", nil},
		{"1 disabled", PuppetRun{}, false, reply{exit: 1, stdout: "Notice: Skipping run of Puppet configuration client; administratively disabled (Reason: 'maintenance by bob');\n"},
			StatusFailed, "puppet run: puppet agent is disabled: maintenance by bob", nil},
		{"1 in progress", PuppetRun{}, false, reply{exit: 1, stdout: "Notice: Run of Puppet configuration client already in progress; skipping  (/var/lib/puppet/state/agent_catalog_run.lock exists)\n"},
			StatusFailed, "", ErrLocked},
		{"lock wait timeout", PuppetRun{LockTimeout: 20 * time.Second}, false, reply{exit: puppetLockExit, stderr: "drover: puppet agent run in progress (pid 999) for 20s\n"},
			StatusFailed, "puppet run: lock held by another process: puppet agent run in progress (pid 999) for 20s; gave up after 20s", ErrLocked},
		{"connection lost", PuppetRun{}, false, reply{err: errConn}, StatusFailed, "", errConn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{t: t, replies: []reply{tt.r}}
			res, err := Puppet{}.Run(context.Background(), f, tt.o, Options{DryRun: tt.dry})
			f.done()
			if res.Status != tt.wantStatus || (err != nil) != (tt.wantStatus == StatusFailed) {
				t.Fatalf("status %s err %v, want %s", res.Status, err, tt.wantStatus)
			}
			if tt.wantDetail != "" && res.Detail != tt.wantDetail {
				t.Errorf("detail %q\nwant   %q", res.Detail, tt.wantDetail)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err %v, want %v", err, tt.wantErr)
			}
			if strings.Contains(res.Stdout, "@@summary") {
				t.Errorf("summary leaked into stdout: %q", res.Stdout)
			}
			noop := strings.Contains(f.ran()[0], " --noop")
			if noop != (tt.o.Noop || tt.dry) {
				t.Errorf("noop flag %v in %s", noop, f.ran()[0])
			}
		})
	}
}

func TestPuppetRunScriptWaitsForLock(t *testing.T) {
	s := Puppet{}.runScript(PuppetRun{LockTimeout: 45 * time.Second, Tags: []string{"web"}}, false)
	for _, want := range []string{
		`export PATH="$PATH:/opt/puppetlabs/bin"; `,
		`puppet config print agent_catalog_run_lockfile lastrunfile`,
		`[ -d "/proc/$pid" ]`,
		`[ $i -ge 45 ] && { echo "drover: puppet agent run in progress (pid $pid) for 45s" >&2; exit 97; }`,
		`puppet agent --onetime --no-daemonize --no-splay --detailed-exitcodes --color=false --logdest console --no-usecacheonfailure --tags web; rc=$?`,
		`exit $rc`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("run script lacks %q:\n%s", want, s)
		}
	}
}

func TestPuppetPaths(t *testing.T) {
	tests := []struct {
		out     string
		want    PuppetPaths
		wantErr bool
	}{
		{"agent_catalog_run_lockfile = /x/run.lock\nagent_disabled_lockfile = /x/dis.lock\nstatedir = /x\nlastrunfile = /p/last.yaml\n",
			PuppetPaths{RunLock: "/x/run.lock", DisabledLock: "/x/dis.lock", StateDir: "/x", LastRunFile: "/p/last.yaml"}, false},
		{"@@aio\nagent_catalog_run_lockfile = /x/run.lock\n", PuppetPaths{RunLock: "/x/run.lock"}, false},
		{"", debianPuppetPaths, false},
		{"@@aio\n", aioPuppetPaths, false},
		{"@@notinstalled\n", PuppetPaths{}, true},
	}
	for _, tt := range tests {
		got, err := parsePuppetPaths(tt.out)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%q: got %+v %v, want %+v", tt.out, got, err, tt.want)
		}
	}
}

func TestPuppetStatus(t *testing.T) {
	paths := "agent_catalog_run_lockfile = /s/run.lock\nagent_disabled_lockfile = /s/dis.lock\nstatedir = /s\nlastrunfile = /p/last_run_summary.yaml\n"
	f := &fakeRunner{t: t, replies: []reply{
		{stdout: paths},
		{stdout: "@@applying 4321\n@@disabled\n{\"disabled_message\":\"upgrade window, ticket #42\"}\n@@summary\n" + sampleSummary},
	}}
	st, err := Puppet{}.Status(context.Background(), f, nil)
	f.done()
	if err != nil {
		t.Fatal(err)
	}
	if st.Enabled || st.DisabledReason != "upgrade window, ticket #42" || !st.Applying || st.PID != 4321 {
		t.Errorf("status %+v", st)
	}
	if st.LastRun == nil || st.LastRun.Changed != 2 || st.LastRun.OutOfSync != 3 || st.LastRun.ConfigVersion != "1714000000" {
		t.Errorf("last run %+v", st.LastRun)
	}
	if !strings.Contains(f.ran()[1], "cat /s/dis.lock") || !strings.Contains(f.ran()[1], "cat /p/last_run_summary.yaml") {
		t.Errorf("read script does not use the configured paths: %s", f.ran()[1])
	}

	idle, err := parsePuppetStatus("")
	if err != nil || !idle.Enabled || idle.Applying || idle.LastRun != nil {
		t.Errorf("idle: %+v %v", idle, err)
	}
}

func TestPuppetDisableEnable(t *testing.T) {
	paths := reply{stdout: "agent_disabled_lockfile = /s/dis.lock\n"}
	disabled := func(reason string) reply {
		return reply{stdout: "@@disabled\n{\"disabled_message\":\"" + reason + "\"}\n"}
	}
	tests := []struct {
		name       string
		disable    bool
		reason     string
		replies    []reply
		wantStatus Status
		wantCmd    string
	}{
		{"disable", true, "deploy by o'brien", []reply{paths, {}, {}}, StatusChanged,
			`export PATH="$PATH:/opt/puppetlabs/bin"; puppet agent --disable 'deploy by o'"'"'brien'`},
		{"disable same reason ok", true, "deploy", []reply{paths, disabled("deploy")}, StatusOK, ""},
		{"disable new reason", true, "other", []reply{paths, disabled("deploy"), {}}, StatusChanged,
			`export PATH="$PATH:/opt/puppetlabs/bin"; puppet agent --disable other`},
		{"enable", false, "", []reply{paths, disabled("deploy"), {}}, StatusChanged,
			`export PATH="$PATH:/opt/puppetlabs/bin"; puppet agent --enable`},
		{"enable already ok", false, "", []reply{paths, {}}, StatusOK, ""},
		{"disable fails", true, "x", []reply{paths, {}, {exit: 1, stderr: "Error: permission denied"}}, StatusFailed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{t: t, replies: tt.replies}
			var res *Result
			var err error
			if tt.disable {
				res, err = Puppet{}.Disable(context.Background(), f, tt.reason, Options{})
			} else {
				res, err = Puppet{}.Enable(context.Background(), f, Options{})
			}
			f.done()
			if res.Status != tt.wantStatus || (err != nil) != (tt.wantStatus == StatusFailed) {
				t.Fatalf("status %s err %v, want %s", res.Status, err, tt.wantStatus)
			}
			if tt.wantCmd != "" && f.ran()[2] != tt.wantCmd {
				t.Errorf("got  %s\nwant %s", f.ran()[2], tt.wantCmd)
			}
		})
	}
	f := &fakeRunner{t: t}
	if _, err := (Puppet{}).Disable(context.Background(), f, "a\nb", Options{}); !errors.Is(err, ErrInvalid) || len(f.cmds) != 0 {
		t.Errorf("newline reason: %v, ran %q", err, f.ran())
	}
}

func TestPuppetApplyManifest(t *testing.T) {
	f := &fakeRunner{t: t, replies: []reply{{exit: 2}}}
	res, err := Puppet{}.Apply(context.Background(), f, strings.NewReader("notify { 'hi': }\n"), PuppetRun{Tags: []string{"web"}}, Options{})
	f.done()
	if err != nil || res.Status != StatusChanged {
		t.Fatalf("status %s err %v", res.Status, err)
	}
	if len(f.uploads) != 1 {
		t.Fatalf("uploads %v", f.uploads)
	}
	var path string
	for p, body := range f.uploads {
		path = p
		if body != "notify { 'hi': }\n" {
			t.Errorf("uploaded %q", body)
		}
	}
	if !strings.HasPrefix(path, "/var/tmp/drover-manifest-") || !strings.HasSuffix(path, ".pp") {
		t.Errorf("path %s", path)
	}
	cmd := f.ran()[0]
	for _, want := range []string{"puppet apply --detailed-exitcodes --color=false --logdest console --tags web " + path + "; rc=$?", "rm -f " + path, "exit $rc"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("apply script lacks %q: %s", want, cmd)
		}
	}
	if _, err := (Puppet{}).Apply(context.Background(), &fakeRunner{t: t}, strings.NewReader(""), PuppetRun{Server: "x"}, Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("server with apply: %v", err)
	}
}
