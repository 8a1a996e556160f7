package inventory

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// FuzzScriptList feeds arbitrary --list output (and --host output for scripts
// without _meta) to the dynamic-inventory parser. Script output is untrusted:
// the parser must not panic, and what it accepts must be a sound inventory.
func FuzzScriptList(f *testing.F) {
	f.Add([]byte(`{"web": {"hosts": ["web-2", "web-1"], "vars": {"http_port": 8080}, "children": ["canary"]},
 "canary": ["web-1"], "solo": {"ansible_host": "10.9.9.9"}, "all": {"vars": {"ntp": ["a", "b"]}},
 "_meta": {"hostvars": {"web-1": {"ansible_host": "10.0.0.1"}, "db-1": {"ansible_port": 5433, "big": 12345678901234}}}}`),
		[]byte(`{"x": 1}`))
	f.Add([]byte(`{"g": ["h1", "h2"], "h": {"children": ["g"]}}`), []byte(`{"ansible_port": "22", "ansible_host": "a"}`))
	f.Add([]byte(`{"a": {"children": ["b"]}, "b": {"children": ["a"]}}`), []byte(`null`))
	f.Add([]byte(`{"_meta": {"hostvars": 5}, "g": {"hosts": [null, 1]}}`), []byte(`[]`))
	f.Add([]byte(`{"g": ["h"], "g": ["i"], "all": ["j"], "ungrouped": {"vars": {"k": 1e400}}}`), []byte(`{"ansible_port": 99999}`))
	f.Add([]byte(`{"g": {"hosts": ["h[1:3]"], "vars": "x"}}`), []byte(`{"ansible_host": "-oProxyCommand=x"}`))
	f.Add([]byte(`[1]`), []byte(``))
	f.Fuzz(func(t *testing.T, list, hostVars []byte) {
		inv, err := parseScriptList("fuzz-script", list, func(string) (any, error) {
			if len(strings.TrimSpace(string(hostVars))) == 0 {
				return nil, nil
			}
			// As scriptHostVars does: its errors name the script.
			v, err := decodeJSONValue(hostVars)
			if err != nil {
				return nil, fmt.Errorf("fuzz-script --host: %w", err)
			}
			return v, nil
		})
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz-script") {
				t.Fatalf("error %q does not name the script", err)
			}
			return
		}
		if !json.Valid(list) {
			t.Fatalf("accepted invalid JSON %q", list)
		}
		checkInventory(t, inv)
	})
}
