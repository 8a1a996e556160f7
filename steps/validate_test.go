package steps

import (
	"context"
	"errors"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(string) error
		in      string
		wantErr bool
	}{
		{"pkg plain", ValidatePackageName, "demo-web", false},
		{"pkg arch", ValidatePackageName, "libc6:amd64", false},
		{"pkg plus", ValidatePackageName, "g++", false},
		{"pkg rpm underscore", ValidatePackageName, "perl-Net_SSLeay", false},
		{"pkg injection", ValidatePackageName, "x; rm -rf /", true},
		{"pkg subshell", ValidatePackageName, "$(reboot)", true},
		{"pkg backtick", ValidatePackageName, "a`id`", true},
		{"pkg option", ValidatePackageName, "--purge", true},
		{"pkg space", ValidatePackageName, "a b", true},
		{"pkg newline", ValidatePackageName, "a\nb", true},
		{"pkg empty", ValidatePackageName, "", true},
		{"pkg with version sep", ValidatePackageName, "a=1", true},
		{"ver deb", ValidateVersion, "1:2.0~rc1-3+deb12u1", false},
		{"ver rpm", ValidateVersion, "2.0-1.el9", false},
		{"ver apk", ValidateVersion, "2.0_rc1-r0", false},
		{"ver empty ok", ValidateVersion, "", false},
		{"ver spaces", ValidateVersion, "1.0 2.0", true},
		{"ver quote", ValidateVersion, "1.0'", true},
		{"ver glob", ValidateVersion, "1.*", true},
		{"ver pipe", ValidateVersion, "1|sh", true},
		{"svc plain", ValidateServiceName, "demo-web", false},
		{"svc unit", ValidateServiceName, "getty@tty1.service", false},
		{"svc injection", ValidateServiceName, "x;reboot", true},
		{"svc path", ValidateServiceName, "../../bin/sh", true},
		{"svc option", ValidateServiceName, "-H", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
		})
	}
}

// Hostile input is refused before the runner sees a single command.
func TestHostileRefusedBeforeConnecting(t *testing.T) {
	ctx := context.Background()
	for _, pm := range []string{"apt", "dnf", "yum", "zypper", "apk"} {
		m, err := PackageManagerFor(pm)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []PackageAction{
			{Name: "x; rm -rf /"},
			{Name: "demo-web", Version: "1.0 && reboot"},
			{Name: "demo-web", Version: "with spaces"},
			{Name: "demo-web", Version: "1.0", State: StateAbsent},
			{Name: "demo-web", State: "purged"},
		} {
			f := &fakeRunner{t: t}
			res, err := m.Apply(ctx, f, a, Options{})
			if !errors.Is(err, ErrInvalid) || res.Status != StatusFailed || res.Err != err {
				t.Errorf("%s %+v: got %v / %+v, want ErrInvalid failure", pm, a, err, res)
			}
			if len(f.cmds) != 0 {
				t.Errorf("%s %+v: ran %q", pm, a, f.ran())
			}
			if _, err := m.Commands(a); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s %+v: Commands err %v", pm, a, err)
			}
		}
		if _, err := m.Status(ctx, &fakeRunner{t: t}, "a`id`", nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s status: err %v", pm, err)
		}
	}
	for _, is := range []string{"systemd", "sysv", "openrc"} {
		m, _ := ServiceManagerFor(is)
		f := &fakeRunner{t: t}
		if _, err := m.Apply(ctx, f, ServiceAction{Name: "x; reboot", State: ServiceStarted}, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v", is, err)
		}
		if len(f.cmds) != 0 {
			t.Errorf("%s: ran %q", is, f.ran())
		}
	}
	f := &fakeRunner{t: t}
	if _, err := (Puppet{}).Run(ctx, f, PuppetRun{Tags: []string{"web;reboot"}}, Options{}); !errors.Is(err, ErrInvalid) || len(f.cmds) != 0 {
		t.Errorf("puppet hostile tag: err %v, ran %q", err, f.ran())
	}
	if _, err := (Puppet{}).Run(ctx, f, PuppetRun{Environment: "prod $(id)"}, Options{}); !errors.Is(err, ErrInvalid) || len(f.cmds) != 0 {
		t.Errorf("puppet hostile env: err %v, ran %q", err, f.ran())
	}
}

func TestUnsupportedFacts(t *testing.T) {
	if _, err := PackageManagerFor("pacman"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("pacman: %v", err)
	}
	if _, err := ServiceManagerFor("upstart"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("upstart: %v", err)
	}
}
