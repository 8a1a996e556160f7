package facts

import (
	"bytes"
	"fmt"
	"path"
	"strings"
)

// record is one line of the gatherer's stream.
type record struct {
	kind  string
	name  string
	value []byte
}

// stream is a decoded gatherer output.
type stream struct {
	raw      map[string][]byte // "raw" records by name
	files    map[string][]byte // "file" records by path
	external []record          // extdir and ext_* records, in order
	facter   []byte            // `facter --json` output, when asked for
	errors   []string
}

// decode splits the output into records. Anything before the header line (a
// login shell's banner, say) is ignored. When boundary is not empty the header
// must carry it. A stream without its end record is an error, because the facts
// could be silently incomplete.
func decode(out []byte, boundary string) (*stream, error) {
	s := &stream{raw: map[string][]byte{}, files: map[string][]byte{}}
	var body []byte
	for rest := out; len(rest) > 0; {
		line, tail, _ := bytes.Cut(rest, []byte("\n"))
		if b, ok := bytes.CutPrefix(line, []byte("DRV2 ")); ok && len(b) >= 16 &&
			(boundary == "" || string(b) == boundary) {
			boundary, body = string(b), tail
			break
		}
		rest = tail
	}
	if body == nil {
		return nil, fmt.Errorf("no gatherer output (is sh available?): %w", ErrGather)
	}
	sep := []byte("\n" + boundary + "\n")
	ended := false
	for len(body) > 0 && !ended {
		var field [3][]byte
		for i := range field {
			f, tail, ok := bytes.Cut(body, sep)
			if !ok {
				return nil, fmt.Errorf("gatherer output ended early: %w", ErrGather)
			}
			field[i], body = f, tail
		}
		r := record{kind: string(field[0]), name: string(field[1]), value: field[2]}
		switch r.kind {
		case "end":
			ended = true
		case "raw":
			s.raw[r.name] = r.value
		case "file":
			s.files[r.name] = r.value
		case "extdir", "ext_txt", "ext_json", "ext_yaml", "ext_exec":
			s.external = append(s.external, r)
		case "facter":
			s.facter = r.value
		case "error":
			s.errors = append(s.errors, sanitize(r.name)+": "+sanitize(string(r.value)))
		}
		// Unknown kinds come from a newer gatherer: ignored.
	}
	if !ended {
		return nil, fmt.Errorf("gatherer output ended early: %w", ErrGather)
	}
	return s, nil
}

// sanitize keeps host-provided text printable in messages.
func sanitize(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Parse turns the gatherer's output into facts: the core facts computed with
// Facter's rules, then external facts (which override core facts of the same
// top-level name, as in Facter), then `facter --json` when it was run. Facts
// are returned with a Warnings error when some inputs had to be skipped.
func Parse(out []byte) (Facts, error) { return parse(out, "") }

func parse(out []byte, boundary string) (Facts, error) {
	s, err := decode(out, boundary)
	if err != nil {
		return nil, err
	}
	f := core(s)
	warns := Warnings(nil)
	ext, w := external(s.external)
	warns = append(warns, w...)
	for k, v := range ext {
		f[k] = v
	}
	if s.facter != nil {
		full, err := parseJSONObject(s.facter)
		if err != nil {
			warns = append(warns, fmt.Sprintf("facter --json: %v", err))
		}
		for k, v := range full {
			f[k] = v
		}
	}
	warns = append(warns, s.errors...)
	if len(warns) > 0 {
		return f, warns
	}
	return f, nil
}

// str is a raw record as trimmed text.
func (s *stream) str(name string) string { return strings.TrimSpace(string(s.raw[name])) }

// file is a gathered file's content and whether it was readable.
func (s *stream) file(p string) (string, bool) {
	b, ok := s.files[p]
	return string(b), ok
}

// baseName is the file name of a record's path, for messages.
func baseName(p string) string { return sanitize(path.Base(p)) }
