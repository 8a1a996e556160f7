package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"al.essio.dev/pkg/shellescape"
	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

// commandPreviewer turns one step, evaluated for one host, into the lines `plan`
// shows for it: the commands the step would run there. hostFacts pick the backend
// (package_manager, init_system). An error (an invalid name, an unsupported
// backend) is shown on the step and makes the plan fail.
type commandPreviewer interface {
	Commands(spec *playbook.StepSpec, hostFacts map[string]any) ([]string, error)
}

// stepsPreviewer prints the exact command lines the steps package runs for a
// step, shell-quoted as they go over the wire, with the backend the host's facts
// name. It mirrors stages.DefaultSteps' mapping from StepSpec to steps actions.
type stepsPreviewer struct{}

// specPreviewer is the name run.go still uses for the previewer; it is the real
// one now.
type specPreviewer = stepsPreviewer

func (stepsPreviewer) Commands(s *playbook.StepSpec, hostFacts map[string]any) ([]string, error) {
	switch {
	case s.Package != nil:
		pm, err := steps.PackageManagerFor(planFact(hostFacts, "package_manager"))
		if err != nil {
			return nil, fmt.Errorf("package %s: %w", s.Package.Name, err)
		}
		return pm.Commands(planPackageAction(s.Package))
	case s.Service != nil:
		sm, err := steps.ServiceManagerFor(planFact(hostFacts, "init_system"))
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Service.Name, err)
		}
		return sm.Commands(planServiceAction(s.Service))
	case s.Puppet != nil:
		return puppetCommands(s.Puppet)
	case s.Command != nil:
		if s.Command.Creates != "" {
			// The engine tests for creates first and runs the line only when it is missing.
			return []string{"test -e " + shellescape.Quote(s.Command.Creates) + "   (skipped when this succeeds)", s.Command.Run}, nil
		}
		return []string{s.Command.Run}, nil
	case s.Upload != nil:
		u := s.Upload
		src := u.Source
		if u.HasContent {
			src = strconv.Itoa(len(u.Content)) + " bytes of inline content"
		}
		line := fmt.Sprintf("upload %s -> %s (mode %04o", src, shellescape.Quote(u.Destination), uint32(uploadMode(u)))
		if u.Owner != "" {
			line += ", owner " + u.Owner
		}
		return []string{line + ", unless the host has the same sha256, mode and owner)"}, nil
	case s.Patch != nil:
		// The listing (refresh, simulate) and then the upgrade, as steps.Patch runs them.
		cmds, err := steps.PatchCommands(planFact(hostFacts, "package_manager"), planPatchAction(s.Patch))
		if err != nil {
			return nil, fmt.Errorf("patch: %w", err)
		}
		return cmds, nil
	case s.Reboot != nil:
		// The check (boot id, reboot required?), the detached reboot, and the
		// boot id read repeated until it changes.
		return steps.RebootCommands(planRebootAction(s)), nil
	}
	return nil, fmt.Errorf("step %s %q: nothing to preview", s.Kind, s.Name)
}

// planPackageAction and planServiceAction map a step to its steps action exactly as
// stages.DefaultSteps does, so the preview and the check describe the run.
func planPackageAction(p *playbook.PackageSpec) steps.PackageAction {
	return steps.PackageAction{Name: p.Name, Version: p.Version, State: p.State}
}

func planServiceAction(s *playbook.ServiceSpec) steps.ServiceAction {
	return steps.ServiceAction{Name: s.Name, State: s.State, Enabled: s.Enabled}
}

func planPatchAction(p *playbook.PatchSpec) steps.PatchAction {
	return steps.PatchAction{Mode: p.Mode, SecurityOnly: p.SecurityOnly, Exclude: p.Exclude}
}

func planRebootAction(s *playbook.StepSpec) steps.RebootAction {
	return steps.RebootAction{Force: s.Reboot.Force, Timeout: s.Timeout}
}

func planPuppetRun(p *playbook.PuppetSpec) steps.PuppetRun {
	return steps.PuppetRun{Noop: p.Noop, Tags: p.Tags, Environment: p.Environment}
}

// manifestPath stands for the random name the manifest is uploaded under.
const manifestPath = "/var/tmp/drover-manifest-RANDOM.pp"

func puppetCommands(p *playbook.PuppetSpec) ([]string, error) {
	var pp steps.Puppet
	switch p.Action {
	case "enable":
		return []string{"puppet agent --enable"}, nil
	case "disable":
		return []string{"puppet agent --disable " + shellescape.Quote(p.Reason)}, nil
	}
	if p.Manifest != "" {
		cmd, err := pp.ApplyCommand(manifestPath, planPuppetRun(p))
		if err != nil {
			return nil, fmt.Errorf("puppet apply: %w", err)
		}
		return []string{"upload " + p.Manifest + " -> " + manifestPath, cmd}, nil
	}
	cmd, err := pp.RunCommand(planPuppetRun(p))
	if err != nil {
		return nil, fmt.Errorf("puppet run: %w", err)
	}
	return []string{cmd}, nil
}

func uploadMode(u *playbook.UploadSpec) fs.FileMode {
	if u.Mode == 0 {
		return 0o644
	}
	return u.Mode
}

// planFact is a string fact, "" when unset or not a string.
func planFact(hostFacts map[string]any, key string) string {
	if v, ok := facts.Facts(hostFacts).Get(key); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return ""
}

// Marks of a live check (plan --live): what the step would do on the host.
const (
	markWouldChange = "would change" // the host is not in the step's target state
	markNoChange    = "no change"    // the target state already holds
	markWouldRun    = "would run"    // a command: it always runs, so it is never executed here
	markNotChecked  = "not checked"  // no side-effect-free way to ask (puppet apply)
	markSkipped     = "skipped"      // when is false, or creates exists
	markError       = "error"        // the check failed (or the step could not run)
)

// liveStep is one step to check on one host: evaluated, or why it is not run.
type liveStep struct {
	kind, name string
	spec       *playbook.StepSpec // nil when skipped or failed to evaluate
	skip, err  string
}

// liveJob is one host's steps for plan --live.
type liveJob struct {
	host, stage string
	facts       map[string]any
	steps       []liveStep
}

// liveDialer hands out the host's connection (one per host, from the pool).
type liveDialer func(ctx context.Context, host string) (transport.Runner, error)

// runLive asks every job's host, at most forks at once, what its steps would
// change; it changes nothing. opts gives the options of a step (become, timeout).
func runLive(ctx context.Context, jobs []liveJob, forks int, dial liveDialer, opts func(*playbook.StepSpec) steps.Options, red redactor) *liveDoc {
	hosts := make([]liveHost, len(jobs))
	idx := make([]int, len(jobs))
	for i := range jobs {
		idx[i] = i
		hosts[i] = liveHost{Host: jobs[i].host, Stage: jobs[i].stage, Status: markError, Error: "not checked: interrupted", Steps: []stepCheck{}}
	}
	forEach(ctx, idx, max(forks, 1), func(ctx context.Context, i int) {
		hosts[i] = checkHost(ctx, jobs[i], dial, opts, red)
	})
	doc := &liveDoc{Hosts: hosts, WouldChange: []string{}, NoChange: []string{}, Errors: []string{}}
	for _, h := range hosts {
		switch h.Status {
		case markWouldChange:
			doc.WouldChange = append(doc.WouldChange, h.Host)
		case markNoChange:
			doc.NoChange = append(doc.NoChange, h.Host)
		default:
			doc.Errors = append(doc.Errors, h.Host)
		}
	}
	return doc
}

// checkHost checks one host's steps in order over one connection.
func checkHost(ctx context.Context, j liveJob, dial liveDialer, opts func(*playbook.StepSpec) steps.Options, red redactor) liveHost {
	lh := liveHost{Host: j.host, Stage: j.stage, Steps: []stepCheck{}}
	r, err := dial(ctx, j.host)
	if err != nil {
		lh.Status, lh.Error = markError, red.s(err.Error())
		if isUnreachable(err) {
			lh.Status = statusUnreachable
		}
		return lh
	}
	changes, failed := false, false
	for _, s := range j.steps {
		var sc stepCheck
		switch {
		case failed:
			// As in a run, a host stops at its first failure.
			sc = stepCheck{Mark: markNotChecked, Detail: "an earlier check failed"}
		case s.err != "":
			sc = stepCheck{Mark: markError, Error: s.err}
		case s.skip != "":
			sc = stepCheck{Mark: markSkipped, Detail: s.skip}
		default:
			sc = checkStep(ctx, r, s.spec, j.facts, opts(s.spec), changes)
		}
		sc.Kind, sc.Name = s.kind, s.name
		sc.Detail, sc.Error = red.s(sc.Detail), red.s(sc.Error)
		switch sc.Mark {
		case markError:
			failed = true
		case markWouldChange, markNotChecked:
			changes = true
		}
		lh.Steps = append(lh.Steps, sc)
	}
	// A command that would run does not make the host "would change": it runs on
	// every run, changed or not, and check mode cannot know what it does.
	switch {
	case failed:
		lh.Status = markError
		lh.Error = lh.Steps[slices.IndexFunc(lh.Steps, func(c stepCheck) bool { return c.Mark == markError })].Error
	case changes:
		lh.Status = markWouldChange
	default:
		lh.Status = markNoChange
	}
	return lh
}

// checkStep asks the host what spec would change, in check mode: the steps
// package's dry-run (queries only), puppet agent --noop, a checksum of an
// upload's destination. A command is never run. earlier says an earlier step on
// this host would change it, so a service that does not exist yet may be one
// that step installs.
func checkStep(ctx context.Context, r transport.Runner, spec *playbook.StepSpec, hostFacts map[string]any, o steps.Options, earlier bool) stepCheck {
	o.DryRun = true
	var res *steps.Result
	switch {
	case spec.Package != nil:
		pm, err := steps.PackageManagerFor(planFact(hostFacts, "package_manager"))
		if err != nil {
			return stepCheck{Mark: markError, Error: err.Error()}
		}
		res, _ = pm.Apply(ctx, r, planPackageAction(spec.Package), o)
	case spec.Service != nil:
		sm, err := steps.ServiceManagerFor(planFact(hostFacts, "init_system"))
		if err != nil {
			return stepCheck{Mark: markError, Error: err.Error()}
		}
		res, _ = sm.Apply(ctx, r, planServiceAction(spec.Service), o)
		if res != nil && errors.Is(res.Err, steps.ErrNotFound) && earlier {
			return stepCheck{Mark: markNotChecked, Detail: "service not found yet; an earlier step would change the host first"}
		}
	case spec.Puppet != nil:
		if spec.Puppet.Manifest != "" && spec.Puppet.Action != "enable" && spec.Puppet.Action != "disable" {
			return stepCheck{Mark: markNotChecked, Detail: "puppet apply needs the manifest uploaded, so it is not checked"}
		}
		res = checkPuppet(ctx, r, spec.Puppet, o)
	case spec.Command != nil:
		return checkCommand(ctx, r, spec.Command, o)
	case spec.Upload != nil:
		return checkUpload(ctx, r, spec.Upload, o)
	case spec.Patch != nil:
		// steps.Patch in dry-run refreshes the index and simulates the upgrade
		// (apt-get -s); it never installs.
		res, _ = steps.Patch(ctx, r, planFact(hostFacts, "package_manager"), planPatchAction(spec.Patch), o)
		return patchMark(res)
	case spec.Reboot != nil:
		// steps.Reboot in dry-run only reads the boot id and whether a reboot is required.
		res, _ = steps.Reboot(ctx, r, planRebootAction(spec), o)
		return rebootMark(res, earlier)
	default:
		return stepCheck{Mark: markError, Error: "nothing to check"}
	}
	if res == nil {
		return stepCheck{Mark: markError, Error: "the check returned no result"}
	}
	return markOf(res)
}

// markOf reads a dry-run result: changed means "would change".
func markOf(res *steps.Result) stepCheck {
	switch res.Status {
	case steps.StatusOK:
		return stepCheck{Mark: markNoChange, Detail: res.Detail}
	case steps.StatusChanged:
		d := strings.TrimPrefix(res.Detail, "would change")
		d = strings.TrimPrefix(strings.TrimPrefix(d, " (noop)"), ": ")
		return stepCheck{Mark: markWouldChange, Detail: strings.TrimPrefix(d, "would be ")}
	case steps.StatusSkipped:
		return stepCheck{Mark: markSkipped, Detail: res.Detail}
	}
	msg := res.Detail
	if res.Err != nil {
		msg = res.Err.Error()
	}
	return stepCheck{Mark: markError, Error: msg}
}

// patchMark reads a patch dry-run: "would change: 2 to upgrade: a 1.0 -> 1.1, …".
func patchMark(res *steps.Result) stepCheck {
	if res == nil {
		return stepCheck{Mark: markError, Error: "the check returned no result"}
	}
	c := markOf(res)
	if c.Mark == markWouldChange {
		d := strings.TrimPrefix(c.Detail, "would upgrade ")
		c.Detail = strings.Replace(d, " upgraded: ", " to upgrade: ", 1)
	}
	return c
}

// rebootMark reads a reboot dry-run: "would change: reboot required (by
// linux-image-amd64)", "no change: no reboot required". When an earlier step
// would change the host (a patch), its reboot need is not known yet.
func rebootMark(res *steps.Result, earlier bool) stepCheck {
	if res == nil {
		return stepCheck{Mark: markError, Error: "the check returned no result"}
	}
	c := markOf(res)
	switch c.Mark {
	case markWouldChange:
		why := strings.TrimSuffix(strings.TrimPrefix(c.Detail, "would reboot ("), ")")
		switch {
		case why == "forced":
			c.Detail = "forced reboot (force = true)"
		case strings.HasPrefix(why, "required by "):
			c.Detail = "reboot required (by " + strings.TrimPrefix(why, "required by ") + ")"
		default:
			c.Detail = "reboot required"
		}
	case markNoChange:
		if earlier {
			c.Detail = "no reboot required now; an earlier step would change the host first and may require one"
		}
	}
	return c
}

// checkPuppet: an agent run becomes --noop (o.DryRun); enable and disable
// compare the agent's lock state.
func checkPuppet(ctx context.Context, r transport.Runner, p *playbook.PuppetSpec, o steps.Options) *steps.Result {
	var pp steps.Puppet
	var res *steps.Result
	switch p.Action {
	case "enable":
		res, _ = pp.Enable(ctx, r, o)
	case "disable":
		res, _ = pp.Disable(ctx, r, p.Reason, o)
	default:
		res, _ = pp.Run(ctx, r, planPuppetRun(p), o)
	}
	return res
}

// checkCommand never runs the command; it only tests `creates`, as the run
// would before running it.
func checkCommand(ctx context.Context, r transport.Runner, c *playbook.CommandSpec, o steps.Options) stepCheck {
	if c.Creates == "" {
		return stepCheck{Mark: markWouldRun, Detail: "not run in check mode"}
	}
	out, err := r.Run(ctx, &transport.Command{Cmd: "test -e " + shellescape.Quote(c.Creates), Become: o.Become, Timeout: o.Timeout})
	if err != nil {
		return stepCheck{Mark: markError, Error: fmt.Sprintf("command: check creates: %v", err)}
	}
	if out.ExitCode == 0 {
		return stepCheck{Mark: markSkipped, Detail: c.Creates + " exists"}
	}
	return stepCheck{Mark: markWouldRun, Detail: c.Creates + " is missing; not run in check mode"}
}

// checkUpload compares the destination's sha256, mode and owner with what the
// upload would write, as the run does before uploading.
func checkUpload(ctx context.Context, r transport.Runner, u *playbook.UploadSpec, o steps.Options) stepCheck {
	data := []byte(u.Content)
	if !u.HasContent {
		var err error
		if data, err = os.ReadFile(u.Source); err != nil {
			return stepCheck{Mark: markError, Error: fmt.Sprintf("upload: %v", err)}
		}
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	mode := strconv.FormatUint(uint64(uploadMode(u).Perm()), 8)
	dst := shellescape.Quote(u.Destination)
	out, err := r.Run(ctx, &transport.Command{Become: o.Become, Timeout: o.Timeout,
		Cmd: "sha256sum -- " + dst + " 2>/dev/null | cut -c1-64; stat -c '%a %U' -- " + dst + " 2>/dev/null"})
	if err != nil {
		return stepCheck{Mark: markError, Error: fmt.Sprintf("upload %s: %v", u.Destination, err)}
	}
	f := strings.Fields(string(out.Stdout))
	if len(f) != 3 {
		return stepCheck{Mark: markWouldChange, Detail: u.Destination + " does not exist"}
	}
	var diff []string
	if f[0] != want {
		diff = append(diff, "content differs")
	}
	if f[1] != mode {
		diff = append(diff, "mode "+f[1]+" -> "+mode)
	}
	if u.Owner != "" && f[2] != u.Owner {
		diff = append(diff, "owner "+f[2]+" -> "+u.Owner)
	}
	if len(diff) == 0 {
		return stepCheck{Mark: markNoChange, Detail: "same sha256, mode and owner"}
	}
	return stepCheck{Mark: markWouldChange, Detail: strings.Join(diff, ", ")}
}

// shownURL is raw with any password in it masked, as the checks themselves
// report it: plan output is shared and pasted, credentials must not be.
func shownURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// checkLine describes a check or action (before, health, after, gate).
func checkLine(c *playbook.CheckSpec) string {
	var line string
	switch {
	case c.HTTP != nil:
		h := c.HTTP
		line = h.Method + " " + shownURL(h.URL)
		if h.Status != 0 {
			line += fmt.Sprintf(", expect status %d", h.Status)
		} else {
			line += ", expect 2xx"
		}
		if h.Body != "" {
			line += ", body containing " + strconv.Quote(h.Body)
		}
	case c.TCP != nil:
		line = "connect to " + c.TCP.Address
	case c.Command != nil:
		line = c.Command.Run
	case c.Prometheus != nil:
		pc := c.Prometheus
		line = fmt.Sprintf("query %s at %s", strconv.Quote(pc.Query), shownURL(pc.URL))
		switch {
		case pc.Min != nil && pc.Max != nil:
			line += fmt.Sprintf(", want %s <= value <= %s", fmtFloat(*pc.Min), fmtFloat(*pc.Max))
		case pc.Min != nil:
			line += ", want value >= " + fmtFloat(*pc.Min)
		case pc.Max != nil:
			line += ", want value <= " + fmtFloat(*pc.Max)
		}
	}
	var extra []string
	if c.Retries > 0 {
		extra = append(extra, fmt.Sprintf("retries %d", c.Retries))
	}
	if c.Interval > 0 {
		extra = append(extra, "every "+fmtDuration(c.Interval))
	}
	if c.Timeout > 0 {
		extra = append(extra, "timeout "+fmtDuration(c.Timeout))
	}
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return line
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// fmtDuration is a duration as people write it: 2m rather than 2m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
