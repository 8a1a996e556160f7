package stages

import (
	"context"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/steps"
	"github.com/drover-sh/drover/transport"
)

// rebootingHost is a fake host whose boot id changes once a reboot is started,
// and whose package manager has demo-tool 1.0 -> 1.1 to upgrade.
type rebootingHost struct {
	id      string
	upgrade bool // the upgrade ran
	cmds    []string
}

func (h *rebootingHost) Run(_ context.Context, c *transport.Command) (*transport.Result, error) {
	h.cmds = append(h.cmds, c.Cmd)
	out := ""
	switch {
	case strings.HasPrefix(c.Cmd, "cat /proc/sys/kernel/random/boot_id ||"):
		out = h.id + "\n@@required\n"
	case c.Cmd == "cat /proc/sys/kernel/random/boot_id":
		out = h.id + "\n"
	case strings.HasPrefix(c.Cmd, "nohup sh -c"):
		h.id = "c3d4e5f6-0000-4000-8000-000000000002"
	case strings.HasPrefix(c.Cmd, "apt-get update"):
		out = "Inst demo-tool [1.0] (1.1 drover-lab:lab [all])\n"
	case strings.HasPrefix(c.Cmd, "DEBIAN_FRONTEND=noninteractive apt-get -y -q"):
		h.upgrade = true
	case strings.HasPrefix(c.Cmd, "dpkg-query"):
		out = "demo-tool\t1.0\tii \n"
		if h.upgrade {
			out = "demo-tool\t1.1\tii \n"
		}
	}
	return &transport.Result{Stdout: []byte(out)}, nil
}

func (h *rebootingHost) Upload(context.Context, io.Reader, string, fs.FileMode, *transport.Become) error {
	return nil
}
func (h *rebootingHost) Close() error { return nil }

func TestDefaultStepsPatchAndReboot(t *testing.T) {
	for _, kind := range []string{"patch", "reboot"} {
		if err := (DefaultSteps{}).Supports(kind); err != nil {
			t.Errorf("Supports(%s): %v", kind, err)
		}
	}
	h := &rebootingHost{id: "a1b2c3d4-0000-4000-8000-000000000001"}
	facts := map[string]any{"package_manager": "apt"}
	ctx := context.Background()

	res := DefaultSteps{}.Exec(ctx, h, &playbook.StepSpec{Patch: &playbook.PatchSpec{Mode: "upgrade", Exclude: []string{"demo-web"}}}, facts, steps.Options{})
	if res.Status != steps.StatusChanged || res.Detail != "1 upgraded: demo-tool 1.0 -> 1.1" {
		t.Errorf("patch: %s %q", res.Status, res.Detail)
	}

	spec := &playbook.StepSpec{Resolved: playbook.Resolved{Timeout: time.Minute}, Reboot: &playbook.RebootSpec{}}
	res = DefaultSteps{}.Exec(ctx, h, spec, facts, steps.Options{})
	if res.Status != steps.StatusChanged || !strings.HasPrefix(res.Detail, "rebooted (boot id a1b2c3d4 -> c3d4e5f6, back after ") {
		t.Errorf("reboot: %s %q", res.Status, res.Detail)
	}

	res = DefaultSteps{}.Exec(ctx, h, &playbook.StepSpec{Patch: &playbook.PatchSpec{}}, map[string]any{"package_manager": "pacman"}, steps.Options{})
	if res.Status != steps.StatusFailed || !strings.Contains(res.Detail, "pacman") {
		t.Errorf("patch on an unknown package manager: %s %q", res.Status, res.Detail)
	}
}
