package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/drover-sh/drover/transport"
)

const testBoundary = "drv-00112233445566778899aabbccddeeff"

// stream builds gatherer output from (kind, name, value) triples.
func streamOf(withEnd bool, triples ...string) []byte {
	var b bytes.Buffer
	b.WriteString("motd noise\nDRV2 " + testBoundary + "\n")
	field := func(s string) { b.WriteString(s + "\n" + testBoundary + "\n") }
	for _, s := range triples {
		field(s)
	}
	if withEnd {
		field("end")
		field("end")
		field("")
	}
	return b.Bytes()
}

func mustParse(t *testing.T, out []byte) Facts {
	t.Helper()
	f, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestParseHostileValues(t *testing.T) {
	hostile := "v;$(rm -rf /) `reboot` 'a' \"b\"\n\nDRV2 fake\nend\n" + testBoundary[:10] + "\x00é"
	out := streamOf(true,
		"raw", "uname_s", "Linux",
		"raw", "uname_n", "web1.example.com",
		"extdir", "/etc/facter/facts.d", "",
		"ext_json", "/etc/facter/facts.d/x.json", mustJSONString(map[string]any{"role": hostile}),
		"ext_txt", "/etc/facter/facts.d/y.txt", "dc=a;b $(x) `y`\r\n",
	)
	f := mustParse(t, out)
	tests := []struct {
		path string
		want any
	}{
		{"kernel", "Linux"},
		{"role", hostile},
		{"dc", "a;b $(x) `y`"},
		{"networking.hostname", "web1"},
		{"networking.domain", "example.com"},
		{"networking.fqdn", "web1.example.com"},
	}
	for _, tt := range tests {
		got, ok := f.Get(tt.path)
		if !ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %#v (present %v), want %#v", tt.path, got, ok, tt.want)
		}
	}
}

func mustJSONString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		out  []byte
	}{
		{"empty", nil},
		{"no header", []byte("hello\nworld\n")},
		{"short boundary", []byte("DRV2 x\nend\nx\nend\nx\n\nx\n")},
		{"truncated", streamOf(false, "raw", "uname_s", "Linux")},
		{"cut mid record", streamOf(true, "raw", "uname_s", "Linux")[:60]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.out)
			if err == nil || f != nil || !errors.Is(err, ErrGather) {
				t.Fatalf("Parse = %v, %v; want nil facts and ErrGather", f, err)
			}
		})
	}
}

func TestParseWrongBoundaryRejected(t *testing.T) {
	out := streamOf(true, "raw", "uname_s", "Linux")
	if _, err := parse(out, "drv-ffffffffffffffffffffffffffffffff"); !errors.Is(err, ErrGather) {
		t.Fatalf("parse with another boundary: %v, want ErrGather", err)
	}
	if f, err := parse(out, testBoundary); err != nil || f["kernel"] != "Linux" {
		t.Fatalf("parse with the right boundary: %v %v", f, err)
	}
}

func TestParseWarnings(t *testing.T) {
	out := streamOf(true,
		"raw", "uname_s", "Linux",
		"extdir", "/etc/facter/facts.d", "",
		"ext_json", "/etc/facter/facts.d/bad.json", "{not json",
		"ext_txt", "/etc/facter/facts.d/ok.txt", "a=1\n",
		"error", "facter", "facter is not installed",
	)
	f, err := Parse(out)
	var w Warnings
	if !errors.As(err, &w) || len(w) != 2 {
		t.Fatalf("err = %v, want 2 Warnings", err)
	}
	if f["a"] != "1" || f["kernel"] != "Linux" {
		t.Fatalf("facts lost despite warnings: %v", f)
	}
	if !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), "facter is not installed") {
		t.Fatalf("warning text: %v", err)
	}
}

func TestParseFacterMergeWins(t *testing.T) {
	out := streamOf(true,
		"raw", "uname_s", "Linux",
		"raw", "init_system", "systemd",
		"facter", "json", `{"kernel": "FromFacter", "os": {"name": "X"}, "facterversion": "4.3.0"}`,
	)
	f := mustParse(t, out)
	if f["kernel"] != "FromFacter" || f["facterversion"] != "4.3.0" || f["init_system"] != "systemd" {
		t.Fatalf("merge: %v", f)
	}
	if got, _ := f.Get("os.name"); got != "X" {
		t.Fatalf("os.name = %v", got)
	}
}

// osCase is the raw material of one distribution.
type osCase struct {
	name    string
	files   map[string]string
	machine string
	want    map[string]any
}

func TestOSFacts(t *testing.T) {
	cases := []osCase{
		{
			name: "debian 12",
			files: map[string]string{
				"/etc/os-release":     "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
				"/etc/debian_version": "12.11\n",
			},
			machine: "x86_64",
			want: map[string]any{"os.name": "Debian", "os.family": "Debian", "os.release.full": "12.11",
				"os.release.major": "12", "os.release.minor": "11", "os.distro.codename": "bookworm", "architecture": "amd64"},
		},
		{
			name: "debian without codename",
			files: map[string]string{
				"/etc/os-release":     "NAME=\"Debian GNU/Linux\"\nVERSION=\"8 (jessie)\"\nID=debian\n",
				"/etc/debian_version": "8.01\n",
			},
			machine: "aarch64",
			want:    map[string]any{"os.release.minor": "1", "os.distro.codename": "jessie", "architecture": "aarch64"},
		},
		{
			name: "ubuntu 22.04",
			files: map[string]string{
				"/etc/os-release":     "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n",
				"/etc/debian_version": "bookworm/sid\n",
			},
			machine: "x86_64",
			want: map[string]any{"os.name": "Ubuntu", "os.family": "Debian", "os.release.full": "22.04",
				"os.release.major": "22.04", "os.distro.codename": "jammy", "architecture": "amd64"},
		},
		{
			name: "rocky 9",
			files: map[string]string{
				"/etc/os-release":     "NAME=\"Rocky Linux\"\nVERSION_ID=\"9.3\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n",
				"/etc/redhat-release": "Rocky Linux release 9.3 (Blue Onyx)\n",
			},
			machine: "x86_64",
			want: map[string]any{"os.name": "Rocky", "os.family": "RedHat", "os.release.full": "9.3",
				"os.release.major": "9", "os.distro.codename": "Blue Onyx", "architecture": "x86_64"},
		},
		{
			name: "rhel 8",
			files: map[string]string{
				"/etc/os-release":     "NAME=\"Red Hat Enterprise Linux\"\nVERSION_ID=\"8.9\"\nID=\"rhel\"\n",
				"/etc/redhat-release": "Red Hat Enterprise Linux release 8.9 (Ootpa)\n",
			},
			machine: "i686",
			want:    map[string]any{"os.name": "RedHat", "os.family": "RedHat", "os.release.major": "8", "architecture": "i386"},
		},
		{
			name: "alpine",
			files: map[string]string{
				"/etc/os-release":     "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
				"/etc/alpine-release": "3.19.1\n",
			},
			machine: "x86_64",
			want: map[string]any{"os.name": "Alpine", "os.family": "Alpine", "os.release.full": "3.19.1",
				"os.release.major": "3", "os.release.minor": "19"},
		},
		{
			name: "opensuse leap",
			files: map[string]string{
				"/etc/os-release": "NAME=\"openSUSE Leap\"\nVERSION_ID=\"15.5\"\nID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\n",
			},
			machine: "x86_64",
			want: map[string]any{"os.name": "openSUSE", "os.family": "Suse", "os.release.full": "15.5",
				"os.release.major": "15", "os.distro.codename": "n/a"},
		},
		{
			name:    "arch (generic linux)",
			files:   map[string]string{"/etc/os-release": "NAME=\"Arch Linux\"\nID=arch\nVERSION_ID=20240101\n"},
			machine: "x86_64",
			want:    map[string]any{"os.name": "Archlinux", "os.family": "Archlinux", "os.release.full": "20240101.0"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			triples := []string{"raw", "uname_m", c.machine}
			for p, content := range c.files {
				triples = append(triples, "file", p, content)
			}
			f := mustParse(t, streamOf(true, triples...))
			for path, want := range c.want {
				if got, ok := f.Get(path); !ok || got != want {
					t.Errorf("%s = %#v (present %v), want %#v", path, got, ok, want)
				}
			}
		})
	}
}

func TestNetworking(t *testing.T) {
	route := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth1\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
	ipaddr := "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n" +
		"2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever\n" +
		"3: eth1@if9    inet 169.254.1.1/16 scope link eth1\\ x\n" +
		"3: eth1@if9    inet 192.0.2.7/24 scope global eth1\\ x\n" +
		"3: eth1@if9    inet6 fe80::1/64 scope link \\ x\n"
	tests := []struct {
		name    string
		triples []string
		want    map[string]any
	}{
		{"default route interface, skipping link-local", []string{"file", "/proc/net/route", route, "raw", "ipaddr", ipaddr},
			map[string]any{"networking.ip": "192.0.2.7", "networking.primary": "eth1", "networking.ip6": "fe80::1"}},
		{"no default route: first interface with a usable address", []string{"raw", "ipaddr", ipaddr},
			map[string]any{"networking.ip": "10.0.0.5", "networking.primary": "eth0"}},
		{"fqdn from canonical name", []string{"raw", "uname_n", "db1", "raw", "ahosts", "10.0.0.5      STREAM db1.corp.example\n10.0.0.5 DGRAM\n"},
			map[string]any{"networking.fqdn": "db1.corp.example", "networking.domain": "corp.example", "networking.hostname": "db1"}},
		{"fqdn from resolv.conf", []string{"raw", "uname_n", "db1", "raw", "ahosts", "127.0.0.1 STREAM db1\n",
			"file", "/etc/resolv.conf", "nameserver 1.1.1.1\nsearch a.example b.example\n"},
			map[string]any{"networking.fqdn": "db1.a.example", "networking.domain": "a.example"}},
		{"bare hostname", []string{"raw", "uname_n", "vm"},
			map[string]any{"networking.fqdn": "vm", "networking.hostname": "vm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, streamOf(true, tt.triples...))
			for path, want := range tt.want {
				if got, ok := f.Get(path); !ok || got != want {
					t.Errorf("%s = %#v (present %v), want %#v", path, got, ok, want)
				}
			}
		})
	}
}

func TestCoreTypes(t *testing.T) {
	f := mustParse(t, streamOf(true,
		"raw", "cpucount", "8\n",
		"raw", "memtotal", "MemTotal:       24683620 kB",
		"file", "/proc/uptime", "93784.51 180000.00\n",
		"raw", "init_system", "systemd",
		"raw", "package_manager", "apt",
		"raw", "puppet_version", "8.4.0\n",
		"file", "/proc/1/cgroup", "0::/docker/abc123\n",
		"raw", "container_env", "",
	))
	want := map[string]any{
		"processors.count":          int64(8),
		"memory.system.total_bytes": int64(24683620 * 1024),
		"system_uptime.seconds":     int64(93784),
		"system_uptime.hours":       int64(26),
		"system_uptime.days":        int64(1),
		"init_system":               "systemd",
		"package_manager":           "apt",
		"puppet.version":            "8.4.0",
		"virtual":                   "docker",
	}
	for path, w := range want {
		if got, ok := f.Get(path); !ok || got != w {
			t.Errorf("%s = %#v (present %v), want %#v", path, got, ok, w)
		}
	}
}

func TestExternalPrecedence(t *testing.T) {
	out := streamOf(true,
		"raw", "uname_s", "Linux",
		"extdir", "/etc/puppetlabs/facter/facts.d", "",
		"ext_txt", "/etc/puppetlabs/facter/facts.d/a.txt", "shared=puppetlabs\n",
		"extdir", "/etc/facter/facts.d", "",
		"ext_txt", "/etc/facter/facts.d/a.txt", "shared=facter\nwithin=a\nKernel=custom\n",
		"ext_txt", "/etc/facter/facts.d/b.txt", "within=b\n",
		"ext_yaml", "/etc/facter/facts.d/c.yaml", "nulled: ~\n",
		"ext_exec", "/etc/facter/facts.d/d", "within: c\n",
	)
	f := mustParse(t, out)
	want := map[string]any{"shared": "puppetlabs", "within": "c", "kernel": "custom"}
	for k, w := range want {
		if f[k] != w {
			t.Errorf("%s = %#v, want %#v", k, f[k], w)
		}
	}
	if _, ok := f["nulled"]; ok {
		t.Error("a null external fact must not appear")
	}
}

func TestPsychScalar(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"yes", true}, {"Off", false}, {"~", nil}, {"null", nil}, {"42", int64(42)}, {"-0x1f", int64(-31)},
		{"017", int64(15)}, {"0b101", int64(5)}, {"1_000", int64(1000)}, {"1:30", int64(90)},
		{"1.5", 1.5}, {"-.5", -0.5}, {"99999999999999999999", json.Number("99999999999999999999")},
		{"0o17", "0o17"}, {"y", "y"}, {"hello", "hello"}, {"2024-01-02", "2024-01-02"}, {".", "."}, {"1.2.3", "1.2.3"},
	}
	for _, tt := range tests {
		if got := psychScalar(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("psychScalar(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestGetAndFlatten(t *testing.T) {
	f := Facts{
		"os":         map[string]any{"release": map[string]any{"major": "12"}},
		"dotted.key": "top",
		"models":     []any{"a", "b"},
		"empty":      map[string]any{},
	}
	tests := []struct {
		path string
		want any
		ok   bool
	}{
		{"os.release.major", "12", true},
		{"dotted.key", "top", true},
		{"models.1", "b", true},
		{"models.2", nil, false},
		{"os.nope", nil, false},
		{"", nil, false},
	}
	for _, tt := range tests {
		got, ok := f.Get(tt.path)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Get(%q) = %#v, %v; want %#v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
	flat := f.Flatten()
	wantFlat := map[string]any{"os.release.major": "12", "dotted.key": "top", "models.0": "a", "models.1": "b", "empty": map[string]any{}}
	if !reflect.DeepEqual(flat, wantFlat) {
		t.Errorf("Flatten = %#v, want %#v", flat, wantFlat)
	}
}

// countingRunner answers every Run with a canned stream and counts calls.
type countingRunner struct {
	localRunner
	out []byte
	err error
}

func (r *countingRunner) Run(_ context.Context, c *transport.Command) (*transport.Result, error) {
	r.calls++
	if r.err != nil {
		return nil, r.err
	}
	if c.Cmd != "sh -s" || c.Stdin == nil {
		return &transport.Result{ExitCode: 127}, nil
	}
	return &transport.Result{Stdout: r.out}, nil
}

func TestGatherErrors(t *testing.T) {
	t.Run("unreachable is wrapped", func(t *testing.T) {
		r := &countingRunner{err: transport.ErrUnreachable}
		_, err := Gather(context.Background(), r, Options{})
		if !errors.Is(err, transport.ErrUnreachable) || r.calls != 1 {
			t.Fatalf("err = %v, calls = %d", err, r.calls)
		}
	})
	t.Run("forged stream with a guessed boundary is refused", func(t *testing.T) {
		r := &countingRunner{out: streamOf(true, "raw", "uname_s", "Linux")}
		_, err := Gather(context.Background(), r, Options{})
		if !errors.Is(err, ErrGather) || r.calls != 1 {
			t.Fatalf("err = %v, calls = %d", err, r.calls)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(streamOf(true, "raw", "uname_s", "Linux", "extdir", "/d", "", "ext_txt", "/d/a.txt", "a=b\n"))
	f.Add(streamOf(true, "ext_yaml", "/d/a.yaml", "a: &x [*x]\n", "ext_json", "/d/b.json", `{"a":1e400}`))
	f.Add(streamOf(true, "file", "/proc/net/route", "x\n\t\t\t\t\t\t\t\t", "raw", "ipaddr", "1: a inet ::1"))
	f.Add([]byte("DRV2 " + testBoundary + "\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		facts, err := Parse(out)
		var w Warnings
		if err != nil && !errors.As(err, &w) && facts != nil {
			t.Fatalf("a hard error must come without facts: %v", err)
		}
		if facts != nil {
			if _, err := json.Marshal(facts); err != nil {
				t.Fatalf("facts do not marshal: %v", err)
			}
		}
	})
}

func TestPuppetVersionSources(t *testing.T) {
	const rb = "module Puppet\n  PUPPETVERSION = '7.23.0'\n\n  def self.version\n"
	tests := []struct {
		name    string
		records []string
		want    string // "" = no puppet fact
	}{
		{"puppet --version", []string{"raw", "puppet_version", "8.4.0\n"}, "8.4.0"},
		{"version.rb constant", []string{"raw", "puppet_version_rb", rb}, "7.23.0"},
		{"VERSION file wins over version.rb", []string{"raw", "puppet_version", "7.23.0-12-gabc\n", "raw", "puppet_version_rb", rb}, "7.23.0-12-gabc"},
		{"version.rb without the constant", []string{"raw", "puppet_version_rb", "module Puppet\nend\n"}, ""},
		{"no puppet", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := mustParse(t, streamOf(true, tc.records...))
			got, ok := f.Get("puppet.version")
			if tc.want == "" {
				if ok {
					t.Fatalf("puppet.version = %#v, want absent", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("puppet.version = %#v (present %v), want %q", got, ok, tc.want)
			}
		})
	}
}
