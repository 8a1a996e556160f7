package playbook

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

type fieldKind int

const (
	kString fieldKind = iota
	kBool
	kNumber
	kStrings  // list of strings
	kStrMap   // map of strings
	kDuration // a string such as "30s"
)

// fieldSpec describes one attribute of a step or check kind.
type fieldSpec struct {
	name     string
	kind     fieldKind
	required bool
	enum     []string
	safe     *regexp.Regexp // values (each element for lists) must match
	safeWhat string         // what safe checks, for messages
	min, max float64        // numbers: range when max > min
	dmin     time.Duration  // durations: range
	dmax     time.Duration
	validate func(string) string // strings: a non-empty result is the problem
}

// Names that reach a remote shell are restricted to what package managers and
// init systems accept, so a literal or computed value can never smuggle shell
// syntax even before the step quotes it.
var (
	safeName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._+:-]*$`)
	safeVersion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+~:_-]*$`)
	safeWord    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_:.-]*$`)
	safeMode    = regexp.MustCompile(`^0?[0-7]{3,4}$`)
)

func (s fieldSpec) typ() cty.Type {
	switch s.kind {
	case kBool:
		return cty.Bool
	case kNumber:
		return cty.Number
	case kStrings:
		return cty.List(cty.String)
	case kStrMap:
		return cty.Map(cty.String)
	}
	return cty.String
}

func (s fieldSpec) typeName() string {
	switch s.kind {
	case kBool:
		return "a bool"
	case kNumber:
		return "a number"
	case kStrings:
		return "a list of strings"
	case kStrMap:
		return "a map of strings"
	case kDuration:
		return `a duration such as "30s" or "5m"`
	}
	return "a string"
}

// check converts v to the field's type and checks enums, ranges and safe names.
// A null value means "not set" and is returned as is.
func (s fieldSpec) check(v cty.Value, rng hcl.Range) (cty.Value, *hcl.Diagnostic) {
	bad := func(detail string, args ...any) (cty.Value, *hcl.Diagnostic) {
		return cty.NilVal, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid value for %q", s.name),
			Detail:   fmt.Sprintf(detail, args...),
			Subject:  rng.Ptr(),
		}
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsWhollyKnown() {
		return v, nil
	}
	cv, err := convert.Convert(v, s.typ())
	if err != nil {
		return bad("Expected %s, got %s.", s.typeName(), v.Type().FriendlyName())
	}
	if cv.IsNull() {
		return cv, nil
	}
	switch s.kind {
	case kString:
		str := cv.AsString()
		if len(s.enum) > 0 && !contains(s.enum, str) {
			return bad("%q is not one of %s.", str, quoteList(s.enum))
		}
		if s.safe != nil && !s.safe.MatchString(str) {
			return bad("%q is not a valid %s: only letters, digits and %s are allowed.", str, s.safeWhat, punct(s.safe))
		}
		if s.validate != nil {
			if msg := s.validate(str); msg != "" {
				return bad("%s", msg)
			}
		}
	case kStrings:
		for it := cv.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() {
				return bad("The list must not contain null.")
			}
			if s.safe != nil && !s.safe.MatchString(e.AsString()) {
				return bad("%q is not a valid %s: only letters, digits and %s are allowed.", e.AsString(), s.safeWhat, punct(s.safe))
			}
		}
	case kStrMap:
		// A null value would reach strMap's AsString and panic.
		for it := cv.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.IsNull() {
				// "header "X" is null.", as notify's own check words it.
				return bad("%s %q is null.", strings.TrimSuffix(s.name, "s"), k.AsString())
			}
		}
	case kNumber:
		if s.max > s.min {
			f, _ := cv.AsBigFloat().Float64()
			if f < s.min || f > s.max {
				return bad("%s is out of range: it must be between %s and %s.", cv.AsBigFloat().Text('g', -1), fmtNum(s.min), fmtNum(s.max))
			}
		}
	case kDuration:
		if _, d := parseDuration(cv.AsString(), s.dmin, s.dmax, s.name, rng); d != nil {
			return cty.NilVal, d
		}
	}
	return cv, nil
}

func punct(re *regexp.Regexp) string {
	switch re {
	case safeName:
		return `"@._+:-"`
	case safeVersion:
		return `".+~:_-"`
	case safeWord:
		return `"_:.-"`
	}
	return "nothing else"
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// parseDuration parses a Go duration ("30s", "5m", "1h30m") and checks its range.
func parseDuration(s string, min, max time.Duration, name string, rng hcl.Range) (time.Duration, *hcl.Diagnostic) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid duration for %q", name),
			Detail:   fmt.Sprintf("%q is not a duration; write a number with a unit: \"500ms\", \"30s\", \"5m\", \"1h\".", s),
			Subject:  rng.Ptr(),
		}
	}
	if d < min || d > max {
		return 0, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Duration out of range for %q", name),
			Detail:   fmt.Sprintf("%s is out of range: it must be between %s and %s.", d, fmtDur(min), fmtDur(max)),
			Subject:  rng.Ptr(),
		}
	}
	return d, nil
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	return d.String()
}

// parseQuantity reads a count (a whole number) or a percentage ("25%", "12.5%",
// at most two decimals). Counts must be at least minCount; percentages lie in
// (0, 100], or [0, 100] when zeroOK.
func parseQuantity(v cty.Value, name string, minCount int, zeroOK bool, rng hcl.Range) (Quantity, *hcl.Diagnostic) {
	bad := func(detail string, args ...any) (Quantity, *hcl.Diagnostic) {
		return Quantity{}, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid value for %q", name),
			Detail:   fmt.Sprintf(detail, args...),
			Subject:  rng.Ptr(),
		}
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return Quantity{}, nil
	}
	switch v.Type() {
	case cty.Number:
		bf := v.AsBigFloat()
		if !bf.IsInt() {
			return bad("%s is not a whole number of hosts.", bf.Text('g', -1))
		}
		n, acc := bf.Int64()
		if acc != big.Exact || n < int64(minCount) || n > 1_000_000 {
			return bad("%s is out of range: it must be at least %d.", bf.Text('g', -1), minCount)
		}
		return Quantity{Set: true, Count: int(n), Range: rng}, nil
	case cty.String:
		s := strings.TrimSpace(v.AsString())
		num, ok := strings.CutSuffix(s, "%")
		if !ok {
			return bad("%q is neither a count nor a percentage; write a number (3) or a percentage (\"25%%\").", v.AsString())
		}
		h, ok := hundredths(strings.TrimSpace(num))
		if !ok {
			return bad("%q is not a valid percentage; write a number with at most two decimals followed by %%, such as \"25%%\".", v.AsString())
		}
		lo := "greater than 0%"
		if zeroOK {
			lo = "at least 0%"
		}
		if h > 10000 || (h == 0 && !zeroOK) {
			return bad("%s is out of range: a percentage must be %s and at most 100%%.", s, lo)
		}
		return Quantity{Set: true, IsPercent: true, Hundredths: h, Range: rng}, nil
	}
	return bad("Expected a count (a number) or a percentage (a string such as \"25%%\"), got %s.", v.Type().FriendlyName())
}

// hundredths parses "12.5" into 1250 without floating point, so rounding is exact.
func hundredths(s string) (int, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || len(whole) > 4 {
		return 0, false
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	for len(frac) < 2 {
		frac += "0"
	}
	n, err := strconv.Atoi(whole + frac)
	return n, err == nil
}

// String renders the quantity as written: "3" or "12.5%".
func (q Quantity) String() string {
	if !q.IsPercent {
		return strconv.Itoa(q.Count)
	}
	s := fmt.Sprintf("%d.%02d", q.Hundredths/100, q.Hundredths%100)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "0"), "0")
	return strings.TrimSuffix(s, ".") + "%"
}
