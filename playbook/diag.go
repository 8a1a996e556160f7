package playbook

import (
	"bytes"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Files holds the source of every file a Load read (the playbook and its
// var-files), so diagnostics can show snippets.
type Files struct {
	parser *hclparse.Parser
}

// Map returns the parsed files by name, as hcl.NewDiagnosticTextWriter wants.
func (f *Files) Map() map[string]*hcl.File {
	if f == nil || f.parser == nil {
		return nil
	}
	return f.parser.Files()
}

// WriteDiagnostics prints diags in HCL's text format, each headed by
// "FILE:LINE:COL: " so editors and terminals can jump to it. width wraps the
// detail text (0: no wrapping); color adds VT100 colours.
func WriteDiagnostics(w io.Writer, f *Files, diags hcl.Diagnostics, color bool, width uint) error {
	for _, diag := range diags {
		var buf bytes.Buffer
		if err := hcl.NewDiagnosticTextWriter(&buf, f.Map(), width, color).WriteDiagnostic(diag); err != nil {
			return fmt.Errorf("format diagnostic: %w", err)
		}
		if s := diag.Subject; s != nil {
			if _, err := fmt.Fprintf(w, "%s:%d:%d: ", s.Filename, s.Start.Line, s.Start.Column); err != nil {
				return fmt.Errorf("write diagnostic: %w", err)
			}
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return fmt.Errorf("write diagnostic: %w", err)
		}
	}
	return nil
}
