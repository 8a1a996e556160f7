package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

	daemon
}

// attachPrometheus is the Prometheus a detached lab started, for Open.
func attachPrometheus(address string, port int, dir string, pid int) *Prometheus {
	p := &Prometheus{Address: address, Port: port, Dir: dir}
	p.daemon = p.newDaemon()
	p.pid = pid
	return p
}

// newDaemon names the server and its log, and recognises it by its config file.
func (p *Prometheus) newDaemon() daemon {
	return daemon{name: "prometheus", marker: "--config.file=" + p.configFile(), log: filepath.Join(p.Dir, "prometheus.log")}
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
	p := &Prometheus{
		Address: l.PrometheusAddress(),
		Port:    PrometheusPort,
		Dir:     filepath.Join(l.Dir, "prometheus"),
	}
	p.daemon = p.newDaemon()
	if err := p.claim(ctx, l, prometheusHost, p.addr(), p.Dir); err != nil {
		return nil, err
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
	cmd := exec.Command(prometheusBin, p.args()...)
	cmd.Dir, cmd.Env = p.Dir, cleanEnv
	if err := p.start(cmd, l.detached); err != nil {
		return nil, err
	}
	var err error
	if p.StartTime, err = p.waitUp(ctx, l, p.addr(), began, p.Ready, 50*time.Millisecond, time.Second); err != nil {
		return nil, err
	}
	ok = true
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

// Stop kills the server, waits for it and removes its files. Idempotent.
func (p *Prometheus) Stop() error { return p.stop(p.Dir) }
