package stages

// One host's work: connect, before actions, steps, health checks, after
// actions, and rollback when it failed. Also the default StepExecutor.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"al.essio.dev/pkg/shellescape"
	"github.com/hashicorp/hcl/v2"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/report"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

// StepExecutor carries out one evaluated step on one host.
type StepExecutor interface {
	// Supports says whether steps of kind can run (checked before anything runs).
	Supports(kind string) error
	// Exec runs spec over r. hostFacts pick the backends. The Result is never
	// nil; Status failed comes with Err.
	Exec(ctx context.Context, r transport.Runner, spec *playbook.StepSpec, hostFacts map[string]any, o steps.Options) *steps.Result
}

// ErrUnsupportedStep: the engine cannot run this step kind yet.
var ErrUnsupportedStep = errors.New("step kind not supported by the engine yet")

// DefaultSteps runs package, service, puppet, patch and reboot steps with the
// steps package, and command and upload steps itself.
type DefaultSteps struct{}

// Supports accepts every step kind of SPEC §4.
func (DefaultSteps) Supports(kind string) error {
	switch kind {
	case "package", "service", "puppet", "command", "upload", "patch", "reboot":
		return nil
	}
	return fmt.Errorf("%s: %w", kind, ErrUnsupportedStep)
}

// Exec dispatches on the step's kind.
func (DefaultSteps) Exec(ctx context.Context, r transport.Runner, spec *playbook.StepSpec, hostFacts map[string]any, o steps.Options) *steps.Result {
	var res *steps.Result
	switch {
	case spec.Package != nil:
		pm, err := steps.PackageManagerFor(factString(hostFacts, "package_manager"))
		if err != nil {
			return failed(err)
		}
		p := spec.Package
		res, _ = pm.Apply(ctx, r, steps.PackageAction{Name: p.Name, Version: p.Version, State: p.State}, o)
	case spec.Service != nil:
		sm, err := steps.ServiceManagerFor(factString(hostFacts, "init_system"))
		if err != nil {
			return failed(err)
		}
		s := spec.Service
		res, _ = sm.Apply(ctx, r, steps.ServiceAction{Name: s.Name, State: s.State, Enabled: s.Enabled}, o)
	case spec.Puppet != nil:
		res = puppetStep(ctx, r, spec.Puppet, o)
	case spec.Command != nil:
		res = commandStep(ctx, r, spec.Command, o)
	case spec.Upload != nil:
		res = uploadStep(ctx, r, spec.Upload, o)
	case spec.Patch != nil:
		p := spec.Patch
		res, _ = steps.Patch(ctx, r, factString(hostFacts, "package_manager"),
			steps.PatchAction{Mode: p.Mode, SecurityOnly: p.SecurityOnly, Exclude: p.Exclude}, o)
	case spec.Reboot != nil:
		// The same r serves the host's later steps and checks: the transport
		// redials once the reboot has ended the old connection.
		res, _ = steps.Reboot(ctx, r, steps.RebootAction{Force: spec.Reboot.Force, Timeout: spec.Timeout}, o)
	default:
		return failed(fmt.Errorf("%s: %w", spec.Kind, ErrUnsupportedStep))
	}
	if res == nil {
		return failed(errors.New("step returned no result"))
	}
	return res
}

func failed(err error) *steps.Result {
	return &steps.Result{Status: steps.StatusFailed, Detail: err.Error(), Err: err}
}

func factString(f map[string]any, path string) string {
	if v, ok := facts.Facts(f).Get(path); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return ""
}

func puppetStep(ctx context.Context, r transport.Runner, p *playbook.PuppetSpec, o steps.Options) *steps.Result {
	var pp steps.Puppet
	var res *steps.Result
	switch p.Action {
	case "enable":
		res, _ = pp.Enable(ctx, r, o)
	case "disable":
		res, _ = pp.Disable(ctx, r, p.Reason, o)
	default:
		run := steps.PuppetRun{Noop: p.Noop, Tags: p.Tags, Environment: p.Environment}
		if p.Manifest == "" {
			res, _ = pp.Run(ctx, r, run, o)
			break
		}
		f, err := os.Open(p.Manifest)
		if err != nil {
			return failed(fmt.Errorf("puppet apply: %w", err))
		}
		defer f.Close()
		res, _ = pp.Apply(ctx, r, f, run, o)
	}
	return res
}

// commandStep runs a shell line on the host; like Ansible's command it reports
// changed when it ran, and skipped when `creates` already exists.
func commandStep(ctx context.Context, r transport.Runner, c *playbook.CommandSpec, o steps.Options) *steps.Result {
	if c.Creates != "" {
		out, err := r.Run(ctx, &transport.Command{Cmd: "test -e " + shellescape.Quote(c.Creates), Become: o.Become, Timeout: o.Timeout})
		if err != nil {
			return failed(fmt.Errorf("command: check creates: %w", err))
		}
		if out.ExitCode == 0 {
			return &steps.Result{Status: steps.StatusSkipped, Detail: c.Creates + " exists"}
		}
	}
	out, err := r.Run(ctx, &transport.Command{Cmd: c.Run, Become: o.Become, Timeout: o.Timeout})
	if err != nil {
		return failed(fmt.Errorf("command: %w", err))
	}
	res := &steps.Result{Status: steps.StatusChanged, Detail: "exit 0", Stdout: string(out.Stdout), Stderr: string(out.Stderr), Commands: []string{c.Run}}
	if out.ExitCode != 0 {
		err := fmt.Errorf("exit %d%s", out.ExitCode, outputTail(out))
		res.Status, res.Detail, res.Err = steps.StatusFailed, err.Error(), err
	}
	return res
}

// outputTail is the last lines of stderr (else stdout) for a failure detail.
func outputTail(out *transport.Result) string {
	b := out.Stderr
	if len(bytes.TrimSpace(b)) == 0 {
		b = out.Stdout
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	s = strings.Join(lines, "; ")
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return ": " + s
}

// uploadStep writes the file unless the host already has the same content,
// mode and owner.
func uploadStep(ctx context.Context, r transport.Runner, u *playbook.UploadSpec, o steps.Options) *steps.Result {
	data := []byte(u.Content)
	if !u.HasContent {
		var err error
		if data, err = os.ReadFile(u.Source); err != nil {
			return failed(fmt.Errorf("upload: %w", err))
		}
	}
	mode := u.Mode
	if mode == 0 {
		mode = 0o644
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	if err := transport.CheckUploadPath(u.Destination); err != nil {
		return failed(fmt.Errorf("upload: %w", err))
	}
	dst := shellescape.Quote(u.Destination)
	// Only a regular file counts as "already there": a symlink at dst is never
	// followed (the upload replaces it), so its target's content is not compared.
	out, err := r.Run(ctx, &transport.Command{Become: o.Become, Timeout: o.Timeout,
		Cmd: "if [ -f " + dst + " ] && [ ! -L " + dst + " ]; then sha256sum -- " + dst + " 2>/dev/null | cut -c1-64; stat -c '%a %U' -- " + dst + " 2>/dev/null; fi"})
	if err != nil {
		return failed(fmt.Errorf("upload %s: %w", u.Destination, err))
	}
	lines := strings.Fields(string(out.Stdout))
	have := map[string]string{}
	if len(lines) == 3 {
		have = map[string]string{"sha256": lines[0], "mode": lines[1], "owner": lines[2]}
	}
	res := &steps.Result{Before: have, After: map[string]string{"sha256": want, "mode": strconv.FormatUint(uint64(mode.Perm()), 8)}}
	if have["sha256"] == want && have["mode"] == res.After["mode"] && (u.Owner == "" || have["owner"] == u.Owner) {
		res.Status, res.Detail, res.After = steps.StatusOK, "unchanged", have
		return res
	}
	if err := r.Upload(ctx, bytes.NewReader(data), u.Destination, fs.FileMode(mode), o.Become); err != nil {
		return failed(fmt.Errorf("upload %s: %w", u.Destination, err))
	}
	if u.Owner != "" {
		out, err := r.Run(ctx, &transport.Command{Cmd: "chown -h -- " + shellescape.Quote(u.Owner) + " " + dst, Become: o.Become, Timeout: o.Timeout})
		if err != nil {
			return failed(fmt.Errorf("upload %s: chown: %w", u.Destination, err))
		}
		if out.ExitCode != 0 {
			return failed(fmt.Errorf("upload %s: chown exit %d%s", u.Destination, out.ExitCode, outputTail(out)))
		}
	}
	res.Status, res.Detail = steps.StatusChanged, fmt.Sprintf("%d bytes", len(data))
	return res
}

// hostRun is one host's work in one stage.
type hostRun struct {
	r     *run
	sr    *stageRun
	rep   *report.Host
	conn  transport.Runner
	data  playbook.HostData
	facts map[string]any
	prior map[string]any // what steps found before changing the host
}

// stepName is how a step or check is named in reports: "package demo-web",
// or the kind alone for unnamed blocks.
func stepName(kind, name string) string {
	if name == "" || name == kind {
		return kind
	}
	return kind + " " + name
}

func diagText(d hcl.Diagnostics) string {
	var parts []string
	for _, x := range d {
		if x.Severity == hcl.DiagError {
			parts = append(parts, x.Error())
		}
	}
	return strings.Join(parts, "; ")
}

// runHost does one host's work; the outcome is left in h. stopped: the
// rollout stopped the host before it finished (or began), not a failure of its own.
func (r *run) runHost(sr *stageRun, h *report.Host) (stopped bool) {
	if r.stopping() {
		return true
	}
	t := r.e.Targets[h.Name]
	hd := t.Host
	if hd.Name == "" {
		hd.Name = h.Name
	}
	hd.Stage = &playbook.StageRef{Name: sr.ps.Name, Kind: sr.ps.Kind, Index: sr.idx}
	hr := &hostRun{r: r, sr: sr, rep: h, data: hd, facts: t.Facts, prior: map[string]any{}}
	h.Started = report.At(r.now())
	r.emit(report.Event{Type: report.HostStart, Stage: sr.ps.Name, Host: h.Name})
	defer func() {
		h.Finished = report.At(r.now())
		r.emit(report.Event{Type: report.HostFinish, Stage: sr.ps.Name, Host: h.Name, Status: h.Status, Detail: h.Error})
	}()

	conn, err := r.e.Conn.Connect(r.ctx, h.Name)
	if err != nil {
		switch {
		case r.ctx.Err() != nil:
			h.Status, h.Started, h.Error = report.HostSkipped, report.Time{}, "not started: interrupted while connecting"
			return true
		case errors.Is(err, transport.ErrUnreachable):
			h.Status, h.Error = report.HostUnreachable, err.Error()
		default:
			h.Status, h.Error = report.HostFailed, "connect: "+err.Error()
		}
		return false
	}
	hr.conn = conn
	phase, err := hr.work()
	switch {
	case err == nil:
		h.Status = report.HostOK
		for _, s := range h.Steps {
			if s.Status == string(steps.StatusChanged) {
				h.Status = report.HostChanged
			}
		}
		return false
	case errors.Is(err, errStopped) && len(h.Steps) == 0:
		// Stopped before it did anything: as if never started.
		h.Status, h.Started, h.Error = report.HostSkipped, report.Time{}, ""
		return true
	case errors.Is(err, transport.ErrUnreachable):
		h.Status, h.Error = report.HostUnreachable, err.Error()
		return false // nothing to roll back over
	}
	h.Status, h.Error = report.HostFailed, err.Error()
	if errors.Is(err, errStopped) {
		return true // left as it was, for --resume
	}
	if (phase == report.PhaseSteps || phase == report.PhaseHealth) && len(r.e.Playbook.Rollback) > 0 && !r.e.NoRollback {
		if rbErr := hr.rollback(); rbErr != nil {
			h.Error += "; rollback failed: " + rbErr.Error()
		} else {
			h.Status = report.HostRolledBack
		}
	}
	return false
}

// errStopped: the host stopped between steps because the rollout is halting
// or was interrupted.
var errStopped = errors.New("stopped")

// work runs the phases; on failure it returns the phase that failed.
func (hr *hostRun) work() (string, error) {
	p := hr.r.e.Playbook
	if err := hr.checks(report.PhaseBefore, p.Before); err != nil {
		return report.PhaseBefore, err
	}
	for _, s := range p.Steps {
		if err := hr.stopCheck(); err != nil {
			return report.PhaseSteps, err
		}
		if err := hr.step(report.PhaseSteps, s); err != nil {
			return report.PhaseSteps, err
		}
	}
	if err := hr.checks(report.PhaseHealth, p.Health); err != nil {
		return report.PhaseHealth, err
	}
	if err := hr.checks(report.PhaseAfter, p.After); err != nil {
		return report.PhaseAfter, err
	}
	return "", nil
}

func (hr *hostRun) stopCheck() error {
	if !hr.r.stopping() {
		return nil
	}
	return fmt.Errorf("%w: %s", errStopped, hr.r.stopReason())
}

// evalContext is the host's expression context with prior as recorded so far.
func (hr *hostRun) evalContext() (*hcl.EvalContext, error) {
	hd := hr.data
	hd.Prior = hr.prior
	return hr.r.e.Playbook.HostContext(hd, hr.facts)
}

// record appends a finished step to the report and emits its event.
func (hr *hostRun) record(phase, name, status, detail string, started time.Time) {
	full := name
	if phase != report.PhaseSteps {
		full = phase + ": " + name
	}
	d := hr.r.now().Sub(started)
	hr.rep.Steps = append(hr.rep.Steps, report.Step{Name: full, Status: status, Detail: detail, DurationMS: d.Milliseconds()})
	hr.r.emit(report.Event{Type: report.StepFinish, Stage: hr.sr.ps.Name, Host: hr.rep.Name, Phase: phase,
		Step: name, Status: status, Detail: detail, DurationMS: d.Milliseconds()})
}

// step evaluates and runs one step (of steps or rollback).
func (hr *hostRun) step(phase string, s *playbook.Step) error {
	r := hr.r
	name := stepName(s.Kind, s.Name)
	started := r.now()
	r.emit(report.Event{Type: report.StepStart, Stage: hr.sr.ps.Name, Host: hr.rep.Name, Phase: phase, Step: name})
	ctx, err := hr.evalContext()
	if err != nil {
		hr.record(phase, name, string(steps.StatusFailed), err.Error(), started)
		return fmt.Errorf("%s: %w", name, err)
	}
	spec, diags := s.Evaluate(ctx)
	if diags.HasErrors() {
		msg := diagText(diags)
		hr.record(phase, name, string(steps.StatusFailed), msg, started)
		return fmt.Errorf("%s: %s", name, msg)
	}
	if spec.Skip {
		hr.record(phase, name, string(steps.StatusSkipped), "when is false", started)
		return nil
	}
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = r.e.StepTimeout
	}
	sctx := r.work
	if timeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(sctx, timeout)
		defer cancel()
	}
	res := r.steps.Exec(sctx, hr.conn, spec, hr.facts, steps.Options{Become: r.e.Become, Timeout: timeout})
	if phase == report.PhaseSteps {
		hr.remember(spec, res)
	}
	detail := res.Detail
	if res.Status == steps.StatusFailed && detail == "" && res.Err != nil {
		detail = res.Err.Error()
	}
	hr.record(phase, name, string(res.Status), detail, started)
	if res.Status == steps.StatusFailed {
		err := res.Err
		if err == nil {
			err = errors.New(detail)
		}
		if strings.HasPrefix(err.Error(), name+":") {
			return err // the steps package already names the step (package demo-web: …)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// checks runs before/health/after checks in order; the first failure fails the host.
// Health commands run on the host; before/after commands are the controller's
// business (a load balancer, a monitoring silence) and run there, with the host
// in DROVER_HOST and DROVER_HOST_ADDRESS.
func (hr *hostRun) checks(phase string, list []*playbook.Check) error {
	host, pctx := hr.conn, hr.r.work
	if phase != report.PhaseHealth {
		host, pctx = nil, withLocalEnv(pctx, hostEnv(hr.data, hr.sr.ps.Name))
	}
	for _, c := range list {
		if err := hr.stopCheck(); err != nil {
			return err
		}
		r := hr.r
		name := stepName(c.Kind, c.Name)
		started := r.now()
		r.emit(report.Event{Type: report.StepStart, Stage: hr.sr.ps.Name, Host: hr.rep.Name, Phase: phase, Step: name})
		ctx, err := hr.evalContext()
		if err != nil {
			hr.record(phase, name, string(steps.StatusFailed), err.Error(), started)
			return fmt.Errorf("%s %s: %w", phase, name, err)
		}
		spec, diags := c.Evaluate(ctx)
		if diags.HasErrors() {
			msg := diagText(diags)
			hr.record(phase, name, string(steps.StatusFailed), msg, started)
			return fmt.Errorf("%s %s: %s", phase, name, msg)
		}
		if spec.Skip {
			hr.record(phase, name, string(steps.StatusSkipped), "when is false", started)
			continue
		}
		ok, detail := r.probeRetry(pctx, spec, host)
		if !ok {
			hr.record(phase, name, string(steps.StatusFailed), detail, started)
			return fmt.Errorf("%s %s: %s", phase, name, detail)
		}
		hr.record(phase, name, string(steps.StatusOK), detail, started)
	}
	return nil
}

// DefaultCheckInterval is the wait between attempts of a per-host check
// without `interval`.
const DefaultCheckInterval = time.Second

// probeRetry makes 1 + retries attempts, interval apart.
func (r *run) probeRetry(ctx context.Context, spec *playbook.CheckSpec, host transport.Runner) (bool, string) {
	interval := spec.Interval
	if interval == 0 {
		interval = DefaultCheckInterval
	}
	var detail string
	for attempt := 0; attempt <= spec.Retries; attempt++ {
		if attempt > 0 {
			if err := r.sleep(ctx, interval); err != nil {
				return false, detail + " (" + err.Error() + ")"
			}
		}
		var ok bool
		if ok, detail = r.probe(ctx, spec, host); ok {
			if attempt > 0 {
				detail += fmt.Sprintf(" (attempt %d)", attempt+1)
			}
			return true, detail
		}
	}
	if spec.Retries > 0 {
		detail += fmt.Sprintf(" (after %d attempts)", spec.Retries+1)
	}
	return false, detail
}
