package steps

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestServiceCommands(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		init string
		a    ServiceAction
		want []string
	}{
		{"systemd", ServiceAction{Name: "demo-web", State: ServiceStarted}, []string{"systemctl start demo-web"}},
		{"systemd", ServiceAction{Name: "demo-web", State: ServiceReloaded}, []string{"systemctl reload demo-web"}},
		{"systemd", ServiceAction{Name: "getty@tty1.service", State: ServiceRestarted, Enabled: &yes},
			[]string{"systemctl enable getty@tty1.service", "systemctl restart getty@tty1.service"}},
		{"systemd", ServiceAction{Name: "demo-web", Enabled: &no}, []string{"systemctl disable demo-web"}},
		{"openrc", ServiceAction{Name: "demo-web", State: ServiceStopped}, []string{"rc-service demo-web stop"}},
		{"openrc", ServiceAction{Name: "demo-web", State: ServiceStarted, Enabled: &yes},
			[]string{"rc-update add demo-web default", "rc-service demo-web start"}},
		{"openrc", ServiceAction{Name: "demo-web", Enabled: &no}, []string{"rc-update del demo-web default"}},
		{"sysv", ServiceAction{Name: "demo-web", State: ServiceRestarted},
			[]string{"if command -v service >/dev/null 2>&1; then service demo-web restart; else /etc/init.d/demo-web restart; fi"}},
		{"sysv", ServiceAction{Name: "demo-web", Enabled: &yes},
			[]string{"if command -v update-rc.d >/dev/null 2>&1; then update-rc.d demo-web defaults && update-rc.d demo-web enable; else chkconfig demo-web on; fi"}},
	}
	for _, tt := range tests {
		m, err := ServiceManagerFor(tt.init)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Commands(tt.a)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %+v:\ngot  %q\nwant %q", tt.init, tt.a, got, tt.want)
		}
	}
	m, _ := ServiceManagerFor("systemd")
	for _, a := range []ServiceAction{{Name: "demo-web"}, {Name: "demo-web", State: "bounced"}, {Name: "a b", State: ServiceStarted}} {
		if _, err := m.Commands(a); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err %v", a, err)
		}
	}
}

func TestServiceStatusCommands(t *testing.T) {
	tests := map[string]string{
		"systemd": "systemctl show -p LoadState -p ActiveState -p SubState -p UnitFileState demo-web",
		"openrc":  "[ -x /etc/init.d/demo-web ] && echo exists=yes; rc-service demo-web status >/dev/null 2>&1; echo status=$?; if [ -e /etc/runlevels/default/demo-web ]; then echo enabled=yes; else echo enabled=no; fi",
	}
	for is, want := range tests {
		m, _ := ServiceManagerFor(is)
		f := &fakeRunner{t: t, replies: []reply{{}}}
		if _, err := m.Status(context.Background(), f, "demo-web", nil); err != nil {
			t.Fatal(err)
		}
		if got := f.ran()[0]; got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", is, got, want)
		}
	}
}

func TestParseServiceStatus(t *testing.T) {
	tests := []struct {
		init, out string
		want      ServiceStatus
	}{
		{"systemd", "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n",
			ServiceStatus{Exists: true, Running: true, Enabled: true, State: "active (running)"}},
		{"systemd", "LoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n",
			ServiceStatus{State: "inactive (dead)"}},
		{"sysv", "exists=yes\nstatus=3\nenabled=yes\n", ServiceStatus{Exists: true, Enabled: true, State: "status exit 3"}},
		{"openrc", "exists=yes\nstatus=0\nenabled=no\n", ServiceStatus{Exists: true, Running: true, State: "status exit 0"}},
	}
	for _, tt := range tests {
		m, _ := ServiceManagerFor(tt.init)
		tt.want.Name = "demo-web"
		if got := m.(*svcManager).b.parse("demo-web", tt.out); got != tt.want {
			t.Errorf("%s %q:\ngot  %+v\nwant %+v", tt.init, tt.out, got, tt.want)
		}
	}
}

const (
	sysRunning = "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n"
	sysStopped = "LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\n"
)

func TestServiceApply(t *testing.T) {
	yes := true
	tests := []struct {
		name       string
		init       string
		a          ServiceAction
		o          Options
		replies    []reply
		wantStatus Status
		wantDetail string
		wantCmds   []string // commands after the status query; nil: check count only
		wantN      int
	}{
		{"started already ok", "systemd", ServiceAction{Name: "demo-web", State: ServiceStarted},
			Options{}, []reply{{stdout: sysRunning}}, StatusOK, "running, enabled", nil, 1},
		{"stopped already ok", "systemd", ServiceAction{Name: "demo-web", State: ServiceStopped},
			Options{}, []reply{{stdout: sysStopped}}, StatusOK, "stopped, disabled", nil, 1},
		{"start verified", "systemd", ServiceAction{Name: "demo-web", State: ServiceStarted},
			Options{}, []reply{{stdout: sysStopped}, {stdout: verified("")}}, StatusChanged, "started",
			[]string{"{ systemctl start demo-web; }\nrc=$?\n[ $rc -eq 0 ] || exit $rc\nprintf '\\n%s\\n' @@drover-service-verify\n" +
				"i=0; until systemctl is-active --quiet demo-web >/dev/null 2>&1; do i=$((i+1)); [ $i -ge 10 ] && exit 1; sleep 1; done"}, 2},
		{"verify in a round trip of its own when the marker is missing", "systemd", ServiceAction{Name: "demo-web", State: ServiceStarted},
			Options{}, []reply{{stdout: sysStopped}, {}, {}}, StatusChanged, "started", nil, 3},
		{"start but dies", "sysv", ServiceAction{Name: "demo-web", State: ServiceStarted},
			Options{}, []reply{{stdout: "exists=yes\nstatus=3\nenabled=yes\n"}, {stdout: verified("Starting demo-web"), exit: 1}}, StatusFailed,
			"service demo-web: started, but not running after 10s", nil, 2},
		{"restart always changes", "openrc", ServiceAction{Name: "demo-web", State: ServiceRestarted},
			Options{}, []reply{{stdout: "exists=yes\nstatus=0\nenabled=yes\n"}, {stdout: verified("")}}, StatusChanged, "restarted",
			[]string{"{ rc-service demo-web restart; }\nrc=$?\n[ $rc -eq 0 ] || exit $rc\nprintf '\\n%s\\n' @@drover-service-verify\n" +
				"i=0; until rc-service demo-web status >/dev/null 2>&1; do i=$((i+1)); [ $i -ge 10 ] && exit 1; sleep 1; done"}, 2},
		{"stop no verify", "systemd", ServiceAction{Name: "demo-web", State: ServiceStopped},
			Options{}, []reply{{stdout: sysRunning}, {}}, StatusChanged, "stopped", []string{"systemctl stop demo-web"}, 2},
		{"enable and start in one trip", "systemd", ServiceAction{Name: "demo-web", State: ServiceStarted, Enabled: &yes},
			Options{}, []reply{{stdout: sysStopped}, {stdout: verified("")}}, StatusChanged, "enabled, started", nil, 2},
		{"reload of stopped starts", "systemd", ServiceAction{Name: "demo-web", State: ServiceReloaded},
			Options{}, []reply{{stdout: sysStopped}, {stdout: verified("")}}, StatusChanged, "started", nil, 2},
		{"missing service", "systemd", ServiceAction{Name: "nope", State: ServiceStarted},
			Options{}, []reply{{stdout: "LoadState=not-found\n"}}, StatusFailed, "", nil, 1},
		{"start fails", "systemd", ServiceAction{Name: "demo-web", State: ServiceStarted},
			Options{}, []reply{{stdout: sysStopped}, {exit: 1, stderr: "Job for demo-web.service failed."}}, StatusFailed,
			"service demo-web: started exited 1: Job for demo-web.service failed.", nil, 2},
		{"dry run", "systemd", ServiceAction{Name: "demo-web", State: ServiceRestarted},
			Options{DryRun: true}, []reply{{stdout: sysRunning}}, StatusChanged, "would be restarted", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := ServiceManagerFor(tt.init)
			f := &fakeRunner{t: t, replies: tt.replies}
			res, err := m.Apply(context.Background(), f, tt.a, tt.o)
			f.done()
			if res.Status != tt.wantStatus || (err != nil) != (tt.wantStatus == StatusFailed) {
				t.Fatalf("status %s err %v, want %s", res.Status, err, tt.wantStatus)
			}
			if tt.wantDetail != "" && res.Detail != tt.wantDetail {
				t.Errorf("detail %q, want %q", res.Detail, tt.wantDetail)
			}
			if len(f.cmds) != tt.wantN {
				t.Errorf("ran %q, want %d commands", f.ran(), tt.wantN)
			}
			if tt.wantCmds != nil && !reflect.DeepEqual(f.ran()[1:], tt.wantCmds) {
				t.Errorf("ran %q\nwant %q", f.ran()[1:], tt.wantCmds)
			}
		})
	}
}

func TestServiceEnableStartOneTrip(t *testing.T) {
	yes := true
	m, _ := ServiceManagerFor("systemd")
	f := &fakeRunner{t: t, replies: []reply{{stdout: sysStopped}, {stdout: verified("Created symlink")}}}
	res, err := m.Apply(context.Background(), f, ServiceAction{Name: "demo-web", State: ServiceStarted, Enabled: &yes}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "Created symlink" {
		t.Errorf("stdout %q, want the change's output only", res.Stdout)
	}
	if got := f.ran()[1]; !strings.HasPrefix(got, "{ systemctl enable demo-web && systemctl start demo-web; }\n") {
		t.Errorf("change: %s", got)
	}
	if res.Before["state"] != "stopped" || res.After["state"] != "running" || res.After["enabled"] != "enabled" {
		t.Errorf("before %v after %v", res.Before, res.After)
	}
	if !strings.Contains(res.Detail, "enabled") {
		t.Errorf("detail %q", res.Detail)
	}
}

// verified is the output of a change-and-verify round trip whose change succeeded.
func verified(out string) string { return out + "\n" + svcVerifyMarker + "\n" }
