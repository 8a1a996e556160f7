package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
	"github.com/urfave/cli/v2"
)

// hostFlags are the flags of every action subcommand: global, targeting, facts.
func hostFlags(extra ...cli.Flag) []cli.Flag {
	return append(append(append(append(commonFlags(), targetingFlags()...), factFlags()...), adhocLogFlags()...), extra...)
}

// groupCommand is a command whose only job is to hold subcommands (package, service,
// puppet); a missing or unknown subcommand is bad input.
func groupCommand(name, usage, want string, subs []*cli.Command) *cli.Command {
	return &cli.Command{
		Name:         name,
		Usage:        usage,
		OnUsageError: usageError,
		Subcommands:  subs,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return badInput(cmdPath(c), "unknown subcommand %q (want %s)", c.Args().First(), want)
			}
			return badInput(cmdPath(c), "missing subcommand (%s)", want)
		},
	}
}

// packageVerbs maps the package subcommands to the state they ask for.
var packageVerbs = []struct{ verb, state, usage string }{
	{"status", "", "the installed version (or absent) and the candidate, with hosts per version"},
	{"install", steps.StatePresent, "install NAME, or exactly NAME=VERSION (up- or downgrading); ok when it already holds"},
	{"update", steps.StateLatest, "update NAME to the candidate version"},
	{"remove", steps.StateAbsent, "remove NAME"},
}

func packageCommand(e *env) *cli.Command {
	var subs []*cli.Command
	for _, v := range packageVerbs {
		subs = append(subs, &cli.Command{
			Name:      v.verb,
			Usage:     v.usage,
			ArgsUsage: "NAME[=VERSION] [PATTERN]",
			Description: "The package manager (apt, dnf, yum, zypper, apk) comes from each host's package_manager fact\n" +
				"(cached, or gathered first). Each host's line is printed as it finishes, then a summary with\n" +
				"the hosts per version (before and after, for changes). Names and versions are checked before\n" +
				"anything connects. Exit status: 0 all ok or changed, 1 some host failed or was unreachable,\n" +
				"2 bad input, 4 interrupted.\n" + filterHelp,
			HideHelpCommand: true,
			OnUsageError:    usageError,
			Flags: hostFlags(append(batchFlags(),
				&cli.BoolFlag{Name: "update-cache", Usage: "refresh the package index first (apt-get update, …)"},
				&cli.DurationFlag{Name: "cache-valid-time", Usage: "with --update-cache: skip the refresh when the index is younger than `D`"},
			)...),
			Action: func(c *cli.Context) error { return packageAction(c, e, v.verb, v.state) },
		})
	}
	return groupCommand("package", "package status, install, update and remove, with a summary of versions across hosts",
		"status, install, update or remove", subs)
}

// pkgArg is a parsed NAME[=VERSION].
type pkgArg struct{ name, version string }

func (p pkgArg) String() string {
	if p.version != "" {
		return p.name + "=" + p.version
	}
	return p.name
}

// parsePkgArg splits NAME[=VERSION] and validates both, so nothing hostile ever
// reaches a connection.
func parsePkgArg(s, verb, state string) (pkgArg, error) {
	name, version, hasVersion := strings.Cut(s, "=")
	p := pkgArg{name: name, version: version}
	if err := steps.ValidatePackageName(name); err != nil {
		return p, err
	}
	if hasVersion && version == "" {
		return p, fmt.Errorf("%w: %q: empty version after =", steps.ErrInvalid, s)
	}
	if err := steps.ValidateVersion(version); err != nil {
		return p, err
	}
	if version != "" && state != steps.StatePresent {
		return p, fmt.Errorf("%w: package %s takes no version (only install NAME=VERSION does)", steps.ErrInvalid, verb)
	}
	return p, nil
}

// actionArgs splits an action's positionals: want leading arguments, then an
// optional PATTERN.
func actionArgs(o *options, args []string, want int, usage string) ([]string, string, error) {
	if len(args) < want {
		return nil, "", badInput(o.cmd, "missing %s", usage)
	}
	if len(args) > want+1 {
		return nil, "", badInput(o.cmd, "too many arguments %q: want %s (join patterns with , or :)", args, strings.TrimSpace(usage+" [PATTERN]"))
	}
	pattern := "all"
	if len(args) == want+1 {
		pattern = args[want]
	}
	return args[:want], pattern, nil
}

func packageAction(c *cli.Context, e *env, verb, state string) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	lead, pattern, err := actionArgs(o, c.Args().Slice(), 1, "NAME[=VERSION]")
	if err != nil {
		return err
	}
	pkg, err := parsePkgArg(lead[0], verb, state)
	if err != nil {
		return invalid(o.cmd, err)
	}
	if err := checkBatchFlags(c, o); err != nil {
		return err
	}
	if c.Duration("cache-valid-time") < 0 {
		return badInput(o.cmd, "--cache-valid-time must not be negative, got %s", c.Duration("cache-valid-time"))
	}
	act := steps.PackageAction{
		Name: pkg.name, Version: pkg.version, State: state,
		UpdateCache: c.Bool("update-cache"), CacheValidTime: c.Duration("cache-valid-time"),
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
		title: "package " + verb + " " + pkg.String(), needFacts: true,
		batch: c.String("batch"), sleep: c.Duration("batch-sleep"),
	}
	if state == "" {
		cmd.work = pkgStatusWork(pkg.name, opt)
		cmd.groups = []groupSpec{{"versions", statusVersion}}
	} else {
		cmd.work = pkgApplyWork(act, opt)
		cmd.changes = true
		cmd.groups = []groupSpec{{"before", stateVersion(func(r actionResult) map[string]string { return r.Before })},
			{"after", stateVersion(func(r actionResult) map[string]string { return r.After })}}
	}
	return cmd.execute(c, e, s, src)
}

// packageManager picks the host's backend from its package_manager fact.
func packageManager(f facts.Facts) (steps.PackageManager, error) {
	pm, err := factString(f, "package_manager")
	if err != nil {
		return nil, err
	}
	return steps.PackageManagerFor(pm)
}

func pkgStatusWork(name string, opt steps.Options) hostWork {
	return func(ctx context.Context, r transport.Runner, f facts.Facts, res *actionResult) {
		m, err := packageManager(f)
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
		res.Status, res.Package = statusOK, &st
		res.Detail = pkgVersion(st)
		if st.Candidate != "" && st.Candidate != st.Version {
			res.Detail += " (candidate " + st.Candidate + ")"
		}
	}
}

func pkgApplyWork(a steps.PackageAction, opt steps.Options) hostWork {
	return func(ctx context.Context, r transport.Runner, f facts.Facts, res *actionResult) {
		m, err := packageManager(f)
		if err != nil {
			setError(res, err)
			return
		}
		res.Backend = m.Name()
		out, _ := m.Apply(ctx, r, a, opt) // the error is out.Err
		fromStep(res, out)
	}
}

// pkgVersion is a status's version for lines and summaries: the version or "absent".
func pkgVersion(st steps.PkgStatus) string {
	if !st.Installed {
		return steps.StateAbsent
	}
	return st.Version
}

func statusVersion(r actionResult) (string, bool) {
	if r.Package == nil {
		return "", false
	}
	return pkgVersion(*r.Package), true
}

// stateVersion reads a package step's before or after state as a version or "absent".
func stateVersion(side func(actionResult) map[string]string) func(actionResult) (string, bool) {
	return func(r actionResult) (string, bool) {
		m := side(r)
		if m == nil {
			return "", false
		}
		if m["state"] == steps.StateAbsent || m["version"] == "" {
			return steps.StateAbsent, true
		}
		return m["version"], true
	}
}
