package playbook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// loadBytes is Load on in-memory source, so the fuzzer needs no file per input.
func loadBytes(dir string, src []byte, in VarInputs) (*Playbook, hcl.Diagnostics) {
	d := &decoder{parser: hclparse.NewParser(), dir: dir}
	f, diags := d.parser.ParseHCL(src, "fuzz.hcl")
	if diags.HasErrors() || f == nil {
		return nil, sortDiags(diags)
	}
	d.diags = diags
	p := d.decode(f.Body, filepath.Join(dir, "fuzz.hcl"), in)
	return p, sortDiags(d.diags)
}

// FuzzLoad feeds arbitrary source to the playbook decoder: it must never panic,
// and it must either return a playbook or say why not, with every diagnostic
// placed in the file it came from.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"../examples/*.hcl", "testdata/invalid/*.hcl"} {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			f.Fatalf("no seed files for %s: %v", glob, err)
		}
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`playbook "p" {}` + "\n" + `variable "pw" { sensitive = true  default = "s3cret" }` +
		"\nsteps {\n command \"c\" { run = \"echo ${var.pw}\" }\n}\n"))
	f.Add([]byte("playbook \"p\" {}\nbatch \"a\" { hosts = \"150%\"  size = -1 }\nremaining { max_failed = \"x%\" }\n"))
	f.Add([]byte("playbook \"p\" {}\nsettings { window { days = [\"mon\"] start = \"25:00\" end = \"x\" timezone = \"No/Where\" } }\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		p, diags := loadBytes(dir, src, VarInputs{Flags: []string{"version=1.0"}})
		for _, d := range diags {
			if d.Summary == "" {
				t.Fatalf("diagnostic without a summary: %#v", d)
			}
			if d.Subject != nil && d.Subject.Filename != "fuzz.hcl" && !strings.HasSuffix(d.Subject.Filename, "fuzz.hcl") {
				t.Fatalf("diagnostic placed in %q: %s", d.Subject.Filename, d.Summary)
			}
		}
		if p == nil {
			if !diags.HasErrors() {
				t.Fatal("no playbook and no error")
			}
			return
		}
		for _, s := range p.Secrets() {
			if s == "" {
				t.Fatal("empty secret")
			}
		}
	})
}
