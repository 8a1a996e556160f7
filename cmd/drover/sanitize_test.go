package main

import (
	"strings"
	"testing"

	"github.com/drover-sh/drover/report"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want, wantLine string
	}{
		{"plain", "hello world", "hello world", "hello world"},
		{"unicode kept", "café — ✓", "café — ✓", "café — ✓"},
		{"newline and tab", "a\tb\nc", "a\tb\nc", `a\tb\nc`},
		{"ESC colour", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`, `\x1b[31mred\x1b[0m`},
		{"title set", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
		{"CR overwrite", "ok\rFAILED", `ok\rFAILED`, `ok\rFAILED`},
		{"NUL", "a\x00b", `a\x00b`, `a\x00b`},
		{"DEL", "a\x7fb", `a\x7fb`, `a\x7fb`},
		{"C1 CSI", "a\u009b31mb", `a\x9b31mb`, `a\x9b31mb`},
		{"raw 8-bit CSI byte", "a\x9bb", `a\x9bb`, `a\x9bb`},
		{"line separator", "a\u2028b", `a\u2028b`, `a\u2028b`},
		{"backspace", "secret\b\b\b\b\b\bpublic", `secret\x08\x08\x08\x08\x08\x08public`, `secret\x08\x08\x08\x08\x08\x08public`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in); got != tt.want {
				t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := sanitizeLine(tt.in); got != tt.wantLine {
				t.Errorf("sanitizeLine(%q) = %q, want %q", tt.in, got, tt.wantLine)
			}
		})
	}
}

// TestEventLineNeutralisesControls: a step detail from a host cannot forge a
// line or colour the run output; drover's own colours still apply.
func TestEventLineNeutralisesControls(t *testing.T) {
	pal := newPalette(false)
	ev := report.Event{Type: report.StepFinish, Host: "h1", Step: "command x", Status: "failed",
		Detail: "exit 1: boom\n2026-01-01T00:00:00Z run r1 \x1b[32msucceeded\x1b[0m\r"}
	line := eventLine(pal, ev)
	if strings.Contains(line, "\n") || strings.Contains(line, "\r") || strings.Contains(line, "\x1b[32msucceeded") {
		t.Fatalf("event line carries remote controls: %q", line)
	}
	if !strings.Contains(line, `boom\n2026`) || !strings.Contains(line, `\x1b[32msucceeded`) {
		t.Fatalf("event line lost the detail: %q", line)
	}
}
