package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/drover-sh/drover/transport"
)

// DefaultRebootTimeout is how long a reboot waits for the host to come back
// when the action does not say.
const DefaultRebootTimeout = 10 * time.Minute

// RebootAction reboots a host when it needs it and waits until it is back.
type RebootAction struct {
	// Force reboots even when the host does not say it needs to.
	Force bool
	// Timeout bounds the wait for the host to return with a new boot id;
	// 0 means DefaultRebootTimeout.
	Timeout time.Duration

	// sleep waits between reconnect attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// Reconnector is implemented by runners that can drop their connection and dial
// the host again (transport.Conn). Reboot calls it before each attempt to reach
// a rebooting host, so a connection the host's reset left half-open is not
// waited on: without keepalives nothing ends it before the attempt's 30 s
// bound runs out. Runners without it are expected to redial on their own once
// their connection has ended.
type Reconnector interface {
	Reconnect(ctx context.Context) error
}

// rebootCheck prints the boot id, then "@@required" when the system says it
// must reboot: Debian and Ubuntu's /var/run/reboot-required (with the packages
// that asked for it in reboot-required.pkgs), RHEL's `needs-restarting -r`
// (exit 1) or SUSE's `zypper needs-rebooting` (exit 102).
const rebootCheck = `cat /proc/sys/kernel/random/boot_id || exit 1
if [ -e /var/run/reboot-required ] || [ -e /run/reboot-required ]; then
  echo @@required; sed 's/^/@@pkg /' /var/run/reboot-required.pkgs 2>/dev/null
elif command -v needs-restarting >/dev/null 2>&1; then
  needs-restarting -r >/dev/null 2>&1; [ $? -eq 1 ] && echo @@required
elif command -v zypper >/dev/null 2>&1; then
  zypper --non-interactive needs-rebooting >/dev/null 2>&1; [ $? -eq 102 ] && echo @@required
fi
true`

// rebootCmd starts the reboot detached, a second later, so the command that
// asks for it returns (and its session closes) before the host goes down.
// shutdown -r is what systemd, sysvinit and busybox hosts share; reboot is the
// fallback.
const rebootCmd = `nohup sh -c 'sleep 1; shutdown -r now "drover reboot" || reboot' </dev/null >/dev/null 2>&1 &`

// bootIDCmd reads the boot id, which the kernel sets anew at every boot.
const bootIDCmd = `cat /proc/sys/kernel/random/boot_id`

var bootIDRe = regexp.MustCompile(`^[0-9a-fA-F-]{16,64}$`)

// RebootCommands are the command lines Reboot runs, for plan previews.
func RebootCommands(a RebootAction) []string {
	return []string{rebootCheck, rebootCmd, bootIDCmd}
}

// Reboot reboots the host when it requires it (or when Force), then polls
// with backoff, reconnecting, until the host answers with a new boot id or the
// timeout passes. Status is ok "no reboot required" when there was nothing to
// do, changed "rebooted (boot id a1b2c3d4 -> c3d4e5f6, back after 4.2s; required)" after
// a reboot; Before and After hold the boot ids. Later commands over r reach
// the rebooted host. In dry-run it only reports whether it would reboot.
func Reboot(ctx context.Context, r transport.Runner, a RebootAction, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	if a.Timeout <= 0 {
		a.Timeout = DefaultRebootTimeout
	}
	if a.sleep == nil {
		a.sleep = sleepCtx
	}

	// Round trip 1: boot id and whether a reboot is required.
	out, err := run(ctx, r, rebootCheck, o)
	if err != nil {
		return fail(res, start, fmt.Errorf("reboot: check: %w", err))
	}
	lines := strings.Split(strings.TrimSpace(string(out.Stdout)), "\n")
	oldID := strings.TrimSpace(lines[0])
	if out.ExitCode != 0 || !bootIDRe.MatchString(oldID) {
		return fail(res, start, fmt.Errorf("reboot: cannot read the boot id (exit %d): %s", out.ExitCode, tail(append(out.Stdout, out.Stderr...))))
	}
	required := false
	var pkgs []string
	for _, l := range lines[1:] {
		switch {
		case l == "@@required":
			required = true
		case strings.HasPrefix(l, "@@pkg "):
			pkgs = append(pkgs, strings.TrimPrefix(l, "@@pkg "))
		}
	}
	res.Before = map[string]string{"boot_id": oldID}
	why := "forced"
	if required {
		why = "required"
		if len(pkgs) > 0 {
			why += " by " + strings.Join(pkgs, ", ")
		}
	}
	if !required && !a.Force {
		res.Status, res.Detail, res.After = StatusOK, "no reboot required", res.Before
		res.Duration = time.Since(start)
		return res, nil
	}
	res.Commands = []string{rebootCmd}
	if o.DryRun {
		res.Status, res.Detail = StatusChanged, "would reboot ("+why+")"
		res.Duration = time.Since(start)
		return res, nil
	}

	// Round trip 2: start the reboot. A connection that drops at once means the
	// host went down faster than the delay; the wait below tells.
	out, err = run(ctx, r, rebootCmd, o)
	switch {
	case err != nil && !errors.Is(err, transport.ErrConnLost):
		return fail(res, start, fmt.Errorf("reboot: %w", err))
	case err == nil && out.ExitCode != 0:
		return fail(res, start, fmt.Errorf("reboot: exited %d: %s", out.ExitCode, tail(out.Stderr)))
	}
	issued := time.Now()

	// Wait for a new boot id. Until the host is down the old id answers; while
	// it is down connecting fails; both mean: try again.
	wctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	delay := 500 * time.Millisecond
	last := "the old boot id"
	for {
		if err := a.sleep(wctx, delay); err != nil {
			if ctx.Err() != nil {
				return fail(res, start, fmt.Errorf("reboot: waiting for the host: %w", ctx.Err()))
			}
			return fail(res, start, fmt.Errorf("reboot: the host did not come back with a new boot id within %s (last: %s)", a.Timeout, last))
		}
		delay = min(2*delay, 5*time.Second)
		newID, err := readBootID(wctx, r, o)
		if err != nil {
			last = err.Error()
			continue
		}
		if newID == oldID {
			last = "the old boot id"
			continue
		}
		res.After = map[string]string{"boot_id": newID}
		res.Status = StatusChanged
		res.Detail = fmt.Sprintf("rebooted (boot id %s -> %s, back after %.1fs; %s)", short(oldID), short(newID), time.Since(issued).Seconds(), why)
		res.Duration = time.Since(start)
		return res, nil
	}
}

// readBootID makes one attempt to reach the host, bounded so a host that
// accepts TCP but does not answer yet cannot use up the whole wait.
func readBootID(ctx context.Context, r transport.Runner, o Options) (string, error) {
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if rc, ok := r.(Reconnector); ok {
		if err := rc.Reconnect(actx); err != nil {
			return "", err
		}
	}
	// Without Become: the boot id is world-readable, and sudo may not be ready yet.
	out, err := r.Run(actx, &transport.Command{Cmd: bootIDCmd, Timeout: o.Timeout})
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(out.Stdout))
	if out.ExitCode != 0 || !bootIDRe.MatchString(id) {
		return "", fmt.Errorf("boot id read exited %d: %q", out.ExitCode, tail(out.Stderr))
	}
	return id, nil
}

// short is the first 8 characters of a boot id, enough to tell boots apart.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
