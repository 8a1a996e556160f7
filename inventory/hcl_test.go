package inventory

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestHCLInventory(t *testing.T) {
	inv := mustLoad(t, "testdata/fleet.hcl")
	tru, fal := true, false
	tests := []struct {
		name   string
		want   Host
		vars   map[string]any
		groups []string
	}{
		{
			name: "web-03",
			want: Host{Address: "10.0.1.3", Port: 22, User: "deploy", KeyFiles: []string{"~/.ssh/fleet"}, ProxyJump: "bastion", Become: &tru},
			// defaults < web < frontend (deeper) < host
			vars:   map[string]any{"datacenter": "dc1", "tier": "frontend", "http_port": int64(8080), "role": "web", "fqdn": "web-03.example.com"},
			groups: []string{"all", "frontend", "web"},
		},
		{
			name:   "web-01",
			want:   Host{Address: "10.0.1.1", Port: 22, User: "deploy", KeyFiles: []string{"~/.ssh/fleet"}, ProxyJump: "bastion", Become: &tru},
			vars:   map[string]any{"tier": "web", "fqdn": "web-01.example.com"},
			groups: []string{"all", "web"},
		},
		{
			name: "db1",
			want: Host{Address: "10.0.2.1", Port: 2222, User: "postgres", KeyFiles: []string{"~/.ssh/db", "~/.ssh/db-old"}, Become: &fal},
			vars: map[string]any{"tier": "host", "weight": 1.5, "tags": []any{"a", "b"},
				"limits": map[string]any{"cpu": int64(2)}, "datacenter": "dc1"},
			groups: []string{"all", "db"},
		},
		{
			name:   "bastion",
			want:   Host{Port: 22, User: "deploy", KeyFiles: []string{"~/.ssh/fleet"}, Become: &tru},
			vars:   map[string]any{"tier": "base"},
			groups: []string{"all", "ungrouped"},
		},
	}
	for _, tt := range tests {
		h, ok := inv.Lookup(tt.name)
		if !ok {
			t.Fatalf("no host %s", tt.name)
		}
		got := Host{Address: h.Address, Port: h.Port, User: h.User, KeyFiles: h.KeyFiles, ProxyJump: h.ProxyJump, Become: h.Become}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		for k, v := range tt.vars {
			if !reflect.DeepEqual(h.Vars[k], v) {
				t.Errorf("%s: var %s = %#v, want %#v", tt.name, k, h.Vars[k], v)
			}
		}
		if !reflect.DeepEqual(h.Groups, tt.groups) {
			t.Errorf("%s: groups = %v, want %v", tt.name, h.Groups, tt.groups)
		}
	}
	if got, want := names(inv.Hosts), []string{"web-01", "web-02", "web-03", "web-04", "db1", "bastion"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hosts = %v, want %v", got, want)
	}
	if got := inv.Groups["all"].Vars["datacenter"]; got != "dc1" {
		t.Errorf("defaults vars not on group all: %v", inv.Groups["all"].Vars)
	}

	list := roundTrip(t, inv.AnsibleList())
	hv := list["_meta"].(map[string]any)["hostvars"].(map[string]any)
	web3 := hv["web-03"].(map[string]any)
	if web3["ansible_host"] != "10.0.1.3" || web3["ansible_user"] != "deploy" || web3["ansible_ssh_common_args"] != "-J bastion" || web3["ansible_become"] != true {
		t.Errorf("AnsibleList hostvars for web-03 lack connection vars: %v", web3)
	}
	if got := list["web"].(map[string]any)["children"]; !reflect.DeepEqual(got, []any{"frontend"}) {
		t.Errorf("web children = %v", got)
	}
	if got := list["all"].(map[string]any)["children"]; !reflect.DeepEqual(got, []any{"ungrouped", "web", "db"}) {
		t.Errorf("all children = %v", got)
	}
}

func TestHCLRangeIndex(t *testing.T) {
	src := `host "n[a:c]-[1:2]" { vars = { i = index, n = name } }`
	inv, err := parseHCL("r.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"na-1", "na-2", "nb-1", "nb-2", "nc-1", "nc-2"}
	if got := names(inv.Hosts); !reflect.DeepEqual(got, want) {
		t.Fatalf("hosts = %v, want %v", got, want)
	}
	for i, h := range inv.Hosts {
		if h.Vars["i"] != int64(i+1) || h.Vars["n"] != h.Name {
			t.Errorf("%s vars = %v, want i=%d n=%s", h.Name, h.Vars, i+1, h.Name)
		}
	}
}

func TestHCLDiagnostics(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // each must appear in the error
	}{
		{"unknown attribute", "host \"a\" {\n  adress = \"x\"\n}\n",
			[]string{"d.hcl:2:3: Unsupported argument"}},
		{"unknown block", "hots \"a\" {}\n", []string{"d.hcl:1:1: Unsupported block type"}},
		{"duplicate host", "host \"a\" {}\nhost \"a\" {}\n", []string{"d.hcl:2:6: Duplicate host", "already defined at d.hcl:1"}},
		{"duplicate via range", "host \"w-[1:3]\" {}\nhost \"w-2\" {}\n", []string{"d.hcl:2:6: Duplicate host", `"w-2"`}},
		{"unknown host in group", "host \"a\" {}\ngroup \"g\" {\n  hosts = [\"a\", \"b\"]\n}\n",
			[]string{"d.hcl:3:11: Unknown host", `host "b"`}},
		{"unknown child", "group \"g\" {\n  children = [\"nope\"]\n}\n", []string{"d.hcl:2:14: Unknown group", `"nope"`}},
		{"cycle", "group \"a\" {\n  children = [\"b\"]\n}\ngroup \"b\" {\n  children = [\"a\"]\n}\n",
			[]string{"d.hcl:5:14: Group cycle"}},
		{"self child", "group \"a\" {\n  children = [\"a\"]\n}\n", []string{"d.hcl:2:14: Group cycle"}},
		{"bad port", "host \"a\" {\n  port = \"ssh\"\n}\n", []string{"d.hcl:2:10: Invalid port"}},
		{"port range", "host \"a\" { port = 70000 }\n", []string{"d.hcl:1:19: Invalid port"}},
		{"bad become", "defaults {\n  become = \"yes\"\n}\n", []string{"d.hcl:2:12: Invalid become"}},
		{"key and keys", "host \"a\" {\n  key = \"k\"\n  keys = [\"k2\"]\n}\n", []string{"d.hcl:3:3: Conflicting key and keys"}},
		{"bad range", "host \"w-[1:x]\" {}\n", []string{"d.hcl:1:6: Invalid host name"}},
		{"unknown variable", "host \"a\" {\n  address = \"10.0.0.${idx}\"\n}\n", []string{"d.hcl:2:23: Unknown variable"}},
		{"syntax", "host \"a\" {\n  address = \n}\n", []string{"d.hcl:2:"}},
		{"two defaults", "defaults {}\ndefaults {}\n", []string{"d.hcl:2:1: Duplicate defaults block"}},
		{"reserved group", "group \"all\" {}\n", []string{"d.hcl:1:7: Reserved group name"}},
		{"vars not object", "group \"g\" {\n  vars = [1]\n}\n", []string{"d.hcl:2:10: Invalid vars"}},
		{"several errors", "host \"a\" { port = \"x\" }\nhost \"b\" { user = 1 }\n",
			[]string{"d.hcl:1:19: Invalid port", "d.hcl:2:19: Invalid user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHCL("d.hcl", []byte(tt.src))
			var de *DiagnosticsError
			if !errors.As(err, &de) {
				t.Fatalf("error = %v (%T), want *DiagnosticsError", err, err)
			}
			if de.Files["d.hcl"] == nil {
				t.Error("DiagnosticsError.Files lacks the source file")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%s\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestHCLViaLoad(t *testing.T) {
	_, err := Load(context.Background(), "testdata/bad.hcl")
	if err == nil || !strings.Contains(err.Error(), "testdata/bad.hcl:3:") {
		t.Fatalf("Load of bad HCL: %v, want file:line:col", err)
	}
}
