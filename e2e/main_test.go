// Package e2e holds drover's end-to-end tests: they build the drover binary and drive it
// against a lab of real OpenSSH hosts (package lab) that the tests start themselves.
// They need root, like the lab; `make test` runs them.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-sh/drover/lab"
)

// labHosts is the size of the shared lab; the acceptance runs use 20.
const labHosts = 20

// env is what every test shares: the built binary and the running lab. Tests that change a
// host (freeze, kill, key rotation) undo it before they return, and none run in parallel.
type env struct {
	bin string
	lab *lab.Lab
	tmp string
}

var shared *env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: these tests start real sshd hosts in namespaces and need root; run `make test` as root")
		return 1
	}
	tmp, err := os.MkdirTemp("", "drover-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "drover")
	build := exec.Command("go", "build", "-o", bin, "../cmd/drover")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building drover:", err)
		return 1
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	l, err := lab.Start(ctx, lab.Config{Hosts: labHosts, Net: -1, Dir: filepath.Join(tmp, "lab")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the lab:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: lab of %d hosts up in %s (%s)\n", labHosts, time.Since(start).Round(time.Millisecond), l.Hosts[0].Address)
	defer func() {
		if err := l.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stopping the lab:", err)
		}
	}()
	shared = &env{bin: bin, lab: l, tmp: tmp}
	return m.Run()
}

// result is one finished drover invocation.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// drover runs the binary with a clean environment: HOME is a fresh directory so no user
// ssh_config, key or agent leaks into the test.
func drover(t *testing.T, args ...string) result {
	t.Helper()
	return droverHome(t, t.TempDir(), args...)
}

// droverHome is drover with a given HOME, for tests that compare with OpenSSH run there.
func droverHome(t *testing.T, home string, args ...string) result {
	t.Helper()
	return droverWithin(t, 2*time.Minute, home, args...)
}

// droverWithin runs drover with HOME (and its state) under home, killed after limit.
func droverWithin(t *testing.T, limit time.Duration, home string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := droverCmd(ctx, home, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	return withExit(t, result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}, err, args)
}

// droverCmd is drover with args in a clean environment: HOME is home and its state
// lives under home/state, so no user config and no other test's runs leak in.
func droverCmd(ctx context.Context, home string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, shared.bin, args...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1", "DROVER_STATE_DIR=" + filepath.Join(home, "state")}
	return cmd
}

// withExit records the exit code of a finished drover (err from Run or Wait) in r; a
// failure other than a non-zero exit (not started, killed by the timeout) fails the test.
func withExit(t *testing.T, r result, err error, args []string) result {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("drover %v: %v\nstderr: %s", args, err, r.stderr)
	}
	return r
}

// writePlaybook writes text to a playbook file in a temp dir and returns its path.
func writePlaybook(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "playbook.hcl")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// labArgs are the flags that point drover at the lab.
func labArgs() []string {
	return []string{"-i", shared.lab.Inventory, "--ssh-config", shared.lab.SSHConfig}
}
