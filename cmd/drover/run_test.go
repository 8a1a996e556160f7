package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/inventory"
	"github.com/drover-sh/drover/transport"
)

// sshConfigNone keeps tests away from the machine's ~/.ssh/config.
var sshConfigNone = []string{"--ssh-config", "none"}

func TestBadInputExitsTwo(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown flag", []string{"ping", "-i", "h1,h2", "--bogus"}, "flag provided but not defined: -bogus"},
		{"unknown flag after positional", []string{"ping", "h1", "--bogus", "-i", "h1,h2"}, "-bogus"},
		{"bad duration", []string{"ping", "-i", "h1,h2", "--connect-timeout", "5x"}, "connect-timeout"},
		{"bad timeout", []string{"ping", "-i", "h1,h2", "--timeout", "-1s"}, "--timeout"},
		{"bad int", []string{"ping", "-i", "h1,h2", "--forks", "many"}, "forks"},
		{"zero forks", []string{"ping", "-i", "h1,h2", "--forks", "0"}, "--forks"},
		{"missing inventory", []string{"ping", "-i", "/nonexistent/inventory.hcl"}, "/nonexistent/inventory.hcl"},
		{"pattern names nothing", []string{"ping", "nosuchhost", "-i", "h1,h2"}, "nosuchhost"},
		{"-I names nothing", []string{"ping", "-i", "h1,h2", "-I", "h9"}, "-I"},
		{"-I bad regex", []string{"ping", "-i", "h1,h2", "-I", "/(/"}, "-I /(/"},
		{"-F without operator", []string{"ping", "-i", "h1,h2", "-F", "role"}, "-F/--with-fact"},
		{"-F bad regex", []string{"ping", "-i", "h1,h2", "-F", "role=~/(/"}, "-F/--with-fact"},
		{"-S syntax", []string{"ping", "-i", "h1,h2", "-S", `facts.role ==`}, "-S/--select"},
		{"-S unknown root", []string{"ping", "-i", "h1,h2", "-S", `fact.role == "web"`}, "-S/--select"},
		{"two patterns", []string{"ping", "h1", "h2", "-i", "h1,h2"}, "at most one PATTERN"},
		{"ask-become-pass without terminal", []string{"ping", "-i", "h1,h2", "--ask-become-pass"}, "no terminal"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"no command", nil, "no command given"},
		{"show unknown host", []string{"inventory", "show", "h9", "-i", "h1,h2"}, `"h9"`},
		{"show without host", []string{"inventory", "show", "-i", "h1,h2"}, "exactly one HOST"},
		{"list with arguments", []string{"inventory", "list", "x", "-i", "h1,h2"}, "no arguments"},
		{"inventory without subcommand", []string{"inventory"}, "missing subcommand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(nil)
			args := append(slices.Clone(tt.args), sshConfigNone...)
			if tt.args == nil || tt.args[0] == "frobnicate" || len(tt.args) == 1 {
				args = tt.args
			}
			if code := h.run(t, args...); code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, h.stdout.String(), h.stderr.String())
			}
			first, rest, _ := strings.Cut(h.stderr.String(), "\n")
			if !strings.HasPrefix(first, "drover: error: ") || !strings.Contains(first, tt.wantErr) {
				t.Errorf("stderr first line %q, want drover: error: …%s…", first, tt.wantErr)
			}
			if !strings.Contains(rest, "--help' for usage") {
				t.Errorf("no usage hint in stderr: %q", h.stderr.String())
			}
			if h.stdout.Len() != 0 {
				t.Errorf("bad input printed on stdout: %q", h.stdout.String())
			}
			if len(h.conn.dialled) != 0 {
				t.Errorf("bad input, yet dialled %v", h.conn.dialled)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	h := newHarness(nil)
	if code := h.run(t, "version"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if !strings.HasPrefix(h.stdout.String(), "drover dev go1.") {
		t.Errorf("version printed %q", h.stdout.String())
	}
}

func parsePingDoc(t *testing.T, out string) pingDoc {
	t.Helper()
	var doc pingDoc
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not one ping document: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document on stdout:\n%s", out)
	}
	return doc
}

func TestPingClassifiesAndExits(t *testing.T) {
	hostKeyErr := fmt.Errorf("h2: knownhosts: key mismatch in /tmp/kh:7: %w", transport.ErrHostKey)
	hosts := map[string]*fakeHost{
		"h1": {rtt: 700 * time.Microsecond},
		"h2": {dialErr: hostKeyErr},
		"h3": {dialErr: fmt.Errorf("h3: %w", transport.ErrAuth)},
		"h4": {dialErr: fmt.Errorf("dial tcp: refused: %w", transport.ErrUnreachable)},
		"h5": {rtt: 300 * time.Microsecond},
		"h6": {dialErr: errors.New("something odd")},
	}
	h := newHarness(hosts)
	code := h.run(t, append([]string{"ping", "--json", "-i", "h1,h2,h3,h4,h5,h6"}, sshConfigNone...)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, h.stderr.String())
	}
	doc := parsePingDoc(t, h.stdout.String())
	want := map[string][2]string{
		"h1": {statusOK, ""}, "h2": {statusFailed, reasonHostKey}, "h3": {statusFailed, reasonAuth},
		"h4": {statusUnreachable, ""}, "h5": {statusOK, ""}, "h6": {statusFailed, reasonError},
	}
	var names []string
	for _, r := range doc.Hosts {
		names = append(names, r.Name)
		if w := want[r.Name]; r.Status != w[0] || r.Reason != w[1] {
			t.Errorf("%s: status %q reason %q, want %q %q (%s)", r.Name, r.Status, r.Reason, w[0], w[1], r.Error)
		}
	}
	if !slices.Equal(names, []string{"h1", "h2", "h3", "h4", "h5", "h6"}) {
		t.Errorf("hosts in order %v, want inventory order", names)
	}
	if doc.Hosts[1].Error != hostKeyErr.Error() {
		t.Errorf("host-key error shortened: %q", doc.Hosts[1].Error)
	}
	if doc.Hosts[0].RTTMS != 0.7 {
		t.Errorf("h1 rtt_ms %v, want 0.7", doc.Hosts[0].RTTMS)
	}
	if s := doc.Summary; s.OK != 2 || s.Failed != 3 || s.Unreachable != 1 || s.RTT == nil || s.RTT.Min != 0.3 || s.RTT.Max != 0.7 {
		t.Errorf("summary %+v", s)
	}
	if h.stderr.Len() != 0 {
		t.Errorf("stderr not empty for a run with failed hosts: %q", h.stderr.String())
	}
	if !h.conn.closed {
		t.Error("connector not closed")
	}
}

func TestPingAllOKPlainOutput(t *testing.T) {
	h := newHarness(nil)
	// Flags after the pattern, NO_COLOR unset but stdout not a terminal: no colour.
	code := h.run(t, append([]string{"ping", "h2,h3", "-i", "h1,h2,h3", "--forks", "1"}, sshConfigNone...)...)
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, h.stderr.String())
	}
	out := h.stdout.String()
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour codes without a terminal:\n%q", out)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "h2  h2:22  ok") || !strings.HasPrefix(lines[1], "h3  h3:22  ok") {
		t.Errorf("host lines:\n%s", out)
	}
	if !strings.Contains(out, "2 hosts: 2 ok, 0 failed, 0 unreachable") || !strings.Contains(out, "rtt min/avg/max: 1.00ms / 1.00ms / 1.00ms") {
		t.Errorf("summary:\n%s", out)
	}
	if slices.Contains(h.conn.dialled, "h1") {
		t.Error("h1 dialled though the pattern excludes it")
	}
}

func TestPingColourOnTerminal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noColor string
		flag    bool
		want    bool
	}{{"tty", "", false, true}, {"NO_COLOR", "1", false, false}, {"--no-color", "", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(nil)
			h.tty = true
			h.environ["NO_COLOR"] = tc.noColor
			args := append([]string{"ping", "-i", "h1,h2"}, sshConfigNone...)
			if tc.flag {
				args = append(args, "--no-color")
			}
			if code := h.run(t, args...); code != 0 {
				t.Fatalf("exit %d: %s", code, h.stderr.String())
			}
			if got := strings.Contains(h.stdout.String(), "\x1b["); got != tc.want {
				t.Errorf("colour %v, want %v:\n%q", got, tc.want, h.stdout.String())
			}
		})
	}
}

// A host that never answers is reported at the connect timeout, not later.
func TestPingHangingHostGivenUpAtConnectTimeout(t *testing.T) {
	h := newHarness(map[string]*fakeHost{"h2": {hang: true}})
	start := time.Now()
	code := h.run(t, append([]string{"ping", "--json", "-i", "h1,h2", "--connect-timeout", "300ms"}, sshConfigNone...)...)
	elapsed := time.Since(start)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, h.stderr.String())
	}
	doc := parsePingDoc(t, h.stdout.String())
	if r := doc.Hosts[1]; r.Status != statusUnreachable || !strings.Contains(r.Error, "300ms") {
		t.Errorf("hanging host: %+v", r)
	}
	if doc.Hosts[0].Status != statusOK {
		t.Errorf("h1: %+v", doc.Hosts[0])
	}
	if elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("took %s with --connect-timeout 300ms", elapsed)
	}
	if got := h.conn.eps["h2"].ConnectTimeout; got != 300*time.Millisecond {
		t.Errorf("endpoint ConnectTimeout %s, want the flag's 300ms", got)
	}
}

func TestPingForksBoundsConcurrency(t *testing.T) {
	for _, forks := range []int{1, 3} {
		t.Run(fmt.Sprint(forks), func(t *testing.T) {
			// Every host waits on one gate, so all the forks are busy at once before
			// any finishes; closing the gate lets them drain.
			gate := make(chan struct{})
			hosts := map[string]*fakeHost{}
			var names []string
			for i := range 8 {
				n := fmt.Sprintf("h%d", i)
				names = append(names, n)
				hosts[n] = &fakeHost{gate: gate, rtt: time.Millisecond}
			}
			h := newHarness(hosts)
			started := make(chan struct{})
			hosts["h0"].started = started
			go func() {
				<-started
				close(gate)
			}()
			code := h.run(t, append([]string{"ping", "-i", strings.Join(names, ","), "--forks", fmt.Sprint(forks)}, sshConfigNone...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, h.stderr.String())
			}
			if h.conn.maxSeen > forks || h.conn.maxSeen < 1 {
				t.Errorf("max concurrent dials %d with --forks %d", h.conn.maxSeen, forks)
			}
			if len(h.conn.dialled) != 8 {
				t.Errorf("dialled %d hosts, want 8", len(h.conn.dialled))
			}
		})
	}
}

// The first signal stops new hosts from starting, lets the running one finish, and
// the command exits 4 with the not-started hosts reported.
func TestPingInterruptedExitsFour(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan struct{})
	h := newHarness(map[string]*fakeHost{"h1": {gate: gate, started: started, rtt: time.Millisecond}})
	noticed := h.waitFor("stopping")
	go func() {
		<-started
		h.sigs <- os.Interrupt
		// The watcher prints its notice after cancelling; only then let h1 finish, so
		// the scheduler sees the cancelled context before it could pick h2.
		<-noticed
		close(gate)
	}()
	code := h.run(t, append([]string{"ping", "--json", "-i", "h1,h2,h3", "--forks", "1"}, sshConfigNone...)...)
	if code != 4 {
		t.Fatalf("exit %d, want 4; stderr %s", code, h.stderrString())
	}
	doc := parsePingDoc(t, h.stdout.String())
	if doc.Hosts[0].Status != statusOK {
		t.Errorf("h1 was running and should have finished: %+v", doc.Hosts[0])
	}
	for _, r := range doc.Hosts[1:] {
		if r.Status != statusSkipped {
			t.Errorf("%s: %q, want skipped", r.Name, r.Status)
		}
	}
	if !doc.Summary.Interrupted || doc.Summary.Skipped != 2 {
		t.Errorf("summary %+v", doc.Summary)
	}
	if slices.Contains(h.conn.dialled, "h2") {
		t.Error("h2 started after the interrupt")
	}
	select {
	case <-h.forced:
		t.Error("one signal forced an exit")
	default:
	}
}

func TestPingPassesFlagsToTransport(t *testing.T) {
	h := newHarness(nil)
	h.environ["SSH_AUTH_SOCK"] = "/run/agent.sock"
	code := h.run(t, append([]string{"ping", "-i", "h1,h2", "-u", "ops", "--key", "/k/a,b", "--key", "/k/c",
		"--known-hosts", "/kh", "--json", "-I", "/^h2$/"}, sshConfigNone...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	if !slices.Equal(h.conn.dialled, []string{"h2"}) {
		t.Fatalf("dialled %v, want only h2 (-I)", h.conn.dialled)
	}
	ep := h.conn.eps["h2"]
	if ep.User != "ops" || !slices.Equal(ep.UserKnownHostsFiles, []string{"/kh"}) {
		t.Errorf("endpoint %+v: want user ops, known hosts [/kh]", ep)
	}
	// --key is one file per flag (no comma splitting), tried before any default.
	if len(ep.IdentityFiles) < 2 || ep.IdentityFiles[0] != "/k/a,b" || ep.IdentityFiles[1] != "/k/c" {
		t.Errorf("identity files %q, want /k/a,b then /k/c first", ep.IdentityFiles)
	}
	if ep.ConnectTimeout != defaultConnectTimeout {
		t.Errorf("connect timeout %s, want the default %s", ep.ConnectTimeout, defaultConnectTimeout)
	}
	if h.conn.opts.AgentSocket != "/run/agent.sock" || h.conn.opts.Passphrase == nil || h.conn.opts.Logf == nil {
		t.Errorf("dialer options %+v", h.conn.opts)
	}
}

func TestOverridesFor(t *testing.T) {
	inv := &inventory.Host{Name: "h", Address: "10.0.0.1", Port: 2222, User: "inv", KeyFiles: []string{"/inv/key"}, ProxyJump: "bastion"}
	tests := []struct {
		name string
		o    options
		want transport.Overrides
	}{
		{"inventory only", options{},
			transport.Overrides{HostName: "10.0.0.1", Port: 2222, User: "inv", IdentityFiles: []string{"/inv/key"}, ProxyJump: "bastion"}},
		{"command line wins", options{user: "cli", keys: []string{"/cli/key"}, knownHosts: "/kh", connectTimeout: 3 * time.Second, connectTimeoutSet: true},
			transport.Overrides{HostName: "10.0.0.1", Port: 2222, User: "cli", IdentityFiles: []string{"/cli/key", "/inv/key"}, ProxyJump: "bastion",
				KnownHostsFiles: []string{"/kh"}, ConnectTimeout: 3 * time.Second}},
		{"default connect timeout is not an override", options{connectTimeout: defaultConnectTimeout},
			transport.Overrides{HostName: "10.0.0.1", Port: 2222, User: "inv", IdentityFiles: []string{"/inv/key"}, ProxyJump: "bastion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overridesFor(inv, &tt.o); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestInventoryShowJSON(t *testing.T) {
	h := newHarness(nil)
	code := h.run(t, append([]string{"inventory", "show", "h2", "--json", "-i", "h1,h2", "-u", "ops", "--connect-timeout", "4s"}, sshConfigNone...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	var doc struct {
		Name       string              `json:"name"`
		Groups     []string            `json:"groups"`
		Vars       map[string]any      `json:"vars"`
		Connection *transport.Endpoint `json:"connection"`
	}
	if err := json.Unmarshal(h.stdout.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, h.stdout.String())
	}
	if doc.Name != "h2" || doc.Vars == nil || doc.Groups == nil || doc.Connection == nil ||
		doc.Connection.User != "ops" || doc.Connection.ConnectTimeout != 4*time.Second || doc.Connection.Port != 22 {
		t.Errorf("show: %s", h.stdout.String())
	}
}

func TestInventoryListJSONIsAnsibleList(t *testing.T) {
	h := newHarness(nil)
	if code := h.run(t, "inventory", "list", "--json", "-i", "h1,h2"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	var doc map[string]any
	if err := json.Unmarshal(h.stdout.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, h.stdout.String())
	}
	if _, ok := doc["_meta"]; !ok {
		t.Errorf("no _meta in %s", h.stdout.String())
	}
}

func TestInventoryDefaultFromEnvironment(t *testing.T) {
	h := newHarness(nil)
	h.environ["DROVER_INVENTORY"] = "e1,e2"
	if code := h.run(t, "inventory", "list"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderrString())
	}
	if out := h.stdout.String(); !strings.Contains(out, "e1") || !strings.Contains(out, "e2") {
		t.Errorf("list ignored $DROVER_INVENTORY:\n%s", out)
	}
}
