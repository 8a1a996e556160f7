package inventory

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"al.essio.dev/pkg/shellescape"
)

// builder mirrors Ansible's InventoryData: every parser feeds it the same calls
// Ansible's plugins make (add_group, add_host, add_child, set_variable), so group
// order, membership and "ungrouped" come out as ansible-inventory shows them.
type builder struct {
	source     string
	hosts      map[string]*bHost
	hostOrder  []string
	groups     map[string]*bGroup
	groupOrder []string
	conn       map[string]*hostConn // explicit connection settings (drover HCL)
}

type bHost struct {
	name   string
	vars   map[string]any
	groups []string // direct groups, in the order the host joined them
}

type bGroup struct {
	name     string
	hosts    []string
	hostSet  map[string]bool // hosts, for O(1) membership in big groups
	children []string
	parents  []string
	vars     map[string]any
	priority int
}

// hostConn holds connection settings given as attributes rather than vars.
type hostConn struct {
	address, user, proxyJump string
	port                     int
	keys                     []string
	become                   *bool
}

func newBuilder(source string) *builder {
	b := &builder{
		source: source,
		hosts:  map[string]*bHost{},
		groups: map[string]*bGroup{},
		conn:   map[string]*hostConn{},
	}
	b.addGroup("all")
	b.addGroup("ungrouped")
	// Cannot fail: both groups exist and form no cycle.
	_ = b.addChild("all", "ungrouped")
	return b
}

func (b *builder) addGroup(name string) error {
	if name == "" {
		return fmt.Errorf("empty group name")
	}
	if _, ok := b.groups[name]; ok {
		return nil
	}
	b.groups[name] = &bGroup{name: name, vars: map[string]any{}, hostSet: map[string]bool{}, priority: 1}
	b.groupOrder = append(b.groupOrder, name)
	return nil
}

// addHost creates the host if needed (port sets ansible_port only then, as
// Ansible's Host constructor does) and adds it to group when group is not "".
func (b *builder) addHost(name, group string, port int) error {
	if name == "" {
		return fmt.Errorf("empty host name")
	}
	var g *bGroup
	if group != "" {
		var ok bool
		if g, ok = b.groups[group]; !ok {
			return fmt.Errorf("group %q is not defined", group)
		}
	}
	h, ok := b.hosts[name]
	if !ok {
		h = &bHost{name: name, vars: map[string]any{}}
		if port > 0 {
			h.vars["ansible_port"] = int64(port)
		}
		b.hosts[name] = h
		b.hostOrder = append(b.hostOrder, name)
	}
	if g != nil && !g.hostSet[name] {
		g.hosts = append(g.hosts, name)
		g.hostSet[name] = true
		h.groups = append(h.groups, group)
	}
	return nil
}

func (b *builder) removeHostFromGroup(host, group string) {
	g, h := b.groups[group], b.hosts[host]
	g.hosts = slices.DeleteFunc(g.hosts, func(s string) bool { return s == host })
	delete(g.hostSet, host)
	h.groups = slices.DeleteFunc(h.groups, func(s string) bool { return s == group })
}

// ancestors returns every group above g (not g itself).
func (b *builder) ancestors(g string) map[string]bool {
	seen := map[string]bool{}
	stack := slices.Clone(b.groups[g].parents)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		stack = append(stack, b.groups[p].parents...)
	}
	return seen
}

// addChild adds child (a group, else a host) to group, refusing cycles.
func (b *builder) addChild(group, child string) error {
	g, ok := b.groups[group]
	if !ok {
		return fmt.Errorf("group %q is not defined", group)
	}
	if c, ok := b.groups[child]; ok {
		if group == child || b.ancestors(group)[child] {
			return fmt.Errorf("adding group %q as child of %q creates a cycle", child, group)
		}
		if !slices.Contains(g.children, child) {
			g.children = append(g.children, child)
			c.parents = append(c.parents, group)
		}
		return nil
	}
	if _, ok := b.hosts[child]; ok {
		return b.addHost(child, group, 0)
	}
	return fmt.Errorf("%q is not a known host nor group", child)
}

// setVar sets a variable on a group (preferred, as Ansible does) or a host.
func (b *builder) setVar(entity, key string, value any) error {
	if g, ok := b.groups[entity]; ok {
		if key == "ansible_group_priority" {
			p, ok := toInt(value)
			if !ok {
				return fmt.Errorf("group %s: ansible_group_priority %v is not an integer", entity, value)
			}
			g.priority = p
			return nil
		}
		g.vars[key] = value
		return nil
	}
	if h, ok := b.hosts[entity]; ok {
		h.vars[key] = value
		return nil
	}
	return fmt.Errorf("no host or group named %q", entity)
}

// reconcile applies Ansible's reconcile_inventory: parentless groups become
// children of "all"; hosts in no group but "all" go to "ungrouped", and hosts in
// another group leave it.
func (b *builder) reconcile() {
	for _, name := range b.groupOrder {
		if name != "all" && len(b.groups[name].parents) == 0 {
			_ = b.addChild("all", name) // parentless, so no cycle
		}
	}
	for _, name := range b.hostOrder {
		h := b.hosts[name]
		if slices.Contains(h.groups, "ungrouped") {
			for _, g := range h.groups {
				if g != "all" && g != "ungrouped" {
					b.removeHostFromGroup(name, "ungrouped")
					break
				}
			}
		} else if len(h.groups) == 0 || (len(h.groups) == 1 && h.groups[0] == "all") {
			_ = b.addHost(name, "ungrouped", 0)
		}
	}
}

// depths returns each group's longest distance from "all", which orders group
// vars as Ansible's Group.depth does.
func (b *builder) depths() map[string]int {
	d := map[string]int{}
	var depth func(string) int
	depth = func(g string) int {
		if v, ok := d[g]; ok {
			return v
		}
		d[g] = 0 // the graph is acyclic; this only guards the recursion
		best := 0
		for _, p := range b.groups[g].parents {
			best = max(best, depth(p)+1)
		}
		d[g] = best
		return best
	}
	for _, g := range b.groupOrder {
		depth(g)
	}
	return d
}

func (b *builder) finish() (*Inventory, error) {
	b.reconcile()
	inv := &Inventory{
		Source:    b.source,
		Groups:    make(map[string]*Group, len(b.groups)),
		byName:    make(map[string]*Host, len(b.hosts)),
		listExtra: map[string]map[string]any{},
	}
	for _, name := range b.groupOrder {
		g := b.groups[name]
		inv.Groups[name] = &Group{
			Name:     name,
			Hosts:    slices.Clone(g.hosts),
			Children: slices.Clone(g.children),
			Vars:     deepCopyMap(g.vars),
		}
	}
	depth := b.depths()
	for _, name := range b.hostOrder {
		bh := b.hosts[name]
		member := map[string]bool{}
		for _, g := range bh.groups {
			member[g] = true
			maps.Copy(member, b.ancestors(g))
		}
		member["all"] = true
		groups := slices.Sorted(maps.Keys(member))
		ordered := slices.DeleteFunc(slices.Clone(groups), func(g string) bool { return g == "all" })
		slices.SortStableFunc(ordered, func(x, y string) int {
			gx, gy := b.groups[x], b.groups[y]
			if c := depth[x] - depth[y]; c != 0 {
				return c
			}
			if c := gx.priority - gy.priority; c != 0 {
				return c
			}
			return strings.Compare(x, y)
		})
		vars := maps.Clone(b.groups["all"].vars)
		for _, g := range ordered {
			maps.Copy(vars, b.groups[g].vars)
		}
		maps.Copy(vars, bh.vars)
		h := &Host{Name: name, Vars: deepCopyMap(vars), Groups: groups}
		if err := connFromVars(h); err != nil {
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		if c := b.conn[name]; c != nil {
			inv.listExtra[name] = c.apply(h)
		}
		inv.Hosts = append(inv.Hosts, h)
		inv.byName[name] = h
	}
	return inv, nil
}

// apply overrides h's connection fields with the explicit settings and returns
// them as the ansible_* vars Ansible would need for the same effect.
func (c *hostConn) apply(h *Host) map[string]any {
	extra := map[string]any{}
	if c.address != "" {
		h.Address = c.address
		extra["ansible_host"] = c.address
	}
	if c.port != 0 {
		h.Port = c.port
		extra["ansible_port"] = int64(c.port)
	}
	if c.user != "" {
		h.User = c.user
		extra["ansible_user"] = c.user
	}
	if len(c.keys) > 0 {
		h.KeyFiles = slices.Clone(c.keys)
		extra["ansible_ssh_private_key_file"] = c.keys[0]
	}
	if c.proxyJump != "" {
		h.ProxyJump = c.proxyJump
		extra["ansible_ssh_common_args"] = "-J " + shellescape.Quote(c.proxyJump)
	}
	if c.become != nil {
		v := *c.become
		h.Become = &v
		extra["ansible_become"] = v
	}
	return extra
}

// connFromVars fills the connection fields from Ansible's connection variables
// (the ansible_ssh_* spellings are the older aliases).
func connFromVars(h *Host) error {
	first := func(keys ...string) (any, string, bool) {
		for _, k := range keys {
			if v, ok := h.Vars[k]; ok && v != nil {
				return v, k, true
			}
		}
		return nil, "", false
	}
	if v, _, ok := first("ansible_host", "ansible_ssh_host"); ok {
		h.Address = scalarString(v)
	}
	if v, k, ok := first("ansible_port", "ansible_ssh_port"); ok {
		p, ok := toInt(v)
		if !ok || p < 1 || p > 65535 {
			return fmt.Errorf("%s %q is not a port number", k, scalarString(v))
		}
		h.Port = p
	}
	if v, _, ok := first("ansible_user", "ansible_ssh_user"); ok {
		h.User = scalarString(v)
	}
	if v, k, ok := first("ansible_ssh_private_key_file", "ansible_private_key_file"); ok {
		switch v := v.(type) {
		case []any:
			for _, item := range v {
				h.KeyFiles = append(h.KeyFiles, scalarString(item))
			}
		case string:
			if v != "" {
				h.KeyFiles = []string{v}
			}
		default:
			return fmt.Errorf("%s must be a path", k)
		}
	}
	if v, k, ok := first("ansible_become"); ok {
		bv, ok := ansibleBool(v)
		if !ok {
			return fmt.Errorf("%s %q is not a boolean", k, scalarString(v))
		}
		h.Become = &bv
	}
	for _, k := range []string{"ansible_ssh_common_args", "ansible_ssh_extra_args"} {
		if s, ok := h.Vars[k].(string); ok {
			if pj := proxyJumpFromArgs(s); pj != "" {
				h.ProxyJump = pj
				break
			}
		}
	}
	return nil
}

// proxyJumpFromArgs finds `-J HOPS`, `-JHOPS` or `-o ProxyJump=HOPS` in ssh
// arguments; anything it cannot read plainly (ProxyCommand, bad quoting) is left
// to the user's ssh_config.
func proxyJumpFromArgs(args string) string {
	toks, err := shlexSplit(args, false)
	if err != nil {
		return ""
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		var opt string
		switch {
		case t == "-J" && i+1 < len(toks):
			return toks[i+1]
		case strings.HasPrefix(t, "-J") && len(t) > 2:
			return t[2:]
		case t == "-o" && i+1 < len(toks):
			opt = toks[i+1]
			i++
		case strings.HasPrefix(t, "-o") && len(t) > 2:
			opt = t[2:]
		default:
			continue
		}
		k, v, found := strings.Cut(opt, "=")
		if !found {
			k, v, found = strings.Cut(strings.TrimSpace(opt), " ")
		}
		if found && strings.EqualFold(strings.TrimSpace(k), "ProxyJump") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ansibleBool converts as Ansible's boolean() filter does.
func ansibleBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case int64:
		if v == 0 || v == 1 {
			return v == 1, true
		}
	case float64:
		if v == 0 || v == 1 {
			return v == 1, true
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "y", "yes", "on", "1", "true", "t":
			return true, true
		case "n", "no", "off", "0", "false", "f":
			return false, true
		}
	}
	return false, false
}

func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case int64:
		if v >= math.MinInt32 && v <= math.MaxInt32 {
			return int(v), true
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= math.MaxInt32 {
			return int(v), true
		}
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil
	}
	return 0, false
}

func scalarString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return deepCopyMap(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// AnsibleList renders the inventory as `ansible-inventory -i SRC --list` does:
// {"_meta":{"hostvars":{...}}, "all":{"children":[...]}, "GROUP":{"hosts":[...],"children":[...]}, ...}.
// Groups without hosts or children are omitted (but still named by their
// parents), hosts without vars are absent from hostvars. Connection settings a
// drover HCL inventory gives as attributes appear as the equivalent ansible_* vars.
func (inv *Inventory) AnsibleList() map[string]any {
	out := map[string]any{}
	seen := map[string]bool{}
	var format func(g *Group)
	format = func(g *Group) {
		entry := map[string]any{}
		if g.Name != "all" && len(g.Hosts) > 0 {
			entry["hosts"] = slices.Clone(g.Hosts)
		}
		var children []string
		for _, c := range g.Children {
			children = append(children, c)
			if sub, ok := inv.Groups[c]; ok && !seen[c] {
				format(sub)
				seen[c] = true
			}
		}
		if len(children) > 0 {
			entry["children"] = children
		}
		if len(entry) > 0 {
			out[g.Name] = entry
		} else {
			delete(out, g.Name)
		}
	}
	if all, ok := inv.Groups["all"]; ok {
		format(all)
	}
	hostvars := map[string]any{}
	for _, h := range inv.Hosts {
		vars := deepCopyMap(h.Vars)
		for k, v := range inv.listExtra[h.Name] {
			if _, set := vars[k]; !set {
				vars[k] = v
			}
		}
		if len(vars) > 0 {
			hostvars[h.Name] = vars
		}
	}
	out["_meta"] = map[string]any{"hostvars": hostvars}
	return out
}
