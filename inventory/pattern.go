package inventory

import (
	"fmt"
	"regexp"
	"strings"
)

// Select returns the hosts matching an Ansible-style pattern, in inventory order,
// each once.
//
// Terms are joined by ',' (or, when the pattern has no comma, by ':' or
// whitespace, as Ansible splits them). A term is "all" or "*", a host or group
// name, a glob (web-*, db?, [ab]*) or a regex after '~' (matched from the start
// of the name, as Ansible's re.match does). "!term" excludes and "&term"
// intersects; as in Ansible, the plain terms are united first (no plain term
// means "all"), then intersected, then excluded. A group name selects its hosts
// and those of its descendants; an exact host name wins over a group of the same
// name.
//
// Unlike Ansible, which warns and carries on, a term that matches no host and no
// group is an error naming the term: a typo in a fleet-wide pattern must not
// silently shrink or empty the target set. (A known but empty group is fine.)
func (inv *Inventory) Select(pattern string) ([]*Host, error) {
	terms, err := splitPattern(pattern)
	if err != nil {
		return nil, err
	}
	var plain, inter, excl []string
	for _, t := range terms {
		switch t[0] {
		case '!':
			excl = append(excl, t)
		case '&':
			inter = append(inter, t)
		default:
			plain = append(plain, t)
		}
	}
	if len(plain) == 0 {
		plain = []string{"all"}
	}
	m := &matcher{inv: inv, groupHosts: map[string]map[string]bool{}}
	selected := map[string]bool{}
	for _, t := range plain {
		hosts, err := m.term(t)
		if err != nil {
			return nil, err
		}
		for h := range hosts {
			selected[h] = true
		}
	}
	for _, t := range inter {
		hosts, err := m.term(t[1:])
		if err != nil {
			return nil, err
		}
		for h := range selected {
			if !hosts[h] {
				delete(selected, h)
			}
		}
	}
	for _, t := range excl {
		hosts, err := m.term(t[1:])
		if err != nil {
			return nil, err
		}
		for h := range hosts {
			delete(selected, h)
		}
	}
	out := []*Host{}
	for _, h := range inv.Hosts {
		if selected[h.Name] {
			out = append(out, h)
		}
	}
	return out, nil
}

// splitPattern splits like Ansible's split_host_pattern, but refuses what
// Ansible would silently drop (stray brackets, empty terms after ! or &).
func splitPattern(pattern string) ([]string, error) {
	var terms []string
	if strings.Contains(pattern, ",") {
		terms = strings.Split(pattern, ",")
	} else if _, _, ok := parseAddress(strings.TrimSpace(pattern)); ok {
		terms = []string{pattern}
	} else {
		var cur strings.Builder
		flush := func() {
			terms = append(terms, cur.String())
			cur.Reset()
		}
		for i := 0; i < len(pattern); i++ {
			c := pattern[i]
			switch c {
			case ':', ' ', '\t', '\n', '\r':
				flush()
			case '[':
				end := strings.IndexByte(pattern[i:], ']')
				if end < 0 {
					return nil, fmt.Errorf("pattern %q: unclosed '['", pattern)
				}
				cur.WriteString(pattern[i : i+end+1])
				i += end
			case ']':
				return nil, fmt.Errorf("pattern %q: unexpected ']'", pattern)
			default:
				cur.WriteByte(c)
			}
		}
		flush()
	}
	var out []string
	for _, t := range terms {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if (t[0] == '!' || t[0] == '&') && strings.TrimSpace(t[1:]) == "" {
			return nil, fmt.Errorf("pattern %q: %q must be followed by a host, group, glob or ~regex", pattern, t)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty host pattern %q", pattern)
	}
	return out, nil
}

type matcher struct {
	inv        *Inventory
	groupHosts map[string]map[string]bool
}

// hostsOf returns the hosts of a group and all its descendants.
func (m *matcher) hostsOf(group string) map[string]bool {
	if hs, ok := m.groupHosts[group]; ok {
		return hs
	}
	hs := map[string]bool{}
	m.groupHosts[group] = hs // placeholder also stops cycles in hand-built inventories
	if g, ok := m.inv.Groups[group]; ok {
		for _, h := range g.Hosts {
			hs[h] = true
		}
		for _, c := range g.Children {
			for h := range m.hostsOf(c) {
				hs[h] = true
			}
		}
	}
	return hs
}

// term resolves one term without its ! or & prefix.
func (m *matcher) term(t string) (map[string]bool, error) {
	if _, ok := m.inv.Lookup(t); ok {
		return map[string]bool{t: true}, nil
	}
	var re *regexp.Regexp
	var err error
	isGlob := strings.ContainsAny(t, "?*[")
	switch {
	case t[0] == '~':
		re, err = regexp.Compile(`^(?:` + t[1:] + `)`)
		if err != nil {
			return nil, fmt.Errorf("pattern term %q: invalid regular expression: %w", t, err)
		}
	case isGlob:
		re, err = globRegexp(t)
		if err != nil {
			return nil, fmt.Errorf("pattern term %q: %w", t, err)
		}
	}
	match := func(name string) bool {
		if re != nil {
			return re.MatchString(name)
		}
		return name == t
	}
	out := map[string]bool{}
	groupMatched := false
	for name := range m.inv.Groups {
		if match(name) {
			groupMatched = true
			for h := range m.hostsOf(name) {
				out[h] = true
			}
		}
	}
	// As Ansible: host names are tried when no group matched, and always for
	// globs, regexes and dotted names.
	if !groupMatched || re != nil || strings.Contains(t, ".") {
		for _, h := range m.inv.Hosts {
			if match(h.Name) {
				out[h.Name] = true
			}
		}
	}
	if len(out) == 0 && !groupMatched {
		return nil, fmt.Errorf("pattern term %q matches no host or group in inventory %s", t, m.inv.Source)
	}
	return out, nil
}

// globRegexp translates a shell glob as Python's fnmatch.translate does
// (*, ?, [seq], [!seq]; a '[' without ']' is literal), matching the whole name.
func globRegexp(glob string) (*regexp.Regexp, error) {
	var sb strings.Builder
	sb.WriteString(`^(?s:`)
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch c {
		case '*':
			sb.WriteString(`.*`)
		case '?':
			sb.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(glob) && glob[j] == '!' {
				j++
			}
			if j < len(glob) && glob[j] == ']' {
				j++
			}
			for j < len(glob) && glob[j] != ']' {
				j++
			}
			if j >= len(glob) {
				sb.WriteString(`\[`)
				continue
			}
			class := glob[i+1 : j]
			neg := strings.HasPrefix(class, "!")
			class = strings.TrimPrefix(class, "!")
			sb.WriteByte('[')
			if neg {
				sb.WriteByte('^')
			}
			sb.WriteString(strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`, `^`, `\^`).Replace(class))
			sb.WriteByte(']')
			i = j
		default:
			if c >= 0x80 { // part of a UTF-8 sequence, never a metacharacter
				sb.WriteByte(c)
			} else {
				sb.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
	}
	sb.WriteString(`)$`)
	return regexp.Compile(sb.String())
}
