package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/lab"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

// puppetHosts are the shared lab's hosts the Puppet test uses (and restores).
var puppetHosts = []string{"h2", "h4"}

// agentRunTimeout bounds one agent run: facter and a first catalog compile in a cold
// JRuby take tens of seconds on a loaded 2-core machine. A guard, not a pace.
const agentRunTimeout = 5 * time.Minute

// TestPuppetAgentAgainstRealServer drives steps.Puppet over SSH against a real
// puppetserver: changed, then ok, a failing catalog, disable/run refused/enable, status.
func TestPuppetAgentAgainstRealServer(t *testing.T) {
	startCtx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv, err := lab.StartPuppetServer(startCtx, shared.lab)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("puppetserver up on %s in %s", srv.URL(), srv.StartTime.Round(time.Millisecond))
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop puppetserver: %v", err)
		}
	})

	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	token := hex.EncodeToString(rnd[:])
	managed := "/tmp/drover-puppet-" + token

	conns := map[string]*transport.Conn{}
	for _, h := range puppetHosts {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := srv.ConfigureAgent(ctx, h)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := srv.ResetAgent(ctx, h); err != nil {
				t.Errorf("reset %s's agent: %v", h, err)
			}
			if out, err := shared.lab.Exec(ctx, h, "rm", "-f", managed); err != nil {
				t.Errorf("%s: rm %s: %v: %s", h, managed, err, out)
			}
		})
		conns[h] = dialLab(t, h, "root")
	}
	pup := steps.Puppet{}

	// runAll does one agent run on every test host at once (the server compiles one
	// catalog at a time; the agents' facter runs overlap).
	runAll := func(t *testing.T) map[string]*steps.Result {
		t.Helper()
		var mu sync.Mutex
		results := map[string]*steps.Result{}
		var wg sync.WaitGroup
		for _, h := range puppetHosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), agentRunTimeout)
				defer cancel()
				res, _ := pup.Run(ctx, conns[h], steps.PuppetRun{}, steps.Options{})
				mu.Lock()
				results[h] = res
				mu.Unlock()
			}()
		}
		wg.Wait()
		return results
	}
	describe := func(r *steps.Result) string {
		return fmt.Sprintf("status %s, detail %q, err %v\nstdout:\n%s\nstderr:\n%s", r.Status, r.Detail, r.Err, r.Stdout, r.Stderr)
	}

	// The content names the node, so each host provably got its own catalog.
	site := fmt.Sprintf("node default {\n  file { '%s': ensure => file, content => \"${trusted['certname']} %s\\n\" }\n}\n", managed, token)
	if err := srv.SetSiteManifest(site); err != nil {
		t.Fatal(err)
	}

	t.Run("first run changes the file", func(t *testing.T) {
		for h, r := range runAll(t) {
			if r.Status != steps.StatusChanged || r.Err != nil {
				t.Errorf("%s: want changed (exit 2 is success), got %s\n--- server log ---\n%s", h, describe(r), srv.Log())
				continue
			}
			if r.After["changed"] != "1" || r.After["failed"] != "0" {
				t.Errorf("%s: summary counts %v, want changed=1 failed=0", h, r.After)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, err := shared.lab.Exec(ctx, h, "cat", managed)
			cancel()
			if want := h + " " + token + "\n"; err != nil || string(out) != want {
				t.Errorf("%s: %s = %q (%v), want %q", h, managed, out, err, want)
			}
		}
	})
	if t.Failed() {
		t.FailNow() // the rest assumes working agents
	}

	t.Run("second run is a no-op", func(t *testing.T) {
		for h, r := range runAll(t) {
			if r.Status != steps.StatusOK || r.Err != nil {
				t.Errorf("%s: want ok, got %s", h, describe(r))
				continue
			}
			if r.After["changed"] != "0" || r.After["failed"] != "0" {
				t.Errorf("%s: summary counts %v, want changed=0 failed=0", h, r.After)
			}
		}
	})

	t.Run("status shows the last run", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := pup.Status(ctx, conns["h4"], nil)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Enabled || st.Applying || st.LastRun == nil {
			t.Fatalf("status %+v: want enabled, idle, with a last run", st)
		}
		lr := st.LastRun
		// The no-op run: the file and Puppet's own resources, nothing changed or failed.
		if lr.Changed != 0 || lr.Failed != 0 || lr.OutOfSync != 0 || lr.Total < 1 || lr.ConfigVersion == "" {
			t.Errorf("last run %+v: want 0 changed/failed/out of sync, >=1 resource, a config version", lr)
		}
		if age := time.Since(lr.LastRun); age < 0 || age > 15*time.Minute {
			t.Errorf("last run time %s is not from this test (age %s)", lr.LastRun, age)
		}
	})

	t.Run("failing catalog is failed with Puppet's message", func(t *testing.T) {
		msg := "drover test failure " + token
		if err := srv.SetSiteManifest(fmt.Sprintf("node default {\n  fail(%s)\n}\n", strconv.Quote(msg))); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), agentRunTimeout)
		defer cancel()
		// The agent itself, as steps.Puppet should invoke it: without
		// --no-usecacheonfailure it applies its cached catalog and exits 0, and without
		// --verbose it logs to syslog only, so nothing would show the error.
		direct, err := conns["h2"].Run(ctx, &transport.Command{Cmd: "puppet agent --onetime --no-daemonize --no-splay --detailed-exitcodes --color=false --verbose --no-usecacheonfailure"})
		if err != nil {
			t.Fatalf("direct agent run: %v", err)
		}
		if direct.ExitCode != 1 || !strings.Contains(string(direct.Stderr), msg) {
			t.Errorf("direct agent run: exit %d, stderr %q; want 1 and %q", direct.ExitCode, direct.Stderr, msg)
		}
		r, err := pup.Run(ctx, conns["h2"], steps.PuppetRun{}, steps.Options{})
		if err == nil || r.Status != steps.StatusFailed {
			t.Fatalf("want failed with an error, got %s", describe(r))
		}
		if !strings.Contains(err.Error(), msg) || !strings.Contains(r.Detail, msg) {
			t.Errorf("error %q / detail %q does not show Puppet's message %q\n%s", err, r.Detail, msg, describe(r))
		}
		// A failed run must not be mistaken for a lock or a disabled agent.
		if strings.Contains(err.Error(), "disabled") || strings.Contains(err.Error(), "lock") {
			t.Errorf("error %q misclassifies a catalog failure", err)
		}
	})
	if err := srv.SetSiteManifest(site); err != nil {
		t.Fatal(err)
	}

	t.Run("disable refuses runs with the reason, enable allows them", func(t *testing.T) {
		c := conns["h2"]
		reason := "drover e2e: maintenance window " + token
		ctx, cancel := context.WithTimeout(context.Background(), agentRunTimeout)
		defer cancel()
		r, err := pup.Disable(ctx, c, reason, steps.Options{})
		if err != nil || r.Status != steps.StatusChanged {
			t.Fatalf("disable: want changed, got %s", describe(r))
		}
		if r, err := pup.Disable(ctx, c, reason, steps.Options{}); err != nil || r.Status != steps.StatusOK {
			t.Errorf("disable again with the same reason: want ok, got %s", describe(r))
		}
		st, err := pup.Status(ctx, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Enabled || st.DisabledReason != reason {
			t.Errorf("status after disable: enabled %v reason %q, want disabled with %q", st.Enabled, st.DisabledReason, reason)
		}

		r, err = pup.Run(ctx, c, steps.PuppetRun{}, steps.Options{})
		if err == nil || r.Status != steps.StatusFailed {
			t.Fatalf("run while disabled: want refused (failed), got %s", describe(r))
		}
		if !strings.Contains(err.Error(), "disabled") || !strings.Contains(err.Error(), reason) {
			t.Errorf("run while disabled: error %q should say disabled and give the reason %q", err, reason)
		}

		r, err = pup.Enable(ctx, c, steps.Options{})
		if err != nil || r.Status != steps.StatusChanged {
			t.Fatalf("enable: want changed, got %s", describe(r))
		}
		if st, err := pup.Status(ctx, c, nil); err != nil || !st.Enabled || st.DisabledReason != "" {
			t.Errorf("status after enable: %+v (%v), want enabled", st, err)
		}
		r, err = pup.Run(ctx, c, steps.PuppetRun{}, steps.Options{})
		if err != nil || r.Status != steps.StatusOK {
			t.Errorf("run after enable: want ok (site.pp restored, file in place), got %s", describe(r))
		}
	})
}
