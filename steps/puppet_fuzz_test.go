package steps

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzPuppetStatus feeds arbitrary host output to the `puppet status` parser
// (which embeds last_run_summary.yaml): remote output is untrusted, so it must
// not panic and what it returns must serialise for --json.
func FuzzPuppetStatus(f *testing.F) {
	f.Add("@@applying 1234\n@@disabled\n{\"disabled_message\": \"maintenance\"}\n@@summary\n" + sampleSummary)
	f.Add("@@disabled\nplain text lock\n")
	f.Add("@@summary\nversion: {config: 17}\n")
	f.Add("@@summary\n")
	f.Add("@@applying x\n@@summary\n@@disabled\n")
	f.Fuzz(func(t *testing.T, out string) {
		st, err := parsePuppetStatus(out)
		if err != nil {
			if !strings.Contains(err.Error(), "last run summary") {
				t.Fatalf("error %q does not say what failed", err)
			}
			return
		}
		if st.Enabled && st.DisabledReason != "" {
			t.Fatalf("enabled with a disabled reason: %+v", st)
		}
		if _, err := json.Marshal(st); err != nil {
			t.Fatalf("status does not marshal: %v", err)
		}
	})
}
