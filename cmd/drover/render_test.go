package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-sh/drover/inventory"
	"github.com/drover-sh/drover/transport"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// pingFixture is a mixed run: every status and failure class once.
func pingFixture() ([]target, []pingResult) {
	eps := []*transport.Endpoint{
		{Alias: "web1", HostName: "127.1.0.1", Port: 22},
		{Alias: "web2", HostName: "127.1.0.2", Port: 22},
		{Alias: "db-primary", HostName: "127.1.0.3", Port: 2222},
		{Alias: "db-replica", HostName: "127.1.0.4", Port: 22},
		{Alias: "cache", HostName: "127.1.0.5", Port: 22},
		{Alias: "frozen", HostName: "127.1.0.6", Port: 22},
	}
	var ts []target
	for _, ep := range eps {
		ts = append(ts, target{host: &inventory.Host{Name: ep.Alias}, ep: ep})
	}
	rs := []pingResult{
		{Name: "web1", Address: "127.1.0.1:22", Status: statusOK, ConnectMS: 12.345, RTTMS: 0.412},
		{Name: "web2", Address: "127.1.0.2:22", Status: statusOK, ConnectMS: 150.2, RTTMS: 1.5},
		{Name: "db-primary", Address: "127.1.0.3:2222", Status: statusFailed, Reason: reasonHostKey, ConnectMS: 3,
			Error: "db-primary: host key verification failed: key mismatch for 127.1.0.3 in /tmp/kh:7"},
		{Name: "db-replica", Address: "127.1.0.4:22", Status: statusFailed, Reason: reasonAuth, ConnectMS: 4,
			Error: "db-replica: authentication failed: tried publickey"},
		{Name: "cache", Address: "127.1.0.5:22", Status: statusUnreachable, ConnectMS: 0.5,
			Error: "dial tcp 127.1.0.5:22: connect: connection refused: host unreachable"},
		{Name: "frozen", Address: "127.1.0.6:22", Status: statusUnreachable, ConnectMS: 2000,
			Error: "no answer within 2s: context deadline exceeded"},
	}
	return ts, rs
}

func TestGoldenPing(t *testing.T) {
	ts, rs := pingFixture()
	var b bytes.Buffer
	pal := newPalette(false)
	w := lineWidths(ts)
	for _, r := range rs {
		renderPingLine(&b, pal, w, r)
	}
	if err := renderPingSummary(&b, pal, summarize(rs, false)); err != nil {
		t.Fatal(err)
	}
	golden(t, "ping.txt", b.Bytes())

	b.Reset()
	if err := renderPingJSON(&b, rs, summarize(rs, false)); err != nil {
		t.Fatal(err)
	}
	golden(t, "ping.json", b.Bytes())
}

func TestGoldenPingInterrupted(t *testing.T) {
	_, rs := pingFixture()
	rs = rs[:2]
	rs = append(rs, pingResult{Name: "db-primary", Address: "127.1.0.3:2222", Status: statusSkipped, Error: "not started: interrupted"})
	var b bytes.Buffer
	if err := renderPingSummary(&b, newPalette(false), summarize(rs, true)); err != nil {
		t.Fatal(err)
	}
	golden(t, "ping-interrupted.txt", b.Bytes())
}

func TestSummarize(t *testing.T) {
	_, rs := pingFixture()
	s := summarize(rs, false)
	if s.Total != 6 || s.OK != 2 || s.Failed != 2 || s.Unreachable != 2 || s.Skipped != 0 {
		t.Errorf("counts %+v", s)
	}
	if s.RTT == nil || s.RTT.Min != 0.412 || s.RTT.Max != 1.5 || s.RTT.Avg != 0.956 {
		t.Errorf("rtt %+v, want min 0.412 avg 0.956 max 1.5", s.RTT)
	}
	if got := s.FailedHosts[reasonHostKey]; len(got) != 1 || got[0] != "db-primary" {
		t.Errorf("host-key failures %v", got)
	}
	if none := summarize(rs[2:], false); none.RTT != nil {
		t.Errorf("no host answered, rtt %+v, want nil", none.RTT)
	}
}

func showFixture() hostView {
	yes := true
	h := &inventory.Host{
		Name: "web1", Address: "127.1.0.1", Port: 22, User: "deploy", Become: &yes,
		Groups: []string{"web", "eu"},
		Vars:   map[string]any{"role": "web", "weight": 3, "tags": []any{"a", "b"}},
	}
	ep := &transport.Endpoint{
		Alias: "web1", HostName: "127.1.0.1", Port: 22, User: "deploy",
		IdentityFiles:         []string{"/home/deploy/.ssh/id_ed25519", "/home/deploy/.ssh/id_rsa"},
		ProxyJump:             []string{"bastion", "ops@jump2:2222"},
		UserKnownHostsFiles:   []string{"/home/deploy/.ssh/known_hosts", "/home/deploy/.ssh/known_hosts2"},
		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts"},
		StrictHostKeyChecking: transport.HostKeyStrict,
		ConnectTimeout:        10 * time.Second,
		ServerAliveCountMax:   3,
	}
	return newHostView(h, ep)
}

func TestGoldenInventoryShow(t *testing.T) {
	var b bytes.Buffer
	if err := renderHostShow(&b, showFixture()); err != nil {
		t.Fatal(err)
	}
	golden(t, "inventory-show.txt", b.Bytes())
	b.Reset()
	if err := writeJSON(&b, showFixture()); err != nil {
		t.Fatal(err)
	}
	golden(t, "inventory-show.json", b.Bytes())
}

func TestGoldenInventoryList(t *testing.T) {
	inv := &inventory.Inventory{Source: "test", Hosts: []*inventory.Host{
		{Name: "web1", Address: "127.1.0.1", Port: 22, User: "deploy", Groups: []string{"web", "eu"}},
		{Name: "db-primary-long-name", Address: "db.example.com", Port: 2222, Groups: []string{"db"}},
		{Name: "bare"},
	}}
	var b bytes.Buffer
	if err := renderInventoryList(&b, inv); err != nil {
		t.Fatal(err)
	}
	golden(t, "inventory-list.txt", b.Bytes())
}

// The --json list is the inventory package's AnsibleList, printed as is; an inline
// list keeps this independent of any file format.
func TestGoldenInventoryListJSON(t *testing.T) {
	inv, err := inventory.Load(context.Background(), "h1,h2,h3")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := writeJSON(&b, inv.AnsibleList()); err != nil {
		t.Fatal(err)
	}
	golden(t, "inventory-list.json", b.Bytes())
}
