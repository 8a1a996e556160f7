package lab

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// health GETs http://ADDR:8080/health from the controller (hosts share its network).
func health(t *testing.T, addr string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + ":8080/health")
	if err != nil {
		t.Fatalf("GET /health on %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /health on %s: %v", addr, err)
	}
	return resp.StatusCode, string(b)
}

func mustExec(t *testing.T, l *Lab, host string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := l.Exec(ctx, host, argv...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return string(out)
}

// sshRoot runs a command as root over the real ssh client and fails on error.
func sshRoot(t *testing.T, l *Lab, host, command string) string {
	t.Helper()
	out, err := runSSH(t, l, "", host, command)
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", host, command, err, out)
	}
	return out
}

func TestAptRepoAndDemoWeb(t *testing.T) {
	requireLab(t)
	l := startLab(t, Config{Hosts: 2, Net: -1})
	h1, h2 := l.Hosts[0], l.Hosts[1]

	want := map[string][]string{"demo-web": {"1.0", "2.0", "3.0"}, "demo-tool": {"1.0", "1.1"}}
	if !reflect.DeepEqual(l.Packages, want) {
		t.Errorf("Packages = %v, want %v", l.Packages, want)
	}
	for _, f := range []string{"demo-web_1.0_all.deb", "demo-web_3.0_all.deb", "demo-tool_1.1_all.deb", "Packages", "Release"} {
		if _, err := os.Stat(filepath.Join(l.AptRepo, f)); err != nil {
			t.Errorf("repository file: %v", err)
		}
	}

	t.Run("only the lab repository", func(t *testing.T) {
		out := mustExec(t, l, "h1", "apt-cache", "policy")
		if !strings.Contains(out, "file:"+l.AptRepo+" ./") {
			t.Errorf("apt-cache policy does not show the lab repository:\n%s", out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "://") || (strings.Contains(line, "release ") && !strings.Contains(line, "drover-lab") && !strings.Contains(line, "a=now")) {
				t.Errorf("apt-cache policy shows another source: %q\n%s", line, out)
			}
		}
		out = mustExec(t, l, "h1", "apt-cache", "madison", "demo-web")
		for _, v := range []string{"1.0", "2.0", "3.0"} {
			if !strings.Contains(out, " "+v+" | file:"+l.AptRepo) {
				t.Errorf("apt-cache madison demo-web lacks %s:\n%s", v, out)
			}
		}
		// No systemd: the init_system fact gatherer sees sysv.
		if _, err := l.Exec(context.Background(), "h1", "test", "-d", "/run/systemd/system"); err == nil {
			t.Error("/run/systemd/system exists in a host")
		}
	})

	install := func(t *testing.T, version string) {
		t.Helper()
		sshRoot(t, l, "h1", "DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades demo-web="+version)
		if got := mustExec(t, l, "h1", "dpkg-query", "-W", "-f", "${Version}", "demo-web"); got != version {
			t.Fatalf("installed demo-web %q, want %s", got, version)
		}
		out := sshRoot(t, l, "h1", "service demo-web status")
		if !strings.Contains(out, "is running") {
			t.Fatalf("service demo-web status after installing %s: %q", version, out)
		}
	}

	t.Run("install 1.0 over ssh starts the service", func(t *testing.T) {
		install(t, "1.0")
		if code, body := health(t, h1.Address); code != 200 || body != "ok 1.0" {
			t.Errorf("health = %d %q, want 200 \"ok 1.0\"", code, body)
		}
		// The same from inside the host, with the machine's curl.
		if out := mustExec(t, l, "h1", "curl", "-sS", "http://"+h1.Address+":8080/health"); out != "ok 1.0" {
			t.Errorf("curl in h1 = %q", out)
		}
	})

	t.Run("upgrade to 2.0", func(t *testing.T) {
		install(t, "2.0")
		if code, body := health(t, h1.Address); code != 200 || body != "ok 2.0" {
			t.Errorf("health = %d %q, want 200 \"ok 2.0\"", code, body)
		}
	})

	t.Run("restart, reload, stop, start", func(t *testing.T) {
		pid := func() string { return strings.TrimSpace(mustExec(t, l, "h1", "cat", "/run/demo-web.pid")) }
		before := pid()
		sshRoot(t, l, "h1", "service demo-web restart")
		if after := pid(); after == before {
			t.Errorf("restart kept pid %s", before)
		}
		sshRoot(t, l, "h1", "service demo-web reload")
		if code, _ := health(t, h1.Address); code != 200 {
			t.Errorf("health after reload = %d", code)
		}
		sshRoot(t, l, "h1", "service demo-web stop")
		out, err := runSSH(t, l, "", "h1", "service demo-web status")
		if err == nil || !strings.Contains(out, "not running") {
			t.Errorf("status after stop: %v %q, want exit 3 and not running", err, out)
		}
		sshRoot(t, l, "h1", "service demo-web start")
		if code, body := health(t, h1.Address); code != 200 || body != "ok 2.0" {
			t.Errorf("health after start = %d %q", code, body)
		}
	})

	t.Run("3.0 runs but is unhealthy", func(t *testing.T) {
		install(t, "3.0")
		if code, body := health(t, h1.Address); code != 500 || body != "unhealthy" {
			t.Errorf("health = %d %q, want 500 \"unhealthy\"", code, body)
		}
	})

	t.Run("other host unaffected", func(t *testing.T) {
		out, err := l.Exec(context.Background(), "h2", "dpkg-query", "-W", "-f", "${Status}", "demo-web")
		if err == nil && strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed") {
			t.Errorf("demo-web installed on h2: %q", out)
		}
		if c, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + h2.Address + ":8080/health"); err == nil {
			c.Body.Close()
			t.Error("something serves on h2:8080")
		}
	})

	t.Run("remove stops it", func(t *testing.T) {
		sshRoot(t, l, "h1", "DEBIAN_FRONTEND=noninteractive apt-get remove -y demo-web")
		if got := mustExec(t, l, "h1", "dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "demo-web"); strings.TrimSpace(got) != "rc" {
			t.Errorf("status after remove = %q, want rc (config files left)", got)
		}
		if c, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + h1.Address + ":8080/health"); err == nil {
			c.Body.Close()
			t.Error("demo-web still serves after remove")
		}
		if _, err := l.Exec(context.Background(), "h1", "test", "-e", "/usr/share/demo-web/www"); err == nil {
			t.Error("/usr/share/demo-web/www still there after remove")
		}
		sshRoot(t, l, "h1", "DEBIAN_FRONTEND=noninteractive apt-get purge -y demo-web")
		if _, err := l.Exec(context.Background(), "h1", "test", "-e", "/etc/init.d/demo-web"); err == nil {
			t.Error("/etc/init.d/demo-web still there after purge")
		}
	})

	t.Run("demo-tool", func(t *testing.T) {
		sshRoot(t, l, "h2", "DEBIAN_FRONTEND=noninteractive apt-get install -y demo-tool=1.0")
		if out := sshRoot(t, l, "h2", "demo-tool"); strings.TrimSpace(out) != "demo-tool 1.0" {
			t.Errorf("demo-tool = %q", out)
		}
		sshRoot(t, l, "h2", "DEBIAN_FRONTEND=noninteractive apt-get install -y demo-tool")
		if out := sshRoot(t, l, "h2", "demo-tool"); strings.TrimSpace(out) != "demo-tool 1.1" {
			t.Errorf("demo-tool after upgrade = %q", out)
		}
	})

	t.Run("apt-get update works offline", func(t *testing.T) {
		began := time.Now()
		out := sshRoot(t, l, "h2", "apt-get update")
		t.Logf("apt-get update in a host took %s", time.Since(began).Round(time.Millisecond))
		if strings.Contains(out, "Err:") || strings.Contains(out, "http") {
			t.Errorf("apt-get update:\n%s", out)
		}
	})

	// The machine's own apt state is untouched.
	if b, err := os.ReadFile("/etc/apt/sources.list.d/drover-lab.list"); err == nil {
		t.Errorf("the lab's source list reached the machine: %q", b)
	}
}

func TestStart20HostsWithRepo(t *testing.T) {
	requireLab(t)
	if _, err := buildAptRepo(context.Background()); err != nil { // warm the cache, as every later Start finds it
		t.Fatal(err)
	}
	began := time.Now()
	l := startLab(t, Config{Hosts: 20, Net: -1})
	t.Logf("Start of 20 hosts with the apt repository took %s", time.Since(began).Round(time.Millisecond))
	out := mustExec(t, l, "h20", "apt-cache", "policy", "demo-web")
	if !strings.Contains(out, "3.0") {
		t.Errorf("h20 apt-cache policy demo-web:\n%s", out)
	}
}

func TestBuildDebsFresh(t *testing.T) {
	requireLab(t)
	dir := t.TempDir()
	began := time.Now()
	if err := buildDebs(context.Background(), dir, filepath.Join(dir, "repo")); err != nil {
		t.Fatal(err)
	}
	t.Logf("building the repository took %s", time.Since(began).Round(time.Millisecond))
	b, err := os.ReadFile(filepath.Join(dir, "repo", "Packages"))
	if err != nil {
		t.Fatal(err)
	}
	stanzas := map[string]bool{}
	for _, st := range strings.Split(string(b), "\n\n") {
		var name, version string
		for _, line := range strings.Split(st, "\n") {
			if v, ok := strings.CutPrefix(line, "Package: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(line, "Version: "); ok {
				version = v
			}
		}
		stanzas[name+"="+version] = true
	}
	for _, d := range labDebs {
		if !stanzas[d.name+"="+d.version] {
			t.Errorf("Packages lacks %s %s:\n%s", d.name, d.version, b)
		}
	}
	out, err := run(context.Background(), "", "dpkg-deb", "--contents", filepath.Join(dir, "repo", "demo-web_1.0_all.deb"))
	if err != nil || !strings.Contains(string(out), "-rwxr-xr-x root/root") || !strings.Contains(string(out), "./etc/init.d/demo-web") {
		t.Errorf("demo-web 1.0 contents (%v):\n%s", err, out)
	}
}
