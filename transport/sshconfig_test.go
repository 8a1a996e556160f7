package transport

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeHome is one test's view of the local machine: a home directory holding a
// copy of a testdata case as ~/.ssh, and the same identity for drover and ssh.
type fakeHome struct {
	root, home string
	env        sshEnv
	vars       map[string]string
}

const testLocalUser = "drovertest"

func newFakeHome(t *testing.T, caseDir string) *fakeHome {
	t.Helper()
	root := t.TempDir()
	home := filepath.Join(root, "home")
	sshDir := filepath.Join(home, ".ssh")
	if err := os.MkdirAll(sshDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if caseDir != "" {
		copyTree(t, filepath.Join("testdata", "sshconfig", caseDir), sshDir)
	}
	hn, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DROVER_SSHCFG_TEST": "from-env"}
	return &fakeHome{
		root: root,
		home: home,
		vars: vars,
		env: sshEnv{
			home:      home,
			localUser: testLocalUser,
			uid:       os.Getuid(),
			localHost: hn,
			sysDir:    "/etc/ssh",
			sysConfig: filepath.Join(root, "no-system-config"),
			getenv: func(k string) (string, bool) {
				v, ok := vars[k]
				return v, ok
			},
		},
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return err
		}
		return os.Chmod(target, 0o644) // umask-proof: ssh refuses group-writable includes
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// requireSSHG fails (never skips) when the real ssh -G cannot be run the way these
// tests need: as root, in a private mount namespace where our passwd entry makes
// ssh see the fake home (ssh takes ~ from the passwd entry, not $HOME).
func requireSSHG(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ssh", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required to compare with `ssh -G` (apt-get install openssh-client util-linux mount): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("comparing with `ssh -G` needs root (a private mount namespace gives ssh a fake passwd entry and home); running as uid %d", os.Geteuid())
	}
}

// sshG runs the real `ssh -G` for alias with o as command-line options. cfg is the
// -F file, or "" to let ssh read ~/.ssh/config and then sysConfig as /etc/ssh/ssh_config.
func (h *fakeHome) sshG(t *testing.T, cfg, sysConfig, alias string, o Overrides) map[string][]string {
	t.Helper()
	passwd := filepath.Join(h.root, "passwd")
	line := fmt.Sprintf("%s:x:%d:0:drover test:%s:/bin/sh\n", testLocalUser, os.Getuid(), h.home)
	if err := os.WriteFile(passwd, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `mount --bind "$1" /etc/passwd || exit 97
if [ -n "$2" ]; then mount --bind "$2" /etc/ssh/ssh_config || exit 98; fi
shift 2
exec ssh -G "$@"`
	args := []string{"-m", "--propagation", "private", "--", "sh", "-c", script, "sh", passwd, sysConfig}
	if cfg != "" {
		args = append(args, "-F", cfg)
	}
	if o.User != "" {
		args = append(args, "-l", o.User)
	}
	if o.Port != 0 {
		args = append(args, "-p", strconv.Itoa(o.Port))
	}
	for _, id := range o.IdentityFiles {
		args = append(args, "-i", id)
	}
	if o.ProxyJump != "" {
		args = append(args, "-J", o.ProxyJump)
	}
	if o.HostName != "" {
		args = append(args, "-o", "HostName="+o.HostName)
	}
	if len(o.KnownHostsFiles) > 0 {
		args = append(args, "-o", "UserKnownHostsFile="+strings.Join(o.KnownHostsFiles, " "))
	}
	if o.StrictHostKeyChecking != "" {
		args = append(args, "-o", "StrictHostKeyChecking="+o.StrictHostKeyChecking)
	}
	if o.ConnectTimeout != 0 {
		args = append(args, "-o", fmt.Sprintf("ConnectTimeout=%d", int(o.ConnectTimeout/time.Second)))
	}
	args = append(args, alias)
	cmd := exec.Command("unshare", args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + h.home, "LANG=C"}
	for k, v := range h.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ssh -G %s failed: %v\nstderr: %s", alias, err, stderr.String())
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		out[k] = append(out[k], v)
	}
	if len(out["hostname"]) != 1 || len(out["port"]) != 1 {
		t.Fatalf("ssh -G %s: unexpected output:\n%s", alias, stdout.String())
	}
	return out
}

// endpointFromSSHG converts ssh -G output to an Endpoint. ssh -G prints identity and
// certificate files before ~ and % expansion (ssh expands them when it loads keys),
// so they are expanded here with a deliberately separate, simple implementation.
func (h *fakeHome) endpointFromSSHG(t *testing.T, alias string, g map[string][]string) *Endpoint {
	t.Helper()
	one := func(k string) string {
		if len(g[k]) != 1 {
			t.Fatalf("ssh -G printed %d values for %s", len(g[k]), k)
		}
		return g[k][0]
	}
	secs := func(k string) time.Duration {
		v := one(k)
		if v == "none" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("ssh -G %s %q: %v", k, v, err)
		}
		return time.Duration(n) * time.Second
	}
	atoi := func(k string) int {
		n, err := strconv.Atoi(one(k))
		if err != nil {
			t.Fatalf("ssh -G %s: %v", k, err)
		}
		return n
	}
	files := func(k string) []string {
		if len(g[k]) == 0 || g[k][0] == "none" {
			return nil
		}
		return strings.Fields(g[k][0])
	}
	e := &Endpoint{
		Alias:                 alias,
		HostName:              one("hostname"),
		Port:                  atoi("port"),
		User:                  one("user"),
		IdentitiesOnly:        one("identitiesonly") == "yes",
		UserKnownHostsFiles:   files("userknownhostsfile"),
		GlobalKnownHostsFiles: files("globalknownhostsfile"),
		ConnectTimeout:        secs("connecttimeout"),
		ServerAliveInterval:   secs("serveraliveinterval"),
		ServerAliveCountMax:   atoi("serveralivecountmax"),
	}
	if v := g["identityagent"]; len(v) == 1 {
		e.IdentityAgent = v[0]
	}
	if v := g["proxyjump"]; len(v) == 1 {
		e.ProxyJump = strings.Split(v[0], ",")
	}
	switch v := one("stricthostkeychecking"); v {
	case "true":
		e.StrictHostKeyChecking = "yes"
	case "false":
		e.StrictHostKeyChecking = "no"
	default:
		e.StrictHostKeyChecking = v
	}
	short, _, _ := strings.Cut(h.env.localHost, ".")
	keyAlias := alias
	if v := g["hostkeyalias"]; len(v) == 1 {
		keyAlias = v[0]
	}
	sum := sha1.Sum([]byte(h.env.localHost + e.HostName + strconv.Itoa(e.Port) + e.User))
	pairs := []string{"%%", "%", "%h", e.HostName, "%p", strconv.Itoa(e.Port), "%r", e.User,
		"%u", testLocalUser, "%d", h.home, "%n", alias, "%l", h.env.localHost, "%L", short,
		"%i", strconv.Itoa(os.Getuid()), "%k", keyAlias, "%C", hex.EncodeToString(sum[:])}
	for k, v := range h.vars {
		pairs = append(pairs, "${"+k+"}", v)
	}
	rep := strings.NewReplacer(pairs...)
	expand := func(p string) string {
		if p == "~" || strings.HasPrefix(p, "~/") {
			p = h.home + "/" + strings.TrimPrefix(strings.TrimPrefix(p, "~"), "/")
		}
		return rep.Replace(p)
	}
	for _, p := range g["identityfile"] {
		e.IdentityFiles = append(e.IdentityFiles, expand(p))
	}
	for _, p := range g["certificatefile"] {
		e.CertificateFiles = append(e.CertificateFiles, expand(p))
	}
	return e
}

// normHop makes hops comparable: ssh -G rewrites the last hop from its parsed
// parts (ssh:// dropped, numeric hosts bracketed); drover keeps hops as written.
func normHop(h string) string {
	h = strings.TrimPrefix(h, "ssh://")
	return strings.NewReplacer("[", "", "]", "").Replace(h)
}

// endpointDiff lists every field where got and want differ; empty when equal.
func endpointDiff(got, want *Endpoint) []string {
	norm := func(e Endpoint) Endpoint {
		for _, s := range []*[]string{&e.IdentityFiles, &e.CertificateFiles, &e.UserKnownHostsFiles, &e.GlobalKnownHostsFiles, &e.ProxyJump} {
			if len(*s) == 0 {
				*s = nil
			}
		}
		hops := make([]string, len(e.ProxyJump))
		for i, h := range e.ProxyJump {
			hops[i] = normHop(h)
		}
		if len(hops) > 0 {
			e.ProxyJump = hops
		}
		return e
	}
	g, w := norm(*got), norm(*want)
	gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
	var diffs []string
	for i := 0; i < gv.NumField(); i++ {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			diffs = append(diffs, fmt.Sprintf("  %s:\n    drover: %#v\n    ssh -G: %#v",
				gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface()))
		}
	}
	return diffs
}

type sshGQuery struct {
	alias string
	o     Overrides
}

func TestResolveMatchesSSHG(t *testing.T) {
	requireSSHG(t)
	none := Overrides{}
	cases := []struct {
		name    string
		dir     string
		system  string // set: plain ssh (no -F) with this file as /etc/ssh/ssh_config
		queries []sshGQuery
	}{
		{name: "basic", dir: "basic", queries: []sshGQuery{
			{"web1", none}, {"web2", none}, {"WEB2", none}, {"a.lab", none}, {"db.lab", none},
			{"web9", none}, {"dbx", none}, {"other", none},
			{"web1", Overrides{User: "cli", Port: 2000}},
			{"a.lab", Overrides{IdentityFiles: []string{"~/.ssh/cli_key", "~/.ssh/lab_key"}}},
			{"other", Overrides{IdentityFiles: []string{"~/.ssh/id_drover"}}},
			{"web2", Overrides{HostName: "Override.Example"}},
			{"web1", Overrides{StrictHostKeyChecking: "no", ConnectTimeout: 7 * time.Second, KnownHostsFiles: []string{"~/kh_%h", "/tmp/kh2"}}},
			{"web1", Overrides{KnownHostsFiles: []string{"none"}}},
		}},
		{name: "include", dir: "include", queries: []sshGQuery{
			{"alpha", none}, {"beta", none}, {"app", none}, {"other", none}, {"zzz", none},
			{"app", Overrides{User: "cli"}},
		}},
		{name: "match", dir: "match", queries: []sshGQuery{
			{"jump", none}, {"x.corp", none}, {"x.corp", Overrides{User: "alice"}},
			{"x.corp", Overrides{User: "bob"}}, {"y.home", Overrides{User: "bob"}},
			{"y.home", Overrides{User: "alice"}}, {"y.home", none},
			{"jump", Overrides{User: "alice"}}, {"anything", Overrides{HostName: "bastion.example"}},
			{"X.CORP", none},
		}},
		{name: "proxyjump", dir: "proxyjump", queries: []sshGQuery{
			{"a", none}, {"b", none}, {"c", none}, {"d", none}, {"e", none}, {"f", none},
			{"g", none}, {"h", none},
			{"a", Overrides{ProxyJump: "cli1,cli2"}}, {"c", Overrides{ProxyJump: "cli1"}},
			{"b", Overrides{ProxyJump: "none"}},
		}},
		{name: "expand", dir: "expand", queries: []sshGQuery{
			{"h1", none}, {"keyed", none}, {"MixedCase", none},
			{"h1", Overrides{User: "bob", Port: 2022}},
			{"h1", Overrides{HostName: "direct.%h.example"}},
		}},
		{name: "strict", dir: "strict", queries: []sshGQuery{
			{"a", none}, {"b", none}, {"c", none}, {"d", none}, {"e", none}, {"f", none},
			{"g", none}, {"z", none},
			{"a", Overrides{StrictHostKeyChecking: "accept-new", ConnectTimeout: 3 * time.Second}},
		}},
		{name: "default files", dir: "default", system: "ssh_config.system", queries: []sshGQuery{
			{"special", none}, {"plain", none}, {"plain", Overrides{Port: 22}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHome(t, tc.dir)
			cfgPath := filepath.Join(h.home, ".ssh", "config")
			var (
				c      *SSHConfig
				err    error
				sysCfg string
			)
			if tc.system != "" {
				sysCfg = filepath.Join(h.root, "ssh_config")
				copyFile(t, filepath.Join("testdata", "sshconfig", tc.dir, tc.system), sysCfg)
				h.env.sysConfig = sysCfg
				c, err = loadDefaultSSHConfigEnv(h.env)
			} else {
				c, err = loadSSHConfigEnv(cfgPath, h.env)
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			for _, q := range tc.queries {
				got, err := c.Resolve(q.alias, q.o)
				if err != nil {
					t.Errorf("Resolve(%q, %+v): %v", q.alias, q.o, err)
					continue
				}
				// ssh drops a -i file that does not exist (with a warning); drover keeps
				// it for the dialer to report, so make them exist.
				for _, id := range q.o.IdentityFiles {
					if rest, ok := strings.CutPrefix(id, "~/"); ok {
						p := filepath.Join(h.home, rest)
						if err := os.WriteFile(p, nil, 0o600); err != nil {
							t.Fatal(err)
						}
					}
				}
				gcfg := cfgPath
				if tc.system != "" {
					gcfg = ""
				}
				want := h.endpointFromSSHG(t, q.alias, h.sshG(t, gcfg, sysCfg, q.alias, q.o))
				if d := endpointDiff(got, want); len(d) > 0 {
					t.Errorf("Resolve(%q, %+v) disagrees with ssh -G:\n%s", q.alias, q.o, strings.Join(d, "\n"))
				}
			}
		})
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestResolveExpectations pins a few results directly, so a regression is caught
// with a readable message even where ssh -G and drover would drift together.
func TestResolveExpectations(t *testing.T) {
	h := newFakeHome(t, "")
	cfg := filepath.Join(h.home, ".ssh", "config")
	write := func(s string) *SSHConfig {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := loadSSHConfigEnv(cfg, h.env)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return c
	}
	tests := []struct {
		name   string
		config string
		alias  string
		o      Overrides
		check  func(e *Endpoint) string
	}{
		{"defaults", "", "h", Overrides{}, func(e *Endpoint) string {
			want := []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"}
			for i := range want {
				want[i] = h.home + "/.ssh/" + want[i]
			}
			if e.HostName != "h" || e.Port != 22 || e.User != testLocalUser || !reflect.DeepEqual(e.IdentityFiles, want) ||
				e.StrictHostKeyChecking != "ask" || e.ServerAliveCountMax != 3 || e.ConnectTimeout != 0 || e.Alias != "h" ||
				!reflect.DeepEqual(e.UserKnownHostsFiles, []string{h.home + "/.ssh/known_hosts", h.home + "/.ssh/known_hosts2"}) {
				return fmt.Sprintf("%+v", e)
			}
			return ""
		}},
		{"match exec is never run and is false", "Match exec \"touch " + h.root + "/ran\"\n  Port 1\nMatch !exec false\n  Port 2\n", "h", Overrides{},
			func(e *Endpoint) string {
				if _, err := os.Stat(filepath.Join(h.root, "ran")); err == nil {
					return "Match exec ran a command"
				}
				if e.Port != 2 {
					return fmt.Sprintf("port %d, want 2", e.Port)
				}
				return ""
			}},
		{"match final is false (single pass)", "Match final\n  Port 1\nMatch !final\n  Port 3\n", "h", Overrides{},
			func(e *Endpoint) string {
				if e.Port != 3 {
					return fmt.Sprintf("port %d, want 3", e.Port)
				}
				return ""
			}},
		{"unknown keywords ignored", "FrobnicateHarder yes\nHost h\n  Port 5\n", "h", Overrides{},
			func(e *Endpoint) string {
				if e.Port != 5 {
					return fmt.Sprintf("port %d, want 5", e.Port)
				}
				return ""
			}},
		{"override identities first", "IdentityFile ~/.ssh/cfg\n", "h", Overrides{IdentityFiles: []string{"/k/cli"}},
			func(e *Endpoint) string {
				if !reflect.DeepEqual(e.IdentityFiles, []string{"/k/cli", h.home + "/.ssh/cfg"}) {
					return fmt.Sprintf("%q", e.IdentityFiles)
				}
				return ""
			}},
		{"strict normalised", "StrictHostKeyChecking off\n", "h", Overrides{},
			func(e *Endpoint) string {
				if e.StrictHostKeyChecking != HostKeyOff {
					return e.StrictHostKeyChecking
				}
				return ""
			}},
		{"proxyjump hops as written", "ProxyJump u@[::1]:22,ssh://a@b:3\n", "h", Overrides{},
			func(e *Endpoint) string {
				if !reflect.DeepEqual(e.ProxyJump, []string{"u@[::1]:22", "ssh://a@b:3"}) {
					return fmt.Sprintf("%q", e.ProxyJump)
				}
				return ""
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := write(tt.config).Resolve(tt.alias, tt.o)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if msg := tt.check(e); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestLoadSSHConfigErrors(t *testing.T) {
	h := newFakeHome(t, "")
	sshDir := filepath.Join(h.home, ".ssh")
	tests := []struct {
		name  string
		files map[string]string // relative to ~/.ssh; "config" is loaded
		perm  map[string]fs.FileMode
		want  []string // substrings of the error
	}{
		{"bad port", map[string]string{"config": "Host x\n  Port abc\n"}, nil, []string{"config line 2", "bad port 'abc'"}},
		{"port zero", map[string]string{"config": "Port 0\n"}, nil, []string{"config line 1", "bad port"}},
		{"port in inactive block still checked", map[string]string{"config": "Host never\n\n  Port 99999\n"}, nil, []string{"config line 3"}},
		{"extra arguments", map[string]string{"config": "User a b\n"}, nil, []string{"config line 1", "extra arguments"}},
		{"missing argument", map[string]string{"config": "# c\nHostName\n"}, nil, []string{"config line 2", "no argument"}},
		{"unterminated quote", map[string]string{"config": "User \"abc\n"}, nil, []string{"config line 1", "invalid quotes"}},
		{"bad time", map[string]string{"config": "ConnectTimeout 5x\n"}, nil, []string{"config line 1", "invalid time value"}},
		{"bad count", map[string]string{"config": "ServerAliveCountMax -1\n"}, nil, []string{"config line 1", "integer"}},
		{"bad strict", map[string]string{"config": "StrictHostKeyChecking maybe\n"}, nil, []string{"config line 1", "maybe"}},
		{"bad flag", map[string]string{"config": "IdentitiesOnly perhaps\n"}, nil, []string{"config line 1", "perhaps"}},
		{"bad match attribute", map[string]string{"config": "Match colour blue\n"}, nil, []string{"config line 1", "unsupported Match attribute colour"}},
		{"match all combined", map[string]string{"config": "Match all host x\n"}, nil, []string{"config line 1", "cannot be combined"}},
		{"match missing criteria", map[string]string{"config": "Match host\n"}, nil, []string{"config line 1", "missing Match criteria"}},
		{"bad proxyjump", map[string]string{"config": "\nProxyJump a,,b\n"}, nil, []string{"config line 2", "ProxyJump"}},
		{"bad proxyjump port", map[string]string{"config": "ProxyJump a:99999\n"}, nil, []string{"config line 1", "bad port"}},
		{"none not alone", map[string]string{"config": "UserKnownHostsFile none /x\n"}, nil, []string{"config line 1", "must appear alone"}},
		{"error in included file", map[string]string{"config": "Include inc\n", "inc": "Host y\n  Port -3\n"}, nil,
			[]string{"config line 1", "inc line 2", "bad port"}},
		{"include cycle", map[string]string{"config": "Include a\n", "a": "\nInclude b\n", "b": "Host *\n Include a\n"}, nil,
			[]string{"b line 2", "Include cycle", "a -> ", "b -> "}},
		{"self include", map[string]string{"config": "Include config\n"}, nil, []string{"config line 1", "Include cycle"}},
		{"group-writable include", map[string]string{"config": "Include w.conf\n", "w.conf": "Port 2\n"},
			map[string]fs.FileMode{"w.conf": 0o664}, []string{"config line 1", "bad owner or permissions", "w.conf"}},
		{"unreadable include", map[string]string{"config": "Include ~/.ssh/sock*\n"}, nil, []string{"config line 1", "sock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(sshDir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			env := h.env
			env.home = filepath.Join(dir, "home")
			if err := os.MkdirAll(filepath.Join(env.home, ".ssh"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range tt.files {
				p := filepath.Join(env.home, ".ssh", name)
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				if m, ok := tt.perm[name]; ok {
					if err := os.Chmod(p, m); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tt.name == "unreadable include" {
				// open(2) fails on a socket even for root, unlike a mode-000 file.
				l, err := net.Listen("unix", filepath.Join(env.home, ".ssh", "sock"))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
			}
			_, err := loadSSHConfigEnv(filepath.Join(env.home, ".ssh", "config"), env)
			if err == nil {
				t.Fatalf("no error; want one containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("missing explicit file", func(t *testing.T) {
		p := filepath.Join(h.root, "nope")
		_, err := loadSSHConfigEnv(p, h.env)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Fatalf("err = %v, want one naming %s", err, p)
		}
	})
	t.Run("none is empty", func(t *testing.T) {
		c, err := loadSSHConfigEnv("none", h.env)
		if err != nil || len(c.files) != 0 {
			t.Fatalf("c=%+v err=%v", c, err)
		}
	})
	t.Run("missing default files are fine", func(t *testing.T) {
		env := h.env
		env.home = filepath.Join(h.root, "empty-home")
		c, err := loadDefaultSSHConfigEnv(env)
		if err != nil || len(c.files) != 0 {
			t.Fatalf("c=%+v err=%v", c, err)
		}
	})
}

func TestResolveErrors(t *testing.T) {
	h := newFakeHome(t, "")
	cfg := filepath.Join(h.root, "cfg")
	if err := os.WriteFile(cfg, []byte("Host badtoken\n  IdentityFile ~/%z\nHost noenv\n  IdentityAgent ${DROVER_UNSET_VAR}\nHost badhost\n  HostName %p.x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadSSHConfigEnv(cfg, h.env)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		alias string
		o     Overrides
		want  string
	}{
		{"a;b", Overrides{}, "invalid characters"},
		{"-oProxyCommand=x", Overrides{}, "invalid characters"},
		{"", Overrides{}, "invalid characters"},
		{"ok", Overrides{User: "x;y"}, "invalid characters"},
		{"ok", Overrides{HostName: "a b"}, "invalid characters"},
		{"ok", Overrides{Port: 70000}, "bad port"},
		{"ok", Overrides{ProxyJump: "a@"}, "ProxyJump"},
		{"ok", Overrides{StrictHostKeyChecking: "sometimes"}, "StrictHostKeyChecking"},
		{"badtoken", Overrides{}, "unknown key %z"},
		{"noenv", Overrides{}, "DROVER_UNSET_VAR"},
		{"badhost", Overrides{}, "HostName"},
	}
	for _, tt := range tests {
		t.Run(tt.alias+"/"+tt.want, func(t *testing.T) {
			_, err := c.Resolve(tt.alias, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"web1", "web?", true}, {"web10", "web?", false}, {"a.lab", "*.lab", true},
		{"lab", "*.lab", false}, {"", "*", true}, {"abc", "a*c", true}, {"abcbc", "a*bc", true},
		{"Web1", "web1", false}, {"aaa", "a*a*a*a", false}, {"x", "", false},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.s, tt.p); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tt.s, tt.p, got, tt.want)
		}
	}
	lists := []struct {
		s, p string
		want int
	}{
		{"a", "b,a", 1}, {"a", "*,!a", -1}, {"c", "*,!a", 1}, {"c", "!a", 0}, {"A", "a", 0},
	}
	for _, tt := range lists {
		if got := matchPatternList(tt.s, tt.p, false); got != tt.want {
			t.Errorf("matchPatternList(%q, %q) = %v, want %v", tt.s, tt.p, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true}, {"90", 90 * time.Second, true}, {"1m30s", 90 * time.Second, true},
		{"1H", time.Hour, true}, {"1w1d", 8 * 24 * time.Hour, true}, {"", 0, false},
		{"5x", 0, false}, {"-1", 0, false}, {"m", 0, false}, {"99999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseTime(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseTime(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`a b`, []string{"a", "b"}},
		{`"a b" c`, []string{"a b", "c"}},
		{`'a b'#x`, []string{"a b#x"}},
		{`a # comment`, []string{"a"}},
		{`a\ b`, []string{"a b"}},
		{`"a\"b"`, []string{`a"b`}},
		{`a\zb`, []string{`a\zb`}},
		{`""`, []string{""}},
	}
	for _, tt := range tests {
		got, err := splitArgs(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzSSHConfigParse(f *testing.F) {
	f.Add("Host *\n  Port 22\n  User \"a b\"\nMatch host x,!y user z\n  IdentityFile ~/%h_%%\n")
	f.Add("Host=a\tb !c\nProxyJump u@[::1]:22,ssh://x\nConnectTimeout 1m2s\nMatch all\n")
	f.Add("HostName %h.%\nIdentityAgent ${X\nUserKnownHostsFile none\n'")
	f.Fuzz(func(t *testing.T, data string) {
		// Include would read arbitrary paths on the fuzzing machine; the rest of the
		// parser and resolver are exercised without touching the file system.
		if strings.Contains(strings.ToLower(data), "include") {
			return
		}
		c := &SSHConfig{env: sshEnv{home: "/home/f", localUser: "f", localHost: "h.example",
			getenv: func(string) (string, bool) { return "v", true }}}
		file, err := c.parse(strings.NewReader(data), "fuzz", true, nil)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz line ") {
				t.Fatalf("parse error without file and line: %v", err)
			}
			return
		}
		c.files = []*cfgFile{file}
		for _, alias := range []string{"a", "x.example", "B"} {
			for _, o := range []Overrides{{}, {User: "z", Port: 2, ProxyJump: "none"}} {
				if e, err := c.Resolve(alias, o); err == nil && e.Alias != alias {
					t.Fatalf("alias %q resolved as %q", alias, e.Alias)
				}
			}
		}
	})
}
