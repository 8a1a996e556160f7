package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The secrets of TestSecretsNeverLeak: each distinctive, so a grep for it cannot
// match anything by chance. The become password is the lab's own (random).
const (
	secretPassphrase = "kp-Phr4se-7731-xq"
	secretSensitive  = "sv-T0ken-5521-zr"
	secretURLPass    = "url-Pw-9907-mk"
	wrongBecome      = "wrong-Become-3141-aa"
	wrongPassphrase  = "wrong-Phrase-2718-bb"
	wrongURLPass     = "bad-UrlPw-1618-cc"
)

// secretsPlaybook uses every kind of secret: become with a password (settings and
// --ask-become-pass), a sensitive variable in a command whose output echoes it, and
// credentials in the URLs of a gate and a health check.
const secretsPlaybook = `
playbook "secrets" {
  description = "uses every kind of secret"
}

variable "api_token" {
  type      = string
  sensitive = true
}

settings {
  become = true
  forks  = 2
}

canary {
  hosts = 1
  gate {
    timeout = "10s"
    http "lb" {
      url    = "http://gate:%[2]s@%[1]s/gate"
      status = 200
    }
  }
}

steps {
  command "use-token" {
    run = "%[3]s"
  }
}

health {
  http {
    url    = "http://gate:%[2]s@%[1]s/health"
    status = 200
  }
}
`

// secretRun is one drover invocation of the secrets test, with its own files.
type secretRun struct {
	name           string
	args           []string
	env            []string
	becomePassword string // typed on a terminal when not empty
	wantCode       int
	wantOut        string // stdout must contain it (proves the secret was used)
}

// TestSecretsNeverLeak runs drover with a become password, a passphrase-protected
// key, a sensitive variable and credentials in URLs — and failing variants of each —
// then greps every artefact: stdout, stderr, --output json, the --report file, the
// --log file when the flag exists, and every file in the state directory (reports,
// journal, fact cache). It also checks the state directory is 0700 and its files 0600.
func TestSecretsNeverLeak(t *testing.T) {
	l := shared.lab
	home := t.TempDir()
	state := filepath.Join(home, "state")
	artefacts := filepath.Join(home, "out")
	if err := os.Mkdir(artefacts, 0o700); err != nil {
		t.Fatal(err)
	}

	// An encrypted copy of the lab key: with --ssh-config none, a clean HOME and no
	// agent it is the only way in, so a run that connects proves the passphrase was used.
	keyData, err := os.ReadFile(l.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	encKey := filepath.Join(home, "enc_key")
	if err := os.WriteFile(encKey, keyData, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-p", "-f", encKey, "-P", "", "-N", secretPassphrase).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen (package openssh-client) encrypting the key: %v\n%s", err, out)
	}

	var goodAuth, badAuth atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "gate" || p != secretURLPass {
			badAuth.Add(1)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		goodAuth.Add(1)
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	srvAddr := strings.TrimPrefix(srv.URL, "http://")

	const useToken = "echo token=${var.api_token}; id -u; echo token=${var.api_token} >&2"
	writePlaybook := func(name, urlPass, command string) string {
		p := filepath.Join(home, name)
		if err := os.WriteFile(p, fmt.Appendf(nil, secretsPlaybook, srvAddr, urlPass, command), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writePlaybook("secrets.hcl", secretURLPass, useToken)
	badURL := writePlaybook("secrets-badurl.hcl", wrongURLPass, useToken)
	// The step fails with the token in its output, which the failure detail quotes.
	badStep := writePlaybook("secrets-badstep.hcl", secretURLPass, useToken+"; exit 3")

	hosts := l.Hosts[0].Address + "," + l.Hosts[1].Address
	conn := []string{"-i", hosts, "--ssh-config", "none", "--known-hosts", l.KnownHosts,
		"-u", l.SudoUser, "--key", encKey, "--connect-timeout", "20s"}
	withConn := func(cmd []string, rest ...string) []string {
		return append(append(append([]string{}, cmd...), conn...), rest...)
	}
	passEnv := "DROVER_KEY_PASSPHRASE=" + secretPassphrase
	tokenEnv := "DROVER_VAR_api_token=" + secretSensitive
	hasLog := strings.Contains(droverHelp(t, "run"), "--log")
	logArgs := func(name string) []string {
		if !hasLog {
			return nil
		}
		return []string{"--log", filepath.Join(artefacts, name+".log")}
	}

	runs := []secretRun{
		{name: "ping", args: withConn([]string{"ping"}), env: []string{passEnv}, wantOut: l.Hosts[1].Address},
		{name: "exec-become", args: withConn([]string{"exec", "--become", "--ask-become-pass", "--json"}, "--", "id -u"),
			env: []string{passEnv}, becomePassword: l.SudoPassword, wantOut: `"stdout": "0\n"`},
		{name: "facts", args: withConn([]string{"facts", "--become", "--ask-become-pass", "--json", "--refresh"}),
			env: []string{passEnv}, becomePassword: l.SudoPassword, wantOut: `"os"`},
		{name: "run", args: withConn([]string{"run", good, "--yes", "--ask-become-pass", "--output", "json",
			"--report", filepath.Join(artefacts, "run-report.json")}, logArgs("run")...),
			env: []string{passEnv, tokenEnv}, becomePassword: l.SudoPassword, wantOut: `"succeeded"`},
		{name: "plan", args: withConn([]string{"plan", good, "--ask-become-pass"}),
			env: []string{passEnv, tokenEnv}, becomePassword: l.SudoPassword, wantOut: "use-token"},
		{name: "plan-json", args: withConn([]string{"plan", good, "--json"}),
			env: []string{passEnv, tokenEnv}, wantOut: "use-token"},
		// Failing variants: each error must say what failed without echoing the secret.
		{name: "run-failing-step", args: withConn([]string{"run", badStep, "--yes", "--ask-become-pass", "--output", "json",
			"--report", filepath.Join(artefacts, "badstep-report.json")}, logArgs("badstep")...),
			env: []string{passEnv, tokenEnv}, becomePassword: l.SudoPassword, wantCode: 3, wantOut: "token="},
		{name: "exec-wrong-become", args: withConn([]string{"exec", "--become", "--ask-become-pass"}, "--", "id -u"),
			env: []string{passEnv}, becomePassword: wrongBecome, wantCode: 1},
		{name: "ping-wrong-passphrase", args: withConn([]string{"ping"}),
			env: []string{"DROVER_KEY_PASSPHRASE=" + wrongPassphrase}, wantCode: 1},
		{name: "run-wrong-url-password", args: withConn([]string{"run", badURL, "--yes", "--ask-become-pass", "--output", "json",
			"--report", filepath.Join(artefacts, "bad-report.json")}, logArgs("bad")...),
			env: []string{passEnv, tokenEnv}, becomePassword: l.SudoPassword, wantCode: 3},
	}
	secrets := map[string]string{
		"become password": l.SudoPassword, "key passphrase": secretPassphrase,
		"sensitive variable": secretSensitive, "URL password": secretURLPass,
		"wrong become password": wrongBecome, "wrong passphrase": wrongPassphrase, "wrong URL password": wrongURLPass,
	}
	for _, r := range runs {
		stdout, stderr, code := runWithSecrets(t, home, state, r)
		if code != r.wantCode || !strings.Contains(stdout, r.wantOut) {
			t.Errorf("%s: exit %d (want %d), stdout lacks %q\nstdout: %s\nstderr: %s", r.name, code, r.wantCode, r.wantOut, stdout, stderr)
		}
		grepSecrets(t, secrets, r.name+" stdout", stdout)
		grepSecrets(t, secrets, r.name+" stderr", stderr)
	}
	if goodAuth.Load() == 0 || badAuth.Load() == 0 {
		t.Errorf("the checks did not use the URL credentials: %d authorised, %d refused requests", goodAuth.Load(), badAuth.Load())
	}

	// Every file drover wrote: the explicit artefacts and the whole state directory.
	var files int
	for _, root := range []string{artefacts, state} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if root == state {
				switch perm := info.Mode().Perm(); {
				case d.IsDir() && perm != 0o700:
					t.Errorf("state directory %s has mode %o, want 700", p, perm)
				case info.Mode().IsRegular() && perm != 0o600:
					t.Errorf("state file %s has mode %o, want 600", p, perm)
				}
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files++
			grepSecrets(t, secrets, p, string(data))
			return nil
		})
		if err != nil {
			t.Fatalf("walking %s: %v", root, err)
		}
	}
	t.Logf("grepped %d runs' stdout and stderr and %d files (--log: %v)", len(runs), files, hasLog)
	// Reports of both runs, the journal and the fact cache at least.
	if files < 4 {
		t.Errorf("only %d artefacts written; the test greps nothing", files)
	}
	if !hasLog {
		t.Log("drover run has no --log flag yet: log files not checked")
	}
}

// grepSecrets fails the test for every secret found in text, naming where.
func grepSecrets(t *testing.T, secrets map[string]string, where, text string) {
	t.Helper()
	for kind, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			i := strings.Index(text, s)
			t.Errorf("%s leaks the %s: …%s…", where, kind, text[max(0, i-80):min(len(text), i+len(s)+40)])
		}
	}
}

// droverHelp returns `drover CMD --help`.
func droverHelp(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.Command(shared.bin, cmd, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("drover %s --help: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// runWithSecrets runs drover with r's environment. When r has a become password
// its stdin is a pseudo-terminal (drover reads secrets only from a terminal) and the
// password is typed on it; stdout and stderr stay plain pipes, so what they hold is
// exactly what drover printed (the terminal's echo, if any, goes to the master side).
func runWithSecrets(t *testing.T, home, state string, r secretRun) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, shared.bin, r.args...)
	cmd.Env = append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1", "DROVER_STATE_DIR=" + state}, r.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if r.becomePassword != "" {
		master, slave, err := openPTY()
		if err != nil {
			t.Fatalf("%s: opening a pseudo-terminal: %v", r.name, err)
		}
		defer master.Close()
		cmd.Stdin = slave
		// Typed ahead: the line waits in the terminal's buffer until drover reads it.
		if _, err := master.Write([]byte(r.becomePassword + "\n")); err != nil {
			t.Fatalf("%s: typing the password: %v", r.name, err)
		}
		go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(master) }() // drain the echo
		defer slave.Close()
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s: drover %v: %v\nstderr: %s", r.name, r.args, err, errb.String())
	}
	return out.String(), errb.String(), code
}

// openPTY opens a pseudo-terminal pair without making it anyone's controlling terminal.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlocking the pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}
