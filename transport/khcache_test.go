package transport

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// TestKnownHostsCache checks a parsed known_hosts file is reused while it is
// unchanged and re-read as soon as it is appended to or replaced, so dials see
// new lines (accept-new, the operator) at once.
func TestKnownHostsCache(t *testing.T) {
	keyA, _ := newEd25519(t)
	keyB, _ := newEd25519(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "known_hosts")
	lineA := knownhosts.Line([]string{"[127.0.0.1]:2201"}, keyA.PublicKey()) + "\n"
	lineB := knownhosts.Line([]string{"[127.0.0.1]:2202"}, keyB.PublicKey()) + "\n"
	if err := os.WriteFile(file, []byte(lineA), 0o600); err != nil {
		t.Fatal(err)
	}
	d := NewDialer(DialerOptions{})
	ep := &Endpoint{HostName: "127.0.0.1", UserKnownHostsFiles: []string{file}}
	checker := func() *hostKeyChecker {
		t.Helper()
		hc, err := d.newHostKeyChecker(ep, "127.0.0.1:2202")
		if err != nil {
			t.Fatal(err)
		}
		return hc
	}
	knowsB := func(hc *hostKeyChecker) bool {
		return hc.verify(hc.db, "127.0.0.1:2202", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2202}, keyB.PublicKey()) == nil
	}

	first := checker()
	if knowsB(first) {
		t.Fatal("host B verified before its line was written")
	}
	if again := checker(); again.db != first.db {
		t.Error("an unchanged known_hosts file was parsed again")
	}

	// Appending (what accept-new does) must be seen by the next dial.
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(lineB); err != nil {
		t.Fatal(err)
	}
	f.Close()
	appended := checker()
	if appended.db == first.db || !knowsB(appended) {
		t.Fatal("a line appended to known_hosts was not seen by the next dial")
	}

	// Replacing the file by rename (an editor, ssh-keygen -R) with content of the
	// same size must be seen too: host B's line gives way to host A's twice.
	tmp := filepath.Join(dir, "known_hosts.new")
	if err := os.WriteFile(tmp, []byte(lineA+lineA), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	if replaced := checker(); knowsB(replaced) {
		t.Fatal("a known_hosts file replaced by rename was not re-read")
	}
}

// TestKnownHostsIndexAgreesWithLibrary checks the exact-host index gives the
// library's verdict (and the same file:line) and stands aside for lines it
// cannot answer for.
func TestKnownHostsIndexAgreesWithLibrary(t *testing.T) {
	keyA, _ := newEd25519(t)
	keyB, _ := newEd25519(t)
	ec := newECDSA(t)
	plain := knownhosts.Line([]string{"[127.0.0.1]:2201", "web1"}, keyA.PublicKey()) + "\n" +
		"# a comment\n\n" +
		knownhosts.Line([]string{"[127.0.0.1]:2202"}, ec.PublicKey()) + "\n" +
		knownhosts.Line([]string{"[127.0.0.1]:2202"}, keyB.PublicKey()) + "\n"
	tests := []struct {
		name      string
		content   string
		wantIndex bool
	}{
		{"plain entries", plain, true},
		{"wildcard", plain + "*.example " + string(ssh.MarshalAuthorizedKey(keyB.PublicKey())), false},
		{"revoked marker", plain + "@revoked * " + string(ssh.MarshalAuthorizedKey(keyB.PublicKey())), false},
		{"hashed", plain + xknownhosts.HashHostname("web9") + " " + string(ssh.MarshalAuthorizedKey(keyB.PublicKey())), false},
	}
	lookups := []struct {
		addr string
		key  ssh.PublicKey
	}{
		{"127.0.0.1:2201", keyA.PublicKey()}, // known
		{"127.0.0.1:2201", keyB.PublicKey()}, // changed
		{"127.0.0.1:2202", keyB.PublicKey()}, // known, second key of the host
		{"127.0.0.1:2202", keyA.PublicKey()}, // changed, two entries
		{"127.0.0.1:2203", keyA.PublicKey()}, // unknown
		{"web1:22", keyA.PublicKey()},        // a plain name means port 22
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(file, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			d := NewDialer(DialerOptions{})
			ep := &Endpoint{HostName: "127.0.0.1", UserKnownHostsFiles: []string{file}}
			for _, l := range lookups {
				hc, err := d.newHostKeyChecker(ep, l.addr)
				if err != nil {
					t.Fatal(err)
				}
				if (hc.idx != nil) != tc.wantIndex {
					t.Fatalf("index built: %v, want %v", hc.idx != nil, tc.wantIndex)
				}
				remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
				got := hc.verifyIndexed(l.addr, remote, l.key)
				want := hc.verify(hc.db, l.addr, remote, l.key)
				if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
					t.Errorf("%s: index says %v, library says %v", l.addr, got, want)
				}
				if g, w := hc.algorithms(), hc.db.HostKeyAlgorithms(l.addr); len(w) > 0 && !reflect.DeepEqual(g, w) {
					t.Errorf("%s: algorithms %v, library %v", l.addr, g, w)
				}
			}
		})
	}
}
