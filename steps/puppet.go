package steps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"al.essio.dev/pkg/shellescape"

	"github.com/drover-sh/drover/transport"
)

// Puppet runs Puppet agent actions on a host. The zero value is ready to use.
type Puppet struct{}

// PuppetRun are the options of an agent run or a masterless apply.
type PuppetRun struct {
	Noop        bool
	Tags        []string
	Environment string
	Server      string // agent runs only
	// LockTimeout is how long to wait for an agent run already in progress;
	// 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// PuppetPaths are the agent's lock and state files, from `puppet config print`.
type PuppetPaths struct {
	RunLock      string `json:"agent_catalog_run_lockfile"`
	DisabledLock string `json:"agent_disabled_lockfile"`
	StateDir     string `json:"statedir"`
	LastRunFile  string `json:"lastrunfile"`
}

// Puppet 7 defaults, used when `puppet config print` gives nothing.
var (
	debianPuppetPaths = PuppetPaths{
		RunLock:      "/var/lib/puppet/state/agent_catalog_run.lock",
		DisabledLock: "/var/lib/puppet/state/agent_disabled.lock",
		StateDir:     "/var/lib/puppet/state",
		LastRunFile:  "/var/lib/puppet/public/last_run_summary.yaml",
	}
	aioPuppetPaths = PuppetPaths{
		RunLock:      "/opt/puppetlabs/puppet/cache/state/agent_catalog_run.lock",
		DisabledLock: "/opt/puppetlabs/puppet/cache/state/agent_disabled.lock",
		StateDir:     "/opt/puppetlabs/puppet/cache/state",
		LastRunFile:  "/opt/puppetlabs/puppet/public/last_run_summary.yaml",
	}
)

// PuppetStatus is the agent's state on one host.
type PuppetStatus struct {
	Enabled        bool            `json:"enabled"`
	DisabledReason string          `json:"disabled_reason,omitempty"`
	Applying       bool            `json:"applying"`
	PID            int             `json:"pid,omitempty"` // of the run in progress
	LastRun        *LastRunSummary `json:"last_run,omitempty"`
}

// puppetPath makes an AIO install's puppet reachable under sudo's secure_path.
const puppetPath = `export PATH="$PATH:/opt/puppetlabs/bin"; `

// puppetLockExit is the exit status the run script uses when it gave up waiting.
const puppetLockExit = 97

var (
	tagRe    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_:.-]{0,199}$`)
	envRe    = regexp.MustCompile(`^[A-Za-z0-9_]{1,100}$`)
	serverRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)
)

func (o *PuppetRun) validate() error {
	for _, t := range o.Tags {
		if !tagRe.MatchString(t) {
			return fmt.Errorf("%w: puppet tag %q", ErrInvalid, t)
		}
	}
	if o.Environment != "" && !envRe.MatchString(o.Environment) {
		return fmt.Errorf("%w: puppet environment %q", ErrInvalid, o.Environment)
	}
	if o.Server != "" && !serverRe.MatchString(o.Server) {
		return fmt.Errorf("%w: puppet server %q", ErrInvalid, o.Server)
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	return nil
}

// flags are the options shared by agent runs and applies (all validated).
func (o PuppetRun) flags(noop bool) string {
	var b strings.Builder
	if noop {
		b.WriteString(" --noop")
	}
	if len(o.Tags) > 0 {
		b.WriteString(" --tags " + shellescape.Quote(strings.Join(o.Tags, ",")))
	}
	if o.Environment != "" {
		b.WriteString(" --environment " + shellescape.Quote(o.Environment))
	}
	if o.Server != "" {
		b.WriteString(" --server " + shellescape.Quote(o.Server))
	}
	return b.String()
}

// RunCommand is the agent invocation Run makes, for plan previews.
func (Puppet) RunCommand(o PuppetRun) (string, error) {
	if err := o.validate(); err != nil {
		return "", err
	}
	// --logdest console: without it the agent logs to syslog and a refused or failed run
	// would reach the operator with no reason. --no-usecacheonfailure: a catalog that fails
	// to compile must fail the run, not silently re-apply the cached one and exit 0.
	return "puppet agent --onetime --no-daemonize --no-splay --detailed-exitcodes --color=false --logdest console --no-usecacheonfailure" + o.flags(o.Noop), nil
}

// runScript waits (polling once a second) while another agent run holds the
// catalog run lock with a live pid, then runs the agent and appends the new
// last_run_summary.yaml after an @@summary line. One round trip.
func (p Puppet) runScript(o PuppetRun, noop bool) string {
	agent, _ := p.RunCommand(PuppetRun{Tags: o.Tags, Environment: o.Environment, Server: o.Server, Noop: noop})
	n := secs(o.LockTimeout)
	return puppetPath +
		`paths=$(puppet config print agent_catalog_run_lockfile lastrunfile 2>/dev/null); ` +
		`lock=$(printf '%s\n' "$paths" | sed -n 's/^agent_catalog_run_lockfile = //p'); ` +
		`last=$(printf '%s\n' "$paths" | sed -n 's/^lastrunfile = //p'); i=0; ` +
		`while [ -n "$lock" ] && [ -e "$lock" ] && pid=$(cat "$lock" 2>/dev/null) && [ -n "$pid" ] && [ -d "/proc/$pid" ]; do ` +
		fmt.Sprintf(`[ $i -ge %d ] && { echo "drover: puppet agent run in progress (pid $pid) for %ds" >&2; exit %d; }; i=$((i+1)); sleep 1; done; `, n, n, puppetLockExit) +
		agent + `; rc=$?; [ -n "$last" ] && [ -r "$last" ] && { echo '@@summary'; cat "$last"; }; exit $rc`
}

// Run does one agent run (`puppet agent --onetime --no-daemonize
// --detailed-exitcodes`). Exit 0 is ok, 2 changed, 1, 4 and 6 failed. With
// DryRun the run is --noop and "changed" means "would change".
func (p Puppet) Run(ctx context.Context, r transport.Runner, o PuppetRun, opt Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	if err := o.validate(); err != nil {
		return fail(res, start, err)
	}
	noop := o.Noop || opt.DryRun
	cmd, _ := p.RunCommand(PuppetRun{Tags: o.Tags, Environment: o.Environment, Server: o.Server, Noop: noop})
	res.Commands = []string{cmd}
	out, err := run(ctx, r, p.runScript(o, noop), opt)
	if err != nil {
		return fail(res, start, fmt.Errorf("puppet run: %w", err))
	}
	return p.finish(res, start, "puppet run", out, noop, o.LockTimeout)
}

var disabledRe = regexp.MustCompile(`administratively disabled \(Reason: '(.*)'\)`)

// finish maps Puppet's detailed exit codes and reads the appended summary.
func (Puppet) finish(res *Result, start time.Time, what string, out *transport.Result, noop bool, lock time.Duration) (*Result, error) {
	stdout, summary, _ := strings.Cut(string(out.Stdout), "@@summary\n")
	res.Stdout, res.Stderr = stdout, string(out.Stderr)
	counts := ""
	if s, err := ParseLastRunSummary([]byte(summary)); err == nil {
		res.After = map[string]string{"config_version": s.ConfigVersion, "changed": strconv.Itoa(s.Changed), "failed": strconv.Itoa(s.Failed), "out_of_sync": strconv.Itoa(s.OutOfSync)}
		counts = fmt.Sprintf(": %d changed, %d out of sync, %d failed", s.Changed, s.OutOfSync, s.Failed)
	}
	all := res.Stdout + res.Stderr
	switch out.ExitCode {
	case 0:
		res.Status, res.Detail = StatusOK, "no changes"+counts
	case 2:
		res.Status, res.Detail = StatusChanged, "changed"+counts
		if noop {
			res.Detail = "would change (noop)" + counts
		}
	case puppetLockExit:
		return fail(res, start, fmt.Errorf("%s: %w: %s; gave up after %ds", what, ErrLocked, strings.TrimPrefix(tail(out.Stderr), "drover: "), secs(lock)))
	case 1:
		switch {
		case strings.Contains(all, "already in progress"):
			return fail(res, start, fmt.Errorf("%s: %w: an agent run is already in progress", what, ErrLocked))
		case disabledRe.MatchString(all):
			return fail(res, start, fmt.Errorf("%s: puppet agent is disabled: %s", what, disabledRe.FindStringSubmatch(all)[1]))
		}
		return fail(res, start, fmt.Errorf("%s failed (exit 1): %s", what, tail(out.Stderr)))
	default: // 4: failures, 6: changes and failures, anything else
		return fail(res, start, fmt.Errorf("%s: failures (exit %d)%s: %s", what, out.ExitCode, counts, tail(out.Stderr)))
	}
	res.Duration = time.Since(start)
	return res, nil
}

// Paths asks Puppet where its lock and summary files are (one round trip),
// falling back to Puppet 7's defaults (AIO when /opt/puppetlabs exists).
func (Puppet) Paths(ctx context.Context, r transport.Runner, become *transport.Become) (PuppetPaths, error) {
	out, err := run(ctx, r, puppetPath+`command -v puppet >/dev/null 2>&1 || echo '@@notinstalled'; [ -d /opt/puppetlabs/puppet ] && echo '@@aio'; `+
		`puppet config print agent_catalog_run_lockfile agent_disabled_lockfile statedir lastrunfile 2>/dev/null`, Options{Become: become})
	if err != nil {
		return PuppetPaths{}, fmt.Errorf("puppet config print: %w", err)
	}
	return parsePuppetPaths(string(out.Stdout))
}

func parsePuppetPaths(stdout string) (PuppetPaths, error) {
	p := debianPuppetPaths
	var got bool
	for _, l := range strings.Split(stdout, "\n") {
		switch l = strings.TrimSpace(l); l {
		case "@@notinstalled":
			return PuppetPaths{}, fmt.Errorf("puppet: %w on this host", ErrNotFound)
		case "@@aio":
			if !got {
				p = aioPuppetPaths
			}
			continue
		}
		k, v, ok := strings.Cut(l, " = ")
		if !ok || v == "" {
			continue
		}
		if !got {
			p, got = PuppetPaths{}, true
		}
		switch k {
		case "agent_catalog_run_lockfile":
			p.RunLock = v
		case "agent_disabled_lockfile":
			p.DisabledLock = v
		case "statedir":
			p.StateDir = v
		case "lastrunfile":
			p.LastRunFile = v
		}
	}
	return p, nil
}

// Status reads the lock files and the last run summary (two round trips).
func (p Puppet) Status(ctx context.Context, r transport.Runner, become *transport.Become) (PuppetStatus, error) {
	paths, err := p.Paths(ctx, r, become)
	if err != nil {
		return PuppetStatus{}, err
	}
	run1, dis, last := shellescape.Quote(paths.RunLock), shellescape.Quote(paths.DisabledLock), shellescape.Quote(paths.LastRunFile)
	script := `if [ -e ` + run1 + ` ]; then pid=$(cat ` + run1 + ` 2>/dev/null); [ -n "$pid" ] && [ -d "/proc/$pid" ] && echo "@@applying $pid"; fi; ` +
		`[ -e ` + dis + ` ] && { echo '@@disabled'; cat ` + dis + ` 2>/dev/null; echo; }; ` +
		`[ -r ` + last + ` ] && { echo '@@summary'; cat ` + last + `; }; true`
	out, err := run(ctx, r, script, Options{Become: become})
	if err != nil {
		return PuppetStatus{}, fmt.Errorf("puppet status: %w", err)
	}
	return parsePuppetStatus(string(out.Stdout))
}

func parsePuppetStatus(stdout string) (PuppetStatus, error) {
	st := PuppetStatus{Enabled: true}
	rest, summary, hasSummary := strings.Cut(stdout, "@@summary\n")
	head, disabled, isDisabled := strings.Cut(rest, "@@disabled\n")
	if pid, ok := strings.CutPrefix(strings.TrimSpace(head), "@@applying "); ok {
		st.Applying = true
		st.PID, _ = strconv.Atoi(pid)
	}
	if isDisabled {
		st.Enabled = false
		var lock struct {
			Message string `json:"disabled_message"`
		}
		// An empty or non-JSON lock still means disabled (Puppet 3 wrote plain text).
		if json.Unmarshal([]byte(disabled), &lock) == nil {
			st.DisabledReason = lock.Message
		} else {
			st.DisabledReason = strings.TrimSpace(disabled)
		}
	}
	if hasSummary {
		s, err := ParseLastRunSummary([]byte(summary))
		if err != nil {
			return st, err
		}
		st.LastRun = s
	}
	return st, nil
}

func puppetState(st PuppetStatus) map[string]string {
	m := map[string]string{"enabled": strconv.FormatBool(st.Enabled)}
	if !st.Enabled {
		m["reason"] = st.DisabledReason
	}
	return m
}

// Disable stops future agent runs with a reason (`puppet agent --disable R`);
// ok when already disabled with the same reason.
func (p Puppet) Disable(ctx context.Context, r transport.Runner, reason string, o Options) (*Result, error) {
	if strings.ContainsAny(reason, "\x00\n\r") {
		return fail(&Result{}, time.Now(), fmt.Errorf("%w: puppet disable reason: control characters", ErrInvalid))
	}
	cmd := "puppet agent --disable " + shellescape.Quote(reason)
	return p.toggle(ctx, r, cmd, false, reason, o)
}

// Enable allows agent runs again (`puppet agent --enable`); ok when enabled.
func (p Puppet) Enable(ctx context.Context, r transport.Runner, o Options) (*Result, error) {
	return p.toggle(ctx, r, "puppet agent --enable", true, "", o)
}

func (p Puppet) toggle(ctx context.Context, r transport.Runner, cmd string, enable bool, reason string, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	what := map[bool]string{true: "puppet enable", false: "puppet disable"}[enable]
	st, err := p.Status(ctx, r, o.Become)
	if err != nil {
		return fail(res, start, fmt.Errorf("%s: %w", what, err))
	}
	res.Before = puppetState(st)
	if st.Enabled == enable && (enable || st.DisabledReason == reason) {
		res.Status, res.After, res.Detail = StatusOK, res.Before, map[bool]string{true: "enabled", false: "disabled"}[enable]
		res.Duration = time.Since(start)
		return res, nil
	}
	res.Commands = []string{cmd}
	after := PuppetStatus{Enabled: enable, DisabledReason: reason}
	if o.DryRun {
		res.Status, res.Detail = StatusChanged, "would be "+map[bool]string{true: "enabled", false: "disabled"}[enable]
		res.Duration = time.Since(start)
		return res, nil
	}
	out, err := run(ctx, r, puppetPath+cmd, o)
	if err != nil {
		return fail(res, start, fmt.Errorf("%s: %w", what, err))
	}
	res.Stdout, res.Stderr = string(out.Stdout), string(out.Stderr)
	if out.ExitCode != 0 {
		return fail(res, start, fmt.Errorf("%s exited %d: %s", what, out.ExitCode, tail(out.Stderr)))
	}
	res.After = puppetState(after)
	res.Status, res.Detail = StatusChanged, map[bool]string{true: "enabled", false: "disabled: " + reason}[enable]
	res.Duration = time.Since(start)
	return res, nil
}

// ApplyCommand is the masterless invocation for a manifest at path.
func (Puppet) ApplyCommand(path string, o PuppetRun) (string, error) {
	if err := o.validate(); err != nil {
		return "", err
	}
	if o.Server != "" {
		return "", fmt.Errorf("%w: puppet apply takes no server", ErrInvalid)
	}
	return "puppet apply --detailed-exitcodes --color=false --logdest console" + o.flags(o.Noop) + " " + shellescape.Quote(path), nil
}

// Apply uploads a manifest from the controller and applies it masterless
// (`puppet apply --detailed-exitcodes`), removing it afterwards. Exit codes map
// as for Run.
func (p Puppet) Apply(ctx context.Context, r transport.Runner, manifest io.Reader, o PuppetRun, opt Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fail(res, start, fmt.Errorf("puppet apply: temp name: %w", err))
	}
	path := "/var/tmp/drover-manifest-" + hex.EncodeToString(rnd[:]) + ".pp"
	noop := o.Noop || opt.DryRun
	o.Noop = noop
	cmd, err := p.ApplyCommand(path, o)
	if err != nil {
		return fail(res, start, err)
	}
	res.Commands = []string{cmd}
	if err := r.Upload(ctx, manifest, path, 0o600, opt.Become); err != nil {
		return fail(res, start, fmt.Errorf("puppet apply: upload manifest: %w", err))
	}
	script := puppetPath + cmd + `; rc=$?; rm -f ` + shellescape.Quote(path) +
		`; last=$(puppet config print lastrunfile 2>/dev/null); [ -n "$last" ] && [ -r "$last" ] && { echo '@@summary'; cat "$last"; }; exit $rc`
	out, err := run(ctx, r, script, opt)
	if err != nil {
		return fail(res, start, fmt.Errorf("puppet apply: %w", err))
	}
	return p.finish(res, start, "puppet apply", out, noop, o.LockTimeout)
}
