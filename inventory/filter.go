package inventory

// Target filters (-F, -I, -S) narrow the hosts a PATTERN selected, the way
// MCollective's fact and identity filters do.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/drover-sh/drover/expr"
)

// SelectFilename names the -S expression in diagnostics.
const SelectFilename = "<select>"

// Fact filter operators.
const (
	OpEq    = "="
	OpNe    = "!="
	OpLt    = "<"
	OpGt    = ">"
	OpLe    = "<="
	OpGe    = ">="
	OpMatch = "=~"
)

// FactFilter is one parsed -F filter, 'KEY OP VALUE' (spaces around OP allowed; VALUE may be quoted
// with matching ' or "):
//
//   - KEY is a dotted path into the nested facts ("os.release.major"); a
//     top-level fact whose name contains dots is found too, and list elements are
//     addressed by index ("processors.models.0").
//   - = and != (== is accepted for =): a fact that is a number equals VALUE when
//     VALUE is a number of the same value ("processors.count=2" matches 2 and 2.0);
//     a bool equals "true" or "false" (any case); a string compares exactly, as a
//     string; a map or list compares by its compact JSON form (keys sorted); a null
//     fact equals nothing (so != matches).
//   - < > <= >=: numeric when the fact is a number and VALUE parses as one. A
//     string fact compares numerically when both sides are numbers, unless both
//     are only digits and dots with a dot in either: "12.11" against "12.2" is
//     a release, not a decimal, so it compares as a version (12.11 > 12.2). Everything else compares as versions
//     with Debian ordering and a dotted-numeric fallback (expr.CompareVersions):
//     os.release.full>=12.1 holds for "12.11", kernelrelease<6.2 for
//     "6.1.0-13-amd64". Bools, maps, lists and null never satisfy an ordering.
//   - =~ takes /REGEX/ (Go RE2 syntax, unanchored, optional trailing flags i, m,
//     s); scalars match on their string form, maps and lists on their compact
//     JSON form, null on "".
//   - A host that lacks the fact does not match, whatever the operator (even !=).
type FactFilter struct {
	Key, Op string
	Value   string         // as given, quotes removed; for =~ the /…/ text
	Regex   *regexp.Regexp // set for =~
}

func (f FactFilter) String() string { return f.Key + f.Op + f.Value }

// ParseFactFilter parses "KEY OP VALUE": role=db, "processors.count >= 4",
// os.name=~/^(Debian|Ubuntu)$/.
func ParseFactFilter(s string) (FactFilter, error) {
	fail := func(format string, args ...any) (FactFilter, error) {
		return FactFilter{}, fmt.Errorf("fact filter %q: %s", s, fmt.Sprintf(format, args...))
	}
	i := strings.IndexAny(s, "=!<>")
	if i < 0 {
		return fail("no operator; want KEY OP VALUE with OP one of = != < > <= >= =~ (e.g. role=db)")
	}
	key := strings.TrimSpace(s[:i])
	rest := s[i:]
	var op string
	switch {
	case strings.HasPrefix(rest, "=="):
		op, rest = OpEq, rest[2:]
	case strings.HasPrefix(rest, OpMatch), strings.HasPrefix(rest, OpNe),
		strings.HasPrefix(rest, OpLe), strings.HasPrefix(rest, OpGe):
		op, rest = rest[:2], rest[2:]
	case rest[0] == '!':
		return fail("unknown operator %q; want one of = != < > <= >= =~", opText(rest))
	default:
		op, rest = rest[:1], rest[1:]
		if strings.IndexAny(rest[:min(len(rest), 1)], "=!<>~") == 0 {
			return fail("unknown operator %q; want one of = != < > <= >= =~", opText(s[i:]))
		}
	}
	switch {
	case key == "":
		return fail("missing KEY before %q", op)
	case strings.ContainsAny(key, " \t\r\n"):
		return fail("KEY %q contains a space", key)
	case strings.ContainsRune(key, '~'):
		return fail("KEY %q contains '~' (did you mean =~?)", key)
	case strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, ".."):
		return fail("KEY %q has an empty path component", key)
	}
	val := unquote(strings.TrimSpace(rest))
	if val == "" {
		return fail("missing VALUE after %q", op)
	}
	f := FactFilter{Key: key, Op: op, Value: val}
	if op == OpMatch {
		re, err := parseSlashRegex(val)
		if err != nil {
			return fail("%v", err)
		}
		f.Regex = re
	}
	return f, nil
}

// opText is the run of operator characters at the start of s, for messages.
func opText(s string) string {
	n := 0
	for n < len(s) && strings.IndexByte("=!<>~", s[n]) >= 0 {
		n++
	}
	return s[:n]
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// parseSlashRegex compiles "/re/" or "/re/flags" (flags from i, m, s).
func parseSlashRegex(v string) (*regexp.Regexp, error) {
	end := strings.LastIndexByte(v, '/')
	if len(v) < 2 || v[0] != '/' || end < 1 {
		return nil, fmt.Errorf("%q is not a /regex/", v)
	}
	body, flags := v[1:end], v[end+1:]
	for _, c := range flags {
		if !strings.ContainsRune("ims", c) {
			return nil, fmt.Errorf("%q: unknown regex flag %q (want i, m or s)", v, c)
		}
	}
	if flags != "" {
		body = "(?" + flags + ")" + body
	}
	re, err := regexp.Compile(body)
	if err != nil {
		return nil, fmt.Errorf("invalid regex %s: %w", v, err)
	}
	return re, nil
}

// Match tells whether facts satisfy the filter; known is false when the facts
// lack the key (then matched is false too).
func (f FactFilter) Match(facts map[string]any) (matched bool, known bool) {
	v, ok := expr.Lookup(facts, f.Key)
	if !ok {
		return false, false
	}
	return f.matchValue(v), true
}

func (f FactFilter) matchValue(v any) bool {
	switch f.Op {
	case OpMatch:
		return f.Regex != nil && f.Regex.MatchString(stringForm(v))
	case OpEq:
		return equalFact(v, f.Value)
	case OpNe:
		return !equalFact(v, f.Value)
	}
	c, ok := orderFact(v, f.Value)
	if !ok {
		return false
	}
	switch f.Op {
	case OpLt:
		return c < 0
	case OpGt:
		return c > 0
	case OpLe:
		return c <= 0
	case OpGe:
		return c >= 0
	}
	return false
}

func equalFact(v any, want string) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t == want
	case bool:
		w := strings.ToLower(want)
		return (w == "true" && t) || (w == "false" && !t)
	}
	if n, ok := numberOf(v); ok {
		w, ok := parseNumber(want)
		return ok && n.Cmp(w) == 0
	}
	return stringForm(v) == want
}

// orderFact compares fact v with VALUE under the rules in the file comment.
func orderFact(v any, want string) (int, bool) {
	switch t := v.(type) {
	case nil, bool, map[string]any, []any:
		return 0, false
	case string:
		a, aok := parseNumber(t)
		b, bok := parseNumber(want)
		if aok && bok && !(dottedDigits(t) && dottedDigits(want) && (strings.Contains(t, ".") || strings.Contains(want, "."))) {
			return a.Cmp(b), true
		}
		return expr.CompareVersions(t, want), true
	}
	n, ok := numberOf(v)
	if !ok {
		return 0, false // a structured value of another Go type
	}
	if w, ok := parseNumber(want); ok {
		return n.Cmp(w), true
	}
	return expr.CompareVersions(stringForm(v), want), true
}

var (
	numberRE       = regexp.MustCompile(`^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$`)
	dottedDigitsRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
)

func dottedDigits(s string) bool { return dottedDigitsRE.MatchString(s) }

// parseNumber parses a decimal number exactly enough for comparisons (no hex,
// inf or nan: those are versions or words here).
func parseNumber(s string) (*big.Float, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 400 || !numberRE.MatchString(s) {
		return nil, false
	}
	f, _, err := big.ParseFloat(s, 10, 256, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	return f, true
}

// numberOf returns v as a number when its Go type is numeric.
func numberOf(v any) (*big.Float, bool) {
	var f big.Float
	f.SetPrec(256)
	switch t := v.(type) {
	case int:
		return f.SetInt64(int64(t)), true
	case int64:
		return f.SetInt64(t), true
	case int32:
		return f.SetInt64(int64(t)), true
	case uint64:
		return f.SetUint64(t), true
	case uint:
		return f.SetUint64(uint64(t)), true
	case float32:
		return floatNumber(float64(t))
	case float64:
		return floatNumber(t)
	case json.Number:
		return parseNumber(t.String())
	}
	return nil, false
}

func floatNumber(x float64) (*big.Float, bool) {
	if math.IsNaN(x) {
		return nil, false
	}
	return new(big.Float).SetPrec(256).SetFloat64(x), true
}

// stringForm is how a fact value reads for =~ and for messages.
func stringForm(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(t), 'f', -1, 32)
	case json.Number:
		return t.String()
	case int, int64, int32, uint64, uint:
		return fmt.Sprint(t)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// IdentityFilter is one parsed -I filter, NAME or /REGEX/[flags]: the host name equals NAME or the
// unanchored regex matches it.
type IdentityFilter struct {
	Name  string         // exact host name, when Regex is nil
	Regex *regexp.Regexp // for /regex/
}

// ParseIdentityFilter parses NAME or /REGEX/[flags].
func ParseIdentityFilter(s string) (IdentityFilter, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return IdentityFilter{}, errors.New("identity filter: empty; want NAME or /regex/")
	}
	if strings.HasPrefix(v, "/") {
		re, err := parseSlashRegex(v)
		if err != nil {
			return IdentityFilter{}, fmt.Errorf("identity filter %q: %w", s, err)
		}
		return IdentityFilter{Regex: re}, nil
	}
	return IdentityFilter{Name: v}, nil
}

// Match tells whether the host name passes the filter.
func (f IdentityFilter) Match(name string) bool {
	if f.Regex != nil {
		return f.Regex.MatchString(name)
	}
	return name == f.Name
}

// Selector is the set of target filters of one command. -S EXPR is an HCL expression over `facts` and `host` (see package
// expr) that must yield a bool. A reference to a fact the host lacks makes the
// host not match unless the rest of the expression decides the result on its own
// (true || …); see expr's package comment.
//
// Repeated -F flags AND together, repeated -I flags OR together (like mco), and
// the three kinds AND together.
type Selector struct {
	Facts      []FactFilter
	Identities []IdentityFilter
	Select     hcl.Expression // -S, may be nil

	selectSrc []byte // the -S text, for error snippets
}

// ParseSelector parses the -F, -I and -S flags. Errors name the flag and the text
// given; -S errors are HCL diagnostics (an *expr.DiagError) with a source snippet
// and caret.
func ParseSelector(facts, identities []string, selectExpr string) (*Selector, error) {
	s := &Selector{}
	for _, f := range facts {
		ff, err := ParseFactFilter(f)
		if err != nil {
			return nil, fmt.Errorf("-F/--with-fact: %w", err)
		}
		s.Facts = append(s.Facts, ff)
	}
	for _, id := range identities {
		idf, err := ParseIdentityFilter(id)
		if err != nil {
			return nil, fmt.Errorf("-I/--identity: %w", err)
		}
		s.Identities = append(s.Identities, idf)
	}
	if strings.TrimSpace(selectExpr) != "" {
		e, diags := expr.ParseExpression(selectExpr, SelectFilename)
		if !diags.HasErrors() {
			diags = append(diags, expr.Validate(e, []string{"facts", "host"})...)
		}
		if diags.HasErrors() {
			return nil, fmt.Errorf("-S/--select: %w", &expr.DiagError{Diags: diags, Source: []byte(selectExpr)})
		}
		s.Select = e
		s.selectSrc = []byte(selectExpr)
	}
	return s, nil
}

// NeedsFacts tells whether Apply will ask for facts: there is a -F, or -S refers
// to facts.
func (s *Selector) NeedsFacts() bool {
	return len(s.Facts) > 0 || s.selectNeedsFacts()
}

func (s *Selector) selectNeedsFacts() bool {
	if s.Select == nil {
		return false
	}
	for _, t := range s.Select.Variables() {
		if t.RootName() == "facts" {
			return true
		}
	}
	return false
}

// Apply keeps the hosts that pass every filter, in the given order. -I is applied
// first, and factsOf is called only for hosts that passed it (and only when
// NeedsFacts), so callers may gather facts lazily. Hosts whose facts are not
// available (factsOf returns false: unreachable, no cache) are returned in unknown,
// never silently dropped. missing lists the -F keys, and the -S fact paths
// (dotted, "os.release.major"; host paths as "host.vars.x"), that no host with
// facts had: usually a typo the caller should report. err is a -S evaluation
// error not explained by a missing fact (e.g. a type mismatch), naming the host.
func (s *Selector) Apply(hosts []*Host, factsOf func(*Host) (map[string]any, bool)) (matched, unknown []*Host, missing []string, err error) {
	needFacts := s.NeedsFacts()
	var (
		cond  *expr.Condition
		funcs map[string]function.Function
	)
	if s.Select != nil {
		cond, funcs = expr.NewCondition(s.Select), expr.Functions()
	}
	// lacked holds, per host with facts, the keys and paths it did not have;
	// order lists every such key once, first seen first.
	var lacked []map[string]bool
	var order []string
	seen := map[string]bool{}
	for _, h := range hosts {
		if !s.identityMatch(h.Name) {
			continue
		}
		var facts map[string]any
		if needFacts {
			f, ok := factsOf(h)
			if !ok {
				unknown = append(unknown, h)
				continue
			}
			facts = f
		}
		hostLacked := map[string]bool{}
		lacked = append(lacked, hostLacked)
		note := func(k string) {
			hostLacked[k] = true
			if !seen[k] {
				seen[k] = true
				order = append(order, k)
			}
		}
		ok := true
		for _, ff := range s.Facts {
			m, known := ff.Match(facts)
			if !known {
				note(ff.Key)
			}
			ok = ok && m
		}
		if s.Select != nil {
			m, err := s.evalSelect(cond, funcs, h, facts, ok, note)
			if err != nil {
				return nil, nil, nil, err
			}
			ok = ok && m
		}
		if ok {
			matched = append(matched, h)
		}
	}
	for _, k := range order {
		if lackedByAll(lacked, k) {
			missing = append(missing, k)
		}
	}
	return matched, unknown, missing, nil
}

// lackedByAll tells whether every host lacked path k, itself or a prefix of it: a
// host without "os" has no "os.relase" either, so the typo is still reported.
func lackedByAll(lacked []map[string]bool, k string) bool {
	if len(lacked) == 0 {
		return false
	}
	for _, l := range lacked {
		if l[k] {
			continue
		}
		found := false
		for p := k; !found; {
			i := strings.LastIndexByte(p, '.')
			if i < 0 {
				break
			}
			p = p[:i]
			found = l[p]
		}
		if !found {
			return false
		}
	}
	return true
}

func (s *Selector) identityMatch(name string) bool {
	if len(s.Identities) == 0 {
		return true
	}
	for _, f := range s.Identities {
		if f.Match(name) {
			return true
		}
	}
	return false
}

// evalSelect evaluates -S for one host. Missing paths are noted for every host,
// but the expression is evaluated only when -F passed (eval is false otherwise),
// so a host that -F already excluded cannot fail the whole selection.
func (s *Selector) evalSelect(cond *expr.Condition, funcs map[string]function.Function, h *Host, facts map[string]any, eval bool, note func(string)) (bool, error) {
	fv, err := expr.ToCty(facts)
	if err != nil {
		return false, fmt.Errorf("-S/--select: host %s: facts: %w", h.Name, err)
	}
	if facts == nil {
		fv = cty.EmptyObjectVal
	}
	addr := h.Address
	if addr == "" {
		addr = h.Name
	}
	hv, err := expr.HostValue(h.Name, addr, h.Groups, h.Vars)
	if err != nil {
		return false, fmt.Errorf("-S/--select: %w", err)
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"facts": fv, "host": hv},
		Functions: funcs,
	}
	var (
		m     bool
		refs  []expr.Ref
		diags hcl.Diagnostics
	)
	if eval {
		m, refs, diags = cond.Eval(ctx)
	} else {
		refs = cond.Missing(ctx)
	}
	for _, r := range refs {
		if r.Root == "facts" {
			note(r.Dotted())
		} else {
			note(r.Root + "." + r.Dotted())
		}
	}
	if diags.HasErrors() {
		return false, fmt.Errorf("-S/--select: host %s: %w", h.Name, &expr.DiagError{Diags: diags, Source: s.selectSrc})
	}
	return m, nil
}
