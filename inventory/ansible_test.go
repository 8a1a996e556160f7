package inventory

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// ansibleList runs the real ansible-inventory on path with only the given
// inventory plugin enabled, and returns its --list JSON decoded.
func ansibleList(t *testing.T, path, plugin string) map[string]any {
	t.Helper()
	bin, err := exec.LookPath("ansible-inventory")
	if err != nil {
		t.Fatalf("ansible-inventory is required for this test (Debian package ansible-core): %v", err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, "-i", path, "--list")
	cmd.Env = append(os.Environ(),
		"ANSIBLE_HOME="+home,
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"),
		"ANSIBLE_INVENTORY_ENABLED="+plugin,
		"ANSIBLE_INVENTORY_UNPARSED_FAILED=true",
		"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true",
		"ANSIBLE_CONFIG="+filepath.Join(home, "none.cfg"),
	)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("ansible-inventory -i %s --list: %v\n%s", path, err, stderr)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ansible-inventory output: %v\n%s", err, out)
	}
	return v
}

// roundTrip normalises a value through JSON, as the comparison needs.
func roundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return out
}

func compareWithAnsible(t *testing.T, path, plugin string) *Inventory {
	t.Helper()
	want := ansibleList(t, path, plugin)
	inv, err := Load(context.Background(), path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	got := roundTrip(t, inv.AnsibleList())
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("AnsibleList() differs from ansible-inventory for %s\n--- got\n%s\n--- want\n%s", path, g, w)
	}
	return inv
}

func TestMatchesAnsibleInventory(t *testing.T) {
	files, err := filepath.Glob("testdata/ansible/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/ansible files: %v", err)
	}
	for _, f := range files {
		plugin := "ini"
		switch filepath.Ext(f) {
		case ".yml", ".yaml", ".json":
			plugin = "yaml"
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			compareWithAnsible(t, f, plugin)
		})
	}
}

// installScript copies a testdata script into a temp dir as an executable, so
// the test does not depend on the checkout's file modes.
func installScript(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDynamicInventoryMatchesAnsible(t *testing.T) {
	for _, name := range []string{"meta.sh", "nometa.sh"} {
		t.Run(name, func(t *testing.T) {
			inv := compareWithAnsible(t, installScript(t, name), "script")
			if len(inv.Hosts) == 0 {
				t.Fatal("no hosts loaded")
			}
		})
	}
}
