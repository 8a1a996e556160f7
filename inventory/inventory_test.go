package inventory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func names(hosts []*Host) []string {
	out := []string{}
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

func mustLoad(t *testing.T, src string) *Inventory {
	t.Helper()
	inv, err := Load(context.Background(), src)
	if err != nil {
		t.Fatalf("Load(%q): %v", src, err)
	}
	return inv
}

func TestInlineList(t *testing.T) {
	tests := []struct {
		src   string
		hosts []string
		port  map[string]int
	}{
		{src: "h1,h2,h3", hosts: []string{"h1", "h2", "h3"}},
		{src: "h1,", hosts: []string{"h1"}},
		{src: " a , ,b,a", hosts: []string{"a", "b"}},
		{src: "web:2222,db", hosts: []string{"web", "db"}, port: map[string]int{"web": 2222}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			inv := mustLoad(t, tt.src)
			if got := names(inv.Hosts); !reflect.DeepEqual(got, tt.hosts) {
				t.Fatalf("hosts = %v, want %v", got, tt.hosts)
			}
			if got := inv.Groups["ungrouped"].Hosts; !reflect.DeepEqual(got, tt.hosts) {
				t.Errorf("ungrouped = %v, want %v", got, tt.hosts)
			}
			for _, h := range inv.Hosts {
				if h.Port != tt.port[h.Name] {
					t.Errorf("%s port = %d, want %d", h.Name, h.Port, tt.port[h.Name])
				}
				if !reflect.DeepEqual(h.Groups, []string{"all", "ungrouped"}) {
					t.Errorf("%s groups = %v", h.Name, h.Groups)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		src, want string
	}{
		{src: filepath.Join(dir, "missing.hcl"), want: "missing.hcl: no such file"},
		{src: "justonename", want: "inventory justonename: no such file"},
		{src: dir, want: "is a directory"},
	}
	for _, tt := range tests {
		_, err := Load(context.Background(), tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%q) error = %v, want it to contain %q", tt.src, err, tt.want)
		}
	}
}

func TestDetectionWithoutExtension(t *testing.T) {
	dir := t.TempDir()
	yamlData, err := os.ReadFile("testdata/ansible/deep.yml")
	if err != nil {
		t.Fatal(err)
	}
	iniData, err := os.ReadFile("testdata/ansible/children.ini")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"yamlinv": yamlData, "iniinv": iniData} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	y := mustLoad(t, filepath.Join(dir, "yamlinv"))
	if _, ok := y.Groups["c"]; !ok {
		t.Errorf("extension-less YAML not read as YAML: groups %v", y.Groups)
	}
	i := mustLoad(t, filepath.Join(dir, "iniinv"))
	if _, ok := i.Groups["region_eu"]; !ok {
		t.Errorf("extension-less INI not read as INI: groups %v", i.Groups)
	}
}

func TestConnectionFields(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "conn.ini")
	data := `[web]
w1 ansible_host=10.0.0.1 ansible_port=2201 ansible_ssh_private_key_file=/k/w1 ansible_become=yes ansible_ssh_common_args='-o ProxyJump=jump1'
w2 ansible_ssh_common_args="-J admin@jump2:2222" ansible_become=False
w3 ansible_ssh_common_args="-o ProxyCommand='nc %h %p'"
w4 ansible_ssh_host=10.0.0.4 ansible_ssh_user=legacy ansible_port="2204"
[web:vars]
ansible_user=deploy
`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	inv := mustLoad(t, path)
	tru, fal := true, false
	tests := []struct {
		name string
		want Host
	}{
		{"w1", Host{Address: "10.0.0.1", Port: 2201, User: "deploy", KeyFiles: []string{"/k/w1"}, ProxyJump: "jump1", Become: &tru}},
		{"w2", Host{User: "deploy", ProxyJump: "admin@jump2:2222", Become: &fal}},
		{"w3", Host{User: "deploy"}},
		{"w4", Host{Address: "10.0.0.4", Port: 2204, User: "deploy"}},
	}
	for _, tt := range tests {
		h, ok := inv.Lookup(tt.name)
		if !ok {
			t.Fatalf("Lookup(%s) failed", tt.name)
		}
		got := Host{Address: h.Address, Port: h.Port, User: h.User, KeyFiles: h.KeyFiles, ProxyJump: h.ProxyJump, Become: h.Become}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		if h.Vars["ansible_user"] != "deploy" {
			t.Errorf("%s: ansible_user not kept in Vars: %v", tt.name, h.Vars)
		}
	}
	if _, ok := inv.Lookup("nope"); ok {
		t.Error("Lookup(nope) succeeded")
	}

	bad := filepath.Join(dir, "bad.ini")
	if err := os.WriteFile(bad, []byte("h ansible_port=http\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "ansible_port") {
		t.Errorf("bad port: error = %v, want one naming ansible_port", err)
	}
}

func TestVarPrecedenceAndGroups(t *testing.T) {
	inv := mustLoad(t, "testdata/ansible/children.ini")
	tests := []struct {
		host   string
		vars   map[string]any
		groups []string
	}{
		// eu_web (depth 3, priority 5) beats us_web (depth 3, priority 1).
		{"eu-web-01", map[string]any{"env": "eu-web", "dc": "us-1", "tier": int64(1), "ansible_user": "alice", "extra": int64(1)},
			[]string{"all", "eu_web", "prod", "region_eu", "region_us", "us_web"}},
		{"eu-db-b", map[string]any{"env": "eu", "dc": "eu-1", "tier": int64(1), "ansible_user": "root"},
			[]string{"all", "eu_db", "prod", "region_eu"}},
		{"lonely-2", map[string]any{"env": "base", "x": int64(1), "tier": int64(0), "ansible_user": "root"},
			[]string{"all", "standalone"}},
	}
	for _, tt := range tests {
		h, ok := inv.Lookup(tt.host)
		if !ok {
			t.Fatalf("no host %s", tt.host)
		}
		for k, want := range tt.vars {
			if got := h.Vars[k]; got != want {
				t.Errorf("%s: %s = %#v, want %#v", tt.host, k, got, want)
			}
		}
		if !reflect.DeepEqual(h.Groups, tt.groups) {
			t.Errorf("%s: groups = %v, want %v", tt.host, h.Groups, tt.groups)
		}
	}
	wantOrder := []string{"eu-web-01", "eu-web-04", "eu-web-07", "eu-web-10", "eu-web-special",
		"eu-db-a", "eu-db-b", "eu-db-c", "eu-db-X", "eu-db-Y", "eu-db-Z",
		"us-web-8", "us-web-9", "us-web-10", "us-web-11", "lonely-1", "lonely-2"}
	if got := names(inv.Hosts); !reflect.DeepEqual(got, wantOrder) {
		t.Errorf("host order = %v\nwant %v", got, wantOrder)
	}
}

func TestVarsAreNotShared(t *testing.T) {
	inv := mustLoad(t, "testdata/ansible/anchors.yaml")
	a, _ := inv.Lookup("appa")
	b, _ := inv.Lookup("appb")
	a.Vars["dns"].([]any)[0] = "changed"
	if b.Vars["dns"].([]any)[0] != "1.1.1.1" {
		t.Fatal("hosts share the same vars value")
	}
}

func TestINIErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"bad section", "[web:nope]\nh1\n", "line 1: section [web:nope] has unknown type"},
		{"spaces in section", "[web servers]\n", "line 1: invalid section entry"},
		{"undefined child", "[a:children]\nb\n", "line 2: section [a:children] includes undefined group: b"},
		{"vars for nothing", "[a:vars]\nx=1\n", "line 1: section [a:vars] is for a group that is never defined"},
		{"no equals", "[a]\nh1 foo\n", "line 2: expected key=value"},
		{"open quote", "h1 x='oops\n", "line 1: host definition"},
		{"cycle", "[a:children]\nb\n[b:children]\na\n", "cycle"},
		{"bad range", "web-[03:1x]\n", "line 1: host range"},
		{"huge range", "web-[0:99999999]\n", "more than"},
		{"trailing colon", "web:\n", "trailing ':'"},
		{"vars line", "[a]\nh\n[a:vars]\njustakey\n", "line 4: expected key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseINI("x.ini", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "empty YAML"},
		{"list", "- a\n- b\n", "should be a mapping"},
		{"plugin", "plugin: aws_ec2\n", "plugin configuration"},
		{"host vars list", "all:\n  hosts:\n    h1: [1, 2]\n", "vars must be a mapping"},
		{"hosts list", "all:\n  hosts: [a, b]\n", "must be a mapping"},
		{"cycle", "a:\n  children:\n    b:\n      children:\n        a:\n", "cycle"},
		{"syntax", "all: [\n", "YAML"},
		{"alias bomb", yamlBomb(), "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseYAML("x.yml", []byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func yamlBomb() string {
	var sb strings.Builder
	sb.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		sb.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("*a" + string(rune('0'+i-1)))
		}
		sb.WriteString("]\n")
	}
	sb.WriteString("all:\n  vars:\n    boom: *a8\n")
	return sb.String()
}

func TestScriptErrors(t *testing.T) {
	fails := installScript(t, "fails.sh")
	_, err := Load(context.Background(), fails)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the CMDB") || !strings.Contains(err.Error(), "--list") {
		t.Errorf("failing script: error = %v, want its stderr and the command", err)
	}

	slow := filepath.Join(t.TempDir(), "slow.sh")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Load(ctx, slow)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow script: error = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("slow script took %v despite the context", d)
	}

	garbage := filepath.Join(t.TempDir(), "garbage.sh")
	if err := os.WriteFile(garbage, []byte("#!/bin/sh\necho '[1,2]'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(context.Background(), garbage); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("non-object output: error = %v", err)
	}
}

func TestScriptHostVars(t *testing.T) {
	inv := mustLoad(t, installScript(t, "nometa.sh"))
	h, ok := inv.Lookup("app-1")
	if !ok || h.Address != "10.1.0.1" || h.Vars["role"] != "override" {
		t.Fatalf("app-1 = %+v", h)
	}
	l, _ := inv.Lookup("loner")
	if l.Port != 2222 {
		t.Errorf("loner port = %d, want 2222 from --host", l.Port)
	}
}

func TestYAMLRecursiveAlias(t *testing.T) {
	for _, src := range []string{
		"a: &x {children: {b: *x}}\n",
		"all:\n  vars: &v\n    self: *v\n",
		"all:\n  vars:\n    m: &m {<<: *m}\n",
	} {
		if _, err := parseYAML("r.yml", []byte(src)); err == nil {
			t.Errorf("parseYAML(%q) succeeded, want an error", src)
		}
	}
}
