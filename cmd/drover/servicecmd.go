package main

import (
	"context"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
	"github.com/urfave/cli/v2"
)

// serviceVerbs maps the service subcommands to the steps.ServiceAction they ask for.
var serviceVerbs = []struct {
	verb, state, usage string
	enable             *bool
}{
	{"status", "", "whether the service runs and starts at boot, with hosts per state", nil},
	{"start", steps.ServiceStarted, "start it (ok when running); then check that it runs", nil},
	{"stop", steps.ServiceStopped, "stop it (ok when stopped)", nil},
	{"restart", steps.ServiceRestarted, "restart it; then check that it runs", nil},
	{"reload", steps.ServiceReloaded, "reload its configuration (a stopped service is started)", nil},
	{"enable", "", "start it at boot", ptr(true)},
	{"disable", "", "do not start it at boot", ptr(false)},
}

func ptr[T any](v T) *T { return &v }

// Service states in summaries, beyond the init system's running/stopped.
const serviceAbsent = "absent"

func serviceCommand(e *env) *cli.Command {
	var subs []*cli.Command
	for _, v := range serviceVerbs {
		subs = append(subs, &cli.Command{
			Name:      v.verb,
			Usage:     v.usage,
			ArgsUsage: "NAME [PATTERN]",
			Description: "The init system (systemd, sysv, openrc) comes from each host's init_system fact (cached, or\n" +
				"gathered first). Each host's line is printed as it finishes, then the hosts per state. Exit\n" +
				"status: 0 all ok or changed, 1 some host failed or was unreachable, 2 bad input, 4 interrupted.\n" +
				filterHelp,
			HideHelpCommand: true,
			OnUsageError:    usageError,
			Flags:           hostFlags(batchFlags()...),
			Action: func(c *cli.Context) error {
				return serviceAction(c, e, v.verb, steps.ServiceAction{State: v.state, Enabled: v.enable})
			},
		})
	}
	return groupCommand("service", "service status, start, stop, restart, reload, enable and disable, with a summary of states",
		"status, start, stop, restart, reload, enable or disable", subs)
}

func serviceAction(c *cli.Context, e *env, verb string, act steps.ServiceAction) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	lead, pattern, err := actionArgs(o, c.Args().Slice(), 1, "NAME")
	if err != nil {
		return err
	}
	act.Name = lead[0]
	if err := steps.ValidateServiceName(act.Name); err != nil {
		return invalid(o.cmd, err)
	}
	if err := checkBatchFlags(c, o); err != nil {
		return err
	}
	src, err := newFactSource(c, e, o)
	if err != nil {
		return err
	}
	s, err := openSession(c, e, o, pattern, src)
	if err != nil {
		return err
	}
	defer s.conn.Close()
	opt := steps.Options{Become: s.become, Timeout: o.timeout}
	cmd := &actionCommand{
		title: "service " + verb + " " + act.Name, needFacts: true,
		batch: c.String("batch"), sleep: c.Duration("batch-sleep"),
	}
	switch {
	case verb == "status":
		cmd.work = serviceStatusWork(act.Name, opt)
		cmd.groups = []groupSpec{{"states", func(r actionResult) (string, bool) {
			if r.Service == nil {
				return "", false
			}
			return serviceState(*r.Service), true
		}}}
	case act.Enabled != nil:
		cmd.work, cmd.changes = serviceApplyWork(act, opt), true
		cmd.groups = []groupSpec{{"boot", afterKey("enabled")}}
	default:
		cmd.work, cmd.changes = serviceApplyWork(act, opt), true
		cmd.groups = []groupSpec{{"states", afterKey("state")}}
	}
	return cmd.execute(c, e, s, src)
}

// afterKey reads one key of a step's after state for a summary group.
func afterKey(key string) func(actionResult) (string, bool) {
	return func(r actionResult) (string, bool) {
		v, ok := r.After[key]
		return v, ok && v != ""
	}
}

// serviceManager picks the host's backend from its init_system fact.
func serviceManager(f facts.Facts) (steps.ServiceManager, error) {
	is, err := factString(f, "init_system")
	if err != nil {
		return nil, err
	}
	return steps.ServiceManagerFor(is)
}

// serviceState is running, stopped or absent (no such service on the host).
func serviceState(st steps.ServiceStatus) string {
	switch {
	case !st.Exists:
		return serviceAbsent
	case st.Running:
		return "running"
	}
	return "stopped"
}

func serviceStatusWork(name string, opt steps.Options) hostWork {
	return func(ctx context.Context, r transport.Runner, f facts.Facts, res *actionResult) {
		m, err := serviceManager(f)
		if err != nil {
			setError(res, err)
			return
		}
		res.Backend = m.Name()
		if opt.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, opt.Timeout)
			defer cancel()
		}
		st, err := m.Status(ctx, r, name, opt.Become)
		if err != nil {
			setError(res, err)
			return
		}
		res.Status, res.Service = statusOK, &st
		res.Detail = serviceState(st)
		if st.Exists {
			res.Detail += map[bool]string{true: ", enabled", false: ", disabled"}[st.Enabled]
		} else {
			res.Detail += " (no such service)"
		}
	}
}

func serviceApplyWork(a steps.ServiceAction, opt steps.Options) hostWork {
	return func(ctx context.Context, r transport.Runner, f facts.Facts, res *actionResult) {
		m, err := serviceManager(f)
		if err != nil {
			setError(res, err)
			return
		}
		res.Backend = m.Name()
		out, _ := m.Apply(ctx, r, a, opt) // the error is out.Err
		fromStep(res, out)
	}
}
