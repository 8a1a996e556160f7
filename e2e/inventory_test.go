package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"testing"
	"time"
)

// TestInventoryListAgreesWithAnsible feeds the lab's Ansible INI inventory to drover and to
// ansible-inventory itself: the JSON documents must be the same.
func TestInventoryListAgreesWithAnsible(t *testing.T) {
	r := drover(t, "inventory", "list", "--json", "-i", shared.lab.InventoryINI)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, "ansible-inventory", "-i", shared.lab.InventoryINI, "--list")
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "ANSIBLE_HOME=" + home, "ANSIBLE_LOCAL_TEMP=" + home}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-inventory: %v", err)
	}
	var want any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("ansible-inventory printed no JSON: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("drover inventory list --json differs from ansible-inventory --list\ndrover:  %s\nansible: %s", r.stdout, out)
	}
}
