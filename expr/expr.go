// Package expr is the one place where drover evaluates HCL expressions: target
// selections (-S), playbook conditions and values. It supplies the function table,
// converts facts and inventory values into cty values, and implements drover's rule
// for references to facts a host does not have.
//
// The missing-reference rule: a reference such as facts.role is "missing" on a host
// when the path does not exist in that host's value (no such key, an index out of
// range, or a step through null or a scalar). Missing references are not errors.
// HCL evaluates both operands of && and || and lets a decisive side win even when the
// other side failed, so `facts.role == "db" || facts.processors.count > 8` is true on
// a host with 16 processors and no role fact. When the evaluation as a whole fails
// and the expression refers to a path the host lacks, the condition is false for
// that host ("no match") and the missing paths are reported so callers can warn
// about typos. Errors that are not explained by a missing path (a type mismatch, an
// unknown function) remain errors. try() and can() work as in Terraform.
package expr

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// ParseExpression parses one HCL expression given on the command line or in a
// string; filename names it in diagnostics ("<select>" for -S).
func ParseExpression(src, filename string) (e hcl.Expression, diags hcl.Diagnostics) {
	start := hcl.Pos{Line: 1, Column: 1, Byte: 0}
	// The parser is fed raw user input; should it ever panic, report a
	// diagnostic instead of crashing the command.
	defer func() {
		if r := recover(); r != nil {
			e = nil
			diags = hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Invalid expression",
				Detail:   fmt.Sprintf("The expression could not be parsed: %v.", r),
				Subject:  &hcl.Range{Filename: filename, Start: start, End: start},
			}}
		}
	}()
	e, diags = hclsyntax.ParseExpression([]byte(src), filename, start)
	if diags.HasErrors() {
		return nil, diags
	}
	return e, diags
}

// NewContext returns an EvalContext with Functions() and the given variables.
func NewContext(vars map[string]cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{Variables: vars, Functions: Functions()}
}

// Validate checks, before any host is evaluated, that e refers only to the named
// root variables and calls only functions known to Functions(). Catching these up
// front turns a typo into one clear error instead of a silent empty selection.
func Validate(e hcl.Expression, roots []string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	known := make(map[string]bool, len(roots))
	for _, r := range roots {
		known[r] = true
	}
	for _, t := range e.Variables() {
		if name := t.RootName(); !known[name] {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown variable",
				Detail:   fmt.Sprintf("There is no variable named %q here; available: %s.", name, strings.Join(sortedCopy(roots), ", ")),
				Subject:  t.SourceRange().Ptr(),
			})
		}
	}
	if node, ok := e.(hclsyntax.Node); ok {
		funcs := Functions()
		diags = append(diags, hclsyntax.VisitAll(node, func(n hclsyntax.Node) hcl.Diagnostics {
			call, ok := n.(*hclsyntax.FunctionCallExpr)
			if !ok {
				return nil
			}
			if _, ok := funcs[call.Name]; ok {
				return nil
			}
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Call to unknown function",
				Detail:   fmt.Sprintf("There is no function named %q.", call.Name),
				Subject:  call.NameRange.Ptr(),
			}}
		})...)
	}
	return diags
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// Ref is a static reference from an expression into a variable, e.g. facts.os.name.
type Ref struct {
	Root  string
	Path  []string // attribute names and index keys, numbers in decimal
	Range hcl.Range
}

// String renders the reference as HCL would: facts.os.name, facts["a.b"], facts.l[0].
func (r Ref) String() string {
	var b strings.Builder
	b.WriteString(r.Root)
	for _, p := range r.Path {
		switch {
		case hclsyntax.ValidIdentifier(p):
			b.WriteString("." + p)
		case isUint(p):
			b.WriteString("[" + p + "]")
		default:
			b.WriteString("[" + strconv.Quote(p) + "]")
		}
	}
	return b.String()
}

// Dotted is the path below the root joined with dots ("os.release.major"), the
// form -F keys and facts lookups use.
func (r Ref) Dotted() string { return strings.Join(r.Path, ".") }

func isUint(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// MissingRefs lists the static references in e, rooted at a variable of ctx, whose
// path does not exist in that variable's value; each is cut at the first step that
// fails (facts.os.nmae.x is reported as facts.os.nmae). References under a splat are
// checked up to the splat. Roots absent from ctx are not reported (Validate does).
func MissingRefs(e hcl.Expression, ctx *hcl.EvalContext) []Ref {
	return missingIn(e.Variables(), ctx)
}

func missingIn(travs []hcl.Traversal, ctx *hcl.EvalContext) []Ref {
	var out []Ref
	seen := map[string]bool{}
	for _, t := range travs {
		root := t.RootName()
		val, ok := ctx.Variables[root]
		if !ok {
			continue
		}
		var path []string
		for _, step := range t[1:] {
			seg, ok := segment(step)
			if !ok {
				break // splat or unsupported step: only the prefix is static
			}
			path = append(path, seg)
			if !val.IsKnown() {
				break
			}
			next, diags := step.TraversalStep(val)
			if diags.HasErrors() {
				r := Ref{Root: root, Path: path, Range: t.SourceRange()}
				if k := r.String(); !seen[k] {
					seen[k] = true
					out = append(out, r)
				}
				break
			}
			val = next
		}
	}
	return out
}

func segment(step hcl.Traverser) (string, bool) {
	switch s := step.(type) {
	case hcl.TraverseAttr:
		return s.Name, true
	case hcl.TraverseIndex:
		k := s.Key
		if !k.IsKnown() || k.IsNull() {
			return "", false
		}
		switch k.Type() {
		case cty.String:
			return k.AsString(), true
		case cty.Number:
			if bf := k.AsBigFloat(); bf.IsInt() {
				return bf.Text('f', 0), true
			}
			return k.AsBigFloat().Text('g', -1), true
		}
	}
	return "", false
}

// EvalBool evaluates e as a condition in ctx following the package's
// missing-reference rule: it returns false with the missing references, and no
// error, when evaluation fails on a host that lacks a referenced path. A null
// result is false. Any other failure, or a result that is not a bool, is an error
// diagnostic pointing at the expression.
func EvalBool(e hcl.Expression, ctx *hcl.EvalContext) (bool, []Ref, hcl.Diagnostics) {
	return NewCondition(e).Eval(ctx)
}

// Condition is a boolean expression prepared for evaluation on many hosts: its
// references are collected once.
type Condition struct {
	Expr hcl.Expression
	refs []hcl.Traversal
}

// NewCondition prepares e for repeated evaluation.
func NewCondition(e hcl.Expression) *Condition {
	return &Condition{Expr: e, refs: e.Variables()}
}

// Missing is MissingRefs for the condition.
func (c *Condition) Missing(ctx *hcl.EvalContext) []Ref { return missingIn(c.refs, ctx) }

// Eval is EvalBool for the condition.
func (c *Condition) Eval(ctx *hcl.EvalContext) (bool, []Ref, hcl.Diagnostics) {
	e := c.Expr
	missing := c.Missing(ctx)
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		if len(missing) > 0 {
			return false, missing, nil
		}
		return false, missing, diags
	}
	v, _ = v.UnmarkDeep()
	if !v.IsKnown() || v.IsNull() {
		return false, missing, diags
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		return false, missing, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect condition type",
			Detail:   fmt.Sprintf("The condition must yield a bool (true or false), not %s.", v.Type().FriendlyName()),
			Subject:  e.Range().Ptr(),
		})
	}
	return b.True(), missing, diags
}

// DiagError carries HCL diagnostics as an error. Error() renders each with its
// position and, when Source holds the text, the source line with a caret marker.
type DiagError struct {
	Diags  hcl.Diagnostics
	Source []byte // the text the diagnostics' ranges point into; may be nil
}

func (e *DiagError) Error() string { return FormatDiagnostics(e.Diags, e.Source) }

// FormatDiagnostics renders diagnostics as plain text:
//
//	<select>:1:15: Invalid expression: Expected the start of an expression, …
//	  facts.role ==
//	                ^
func FormatDiagnostics(diags hcl.Diagnostics, src []byte) string {
	var b strings.Builder
	for i, d := range diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString(": " + d.Detail)
		}
		if d.Subject != nil && src != nil {
			b.WriteString(snippet(src, *d.Subject))
		}
	}
	return b.String()
}

// snippet returns "\n  LINE\n  ^^^" for the first line of rng, or "" when the
// range does not fit src.
func snippet(src []byte, rng hcl.Range) string {
	start, end := rng.Start.Byte, rng.End.Byte
	if start < 0 || start > len(src) || end < start {
		return ""
	}
	if end > len(src) {
		end = len(src)
	}
	ls := start
	for ls > 0 && src[ls-1] != '\n' {
		ls--
	}
	le := start
	for le < len(src) && src[le] != '\n' {
		le++
	}
	if end > le {
		end = le
	}
	line := strings.TrimRight(string(src[ls:le]), "\r")
	var pad strings.Builder
	for _, c := range string(src[ls:start]) {
		if c == '\t' {
			pad.WriteByte('\t') // keep tabs so the caret lines up
		} else {
			pad.WriteByte(' ')
		}
	}
	n := max(utf8.RuneCount(src[start:end]), 1)
	return "\n  " + line + "\n  " + pad.String() + strings.Repeat("^", n)
}

// Lookup finds a dotted path such as "os.release.major" in nested facts (maps and
// lists as decoded from JSON). Every split point is tried, so a top-level name that itself
// contains dots (external facts may) is found too; list elements are addressed by index
// ("processors.models.0"). Facts and filters share it so they agree on what a path means.
func Lookup(v any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	switch t := v.(type) {
	case map[string]any:
		if x, ok := t[path]; ok {
			return x, true
		}
		for i := 0; i < len(path); i++ {
			if path[i] != '.' {
				continue
			}
			if sub, ok := t[path[:i]]; ok {
				if x, ok := Lookup(sub, path[i+1:]); ok {
					return x, true
				}
			}
		}
	case []any:
		head, rest, more := strings.Cut(path, ".")
		n, err := strconv.Atoi(head)
		if err != nil || n < 0 || n >= len(t) {
			return nil, false
		}
		if !more {
			return t[n], true
		}
		return Lookup(t[n], rest)
	}
	return nil, false
}
