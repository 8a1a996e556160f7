package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/stages"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
	"github.com/hashicorp/hcl/v2"
	"github.com/urfave/cli/v2"
)

const planHelp = `The dry-run preview of a rollout; nothing is changed on any host. It shows how many inventory
hosts targets.hosts matched, which of them targets.where left out and why (the fact values it
looked at), the hosts whose facts could not be gathered (unreachable), then every stage with its
hosts, batches and gate, and the steps of one host in order with what each would run, their
when conditions evaluated: the first canary by default, --host H for another, -v for all.
Facts come from the fact cache when fresh (--fact-cache-ttl), else are gathered over SSH;
--cached never connects and uses cached facts of any age. --json prints the plan as data.
--live also asks every targeted host, in check mode, what its steps would change (package
installed vs wanted version, service state, puppet agent --noop; commands are never run) and
marks each step would change / no change; nothing on the hosts is changed.
A fact no host has, or a playbook error, is a diagnostic on stderr (exit 2). Exit status:
0 plan complete, 1 some hosts unreachable, a live check failed, or no host left to run on,
2 bad input.`

func planCommand(e *env) *cli.Command {
	flags := commonFlags()
	for _, f := range flags {
		if b, ok := f.(*cli.BoolFlag); ok && b.Name == "verbose" {
			b.Usage = "show the steps of every host (and log connection details on stderr)"
		}
	}
	flags = append(append(flags, factFlags()...), varFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "host", Usage: "show the steps of `HOST` (default: the first canary)"},
		&cli.BoolFlag{Name: "cached", Usage: "use only cached facts, of any age; never connect"},
		&cli.BoolFlag{Name: "live", Usage: "ask every target what its steps would change (check mode; changes nothing)"},
	)
	return &cli.Command{
		Name:            "plan",
		Usage:           "dry-run preview: targets, left-out hosts, stages, batches, gates and each host's steps",
		ArgsUsage:       "PLAYBOOK",
		Description:     planHelp,
		HideHelpCommand: true,
		OnUsageError:    usageError,
		Flags:           flags,
		Action:          func(c *cli.Context) error { return planAction(c, e) },
	}
}

func planAction(c *cli.Context, e *env) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	path, err := playbookArg(c)
	if err != nil {
		return err
	}
	dp := newDiagPrinter(e, o.noColor)
	p, files, diags := playbook.Load(path, varInputs(c, e))
	if err := dp.report(path, files, diags); err != nil || p == nil {
		return err
	}
	cached := c.Bool("cached")
	if cached && (c.Bool("refresh") || c.Bool("facter")) {
		return badInput(o.cmd, "--cached never gathers facts; it cannot go with --refresh or --facter")
	}
	live := c.Bool("live")
	if cached && live {
		return badInput(o.cmd, "--cached never connects; it cannot go with --live")
	}
	src, err := newFactSource(c, e, o)
	if err != nil {
		return err
	}
	src.facter = src.facter || p.Settings.Facter
	if cached && src.cache == nil {
		return badInput(o.cmd, "--cached: no state directory ($DROVER_STATE_DIR, $XDG_STATE_HOME or $HOME), so no fact cache")
	}

	pattern := strings.Join(p.Targets.Hosts, ",")
	inv, err := loadInventory(c.Context, o)
	if err != nil {
		return err
	}
	hosts, err := inv.Select(pattern)
	if err != nil {
		return &badInputError{Cmd: o.cmd, Err: fmt.Errorf("%s: targets.hosts: %w", path, err)}
	}
	if len(hosts) == 0 {
		return fmt.Errorf("no target hosts: targets.hosts %q matches no host in %s", p.Targets.Hosts, o.inventory)
	}
	ts, cfg, err := resolveTargets(o, hosts)
	if err != nil {
		return err
	}

	var got map[string]facts.Facts
	var failed []hostFailure
	var s *hostSession
	if cached {
		if got, err = cachedFacts(e, o, src.cache, ts); err != nil {
			return err
		}
	} else {
		s, err = openSessionFor(c, e, o, ts, cfg, src)
		if err != nil {
			return err
		}
		defer s.conn.Close()
		con := newConsole(e, o)
		con.startProgress(0, len(ts))
		got, failed = src.gatherAll(c.Context, s, ts, con.hostDone)
		con.endProgress()
		if c.Context.Err() != nil {
			return errInterrupted
		}
	}

	forks := 0
	if c.IsSet("forks") {
		forks = o.forks
	}
	in := planInput{
		p: p, files: files, targets: ts, facts: got, unreachable: failed, forks: forks,
		host: c.String("host"), allHosts: o.verbose, cached: cached, live: live, previewer: stepsPreviewer{},
	}
	doc, diags, err := buildPlan(in)
	if err != nil {
		return &badInputError{Cmd: o.cmd, Err: err}
	}
	if doc == nil { // the facts refute the playbook (unknown fact, bad where)
		return dp.report(path, files, diags)
	}
	if live && !diags.HasErrors() {
		checkLive(c.Context, s, p, ts, doc, o.timeout)
		if c.Context.Err() != nil {
			return errInterrupted
		}
	}
	pal := newPalette(useColor(e.stdoutTTY, e.getenv("NO_COLOR"), o.noColor))
	if o.json {
		// Not HTML-escaped: details read "1.0 -> 2.0", commands keep their && and <.
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		err = enc.Encode(doc)
	} else {
		err = renderPlan(e.stdout, pal, doc)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if err := dp.report(path, files, diags); err != nil {
		return err
	}
	switch {
	case doc.Targets == 0:
		return fmt.Errorf("%w", stages.ErrNoTargets)
	case len(doc.Unreachable) > 0 || (doc.Live != nil && len(doc.Live.Errors) > 0):
		e := &hostsFailedError{Unreachable: len(doc.Unreachable)}
		if doc.Live != nil {
			for _, h := range doc.Live.Hosts {
				switch h.Status {
				case statusUnreachable:
					e.Unreachable++
				case markError:
					e.Failed++
				}
			}
		}
		return e
	}
	return nil
}

// checkLive is --live: every planned host's steps in check mode, over the
// session's pool (the connection facts were gathered on, when there was one), at
// most the plan's forks hosts at once. The marks go into doc.Live and onto the
// previewed hosts' steps.
func checkLive(ctx context.Context, s *hostSession, p *playbook.Playbook, ts []target, doc *planDoc, timeout time.Duration) {
	byName := make(map[string]target, len(ts))
	for _, t := range ts {
		byName[t.host.Name] = t
	}
	dial := func(ctx context.Context, host string) (transport.Runner, error) {
		pc, err := s.dial(ctx, byName[host])
		if err != nil {
			return nil, err
		}
		return runnerOf{pc}, nil
	}
	become := s.become
	if become == nil && p.Settings.Become != nil && *p.Settings.Become {
		become = &transport.Become{}
	}
	opts := func(spec *playbook.StepSpec) steps.Options {
		// As the engine: the step's timeout, else settings.step_timeout, else --timeout.
		t := spec.Timeout
		if t == 0 {
			t = p.Settings.StepTimeout
		}
		if t == 0 {
			t = timeout
		}
		return steps.Options{Become: become, Timeout: t}
	}
	doc.Live = runLive(ctx, doc.jobs, doc.Settings.Forks, dial, opts, newRedactor(p.Secrets()))
	attachChecks(doc)
}

// attachChecks puts each previewed host's live marks on its steps.
func attachChecks(doc *planDoc) {
	byHost := map[string]liveHost{}
	for _, h := range doc.Live.Hosts {
		byHost[h.Host] = h
	}
	for i, hp := range doc.Previews {
		lh, ok := byHost[hp.Host]
		if !ok || len(lh.Steps) != len(hp.Steps) {
			continue
		}
		for k := range hp.Steps {
			c := lh.Steps[k]
			doc.Previews[i].Steps[k].Check = &c
		}
	}
}

// liveJobFor evaluates one host's steps for --live, as previewHost does.
func liveJobFor(in planInput, hd playbook.HostData, hf map[string]any, red redactor) (liveJob, error) {
	j := liveJob{host: hd.Name, facts: hf}
	if hd.Stage != nil {
		j.stage = hd.Stage.Name
	}
	ctx, err := in.p.HostContext(hd, hf)
	if err != nil {
		return j, err
	}
	for _, s := range in.p.Steps {
		spec, d := s.Evaluate(ctx)
		ls := liveStep{kind: s.Kind, name: s.Name}
		switch {
		case d.HasErrors():
			ls.err = red.s(firstError(d))
		case spec.Skip:
			ls.skip = red.s(whenReason(s.When, hf))
		default:
			ls.spec = spec
		}
		j.steps = append(j.steps, ls)
	}
	return j, nil
}

// cachedFacts is --cached: every target's facts from the cache, whatever their
// age. A host with none is an error naming it: a plan that silently dropped hosts
// would mislead the operator reading it before a rollout.
func cachedFacts(e *env, o *options, cache *facts.Cache, ts []target) (map[string]facts.Facts, error) {
	got := make(map[string]facts.Facts, len(ts))
	var missing, stale []string
	for _, t := range ts {
		f, _, fresh, err := cache.Load(t.host.Name)
		if err != nil {
			return nil, fmt.Errorf("--cached: %w", err)
		}
		switch {
		case f == nil:
			missing = append(missing, t.host.Name)
			continue
		case !fresh:
			stale = append(stale, t.host.Name)
		}
		got[t.host.Name] = f
	}
	if len(missing) > 0 {
		return nil, badInput(o.cmd, "--cached: no cached facts for %d of %s: %s (gather them with `drover facts` or run plan without --cached)",
			len(missing), plural(len(ts), "target host"), strings.Join(missing, ", "))
	}
	if len(stale) > 0 {
		fmt.Fprintf(e.stderr, "drover: warning: --cached: facts of %s are older than --fact-cache-ttl: %s\n",
			plural(len(stale), "host"), strings.Join(stale, ", "))
	}
	return got, nil
}

// planInput is everything buildPlan needs; it does no I/O.
type planInput struct {
	p           *playbook.Playbook
	files       *playbook.Files
	targets     []target // inventory hosts targets.hosts matched, inventory order
	facts       map[string]facts.Facts
	unreachable []hostFailure
	forks       int    // --forks when given, else 0
	host        string // --host
	allHosts    bool   // -v
	cached      bool
	live        bool // evaluate every planned host's steps for --live
	previewer   commandPreviewer
}

// buildPlan evaluates the playbook over the targets' facts. When the facts show
// the playbook wrong (a fact no host has, a where that fails on a host), it returns
// no plan and the diagnostics. Diagnostics from evaluating the previewed hosts'
// steps come back with the plan. An error is bad input (--host, spread_by).
func buildPlan(in planInput) (*planDoc, hcl.Diagnostics, error) {
	p := in.p
	red := newRedactor(p.Secrets())
	if len(in.facts) > 0 {
		all := make([]map[string]any, 0, len(in.facts))
		for _, t := range in.targets {
			if f, ok := in.facts[t.host.Name]; ok {
				all = append(all, f)
			}
		}
		if diags := p.CheckFactRefs(playbook.KnownFacts(all)); diags.HasErrors() {
			return nil, diags, nil
		}
	}

	doc := &planDoc{
		Playbook: p.Name, Description: p.Description, File: p.File,
		Hosts: p.Targets.Hosts, Matched: len(in.targets),
		FactSource: "cache or gathered", Settings: settingsOf(p, in.forks),
		LeftOut: []leftOutHost{}, Unreachable: []unreachableHost{}, Stages: []planStage{}, Previews: []hostPreview{},
	}
	if in.cached {
		doc.FactSource = "cache"
	}
	if p.Targets.Where != nil {
		doc.Where = sourceText(in.files, p.Targets.Where.Range())
	}
	down := map[string]error{}
	for _, f := range in.unreachable {
		down[f.t.host.Name] = f.err
	}
	var (
		diags  hcl.Diagnostics
		chosen []stages.Target
		byName = map[string]target{}
	)
	for _, t := range in.targets {
		name := t.host.Name
		byName[name] = t
		if err, ok := down[name]; ok {
			doc.Unreachable = append(doc.Unreachable, unreachableHost{Host: name, Error: red.s(err.Error())})
			continue
		}
		hf := in.facts[name]
		hd := hostData(t)
		ctx, err := p.HostContext(hd, hf)
		if err != nil {
			return nil, nil, err
		}
		ok, _, d := p.Matches(ctx)
		if d.HasErrors() {
			diags = append(diags, onHost(d, name)...)
			continue
		}
		if !ok {
			doc.LeftOut = append(doc.LeftOut, leftOutHost{Host: name, Facts: red.facts(factValues(p.Targets.Where, hf))})
			continue
		}
		chosen = append(chosen, stages.Target{Name: name, Host: hd, Facts: hf})
	}
	if diags.HasErrors() {
		return nil, dedupe(diags), nil
	}
	doc.Targets = len(chosen)
	if len(chosen) == 0 {
		if in.host != "" {
			return nil, nil, fmt.Errorf("--host %s: no host is left to run on", in.host)
		}
		return doc, nil, nil
	}
	plan, err := stages.PlanStagesForks(p, chosen, in.forks)
	if err != nil {
		return nil, nil, fmt.Errorf("planning stages: %w", err)
	}
	stageOf := map[string]playbook.StageRef{}
	for i, st := range plan.Stages {
		ref := playbook.StageRef{Name: st.Name, Kind: st.Kind, Index: i}
		ps := planStage{
			Name: st.Name, Kind: string(st.Kind), Hosts: st.Hosts, Batches: st.Batches,
			Parallel: st.Parallel, MaxFailed: st.MaxFailed, Domains: st.Domains,
		}
		if ps.Hosts == nil {
			ps.Hosts, ps.Batches = []string{}, [][]string{}
		}
		if st.Pause > 0 {
			ps.Pause = fmtDuration(st.Pause)
		}
		if i < len(p.Stages) && p.Stages[i].SpreadBy != nil && st.Kind == playbook.KindCanary {
			ps.SpreadBy = sourceText(in.files, p.Stages[i].SpreadBy.Range())
		}
		if st.Gate != nil {
			g, d := gateOf(p, st.Gate, ref, red)
			ps.Gate = g
			diags = append(diags, d...)
		}
		for _, h := range st.Hosts {
			stageOf[h] = ref
		}
		doc.Stages = append(doc.Stages, ps)
	}

	show, err := previewHosts(in, plan, doc)
	if err != nil {
		return nil, nil, err
	}
	factsOf := map[string]map[string]any{}
	for _, t := range chosen {
		factsOf[t.Name] = t.Facts
	}
	for _, name := range show {
		ref := stageOf[name]
		hd := hostData(byName[name])
		hd.Stage = &ref
		hp, d, err := previewHost(in, hd, factsOf[name], red)
		if err != nil {
			return nil, nil, err
		}
		hp.Stage = ref.Name
		doc.Previews = append(doc.Previews, hp)
		diags = append(diags, onHost(d, name)...)
	}
	if in.live {
		for _, st := range plan.Stages {
			for _, name := range st.Hosts {
				ref := stageOf[name]
				hd := hostData(byName[name])
				hd.Stage = &ref
				j, err := liveJobFor(in, hd, factsOf[name], red)
				if err != nil {
					return nil, nil, err
				}
				doc.jobs = append(doc.jobs, j)
			}
		}
	}
	for _, s := range p.Rollback {
		doc.Rollback = append(doc.Rollback, s.Kind+" "+s.Name)
	}
	return doc, dedupe(diags), nil
}

// previewHosts picks whose steps to show: --host, all with -v, else the first
// host of the first stage (the canary).
func previewHosts(in planInput, plan *stages.Plan, doc *planDoc) ([]string, error) {
	var order []string
	for _, st := range plan.Stages {
		order = append(order, st.Hosts...)
	}
	switch {
	case in.host != "":
		if slices.Contains(order, in.host) {
			return []string{in.host}, nil
		}
		for _, l := range doc.LeftOut {
			if l.Host == in.host {
				return nil, fmt.Errorf("--host %s: left out by targets.where", in.host)
			}
		}
		for _, u := range doc.Unreachable {
			if u.Host == in.host {
				return nil, fmt.Errorf("--host %s: unreachable, its facts could not be gathered: %s", in.host, u.Error)
			}
		}
		return nil, fmt.Errorf("--host %s: not a target of this playbook (targets.hosts %q)", in.host, in.p.Targets.Hosts)
	case in.allHosts:
		return order, nil
	}
	return order[:1], nil
}

// previewHost evaluates before, steps, health and after for one host.
func previewHost(in planInput, hd playbook.HostData, hf map[string]any, red redactor) (hostPreview, hcl.Diagnostics, error) {
	hp := hostPreview{Host: hd.Name, Address: hd.Address}
	ctx, err := in.p.HostContext(hd, hf)
	if err != nil {
		return hp, nil, err
	}
	var diags hcl.Diagnostics
	checks := func(list []*playbook.Check) []actionPreview {
		out := []actionPreview{}
		for _, c := range list {
			spec, d := c.Evaluate(ctx)
			ap := actionPreview{Kind: c.Kind, Name: c.Name}
			switch {
			case d.HasErrors():
				ap.Error = red.s(firstError(d))
				diags = append(diags, d...)
			case spec.Skip:
				ap.Skipped, ap.Reason = true, red.s(whenReason(c.When, hf))
			default:
				ap.Commands = []string{red.s(checkLine(spec))}
			}
			out = append(out, ap)
		}
		return out
	}
	hp.Before = checks(in.p.Before)
	hp.Steps = []actionPreview{}
	for _, s := range in.p.Steps {
		spec, d := s.Evaluate(ctx)
		ap := actionPreview{Kind: s.Kind, Name: s.Name}
		switch {
		case d.HasErrors():
			ap.Error = red.s(firstError(d))
			diags = append(diags, d...)
		case spec.Skip:
			ap.Skipped, ap.Reason = true, red.s(whenReason(s.When, hf))
		default:
			cmds, err := in.previewer.Commands(spec, hf)
			if err != nil {
				ap.Error = red.s(err.Error())
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Step cannot run",
					Detail: err.Error(), Subject: s.DeclRange.Ptr()})
				break
			}
			for _, c := range cmds {
				ap.Commands = append(ap.Commands, red.s(c))
			}
			if spec.Timeout > 0 {
				ap.Timeout = fmtDuration(spec.Timeout)
			}
		}
		hp.Steps = append(hp.Steps, ap)
	}
	hp.Health = checks(in.p.Health)
	hp.After = checks(in.p.After)
	return hp, diags, nil
}

// gateOf describes a stage's gate; its checks run on the controller, so they are
// evaluated in the stage's context.
func gateOf(p *playbook.Playbook, g *playbook.Gate, ref playbook.StageRef, red redactor) (*planGate, hcl.Diagnostics) {
	pg := &planGate{
		Timeout: fmtDuration(playbook.DefaultGateTimeout), Interval: fmtDuration(playbook.DefaultGateInterval),
		Confirm: g.Confirm, Checks: []actionPreview{},
	}
	if g.Wait > 0 {
		pg.Wait = fmtDuration(g.Wait)
	}
	if g.Timeout > 0 {
		pg.Timeout = fmtDuration(g.Timeout)
	}
	if g.Interval > 0 {
		pg.Interval = fmtDuration(g.Interval)
	}
	var diags hcl.Diagnostics
	ctx := p.StageContext(ref)
	for _, c := range g.Checks {
		ap := actionPreview{Kind: c.Kind, Name: c.Name}
		spec, d := c.Evaluate(ctx)
		if d.HasErrors() {
			ap.Error = red.s(firstError(d))
			diags = append(diags, d...)
		} else {
			ap.Commands = []string{red.s(checkLine(spec))}
		}
		pg.Checks = append(pg.Checks, ap)
	}
	return pg, diags
}

func hostData(t target) playbook.HostData {
	addr := t.host.Address
	if t.ep != nil && t.ep.HostName != "" {
		addr = t.ep.HostName
	}
	return playbook.HostData{Name: t.host.Name, Address: addr, Groups: t.host.Groups, Vars: t.host.Vars}
}

func settingsOf(p *playbook.Playbook, forks int) planSettings {
	s := planSettings{Forks: forks}
	ps := p.Settings
	if s.Forks == 0 {
		s.Forks = playbook.DefaultForks
		if ps.Forks > 0 {
			s.Forks = ps.Forks
		}
	}
	s.Become = ps.Become != nil && *ps.Become
	s.Lock = ps.Lock != nil && *ps.Lock
	if ps.StepTimeout > 0 {
		s.StepTimeout = fmtDuration(ps.StepTimeout)
	}
	if w := ps.Window; w != nil {
		days := "every day"
		if len(w.Days) > 0 {
			days = strings.Join(w.Days, ",")
		}
		tz := w.Timezone
		if tz == "" {
			tz = "UTC"
		}
		s.Window = fmt.Sprintf("%s %s-%s %s", days, w.Start, w.End, tz)
	}
	return s
}

// factValues are the facts an expression refers to, with the host's values: why
// a where or when came out false there.
func factValues(e hcl.Expression, hf map[string]any) []factValue {
	if e == nil {
		return nil
	}
	out := []factValue{}
	seen := map[string]bool{}
	for _, t := range e.Variables() {
		if t.RootName() != "facts" {
			continue
		}
		var path []string
	steps:
		for _, step := range t[1:] {
			switch s := step.(type) {
			case hcl.TraverseAttr:
				path = append(path, s.Name)
			case hcl.TraverseIndex:
				if !s.Key.IsKnown() || s.Key.IsNull() {
					break steps
				}
				switch s.Key.Type().FriendlyName() {
				case "string":
					path = append(path, s.Key.AsString())
				case "number":
					path = append(path, s.Key.AsBigFloat().Text('f', -1))
				default:
					break steps
				}
			default:
				break steps
			}
		}
		key := strings.Join(path, ".")
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		v, ok := facts.Facts(hf).Get(key)
		out = append(out, factValue{Fact: "facts." + key, Value: v, Set: ok})
	}
	return out
}

// whenReason says why a step or check is skipped on a host.
func whenReason(when hcl.Expression, hf map[string]any) string {
	vals := factValues(when, hf)
	if len(vals) == 0 {
		return "when is false"
	}
	return "when is false: " + factValuesText(vals)
}

func factValuesText(vals []factValue) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		if !v.Set {
			parts[i] = v.Fact + " is not set"
		} else {
			parts[i] = v.Fact + " = " + jsonText(v.Value)
		}
	}
	return strings.Join(parts, ", ")
}

// sourceText is the playbook source of rng, e.g. a where expression as written.
func sourceText(files *playbook.Files, rng hcl.Range) string {
	f := files.Map()[rng.Filename]
	if f == nil || rng.Start.Byte < 0 || rng.End.Byte > len(f.Bytes) || rng.Start.Byte > rng.End.Byte {
		return ""
	}
	return string(f.Bytes[rng.Start.Byte:rng.End.Byte])
}

// onHost notes the host in each diagnostic's detail: the same line can fail on
// one host and not another.
func onHost(diags hcl.Diagnostics, host string) hcl.Diagnostics {
	out := make(hcl.Diagnostics, 0, len(diags))
	for _, d := range diags {
		c := *d
		c.Detail = strings.TrimSpace(c.Detail + " (on host " + host + ")")
		out = append(out, &c)
	}
	return out
}

// dedupe keeps the first of diagnostics with the same position and summary, so a
// where failing on 500 hosts is one message.
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	seen := map[string]bool{}
	var out hcl.Diagnostics
	for _, d := range diags {
		k := d.Summary
		if d.Subject != nil {
			k = fmt.Sprintf("%s:%d:%d %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Summary)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

func firstError(d hcl.Diagnostics) string {
	if errs := d.Errs(); len(errs) > 0 {
		var diag *hcl.Diagnostic
		if errors.As(errs[0], &diag) {
			return strings.TrimSpace(diag.Summary + ": " + diag.Detail)
		}
		return errs[0].Error()
	}
	return ""
}

// redactor replaces the playbook's sensitive values in everything plan prints
// that came from evaluating expressions.
type redactor struct{ secrets []string }

func newRedactor(secrets []string) redactor {
	s := slices.Clone(secrets)
	// Longest first, so a secret containing another is replaced whole.
	slices.SortFunc(s, func(a, b string) int { return len(b) - len(a) })
	return redactor{secrets: s}
}

const redacted = "(sensitive)"

func (r redactor) s(text string) string {
	for _, sec := range r.secrets {
		text = strings.ReplaceAll(text, sec, redacted)
	}
	return text
}

func (r redactor) facts(vals []factValue) []factValue {
	for i, v := range vals {
		if s, ok := v.Value.(string); ok {
			vals[i].Value = r.s(s)
		}
	}
	return vals
}
