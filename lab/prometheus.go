package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// prometheusBin is Debian's prometheus package's server. The lab runs it with its own
	// config and data dir; Debian's /etc/prometheus and its service are never used.
	prometheusBin = "/usr/bin/prometheus"
	// PrometheusPort is the port a lab Prometheus listens on (Prometheus's default).
	PrometheusPort = 9090
	// prometheusHost is the last octet of the server's address: 127.1.NET.253.
	prometheusHost = 253
	// DemoWebMetricsPort is where every lab host's demo-web serves GET /metrics.
	DemoWebMetricsPort = 8080
)

// Prometheus is a real Prometheus server (Debian's package) scraping one lab: every
// host's demo-web metrics (ADDRESS:8080/metrics) each second, each series labelled with
// host (the lab name) and role (web or db). Its data lives under Lab.Dir/prometheus.
// Its methods are safe for concurrent use.
type Prometheus struct {
	Address   string        // 127.1.NET.253
	Port      int           // PrometheusPort
	Dir       string        // config, data and log; removed by Stop
	StartTime time.Duration // from exec to /-/ready answering 200

	pid  int
	cmd  *exec.Cmd     // nil when attached to a detached server (Open)
	done chan struct{} // closed when our child was reaped; nil when not our child
	log  string

	mu      sync.Mutex
	stopped bool
}

// PrometheusAddress is the address a lab's Prometheus listens on.
func (l *Lab) PrometheusAddress() string { return hostAddress(l.net, prometheusHost) }

// StartPrometheus starts Prometheus for lab l and returns once /-/ready answers 200
// (bounded by ctx). Unless the lab is detached, the server dies with the calling
// process; call Stop to remove it and its files.
func StartPrometheus(ctx context.Context, l *Lab) (*Prometheus, error) {
	began := time.Now()
	if _, err := os.Stat(prometheusBin); err != nil {
		return nil, fmt.Errorf("lab: prometheus: %s missing (Debian package prometheus): %w", prometheusBin, err)
	}
	if len(l.Hosts) >= prometheusHost {
		return nil, fmt.Errorf("lab: prometheus: address .%d is taken by a host (lab of %d hosts)", prometheusHost, len(l.Hosts))
	}
	p := &Prometheus{
		Address: l.PrometheusAddress(),
		Port:    PrometheusPort,
		Dir:     filepath.Join(l.Dir, "prometheus"),
		done:    make(chan struct{}),
	}
	p.log = filepath.Join(p.Dir, "prometheus.log")
	if portOpen(ctx, p.addr()) {
		return nil, fmt.Errorf("lab: prometheus: something already listens on %s", p.addr())
	}
	if _, err := os.Stat(p.Dir); err == nil {
		return nil, fmt.Errorf("lab: prometheus: %s exists (another server for this lab?)", p.Dir)
	}
	ok := false
	defer func() {
		if !ok {
			_ = p.Stop()
		}
	}()
	if err := os.MkdirAll(filepath.Join(p.Dir, "data"), 0o750); err != nil {
		return nil, fmt.Errorf("lab: prometheus: %w", err)
	}
	if err := os.WriteFile(p.configFile(), []byte(prometheusConfig(l)), 0o640); err != nil {
		return nil, fmt.Errorf("lab: prometheus: %w", err)
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lab: prometheus: %w", err)
	}
	defer logf.Close()
	p.cmd = exec.Command(prometheusBin, p.args()...)
	p.cmd.Dir, p.cmd.Env = p.Dir, cleanEnv
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C at the terminal must not reach it; Pdeathsig unless
	// detached, so a crashed test leaves nothing running.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !l.detached {
		p.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := p.cmd.Start(); err != nil {
		close(p.done)
		return nil, fmt.Errorf("lab: prometheus: start: %w", err)
	}
	p.pid = p.cmd.Process.Pid
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("lab: prometheus on %s did not start: %w\n--- %s ---\n%s", p.addr(), err, p.log, consoleTail(p.log, 0))
	}
	p.StartTime = time.Since(began)
	ok = true
	l.logf("lab: prometheus up on %s in %s", p.addr(), p.StartTime.Round(time.Millisecond))
	return p, nil
}

func (p *Prometheus) configFile() string { return filepath.Join(p.Dir, "prometheus.yml") }

func (p *Prometheus) args() []string {
	return []string{
		"--config.file=" + p.configFile(),
		"--storage.tsdb.path=" + filepath.Join(p.Dir, "data"),
		"--storage.tsdb.retention.time=1d",
		"--web.listen-address=" + p.addr(),
		"--log.level=warn",
	}
}

// prometheusConfig scrapes every host's demo-web once a second, so a gate sees a
// release's metrics within a couple of seconds of its start. Hosts without demo-web
// are simply down targets.
func prometheusConfig(l *Lab) string {
	var b strings.Builder
	b.WriteString(`# drover lab Prometheus (private: Debian's /etc/prometheus is not used)
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: demo-web
    metrics_path: /metrics
    static_configs:
`)
	for i, h := range l.Hosts {
		role, dc := hostFacts(h.Name, i+1)
		// Names and addresses are the lab's own (hN, 127.1.N.i): nothing to escape in YAML.
		fmt.Fprintf(&b, "      - targets: [%q]\n        labels: {host: %q, role: %q, datacenter: %q}\n",
			net.JoinHostPort(h.Address, strconv.Itoa(DemoWebMetricsPort)), h.Name, role, dc)
	}
	return b.String()
}

func (p *Prometheus) addr() string { return net.JoinHostPort(p.Address, strconv.Itoa(p.Port)) }

// URL is the server's base URL, e.g. http://127.1.3.253:9090.
func (p *Prometheus) URL() string { return "http://" + p.addr() }

// waitReady polls /-/ready with a backoff until it answers 200, the server exits or
// ctx ends.
func (p *Prometheus) waitReady(ctx context.Context) error {
	delay := 50 * time.Millisecond
	var last error = errors.New("no answer yet")
	for {
		if err := p.Ready(ctx); err == nil {
			return nil
		} else {
			last = err
		}
		select {
		case <-p.done:
			return fmt.Errorf("prometheus exited (%v)", p.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// Ready asks /-/ready once.
func (p *Prometheus) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/-/ready", nil)
	if err != nil {
		return fmt.Errorf("lab: prometheus: %w", err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return fmt.Errorf("lab: prometheus: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("lab: prometheus: /-/ready: %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// Log returns the end of the server's log, for test failure messages.
func (p *Prometheus) Log() string { return consoleTail(p.log, 0) }

// Stop kills the server, waits for it and removes its files. Idempotent.
func (p *Prometheus) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	if p.pid != 0 && p.isOurs() {
		// No graceful shutdown: its data dir is about to go.
		if err := syscall.Kill(-p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("lab: prometheus: kill: %w", err)
		}
		if err := p.waitGone(); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("lab: prometheus: remove files: %w", err)
	}
	p.stopped = true
	return nil
}

// isOurs: the pid is still this server (not exited, not reused by another process).
func (p *Prometheus) isOurs() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
	return err == nil && strings.Contains(string(b), "--config.file="+p.configFile())
}

// waitGone waits for a killed server: our child is reaped by the goroutine in
// StartPrometheus; a detached one (not our child) is reaped by init, so its /proc
// entry is polled.
func (p *Prometheus) waitGone() error {
	if p.done != nil {
		select {
		case <-p.done:
			return nil
		case <-time.After(stopTimeout):
			return fmt.Errorf("lab: prometheus: pid %d did not exit after SIGKILL", p.pid)
		}
	}
	deadline := time.Now().Add(stopTimeout)
	for p.isOurs() {
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: prometheus: pid %d did not exit after SIGKILL", p.pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
