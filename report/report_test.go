package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		status string
		want   int
	}{
		{Succeeded, 0}, {CompletedWithFailures, 1}, {NotStarted, 2}, {"bogus", 2},
		{Halted, 3}, {Interrupted, 4}, {WindowClosed, 3},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.status); got != tt.want {
			t.Errorf("ExitCode(%q) = %d, want %d", tt.status, got, tt.want)
		}
	}
}

func TestHostFailedStatus(t *testing.T) {
	for s, want := range map[string]bool{HostOK: false, HostChanged: false, HostSkipped: false,
		HostFailed: true, HostUnreachable: true, HostRolledBack: true} {
		if HostFailedStatus(s) != want {
			t.Errorf("%s: got %v", s, !want)
		}
	}
}

func TestTimeJSON(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, time.FixedZone("X", 3600))
	b, err := json.Marshal(struct {
		A Time `json:"a"`
		B Time `json:"b"`
	}{A: At(at)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":"2025-01-02T02:04:05.678Z","b":null}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	var back struct{ A, B Time }
	if err := json.Unmarshal(b, &back); err != nil || !back.A.Equal(at) || !back.B.IsZero() {
		t.Errorf("round trip: %v %v %v", err, back.A, back.B)
	}
	if err := json.Unmarshal([]byte(`{"A":"yesterday"}`), &back); err == nil {
		t.Error("a bad time was accepted")
	}
}

func TestRedactor(t *testing.T) {
	r := NewRedactor("pw", "", "longpw-secret", "pw")
	tests := []struct{ in, want string }{
		{"token longpw-secret here", "token [redacted] here"},
		{"pw and pw", "[redacted] and [redacted]"},
		{"nothing", "nothing"},
	}
	for _, tt := range tests {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
	var none *Redactor
	if none.String("pw") != "pw" {
		t.Error("a nil redactor changed text")
	}

	ev := r.Event(Event{Type: StepFinish, Host: "h1", Detail: "exit 1: pw", Hosts: []string{"pw"},
		Checks: []Check{{Name: "c", Detail: "got longpw-secret"}}})
	if ev.Detail != "exit 1: [redacted]" || ev.Hosts[0] != Redacted || ev.Checks[0].Detail != "got [redacted]" {
		t.Errorf("event %+v", ev)
	}

	rep := &Report{Error: "pw", Stages: []*Stage{{
		Name:    "s",
		Batches: []*Batch{{Hosts: []string{"h"}}},
		Gate:    &Gate{Checks: []Check{{Detail: "pw"}}},
		Hosts:   []*Host{{Name: "h", Error: "x pw", Steps: []Step{{Name: "command pw", Detail: "pw"}}}},
	}}}
	r.Report(rep)
	b, _ := rep.JSON()
	if strings.Contains(string(b), "pw") {
		t.Errorf("secret left in %s", b)
	}
	if strings.Count(string(b), Redacted) != 5 {
		t.Errorf("want 5 redactions in %s", b)
	}
}

// JSON keeps arrows and ampersands readable and ends with a newline.
func TestReportJSON(t *testing.T) {
	b, err := (&Report{RunID: "r", Stages: []*Stage{}, Error: "1.0 -> 2.0 & more"}).JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"1.0 -> 2.0 & more"`) || !strings.HasSuffix(string(b), "}\n") {
		t.Errorf("got %s", b)
	}
	if !strings.Contains(string(b), `"started": null`) {
		t.Errorf("zero time not null: %s", b)
	}
}
