package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const statusFixture = `Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Version: 12.4
Pre-Depends: awk

Package: mawk
Status: install ok installed
Priority: required
Provides: awk
Version: 1.3.4

Package: busybox
Status: install ok installed
Priority: optional
Version: 1:1.35.0
Depends: libc6 (>= 2.34) | libc6-udeb, extra:any

Package: libc6
Status: install ok installed
Priority: optional
Version: 2.36
Description: the C library
 with a continuation line: Depends: puppet

Package: extra
Status: install ok installed
Priority: optional
Version: 1

Package: puppet
Status: install ok installed
Priority: optional
Version: 7
Depends: ruby

Package: ruby
Status: install ok installed
Priority: optional
Version: 3.1

Package: gone
Status: deinstall ok config-files
Priority: required
Version: 1
`

func TestLeanDpkgStatus(t *testing.T) {
	lean, n, err := leanDpkgStatus([]byte(statusFixture), []string{"busybox"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parseDpkgStatus(lean) {
		got = append(got, p.name)
	}
	// mawk through base-files' Pre-Depends on the virtual awk; libc6 and extra through
	// busybox; puppet and ruby are nobody's dependency (a description line is no field);
	// gone is not installed.
	want := []string{"base-files", "mawk", "busybox", "libc6", "extra"}
	if !slices.Equal(got, want) || n != len(want) {
		t.Fatalf("kept %v (n=%d), want %v", got, n, want)
	}
	if !strings.Contains(string(lean), " with a continuation line: Depends: puppet\n") {
		t.Errorf("stanza text not kept verbatim:\n%s", lean)
	}
	if _, _, err := leanDpkgStatus([]byte("Package: x\nStatus: purge ok not-installed\n"), nil); err == nil {
		t.Error("a status with nothing installed: want an error")
	}
}

func TestDepNames(t *testing.T) {
	got := depNames("libc6 (>= 2.34), perl:any | perl-base [amd64], ,python3 (<< 3.12)")
	want := [][]string{{"libc6"}, {"perl", "perl-base"}, {"python3"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("clause %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestLeanTriggers(t *testing.T) {
	in := "/usr/share/man man-db/noawait\n/usr/lib/x86_64-linux-gnu libc-bin\n/usr/share/icons gtk:amd64 /noawait\n"
	got := string(leanTriggers([]byte(in), map[string]bool{"libc-bin": true, "gtk": true}))
	if want := "/usr/lib/x86_64-linux-gnu libc-bin\n/usr/share/icons gtk:amd64 /noawait\n"; got != want {
		// "man-db/noawait" is one field: its package is not kept either way.
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestLeanDpkgOnThisMachine derives the lean database from this machine's and has dpkg
// and apt check it: every kept package's dependencies must still be satisfied.
func TestLeanDpkgOnThisMachine(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Fatalf("this machine has no dpkg database: %v", err)
	}
	d, err := newLeanDpkg()
	if err != nil {
		t.Fatal(err)
	}
	if d.packages < 20 || d.packages > 400 {
		t.Errorf("kept %d packages; a minimal Debian has about 100", d.packages)
	}
	if _, ok := d.aptConf["70debconf"]; !ok {
		t.Errorf("apt.conf.d of kept packages lacks debconf's 70debconf: %v", keys(d.aptConf))
	}
	// dpkg --audit and apt-get check against a copy of the lean database (with the
	// machine's file lists, which a lean host sees too).
	admin := t.TempDir()
	for _, sub := range []string{"updates", "triggers"} {
		if err := os.MkdirAll(filepath.Join(admin, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/var/lib/dpkg/info", filepath.Join(admin, "info")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), d.status, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dpkg", "--admindir", admin, "--audit").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("dpkg --audit on the lean database: %v: %s", err, out)
	}
	out, err = exec.Command("apt-get", "check", "-o", "Dir::State::status="+filepath.Join(admin, "status"),
		"-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=").CombinedOutput()
	if err != nil {
		t.Errorf("apt-get check on the lean database: %v: %s", err, out)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
