package facts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// external applies Facter's rules to the external fact files the gatherer sent:
// .txt is key=value, .json and .yaml are parsed, executables' output is YAML
// (or JSON) when that yields a mapping and key=value otherwise. Top-level names
// are lowercased. A name defined twice resolves as Facter does: an earlier
// directory wins, and within a directory the file that sorts last wins.
func external(recs []record) (map[string]any, Warnings) {
	type dir struct{ files []record }
	var dirs []*dir
	for _, r := range recs {
		if r.kind == "extdir" || len(dirs) == 0 {
			dirs = append(dirs, &dir{})
			if r.kind == "extdir" {
				continue
			}
		}
		dirs[len(dirs)-1].files = append(dirs[len(dirs)-1].files, r)
	}
	out := map[string]any{}
	var warns Warnings
	for i := len(dirs) - 1; i >= 0; i-- {
		for _, r := range dirs[i].files {
			data, err := parseExternal(r)
			if err != nil {
				warns = append(warns, fmt.Sprintf("external fact %s: %v", baseName(r.name), err))
				continue
			}
			for k, v := range data {
				// Facter skips resolutions whose value is nil.
				if v != nil {
					out[strings.ToLower(k)] = v
				}
			}
		}
	}
	return out, warns
}

func parseExternal(r record) (map[string]any, error) {
	switch r.kind {
	case "ext_txt":
		return keyValue(r.value)
	case "ext_json":
		return parseJSONObject(r.value)
	case "ext_yaml":
		return parseYAMLObject(r.value)
	case "ext_exec":
		if m, err := parseYAMLObject(r.value); err == nil && m != nil {
			return m, nil
		}
		return keyValue(r.value)
	}
	return nil, fmt.Errorf("unknown external fact kind %q", r.kind)
}

var kvLine = regexp.MustCompile(`^(.+?)=(.+)$`)

// keyValue is Facter's KeyValuePairOutputFormat: every line "key=value" with
// both sides non-empty; other lines are ignored.
func keyValue(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("not valid UTF-8")
	}
	out := map[string]any{}
	s := string(b)
	for s != "" {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		line = strings.TrimSuffix(line, "\r") // Ruby's chomp
		if m := kvLine.FindStringSubmatch(line); m != nil {
			out[m[1]] = m[2]
		}
	}
	return out, nil
}

// parseJSONObject decodes a JSON object with numbers as Facter's Ruby keeps them.
func parseJSONObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: trailing data")
	}
	m, ok := Normalize(v).(map[string]any)
	if !ok {
		return nil, errors.New("JSON is not an object")
	}
	return m, nil
}

// Normalize converts decoded JSON (with json.Number) to the types Facts holds:
// int64 for integers that fit, float64 for other numbers, json.Number for
// integers beyond int64. Other values are returned as they are.
func Normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = Normalize(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = Normalize(x)
		}
		return t
	case json.Number:
		return normalizeNumber(string(t))
	case int:
		return int64(t)
	}
	return v
}

func normalizeNumber(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if !strings.ContainsAny(s, ".eE") {
		if _, ok := new(big.Int).SetString(s, 10); ok {
			return json.Number(s)
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return s
}

// parseYAMLObject decodes YAML the way Ruby's Psych (YAML 1.1) reads it:
// yes/no/on/off are booleans, 0-prefixed integers octal, timestamps stay strings.
func parseYAMLObject(b []byte) (m map[string]any, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	// Aliases are expanded here, so depth and total size are bounded against
	// alias bombs.
	budget := maxYAMLNodes
	v, err := yamlValue(doc.Content[0], 0, &budget)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("YAML is not a mapping")
	}
	return m, nil
}

const (
	maxYAMLDepth = 100
	maxYAMLNodes = 1 << 20
)

func yamlValue(n *yaml.Node, depth int, budget *int) (any, error) {
	if depth > maxYAMLDepth {
		return nil, errors.New("YAML nested too deeply")
	}
	if *budget--; *budget < 0 {
		return nil, errors.New("YAML expands to too many values")
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, errors.New("YAML alias without anchor")
		}
		return yamlValue(n.Alias, depth+1, budget)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			val, err := yamlValue(v, depth+1, budget)
			if err != nil {
				return nil, err
			}
			if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style == 0 {
				if merged, ok := val.(map[string]any); ok {
					for mk, mv := range merged {
						if _, exists := out[mk]; !exists {
							out[mk] = mv
						}
					}
					continue
				}
			}
			key, err := yamlValue(k, depth+1, budget)
			if err != nil {
				return nil, err
			}
			out[keyString(key)] = val
		}
		return out, nil
	case yaml.ScalarNode:
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return n.Value, nil
		}
		if n.Style&yaml.TaggedStyle != 0 && n.ShortTag() == "!!str" {
			return n.Value, nil
		}
		return psychScalar(n.Value), nil
	}
	return nil, nil
}

// keyString renders a mapping key as Ruby's JSON output does (to_s).
func keyString(k any) string {
	switch t := k.(type) {
	case string:
		return t
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	default:
		return fmt.Sprint(t)
	}
}

var (
	psychInt    = regexp.MustCompile(`^[-+]?(0|[1-9][0-9_,]*)$`)
	psychOct    = regexp.MustCompile(`^[-+]?0[0-7_,]+$`)
	psychHex    = regexp.MustCompile(`^[-+]?0x[0-9a-fA-F_,]+$`)
	psychBin    = regexp.MustCompile(`^[-+]?0b[01_,]+$`)
	psychSexInt = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+$`)
	psychFloat  = regexp.MustCompile(`^[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?$`)
)

// psychScalar resolves a plain YAML scalar like Psych's ScalarScanner.
func psychScalar(s string) any {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return nil
	case "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
		return true
	case "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
		return false
	}
	clean := strings.NewReplacer("_", "", ",", "").Replace(s)
	sign := ""
	if strings.HasPrefix(clean, "-") || strings.HasPrefix(clean, "+") {
		sign, clean = clean[:1], clean[1:]
	}
	intOf := func(digits string, base int) any {
		n, ok := new(big.Int).SetString(digits, base)
		if !ok {
			return s
		}
		if sign == "-" {
			n.Neg(n)
		}
		if n.IsInt64() {
			return n.Int64()
		}
		return json.Number(n.String())
	}
	switch {
	case psychInt.MatchString(s):
		return intOf(clean, 10)
	case psychHex.MatchString(s):
		return intOf(clean[2:], 16)
	case psychBin.MatchString(s):
		return intOf(clean[2:], 2)
	case psychOct.MatchString(s):
		return intOf(clean[1:], 8)
	case psychSexInt.MatchString(s):
		n := new(big.Int)
		for _, part := range strings.Split(clean, ":") {
			d, ok := new(big.Int).SetString(part, 10)
			if !ok {
				return s
			}
			n.Mul(n, big.NewInt(60)).Add(n, d)
		}
		if sign == "-" {
			n.Neg(n)
		}
		if n.IsInt64() {
			return n.Int64()
		}
		return json.Number(n.String())
	case psychFloat.MatchString(s) && strings.ContainsAny(s, "0123456789"):
		if f, err := strconv.ParseFloat(sign+clean, 64); err == nil {
			return f
		}
	}
	return s
}
