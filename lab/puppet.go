package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Debian packages' files a PuppetServer runs from (puppetserver 7.9, puppet-agent 7.23).
const (
	puppetServerJar     = "/usr/share/puppetserver/puppetserver.jar"
	puppetServerEtc     = "/etc/puppet/puppetserver"
	puppetServerRubyLib = "/usr/lib/puppetserver/ruby/vendor_ruby"
	puppetServerGems    = "/usr/lib/puppetserver/vendored-jruby-gems"
	puppetJRubyLib      = "/usr/share/jruby/lib"
	javaBin             = "/usr/bin/java"

	// PuppetServerPort is the port every lab puppetserver listens on (Puppet's default,
	// so agents need no masterport setting).
	PuppetServerPort = 8140
	// puppetServerHost is the last octet of the server's address: 127.1.NET.254.
	puppetServerHost = 254
)

// Agent-side paths in a host (Debian's puppet-agent defaults) that an agent run writes
// to; ResetAgent puts them back as the machine has them.
var (
	agentConf      = "/etc/puppet/puppet.conf"
	agentStateDirs = []string{"/var/lib/puppet", "/var/cache/puppet", "/var/log/puppet"}
)

// PuppetServer is a real puppetserver (Debian's package) serving one lab: a JVM on the
// controller in its own process group, with a private confdir, codedir, vardir and ssldir
// under Lab.Dir/puppetserver, autosigning every CSR. Its methods are safe for
// concurrent use.
type PuppetServer struct {
	Address   string        // 127.1.NET.254, also its certname
	Port      int           // PuppetServerPort
	Dir       string        // private state; removed by Stop
	CACert    string        // the CA certificate agents trust (PEM)
	StartTime time.Duration // from exec to the first "running" status answer

	lab *Lab
	daemon

	mu       sync.Mutex
	origConf map[string][]byte // host -> its puppet.conf before ConfigureAgent
}

// PuppetServerAddress is the address a lab's puppetserver listens on.
func (l *Lab) PuppetServerAddress() string { return hostAddress(l.net, puppetServerHost) }

// StartPuppetServer starts puppetserver for lab l and returns once its status endpoint
// answers "running" (readiness polling bounded by ctx; the JVM takes a minute or more to
// start on two busy cores). The JVM dies with the calling process, so a crashed test
// leaves nothing running; call Stop to remove its files.
func StartPuppetServer(ctx context.Context, l *Lab) (*PuppetServer, error) {
	began := time.Now()
	for _, f := range []string{javaBin, puppetServerJar, filepath.Join(puppetServerEtc, "services.d"), puppetServerRubyLib} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("lab: puppetserver: %s missing (Debian packages puppetserver and puppet-agent): %w", f, err)
		}
	}
	s := &PuppetServer{
		Address:  l.PuppetServerAddress(),
		Port:     PuppetServerPort,
		Dir:      filepath.Join(l.Dir, "puppetserver"),
		lab:      l,
		origConf: map[string][]byte{},
	}
	s.CACert = filepath.Join(s.Dir, "ssl", "certs", "ca.pem")
	s.daemon = daemon{name: "puppetserver", marker: filepath.Join(s.Dir, "conf.d"), log: filepath.Join(s.Dir, "puppetserver.log")}
	if err := s.claim(ctx, l, puppetServerHost, s.addr(), s.Dir); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = s.Stop()
		}
	}()
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	cmd := exec.Command(javaBin, s.javaArgs()...)
	cmd.Dir, cmd.Env = "/usr/share/puppetserver", cleanEnv
	// Never detached: the JVM does not outlive a test binary that dies without Stop.
	if err := s.start(cmd, false); err != nil {
		return nil, err
	}
	// The CA the server creates at startup is trusted once it is there (checkStatus).
	var err error
	if s.StartTime, err = s.waitUp(ctx, l, s.addr(), began, s.checkStatus, 100*time.Millisecond, 2*time.Second); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func (s *PuppetServer) addr() string {
	return net.JoinHostPort(s.Address, strconv.Itoa(s.Port))
}

// URL is the server's base URL, e.g. https://127.1.3.254:8140.
func (s *PuppetServer) URL() string { return "https://" + s.addr() }

func (s *PuppetServer) javaArgs() []string {
	return []string{
		"-Xms256m", "-Xmx512m",
		"-XX:+CrashOnOutOfMemoryError",
		"-XX:ErrorFile=" + filepath.Join(s.Dir, "log", "java_err_pid%p.log"),
		// No /tmp/hsperfdata_root left behind; JRuby's temp files stay in Dir.
		"-XX:-UsePerfData",
		"-Djava.io.tmpdir=" + filepath.Join(s.Dir, "tmp"),
		"-Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger",
		"-Djruby.lib=" + puppetJRubyLib,
		"-jar", puppetServerJar,
		"--config", filepath.Join(s.Dir, "conf.d"),
		"--bootstrap-config", filepath.Join(puppetServerEtc, "services.d"),
	}
}

// writeConfig lays out the server's private directories. Settings the package's
// /etc/puppet would supply are all overridden so nothing there is read or written.
func (s *PuppetServer) writeConfig() error {
	d := func(p ...string) string { return filepath.Join(append([]string{s.Dir}, p...)...) }
	for _, dir := range []string{d("conf.d"), d("puppet"), d("code", "environments", "production", "manifests"),
		d("var"), d("run"), d("log"), d("ssl"), d("gems"), d("tmp")} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("lab: puppetserver: %w", err)
		}
	}
	puppetConf := fmt.Sprintf(`# drover lab puppetserver (private: nothing in /etc/puppet is used)
[main]
confdir = %[1]s
codedir = %[2]s
vardir = %[3]s
logdir = %[4]s
rundir = %[5]s
ssldir = %[6]s
certname = %[7]s
dns_alt_names = %[7]s,IP:%[7]s
[server]
cadir = %[6]s/ca
autosign = true
# Re-read site.pp on every compile: SetSiteManifest must take effect at once.
environment_timeout = 0
`, d("puppet"), d("code"), d("var"), d("log"), d("run"), d("ssl"), s.Address)
	hocon := func(v string) string { return strconv.Quote(v) }
	files := map[string]string{
		d("puppet", "puppet.conf"):                                      puppetConf,
		d("code", "environments", "production", "environment.conf"):     "",
		d("code", "environments", "production", "manifests", "site.pp"): "node default {}\n",
		d("conf.d", "puppetserver.conf"): fmt.Sprintf(`jruby-puppet: {
    ruby-load-path: [%s]
    gem-home: %s
    gem-path: [%s, %s]
    server-conf-dir: %s
    server-code-dir: %s
    server-var-dir: %s
    server-run-dir: %s
    server-log-dir: %s
    # One JRuby: two cores, and the tests compile one catalog at a time.
    max-active-instances: 1
}
http-client: {}
profiler: {}
`, hocon(puppetServerRubyLib), hocon(d("gems")), hocon(d("gems")), hocon(puppetServerGems),
			hocon(d("puppet")), hocon(d("code")), hocon(d("var")), hocon(d("run")), hocon(d("log"))),
		d("conf.d", "webserver.conf"): fmt.Sprintf("webserver: {\n    client-auth: want\n    ssl-host: %s\n    ssl-port: %d\n}\n", hocon(s.Address), s.Port),
		d("conf.d", "global.conf"):    fmt.Sprintf("global: {\n    logging-config: %s\n}\n", hocon(d("logback.xml"))),
		d("logback.xml"): `<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5p [%c{2}] %m%n</pattern></encoder>
  </appender>
  <root level="info"><appender-ref ref="STDOUT"/></root>
</configuration>
`,
	}
	// The package's authorization rules, routes, CA and metrics settings are fine as they are.
	for _, f := range []string{"auth.conf", "web-routes.conf", "ca.conf", "metrics.conf"} {
		b, err := os.ReadFile(filepath.Join(puppetServerEtc, "conf.d", f))
		if err != nil {
			return fmt.Errorf("lab: puppetserver: %w", err)
		}
		files[d("conf.d", f)] = string(b)
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
			return fmt.Errorf("lab: puppetserver: %w", err)
		}
	}
	return nil
}

// checkStatus asks the server's simple status endpoint once.
func (s *PuppetServer) checkStatus(ctx context.Context) error {
	pem, err := os.ReadFile(s.CACert)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("CA certificate %s: no certificate in it yet", s.CACert)
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/status/v1/simple", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "running" {
		return fmt.Errorf("status %d %q", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// Ready reports whether the server answers its status endpoint with "running" now.
func (s *PuppetServer) Ready(ctx context.Context) error {
	if err := s.checkStatus(ctx); err != nil {
		return fmt.Errorf("lab: puppetserver %s: %w", s.addr(), err)
	}
	return nil
}

// SetSiteManifest replaces the production environment's site.pp; the next catalog
// compile uses it (environment_timeout = 0).
func (s *PuppetServer) SetSiteManifest(content string) error {
	dir := filepath.Join(s.Dir, "code", "environments", "production", "manifests")
	tmp := filepath.Join(dir, ".site.pp.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o640); err != nil {
		return fmt.Errorf("lab: puppetserver: site.pp: %w", err)
	}
	// Rename: a compile racing the write sees the old or the new manifest, never half.
	if err := os.Rename(tmp, filepath.Join(dir, "site.pp")); err != nil {
		return fmt.Errorf("lab: puppetserver: site.pp: %w", err)
	}
	return nil
}

// AgentConfig is the puppet.conf ConfigureAgent writes into a host.
func (s *PuppetServer) AgentConfig(host string) string {
	return fmt.Sprintf(`# drover lab: agent of the lab's puppetserver
[main]
server = %s
certname = %s
# 2048-bit keys: the agent's first run generates one, and 4096 bits is slow on a busy CI box.
keylength = 2048
`, s.Address, host)
}

// ConfigureAgent points the Puppet agent of lab host host at this server
// (/etc/puppet/puppet.conf in the host: server, certname = host name). The agent gets
// its certificate on its first run (autosign). ResetAgent undoes it.
func (s *PuppetServer) ConfigureAgent(ctx context.Context, host string) error {
	if _, err := s.lab.Host(host); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, done := s.origConf[host]; !done {
		orig, err := s.lab.Exec(ctx, host, "cat", agentConf)
		if err != nil {
			return fmt.Errorf("lab: %s: read %s: %w", host, agentConf, err)
		}
		s.origConf[host] = orig
	}
	if out, err := s.lab.execInput(ctx, host, strings.NewReader(s.AgentConfig(host)), "sh", "-c", `cat > "$1"`, "sh", agentConf); err != nil {
		return fmt.Errorf("lab: %s: write %s: %w: %s", host, agentConf, err, out)
	}
	return nil
}

// ResetAgent puts the host's Puppet agent back as the machine has it: the original
// puppet.conf, and no certificates, state, reports or last run summary (anything under
// the agent's state directories that the machine itself does not have is removed).
func (s *PuppetServer) ResetAgent(ctx context.Context, host string) error {
	s.mu.Lock()
	orig, configured := s.origConf[host]
	s.mu.Unlock()
	if configured {
		if out, err := s.lab.execInput(ctx, host, bytes.NewReader(orig), "sh", "-c", `cat > "$1"`, "sh", agentConf); err != nil {
			return fmt.Errorf("lab: %s: restore %s: %w: %s", host, agentConf, err, out)
		}
	}
	s.lab.mu.Lock()
	p, err := s.lab.running(host)
	s.lab.mu.Unlock()
	if err != nil {
		return err
	}
	root := fmt.Sprintf("/proc/%d/root", p.pid1)
	for _, dir := range agentStateDirs {
		if err := pruneToMachine(root, dir); err != nil {
			return fmt.Errorf("lab: %s: reset %s: %w", host, dir, err)
		}
	}
	s.mu.Lock()
	delete(s.origConf, host)
	s.mu.Unlock()
	return nil
}

// pruneToMachine removes everything under root+dir that the controller's own dir does
// not have (by path), so the host's view matches the machine's again. Reading the host
// through /proc/PID/root keeps every change inside its overlay.
func pruneToMachine(root, dir string) error {
	base := filepath.Join(root, dir)
	err := filepath.WalkDir(base, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if _, err := os.Lstat("/" + rel); errors.Is(err, fs.ErrNotExist) {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
			if e.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Stop kills the JVM's process group, waits for it and removes the server's files. It
// does not reset agents (ResetAgent does). Idempotent.
func (s *PuppetServer) Stop() error { return s.stop(s.Dir) }

// portOpen reports whether something accepts TCP connections on addr.
func portOpen(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: 200 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
