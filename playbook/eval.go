package playbook

import (
	"fmt"
	"io/fs"
	"math/big"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drover-sh/drover/expr"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// HostData is what expressions see as `host`, plus the run's position (`stage`)
// and what the host had before the run (`prior`).
type HostData struct {
	Name    string
	Address string // "" uses Name
	Groups  []string
	Vars    map[string]any
	Stage   *StageRef      // nil: `stage` is an empty object
	Prior   map[string]any // e.g. {"package": {"demo-web": "1.0"}}; nil: empty
}

// StageRef is what expressions see as `stage`: name, kind and index (0-based).
type StageRef struct {
	Name  string
	Kind  StageKind
	Index int
}

func (s *StageRef) value() cty.Value {
	if s == nil {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":  cty.StringVal(s.Name),
		"kind":  cty.StringVal(string(s.Kind)),
		"index": cty.NumberIntVal(int64(s.Index)),
	})
}

// Context is the evaluation context of run-wide expressions: `var` only.
func (p *Playbook) Context() *hcl.EvalContext {
	return expr.NewContext(map[string]cty.Value{"var": p.varsValue()})
}

// StageContext is the context of a stage's gate checks (run on the controller):
// `var` and `stage`.
func (p *Playbook) StageContext(s StageRef) *hcl.EvalContext {
	return expr.NewContext(map[string]cty.Value{"var": p.varsValue(), "stage": s.value()})
}

func (p *Playbook) varsValue() cty.Value {
	if p.vars == cty.NilVal {
		return cty.EmptyObjectVal
	}
	return p.vars
}

// HostContext is the context of per-host expressions (targets.where, spread_by,
// when, step, before/after and health attributes): var, host, facts, stage, prior.
func (p *Playbook) HostContext(h HostData, facts map[string]any) (*hcl.EvalContext, error) {
	addr := h.Address
	if addr == "" {
		addr = h.Name
	}
	hv, err := expr.HostValue(h.Name, addr, h.Groups, h.Vars)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	fv, err := expr.ToCty(facts)
	if err != nil {
		return nil, fmt.Errorf("facts of %s: %w", h.Name, err)
	}
	if fv.IsNull() {
		fv = cty.EmptyObjectVal
	}
	pv := cty.EmptyObjectVal
	if h.Prior != nil {
		if pv, err = expr.ToCty(h.Prior); err != nil {
			return nil, fmt.Errorf("prior state of %s: %w", h.Name, err)
		}
	}
	return expr.NewContext(map[string]cty.Value{
		"var": p.varsValue(), "host": hv, "facts": fv, "stage": h.Stage.value(), "prior": pv,
	}), nil
}

// Matches evaluates targets.where for a host: true when there is no where. A
// where that refers to facts the host lacks is false (see package expr).
func (p *Playbook) Matches(ctx *hcl.EvalContext) (bool, []expr.Ref, hcl.Diagnostics) {
	if p.Targets == nil || p.Targets.Where == nil {
		return true, nil, nil
	}
	ok, missing, diags := expr.EvalBool(p.Targets.Where, ctx)
	return ok, missing, scrub(diags)
}

// Resolved is what Step.Evaluate and Check.Evaluate share.
type Resolved struct {
	Kind, Name string
	Skip       bool       // `when` was false: nothing to do on this host
	Missing    []expr.Ref // facts `when` referred to that the host lacks
	Timeout    time.Duration
}

// StepSpec is a step with concrete values for one host. Exactly one of the
// kind-specific pointers is set (none when Skip).
type StepSpec struct {
	Resolved
	Package *PackageSpec
	Service *ServiceSpec
	Puppet  *PuppetSpec
	Command *CommandSpec
	Upload  *UploadSpec
	Patch   *PatchSpec
	Reboot  *RebootSpec
}

// PackageSpec: State is present, latest or absent; Version pins an exact version.
type PackageSpec struct{ Name, Version, State string }

// ServiceSpec: State is started, stopped, restarted or reloaded; Enabled nil leaves boot-time state alone.
type ServiceSpec struct {
	Name, State string
	Enabled     *bool
}

// PuppetSpec: Action is run, enable or disable. A run with Manifest applies it masterless.
type PuppetSpec struct {
	Action, Manifest, Environment, Reason string
	Tags                                  []string
	Noop                                  bool
}

// CommandSpec: Run is a shell command line; it is skipped when Creates exists.
type CommandSpec struct{ Run, Creates string }

// UploadSpec: Source is a controller path (relative ones resolved against the
// playbook's directory), or Content is the data itself.
type UploadSpec struct {
	Source, Content, Destination, Owner string
	Mode                                fs.FileMode // 0: 0644
	HasContent                          bool
}

// PatchSpec upgrades the whole system. Mode is upgrade (default) or dist-upgrade.
type PatchSpec struct {
	Mode         string
	SecurityOnly bool
	Exclude      []string
}

// RebootSpec reboots when the system says it is required, or always when Force.
// The step's timeout (Resolved.Timeout) bounds the wait for the host to return.
type RebootSpec struct{ Force bool }

// CheckSpec is a check or action with concrete values. Exactly one kind pointer is set.
type CheckSpec struct {
	Resolved
	Retries    int
	Interval   time.Duration // 0: not set
	HTTP       *HTTPCheck
	TCP        *TCPCheck
	Command    *CommandCheck
	Prometheus *PrometheusCheck
}

// HTTPCheck: Status 0 accepts any 2xx; Body, when set, must appear in the response;
// BodyRegex, when set, must match it (RE2 syntax, checked when the playbook loads).
type HTTPCheck struct {
	URL, Method, Body string
	BodyRegex         string
	Status            int
	Headers           map[string]string
}

// TCPCheck connects to Address (host:port).
type TCPCheck struct{ Address string }

// CommandCheck runs Run: on the host for before/after/health, on the controller for gates.
type CommandCheck struct{ Run string }

// PrometheusCheck runs an instant query; its value must lie within Min and Max (nil:
// unbounded). An empty result fails unless EmptyOK.
type PrometheusCheck struct {
	URL, Query string
	Min, Max   *float64
	EmptyOK    bool
}

// getter evaluates a block's fields in one context and collects problems.
type getter struct {
	b     *block
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
}

func (g *getter) get(name string) cty.Value {
	f := g.b.fields[name]
	if f == nil {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	if f.static {
		return f.value
	}
	e, ctx := f.attr.Expr, g.ctx
	if f.shell != nil {
		e, ctx = f.shell, shellContext(g.ctx) // interpolations quoted, raw() honoured
	}
	v, diags := e.Value(ctx)
	g.diags = append(g.diags, tidyShellDiags(scrub(diags))...)
	if diags.HasErrors() {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	if !v.IsWhollyKnown() {
		g.diags = append(g.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Unknown value for %q", name),
			Detail: "The value depends on something not known yet.", Subject: f.attr.Expr.Range().Ptr()})
		return cty.NullVal(cty.DynamicPseudoType)
	}
	cv, diag := g.b.spec(name).check(v, f.attr.Expr.Range())
	if diag != nil {
		g.diags = append(g.diags, diag)
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return cv
}

func (g *getter) str(name, def string) string {
	if v := g.get(name); !v.IsNull() {
		return v.AsString()
	}
	return def
}

func (g *getter) boolean(name string) *bool {
	if v := g.get(name); !v.IsNull() {
		b := v.True()
		return &b
	}
	return nil
}

func (g *getter) number(name string) *float64 {
	if v := g.get(name); !v.IsNull() {
		f, _ := v.AsBigFloat().Float64()
		return &f
	}
	return nil
}

func (g *getter) integer(name string) int {
	if v := g.get(name); !v.IsNull() {
		n, acc := v.AsBigFloat().Int64()
		if acc != big.Exact {
			g.diags = append(g.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf("Invalid value for %q", name),
				Detail: "Expected a whole number.", Subject: g.b.fields[name].attr.Expr.Range().Ptr()})
		}
		return int(n)
	}
	return 0
}

func (g *getter) duration(name string) time.Duration {
	if s := g.str(name, ""); s != "" {
		d, _ := time.ParseDuration(s) // checked by get
		return d
	}
	return 0
}

func (g *getter) strings(name string) []string {
	v := g.get(name)
	if v.IsNull() {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

func (g *getter) strMap(name string) map[string]string {
	v := g.get(name)
	if v.IsNull() {
		return nil
	}
	out := map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		out[k.AsString()] = e.AsString()
	}
	return out
}

func (b *block) resolve(ctx *hcl.EvalContext) (*getter, Resolved, hcl.Diagnostics) {
	r := Resolved{Kind: b.Kind, Name: b.Name}
	if b.When != nil {
		ok, missing, diags := expr.EvalBool(b.When, ctx)
		if diags.HasErrors() {
			return nil, r, scrub(diags)
		}
		if !ok {
			r.Skip, r.Missing = true, missing
			return nil, r, nil
		}
	}
	g := &getter{b: b, ctx: ctx}
	r.Timeout = g.duration("timeout")
	return g, r, nil
}

// Evaluate resolves the step for one host with ctx from HostContext. When `when`
// is false the result has Skip set and nothing else.
func (s *Step) Evaluate(ctx *hcl.EvalContext) (*StepSpec, hcl.Diagnostics) {
	g, r, diags := s.resolve(ctx)
	out := &StepSpec{Resolved: r}
	if g == nil {
		return out, diags
	}
	switch s.Kind {
	case "package":
		out.Package = &PackageSpec{Name: g.str("name", s.Name), Version: g.str("version", ""), State: g.str("state", "present")}
		if out.Package.Version != "" && out.Package.State != "present" {
			g.diags = append(g.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Conflicting arguments",
				Detail: fmt.Sprintf("A package step with state = %q takes no version.", out.Package.State), Subject: s.DeclRange.Ptr()})
		}
	case "service":
		out.Service = &ServiceSpec{Name: g.str("name", s.Name), State: g.str("state", ""), Enabled: g.boolean("enabled")}
	case "puppet":
		ps := &PuppetSpec{Action: g.str("action", "run"), Manifest: g.str("manifest", ""), Environment: g.str("environment", ""),
			Reason: g.str("reason", ""), Tags: g.strings("tags")}
		if n := g.boolean("noop"); n != nil {
			ps.Noop = *n
		}
		if ps.Manifest != "" && !filepath.IsAbs(ps.Manifest) {
			ps.Manifest = filepath.Join(s.dir, ps.Manifest)
		}
		out.Puppet = ps
	case "command":
		out.Command = &CommandSpec{Run: g.str("run", ""), Creates: g.str("creates", "")}
	case "upload":
		u := &UploadSpec{Source: g.str("source", ""), Destination: g.str("destination", ""), Owner: g.str("owner", "")}
		if c := g.get("content"); !c.IsNull() {
			u.Content, u.HasContent = c.AsString(), true
		}
		if u.Source != "" && !filepath.IsAbs(u.Source) {
			u.Source = filepath.Join(s.dir, u.Source)
		}
		if m := g.str("mode", ""); m != "" {
			n, _ := strconv.ParseUint(m, 8, 32) // checked by safeMode
			u.Mode = fs.FileMode(n)
		}
		out.Upload = u
	case "patch":
		ps := &PatchSpec{Mode: g.str("mode", "upgrade"), Exclude: g.strings("exclude")}
		if b := g.boolean("security_only"); b != nil {
			ps.SecurityOnly = *b
		}
		out.Patch = ps
	case "reboot":
		rs := &RebootSpec{}
		if b := g.boolean("force"); b != nil {
			rs.Force = *b
		}
		out.Reboot = rs
	}
	return out, g.diags
}

// Evaluate resolves the check for one host (HostContext) or, for gate checks,
// one stage (StageContext).
func (c *Check) Evaluate(ctx *hcl.EvalContext) (*CheckSpec, hcl.Diagnostics) {
	g, r, diags := c.resolve(ctx)
	out := &CheckSpec{Resolved: r}
	if g == nil {
		return out, diags
	}
	out.Retries = g.integer("retries")
	out.Interval = g.duration("interval")
	switch c.Kind {
	case "http":
		out.HTTP = &HTTPCheck{URL: g.str("url", ""), Method: g.str("method", "GET"), Body: g.str("body", ""),
			BodyRegex: g.str("body_regex", ""), Status: g.integer("status"), Headers: g.strMap("headers")}
	case "tcp":
		out.TCP = &TCPCheck{Address: g.str("address", "")}
	case "command":
		out.Command = &CommandCheck{Run: g.str("run", "")}
	case "prometheus":
		out.Prometheus = &PrometheusCheck{URL: g.str("url", ""), Query: g.str("query", ""), Min: g.number("min"), Max: g.number("max")}
		if b := g.boolean("empty_ok"); b != nil {
			out.Prometheus.EmptyOK = *b
		}
	}
	return out, g.diags
}

// expressions lists every per-host expression of the playbook, for CheckFactRefs.
func (p *Playbook) expressions() []hcl.Expression {
	var out []hcl.Expression
	if p.Targets != nil && p.Targets.Where != nil {
		out = append(out, p.Targets.Where)
	}
	addBlock := func(b *block) {
		if b.When != nil {
			out = append(out, b.When)
		}
		names := make([]string, 0, len(b.fields))
		for n := range b.fields {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, b.fields[n].attr.Expr)
		}
	}
	for _, st := range p.Stages {
		if st.SpreadBy != nil {
			out = append(out, st.SpreadBy)
		}
	}
	for _, list := range [][]*Check{p.Before, p.Health, p.After} {
		for _, c := range list {
			addBlock(&c.block)
		}
	}
	for _, list := range [][]*Step{p.Steps, p.Rollback} {
		for _, s := range list {
			addBlock(&s.block)
		}
	}
	return out
}

// UsesFacts says whether any per-host expression of the playbook reads a fact. When
// none does, a run needs of each host only what its steps need (init system, package
// manager), not a whole fact gathering.
func (p *Playbook) UsesFacts() bool {
	for _, e := range p.expressions() {
		for _, t := range e.Variables() {
			if t.RootName() == "facts" {
				return true
			}
		}
	}
	return false
}

// CheckFactRefs reports every reference to a fact for which known returns false
// (known gets the dotted path, e.g. "os.family"; build it with KnownFacts).
// A reference no inventory host can satisfy is almost always a typo, and would
// silently make a `when` or `where` false everywhere.
func (p *Playbook) CheckFactRefs(known func(path string) bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := map[hcl.Pos]bool{}
	for _, e := range p.expressions() {
		for _, t := range e.Variables() {
			if t.RootName() != "facts" {
				continue
			}
			var path []string
			for _, step := range t[1:] {
				switch s := step.(type) {
				case hcl.TraverseAttr:
					path = append(path, s.Name)
					continue
				case hcl.TraverseIndex:
					if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
						path = append(path, s.Key.AsString())
						continue
					}
				}
				break
			}
			rng := t.SourceRange()
			if len(path) == 0 || seen[rng.Start] || known(strings.Join(path, ".")) {
				continue
			}
			seen[rng.Start] = true
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown fact",
				Detail:   fmt.Sprintf("No inventory host has the fact %q; check its spelling, or refresh the fact cache (drover facts --refresh).", strings.Join(path, ".")),
				Subject:  rng.Ptr(),
			})
		}
	}
	return sortDiags(diags)
}

// KnownFacts returns a lookup for CheckFactRefs: a dotted path is known when at
// least one host's facts hold it (every prefix of a fact's path counts).
func KnownFacts(hosts []map[string]any) func(path string) bool {
	set := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if prefix != "" {
			set[prefix] = true
		}
		switch t := v.(type) {
		case map[string]any:
			for k, x := range t {
				if prefix == "" {
					walk(k, x)
				} else {
					walk(prefix+"."+k, x)
				}
			}
		case []any:
			for i, x := range t {
				walk(prefix+"."+strconv.Itoa(i), x)
			}
		}
	}
	for _, h := range hosts {
		walk("", h)
	}
	return func(path string) bool { return set[path] }
}

// Secrets returns the values of the variables marked sensitive, as text, so
// output, reports and logs can redact them. Collections contribute each element;
// empty strings are left out.
func (p *Playbook) Secrets() []string {
	var out []string
	var add func(v cty.Value)
	add = func(v cty.Value) {
		if v.IsNull() || !v.IsWhollyKnown() {
			return
		}
		switch {
		case v.Type() == cty.String:
			if s := v.AsString(); s != "" {
				out = append(out, s)
			}
		case v.Type() == cty.Number:
			out = append(out, v.AsBigFloat().Text('f', -1))
		case v.Type().IsCollectionType() || v.Type().IsObjectType() || v.Type().IsTupleType():
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				add(e)
			}
		}
	}
	for _, v := range p.Variables {
		if v.Sensitive {
			add(v.Value)
		}
	}
	return out
}
