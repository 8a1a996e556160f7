package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// maxStderr is how much of a failing script's stderr goes into the error.
const maxStderr = 4096

// loadScript runs a dynamic inventory as Ansible's script plugin does.
func loadScript(ctx context.Context, path string) (*Inventory, error) {
	out, err := runScript(ctx, path, "--list")
	if err != nil {
		return nil, err
	}
	return parseScriptList(path, out, func(host string) (any, error) {
		return scriptHostVars(ctx, path, host)
	})
}

// parseScriptList builds the inventory from --list output; hostVars asks the
// script for one host's vars when the output has no _meta.hostvars. Split from
// loadScript so the parser can be fuzzed without running a process.
func parseScriptList(path string, out []byte, hostVars func(host string) (any, error)) (*Inventory, error) {
	keys, raw, err := decodeOrderedObject(out)
	if err != nil {
		return nil, fmt.Errorf("%s --list: output is not a JSON object: %w", path, err)
	}
	b := newBuilder(path)
	var listed []string // hosts the script named, in order
	seen := map[string]bool{}
	var hostvars map[string]any
	haveMeta := false
	for _, group := range keys {
		v, err := decodeJSONValue(raw[group])
		if err != nil {
			return nil, fmt.Errorf("%s --list: group %q: %w", path, group, err)
		}
		if group == "_meta" {
			if m, ok := v.(map[string]any); ok {
				if hv, ok := m["hostvars"]; ok {
					haveMeta = true
					if hostvars, ok = hv.(map[string]any); !ok && hv != nil {
						return nil, fmt.Errorf("%s --list: _meta.hostvars is not an object", path)
					}
				}
			}
			continue
		}
		hosts, err := scriptGroup(b, group, v)
		if err != nil {
			return nil, fmt.Errorf("%s --list: %w", path, err)
		}
		for _, h := range hosts {
			if !seen[h] {
				seen[h] = true
				listed = append(listed, h)
			}
		}
	}
	for _, h := range listed {
		var vars any
		if haveMeta {
			vars = hostvars[h]
		} else {
			if vars, err = hostVars(h); err != nil {
				return nil, err
			}
		}
		if vars == nil {
			continue
		}
		m, ok := vars.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: vars of host %q are not an object", path, h)
		}
		for k, v := range m {
			if err := b.setVar(h, k, v); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	inv, err := b.finish()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return inv, nil
}

// scriptGroup adds one group of --list output and returns the hosts it names.
func scriptGroup(b *builder, group string, data any) ([]string, error) {
	if err := b.addGroup(group); err != nil {
		return nil, err
	}
	m, isMap := data.(map[string]any)
	if !isMap {
		m = map[string]any{"hosts": data}
	} else if _, h := m["hosts"]; !h {
		_, v := m["vars"]
		_, c := m["children"]
		if !v && !c {
			// Ansible's old shorthand: a mapping without those keys is the group's
			// vars, and the group holds a host named like itself.
			m = map[string]any{"hosts": []any{group}, "vars": m}
		}
	}
	var hosts []string
	if hv, ok := m["hosts"]; ok {
		list, ok := hv.([]any)
		if !ok {
			return nil, fmt.Errorf("group %q: hosts must be a list", group)
		}
		for _, item := range list {
			name, ok := item.(string)
			if !ok {
				return nil, fmt.Errorf("group %q: host names must be strings", group)
			}
			if err := b.addHost(name, group, 0); err != nil {
				return nil, fmt.Errorf("group %q: %w", group, err)
			}
			hosts = append(hosts, name)
		}
	}
	if vv, ok := m["vars"]; ok {
		vars, ok := vv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("group %q: vars must be an object", group)
		}
		for k, v := range vars {
			if err := b.setVar(group, k, v); err != nil {
				return nil, err
			}
		}
	}
	if cv, ok := m["children"]; ok {
		list, ok := cv.([]any)
		if !ok {
			return nil, fmt.Errorf("group %q: children must be a list", group)
		}
		for _, item := range list {
			child, ok := item.(string)
			if !ok {
				return nil, fmt.Errorf("group %q: child names must be strings", group)
			}
			if err := b.addGroup(child); err != nil {
				return nil, fmt.Errorf("group %q: %w", group, err)
			}
			if err := b.addChild(group, child); err != nil {
				return nil, fmt.Errorf("group %q: %w", group, err)
			}
		}
	}
	return hosts, nil
}

func scriptHostVars(ctx context.Context, path, host string) (any, error) {
	out, err := runScript(ctx, path, "--host", host)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, nil
	}
	v, err := decodeJSONValue(out)
	if err != nil {
		return nil, fmt.Errorf("%s --host %s: %w", path, host, err)
	}
	return v, nil
}

func runScript(ctx context.Context, path string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A killed script's children may hold the pipes open; do not wait on them.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), ctxErr)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > maxStderr {
			msg = msg[:maxStderr] + "…"
		}
		if msg != "" {
			return nil, fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// decodeOrderedObject decodes a JSON object keeping its key order, which
// decides group and host order as it does for Ansible.
func decodeOrderedObject(data []byte) ([]string, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New("not an object")
	}
	var keys []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, err
		}
		if _, dup := vals[k]; !dup {
			keys = append(keys, k)
		}
		vals[k] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	if err := jsonEnd(dec); err != nil {
		return nil, nil, err
	}
	return keys, vals, nil
}

// jsonEnd refuses anything but whitespace after the value, as Python's json.loads
// (and so Ansible) does: "{}0" is a broken script, not an empty inventory.
func jsonEnd(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("invalid data after the JSON value at offset %d", dec.InputOffset())
	}
	return nil
}

// decodeJSONValue decodes with integers as int64 (float64 when they do not fit
// or have a fraction), matching the number rule of the YAML and INI parsers.
func decodeJSONValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if err := jsonEnd(dec); err != nil {
		return nil, err
	}
	return fixNumbers(v), nil
}

func fixNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = fixNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = fixNumbers(v[k])
		}
	}
	return v
}
