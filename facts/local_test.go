package facts

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/transport"
)

// localRunner satisfies transport.Runner by running commands with /bin/sh on
// this machine. pathDir, when set, is put first in PATH so that "sh" can be
// made to mean dash or busybox.
type localRunner struct {
	pathDir string
	mu      sync.Mutex
	calls   int
}

func (r *localRunner) Run(ctx context.Context, c *transport.Command) (*transport.Result, error) {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.Cmd)
	if r.pathDir != "" {
		cmd.Env = append(os.Environ(), "PATH="+r.pathDir+":"+os.Getenv("PATH"))
	}
	cmd.Stdin = c.Stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := &transport.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		return nil, err
	}
	return res, nil
}

func (r *localRunner) Upload(context.Context, io.Reader, string, fs.FileMode, *transport.Become) error {
	return errors.New("not supported")
}
func (r *localRunner) Close() error { return nil }

// shellRunner makes "sh" resolve to the given shell binary (dash, busybox).
func shellRunner(t *testing.T, shell string) *localRunner {
	t.Helper()
	bin, err := exec.LookPath(shell)
	if err != nil {
		t.Fatalf("%s is required for this test (apt-get install %s): %v", shell, shell, err)
	}
	// busybox picks its applet from argv[0], so a symlink named sh is ash.
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "sh")); err != nil {
		t.Fatal(err)
	}
	return &localRunner{pathDir: dir}
}

func requireRootAndFacter(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test must run as root: it writes external facts under /etc/facter/facts.d, as Facter reads them")
	}
	if _, err := exec.LookPath("facter"); err != nil {
		t.Fatal("facter is required for this test (apt-get install facter)")
	}
}

// facterJSON runs the local `facter --json NAME…`. Querying names keeps it
// fast; facter exits 1 when some unrelated resolver fails (sandboxes deny
// /proc/1/environ), so only its output is judged.
func facterJSON(t *testing.T, names ...string) Facts {
	t.Helper()
	cmd := exec.Command("facter", append([]string{"--json"}, names...)...)
	cmd.Stderr = io.Discard // facter logs resolver errors in sandboxes
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("facter --json: %v", err)
	}
	m, err := parseJSONObject(out)
	if err != nil {
		t.Fatalf("facter --json output: %v", err)
	}
	return Facts(m)
}

func randHex(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// externalFixture writes hostile external facts of every kind into
// /etc/facter/facts.d and removes them (and any directory it created) after
// the test. It returns the fact names written, the values they must have, and a
// file whose existence would prove a value was evaluated.
func externalFixture(t *testing.T) (names []string, want map[string]any, canary string) {
	t.Helper()
	id := randHex(t)
	canary = filepath.Join(t.TempDir(), "evaluated")
	dir := "/etc/facter/facts.d"
	for _, d := range []string{"/etc/facter", dir} {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(d) })
		}
	}
	p := "drovertest_" + id + "_"
	hostile := "a;b $(touch " + canary + ") `touch " + canary + "` 'sq' \"dq\" \\n \\ | & > x"
	files := map[string]string{
		p + "a.txt": p + "txt=" + hostile + "\n" +
			p + "Upper=Case\n" +
			p + "eq=a=b=c\n" +
			p + "empty=\n" +
			p + "dup=from_a\n" +
			"garbage line without equals\n" +
			p + "crlf=v\r\n",
		p + "b.txt": p + "dup=from_b\n",
		// A hostile file name; only its content matters.
		p + "c $(id) `id`;'q'.txt": p + "name=x\n",
		p + "d.json": mustJSON(t, map[string]any{
			p + "json":   "l1\nl2\t$(touch " + canary + ") `x`; \"q\" 'q' \u00e9 \x01",
			p + "nested": map[string]any{"Inner": []any{1, 2.5, true, nil, "s"}},
			p + "big":    json.RawMessage("12345678901234567890"),
			p + "neg":    -7,
		}),
		p + "e.yaml": strings.Join([]string{
			p + "y_str: \"x $(touch " + canary + ") `y`;\\n z\"",
			p + "y_yes: yes",
			p + "y_off: Off",
			p + "y_oct: 017",
			p + "y_int: 1_000",
			p + "y_float: 1.5",
			p + "y_null: ~",
			p + "y_time: 2024-01-02 03:04:05",
			p + "y_date: 2024-01-02",
			p + "y_plain: hello world",
			p + "y_list: [a, 1, true]",
			p + "y_map: {k: v, n: 2}",
			p + "dup: from_yaml",
			"",
		}, "\n"),
	}
	execs := map[string]string{
		p + "f.sh": "#!/bin/sh\nprintf '%s\\n' '" + p + "exec=$(touch " + canary + ") `id`; \"q\"'\n",
		p + "g":    "#!/bin/sh\necho '{\"" + p + "exec_json\": {\"a\": [1, \"two\"]}}'\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
	}
	for name, content := range execs {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
	}
	want = map[string]any{
		p + "txt":       hostile,
		p + "upper":     "Case",
		p + "eq":        "a=b=c",
		p + "crlf":      "v",
		p + "name":      "x",
		p + "dup":       "from_yaml", // e.yaml sorts last
		p + "json":      "l1\nl2\t$(touch " + canary + ") `x`; \"q\" 'q' \u00e9 \x01",
		p + "nested":    map[string]any{"Inner": []any{int64(1), 2.5, true, nil, "s"}},
		p + "big":       json.Number("12345678901234567890"),
		p + "neg":       int64(-7),
		p + "y_str":     "x $(touch " + canary + ") `y`;\n z",
		p + "y_yes":     true,
		p + "y_off":     false,
		p + "y_oct":     int64(15),
		p + "y_int":     int64(1000),
		p + "y_float":   1.5,
		p + "y_time":    "2024-01-02 03:04:05",
		p + "y_date":    "2024-01-02",
		p + "y_plain":   "hello world",
		p + "y_list":    []any{"a", int64(1), true},
		p + "y_map":     map[string]any{"k": "v", "n": int64(2)},
		p + "exec":      "$(touch " + canary + ") `id`; \"q\"",
		p + "exec_json": map[string]any{"a": []any{int64(1), "two"}},
	}
	for k := range want {
		names = append(names, k)
	}
	// Names that must be absent: empty values and nulls are not facts.
	names = append(names, p+"empty", p+"y_null")
	return names, want, canary
}

// coreNames are the facts compared with the local facter (SPEC §3).
var coreNames = []string{
	"os.name", "os.family", "os.release.full", "os.release.major", "os.distro.codename",
	"kernel", "kernelrelease", "architecture", "networking.hostname", "networking.fqdn",
	"networking.ip", "processors.count", "memory.system.total_bytes",
}

func TestGatherMatchesFacter(t *testing.T) {
	requireRootAndFacter(t)
	names, want, canary := externalFixture(t)
	ref := facterJSON(t, append(append([]string{}, coreNames...), names...)...)

	runners := map[string]*localRunner{
		"sh":      {},
		"dash":    shellRunner(t, "dash"),
		"busybox": shellRunner(t, "busybox"),
	}
	for shell, r := range runners {
		t.Run(shell, func(t *testing.T) {
			got, err := Gather(context.Background(), r, Options{Timeout: time.Minute})
			if err != nil {
				t.Fatalf("Gather: %v", err)
			}
			if r.calls != 1 {
				t.Errorf("Gather made %d Run calls, want exactly 1", r.calls)
			}
			for _, name := range coreNames {
				g, gok := got.Get(name)
				w, wok := ref.Get(name)
				if !wok {
					t.Errorf("%s: facter does not report it; drover says %#v", name, g)
					continue
				}
				if !gok || !reflect.DeepEqual(g, w) {
					t.Errorf("%s = %#v (present %v), facter says %#v", name, g, gok, w)
				}
			}
			for _, name := range names {
				g, gok := got.Get(name)
				w, wok := ref.Get(name)
				wok = wok && w != nil // facter prints null for a queried name it does not know
				if gok != wok || !reflect.DeepEqual(g, w) {
					t.Errorf("external %s = %#v (present %v), facter says %#v (present %v)", name, g, gok, w, wok)
				}
				if exp, ok := want[name]; ok && !reflect.DeepEqual(g, exp) {
					t.Errorf("external %s = %#v, want %#v", name, g, exp)
				}
				if _, ok := want[name]; !ok && gok {
					t.Errorf("external %s should be absent, got %#v", name, g)
				}
			}
			if _, err := os.Stat(canary); err == nil {
				t.Fatal("a fact value was evaluated by a shell")
			}
		})
	}
}

func TestGatherFacterMerge(t *testing.T) {
	requireRootAndFacter(t)
	r := &localRunner{}
	got, err := Gather(context.Background(), r, Options{Facter: true})
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	if r.calls != 1 {
		t.Errorf("Gather made %d Run calls, want exactly 1", r.calls)
	}
	// facter --json NAME prints queried names as flat keys.
	names := []string{"facterversion", "os", "kernel", "processors.count", "networking.interfaces"}
	ref := facterJSON(t, names...)
	for _, name := range names {
		g, gok := got.Get(name)
		w, wok := ref[name]
		if !gok || !wok || !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v (present %v), facter says %#v (present %v)", name, g, gok, w, wok)
		}
	}
	// drover's own facts survive the merge.
	for _, name := range []string{"init_system", "package_manager"} {
		if _, ok := got.Get(name); !ok {
			t.Errorf("%s missing after merging facter", name)
		}
	}
}

func TestGatherScriptRunsUnderStrictShells(t *testing.T) {
	// The script must also work when stdin-reading commands would steal it and
	// when no external fact directory exists.
	for _, shell := range []string{"dash", "busybox"} {
		t.Run(shell, func(t *testing.T) {
			r := shellRunner(t, shell)
			res, err := r.Run(context.Background(), &transport.Command{Cmd: "sh -n -s", Stdin: strings.NewReader(GatherScript(Options{Facter: true}))})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != 0 {
				t.Fatalf("%s -n rejects the script: %s", shell, res.Stderr)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGatherPuppetVersionWithoutRuby checks puppet.version equals `puppet --version`
// while the gatherer read it from Puppet's version.rb instead of booting Ruby (which
// cost seconds per host under load).
func TestGatherPuppetVersionWithoutRuby(t *testing.T) {
	if _, err := exec.LookPath("puppet"); err != nil {
		t.Fatal("puppet is required for this test (apt-get install puppet-agent)")
	}
	out, err := exec.Command("puppet", "--version").Output()
	if err != nil {
		t.Fatalf("puppet --version: %v", err)
	}
	want := strings.TrimSpace(string(out))

	r := &localRunner{}
	res, err := r.Run(context.Background(), &transport.Command{Cmd: "sh -s", Stdin: strings.NewReader(script(Options{}, "drv-0123456789abcdef0123"))})
	if err != nil {
		t.Fatalf("running the gatherer: %v", err)
	}
	s, err := decode(res.Stdout, "drv-0123456789abcdef0123")
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if _, ok := s.raw["puppet_version_rb"]; !ok {
		t.Errorf("the gatherer did not send puppet/version.rb (raw records: %d); it ran puppet instead", len(s.raw))
	}
	if got := core(s)["puppet"]; !reflect.DeepEqual(got, map[string]any{"version": want}) {
		t.Errorf("puppet fact = %#v, want version %q", got, want)
	}
}

// Core gathering yields what the steps need, the same values as a full gathering, and
// none of the rest.
func TestGatherCore(t *testing.T) {
	full, err := Gather(context.Background(), &localRunner{}, Options{})
	if err != nil {
		t.Fatalf("full Gather: %v", err)
	}
	core, err := Gather(context.Background(), &localRunner{}, Options{Core: true})
	if err != nil {
		t.Fatalf("core Gather: %v", err)
	}
	for _, name := range []string{"init_system", "package_manager", "kernel", "kernelrelease"} {
		c, cok := core.Get(name)
		f, fok := full.Get(name)
		if !cok || !fok || !reflect.DeepEqual(c, f) {
			t.Errorf("%s: core %#v (present %v), full %#v (present %v)", name, c, cok, f, fok)
		}
	}
	for _, name := range []string{"os.family", "networking.ip", "processors.count"} {
		if v, ok := core.Get(name); ok {
			t.Errorf("core facts hold %s = %#v; the core script must stop before it", name, v)
		}
		if _, ok := full.Get(name); !ok {
			t.Errorf("full facts lack %s", name)
		}
	}
	if s := GatherScript(Options{Core: true}); !strings.Contains(s, "\nDROVER_CORE=1\n") {
		t.Error("Core: the script does not set DROVER_CORE=1")
	}
	if s := GatherScript(Options{Core: true, Facter: true}); strings.Contains(s, "\nDROVER_CORE=1\n") {
		t.Error("Core with Facter: facter wants the whole gathering; core must not be set")
	}
}
