package playbook

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/drover-sh/drover/expr"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// EnvPrefix prefixes environment variables that set playbook variables.
const EnvPrefix = "DROVER_VAR_"

// VarInputs are the values given for playbook variables. Later sources win:
// defaults, then Environ (DROVER_VAR_name=value), then Files in order, then
// Flags in order.
type VarInputs struct {
	Flags   []string // "name=value" from --var
	Files   []string // --var-file paths: HCL (or .json) files of name = value
	Environ []string // os.Environ() form; only DROVER_VAR_* entries are read
}

type varValue struct {
	val    cty.Value
	source string // for messages: never the value itself
}

// variables decodes the variable blocks and resolves their values. It returns
// them and the `var` object (unresolved ones are unknown, so expressions using
// them are not evaluated and no follow-on error is reported).
func (d *decoder) variables(blocks []*hcl.Block, in VarInputs) ([]*Variable, cty.Value) {
	var vars []*Variable
	byName := map[string]*Variable{}
	for _, b := range blocks {
		v := d.variable(b)
		if prev, dup := byName[v.Name]; dup {
			d.errorf(b.DefRange, "Duplicate variable", "The variable %q was already declared at %s.", v.Name, at(prev.DeclRange))
			continue
		}
		byName[v.Name] = v
		vars = append(vars, v)
	}

	given := map[string]varValue{}
	tried := map[string]bool{} // given, but invalid: already reported
	set := func(name, raw, source string, rng *hcl.Range, undeclaredIsError bool) {
		v := byName[name]
		if v == nil {
			if undeclaredIsError {
				d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
					Detail:  fmt.Sprintf("%s sets %q, but the playbook declares no such variable%s.", source, name, declared(vars)),
					Subject: rng})
			}
			return
		}
		tried[name] = true
		if val, ok := d.rawValue(v, raw, source); ok {
			given[name] = varValue{val: val, source: source}
		}
	}
	env := append([]string(nil), in.Environ...)
	sort.Strings(env) // duplicates aside, order does not matter; sorting keeps messages stable
	for _, kv := range env {
		k, val, ok := strings.Cut(kv, "=")
		if name, isVar := strings.CutPrefix(k, EnvPrefix); ok && isVar && name != "" {
			set(name, val, "The environment variable "+k, nil, false)
		}
	}
	for _, path := range in.Files {
		d.varFile(path, byName, given, tried, vars)
	}
	for _, kv := range in.Flags {
		k, val, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid --var",
				Detail: fmt.Sprintf("--var takes name=value; %q has no name or no \"=\".", truncName(kv))})
			continue
		}
		set(k, val, "--var "+k, nil, true)
	}

	attrs := map[string]cty.Value{}
	for _, v := range vars {
		switch g, ok := given[v.Name]; {
		case ok:
			v.Value = d.convertVar(v, g.val, g.source, nil)
		case v.HasDefault:
			v.Value = v.Default
		case tried[v.Name] || v.defaultInvalid:
			v.Value = cty.DynamicVal // its problem is reported already
		default:
			v.Value = cty.DynamicVal
			d.errorf(v.DeclRange, "Missing required variable",
				"The variable %q has no default, so it must be set: --var %s=VALUE, a --var-file, or %s%s.", v.Name, v.Name, EnvPrefix, v.Name)
		}
		attrs[v.Name] = v.Value
	}
	obj := cty.ObjectVal(attrs)
	ctx := expr.NewContext(map[string]cty.Value{"var": obj})
	for _, v := range vars {
		if !v.Value.IsWhollyKnown() {
			continue
		}
		for _, val := range v.Validations {
			res, diags := val.Condition.Value(ctx)
			if diags.HasErrors() {
				d.add(scrub(diags)...)
				continue
			}
			ok, err := convert.Convert(res, cty.Bool)
			if err != nil || ok.IsNull() || !ok.IsKnown() {
				d.errorf(val.Condition.Range(), "Invalid validation condition", "The condition must yield true or false.")
				continue
			}
			if ok.False() {
				d.errorf(val.Condition.Range(), "Invalid value for variable",
					"%s\n\nThis was checked by the validation rule of variable %q.", val.ErrorMessage, v.Name)
			}
		}
	}
	return vars, obj
}

func truncName(kv string) string {
	// The value part may be secret; show only what precedes it.
	k, _, _ := strings.Cut(kv, "=")
	if len(k) > 40 {
		k = k[:40] + "…"
	}
	return k
}

func declared(vars []*Variable) string {
	if len(vars) == 0 {
		return ""
	}
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.Name
	}
	return " (declared: " + strings.Join(names, ", ") + ")"
}

func (d *decoder) variable(b *hcl.Block) *Variable {
	v := &Variable{Name: b.Labels[0], Type: cty.DynamicPseudoType, DeclRange: b.DefRange, Value: cty.DynamicVal}
	if !hclsyntax.ValidIdentifier(v.Name) {
		d.errorf(b.LabelRanges[0], "Invalid variable name", "%q is not a valid name: use letters, digits, \"_\" and \"-\", starting with a letter.", v.Name)
	}
	c := d.content(b.Body, &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "validation"}},
	})
	if a := c.Attributes["type"]; a != nil {
		ty, diags := typeexpr.TypeConstraint(a.Expr)
		d.add(diags...)
		if !diags.HasErrors() {
			v.Type = ty
		}
	}
	if a := c.Attributes["description"]; a != nil {
		v.Description = d.literalString(a)
	}
	if a := c.Attributes["sensitive"]; a != nil {
		val, diags := a.Expr.Value(nil)
		d.add(diags...)
		// An erroneous expression yields an unknown value, on which True panics.
		if b, err := convert.Convert(val, cty.Bool); err != nil || !b.IsKnown() || b.IsNull() {
			if !diags.HasErrors() {
				d.errorf(a.Expr.Range(), `Invalid value for "sensitive"`, "Expected true or false.")
			}
		} else {
			v.Sensitive = b.True()
		}
	}
	if a := c.Attributes["default"]; a != nil {
		val, diags := a.Expr.Value(nil) // defaults are literals: no var, no functions
		d.add(scrub(diags)...)
		if !diags.HasErrors() {
			rng := a.Expr.Range()
			v.Default = d.convertVar(v, val, "The default", &rng)
			v.HasDefault = v.Default.IsWhollyKnown()
		}
		v.defaultInvalid = !v.HasDefault
	}
	for _, vb := range c.Blocks {
		vc := d.content(vb.Body, &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
			{Name: "condition", Required: true}, {Name: "error_message", Required: true}}})
		val := &Validation{}
		if a := vc.Attributes["condition"]; a != nil {
			if diags := expr.Validate(a.Expr, rootsVar); diags.HasErrors() {
				d.add(diags...)
			} else {
				val.Condition = a.Expr
			}
		}
		if a := vc.Attributes["error_message"]; a != nil {
			val.ErrorMessage = d.literalString(a)
		}
		if val.Condition != nil {
			v.Validations = append(v.Validations, val)
		}
	}
	return v
}

func (d *decoder) literalString(a *hcl.Attribute) string {
	val, diags := a.Expr.Value(nil)
	d.add(diags...)
	if diags.HasErrors() {
		return ""
	}
	s, err := convert.Convert(val, cty.String)
	if err != nil || s.IsNull() {
		d.errorf(a.Expr.Range(), fmt.Sprintf("Invalid value for %q", a.Name), "Expected a string.")
		return ""
	}
	return s.AsString()
}

// rawValue turns a value given as text (--var, DROVER_VAR_) into a cty value:
// verbatim for string and untyped variables, else parsed as an HCL expression
// (["a", "b"], 3, true, { k = "v" }).
func (d *decoder) rawValue(v *Variable, raw, source string) (cty.Value, bool) {
	if v.Type == cty.String || v.Type == cty.DynamicPseudoType {
		return cty.StringVal(raw), true
	}
	e, diags := hclsyntax.ParseExpression([]byte(raw), "<"+source+">", hcl.InitialPos)
	if !diags.HasErrors() {
		var val cty.Value
		val, diags = e.Value(nil)
		if !diags.HasErrors() {
			return val, true
		}
	}
	// The value may be a secret: describe the problem, never echo the input.
	d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
		Detail: fmt.Sprintf("%s: the value for %q is not a valid %s (%s).", source, v.Name, typeexpr.TypeString(v.Type), diags[0].Summary)})
	return cty.NilVal, false
}

// convertVar converts a value to the variable's type; rng points at the value's
// source when it has one.
func (d *decoder) convertVar(v *Variable, val cty.Value, source string, rng *hcl.Range) cty.Value {
	cv, err := convert.Convert(val, v.Type)
	if err != nil {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
			Detail:  fmt.Sprintf("%s for %q is not a valid %s: %s.", source, v.Name, typeexpr.TypeString(v.Type), err),
			Subject: rng})
		return cty.DynamicVal
	}
	return cv
}

// varFile reads name = value pairs; names the playbook does not declare are
// warned about, since one file often serves several playbooks.
func (d *decoder) varFile(path string, byName map[string]*Variable, given map[string]varValue, tried map[string]bool, vars []*Variable) {
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.EqualFold(filepath.Ext(path), ".json") {
		f, diags = d.parser.ParseJSONFile(path)
	} else {
		f, diags = d.parser.ParseHCLFile(path)
	}
	d.add(diags...)
	if diags.HasErrors() || f == nil {
		return
	}
	attrs, diags := f.Body.JustAttributes()
	d.add(diags...)
	for _, a := range sortedAttrs(attrs) {
		v := byName[a.Name]
		if v == nil {
			d.add(&hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Undeclared variable",
				Detail:  fmt.Sprintf("The playbook declares no variable %q%s; this value is ignored.", a.Name, declared(vars)),
				Subject: a.NameRange.Ptr()})
			continue
		}
		tried[a.Name] = true
		val, vd := a.Expr.Value(nil)
		d.add(scrub(vd)...)
		if vd.HasErrors() {
			continue
		}
		rng := a.Expr.Range()
		if cv := d.convertVar(v, val, "The value in "+path, &rng); cv.IsWhollyKnown() {
			given[a.Name] = varValue{val: cv, source: "The value in " + path}
		}
	}
}
