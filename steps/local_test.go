package steps

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/transport"
)

// localRunner runs commands with this machine's sh, to check generated scripts
// against the real tools where the test host has them (Debian: dpkg, apt).
type localRunner struct{}

func (localRunner) Run(ctx context.Context, c *transport.Command) (*transport.Result, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", c.Cmd)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code, err = ee.ExitCode(), nil
	}
	return &transport.Result{ExitCode: code, Stdout: out.Bytes(), Stderr: errb.Bytes()}, err
}

func (localRunner) Upload(context.Context, io.Reader, string, fs.FileMode, *transport.Become) error {
	return errors.New("not supported")
}
func (localRunner) Close() error { return nil }

// Every generated script must be valid POSIX sh.
func TestScriptsParse(t *testing.T) {
	yes := true
	var scripts []string
	for _, pm := range []string{"apt", "dnf", "yum", "zypper", "apk"} {
		m, _ := PackageManagerFor(pm)
		b := m.(*pkgManager).b
		scripts = append(scripts, b.status("demo-web"), b.refreshScript(time.Hour, 60), b.refreshScript(0, 60))
		for _, a := range []PackageAction{{Name: "demo-web", Version: "1:2.0~rc1"}, {Name: "demo-web", State: StateLatest}, {Name: "demo-web", State: StateAbsent}} {
			c, err := m.Commands(a)
			if err != nil {
				t.Fatal(err)
			}
			scripts = append(scripts, c...)
		}
	}
	for _, is := range []string{"systemd", "sysv", "openrc"} {
		m, _ := ServiceManagerFor(is)
		b := m.(*svcManager).b
		c, _ := m.Commands(ServiceAction{Name: "demo-web", State: ServiceRestarted, Enabled: &yes})
		scripts = append(scripts, b.status("demo-web"), b.verifyScript("demo-web", time.Second), strings.Join(c, " && "))
	}
	scripts = append(scripts, Puppet{}.runScript(PuppetRun{Tags: []string{"a"}}, true))
	for _, s := range scripts {
		if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v: %s\n%s", err, out, s)
		}
	}
}

// The apt status query against this Debian host's real dpkg and apt-cache.
func TestAptStatusLocal(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Fatal("dpkg-query is required (Debian test host)")
	}
	m, _ := PackageManagerFor("apt")
	ctx := context.Background()
	st, err := m.Status(ctx, localRunner{}, "sudo", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "sudo").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Installed || st.Version != string(want) {
		t.Errorf("sudo: %+v, want installed %s", st, want)
	}
	st, err = m.Status(ctx, localRunner{}, "drover-no-such-package", nil)
	if err != nil || st.Installed || st.Version != "" {
		t.Errorf("missing package: %+v %v", st, err)
	}
	// Already at the installed version: ok after a single query, nothing changed.
	res, err := m.Apply(ctx, localRunner{}, PackageAction{Name: "sudo", Version: string(want)}, Options{})
	if err != nil || res.Status != StatusOK || res.Before["version"] != string(want) {
		t.Errorf("apply at target: %+v %v", res, err)
	}
}
