package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"al.essio.dev/pkg/shellescape"

	"github.com/drover-sh/drover/transport"
)

// Service states a ServiceAction can ask for.
const (
	ServiceStarted   = "started"
	ServiceStopped   = "stopped"
	ServiceRestarted = "restarted"
	ServiceReloaded  = "reloaded"
)

// DefaultVerifyTimeout is how long a start or restart may take to show the
// service running before the step fails.
const DefaultVerifyTimeout = 10 * time.Second

// ServiceAction is one service step. State and Enabled may each be empty/nil to
// leave that aspect alone.
type ServiceAction struct {
	Name    string
	State   string // started | stopped | restarted | reloaded | "" (leave)
	Enabled *bool  // start at boot; nil: leave
	// VerifyTimeout bounds the check that a started or restarted service is
	// running; 0 means DefaultVerifyTimeout.
	VerifyTimeout time.Duration
}

// ServiceStatus is what the init system says about one service.
type ServiceStatus struct {
	Name    string `json:"name"`
	Exists  bool   `json:"exists"`
	Running bool   `json:"running"`
	Enabled bool   `json:"enabled"`
	State   string `json:"state,omitempty"` // the init system's own word, e.g. "active (running)"
}

// ServiceManager runs service actions with one init system.
type ServiceManager interface {
	// Name is the init_system fact value this backend serves.
	Name() string
	// Status asks whether the service exists, runs and starts at boot (one round trip).
	Status(ctx context.Context, r transport.Runner, name string, become *transport.Become) (ServiceStatus, error)
	// Apply brings the service to the action's state: a status query, the change
	// when needed, and (after start or restart) a check that it runs. The Result
	// is never nil; the error is the Result's Err.
	Apply(ctx context.Context, r transport.Runner, a ServiceAction, o Options) (*Result, error)
	// Commands are the command lines Apply would run if every change is needed.
	Commands(a ServiceAction) ([]string, error)
}

// ServiceManagerFor picks the backend for an init_system fact value.
func ServiceManagerFor(initSystem string) (ServiceManager, error) {
	switch initSystem {
	case "systemd":
		return &svcManager{b: systemdBackend()}, nil
	case "sysv":
		return &svcManager{b: sysvBackend()}, nil
	case "openrc":
		return &svcManager{b: openrcBackend()}, nil
	}
	return nil, fmt.Errorf("%w: init system %q (want systemd, sysv or openrc)", ErrUnsupported, initSystem)
}

// svcBackend holds one init system's command syntax; names reaching it are quoted.
type svcBackend struct {
	name    string
	status  func(q string) string
	parse   func(name, stdout string) ServiceStatus
	action  func(q, verb string) string // verb: start stop restart reload
	enable  func(q string, on bool) string
	running func(q string) string // exits 0 when the service runs
}

type svcManager struct{ b svcBackend }

func (m *svcManager) Name() string { return m.b.name }

func validateService(a *ServiceAction) error {
	if err := ValidateServiceName(a.Name); err != nil {
		return err
	}
	switch a.State {
	case "", ServiceStarted, ServiceStopped, ServiceRestarted, ServiceReloaded:
	default:
		return fmt.Errorf("%w: service %s: state %q (want started, stopped, restarted or reloaded)", ErrInvalid, a.Name, a.State)
	}
	if a.State == "" && a.Enabled == nil {
		return fmt.Errorf("%w: service %s: nothing to do (no state, no enabled)", ErrInvalid, a.Name)
	}
	if a.VerifyTimeout <= 0 {
		a.VerifyTimeout = DefaultVerifyTimeout
	}
	return nil
}

var stateVerb = map[string]string{
	ServiceStarted: "start", ServiceStopped: "stop", ServiceRestarted: "restart", ServiceReloaded: "reload",
}

// svcVerifyMarker separates a service change's output from the running check after it.
const svcVerifyMarker = "@@drover-service-verify"

// verifyScript polls until the service runs, for up to timeout seconds.
func (b svcBackend) verifyScript(q string, timeout time.Duration) string {
	return fmt.Sprintf(`i=0; until %s >/dev/null 2>&1; do i=$((i+1)); [ $i -ge %d ] && exit 1; sleep 1; done`, b.running(q), secs(timeout))
}

func (m *svcManager) Status(ctx context.Context, r transport.Runner, name string, become *transport.Become) (ServiceStatus, error) {
	if err := ValidateServiceName(name); err != nil {
		return ServiceStatus{}, err
	}
	res, err := run(ctx, r, m.b.status(shellescape.Quote(name)), Options{Become: become})
	if err != nil {
		return ServiceStatus{}, fmt.Errorf("service %s: status: %w", name, err)
	}
	return m.b.parse(name, string(res.Stdout)), nil
}

func (m *svcManager) Commands(a ServiceAction) ([]string, error) {
	if err := validateService(&a); err != nil {
		return nil, err
	}
	q := shellescape.Quote(a.Name)
	var cmds []string
	if a.Enabled != nil {
		cmds = append(cmds, m.b.enable(q, *a.Enabled))
	}
	if a.State != "" {
		cmds = append(cmds, m.b.action(q, stateVerb[a.State]))
	}
	return cmds, nil
}

func svcState(st ServiceStatus) map[string]string {
	run, en := "stopped", "disabled"
	if st.Running {
		run = "running"
	}
	if st.Enabled {
		en = "enabled"
	}
	return map[string]string{"state": run, "enabled": en}
}

func (m *svcManager) Apply(ctx context.Context, r transport.Runner, a ServiceAction, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	if err := validateService(&a); err != nil {
		return fail(res, start, err)
	}
	q := shellescape.Quote(a.Name)

	before, err := m.Status(ctx, r, a.Name, o.Become)
	if err != nil {
		return fail(res, start, err)
	}
	res.Before = svcState(before)
	if !before.Exists {
		return fail(res, start, fmt.Errorf("service %s: %w on this host (%s)", a.Name, ErrNotFound, m.b.name))
	}

	// The enable/disable first, then the state change, combined in one round trip.
	var cmds, what []string
	if a.Enabled != nil && *a.Enabled != before.Enabled {
		cmds = append(cmds, m.b.enable(q, *a.Enabled))
		what = append(what, map[bool]string{true: "enabled", false: "disabled"}[*a.Enabled])
	}
	switch {
	case a.State == ServiceStarted && before.Running, a.State == ServiceStopped && !before.Running, a.State == "":
	case a.State == ServiceReloaded && !before.Running:
		// Reloading a stopped service would fail; starting it gives the new config.
		cmds = append(cmds, m.b.action(q, "start"))
		what = append(what, "started")
	default:
		cmds = append(cmds, m.b.action(q, stateVerb[a.State]))
		what = append(what, a.State)
	}
	if len(cmds) == 0 {
		res.Status, res.After, res.Detail = StatusOK, res.Before, res.Before["state"]+", "+res.Before["enabled"]
		res.Duration = time.Since(start)
		return res, nil
	}
	res.Commands = cmds
	if o.DryRun {
		res.Status, res.Detail = StatusChanged, "would be "+strings.Join(what, ", ")
		res.Duration = time.Since(start)
		return res, nil
	}

	// Confirm a started service is really running: init scripts and Type=simple units
	// report success before the daemon can die. The check follows the change in the same
	// round trip, after a marker line that says the change succeeded.
	verify := a.State == ServiceStarted || a.State == ServiceRestarted || a.State == ServiceReloaded
	script := strings.Join(cmds, " && ")
	if verify {
		script = thenCheck(script, svcVerifyMarker, m.b.verifyScript(q, a.VerifyTimeout), true)
	}
	out, err := run(ctx, r, script, o)
	if err != nil {
		return fail(res, start, fmt.Errorf("service %s: %w", a.Name, err))
	}
	changeOut, verified := string(out.Stdout), false
	if verify {
		changeOut, _, verified = splitMarker(changeOut, svcVerifyMarker)
	}
	res.Stdout, res.Stderr = changeOut, string(out.Stderr)
	if !verified && out.ExitCode != 0 {
		return fail(res, start, fmt.Errorf("service %s: %s exited %d: %s", a.Name, strings.Join(what, ", "), out.ExitCode, tail([]byte(changeOut+string(out.Stderr)))))
	}
	if verify && !verified {
		// The change exited 0 without the marker (its output cut at the capture cap, say):
		// verify in a round trip of its own.
		v, err := run(ctx, r, m.b.verifyScript(q, a.VerifyTimeout), o)
		if err != nil {
			return fail(res, start, fmt.Errorf("service %s: verify: %w", a.Name, err))
		}
		out.ExitCode = v.ExitCode
	}
	if verify && out.ExitCode != 0 {
		res.After = map[string]string{"state": "stopped", "enabled": res.Before["enabled"]}
		return fail(res, start, fmt.Errorf("service %s: %s, but not running after %ds", a.Name, strings.Join(what, ", "), secs(a.VerifyTimeout)))
	}
	after := before
	if a.Enabled != nil {
		after.Enabled = *a.Enabled
	}
	if a.State != "" {
		after.Running = a.State != ServiceStopped
	}
	res.After = svcState(after)
	res.Status, res.Detail = StatusChanged, strings.Join(what, ", ")
	res.Duration = time.Since(start)
	return res, nil
}

// ---- systemd ----

func systemdBackend() svcBackend {
	return svcBackend{
		name: "systemd",
		status: func(q string) string {
			return "systemctl show -p LoadState -p ActiveState -p SubState -p UnitFileState " + q
		},
		parse: func(name, stdout string) ServiceStatus {
			kv := map[string]string{}
			for _, l := range strings.Split(stdout, "\n") {
				if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
					kv[k] = v
				}
			}
			return ServiceStatus{
				Name:    name,
				Exists:  kv["LoadState"] != "" && kv["LoadState"] != "not-found",
				Running: kv["ActiveState"] == "active" || kv["ActiveState"] == "reloading",
				Enabled: kv["UnitFileState"] == "enabled" || kv["UnitFileState"] == "enabled-runtime",
				State:   strings.TrimSpace(kv["ActiveState"] + " (" + kv["SubState"] + ")"),
			}
		},
		action: func(q, verb string) string { return "systemctl " + verb + " " + q },
		enable: func(q string, on bool) string {
			if on {
				return "systemctl enable " + q
			}
			return "systemctl disable " + q
		},
		running: func(q string) string { return "systemctl is-active --quiet " + q },
	}
}

// ---- sysv ----

// sysvCmd prefers service(8), which runs the script in a clean environment, and
// falls back to the script itself.
func sysvCmd(q, verb string) string {
	return "if command -v service >/dev/null 2>&1; then service " + q + " " + verb + "; else /etc/init.d/" + q + " " + verb + "; fi"
}

func sysvBackend() svcBackend {
	return svcBackend{
		name: "sysv",
		// LSB status exit codes: 0 running, 1-3 not running, 4 unknown.
		status: func(q string) string {
			return "[ -x /etc/init.d/" + q + " ] && echo exists=yes; " +
				"{ " + sysvCmd(q, "status") + "; } >/dev/null 2>&1; echo status=$?; " +
				"if ls /etc/rc[2345].d/S[0-9][0-9]" + q + " >/dev/null 2>&1; then echo enabled=yes; else echo enabled=no; fi"
		},
		parse: func(name, stdout string) ServiceStatus {
			st := ServiceStatus{Name: name}
			for _, l := range strings.Split(stdout, "\n") {
				k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
				switch k {
				case "exists":
					st.Exists = v == "yes"
				case "status":
					st.Running, st.State = v == "0", "status exit "+v
				case "enabled":
					st.Enabled = v == "yes"
				}
			}
			return st
		},
		action: sysvCmd,
		enable: func(q string, on bool) string {
			if on {
				return "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d " + q + " defaults && update-rc.d " + q + " enable; else chkconfig " + q + " on; fi"
			}
			return "if command -v update-rc.d >/dev/null 2>&1; then update-rc.d " + q + " disable; else chkconfig " + q + " off; fi"
		},
		running: func(q string) string { return "{ " + sysvCmd(q, "status") + "; }" },
	}
}

// ---- openrc ----

func openrcBackend() svcBackend {
	return svcBackend{
		name: "openrc",
		status: func(q string) string {
			return "[ -x /etc/init.d/" + q + " ] && echo exists=yes; " +
				"rc-service " + q + " status >/dev/null 2>&1; echo status=$?; " +
				"if [ -e /etc/runlevels/default/" + q + " ]; then echo enabled=yes; else echo enabled=no; fi"
		},
		parse:  sysvBackend().parse,
		action: func(q, verb string) string { return "rc-service " + q + " " + verb },
		enable: func(q string, on bool) string {
			if on {
				return "rc-update add " + q + " default"
			}
			return "rc-update del " + q + " default"
		},
		running: func(q string) string { return "rc-service " + q + " status" },
	}
}
