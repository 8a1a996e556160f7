package lab

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond (an outside state: a host coming back) until it holds or the
// deadline passes; it reports the last output for the failure message.
func waitFor(t *testing.T, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	delay := 50 * time.Millisecond
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s; last: %s", limit, last)
		}
		<-time.After(delay)
		delay = min(2*delay, time.Second)
	}
}

func TestHostRebootsItself(t *testing.T) {
	requireLab(t)
	l := startLab(t, Config{Hosts: 2, Net: -1})
	ctx := context.Background()

	id1, err := l.BootID("h1")
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := l.BootID("h2")
	machine, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if id1 == id2 || id1 == strings.TrimSpace(string(machine)) || len(id1) != 36 {
		t.Fatalf("boot ids h1 %q, h2 %q, machine %q: want distinct UUIDs", id1, id2, machine)
	}
	mustSSH(t, l, "h1", "cat /proc/sys/kernel/random/boot_id", id1)

	// The shims, not the machine's systemctl, are what reboot and shutdown run.
	for _, p := range rebootShimPaths() {
		out, err := l.Exec(ctx, "h1", "cat", "/"+p)
		if err != nil || !strings.Contains(string(out), "drover lab: restart this lab host") {
			t.Fatalf("/%s in the host is not the lab's shim: %v\n%s", p, err, out)
		}
	}

	// State a reboot keeps (disk) and loses (/run, processes).
	mustSSH(t, l, "h1", "echo kept >/var/tmp/reboot-test && touch /run/reboot-required && "+
		"(nohup sleep 1000 >/dev/null 2>&1 &) && echo ok", "ok")
	mustSSH(t, l, "h1", "pgrep -x sleep >/dev/null && echo running", "running")

	// Detached, as drover's reboot step does it: the command returns, then the host goes.
	mustSSH(t, l, "h1", "nohup sh -c 'sleep 1; shutdown -r now' >/dev/null 2>&1 </dev/null & echo issued", "issued")
	start := time.Now()
	var back string
	waitFor(t, 60*time.Second, func() (bool, string) {
		out, err := runSSH(t, l, "", "-o", "ConnectTimeout=5", "h1", "cat /proc/sys/kernel/random/boot_id")
		back = strings.TrimSpace(out)
		return err == nil && back != id1, out
	})
	t.Logf("h1 back after %s with boot id %s", time.Since(start).Round(time.Millisecond), back)
	if now, _ := l.BootID("h1"); now != back {
		t.Errorf("BootID = %q, host reads %q", now, back)
	}
	mustSSH(t, l, "h1", "cat /var/tmp/reboot-test", "kept")
	mustSSH(t, l, "h1", "test -e /run/reboot-required && echo still || echo gone", "gone")
	mustSSH(t, l, "h1", "pgrep -x sleep >/dev/null && echo running || echo gone", "gone")
	mustSSH(t, l, "h1", "hostname", "h1")
	if st, _ := l.HostState("h1"); st != "running" {
		t.Errorf("HostState(h1) = %q after the reboot, want running", st)
	}
	if now, _ := l.BootID("h2"); now != id2 {
		t.Errorf("h2's boot id changed from %s to %s; only h1 rebooted", id2, now)
	}

	// The lab's own Kill and Restart still work on a rebooted host, with a new boot id.
	if err := l.Kill("h1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if now, _ := l.BootID("h1"); now == back {
		t.Errorf("boot id %s unchanged by Kill and Restart", now)
	}
	mustSSH(t, l, "h1", "cat /var/tmp/reboot-test", "kept")
}
