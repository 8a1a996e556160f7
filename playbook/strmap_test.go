package playbook

import (
	"strings"
	"testing"
)

// A header that evaluates to null on one host is a diagnostic there, not a
// panic in strMap; the others get their headers.
func TestHTTPHeaderNullPerHost(t *testing.T) {
	p := mustLoad(t, `
playbook "x" {}
steps {
  command "c" { run = "true" }
}
health {
  http "h" {
    url     = "http://${host.address}:8080/health"
    headers = { Accept = "text/plain", X-Role = facts.role == "web" ? "web" : null }
  }
}`, VarInputs{})
	tests := []struct {
		role     string
		wantErr  string
		wantRole string
	}{
		{"web", "", "web"},
		{"db", `header "X-Role" is null`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			ctx, err := p.HostContext(HostData{Name: "h"}, map[string]any{"role": tt.role})
			if err != nil {
				t.Fatal(err)
			}
			spec, diags := p.Health[0].Evaluate(ctx)
			if tt.wantErr != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.wantErr) {
					t.Fatalf("diags %q, want %q", diags.Error(), tt.wantErr)
				}
				if d := diags[0]; d.Subject == nil || d.Subject.Start.Line != 9 {
					t.Errorf("diagnostic at %v, want line 9 (the headers)", d.Subject)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if h := spec.HTTP.Headers; h["X-Role"] != tt.wantRole || h["Accept"] != "text/plain" {
				t.Errorf("headers %v", h)
			}
		})
	}
}
