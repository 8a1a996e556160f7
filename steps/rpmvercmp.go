package steps

import (
	"strings"
	"unicode"
)

// rpmVerCmp orders two RPM version strings as rpm's rpmvercmp does: alternating
// runs of digits (numeric) and letters (lexical), other characters separate, a
// digit run beats a letter run, '~' sorts before everything and '^' after the end.
// It returns -1, 0 or 1. Only used to choose between install and downgrade.
func rpmVerCmp(a, b string) int {
	for {
		a = strings.TrimLeftFunc(a, rpmSep)
		b = strings.TrimLeftFunc(b, rpmSep)
		switch {
		case strings.HasPrefix(a, "~") || strings.HasPrefix(b, "~"):
			if !strings.HasPrefix(a, "~") {
				return 1
			}
			if !strings.HasPrefix(b, "~") {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		case strings.HasPrefix(a, "^") || strings.HasPrefix(b, "^"):
			if a == "" {
				return -1
			}
			if b == "" {
				return 1
			}
			if !strings.HasPrefix(a, "^") {
				return 1
			}
			if !strings.HasPrefix(b, "^") {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if a == "" || b == "" {
			switch {
			case a == "" && b == "":
				return 0
			case a == "":
				return -1
			}
			return 1
		}
		numeric := isDigit(rune(a[0]))
		ra, restA := rpmRun(a, numeric)
		rb, restB := rpmRun(b, numeric)
		if rb == "" {
			// Different kinds of run: the numeric one is newer.
			if numeric {
				return 1
			}
			return -1
		}
		if numeric {
			ra = strings.TrimLeft(ra, "0")
			rb = strings.TrimLeft(rb, "0")
			if len(ra) != len(rb) {
				return cmpInt(len(ra), len(rb))
			}
		}
		if c := strings.Compare(ra, rb); c != 0 {
			return c
		}
		a, b = restA, restB
	}
}

func rpmSep(r rune) bool {
	return r != '~' && r != '^' && !isDigit(r) && !(r < unicode.MaxASCII && unicode.IsLetter(r))
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func rpmRun(s string, numeric bool) (string, string) {
	i := 0
	for i < len(s) {
		r := rune(s[i])
		if numeric && !isDigit(r) || !numeric && !(r < unicode.MaxASCII && unicode.IsLetter(r)) {
			break
		}
		i++
	}
	return s[:i], s[i:]
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
