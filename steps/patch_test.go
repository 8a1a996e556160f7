package steps

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParsePatchListings(t *testing.T) {
	tests := []struct {
		name, file, pm string
		a              PatchAction
		want           []Upgrade
	}{
		{"apt lab repo (real apt-get -s upgrade)", "apt-s-upgrade-lab.txt", "apt", PatchAction{},
			[]Upgrade{{"demo-tool", "1.0", "1.1"}, {"demo-web", "1.0", "3.0"}}},
		{"apt lab repo, security only: none from a -security archive", "apt-s-upgrade-lab.txt", "apt", PatchAction{SecurityOnly: true}, nil},
		{"apt debian dist-upgrade", "apt-s-dist-upgrade-security.txt", "apt", PatchAction{}, []Upgrade{
			{"libc6", "2.36-9+deb12u3", "2.36-9+deb12u4"},
			{"libc-bin", "2.36-9+deb12u3", "2.36-9+deb12u4"},
			{"tzdata", "2024a-0+deb12u1", "2025b-0+deb12u1"},
			{"openssl", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1"},
			{"linux-image-6.1.0-18-amd64", "", "6.1.76-1"},
			{"linux-image-amd64", "6.1.69-1", "6.1.76-1"},
		}},
		{"apt debian security only drops stable-updates", "apt-s-dist-upgrade-security.txt", "apt", PatchAction{SecurityOnly: true}, []Upgrade{
			{"libc6", "2.36-9+deb12u3", "2.36-9+deb12u4"},
			{"libc-bin", "2.36-9+deb12u3", "2.36-9+deb12u4"},
			{"openssl", "3.0.11-1~deb12u2", "3.0.13-1~deb12u1"},
			{"linux-image-6.1.0-18-amd64", "", "6.1.76-1"},
			{"linux-image-amd64", "6.1.69-1", "6.1.76-1"},
		}},
		{"dnf check-update with installed versions", "dnf-check-update-security.txt", "dnf", PatchAction{}, []Upgrade{
			{"openssl", "3.0.7-25.el9_3", "3.0.7-27.el9"},
			{"openssl-libs", "3.0.7-25.el9_3", "3.0.7-27.el9"},
			{"kernel", "5.14.0-362.24.1.el9_3", "5.14.0-427.13.1.el9_4"},
		}},
		{"zypper list-updates", "zypper-list-updates.txt", "zypper", PatchAction{}, []Upgrade{
			{"openssl-3", "3.1.4-150600.5", "3.1.4-150600.5.7"},
			{"tzdata", "2024a-150000.75", "2025a-150000.79"},
		}},
		{"apk version -l <", "apk-version-l.txt", "apk", PatchAction{}, []Upgrade{
			{"busybox", "1.36.1-r15", "1.36.1-r19"},
			{"openssl", "3.1.4-r5", "3.1.6-r0"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := patchBackendFor(tt.pm)
			if err != nil {
				t.Fatal(err)
			}
			got := b.parse(readTestdata(t, tt.file), tt.a)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parse =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestPatchApt(t *testing.T) {
	lab := readTestdata(t, "apt-s-upgrade-lab.txt")
	tests := []struct {
		name       string
		a          PatchAction
		dry        bool
		replies    []reply
		wantStatus Status
		wantDetail string
		wantCmds   []string // substrings of each command run, in order
		wantBefore map[string]string
		wantAfter  map[string]string
		wantErr    error
	}{
		{
			name:    "upgrade all",
			replies: []reply{{stdout: lab}, {stdout: "Setting up demo-tool (1.1) ...\n"}, {stdout: "demo-tool\t1.1\tii \ndemo-web\t3.0\tii \n"}},
			wantCmds: []string{
				"apt-get update -q -o DPkg::Lock::Timeout=60 >&2 || exit 97; LC_ALL=C apt-get -s -q upgrade",
				"DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade",
				"dpkg-query -W -f='${binary:Package}\\t${Version}\\t${db:Status-Abbrev}\\n' demo-tool demo-web",
			},
			wantStatus: StatusChanged,
			wantDetail: "2 upgraded: demo-tool 1.0 -> 1.1, demo-web 1.0 -> 3.0",
			wantBefore: map[string]string{"demo-tool": "1.0", "demo-web": "1.0"},
			wantAfter:  map[string]string{"demo-tool": "1.1", "demo-web": "3.0"},
		},
		{
			name:    "exclude turns the upgrade into install --only-upgrade of the rest",
			a:       PatchAction{Exclude: []string{"demo-web"}, Mode: PatchDistUpgrade},
			replies: []reply{{stdout: lab}, {}, {stdout: "demo-tool\t1.1\tii \n"}},
			wantCmds: []string{
				"LC_ALL=C apt-get -s -q dist-upgrade",
				"install --only-upgrade demo-tool",
				"demo-tool",
			},
			wantStatus: StatusChanged,
			wantDetail: "1 upgraded: demo-tool 1.0 -> 1.1",
			wantBefore: map[string]string{"demo-tool": "1.0"},
			wantAfter:  map[string]string{"demo-tool": "1.1"},
		},
		{
			name:       "nothing to do is ok, and nothing is upgraded",
			replies:    []reply{{stdout: "Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"}},
			wantCmds:   []string{"apt-get -s -q upgrade"},
			wantStatus: StatusOK,
			wantDetail: "nothing to upgrade",
			wantBefore: map[string]string{}, wantAfter: map[string]string{},
		},
		{
			name:       "all excluded",
			a:          PatchAction{Exclude: []string{"demo-web", "demo-tool"}},
			replies:    []reply{{stdout: lab}},
			wantCmds:   []string{"apt-get -s -q upgrade"},
			wantStatus: StatusOK,
			wantDetail: "nothing to upgrade (2 excluded)",
			wantBefore: map[string]string{}, wantAfter: map[string]string{},
		},
		{
			name:       "dry run lists and changes nothing",
			dry:        true,
			replies:    []reply{{stdout: lab}},
			wantCmds:   []string{"apt-get -s -q upgrade"},
			wantStatus: StatusChanged,
			wantDetail: "would upgrade 2 upgraded: demo-tool 1.0 -> 1.1, demo-web 1.0 -> 3.0",
			wantBefore: map[string]string{"demo-tool": "1.0", "demo-web": "1.0"},
			wantAfter:  map[string]string{"demo-tool": "1.1", "demo-web": "3.0"},
		},
		{
			name:       "kept back packages are reported, not counted",
			replies:    []reply{{stdout: lab}, {}, {stdout: "demo-tool\t1.1\tii \ndemo-web\t1.0\tii \n"}},
			wantCmds:   []string{"apt-get -s", "upgrade", "dpkg-query"},
			wantStatus: StatusChanged,
			wantDetail: "1 upgraded: demo-tool 1.0 -> 1.1; 1 kept back: demo-web",
			wantBefore: map[string]string{"demo-tool": "1.0"},
			wantAfter:  map[string]string{"demo-tool": "1.1"},
		},
		{
			name:       "upgrade failure",
			replies:    []reply{{stdout: lab}, {exit: 100, stderr: "E: Sub-process /usr/bin/dpkg returned an error code (1)\n"}},
			wantCmds:   []string{"apt-get -s", "upgrade"},
			wantStatus: StatusFailed,
			wantDetail: "patch: apt exited 100: E: Sub-process /usr/bin/dpkg returned an error code (1)",
		},
		{
			name:       "lock held",
			replies:    []reply{{stdout: lab}, {exit: 100, stderr: "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)\n"}},
			wantCmds:   []string{"apt-get -s", "upgrade"},
			wantStatus: StatusFailed,
			wantErr:    ErrLocked,
		},
		{
			name:       "listing fails",
			replies:    []reply{{exit: 97, stderr: "E: The repository is not signed.\n"}},
			wantCmds:   []string{"apt-get update"},
			wantStatus: StatusFailed,
			wantDetail: "patch: apt: listing upgrades exited 97: E: The repository is not signed.",
		},
		{
			name:       "bad exclude refused before anything runs",
			a:          PatchAction{Exclude: []string{"x; rm -rf /"}},
			wantStatus: StatusFailed,
			wantErr:    ErrInvalid,
		},
		{
			name:       "connection lost",
			replies:    []reply{{err: errConn}},
			wantCmds:   []string{"apt-get update"},
			wantStatus: StatusFailed,
			wantErr:    errConn,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{t: t, replies: tt.replies}
			res, err := Patch(context.Background(), f, "apt", tt.a, Options{DryRun: tt.dry})
			f.done()
			if res.Status != tt.wantStatus {
				t.Errorf("status %s, want %s (detail %q, err %v)", res.Status, tt.wantStatus, res.Detail, err)
			}
			if tt.wantDetail != "" && res.Detail != tt.wantDetail {
				t.Errorf("detail %q\nwant   %q", res.Detail, tt.wantDetail)
			}
			if (tt.wantStatus == StatusFailed) != (err != nil) {
				t.Errorf("err %v with status %s", err, res.Status)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err %v, want %v", err, tt.wantErr)
			}
			ran := f.ran()
			if len(ran) != len(tt.wantCmds) {
				t.Fatalf("ran %d commands %q, want %d", len(ran), ran, len(tt.wantCmds))
			}
			for i, w := range tt.wantCmds {
				if !strings.Contains(ran[i], w) {
					t.Errorf("command %d = %q, want it to contain %q", i, ran[i], w)
				}
			}
			if tt.wantBefore != nil && !reflect.DeepEqual(res.Before, tt.wantBefore) {
				t.Errorf("before %v, want %v", res.Before, tt.wantBefore)
			}
			if tt.wantAfter != nil && !reflect.DeepEqual(res.After, tt.wantAfter) {
				t.Errorf("after %v, want %v", res.After, tt.wantAfter)
			}
		})
	}
}

func TestPatchCommandLines(t *testing.T) {
	tests := []struct {
		pm      string
		a       PatchAction
		want    []string // substrings of [list, change]
		wantErr error
	}{
		{"apt", PatchAction{SecurityOnly: true}, []string{"apt-get -s -q upgrade", "install --only-upgrade PACKAGES…"}, nil},
		{"dnf", PatchAction{SecurityOnly: true, Exclude: []string{"kernel"}}, []string{"dnf -q --refresh check-update --security --exclude=kernel", "dnf -y upgrade --security --exclude=kernel"}, nil},
		{"dnf", PatchAction{Mode: PatchDistUpgrade}, []string{"check-update", "dnf -y distro-sync"}, nil},
		{"yum", PatchAction{SecurityOnly: true}, []string{"yum -q check-update --security", "yum -y update --security"}, nil},
		{"zypper", PatchAction{SecurityOnly: true}, []string{"zypper --non-interactive list-updates", "zypper --non-interactive patch --category security"}, nil},
		{"zypper", PatchAction{}, []string{"zypper --non-interactive refresh", "zypper --non-interactive update"}, nil},
		{"apk", PatchAction{}, []string{"apk update --no-progress --wait 60", "apk upgrade --no-progress --wait 60"}, nil},
		{"apk", PatchAction{SecurityOnly: true}, nil, ErrUnsupported},
		{"zypper", PatchAction{SecurityOnly: true, Exclude: []string{"tzdata"}}, nil, ErrUnsupported},
		{"pacman", PatchAction{}, nil, ErrUnsupported},
		{"apt", PatchAction{Mode: "full-upgrade"}, nil, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.pm, func(t *testing.T) {
			got, err := PatchCommands(tt.pm, tt.a)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != 2 {
				t.Fatalf("PatchCommands = %q, %v", got, err)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("command %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestPatchDnfVerifiesInstalledVersions(t *testing.T) {
	f := &fakeRunner{t: t, replies: []reply{
		{stdout: readTestdata(t, "dnf-check-update-security.txt")},
		{stdout: "Complete!\n"},
		{stdout: "openssl\t3.0.7-27.el9\nopenssl-libs\t3.0.7-27.el9\nkernel\t5.14.0-427.13.1.el9_4\n"},
	}}
	res, err := Patch(context.Background(), f, "dnf", PatchAction{SecurityOnly: true}, Options{})
	f.done()
	if err != nil || res.Status != StatusChanged {
		t.Fatalf("status %s, err %v", res.Status, err)
	}
	want := "3 upgraded: openssl 3.0.7-25.el9_3 -> 3.0.7-27.el9, openssl-libs 3.0.7-25.el9_3 -> 3.0.7-27.el9, kernel 5.14.0-362.24.1.el9_3 -> 5.14.0-427.13.1.el9_4"
	if res.Detail != want {
		t.Errorf("detail %q\nwant   %q", res.Detail, want)
	}
	if ran := f.ran(); ran[1] != "dnf -y upgrade --security" || !strings.Contains(ran[2], "rpm -q") {
		t.Errorf("ran %q", ran)
	}
}

func TestUpgradeListElides(t *testing.T) {
	var ups []Upgrade
	for i := 0; i < 12; i++ {
		ups = append(ups, Upgrade{Name: "p" + string(rune('a'+i)), From: "1", To: "2"})
	}
	got := upgradeList(ups)
	if !strings.HasPrefix(got, "12 upgraded: pa 1 -> 2,") || !strings.HasSuffix(got, "pj 1 -> 2, … and 2 more") {
		t.Errorf("upgradeList = %q", got)
	}
}
