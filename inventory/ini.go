package inventory

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	iniSectionRE   = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`)
	iniGroupNameRE = regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
)

type iniPending struct {
	line    int
	state   string
	parents []string
}

// parseINI reads an Ansible INI inventory, following Ansible's ini plugin line
// by line (sections, pending forward references, value parsing) so results match
// ansible-inventory.
func parseINI(source string, data []byte) (*Inventory, error) {
	b := newBuilder(source)
	pending := map[string]*iniPending{}
	var pendingOrder []string
	group, state := "ungrouped", "hosts"
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	errAt := func(n int, format string, args ...any) error {
		return fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...))
	}
	var addPendingChildren func(g string) error
	addPendingChildren = func(g string) error {
		p := pending[g]
		delete(pending, g)
		for _, parent := range p.parents {
			if err := b.addChild(parent, g); err != nil {
				return err
			}
			if pp, ok := pending[parent]; ok && pp.state == "children" {
				if err := addPendingChildren(parent); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if m := iniSectionRE.FindStringSubmatch(line); m != nil {
			group, state = m[1], m[2]
			if state == "" {
				state = "hosts"
			}
			if state != "hosts" && state != "children" && state != "vars" {
				return nil, errAt(n, "section [%s:%s] has unknown type: %s", m[1], m[2], state)
			}
			if _, ok := b.groups[group]; !ok {
				if _, ok := pending[group]; state == "vars" && !ok {
					pending[group] = &iniPending{line: n, state: state}
					pendingOrder = append(pendingOrder, group)
				}
				if err := b.addGroup(group); err != nil {
					return nil, errAt(n, "%v", err)
				}
			}
			if p, ok := pending[group]; ok && state != "vars" {
				switch p.state {
				case "children":
					if err := addPendingChildren(group); err != nil {
						return nil, errAt(n, "%v", err)
					}
				case "vars":
					delete(pending, group)
				}
			}
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			return nil, errAt(n, "invalid section entry %q: make sure there are no spaces or other invalid characters in it", line)
		}
		switch state {
		case "hosts":
			toks, err := shlexSplit(line, true)
			if err != nil {
				return nil, errAt(n, "host definition %q: %v", line, err)
			}
			if len(toks) == 0 || toks[0] == "" {
				return nil, errAt(n, "host definition %q names no host", line)
			}
			names, port, err := expandINIHost(toks[0])
			if err != nil {
				return nil, errAt(n, "%v", err)
			}
			vars := map[string]any{}
			var keys []string
			for _, t := range toks[1:] {
				k, v, ok := strings.Cut(t, "=")
				if !ok {
					return nil, errAt(n, "expected key=value host variable assignment, got: %s", t)
				}
				if _, dup := vars[k]; !dup {
					keys = append(keys, k)
				}
				vars[k] = parsePyValue(v)
			}
			for _, name := range names {
				if err := b.addHost(name, group, port); err != nil {
					return nil, errAt(n, "%v", err)
				}
				for _, k := range keys {
					if err := b.setVar(name, k, deepCopy(vars[k])); err != nil {
						return nil, errAt(n, "%v", err)
					}
				}
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, errAt(n, "expected key=value, got: %s", line)
			}
			if err := b.setVar(group, strings.TrimSpace(k), parsePyValue(strings.TrimSpace(v))); err != nil {
				return nil, errAt(n, "%v", err)
			}
		case "children":
			m := iniGroupNameRE.FindStringSubmatch(line)
			if m == nil {
				return nil, errAt(n, "expected group name, got: %s", line)
			}
			child := m[1]
			if _, ok := b.groups[child]; ok {
				if err := b.addChild(group, child); err != nil {
					return nil, errAt(n, "%v", err)
				}
			} else if p, ok := pending[child]; ok {
				p.parents = append(p.parents, group)
			} else {
				pending[child] = &iniPending{line: n, state: "children", parents: []string{group}}
				pendingOrder = append(pendingOrder, child)
			}
		}
	}
	for _, g := range pendingOrder {
		p, ok := pending[g]
		if !ok {
			continue
		}
		if p.state == "vars" {
			return nil, errAt(p.line, "section [%s:vars] is for a group that is never defined", g)
		}
		return nil, errAt(p.line, "section [%s:children] includes undefined group: %s", p.parents[len(p.parents)-1], g)
	}
	return b.finish()
}

// expandINIHost splits an optional :port and expands ranges in the first token
// of an INI host line.
func expandINIHost(pattern string) ([]string, int, error) {
	host, port, ok := parseAddress(pattern)
	if !ok {
		host, port = pattern, 0
	}
	if strings.HasSuffix(strings.TrimSpace(pattern), ":") && port == 0 {
		return nil, 0, fmt.Errorf("invalid host pattern %q: a trailing ':' is reserved for a port", pattern)
	}
	names, err := expandHostRange(host)
	if err != nil {
		return nil, 0, err
	}
	for _, n := range names {
		if strings.TrimSpace(n) == "---" {
			return nil, 0, fmt.Errorf("invalid host pattern %q: '---' is normally a sign this is a YAML file", pattern)
		}
	}
	return names, port, nil
}
