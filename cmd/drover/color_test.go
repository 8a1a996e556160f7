package main

import (
	"strings"
	"testing"
)

func TestUseColor(t *testing.T) {
	tests := []struct {
		tty     bool
		noColor string
		flag    bool
		want    bool
	}{
		{true, "", false, true},
		{false, "", false, false},
		{true, "1", false, false},
		{true, "", true, false},
		{false, "1", true, false},
	}
	for _, tt := range tests {
		if got := useColor(tt.tty, tt.noColor, tt.flag); got != tt.want {
			t.Errorf("useColor(tty=%v, NO_COLOR=%q, --no-color=%v) = %v, want %v", tt.tty, tt.noColor, tt.flag, got, tt.want)
		}
	}
}

// The palette obeys the decision whatever fatih/color guessed globally at init (under
// `go test` stdout is not a terminal, so the global default is "no colour").
func TestPaletteFollowsDecision(t *testing.T) {
	on := newPalette(true).status(statusOK, "ok")
	off := newPalette(false).status(statusOK, "ok")
	if !strings.Contains(on, "\x1b[") {
		t.Errorf("enabled palette printed %q, want escape codes", on)
	}
	if off != "ok" {
		t.Errorf("disabled palette printed %q, want plain ok", off)
	}
}
