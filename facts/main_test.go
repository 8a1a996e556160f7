package facts

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// privateEtcEnv marks the re-executed test process that runs with a private /etc.
const privateEtcEnv = "DROVER_FACTS_TEST_PRIVATE_ETC"

// TestMain runs this package's tests (as root) in a private mount namespace whose /etc is a
// copy-on-write overlay: the external-fact fixtures written under /etc/facter/facts.d must
// never reach the machine's real /etc, which the lab's hosts overlay while other packages'
// tests run in parallel.
func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run()) // the root-only tests say why they fail
	}
	if slices.Contains(os.Args[1:], "-test.fuzzworker") {
		// A fuzz worker talks to its coordinator over inherited pipes that a re-exec
		// would lose; the fuzz targets parse bytes and never touch /etc.
		os.Exit(m.Run())
	}
	if os.Getenv(privateEtcEnv) == "" {
		cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), privateEtcEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			os.Exit(0)
		case errors.As(err, &ee):
			os.Exit(ee.ExitCode())
		default:
			fmt.Fprintln(os.Stderr, "facts tests: re-running in a private mount namespace:", err)
			os.Exit(1)
		}
	}
	if err := privateEtc(); err != nil {
		fmt.Fprintln(os.Stderr, "facts tests: private /etc:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// privateEtc mounts an overlay on /etc whose writable layer is a fresh tmpfs, mounted (in
// this namespace only) on /mnt so nothing is left behind on the machine's disk.
func privateEtc() error {
	base := "/mnt"
	if err := syscall.Mount("tmpfs", base, "tmpfs", 0, "mode=0700"); err != nil {
		return fmt.Errorf("tmpfs on %s: %w", base, err)
	}
	upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	opts := "lowerdir=/etc,upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", "/etc", "overlay", 0, opts); err != nil {
		return fmt.Errorf("overlay on /etc: %w", err)
	}
	return nil
}
