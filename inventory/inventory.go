// Package inventory loads drover's host inventories (drover HCL, Ansible INI and
// YAML, dynamic-inventory executables, inline lists) into one model and selects
// hosts from it with Ansible-style patterns.
//
// The model follows Ansible's so that an Ansible inventory means the same thing to
// drover as to ansible-inventory: the same groups ("all" and "ungrouped" always
// exist), the same variable precedence and the same `--list` rendering.
//
// Numbers in Vars are int64 when the source writes an integer that fits, float64
// otherwise; strings, bools, nil, []any and map[string]any complete the set.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Host is one inventory host with its connection settings resolved from the
// inventory (ansible_host, ansible_port, … or drover HCL attributes).
type Host struct {
	Name      string
	Address   string         // "" when the inventory gives none (then the name is used / ssh_config decides)
	Port      int            // 0 = not set
	User      string         // "" = not set
	KeyFiles  []string       // identity files, in order
	ProxyJump string         // "" = not set
	Become    *bool          // nil = not set
	Vars      map[string]any // merged: all < ancestor groups < child groups < host, as Ansible does
	Groups    []string       // every group the host belongs to, including ancestors; "all" included; sorted
}

// Group is one inventory group.
type Group struct {
	Name     string
	Hosts    []string // direct members, inventory order
	Children []string
	Vars     map[string]any // the group's own vars
}

// Inventory is a loaded inventory.
type Inventory struct {
	Source string
	Hosts  []*Host           // inventory order (first appearance), stable
	Groups map[string]*Group // always has "all" and "ungrouped" like Ansible

	byName map[string]*Host
	// listExtra holds, per host, connection settings that the source gave as
	// attributes rather than ansible_* vars (drover HCL), so AnsibleList can show
	// them the way Ansible expects them.
	listExtra map[string]map[string]any
}

// Load reads an inventory. The kind is detected from src:
//   - an existing executable file: a dynamic inventory, run with `--list` (and
//     `--host NAME` per host when its output has no _meta.hostvars);
//   - *.hcl: drover's HCL inventory;
//   - *.yml, *.yaml, *.json, or a file without extension whose content is a YAML
//     mapping: Ansible YAML;
//   - any other file: Ansible INI;
//   - not a file but containing a comma: an inline list "h1,h2" (empty items dropped).
func Load(ctx context.Context, src string) (*Inventory, error) {
	st, err := os.Stat(src)
	switch {
	case err == nil && st.IsDir():
		return nil, fmt.Errorf("inventory %s: is a directory (inventory directories are not supported)", src)
	case err == nil:
		return loadFile(ctx, src, st)
	case errors.Is(err, fs.ErrNotExist) && strings.Contains(src, ","):
		return loadInline(src)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("inventory %s: no such file", src)
	default:
		return nil, fmt.Errorf("inventory %s: %w", src, err)
	}
}

func loadFile(ctx context.Context, path string, st fs.FileInfo) (*Inventory, error) {
	if st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
		inv, err := loadScript(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("inventory %s: %w", path, err)
		}
		return inv, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	var inv *Inventory
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".hcl":
		inv, err = parseHCL(path, data)
		if err != nil {
			// Diagnostics already carry file:line:col.
			return nil, err
		}
		return inv, nil
	case ".yml", ".yaml", ".json":
		inv, err = parseYAML(path, data)
	case "":
		// Like Ansible's yaml plugin, an extension-less file is tried as YAML
		// first; INI content never parses as a YAML mapping.
		if looksLikeYAMLMapping(data) {
			inv, err = parseYAML(path, data)
		} else {
			inv, err = parseINI(path, data)
		}
	default:
		inv, err = parseINI(path, data)
	}
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	return inv, nil
}

// loadInline reads "h1,h2,h3" as Ansible's host_list plugin does: items are
// trimmed, empty ones dropped, "host:port" sets ansible_port, all go to "ungrouped".
func loadInline(src string) (*Inventory, error) {
	b := newBuilder(src)
	for _, item := range strings.Split(src, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, port, ok := parseAddress(item)
		if !ok {
			name, port = item, 0
		}
		if _, seen := b.hosts[name]; seen {
			continue
		}
		if err := b.addHost(name, "ungrouped", port); err != nil {
			return nil, fmt.Errorf("inventory %s: %w", src, err)
		}
	}
	inv, err := b.finish()
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", src, err)
	}
	return inv, nil
}

// Lookup returns the host called name.
func (inv *Inventory) Lookup(name string) (*Host, bool) {
	if inv.byName != nil {
		h, ok := inv.byName[name]
		return h, ok
	}
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return nil, false
}
