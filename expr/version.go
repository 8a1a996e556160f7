package expr

import (
	"strings"

	debversion "github.com/knqyf263/go-deb-version"
)

// CompareVersions orders two version strings and returns -1, 0 or 1.
//
// When both are valid Debian versions ([epoch:]upstream[-revision], upstream
// starting with a digit) they compare as dpkg does: the epoch first, then runs of
// digits numerically and other characters with '~' sorting before everything,
// even the end of the string ("2.0~rc1" < "2.0", "1:1.0" > "2.0",
// "12.11" > "12.2"). Otherwise (e.g. "v1.2", "release-7") both are compared
// dotted-numerically: an optional leading "v" is dropped, digit runs compare as
// numbers, other runs as strings, separators (. - _ + ~ :) only split, and a
// version with more components is the greater.
func CompareVersions(a, b string) int {
	va, errA := debversion.NewVersion(a)
	vb, errB := debversion.NewVersion(b)
	if errA == nil && errB == nil {
		c := sign(va.Compare(vb))
		// The library parses digit runs into ints and saturates beyond 18
		// digits; let the overflow-free comparison break such ties.
		if c == 0 && (hasLongDigitRun(a) || hasLongDigitRun(b)) {
			return compareLoose(a, b)
		}
		return c
	}
	return compareLoose(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func compareLoose(a, b string) int {
	ta, tb := looseTokens(a), looseTokens(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		if c := compareToken(ta[i], tb[i]); c != 0 {
			return c
		}
	}
	return sign(len(ta) - len(tb))
}

// looseTokens splits "v1.10-beta2" into ["1" "10" "beta" "2"].
func looseTokens(s string) []string {
	s = strings.TrimSpace(s)
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && isDigit(s[1]) {
		s = s[1:]
	}
	var toks []string
	for i := 0; i < len(s); {
		j := i
		switch {
		case isDigit(s[i]):
			for j < len(s) && isDigit(s[j]) {
				j++
			}
		case strings.IndexByte(".-_+~:", s[i]) >= 0:
			i++
			continue
		default:
			for j < len(s) && !isDigit(s[j]) && strings.IndexByte(".-_+~:", s[j]) < 0 {
				j++
			}
		}
		toks = append(toks, s[i:j])
		i = j
	}
	return toks
}

func hasLongDigitRun(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			n = 0
			continue
		}
		if n++; n > 18 {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// compareToken compares digit runs by value (any length, no overflow), a number
// above a word, and words bytewise.
func compareToken(a, b string) int {
	da, db := isDigit(a[0]), isDigit(b[0])
	switch {
	case da && db:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			return sign(len(a) - len(b))
		}
		return strings.Compare(a, b)
	case da:
		return 1
	case db:
		return -1
	}
	return strings.Compare(a, b)
}
