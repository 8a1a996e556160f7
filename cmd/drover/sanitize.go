package main

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/drover-sh/drover/report"
)

// Output from hosts (command output, errors, package versions, step details) is
// untrusted: an ESC could recolour, move the cursor or retitle the operator's
// terminal, a CR could overwrite a line with a forged one. Before it is printed
// for humans every control character is shown as an escape (\x1b, \r) instead.

// sanitize neutralises control characters in multi-line text: C0 controls
// except newline and tab, DEL, C1 controls (U+0080–U+009F, which some terminals
// read as CSI) and bytes that are not UTF-8.
func sanitize(s string) string { return neutralise(s, false) }

// sanitizeLine is sanitize for text that must stay on one line: newlines and
// tabs are escaped too, so a value cannot forge a line of its own.
func sanitizeLine(s string) string { return neutralise(s, true) }

func neutralise(s string, oneLine bool) string {
	if clean(s, oneLine) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && oneLine:
			b.WriteString(`\n`)
		case r == '\t' && oneLine:
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case unsafeRune(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune: controls a terminal acts on, besides newline and tab.
func unsafeRune(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) ||
		r == '\u2028' || r == '\u2029' // line separators some terminals and log viewers honour
}

// clean is the fast path: nothing to neutralise.
func clean(s string, oneLine bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return utf8.ValidString(s[i:]) && !strings.ContainsFunc(s[i:], unsafeRune)
		}
		if c == 0x7f || (c < 0x20 && (oneLine || (c != '\n' && c != '\t'))) {
			return false
		}
	}
	return true
}

// sanitizeEvent neutralises every text field of a run event before it becomes a
// line of the run's output or log; the renderer adds its own colours afterwards.
func sanitizeEvent(ev report.Event) report.Event {
	ev.Stage, ev.Host, ev.Phase = sanitizeLine(ev.Stage), sanitizeLine(ev.Host), sanitizeLine(ev.Phase)
	ev.Step, ev.Status, ev.Detail = sanitizeLine(ev.Step), sanitizeLine(ev.Status), sanitizeLine(ev.Detail)
	if len(ev.Hosts) > 0 {
		hosts := make([]string, len(ev.Hosts))
		for i, h := range ev.Hosts {
			hosts[i] = sanitizeLine(h)
		}
		ev.Hosts = hosts
	}
	if len(ev.Checks) > 0 {
		checks := make([]report.Check, len(ev.Checks))
		for i, c := range ev.Checks {
			checks[i] = report.Check{Name: sanitizeLine(c.Name), Status: sanitizeLine(c.Status), Detail: sanitizeLine(c.Detail)}
		}
		ev.Checks = checks
	}
	return ev
}
