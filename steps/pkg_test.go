package steps

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const aptInstall = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --allow-downgrades "

// The exact change command for every backend and action, given the host's state.
func TestPackageChangeCommands(t *testing.T) {
	inst := func(v string) PkgStatus { return PkgStatus{Name: "demo-web", Installed: true, Version: v} }
	none := PkgStatus{Name: "demo-web"}
	tests := []struct {
		pm   string
		a    PackageAction
		st   PkgStatus
		want string
	}{
		{"apt", PackageAction{Name: "demo-web"}, none, aptInstall + "demo-web"},
		{"apt", PackageAction{Name: "demo-web", Version: "2.0"}, inst("1.0"), aptInstall + "demo-web=2.0"},
		{"apt", PackageAction{Name: "demo-web", Version: "1:2.0~rc1"}, none, aptInstall + "'demo-web=1:2.0~rc1'"},
		{"apt", PackageAction{Name: "demo-web", State: StateLatest}, inst("1.0"), aptInstall + "demo-web"},
		{"apt", PackageAction{Name: "demo-web", State: StateAbsent, LockTimeout: 5 * time.Second}, inst("1.0"),
			"DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=5 demo-web"},
		{"dnf", PackageAction{Name: "demo-web"}, none, "dnf -y install demo-web"},
		{"dnf", PackageAction{Name: "demo-web", Version: "2.0"}, inst("1.0-1.el9"), "dnf -y install demo-web-2.0"},
		{"dnf", PackageAction{Name: "demo-web", Version: "1.0"}, inst("2.0-1.el9"), "dnf -y downgrade demo-web-1.0"},
		{"dnf", PackageAction{Name: "demo-web", Version: "1.10-1"}, inst("1.9-1"), "dnf -y install demo-web-1.10-1"},
		{"dnf", PackageAction{Name: "demo-web", State: StateLatest}, inst("1.0-1"), "dnf -y upgrade demo-web"},
		{"dnf", PackageAction{Name: "demo-web", State: StateLatest}, none, "dnf -y install demo-web"},
		{"dnf", PackageAction{Name: "demo-web", State: StateAbsent}, inst("1.0-1"), "dnf -y remove demo-web"},
		{"yum", PackageAction{Name: "demo-web", Version: "2.0"}, none, "yum -y install demo-web-2.0"},
		{"yum", PackageAction{Name: "demo-web", Version: "1.0~beta"}, inst("1.0-1"), "yum -y downgrade 'demo-web-1.0~beta'"},
		{"yum", PackageAction{Name: "demo-web", State: StateLatest}, inst("1.0-1"), "yum -y update demo-web"},
		{"yum", PackageAction{Name: "demo-web", State: StateAbsent}, inst("1.0-1"), "yum -y remove demo-web"},
		{"zypper", PackageAction{Name: "demo-web"}, none, "ZYPP_LOCK_TIMEOUT=60 zypper --non-interactive install demo-web"},
		{"zypper", PackageAction{Name: "demo-web", Version: "1.0"}, inst("2.0-1.1"), "ZYPP_LOCK_TIMEOUT=60 zypper --non-interactive install --oldpackage demo-web=1.0"},
		{"zypper", PackageAction{Name: "demo-web", State: StateLatest}, inst("1.0"), "ZYPP_LOCK_TIMEOUT=60 zypper --non-interactive update demo-web"},
		{"zypper", PackageAction{Name: "demo-web", State: StateAbsent, LockTimeout: 90 * time.Second}, inst("1.0"), "ZYPP_LOCK_TIMEOUT=90 zypper --non-interactive remove demo-web"},
		{"apk", PackageAction{Name: "demo-web"}, none, "apk add --no-progress --wait 60 demo-web"},
		{"apk", PackageAction{Name: "demo-web", Version: "2.0-r0"}, inst("1.0-r0"), "apk add --no-progress --wait 60 demo-web=2.0-r0"},
		{"apk", PackageAction{Name: "demo-web", State: StateLatest}, inst("1.0-r0"), "apk add --no-progress --wait 60 --upgrade demo-web"},
		{"apk", PackageAction{Name: "demo-web", State: StateAbsent}, inst("1.0-r0"), "apk del --no-progress --wait 60 demo-web"},
	}
	for _, tt := range tests {
		t.Run(tt.pm+"/"+tt.want, func(t *testing.T) {
			m, err := PackageManagerFor(tt.pm)
			if err != nil {
				t.Fatal(err)
			}
			a := tt.a
			if err := validateAction(&a); err != nil {
				t.Fatal(err)
			}
			if got := m.(*pkgManager).b.change(a, tt.st, secs(a.LockTimeout)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestPackageStatusCommands(t *testing.T) {
	tests := map[string]string{
		"apt":    `dpkg-query -W -f='${Status}\t${Version}\n' demo-web 2>/dev/null; LC_ALL=C apt-cache policy demo-web`,
		"dnf":    `v=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' demo-web 2>/dev/null) && echo "installed=$v"; dnf -q list available demo-web 2>/dev/null`,
		"yum":    `v=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' demo-web 2>/dev/null) && echo "installed=$v"; yum -q list available demo-web 2>/dev/null`,
		"zypper": `v=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' demo-web 2>/dev/null) && echo "installed=$v"; LC_ALL=C zypper --non-interactive info demo-web 2>/dev/null`,
		"apk":    `apk policy demo-web 2>/dev/null`,
	}
	for pm, want := range tests {
		m, _ := PackageManagerFor(pm)
		f := &fakeRunner{t: t, replies: []reply{{}}}
		if _, err := m.Status(context.Background(), f, "demo-web", nil); err != nil {
			t.Fatal(err)
		}
		if got := f.ran()[0]; got != want {
			t.Errorf("%s status:\ngot  %s\nwant %s", pm, got, want)
		}
	}
}

func TestPackageCommandsPreview(t *testing.T) {
	m, _ := PackageManagerFor("apt")
	got, err := m.Commands(PackageAction{Name: "demo-web", Version: "2.0", UpdateCache: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"apt-get update -q -o DPkg::Lock::Timeout=60", aptInstall + "demo-web=2.0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestParsePackageStatus(t *testing.T) {
	tests := []struct {
		pm, out string
		want    PkgStatus
	}{
		{"apt", "install ok installed\t1.0\ndemo-web:\n  Installed: 1.0\n  Candidate: 2.0\n  Version table:\n     2.0 500\n",
			PkgStatus{Installed: true, Version: "1.0", Candidate: "2.0"}},
		{"apt", "deinstall ok config-files\t1.0\ndemo-web:\n  Installed: (none)\n  Candidate: 3.0\n",
			PkgStatus{Candidate: "3.0"}},
		{"apt", "@@cache updated\ndemo-web:\n  Installed: (none)\n  Candidate: (none)\n", PkgStatus{}},
		{"dnf", "installed=1.0-1.el9\nAvailable Packages\ndemo-web.x86_64    2.0-1.el9    lab\n",
			PkgStatus{Installed: true, Version: "1.0-1.el9", Candidate: "2.0-1.el9"}},
		{"yum", "installed=2.0-1\n", PkgStatus{Installed: true, Version: "2.0-1", Candidate: "2.0-1"}},
		{"yum", "Available Packages\ndemo-web.noarch\n          3.0-1          lab\n", PkgStatus{Candidate: "3.0-1"}},
		{"zypper", "installed=1.0-1.1\nInformation for package demo-web:\nRepository     : lab\nName           : demo-web\nVersion        : 2.0-1.1\nInstalled      : Yes\n",
			PkgStatus{Installed: true, Version: "1.0-1.1", Candidate: "2.0-1.1"}},
		{"apk", "demo-web policy:\n  1.0-r0:\n    lib/apk/db/installed\n    http://lab/apk\n  2.0-r0:\n    http://lab/apk\n",
			PkgStatus{Installed: true, Version: "1.0-r0", Candidate: "2.0-r0"}},
		{"apk", "", PkgStatus{}},
	}
	for _, tt := range tests {
		m, _ := PackageManagerFor(tt.pm)
		got := m.(*pkgManager).b.parse("demo-web", tt.out)
		tt.want.Name = "demo-web"
		if got != tt.want {
			t.Errorf("%s %q:\ngot  %+v\nwant %+v", tt.pm, tt.out, got, tt.want)
		}
	}
}

func aptStatus(installed, candidate string) string {
	s := ""
	if installed != "" {
		s = "install ok installed\t" + installed + "\n"
	}
	return s + "demo-web:\n  Installed: x\n  Candidate: " + candidate + "\n"
}

func TestPackageApply(t *testing.T) {
	tests := []struct {
		name       string
		a          PackageAction
		o          Options
		replies    []reply
		wantStatus Status
		wantDetail string
		before     string // version, "" for absent
		after      string
		wantCmds   int
		wantErr    error
	}{
		{"at target is ok", PackageAction{Name: "demo-web", Version: "2.0"}, Options{},
			[]reply{{stdout: aptStatus("2.0", "3.0")}}, StatusOK, "2.0", "2.0", "2.0", 1, nil},
		{"install version", PackageAction{Name: "demo-web", Version: "2.0"}, Options{},
			[]reply{{stdout: aptStatus("1.0", "3.0")}, {stdout: changed("Setting up demo-web (2.0) ...", aptStatus("2.0", "3.0"))}}, StatusChanged, "1.0 -> 2.0", "1.0", "2.0", 2, nil},
		{"status after the change in a round trip of its own when the marker is missing", PackageAction{Name: "demo-web", Version: "2.0"}, Options{},
			[]reply{{stdout: aptStatus("1.0", "3.0")}, {}, {stdout: aptStatus("2.0", "3.0")}}, StatusChanged, "1.0 -> 2.0", "1.0", "2.0", 3, nil},
		{"a package script printing the marker", PackageAction{Name: "demo-web", Version: "2.0"}, Options{},
			[]reply{{stdout: aptStatus("1.0", "3.0")}, {stdout: changed("\n@@drover-package-after\n"+aptStatus("1.0", "3.0"), aptStatus("2.0", "3.0"))}}, StatusChanged, "1.0 -> 2.0", "1.0", "2.0", 2, nil},
		{"install fresh", PackageAction{Name: "demo-web"}, Options{},
			[]reply{{stdout: aptStatus("", "3.0")}, {stdout: changed("", aptStatus("3.0", "3.0"))}}, StatusChanged, "absent -> 3.0", "", "3.0", 2, nil},
		{"latest at candidate ok", PackageAction{Name: "demo-web", State: StateLatest}, Options{},
			[]reply{{stdout: aptStatus("3.0", "3.0")}}, StatusOK, "3.0", "3.0", "3.0", 1, nil},
		{"latest upgrades", PackageAction{Name: "demo-web", State: StateLatest}, Options{},
			[]reply{{stdout: aptStatus("1.0", "3.0")}, {stdout: changed("", aptStatus("3.0", "3.0"))}}, StatusChanged, "1.0 -> 3.0", "1.0", "3.0", 2, nil},
		{"absent already ok", PackageAction{Name: "demo-web", State: StateAbsent}, Options{},
			[]reply{{stdout: aptStatus("", "3.0")}}, StatusOK, "absent", "", "", 1, nil},
		{"remove", PackageAction{Name: "demo-web", State: StateAbsent}, Options{},
			[]reply{{stdout: aptStatus("1.0", "3.0")}, {stdout: changed("Removing demo-web (1.0) ...", aptStatus("", "3.0"))}}, StatusChanged, "1.0 -> absent", "1.0", "", 2, nil},
		{"dry run changes nothing", PackageAction{Name: "demo-web", Version: "2.0", UpdateCache: true}, Options{DryRun: true},
			[]reply{{stdout: aptStatus("1.0", "3.0")}}, StatusChanged, "would change: 1.0 -> 2.0", "1.0", "", 1, nil},
		{"install fails", PackageAction{Name: "demo-web", Version: "9.9"}, Options{},
			[]reply{{stdout: aptStatus("1.0", "3.0")}, {exit: 100, stderr: "E: Version '9.9' for 'demo-web' was not found"}},
			StatusFailed, "", "1.0", "", 2, nil},
		{"success but wrong version", PackageAction{Name: "demo-web", Version: "2.0"}, Options{},
			[]reply{{stdout: aptStatus("1.0", "3.0")}, {stdout: changed("", aptStatus("1.0", "3.0"))}}, StatusFailed, "1.0 -> 1.0", "1.0", "1.0", 2, nil},
		{"connection lost", PackageAction{Name: "demo-web"}, Options{},
			[]reply{{err: errConn}}, StatusFailed, "", "", "", 1, errConn},
		{"apt lock timeout", PackageAction{Name: "demo-web", Version: "2.0", LockTimeout: 30 * time.Second}, Options{},
			[]reply{{stdout: aptStatus("1.0", "3.0")}, {exit: 100, stderr: "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)\nN: Be aware that removing the lock file is not a solution and may break your system.\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n"}},
			StatusFailed, "package demo-web: lock held by another process: dpkg lock /var/lib/dpkg/lock-frontend held by pid 4242 (apt-get); gave up after 30s", "1.0", "", 2, ErrLocked},
		{"cache refresh lock", PackageAction{Name: "demo-web", UpdateCache: true, LockTimeout: 30 * time.Second}, Options{},
			[]reply{{exit: refreshExit, stderr: "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 77 (apt-get)\n"}},
			StatusFailed, "package demo-web: update cache: lock held by another process: dpkg lock /var/lib/apt/lists/lock held by pid 77 (apt-get); gave up after 30s", "", "", 1, ErrLocked},
		{"cache updated noted", PackageAction{Name: "demo-web", Version: "2.0", UpdateCache: true}, Options{},
			[]reply{{stdout: "@@cache updated\n" + aptStatus("2.0", "2.0")}}, StatusOK, "2.0 (cache updated)", "2.0", "2.0", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := PackageManagerFor("apt")
			f := &fakeRunner{t: t, replies: tt.replies}
			res, err := m.Apply(context.Background(), f, tt.a, tt.o)
			f.done()
			if res == nil {
				t.Fatal("nil result")
			}
			if res.Status != tt.wantStatus {
				t.Fatalf("status %s (%v), want %s", res.Status, err, tt.wantStatus)
			}
			if (err != nil) != (tt.wantStatus == StatusFailed) || err != res.Err {
				t.Fatalf("err %v, res.Err %v", err, res.Err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantDetail != "" && res.Detail != tt.wantDetail {
				t.Errorf("detail %q, want %q", res.Detail, tt.wantDetail)
			}
			if len(f.cmds) != tt.wantCmds {
				t.Errorf("ran %d commands, want %d: %q", len(f.cmds), tt.wantCmds, f.ran())
			}
			if res.Before != nil && res.Before["version"] != tt.before {
				t.Errorf("before %v, want %q", res.Before, tt.before)
			}
			if tt.after != "" && res.After["version"] != tt.after {
				t.Errorf("after %v, want %q", res.After, tt.after)
			}
		})
	}
}

// In dry-run the cache is not refreshed and only the status query runs; the
// would-be command is reported.
func TestPackageDryRunRunsOnlyStatus(t *testing.T) {
	m, _ := PackageManagerFor("dnf")
	f := &fakeRunner{t: t, replies: []reply{{stdout: "installed=1.0-1\n"}}}
	res, err := m.Apply(context.Background(), f, PackageAction{Name: "demo-web", Version: "2.0", UpdateCache: true}, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.ran()[0], "makecache") {
		t.Errorf("dry run refreshed the cache: %s", f.ran()[0])
	}
	if want := []string{"dnf -y install demo-web-2.0"}; !reflect.DeepEqual(res.Commands, want) {
		t.Errorf("commands %q, want %q", res.Commands, want)
	}
}

func TestRefreshScript(t *testing.T) {
	m, _ := PackageManagerFor("apt")
	b := m.(*pkgManager).b
	got := b.refreshScript(time.Hour, 60)
	want := `now=$(date +%s); last=0; for f in /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists; do m=$(stat -c %Y "$f" 2>/dev/null) && [ "$m" -gt "$last" ] && last=$m; done; ` +
		`if [ $((now - last)) -ge 3600 ]; then apt-get update -q -o DPkg::Lock::Timeout=60 >&2 || exit 97; echo '@@cache updated'; else echo '@@cache fresh'; fi`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := b.refreshScript(0, 60); got != "apt-get update -q -o DPkg::Lock::Timeout=60 >&2 || exit 97; echo '@@cache updated'" {
		t.Errorf("no window: %s", got)
	}
	f := &fakeRunner{t: t, replies: []reply{{stdout: "@@cache fresh\n" + aptStatus("1.0", "1.0")}}}
	if _, err := m.Apply(context.Background(), f, PackageAction{Name: "demo-web", UpdateCache: true, CacheValidTime: time.Hour}, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(f.ran()[0], want+"\n") {
		t.Errorf("status script does not start with the refresh: %s", f.ran()[0])
	}
}

func TestVersionMatching(t *testing.T) {
	tests := []struct {
		pm, installed, want string
		match               bool
	}{
		{"apt", "2.0", "2.0", true},
		{"apt", "2.0-1", "2.0", false},
		{"dnf", "2.0-1.el9", "2.0", true},
		{"dnf", "2.0.1-1.el9", "2.0", false},
		{"dnf", "2.0-1.el9", "2.0-2.el9", false},
		{"zypper", "2.0-1.1", "2.0", true},
		{"apk", "2.0-r3", "2.0", true},
		{"apk", "2.0-r3", "2.0-r2", false},
	}
	for _, tt := range tests {
		m, _ := PackageManagerFor(tt.pm)
		if got := m.(*pkgManager).b.matches(tt.installed, tt.want); got != tt.match {
			t.Errorf("%s %s ~ %s: %v", tt.pm, tt.installed, tt.want, got)
		}
	}
}

func TestRPMVerCmp(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0}, {"1.0", "2.0", -1}, {"1.10", "1.9", 1}, {"1.0a", "1.0", 1},
		{"1.0~rc1", "1.0", -1}, {"1.0^git1", "1.0", 1}, {"1.0^git1", "1.0.1", -1},
		{"2.0-1.el9", "2.0-1.el8", 1}, {"1.001", "1.1", 0}, {"1.a", "1.1", -1},
	}
	for _, tt := range tests {
		if got := rpmVerCmp(tt.a, tt.b); got != tt.want {
			t.Errorf("rpmVerCmp(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := rpmVerCmp(tt.b, tt.a); got != -tt.want {
			t.Errorf("rpmVerCmp(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

// changed is the output of a change round trip: the change's own output, the marker
// line, then the status query's output.
func changed(out, status string) string {
	return out + "\n" + afterMarker + "\n" + status
}

// The change and the status query after it travel in one round trip; the result keeps
// the change's own output only, and the exit status is the change's.
func TestPackageChangeAndStatusInOneRoundTrip(t *testing.T) {
	m, _ := PackageManagerFor("apt")
	f := &fakeRunner{t: t, replies: []reply{{stdout: aptStatus("1.0", "3.0")},
		{stdout: changed("Setting up demo-web (2.0) ...", aptStatus("2.0", "3.0"))}}}
	res, err := m.Apply(context.Background(), f, PackageAction{Name: "demo-web", Version: "2.0"}, Options{})
	f.done()
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "Setting up demo-web (2.0) ..." {
		t.Errorf("stdout %q, want the change's output only", res.Stdout)
	}
	want := aptInstall + "demo-web=2.0\nrc=$?\nprintf '\\n%s\\n' " + afterMarker + "\n" +
		`dpkg-query -W -f='${Status}\t${Version}\n' demo-web 2>/dev/null` + "\nexit $rc"
	if got := f.ran()[1]; got != want {
		t.Errorf("round trip 2:\ngot  %s\nwant %s", got, want)
	}
	if !reflect.DeepEqual(res.Commands, []string{aptInstall + "demo-web=2.0"}) {
		t.Errorf("commands reported %q, want the change alone", res.Commands)
	}
}

// The candidate version costs apt-cache building its cache on the host: asked only when
// the action needs it.
func TestPackageQueryAsksCandidateOnlyWhenNeeded(t *testing.T) {
	const installed = `dpkg-query -W -f='${Status}\t${Version}\n' demo-web 2>/dev/null`
	full := installed + "; LC_ALL=C apt-cache policy demo-web"
	tests := []struct {
		a    PackageAction
		want string
	}{
		{PackageAction{Name: "demo-web", Version: "2.0"}, installed},
		{PackageAction{Name: "demo-web", State: StateAbsent}, installed},
		{PackageAction{Name: "demo-web", State: StateLatest}, full},
		{PackageAction{Name: "demo-web"}, full},
	}
	for _, tt := range tests {
		m, _ := PackageManagerFor("apt")
		if got := m.(*pkgManager).query(tt.a); got != tt.want {
			t.Errorf("%+v: query %q, want %q", tt.a, got, tt.want)
		}
	}
	m, _ := PackageManagerFor("apk")
	if got := m.(*pkgManager).query(PackageAction{Name: "demo-web", Version: "2.0"}); got != "apk policy demo-web 2>/dev/null" {
		t.Errorf("apk has one query: got %q", got)
	}
}
