package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
	"github.com/urfave/cli/v2"
)

// defaultDisableReason is recorded when `puppet disable` is given no --reason, so the
// lock always says who disabled the agent.
const defaultDisableReason = "disabled by drover"

func puppetCommand(e *env) *cli.Command {
	const desc = "Exit status: 0 all ok or changed, 1 some host failed or was unreachable, 2 bad input, 4 interrupted.\n" + filterHelp
	return groupCommand("puppet", "Puppet agent actions: run, status, enable, disable", "run, status, enable or disable", []*cli.Command{
		{
			Name:      "run",
			Usage:     "one agent run per host (puppet agent --onetime --no-daemonize --detailed-exitcodes)",
			ArgsUsage: "[PATTERN]",
			Description: "Exit code 2 of the agent is \"changed\"; 1, 4 and 6 are failures. A run already in progress is\n" +
				"waited for up to --lock-timeout. --concurrency N keeps at most N agent runs going across the\n" +
				"hosts at once (like mco puppet runall N), independent of --forks.\n" + desc,
			HideHelpCommand: true,
			OnUsageError:    usageError,
			Flags: hostFlags(
				&cli.BoolFlag{Name: "noop", Usage: "report what would change, change nothing"},
				&cli.StringFlag{Name: "tags", Usage: "only resources with these `a,b` tags"},
				&cli.StringFlag{Name: "environment", Usage: "Puppet `ENV`ironment"},
				&cli.StringFlag{Name: "server", Usage: "Puppet server `HOST`"},
				&cli.IntFlag{Name: "concurrency", Usage: "at most `N` agent runs at once across the hosts (0: --forks)"},
				&cli.DurationFlag{Name: "lock-timeout", Value: steps.DefaultLockTimeout, Usage: "wait up to `D` for an agent run already in progress"},
			),
			Action: func(c *cli.Context) error { return puppetRunAction(c, e) },
		},
		{
			Name:            "status",
			Usage:           "enabled or disabled (with the reason), applying or idle, and the last run's summary",
			ArgsUsage:       "[PATTERN]",
			Description:     desc,
			HideHelpCommand: true,
			OnUsageError:    usageError,
			Flags:           hostFlags(),
			Action:          func(c *cli.Context) error { return puppetSimpleAction(c, e, "status", "") },
		},
		{
			Name:            "enable",
			Usage:           "allow agent runs again (puppet agent --enable)",
			ArgsUsage:       "[PATTERN]",
			Description:     desc,
			HideHelpCommand: true,
			OnUsageError:    usageError,
			Flags:           hostFlags(),
			Action:          func(c *cli.Context) error { return puppetSimpleAction(c, e, "enable", "") },
		},
		{
			Name:            "disable",
			Usage:           "stop agent runs, with a reason (puppet agent --disable R)",
			ArgsUsage:       "[PATTERN]",
			Description:     desc,
			HideHelpCommand: true,
			OnUsageError:    usageError,
			Flags:           hostFlags(&cli.StringFlag{Name: "reason", Value: defaultDisableReason, Usage: "why, for whoever finds the agent disabled"}),
			Action: func(c *cli.Context) error {
				return puppetSimpleAction(c, e, "disable", c.String("reason"))
			},
		},
	})
}

// puppetSession reads the options and PATTERN and opens the session; Puppet needs no
// facts unless the filters do.
func puppetSession(c *cli.Context, e *env, check func(o *options) error) (*hostSession, *factSource, error) {
	o, err := readOptions(c, e)
	if err != nil {
		return nil, nil, err
	}
	_, pattern, err := actionArgs(o, c.Args().Slice(), 0, "")
	if err != nil {
		return nil, nil, err
	}
	if err := check(o); err != nil {
		return nil, nil, err
	}
	src, err := newFactSource(c, e, o)
	if err != nil {
		return nil, nil, err
	}
	s, err := openSession(c, e, o, pattern, src)
	if err != nil {
		return nil, nil, err
	}
	return s, src, nil
}

func puppetRunAction(c *cli.Context, e *env) error {
	run := steps.PuppetRun{
		Noop: c.Bool("noop"), Environment: c.String("environment"), Server: c.String("server"),
		LockTimeout: c.Duration("lock-timeout"),
	}
	if t := c.String("tags"); t != "" {
		run.Tags = strings.Split(t, ",")
	}
	n := c.Int("concurrency")
	s, src, err := puppetSession(c, e, func(o *options) error {
		if n < 0 {
			return badInput(o.cmd, "--concurrency must not be negative, got %d", n)
		}
		if run.LockTimeout <= 0 {
			return badInput(o.cmd, "--lock-timeout must be positive, got %s", run.LockTimeout)
		}
		_, err := steps.Puppet{}.RunCommand(run) // validates tags, environment, server
		return invalid(o.cmd, err)
	})
	if err != nil {
		return err
	}
	defer s.conn.Close()
	opt := steps.Options{Become: s.become, Timeout: s.o.timeout}
	title := "puppet run"
	if cmd, err := (steps.Puppet{}).RunCommand(run); err == nil {
		title = cmd
	}
	cmd := &actionCommand{title: title, changes: true, work: puppetRunWork(c.Context, run, opt, newRunLimit(n))}
	return cmd.execute(c, e, s, src)
}

// runLimit bounds how many agent runs go at once; nil means no bound beyond --forks.
type runLimit chan struct{}

func newRunLimit(n int) runLimit {
	if n <= 0 {
		return nil
	}
	return make(runLimit, n)
}

// acquire waits for a slot; false when interrupted first (the run must not start).
func (l runLimit) acquire(interrupt context.Context) bool {
	if l == nil {
		return interrupt.Err() == nil
	}
	select {
	case l <- struct{}{}:
		if interrupt.Err() != nil { // both were ready and select chose the slot
			<-l
			return false
		}
		return true
	case <-interrupt.Done():
		return false
	}
}

func (l runLimit) release() {
	if l != nil {
		<-l
	}
}

// puppetRunWork does one agent run within the limit. interrupt is the command's
// context: a host still waiting for a slot when it ends is not started, while a run
// in progress finishes (work runs with a context the interrupt does not reach).
func puppetRunWork(interrupt context.Context, run steps.PuppetRun, opt steps.Options, limit runLimit) hostWork {
	return func(ctx context.Context, r transport.Runner, _ facts.Facts, res *actionResult) {
		if !limit.acquire(interrupt) {
			res.Status, res.Error = statusSkipped, "not started: interrupted"
			return
		}
		defer limit.release()
		out, _ := steps.Puppet{}.Run(ctx, r, run, opt) // the error is out.Err
		fromStep(res, out)
	}
}

func puppetSimpleAction(c *cli.Context, e *env, verb, reason string) error {
	s, src, err := puppetSession(c, e, func(o *options) error {
		if strings.ContainsAny(reason, "\x00\n\r") {
			return badInput(o.cmd, "--reason must be one line")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer s.conn.Close()
	opt := steps.Options{Become: s.become, Timeout: s.o.timeout}
	cmd := &actionCommand{title: "puppet " + verb, changes: verb != "status"}
	p := steps.Puppet{}
	switch verb {
	case "status":
		cmd.work = puppetStatusWork(opt)
		cmd.totals = func(results []actionResult, sum *actionSummary) { sum.Puppet = puppetTotalsOf(results) }
	case "enable":
		cmd.work = func(ctx context.Context, r transport.Runner, _ facts.Facts, res *actionResult) {
			out, _ := p.Enable(ctx, r, opt)
			fromStep(res, out)
		}
		cmd.groups = []groupSpec{{"agent", puppetEnabledAfter}}
	case "disable":
		cmd.title += " --reason " + strconv.Quote(reason)
		cmd.work = func(ctx context.Context, r transport.Runner, _ facts.Facts, res *actionResult) {
			out, _ := p.Disable(ctx, r, reason, opt)
			fromStep(res, out)
		}
		cmd.groups = []groupSpec{{"agent", puppetEnabledAfter}}
	}
	return cmd.execute(c, e, s, src)
}

func puppetEnabledAfter(r actionResult) (string, bool) {
	switch r.After["enabled"] {
	case "true":
		return "enabled", true
	case "false":
		return "disabled", true
	}
	return "", false
}

func puppetStatusWork(opt steps.Options) hostWork {
	return func(ctx context.Context, r transport.Runner, _ facts.Facts, res *actionResult) {
		if opt.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, opt.Timeout)
			defer cancel()
		}
		st, err := steps.Puppet{}.Status(ctx, r, opt.Become)
		if err != nil {
			setError(res, err)
			return
		}
		res.Status, res.Puppet, res.Detail = statusOK, &st, puppetStatusText(st)
	}
}

// puppetStatusText is one host's agent state on a line.
func puppetStatusText(st steps.PuppetStatus) string {
	var b strings.Builder
	if st.Enabled {
		b.WriteString("enabled")
	} else {
		fmt.Fprintf(&b, "disabled (%s)", st.DisabledReason)
	}
	if st.Applying {
		fmt.Fprintf(&b, ", applying (pid %d)", st.PID)
	} else {
		b.WriteString(", idle")
	}
	if l := st.LastRun; l != nil {
		when := "unknown time"
		if !l.LastRun.IsZero() {
			when = l.LastRun.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "; last run %s: %d changed, %d failed, %d out of sync", when, l.Changed, l.Failed, l.OutOfSync)
		if l.ConfigVersion != "" {
			fmt.Fprintf(&b, ", config %s", l.ConfigVersion)
		}
	} else {
		b.WriteString("; no run yet")
	}
	return b.String()
}

// hostNote is a host and a short text about it (a disable reason).
type hostNote struct {
	Host string `json:"host"`
	Note string `json:"note"`
}

// hostTime is a host and a time (its last run).
type hostTime struct {
	Host string    `json:"host"`
	Time time.Time `json:"time"`
}

// puppetTotals is `puppet status`'s summary block, over the hosts that answered.
type puppetTotals struct {
	Enabled       int        `json:"enabled"`
	Disabled      int        `json:"disabled"`
	DisabledHosts []hostNote `json:"disabled_hosts"`
	Applying      int        `json:"applying"`
	Idle          int        `json:"idle"`
	ApplyingHosts []string   `json:"applying_hosts"`
	// Resources in the hosts' last runs, summed.
	Changed     int       `json:"changed"`
	Failed      int       `json:"failed"`
	OutOfSync   int       `json:"out_of_sync"`
	FailedHosts []string  `json:"failed_hosts"` // hosts whose last run had failures
	OldestRun   *hostTime `json:"oldest_run,omitempty"`
	NewestRun   *hostTime `json:"newest_run,omitempty"`
	NeverRun    []string  `json:"never_run"` // no last_run_summary.yaml
}

func puppetTotalsOf(results []actionResult) *puppetTotals {
	t := &puppetTotals{DisabledHosts: []hostNote{}, ApplyingHosts: []string{}, FailedHosts: []string{}, NeverRun: []string{}}
	for _, r := range results {
		st := r.Puppet
		if st == nil {
			continue
		}
		if st.Enabled {
			t.Enabled++
		} else {
			t.Disabled++
			t.DisabledHosts = append(t.DisabledHosts, hostNote{r.Name, st.DisabledReason})
		}
		if st.Applying {
			t.Applying++
			t.ApplyingHosts = append(t.ApplyingHosts, r.Name)
		} else {
			t.Idle++
		}
		l := st.LastRun
		if l == nil {
			t.NeverRun = append(t.NeverRun, r.Name)
			continue
		}
		t.Changed += l.Changed
		t.Failed += l.Failed
		t.OutOfSync += l.OutOfSync
		if l.Failed > 0 || l.EventFailures > 0 {
			t.FailedHosts = append(t.FailedHosts, r.Name)
		}
		if l.LastRun.IsZero() {
			continue
		}
		if t.OldestRun == nil || l.LastRun.Before(t.OldestRun.Time) {
			t.OldestRun = &hostTime{r.Name, l.LastRun}
		}
		if t.NewestRun == nil || l.LastRun.After(t.NewestRun.Time) {
			t.NewestRun = &hostTime{r.Name, l.LastRun}
		}
	}
	sort.Slice(t.DisabledHosts, func(i, j int) bool { return t.DisabledHosts[i].Host < t.DisabledHosts[j].Host })
	return t
}

func renderPuppetTotals(b *strings.Builder, pal *palette, t *puppetTotals) {
	fmt.Fprintf(b, "%s %d enabled, %d disabled; %d applying, %d idle\n", pal.bold.Sprint("agents:"), t.Enabled, t.Disabled, t.Applying, t.Idle)
	if len(t.DisabledHosts) > 0 {
		var parts []string
		for _, d := range t.DisabledHosts {
			parts = append(parts, fmt.Sprintf("%s (%s)", d.Host, d.Note))
		}
		fmt.Fprintf(b, "  disabled: %s\n", strings.Join(parts, ", "))
	}
	if len(t.ApplyingHosts) > 0 {
		fmt.Fprintf(b, "  applying: %s\n", strings.Join(t.ApplyingHosts, ", "))
	}
	fmt.Fprintf(b, "%s %d changed, %d failed, %d out of sync resources\n", pal.bold.Sprint("last runs:"), t.Changed, t.Failed, t.OutOfSync)
	if len(t.FailedHosts) > 0 {
		fmt.Fprintf(b, "  %s %s\n", pal.failed.Sprint("with failures:"), strings.Join(t.FailedHosts, ", "))
	}
	if t.OldestRun != nil {
		fmt.Fprintf(b, "  oldest %s (%s), newest %s (%s)\n",
			t.OldestRun.Time.UTC().Format(time.RFC3339), t.OldestRun.Host, t.NewestRun.Time.UTC().Format(time.RFC3339), t.NewestRun.Host)
	}
	if len(t.NeverRun) > 0 {
		fmt.Fprintf(b, "  no run yet: %s\n", strings.Join(t.NeverRun, ", "))
	}
}
