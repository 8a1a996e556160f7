package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/transport"
)

// The fleet runs in a child process (this test binary re-executed with fleetEnv set)
// so that the controller's RSS and goroutine figures are the controller's alone.
const (
	fleetEnv     = "DROVER_BENCH_FLEET_DIR"
	fleetPartEnv = "DROVER_BENCH_FLEET_PART"
	// perChild hosts per fleet process: each needs a descriptor per listener and
	// per connection, under a hard limit that may be 20,000.
	perChild = 4000
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(fleetEnv); dir != "" {
		if err := fleetChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fleetChild serves hosts FIRST+1..FIRST+N (dir/part-K: "FIRST N") until its stdin closes.
func fleetChild(dir string) error {
	part := os.Getenv(fleetPartEnv)
	spec, err := os.ReadFile(filepath.Join(dir, "part-"+part))
	if err != nil {
		return err
	}
	var first, n int
	if _, err := fmt.Sscanf(string(spec), "%d %d", &first, &n); err != nil {
		return fmt.Errorf("part %s: %w", part, err)
	}
	if err := RaiseFileLimit(uint64(2*n + 256)); err != nil {
		return err
	}
	pubb, err := os.ReadFile(filepath.Join(dir, "id_ed25519.pub"))
	if err != nil {
		return err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubb)
	if err != nil {
		return err
	}
	reply, err := gathererReply()
	if err != nil {
		return err
	}
	f, err := StartFleetAt(first, n, pub, reply)
	if err != nil {
		return err
	}
	defer f.Close()
	hosts, err := json.Marshal(f.Hosts)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts-"+part+".json"), hosts, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts-"+part), f.KnownHosts, 0o644); err != nil {
		return err
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes it
	return nil
}

// gathererReply runs drover's real gatherer once on this machine and answers every
// later gatherer script with that output under the script's own boundary.
func gathererReply() (FactsReply, error) {
	script := facts.GatherScript(facts.Options{})
	boundary, ok := scriptBoundary([]byte(script))
	if !ok {
		return nil, errors.New("gather script has no boundary line")
	}
	cmd := exec.Command("sh", "-s")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("running the gatherer locally: %w", err)
	}
	return func(s []byte) []byte {
		b, ok := scriptBoundary(s)
		if !ok {
			return nil
		}
		return bytes.ReplaceAll(out, []byte(boundary), []byte(b))
	}, nil
}

func scriptBoundary(script []byte) (string, bool) {
	line, _, _ := bytes.Cut(script, []byte("\n"))
	b, ok := bytes.CutPrefix(line, []byte("DROVER_BOUNDARY="))
	return string(b), ok && len(b) > 16
}

// fleet is a running child fleet plus the controller-side files for it.
type fleet struct {
	hosts      []FleetHost
	dir        string
	keyFile    string
	knownHosts string
	sshConfig  string
	signer     ssh.Signer
}

// startFleet starts child processes serving n hosts, per hosts each; they stop
// when tb ends.
func startFleet(tb testing.TB, n, per int) *fleet {
	tb.Helper()
	if err := RaiseFileLimit(uint64(n + 1024)); err != nil {
		tb.Fatalf("a fleet of %d needs file descriptors: %v", n, err)
	}
	dir := tb.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fleet{dir: dir, keyFile: filepath.Join(dir, "id_ed25519"), knownHosts: filepath.Join(dir, "known_hosts"),
		sshConfig: filepath.Join(dir, "ssh_config"), signer: signer}
	cfg := fmt.Sprintf("Host *\n  User bench\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  ConnectTimeout 60\n",
		f.keyFile, f.knownHosts)
	for name, data := range map[string][]byte{
		"id_ed25519":     pem.EncodeToMemory(block),
		"id_ed25519.pub": ssh.MarshalAuthorizedKey(signer.PublicKey()),
		"ssh_config":     []byte(cfg),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	var kh []byte
	for part, first := 0, 0; first < n; part, first = part+1, first+per {
		p := strconv.Itoa(part)
		if err := os.WriteFile(filepath.Join(dir, "part-"+p), fmt.Appendf(nil, "%d %d", first, min(per, n-first)), 0o600); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), fleetEnv+"="+dir, fleetPartEnv+"="+p)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			tb.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			tb.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			stdin.Close()
			_ = cmd.Wait()
		})
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			tb.Fatalf("fleet child %s did not start (%q, %v)", p, line, err)
		}
		hb, err := os.ReadFile(filepath.Join(dir, "hosts-"+p+".json"))
		if err != nil {
			tb.Fatal(err)
		}
		var hosts []FleetHost
		if err := json.Unmarshal(hb, &hosts); err != nil {
			tb.Fatal(err)
		}
		f.hosts = append(f.hosts, hosts...)
		b, err := os.ReadFile(filepath.Join(dir, "known_hosts-"+p))
		if err != nil {
			tb.Fatal(err)
		}
		kh = append(kh, b...)
	}
	if err := os.WriteFile(f.knownHosts, kh, 0o644); err != nil {
		tb.Fatal(err)
	}
	if len(f.hosts) != n {
		tb.Fatalf("fleet children started %d hosts, want %d", len(f.hosts), n)
	}
	return f
}

// outcome is one pass over the fleet.
type outcome struct {
	ok       int64
	lost     []string // "host: why", for the first few
	lostN    int64
	elapsed  time.Duration
	peakRSS  int64 // bytes, VmHWM since the pass began
	peakGors int64
}

func (o *outcome) fail(host string, err error) {
	if atomic.AddInt64(&o.lostN, 1) <= 5 {
		o.lost = append(o.lost, host+": "+err.Error())
	}
}

// client is one way of running a command on every host.
type client struct {
	name string
	run  func(ctx context.Context, f *fleet, forks int, o *outcome, mu *sync.Mutex)
}

var clients = []client{
	{"bare-xcrypto-exec", bareExec},
	{"drover-exec", droverExec},
	{"drover-facts", droverFacts},
}

// each runs fn for every host with at most forks at once, as drover's forEach does.
func each(hosts []FleetHost, forks int, fn func(h FleetHost)) {
	sem := make(chan struct{}, forks)
	var wg sync.WaitGroup
	for _, h := range hosts {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(h)
		}()
	}
	wg.Wait()
}

// bareExec is the floor: dial, verify the host key, one exec, close.
func bareExec(ctx context.Context, f *fleet, forks int, o *outcome, mu *sync.Mutex) {
	cb, err := xknownhosts.New(f.knownHosts)
	if err != nil {
		o.fail("known_hosts", err)
		return
	}
	cfg := &ssh.ClientConfig{User: "bench", Auth: []ssh.AuthMethod{ssh.PublicKeys(f.signer)}, HostKeyCallback: cb,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}, Timeout: time.Minute}
	each(f.hosts, forks, func(h FleetHost) {
		err := func() error {
			cl, err := ssh.Dial("tcp", net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)), cfg)
			if err != nil {
				return err
			}
			defer cl.Close()
			s, err := cl.NewSession()
			if err != nil {
				return err
			}
			defer s.Close()
			out, err := s.Output("uname -r")
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(out)) != KernelRelease {
				return fmt.Errorf("output %q", out)
			}
			return nil
		}()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			o.fail(h.Name, err)
			return
		}
		o.ok++
	})
}

// droverSetup is what `drover exec` does before it connects: load ssh_config,
// resolve every target (inventory address and port as overrides), one pool.
func droverSetup(f *fleet) (*transport.Dialer, []*transport.Endpoint, error) {
	cfg, err := transport.LoadSSHConfig(f.sshConfig)
	if err != nil {
		return nil, nil, err
	}
	eps := make([]*transport.Endpoint, len(f.hosts))
	for i, h := range f.hosts {
		if eps[i], err = cfg.Resolve(h.Name, transport.Overrides{HostName: h.Addr, Port: h.Port}); err != nil {
			return nil, nil, err
		}
	}
	return transport.NewDialer(transport.DialerOptions{Config: cfg, AgentSocket: "none"}), eps, nil
}

// droverEach runs fn on every host's pooled connection, as drover's commands do.
// release lets go of each connection once its host is done (Pool.Release), as
// the one-command-a-host commands (exec, facts, find) do; without it the pool
// holds every connection until the end, as a rollout does.
func droverEach(ctx context.Context, f *fleet, forks int, release bool, o *outcome, mu *sync.Mutex, fn func(ctx context.Context, c *transport.Conn) error) {
	d, eps, err := droverSetup(f)
	if err != nil {
		o.fail("setup", err)
		return
	}
	pool := transport.NewPool(d)
	defer pool.Close()
	byName := make(map[string]*transport.Endpoint, len(eps))
	for _, ep := range eps {
		byName[ep.Alias] = ep
	}
	each(f.hosts, forks, func(h FleetHost) {
		err := func() error {
			ep := byName[h.Name]
			c, err := pool.Get(ctx, ep)
			if err != nil {
				return err
			}
			if release {
				defer pool.Release(ep)
			}
			return fn(ctx, c)
		}()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			o.fail(h.Name, err)
			return
		}
		o.ok++
	})
}

// droverExec is `drover exec`'s path: pooled connection, one command, release.
func droverExec(ctx context.Context, f *fleet, forks int, o *outcome, mu *sync.Mutex) {
	droverExecMode(ctx, f, forks, true, o, mu)
}

func droverExecMode(ctx context.Context, f *fleet, forks int, release bool, o *outcome, mu *sync.Mutex) {
	droverEach(ctx, f, forks, release, o, mu, func(ctx context.Context, c *transport.Conn) error {
		res, err := c.Run(ctx, &transport.Command{Cmd: "uname -r"})
		if err != nil {
			return err
		}
		if res.ExitCode != 0 || strings.TrimSpace(string(res.Stdout)) != KernelRelease {
			return fmt.Errorf("exit %d, output %q", res.ExitCode, res.Stdout)
		}
		return nil
	})
}

func droverFacts(ctx context.Context, f *fleet, forks int, o *outcome, mu *sync.Mutex) {
	droverEach(ctx, f, forks, true, o, mu, func(ctx context.Context, c *transport.Conn) error {
		fs, err := facts.Gather(ctx, c, facts.Options{})
		var w facts.Warnings
		if err != nil && !errors.As(err, &w) {
			return err
		}
		if _, ok := fs.Get("kernelrelease"); !ok {
			return errors.New("no kernelrelease fact")
		}
		return nil
	})
}

// measure runs one pass of c and records its time, peak RSS and goroutines.
func measure(f *fleet, c client, forks int) *outcome {
	o := &outcome{}
	debug.FreeOSMemory()
	resetPeakRSS()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if g := int64(runtime.NumGoroutine()); g > o.peakGors {
				o.peakGors = g
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var mu sync.Mutex
	start := time.Now()
	c.run(ctx, f, forks, o, &mu)
	o.elapsed = time.Since(start)
	close(stop)
	<-sampled
	o.peakRSS = vmHWM()
	return o
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// vmHWM is the process's peak resident set size in bytes, 0 if unknown.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestFleetHarness checks the harness on 20 hosts: every client reaches every host.
func TestFleetHarness(t *testing.T) {
	f := startFleet(t, 20, 8) // three fleet processes
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			o := measure(f, c, 8)
			if o.ok != 20 || o.lostN != 0 {
				t.Fatalf("%d of 20 hosts ok, %d lost: %v", o.ok, o.lostN, o.lost)
			}
			if o.peakRSS <= 0 || o.peakGors <= 0 {
				t.Errorf("no peak figures: rss %d goroutines %d", o.peakRSS, o.peakGors)
			}
		})
	}
}

// BenchmarkFleet: exec and facts throughput of drover's transport against the bare
// loop on 1,000 and 10,000 hosts (BENCH_FLEET_SIZES="1000,10000", BENCH_FORKS=200).
//
//	go test -bench Fleet -run '^$' -benchtime 1x -timeout 60m ./bench/
func BenchmarkFleet(b *testing.B) {
	sizes := []int{1000, 10000}
	if s := os.Getenv("BENCH_FLEET_SIZES"); s != "" {
		sizes = nil
		for _, x := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil || n < 1 {
				b.Fatalf("BENCH_FLEET_SIZES: bad size %q", x)
			}
			sizes = append(sizes, n)
		}
	}
	forks := 200
	if s := os.Getenv("BENCH_FORKS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_FORKS: bad value %q", s)
		}
		forks = n
	}
	for _, n := range sizes {
		b.Run("hosts="+strconv.Itoa(n), func(b *testing.B) {
			f := startFleet(b, n, perChild)
			for _, c := range clients {
				b.Run(c.name, func(b *testing.B) {
					var last *outcome
					var total time.Duration
					for range b.N {
						o := measure(f, c, forks)
						if o.lostN != 0 || o.ok != int64(n) {
							b.Fatalf("%d of %d hosts ok, %d lost: %v", o.ok, n, o.lostN, o.lost)
						}
						total += o.elapsed
						last = o
					}
					b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "hosts/s")
					b.ReportMetric(float64(last.peakRSS)/(1<<20), "peakRSS-MiB")
					b.ReportMetric(float64(last.peakGors), "peak-goroutines")
					b.ReportMetric(float64(last.lostN), "lost")
				})
			}
		})
	}
}
