package playbook

import (
	"errors"
	"fmt"
	"strings"

	"al.essio.dev/pkg/shellescape"
	"github.com/drover-sh/drover/expr"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// Shell-bound attributes (a command's `run`) are templates whose literal text is
// shell syntax written by the playbook author, while every interpolated value
// (facts, host vars, variables) is data. Before evaluation such an expression is
// rewritten so that each interpolation passes through a quoting function chosen
// for the shell context it sits in (bare word, '…' or "…"); raw(x) opts out.

// rawMark marks a value that raw() let through unquoted in a shell template.
type rawMarkT struct{}

var rawMark = rawMarkT{}

// Quoting functions the rewritten expression calls, one per shell context.
const (
	fnQuoteWord   = "shell_quote"
	fnQuoteSingle = "shell_quote_in_single_quotes"
	fnQuoteDouble = "shell_quote_in_double_quotes"
)

var errNUL = errors.New("the value contains a NUL byte, which no shell command can carry")

// shellFunctions overrides raw (which marks instead of being the identity) and
// adds the quoting functions; it is layered over the host's context.
var shellFunctions = map[string]function.Function{
	"raw": function.New(&function.Spec{
		Description: "Marks a value to be spliced into a shell command unquoted.",
		Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowMarked: true, AllowNull: true, AllowDynamicType: true}},
		Type:        func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return args[0].Mark(rawMark), nil
		},
	}),
	fnQuoteWord:   quoteFunc(quoteWord),
	fnQuoteSingle: quoteFunc(quoteInSingle),
	fnQuoteDouble: quoteFunc(quoteInDouble),
}

// shellContext is ctx with raw() marking and the quoting functions.
func shellContext(ctx *hcl.EvalContext) *hcl.EvalContext {
	c := ctx.NewChild()
	c.Functions = shellFunctions
	return c
}

func quoteWord(s string) string { return shellescape.Quote(s) }

// Inside '…' nothing is special but the closing quote: close, escape it, reopen.
func quoteInSingle(s string) string { return strings.ReplaceAll(s, `'`, `'\''`) }

// Inside "…" the shell still expands $ and `, and \ and " escape.
var doubleQuoter = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")

func quoteInDouble(s string) string { return doubleQuoter.Replace(s) }

// quoteFunc renders a value for one shell context: strings, numbers and bools
// quoted; lists, sets and tuples element by element, space-joined; a value
// marked by raw() verbatim.
func quoteFunc(quote func(string) string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowMarked: true, AllowNull: true, AllowDynamicType: true}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			s, err := renderShell(args[0], quote)
			if err != nil {
				return cty.NilVal, err
			}
			return cty.StringVal(s), nil
		},
	})
}

func renderShell(v cty.Value, quote func(string) string) (string, error) {
	v, marks := v.Unmark()
	if _, ok := marks[rawMark]; ok {
		quote = func(s string) string { return s }
	}
	if v.IsNull() {
		return "", errors.New("the value is null")
	}
	if !v.IsKnown() {
		return "", errors.New("the value is not known yet")
	}
	t := v.Type()
	if t.IsListType() || t.IsSetType() || t.IsTupleType() {
		parts := make([]string, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			s, err := renderShell(e, quote)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " "), nil
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil {
		return "", fmt.Errorf("a %s cannot be part of a command", t.FriendlyName())
	}
	sv, _ = sv.UnmarkDeep()
	s := sv.AsString()
	if strings.IndexByte(s, 0) >= 0 {
		return "", errNUL
	}
	return quote(s), nil
}

// shState is where a shell lexer stands after some literal text: the stack of
// open contexts and the flags that make an interpolation unsafe.
type shState struct {
	stack   []shFrame // innermost last; the bottom is the bare command line
	esc     bool      // a backslash waits for its character
	comment bool      // inside a # comment, until the end of the line
	heredoc bool      // a << here-document was opened: its body is not shell syntax
	word    bool      // the last character continues a word (a # here is not a comment)
	cur     string    // the bare word being read, to spot case … esac
}

type shFrame struct {
	kind   byte // 'u' bare, 's' single-quoted, 'd' double-quoted, 'b' backticks
	parens int  // open plain parentheses within a bare frame
	cases  int  // open case … esac, whose patterns end in a ')' that closes nothing
}

func newShState() *shState { return &shState{stack: []shFrame{{kind: 'u'}}} }

func (s *shState) clone() *shState {
	c := *s
	c.stack = append([]shFrame(nil), s.stack...)
	return &c
}

func (s *shState) key() string {
	var b strings.Builder
	for _, f := range s.stack {
		fmt.Fprintf(&b, "%c%d.%d", f.kind, f.parens, f.cases)
	}
	fmt.Fprintf(&b, "|%t%t%t", s.esc, s.comment, s.heredoc)
	return b.String()
}

func (s *shState) top() *shFrame { return &s.stack[len(s.stack)-1] }
func (s *shState) push(k byte)   { s.stack = append(s.stack, shFrame{kind: k}) }
func (s *shState) pop() {
	if len(s.stack) > 1 {
		s.stack = s.stack[:len(s.stack)-1]
	}
}

// feed advances the lexer over literal template text. It knows quotes, escapes,
// $( ), backticks, comments and here-documents: enough to tell which quoting an
// interpolation needs, and to refuse places where no quoting is safe.
func (s *shState) feed(text string) {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if s.comment {
			if c == '\n' {
				s.comment, s.word = false, false
			}
			continue
		}
		if s.esc {
			s.esc, s.word = false, true
			continue
		}
		f := s.top()
		switch f.kind {
		case 's':
			if c == '\'' {
				s.pop()
			}
			s.word = true
			continue
		case 'd':
			switch {
			case c == '\\':
				s.esc = true
			case c == '"':
				s.pop()
			case c == '$' && i+1 < len(text) && text[i+1] == '(':
				i++
				s.push('u')
				s.word, s.cur = false, "" // a new command line starts
				continue
			case c == '`':
				s.push('b')
			}
			s.word = true
			continue
		}
		// bare or backticks
		sep := strings.IndexByte(" \t\n;&|()<>", c) >= 0
		if sep {
			switch s.cur {
			case "case":
				f.cases++
			case "esac":
				f.cases = max(f.cases-1, 0)
			}
			s.cur = ""
		} else if c >= 'a' && c <= 'z' && (s.cur != "" || !s.word) {
			s.cur += string(c)
		} else {
			s.cur = "-" // not a keyword
		}
		switch {
		case c == '\\':
			s.esc = true
		case c == '\'':
			s.push('s')
		case c == '"':
			s.push('d')
		case c == '$' && i+1 < len(text) && text[i+1] == '(':
			i++
			s.push('u')
			s.word, s.cur = false, "" // a new command line starts
			continue
		case c == '`':
			if f.kind == 'b' {
				s.pop()
			} else {
				s.push('b')
			}
		case c == '(':
			f.parens++
		case c == ')':
			switch {
			case f.parens > 0:
				f.parens--
			case f.cases > 0: // the end of a case pattern
			default:
				s.pop()
			}
		case c == '#' && !s.word:
			s.comment = true
		case c == '<' && strings.HasPrefix(text[i:], "<<") && !strings.HasPrefix(text[i:], "<<<"):
			s.heredoc = true
			i++
		}
		s.word = !sep
	}
}

// quoteFor names the quoting function for an interpolation at this point, or
// says why none is safe.
func (s *shState) quoteFor() (string, string) {
	switch {
	case s.esc:
		return "", "The interpolation follows a backslash, which would escape only the first character of the quoted value; remove the backslash."
	case s.comment:
		return "", "The interpolation is inside a shell comment, where a newline in the value would start a new command; remove it or use raw()."
	case s.heredoc:
		return "", "The interpolation follows a here-document (<<), whose body is not shell syntax and cannot be quoted; pipe the value in instead (printf '%s\\n' ${…} | cmd) or use raw()."
	}
	for _, f := range s.stack {
		if f.kind == 'b' {
			return "", "The interpolation is inside backticks, where quoting does not nest; use $( ) instead."
		}
	}
	switch s.top().kind {
	case 's':
		return fnQuoteSingle, ""
	case 'd':
		return fnQuoteDouble, ""
	}
	return fnQuoteWord, ""
}

// shellExpr rewrites a shell-bound attribute's expression so that every
// interpolated value is quoted for its place in the command. Literal template
// text stays verbatim; %{if} and %{for} directives keep working, but each branch
// and loop body must close the quotes it opens. An expression that is not a
// template (var.cmd, format(…)) is one value and is quoted as one word.
func shellExpr(e hcl.Expression) (hcl.Expression, hcl.Diagnostics) {
	se, ok := e.(hclsyntax.Expression)
	if !ok {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unsupported expression",
			Detail: "A command must be written in HCL native syntax.", Subject: e.Range().Ptr()}}
	}
	var diags hcl.Diagnostics
	out := rewriteShell(se, newShState(), &diags)
	return out, diags
}

func rewriteShell(e hclsyntax.Expression, st *shState, diags *hcl.Diagnostics) hclsyntax.Expression {
	switch t := e.(type) {
	case *hclsyntax.LiteralValueExpr:
		if t.Val.Type() == cty.String && t.Val.IsKnown() && !t.Val.IsNull() {
			st.feed(t.Val.AsString())
		}
		return t
	case *hclsyntax.TemplateExpr:
		parts := make([]hclsyntax.Expression, len(t.Parts))
		for i, p := range t.Parts {
			parts[i] = rewritePart(p, st, diags)
		}
		return &hclsyntax.TemplateExpr{Parts: parts, SrcRange: t.SrcRange}
	case *hclsyntax.TemplateWrapExpr:
		return quoteCall(t.Wrapped, st, diags)
	case *hclsyntax.ParenthesesExpr:
		return &hclsyntax.ParenthesesExpr{Expression: rewriteShell(t.Expression, st, diags), SrcRange: t.SrcRange}
	case *hclsyntax.ConditionalExpr:
		// cond ? "a ${x}" : "b": each result is a command of its own.
		return &hclsyntax.ConditionalExpr{Condition: t.Condition,
			TrueResult:  rewriteShell(t.TrueResult, st.clone(), diags),
			FalseResult: rewriteShell(t.FalseResult, st.clone(), diags), SrcRange: t.SrcRange}
	}
	return quoteCall(e, st, diags)
}

// rewritePart rewrites one part of a template, where directives appear as a
// ConditionalExpr (%{if}) or a TemplateJoinExpr over a ForExpr (%{for}).
func rewritePart(p hclsyntax.Expression, st *shState, diags *hcl.Diagnostics) hclsyntax.Expression {
	switch t := p.(type) {
	case *hclsyntax.LiteralValueExpr:
		return rewriteShell(t, st, diags)
	case *hclsyntax.ConditionalExpr:
		// %{if} (or ${c ? "…" : "…"}: either way the branches' literal text
		// is the author's shell syntax and their interpolations are quoted).
		if _, isTmpl := t.TrueResult.(*hclsyntax.TemplateExpr); !isTmpl {
			break
		}
		a, b := st.clone(), st.clone()
		out := &hclsyntax.ConditionalExpr{Condition: t.Condition,
			TrueResult: rewriteShell(t.TrueResult, a, diags), FalseResult: rewriteShell(t.FalseResult, b, diags), SrcRange: t.SrcRange}
		if a.key() != b.key() {
			*diags = append(*diags, unbalanced(t.SrcRange, "%{if}"))
		}
		*st = *a
		return out
	case *hclsyntax.TemplateJoinExpr:
		fe, ok := t.Tuple.(*hclsyntax.ForExpr)
		if !ok {
			break
		}
		body := st.clone()
		nf := *fe
		nf.ValExpr = rewriteShell(fe.ValExpr, body, diags)
		if body.key() != st.key() {
			*diags = append(*diags, unbalanced(fe.SrcRange, "%{for}"))
		}
		return &hclsyntax.TemplateJoinExpr{Tuple: &nf}
	}
	return quoteCall(p, st, diags)
}

func unbalanced(rng hcl.Range, what string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unbalanced quotes in a command template",
		Detail:  fmt.Sprintf("Each branch of a %s directive must close the quotes, $( ) and backticks it opens, so drover can tell how to quote what follows.", what),
		Subject: rng.Ptr()}
}

// quoteCall wraps an interpolated expression in the quoting function for the
// lexer's current context; the value then continues the current word.
func quoteCall(e hclsyntax.Expression, st *shState, diags *hcl.Diagnostics) hclsyntax.Expression {
	fn, why := st.quoteFor()
	rng := e.Range()
	if why != "" {
		if !callsRaw(e) {
			*diags = append(*diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsafe interpolation in a command", Detail: why, Subject: rng.Ptr()})
		}
		fn = fnQuoteWord // raw(): verbatim whatever the context
	}
	st.word, st.cur = true, "-"
	return &hclsyntax.FunctionCallExpr{Name: fn, Args: []hclsyntax.Expression{e}, NameRange: rng, OpenParenRange: rng, CloseParenRange: rng}
}

// callsRaw reports whether the interpolation is itself a raw(…) call: the author
// took responsibility for it, so no context is refused.
func callsRaw(e hclsyntax.Expression) bool {
	c, ok := e.(*hclsyntax.FunctionCallExpr)
	return ok && c.Name == "raw"
}

// isShellField reports whether a block's attribute is a shell command line.
func isShellField(kind, name string) bool { return kind == "command" && name == "run" }

// evalField is decoder.eval for a block attribute, quoting shell-bound ones.
func (d *decoder) evalField(b *block, f *field, roots []string) (cty.Value, evalState) {
	if isShellField(b.Kind, f.attr.Name) {
		return d.evalShell(f, roots)
	}
	return d.eval(f.attr.Expr, roots)
}

// tidyShellDiags rewords failures of the quoting functions, which the author
// never wrote, as what they are: a value that cannot be part of a command.
func tidyShellDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		for _, fn := range []string{fnQuoteWord, fnQuoteSingle, fnQuoteDouble} {
			if rest, ok := strings.CutPrefix(d.Detail, fmt.Sprintf("Call to function %q failed: ", fn)); ok {
				d.Summary, d.Detail = "Value cannot be part of a command", strings.ToUpper(rest[:1])+rest[1:]
			}
		}
	}
	return diags
}

// evalShell is decoder.eval for a shell-bound attribute: it checks references
// against the original expression, records the rewritten one on f, and
// evaluates that now when it refers only to `var`.
func (d *decoder) evalShell(f *field, roots []string) (cty.Value, evalState) {
	se, diags := shellExpr(f.attr.Expr)
	d.add(diags...)
	if diags.HasErrors() {
		return cty.NilVal, evalFailed
	}
	if diags := expr.Validate(f.attr.Expr, roots); diags.HasErrors() {
		d.add(diags...)
		return cty.NilVal, evalFailed
	}
	f.shell = se
	for _, t := range f.attr.Expr.Variables() {
		if t.RootName() != "var" {
			return cty.NilVal, evalDynamic
		}
	}
	v, vd := se.Value(shellContext(d.ctx))
	d.add(tidyShellDiags(scrub(vd))...)
	if vd.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, evalFailed
	}
	return v, evalOK
}
