package inventory

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxYAMLNodes bounds alias expansion ("billion laughs").
const maxYAMLNodes = 1 << 20

// YAML 1.1 implicit types, as PyYAML (and so Ansible) resolves plain scalars.
var (
	yamlBoolRE  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yamlNullRE  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	yamlIntRE   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yamlFloatRE = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
)

// looksLikeYAMLMapping reports whether data is a YAML document whose top level
// is a mapping.
func looksLikeYAMLMapping(data []byte) bool {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return false
	}
	return len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode
}

// parseYAML reads an Ansible YAML inventory as Ansible's yaml plugin does.
func parseYAML(source string, data []byte) (*Inventory, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("parsed empty YAML file")
	}
	// Bound the expanded size first, in time linear in the document: counting
	// while converting would walk a billion-laughs document up to the limit.
	if _, err := expandedSize(doc.Content[0], map[*yaml.Node]int{}, 0); err != nil {
		return nil, err
	}
	conv := &yamlConv{}
	top := resolveAlias(doc.Content[0])
	if top.Kind == yaml.ScalarNode && yamlNullRE.MatchString(top.Value) && top.Style == 0 {
		return nil, errors.New("parsed empty YAML file")
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("YAML inventory has invalid structure, it should be a mapping (line %d)", top.Line)
	}
	b := newBuilder(source)
	pairs, err := conv.pairs(top)
	if err != nil {
		return nil, err
	}
	for _, kv := range pairs {
		if kv.key == "plugin" {
			return nil, errors.New("plugin configuration YAML file, not YAML inventory")
		}
	}
	for _, kv := range pairs {
		if _, err := parseYAMLGroup(b, conv, kv.key, kv.node); err != nil {
			return nil, err
		}
	}
	return b.finish()
}

type yamlPair struct {
	key  string
	node *yaml.Node
}

// parseYAMLGroup returns the group name and whether it was a valid group.
func parseYAMLGroup(b *builder, conv *yamlConv, name string, n *yaml.Node) (bool, error) {
	n = resolveAlias(n)
	if err := conv.enter(n); err != nil {
		return false, err
	}
	defer conv.leave()
	if !(n.Kind == yaml.MappingNode || isYAMLNull(n)) {
		return false, nil // Ansible skips it with a warning
	}
	if err := b.addGroup(name); err != nil {
		return false, fmt.Errorf("line %d: %w", n.Line, err)
	}
	if isYAMLNull(n) {
		return true, nil
	}
	sections, err := conv.pairs(n)
	if err != nil {
		return false, err
	}
	for _, kv := range sections {
		sec := resolveAlias(kv.node)
		// A bare string stands for a mapping with one key.
		if sec.Kind == yaml.ScalarNode && !isYAMLNull(sec) && (kv.key == "hosts" || kv.key == "children" || kv.key == "vars") {
			sec = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{sec, {Kind: yaml.ScalarNode, Tag: "!!null"}}}
		}
		if isYAMLNull(sec) {
			continue
		}
		if sec.Kind != yaml.MappingNode {
			if kv.key == "hosts" || kv.key == "children" || kv.key == "vars" {
				return false, fmt.Errorf("line %d: invalid %q entry for group %q: it must be a mapping", sec.Line, kv.key, name)
			}
			continue
		}
		entries, err := conv.pairs(sec)
		if err != nil {
			return false, err
		}
		switch kv.key {
		case "vars":
			for _, e := range entries {
				v, err := conv.value(e.node)
				if err != nil {
					return false, err
				}
				if err := b.setVar(name, e.key, v); err != nil {
					return false, fmt.Errorf("line %d: %w", e.node.Line, err)
				}
			}
		case "children":
			for _, e := range entries {
				valid, err := parseYAMLGroup(b, conv, e.key, e.node)
				if err != nil {
					return false, err
				}
				if !valid {
					if _, known := b.groups[e.key]; !known {
						return false, fmt.Errorf("line %d: child %q of group %q is not a valid group definition", e.node.Line, e.key, name)
					}
				}
				if err := b.addChild(name, e.key); err != nil {
					return false, fmt.Errorf("line %d: %w", e.node.Line, err)
				}
			}
		case "hosts":
			for _, e := range entries {
				hn := resolveAlias(e.node)
				var vars []yamlPair
				switch {
				case isYAMLNull(hn):
				case hn.Kind == yaml.MappingNode:
					if vars, err = conv.pairs(hn); err != nil {
						return false, err
					}
				default:
					return false, fmt.Errorf("line %d: host %q: vars must be a mapping", hn.Line, e.key)
				}
				names, port, err := expandYAMLHost(e.key)
				if err != nil {
					return false, fmt.Errorf("line %d: %w", hn.Line, err)
				}
				values := make([]any, len(vars))
				for i, v := range vars {
					if values[i], err = conv.value(v.node); err != nil {
						return false, err
					}
				}
				for _, hname := range names {
					if err := b.addHost(hname, name, port); err != nil {
						return false, fmt.Errorf("line %d: %w", hn.Line, err)
					}
					for i, v := range vars {
						if err := b.setVar(hname, v.key, deepCopy(values[i])); err != nil {
							return false, err
						}
					}
				}
			}
		}
	}
	return true, nil
}

func expandYAMLHost(pattern string) ([]string, int, error) {
	host, port, ok := parseAddress(pattern)
	if !ok {
		host, port = pattern, 0
	}
	names, err := expandHostRange(host)
	return names, port, err
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isYAMLNull(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return n.Tag == "!!null"
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return false
	}
	return yamlNullRE.MatchString(n.Value) || n.Tag == "!!null"
}

// yamlConv converts nodes to Go values with YAML 1.1 typing, counting nodes to
// stop alias bombs.
type yamlConv struct{ nodes, depth int }

// maxYAMLDepth stops recursive aliases (an anchor that contains itself).
const maxYAMLDepth = 200

func (c *yamlConv) enter(n *yaml.Node) error {
	c.depth++
	if c.depth > maxYAMLDepth {
		return fmt.Errorf("line %d: YAML nested too deeply (recursive alias?)", n.Line)
	}
	return c.count(n)
}

func (c *yamlConv) leave() { c.depth-- }

// expandedSize is the number of nodes n stands for once every alias is
// expanded, memoised per node so each is measured once; an error when it
// passes maxYAMLNodes or nests past maxYAMLDepth (an anchor inside itself).
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int, depth int) (int, error) {
	if depth > maxYAMLDepth {
		return 0, fmt.Errorf("line %d: YAML nested too deeply (recursive alias?)", n.Line)
	}
	if size, ok := memo[n]; ok {
		return size, nil
	}
	size := 1
	kids := n.Content
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		kids = []*yaml.Node{n.Alias}
	}
	for _, k := range kids {
		ks, err := expandedSize(k, memo, depth+1)
		if err != nil {
			return 0, err
		}
		size += ks
		if size > maxYAMLNodes {
			return 0, fmt.Errorf("line %d: YAML document too large (alias expansion?)", n.Line)
		}
	}
	memo[n] = size
	return size, nil
}

func (c *yamlConv) count(n *yaml.Node) error {
	c.nodes++
	if c.nodes > maxYAMLNodes {
		return fmt.Errorf("line %d: YAML document too large (alias expansion?)", n.Line)
	}
	return nil
}

// pairs returns a mapping's entries in order, later duplicates replacing earlier
// values in place (as a Python dict does), with << merge keys applied.
func (c *yamlConv) pairs(n *yaml.Node) ([]yamlPair, error) {
	n = resolveAlias(n)
	if err := c.enter(n); err != nil {
		return nil, err
	}
	defer c.leave()
	var out []yamlPair
	index := map[string]int{}
	set := func(k string, v *yaml.Node, override bool) {
		if i, ok := index[k]; ok {
			if override {
				out[i].node = v
			}
			return
		}
		index[k] = len(out)
		out = append(out, yamlPair{key: k, node: v})
	}
	var merged []yamlPair
	for i := 0; i+1 < len(n.Content); i += 2 {
		if err := c.count(n.Content[i]); err != nil {
			return nil, err
		}
		k, v := resolveAlias(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			rv := resolveAlias(v)
			srcs := []*yaml.Node{rv}
			if rv.Kind == yaml.SequenceNode {
				srcs = rv.Content
			}
			for _, s := range srcs {
				if s = resolveAlias(s); s.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("line %d: merge key << needs a mapping", s.Line)
				}
				ps, err := c.pairs(s)
				if err != nil {
					return nil, err
				}
				merged = append(merged, ps...)
			}
			continue
		}
		ks, err := c.keyString(k)
		if err != nil {
			return nil, err
		}
		set(ks, v, true)
	}
	for _, m := range merged {
		set(m.key, m.node, false)
	}
	return out, nil
}

func (c *yamlConv) keyString(k *yaml.Node) (string, error) {
	if k.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: mapping keys must be scalars", k.Line)
	}
	v, err := c.value(k)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case nil:
		return "null", nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	default:
		return fmt.Sprint(v), nil
	}
}

func (c *yamlConv) value(n *yaml.Node) (any, error) {
	if err := c.enter(n); err != nil {
		return nil, err
	}
	defer c.leave()
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.ScalarNode:
		return yamlScalar(n), nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		ps, err := c.pairs(n)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(ps))
		for _, p := range ps {
			v, err := c.value(p.node)
			if err != nil {
				return nil, err
			}
			out[p.key] = v
		}
		return out, nil
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return c.value(n.Content[0])
		}
		return nil, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func yamlScalar(n *yaml.Node) any {
	s := n.Value
	if n.Style&yaml.TaggedStyle != 0 {
		switch n.Tag {
		case "!!null":
			return nil
		case "!!bool":
			if b, ok := yaml11Bool(s); ok {
				return b
			}
		case "!!int":
			if v, ok := yaml11Int(s); ok {
				return v
			}
		case "!!float":
			if v, ok := yaml11Float(s); ok {
				return v
			}
		}
		return s // !!str, Ansible's !unsafe and !vault, and anything else
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return s
	}
	switch {
	case yamlNullRE.MatchString(s):
		return nil
	case yamlBoolRE.MatchString(s):
		b, _ := yaml11Bool(s)
		return b
	case yamlIntRE.MatchString(s):
		if v, ok := yaml11Int(s); ok {
			return v
		}
	case yamlFloatRE.MatchString(s):
		if v, ok := yaml11Float(s); ok {
			return v
		}
	}
	return s
}

func yaml11Bool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "yes", "true", "on":
		return true, true
	case "no", "false", "off":
		return false, true
	}
	return false, false
}

func yaml11Int(s string) (any, bool) {
	s = strings.ReplaceAll(s, "_", "")
	sign := ""
	if s != "" && (s[0] == '-' || s[0] == '+') {
		if s[0] == '-' {
			sign = "-"
		}
		s = s[1:]
	}
	var (
		v  any
		ok bool
	)
	switch {
	case s == "0":
		return int64(0), true
	case strings.HasPrefix(s, "0b"):
		v, ok = bigToValue(sign+s[2:], 2)
	case strings.HasPrefix(s, "0x"):
		v, ok = bigToValue(sign+s[2:], 16)
	case strings.HasPrefix(s, "0"):
		v, ok = bigToValue(sign+s[1:], 8)
	case strings.Contains(s, ":"):
		var total int64
		for _, part := range strings.Split(s, ":") {
			d, err := strconv.ParseInt(part, 10, 64)
			if err != nil || total > math.MaxInt64/60 {
				return nil, false
			}
			total = total*60 + d
		}
		if sign == "-" {
			total = -total
		}
		return total, true
	default:
		v, ok = bigToValue(sign+s, 10)
	}
	return v, ok
}

func yaml11Float(s string) (any, bool) {
	s = strings.ToLower(strings.ReplaceAll(s, "_", ""))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	var f float64
	switch {
	case s == ".inf":
		// JSON has no infinity; keep the YAML spelling so output stays encodable.
		if neg {
			return "-.inf", true
		}
		return ".inf", true
	case s == ".nan":
		return ".nan", true
	case strings.Contains(s, ":"):
		parts := strings.Split(s, ":")
		for _, p := range parts {
			d, err := strconv.ParseFloat(p, 64)
			if err != nil {
				return nil, false
			}
			f = f*60 + d
		}
	default:
		var err error
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return nil, false
		}
	}
	if neg {
		f = -f
	}
	return f, true
}
