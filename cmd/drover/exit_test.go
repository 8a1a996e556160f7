package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		interrupted bool
		want        int
	}{
		{"success", nil, false, 0},
		{"hosts failed", &hostsFailedError{Failed: 1}, false, 1},
		{"wrapped hosts failed", fmt.Errorf("ping: %w", &hostsFailedError{Unreachable: 2}), false, 1},
		{"bad input", badInput("drover ping", "nope"), false, 2},
		{"wrapped bad input", fmt.Errorf("x: %w", badInput("drover", "nope")), false, 2},
		{"interrupted error", errInterrupted, false, 4},
		{"context cancelled", fmt.Errorf("dial: %w", context.Canceled), false, 4},
		{"signal wins over failures", &hostsFailedError{Failed: 1}, true, 4},
		{"signal wins over success", nil, true, 4},
		{"unexpected error", errors.New("write: broken pipe"), false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err, tt.interrupted); got != tt.want {
				t.Errorf("exitCode(%v, %v) = %d, want %d", tt.err, tt.interrupted, got, tt.want)
			}
		})
	}
}

func TestReportError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil prints nothing", nil, ""},
		{"failed hosts were reported already", &hostsFailedError{Failed: 1}, ""},
		{"bad input gets a hint", badInput("drover ping", "bad --forks"), "drover: error: bad --forks\nRun 'drover ping --help' for usage.\n"},
		{"other errors one line", errors.New("boom"), "drover: error: boom\n"},
		{"interrupted", errInterrupted, "drover: interrupted\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			reportError(&b, "drover", tt.err, false)
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}
