package playbook

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/drover-sh/drover/expr"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Roots that expressions may refer to, per place.
var (
	rootsVar   = []string{"var"}
	rootsWhere = []string{"var", "host", "facts"}
	rootsHost  = []string{"var", "host", "facts", "stage", "prior"}
	rootsGate  = []string{"var", "stage"}
)

var topSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "playbook", LabelNames: []string{"name"}},
	{Type: "variable", LabelNames: []string{"name"}},
	{Type: "targets"},
	{Type: "settings"},
	{Type: "canary"},
	{Type: "batch", LabelNames: []string{"name"}},
	{Type: "remaining"},
	{Type: "before"},
	{Type: "steps"},
	{Type: "health"},
	{Type: "after"},
	{Type: "rollback"},
	{Type: "notify"},
}}

// Load parses and validates the playbook at path, resolving its variables from
// in. It reports every problem it finds at once; the Playbook is nil only when
// the file could not be parsed. Callers treat any error diagnostic as bad input.
func Load(path string, in VarInputs) (*Playbook, *Files, hcl.Diagnostics) {
	d := &decoder{parser: hclparse.NewParser(), dir: filepath.Dir(path)}
	files := &Files{parser: d.parser}
	f, diags := d.parser.ParseHCLFile(path)
	if diags.HasErrors() || f == nil {
		return nil, files, sortDiags(diags)
	}
	d.diags = diags
	p := d.decode(f.Body, path, in)
	return p, files, sortDiags(d.diags)
}

// sortDiags orders diagnostics by position so output is stable and reads top
// to bottom; those without a position come first.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return diags
}

type decoder struct {
	parser *hclparse.Parser
	dir    string
	diags  hcl.Diagnostics
	ctx    *hcl.EvalContext // var and functions, for load-time evaluation
}

func (d *decoder) add(diags ...*hcl.Diagnostic) { d.diags = append(d.diags, diags...) }

func (d *decoder) errorf(rng hcl.Range, summary, detail string, args ...any) {
	d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: rng.Ptr()})
}

// content decodes body against schema. Block types listed in optional may be
// written with or without their one label ("http { }" and "http "site" { }");
// an unlabelled one gets the label "".
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema, optional ...string) *hcl.BodyContent {
	if sb, ok := body.(*hclsyntax.Body); ok && len(optional) > 0 {
		nb := *sb
		nb.Blocks = make(hclsyntax.Blocks, len(sb.Blocks))
		for i, b := range sb.Blocks {
			if len(b.Labels) == 0 && contains(optional, b.Type) {
				cb := *b
				cb.Labels = []string{""}
				cb.LabelRanges = []hcl.Range{b.TypeRange}
				b = &cb
			}
			nb.Blocks[i] = b
		}
		body = &nb
	}
	c, diags := body.Content(schema)
	d.add(diags...)
	return c
}

// sortedAttrs returns attributes in source order, so diagnostics are stable.
func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Range.Start.Byte < out[j].Range.Start.Byte })
	return out
}

type evalState int

const (
	evalOK      evalState = iota
	evalDynamic           // refers to per-host data: evaluated later
	evalFailed            // diagnosed (or depends on a variable that failed)
)

// eval checks e's references and functions, then evaluates it now when it refers
// only to `var`.
func (d *decoder) eval(e hcl.Expression, roots []string) (cty.Value, evalState) {
	if diags := expr.Validate(e, roots); diags.HasErrors() {
		d.add(diags...)
		return cty.NilVal, evalFailed
	}
	for _, t := range e.Variables() {
		if t.RootName() != "var" {
			return cty.NilVal, evalDynamic
		}
	}
	v, diags := e.Value(d.ctx)
	d.add(scrub(diags)...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, evalFailed
	}
	return v, evalOK
}

// static evaluates an attribute that may refer only to `var`.
func (d *decoder) static(a *hcl.Attribute) (cty.Value, bool) {
	v, st := d.eval(a.Expr, rootsVar)
	return v, st == evalOK
}

// scrub drops the evaluation context from diagnostics: the text writer would
// print the values of the variables involved, and some may be secrets.
func scrub(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, diag := range diags {
		diag.Expression, diag.EvalContext = nil, nil
	}
	return diags
}

// typed evaluates a var-only attribute and checks it against spec.
func (d *decoder) typed(a *hcl.Attribute, spec fieldSpec) (cty.Value, bool) {
	v, ok := d.static(a)
	if !ok {
		return cty.NilVal, false
	}
	cv, diag := spec.check(v, a.Expr.Range())
	if diag != nil {
		d.add(diag)
		return cty.NilVal, false
	}
	return cv, !cv.IsNull()
}

func (d *decoder) str(a *hcl.Attribute, spec fieldSpec) string {
	spec.name = a.Name
	if v, ok := d.typed(a, spec); ok {
		return v.AsString()
	}
	return ""
}

func (d *decoder) boolean(a *hcl.Attribute) (bool, bool) {
	if v, ok := d.typed(a, fieldSpec{name: a.Name, kind: kBool}); ok {
		return v.True(), true
	}
	return false, false
}

func (d *decoder) integer(a *hcl.Attribute, min, max int) int {
	v, ok := d.typed(a, fieldSpec{name: a.Name, kind: kNumber, min: float64(min), max: float64(max)})
	if !ok {
		return 0
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		d.errorf(a.Expr.Range(), fmt.Sprintf("Invalid value for %q", a.Name), "%s is not a whole number.", bf.Text('g', -1))
		return 0
	}
	n, _ := bf.Int64()
	return int(n)
}

func (d *decoder) duration(a *hcl.Attribute, min, max time.Duration) time.Duration {
	v, ok := d.typed(a, fieldSpec{name: a.Name, kind: kString})
	if !ok {
		return 0
	}
	dur, diag := parseDuration(v.AsString(), min, max, a.Name, a.Expr.Range())
	if diag != nil {
		d.add(diag)
	}
	return dur
}

func (d *decoder) quantity(a *hcl.Attribute, minCount int, zeroOK bool) Quantity {
	v, ok := d.static(a)
	if !ok {
		return Quantity{}
	}
	q, diag := parseQuantity(v, a.Name, minCount, zeroOK, a.Expr.Range())
	if diag != nil {
		d.add(diag)
	}
	return q
}

func (d *decoder) stringList(a *hcl.Attribute) []string {
	v, ok := d.typed(a, fieldSpec{name: a.Name, kind: kStrings})
	if !ok {
		return nil
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

// once reports a second block of a type that may appear once.
func (d *decoder) once(seen map[string]*hcl.Block, b *hcl.Block) bool {
	if prev, dup := seen[b.Type]; dup {
		d.errorf(b.DefRange, fmt.Sprintf("Duplicate %s block", b.Type),
			"Only one %s block is allowed; the first is at %s.", b.Type, at(prev.DefRange))
		return false
	}
	seen[b.Type] = b
	return true
}

func (d *decoder) decode(body hcl.Body, path string, in VarInputs) *Playbook {
	p := &Playbook{File: path, Targets: &Targets{Hosts: []string{"all"}}, Settings: &Settings{}}
	c := d.content(body, topSchema)
	if c == nil {
		return p
	}
	// Variables first: every other block may refer to them.
	var varBlocks []*hcl.Block
	for _, b := range c.Blocks {
		if b.Type == "variable" {
			varBlocks = append(varBlocks, b)
		}
	}
	p.Variables, p.vars = d.variables(varBlocks, in)
	d.ctx = expr.NewContext(map[string]cty.Value{"var": p.vars})

	seen := map[string]*hcl.Block{}
	stageNames := map[string]*hcl.Block{}
	var pbBlock, stepsBlock *hcl.Block
	for _, b := range c.Blocks {
		switch b.Type {
		case "variable":
		case "playbook":
			if d.once(seen, b) {
				pbBlock = b
				d.playbookBlock(p, b)
			}
		case "targets":
			if d.once(seen, b) {
				d.targets(p, b)
			}
		case "settings":
			if d.once(seen, b) {
				d.settings(p, b)
			}
		case "canary", "batch", "remaining":
			d.stage(p, b, stageNames)
		case "before", "after":
			if d.once(seen, b) {
				checks := d.checks(b, actionKinds, rootsHost, true)
				if b.Type == "before" {
					p.Before = checks
				} else {
					p.After = checks
				}
			}
		case "health":
			if d.once(seen, b) {
				p.Health = d.checks(b, healthKinds, rootsHost, true)
			}
		case "steps":
			if d.once(seen, b) {
				stepsBlock = b
				p.Steps = d.steps(b)
			}
		case "rollback":
			if d.once(seen, b) {
				p.Rollback = d.steps(b)
			}
		case "notify":
			if d.once(seen, b) {
				p.Notify = d.notify(b)
			}
		}
	}
	start := hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos}
	if pbBlock == nil {
		d.errorf(start, "Missing playbook block",
			`A playbook starts with a block naming it: playbook "NAME" { description = "…" }.`)
	}
	switch {
	case stepsBlock == nil:
		d.errorf(start, "Missing steps block", "A playbook needs a steps block with at least one step (%s).", joinKinds(stepOrder))
	case len(p.Steps) == 0 && emptyBody(stepsBlock.Body):
		d.errorf(stepsBlock.DefRange, "No steps", "The steps block holds no step; add at least one of %s.", joinKinds(stepOrder))
	}
	d.stageOrder(p)
	return p
}

// at renders a position as FILE:LINE:COL.
func at(r hcl.Range) string { return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column) }

// emptyBody tells whether a block holds no nested block at all (so a body whose
// blocks were all rejected is not reported twice).
func emptyBody(b hcl.Body) bool {
	sb, ok := b.(*hclsyntax.Body)
	return ok && len(sb.Blocks) == 0
}

func joinKinds(kinds []string) string {
	s := ""
	for i, k := range kinds {
		switch {
		case i == 0:
		case i == len(kinds)-1:
			s += " or "
		default:
			s += ", "
		}
		s += k
	}
	return s
}

func (d *decoder) playbookBlock(p *Playbook, b *hcl.Block) {
	p.Name = b.Labels[0]
	if p.Name == "" || !safeName.MatchString(p.Name) {
		d.errorf(b.LabelRanges[0], "Invalid playbook name",
			"%q is not a valid playbook name: start with a letter or digit, then letters, digits and \"@._+:-\" (it names the lock and the reports).", p.Name)
	}
	c := d.content(b.Body, &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "description"}}})
	if a := c.Attributes["description"]; a != nil {
		p.Description = d.str(a, fieldSpec{kind: kString})
	}
}

func (d *decoder) targets(p *Playbook, b *hcl.Block) {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "hosts"}, {Name: "where"}}})
	if a := c.Attributes["hosts"]; a != nil {
		hosts := d.stringList(a)
		if hosts != nil && len(hosts) == 0 {
			d.errorf(a.Expr.Range(), `Invalid value for "hosts"`, `The list of patterns is empty; use ["all"] for every host.`)
		}
		if len(hosts) > 0 {
			p.Targets.Hosts = hosts
		}
	}
	if a := c.Attributes["where"]; a != nil {
		if _, st := d.eval(a.Expr, rootsWhere); st != evalFailed {
			p.Targets.Where = a.Expr
		}
	}
}

var daysOfWeek = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

func (d *decoder) settings(p *Playbook, b *hcl.Block) {
	c := d.content(b.Body, &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "forks"}, {Name: "become"}, {Name: "become_user"},
			{Name: "step_timeout"}, {Name: "facter"}, {Name: "lock"}},
		Blocks: []hcl.BlockHeaderSchema{{Type: "window"}},
	})
	s := p.Settings
	for _, a := range sortedAttrs(c.Attributes) {
		switch a.Name {
		case "forks":
			s.Forks = d.integer(a, 1, 10000)
		case "become", "lock", "facter":
			if v, ok := d.boolean(a); ok {
				switch a.Name {
				case "become":
					s.Become = &v
				case "lock":
					s.Lock = &v
				default:
					s.Facter = v
				}
			}
		case "become_user":
			s.BecomeUser = d.str(a, fieldSpec{safe: safeName, safeWhat: "user name"})
		case "step_timeout":
			s.StepTimeout = d.duration(a, time.Second, 24*time.Hour)
		}
	}
	for _, wb := range c.Blocks {
		if s.Window != nil {
			d.errorf(wb.DefRange, "Duplicate window block", "Only one window block is allowed in settings.")
			continue
		}
		s.Window = d.window(wb)
	}
}

func (d *decoder) window(b *hcl.Block) *Window {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "days"}, {Name: "start", Required: true}, {Name: "end", Required: true}, {Name: "timezone"}}})
	w := &Window{Timezone: "UTC"}
	for _, a := range sortedAttrs(c.Attributes) {
		switch a.Name {
		case "days":
			v, ok := d.typed(a, fieldSpec{name: "days", kind: kStrings})
			if !ok {
				continue
			}
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				if !contains(daysOfWeek, e.AsString()) {
					d.errorf(a.Expr.Range(), `Invalid value for "days"`, "%q is not a day; use %s.", e.AsString(), quoteList(daysOfWeek))
					continue
				}
				w.Days = append(w.Days, e.AsString())
			}
		case "start", "end":
			s := d.str(a, fieldSpec{validate: clock})
			if a.Name == "start" {
				w.Start = s
			} else {
				w.End = s
			}
		case "timezone":
			w.Timezone = d.str(a, fieldSpec{validate: timezone})
		}
	}
	return w
}

func clock(s string) string {
	if t, err := time.Parse("15:04", s); err != nil || t.Format("15:04") != s {
		return fmt.Sprintf("%q is not a time of day; write HH:MM on a 24-hour clock, such as \"01:00\".", s)
	}
	return ""
}

func timezone(s string) string {
	if _, err := time.LoadLocation(s); err != nil || s == "" || s == "Local" {
		return fmt.Sprintf("%q is not an IANA time zone such as \"UTC\" or \"Europe/Berlin\".", s)
	}
	return ""
}

func (d *decoder) stage(p *Playbook, b *hcl.Block, names map[string]*hcl.Block) {
	st := &Stage{Kind: StageKind(b.Type), Name: b.Type, DeclRange: b.DefRange}
	attrs := []hcl.AttributeSchema{{Name: "max_failed"}}
	switch st.Kind {
	case KindCanary:
		attrs = append(attrs, hcl.AttributeSchema{Name: "hosts"}, hcl.AttributeSchema{Name: "spread_by"})
	case KindBatch:
		st.Name = b.Labels[0]
		attrs = append(attrs, hcl.AttributeSchema{Name: "hosts"}, hcl.AttributeSchema{Name: "size"},
			hcl.AttributeSchema{Name: "pause"}, hcl.AttributeSchema{Name: "parallel"})
		if st.Name == "" || !hclsyntax.ValidIdentifier(st.Name) || st.Name == "canary" || st.Name == "remaining" {
			d.errorf(b.LabelRanges[0], "Invalid stage name",
				"%q is not a valid batch name: use letters, digits, \"_\" and \"-\", starting with a letter; \"canary\" and \"remaining\" are taken.", st.Name)
		}
	case KindRemaining:
		attrs = append(attrs, hcl.AttributeSchema{Name: "parallel"})
	}
	if prev, dup := names[st.Name]; dup {
		what := fmt.Sprintf("stage %q", st.Name)
		if st.Kind != KindBatch {
			what = st.Name + " block"
		}
		d.errorf(b.DefRange, "Duplicate stage", "There is already a %s at %s; stage names must be unique.", what, at(prev.DefRange))
	} else {
		names[st.Name] = b
	}
	c := d.content(b.Body, &hcl.BodySchema{Attributes: attrs, Blocks: []hcl.BlockHeaderSchema{{Type: "gate"}}})
	if st.Kind == KindCanary {
		st.Hosts = Quantity{Set: true, Count: 1} // the default canary is one host
	}
	for _, a := range sortedAttrs(c.Attributes) {
		switch a.Name {
		case "hosts":
			if q := d.quantity(a, 1, false); q.Set {
				st.Hosts = q
			}
		case "size":
			st.Size = d.quantity(a, 1, false)
		case "max_failed":
			st.MaxFailed = d.quantity(a, 0, true)
		case "parallel":
			st.Parallel = d.integer(a, 1, 10000)
		case "pause":
			st.Pause = d.duration(a, 0, 24*time.Hour)
		case "spread_by":
			if _, stt := d.eval(a.Expr, rootsWhere); stt != evalFailed {
				st.SpreadBy = a.Expr
			}
		}
	}
	for _, gb := range c.Blocks {
		if st.Gate != nil {
			d.errorf(gb.DefRange, "Duplicate gate block", "A stage has at most one gate; put all its checks in it.")
			continue
		}
		st.Gate = d.gate(gb)
	}
	p.Stages = append(p.Stages, st)
}

// stageOrder enforces canary first, remaining last, each at most once.
func (d *decoder) stageOrder(p *Playbook) {
	for i, st := range p.Stages {
		switch {
		case st.Kind == KindCanary && i > 0:
			d.errorf(st.DeclRange, "Canary is not the first stage",
				"The canary stage must come before every batch and the remaining stage; move it up.")
		case st.Kind == KindRemaining && i < len(p.Stages)-1:
			d.errorf(st.DeclRange, "Remaining is not the last stage",
				"The remaining stage takes every host left, so it must be the last stage; %s %q comes after it.",
				p.Stages[len(p.Stages)-1].Kind, p.Stages[len(p.Stages)-1].Name)
		}
	}
}

func (d *decoder) gate(b *hcl.Block) *Gate {
	g := &Gate{Timeout: DefaultGateTimeout, Interval: DefaultGateInterval}
	schema := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "wait"}, {Name: "timeout"}, {Name: "interval"}, {Name: "confirm"}}}
	for _, k := range gateKinds {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: k, LabelNames: []string{"name"}})
	}
	c := d.content(b.Body, schema, gateKinds...)
	for _, a := range sortedAttrs(c.Attributes) {
		switch a.Name {
		case "wait":
			g.Wait = d.duration(a, 0, 24*time.Hour)
		case "timeout":
			g.Timeout = d.duration(a, time.Second, 24*time.Hour)
		case "interval":
			g.Interval = d.duration(a, 100*time.Millisecond, time.Hour)
		case "confirm":
			g.Confirm, _ = d.boolean(a)
		}
	}
	for _, cb := range c.Blocks {
		if chk := d.block(cb, checkKinds[cb.Type], rootsGate, false); chk != nil {
			g.Checks = append(g.Checks, &Check{*chk})
		}
	}
	return g
}

// checks decodes a before, after or health block.
func (d *decoder) checks(b *hcl.Block, kinds []string, roots []string, when bool) []*Check {
	schema := &hcl.BodySchema{}
	for _, k := range kinds {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: k, LabelNames: []string{"name"}})
	}
	c := d.content(b.Body, schema, kinds...)
	var out []*Check
	for _, cb := range c.Blocks {
		if chk := d.block(cb, checkKinds[cb.Type], roots, when); chk != nil {
			out = append(out, &Check{*chk})
		}
	}
	return out
}

func (d *decoder) steps(b *hcl.Block) []*Step {
	schema := &hcl.BodySchema{}
	var optional []string
	for _, k := range stepOrder {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: k, LabelNames: []string{"name"}})
		if !stepKinds[k].labelRequired {
			optional = append(optional, k)
		}
	}
	c := d.content(b.Body, schema, optional...)
	var out []*Step
	for _, sb := range c.Blocks {
		if s := d.block(sb, stepKinds[sb.Type], rootsHost, true); s != nil {
			out = append(out, &Step{*s})
			d.stepRules(out[len(out)-1])
		}
	}
	return out
}

// block decodes one step or check: its label, `when`, and attributes, checking
// now those that refer only to `var`.
func (d *decoder) block(b *hcl.Block, ks kindSpec, roots []string, when bool) *block {
	blk := &block{Kind: b.Type, Name: b.Labels[0], DeclRange: b.DefRange, fields: map[string]*field{}, specs: ks.fields, dir: d.dir}
	if blk.Name == "" {
		blk.Name = b.Type
	}
	schema := &hcl.BodySchema{}
	for _, f := range ks.fields {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: f.name, Required: f.required})
	}
	if when {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: "when"})
	}
	c := d.content(b.Body, schema)
	for _, a := range sortedAttrs(c.Attributes) {
		if a.Name == "when" {
			if _, st := d.eval(a.Expr, roots); st != evalFailed {
				blk.When = a.Expr
			}
			continue
		}
		spec := blk.spec(a.Name)
		f := &field{attr: a}
		blk.fields[a.Name] = f
		v, st := d.evalField(blk, f, roots)
		if st != evalOK {
			continue
		}
		cv, diag := spec.check(v, a.Expr.Range())
		if diag != nil {
			d.add(diag)
			continue
		}
		f.value, f.static = cv, true
	}
	switch b.Type {
	case "package", "service":
		// The label names the package or service unless `name` does.
		if blk.fields["name"] == nil && !safeName.MatchString(b.Labels[0]) {
			d.errorf(b.LabelRanges[0], fmt.Sprintf("Invalid %s name", b.Type),
				"%q is not a valid %s name: only letters, digits and \"@._+:-\" are allowed, starting with a letter or digit.", b.Labels[0], b.Type)
		}
	}
	d.blockRules(blk)
	return blk
}

func (b *block) spec(name string) fieldSpec {
	for _, f := range b.specs {
		if f.name == name {
			return f
		}
	}
	return fieldSpec{name: name}
}

// staticString is the load-time value of a string attribute, when it has one.
func (b *block) staticString(name string) (string, bool) {
	f := b.fields[name]
	if f == nil || !f.static || f.value.IsNull() {
		return "", false
	}
	return f.value.AsString(), true
}

// blockRules checks rules that involve more than one attribute of a check.
func (d *decoder) blockRules(b *block) {
	if b.Kind == "prometheus" && b.fields["min"] == nil && b.fields["max"] == nil {
		d.errorf(b.DeclRange, "Missing threshold", "A prometheus check needs min, max or both: the query's value is compared with them.")
	}
}

// stepRules checks rules that involve more than one attribute of a step.
func (d *decoder) stepRules(s *Step) {
	switch s.Kind {
	case "package":
		state, _ := s.staticString("state")
		if v := s.fields["version"]; v != nil && (state == "absent" || state == "latest") {
			d.errorf(v.attr.NameRange, "Conflicting arguments",
				"A package step with state = %q takes no version; drop one of them.", state)
		}
	case "upload":
		src, cnt := s.fields["source"], s.fields["content"]
		switch {
		case src != nil && cnt != nil:
			d.errorf(cnt.attr.NameRange, "Conflicting arguments", "An upload takes either source (a file on the controller) or content, not both.")
		case src == nil && cnt == nil:
			d.errorf(s.DeclRange, "Missing upload source", "An upload needs source (a file on the controller) or content.")
		}
	case "puppet":
		action, known := s.staticString("action")
		if s.fields["action"] == nil {
			action, known = "run", true
		}
		if r := s.fields["reason"]; r != nil && known && action != "disable" {
			d.errorf(r.attr.NameRange, "Unexpected argument", "reason is only used with action = \"disable\".")
		}
		if s.fields["manifest"] != nil && known && action != "run" {
			d.errorf(s.fields["manifest"].attr.NameRange, "Unexpected argument", "manifest is only used by a Puppet run (action = \"run\").")
		}
	}
}

func (d *decoder) notify(b *hcl.Block) *Notify {
	c := d.content(b.Body, &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "webhook"}, {Name: "headers"}, {Name: "command"}, {Name: "timeout"},
	}})
	n := &Notify{}
	if c == nil {
		return n
	}
	if a := c.Attributes["webhook"]; a != nil {
		n.Webhook = d.str(a, fieldSpec{validate: validURL})
	}
	if a := c.Attributes["headers"]; a != nil {
		if v, ok := d.typed(a, fieldSpec{name: a.Name, kind: kStrMap}); ok {
			n.Headers = map[string]string{}
			for k, hv := range v.AsValueMap() {
				if hv.IsNull() {
					d.errorf(a.Expr.Range(), `Invalid value for "headers"`, "header %q is null.", k)
					continue
				}
				n.Headers[k] = hv.AsString()
			}
		}
		if c.Attributes["webhook"] == nil {
			d.errorf(a.NameRange, "Unexpected argument", "headers are only sent with a webhook.")
		}
	}
	if a := c.Attributes["command"]; a != nil {
		n.Command = d.str(a, fieldSpec{})
	}
	if a := c.Attributes["timeout"]; a != nil {
		n.Timeout = d.duration(a, time.Second, time.Hour)
	}
	if c.Attributes["webhook"] == nil && c.Attributes["command"] == nil {
		d.errorf(b.DefRange, "Missing notify target",
			`notify needs a webhook = "https://…" (the summary is POSTed as JSON), a command = "…" (it reads the summary on stdin), or both.`)
	}
	return n
}
