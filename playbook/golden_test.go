package playbook

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/invalid")

// corpusInputs are the variable inputs of the corpus files that need some.
var corpusInputs = map[string]VarInputs{
	"19-undeclared-var-flag.hcl":    {Flags: []string{"nope=1"}},
	"35-bad-var-flag-value.hcl":     {Flags: []string{"tags=[\"a\","}},
	"18-missing-variable.hcl":       {Environ: []string{"DROVER_VAR_other=1", "HOME=/root"}},
	"20-variable-validation.hcl":    {},
	"23-unknown-fact.hcl":           {},
	"24-wrong-type.hcl":             {},
	"30-variable-type-mismatch.hcl": {},
}

// corpusFacts are the facts the corpus's imaginary inventory has.
var corpusFacts = []map[string]any{
	{"os": map[string]any{"family": "Debian", "name": "Debian"}, "role": "web"},
	{"os": map[string]any{"family": "RedHat"}, "datacenter": "dc1"},
}

// TestInvalidCorpus loads every broken playbook and compares the rendered
// diagnostics (Load, then CheckFactRefs) with its golden file. Each golden was
// reviewed by eye: file:line:col must point at the offending token.
func TestInvalidCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("corpus has %d files, want at least 25", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			p, fs, diags := Load(path, corpusInputs[filepath.Base(path)])
			if p != nil && !diags.HasErrors() {
				diags = append(diags, p.CheckFactRefs(KnownFacts(corpusFacts))...)
			}
			if !diags.HasErrors() {
				t.Fatalf("%s: no error reported", path)
			}
			var buf bytes.Buffer
			if err := WriteDiagnostics(&buf, fs, diags, false, 0); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(path, ".hcl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./playbook -run TestInvalidCorpus -update)", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}
