// Command drover-bench (`make bench`) times drover against the tools an operator
// would otherwise reach for, on one lab of real sshd hosts: reaching every host
// (drover exec, parallel-ssh, xargs -P ssh, ansible -m command), gathering facts
// (drover facts, ansible -m setup, facter --json over xargs -P ssh) and a rollout
// in batches of 10 (drover run vs ansible-playbook). Tools alternate within every
// round; it prints medians and ratios and writes a Markdown table. Needs root.
//
//	BENCH_HOSTS=50 BENCH_ROUNDS=5 go run ./bench/cmd/drover-bench -drover bin/drover
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drover-sh/drover/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "drover-bench:", err)
		os.Exit(1)
	}
}

// config is what one benchmark run needs.
type config struct {
	hosts, rounds int
	drover        string // drover binary
	benchDir      string // holds rollout.hcl and rollout.yml
	out           string // RESULTS.md
	scenarios     []string
	leanDpkg      bool // hosts get a minimal dpkg database (lab.Config.LeanDpkg)
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("drover-bench", flag.ContinueOnError)
	c := config{}
	fl.StringVar(&c.drover, "drover", "bin/drover", "the drover binary to measure")
	fl.StringVar(&c.benchDir, "dir", "bench", "directory holding rollout.hcl and rollout.yml")
	fl.StringVar(&c.out, "out", "bench/RESULTS.md", "Markdown results file")
	only := fl.String("only", "exec,facts,rollout", "scenarios to run, comma-separated")
	fl.BoolVar(&c.leanDpkg, "lean-dpkg", true, "give the hosts a minimal Debian's dpkg database and apt configuration, not this machine's")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c.scenarios = strings.Split(*only, ",")
	var err error
	if c.hosts, err = envInt("BENCH_HOSTS", 50, 1, 254); err != nil {
		return err
	}
	if c.rounds, err = envInt("BENCH_ROUNDS", 5, 1, 100); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root; run `make bench` as root")
	}
	if c.drover, err = filepath.Abs(c.drover); err != nil {
		return err
	}
	if _, err := os.Stat(c.drover); err != nil {
		return fmt.Errorf("drover binary: %w (run `make build` first)", err)
	}
	if err := ensureTools(ctx, stdout); err != nil {
		return err
	}

	loadBefore := loadAvg()
	began := time.Now()
	fmt.Fprintf(stdout, "starting a lab of %d hosts…\n", c.hosts)
	l, err := lab.Start(ctx, lab.Config{Hosts: c.hosts, Net: -1, LeanDpkg: c.leanDpkg})
	if err != nil {
		return fmt.Errorf("starting the lab: %w", err)
	}
	defer l.Stop()
	fmt.Fprintf(stdout, "lab up in %s\n", time.Since(began).Round(time.Millisecond))

	b, err := newBench(c, l)
	if err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	results, err := b.runAll(ctx, stdout)
	if err != nil {
		return err
	}
	md := b.markdown(results, loadBefore, loadAvg(), time.Since(began))
	fmt.Fprint(stdout, "\n"+md)
	if err := os.WriteFile(c.out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", c.out, err)
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", c.out)
	return nil
}

func envInt(name string, def, lo, hi int) (int, error) {
	s := os.Getenv(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want a number in %d..%d", name, s, lo, hi)
	}
	return n, nil
}

// ensureTools installs Debian's pssh (parallel-ssh) and python3-apt (Ansible's apt
// module needs it on the hosts, which share this machine's /) when missing. It runs
// before the lab starts, so the hosts see what it installs.
func ensureTools(ctx context.Context, stdout io.Writer) error {
	var missing []string
	if _, err := exec.LookPath("parallel-ssh"); err != nil {
		missing = append(missing, "pssh")
	}
	if exec.CommandContext(ctx, "/usr/bin/python3", "-c", "import apt").Run() != nil {
		missing = append(missing, "python3-apt")
	}
	for _, t := range []struct{ bin, pkg string }{{"ansible", "ansible-core"}, {"facter", "facter"}, {"ssh", "openssh-client"}} {
		if _, err := exec.LookPath(t.bin); err != nil {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintf(stdout, "installing %s…\n", strings.Join(missing, " "))
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-q"}, missing...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(missing, " "), err, tail(out, 2000))
	}
	return nil
}

// bench holds the lab and the files every tool reads.
type bench struct {
	c        config
	lab      *lab.Lab
	tmp      string
	home     string // HOME for every tool: no user ssh_config, key or agent leaks in
	hostList string // one host name a line (pssh, xargs)
	kernel   string // what `uname -r` prints in a host (the machine's kernel)
}

func newBench(c config, l *lab.Lab) (*bench, error) {
	tmp, err := os.MkdirTemp("", "drover-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{c: c, lab: l, tmp: tmp, home: filepath.Join(tmp, "home")}
	if err := os.MkdirAll(b.home, 0o700); err != nil {
		return nil, err
	}
	var names []string
	for _, h := range l.Hosts {
		names = append(names, h.Name)
	}
	b.hostList = filepath.Join(tmp, "hosts")
	if err := os.WriteFile(b.hostList, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return nil, err
	}
	b.kernel = cstr(u.Release[:])
	return b, nil
}

func cstr(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// tool is one contender in a scenario.
type tool struct {
	name  string
	argv  func(runDir string) []string
	stdin string // file fed on stdin ("" = /dev/null)
	// check judges the output: every host must have answered.
	check func(out []byte) error
}

// scenario is one task every tool performs on the whole lab.
type scenario struct {
	name  string
	what  string
	tools []tool // tools[0] is drover, the reference of the ratios
	reset func(ctx context.Context) error
	// verify runs after each (untimed) to confirm the tool did the work.
	verify func(ctx context.Context) error
}

// sample is one timed run.
type sample struct {
	elapsed time.Duration
	treeRSS int64 // peak of the summed RSS of the process tree, sampled
	procRSS int64 // largest single process (wait4 rusage maxrss)
	err     error
}

type result struct {
	scenario, tool string
	samples        []sample
}

func (b *bench) env(runDir string) []string {
	n := strconv.Itoa(b.c.hosts)
	return []string{
		"HOME=" + b.home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1", "LANG=C.UTF-8",
		"DROVER_STATE_DIR=" + filepath.Join(runDir, "drover-state"),
		"ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3",
		"ANSIBLE_FORKS=" + n, "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=False",
		"ANSIBLE_RETRY_FILES_ENABLED=False", "ANSIBLE_LOCAL_TEMP=" + filepath.Join(runDir, "ansible-local"),
		// Ansible's default ControlPersist would otherwise carry connections from one
		// round into the next; within a run it keeps them, as out of the box.
		"ANSIBLE_SSH_CONTROL_PATH_DIR=" + filepath.Join(runDir, "cp"),
	}
}

func (b *bench) scenarios() []scenario {
	n := strconv.Itoa(b.c.hosts)
	l := b.lab
	// The lab flags go right after the command: everything after "--" is the remote command.
	droverArgs := func(cmd string, args ...string) []string {
		return append([]string{b.c.drover, cmd, "-i", l.Inventory, "--ssh-config", l.SSHConfig, "--forks", n}, args...)
	}
	sshArgs := "-F " + l.SSHConfig + " -o BatchMode=yes"
	count := func(marker string, want int) func([]byte) error {
		return func(out []byte) error {
			if got := bytes.Count(out, []byte(marker)); got < want {
				return fmt.Errorf("%d of %d hosts answered (%q)", got, want, marker)
			}
			return nil
		}
	}
	hosts := b.c.hosts
	all := []scenario{
		{
			name: "exec", what: "run `uname -r` on every host",
			tools: []tool{
				{name: "drover exec", argv: func(string) []string { return droverArgs("exec", "--", "uname", "-r") }, check: count(b.kernel, hosts)},
				{name: "parallel-ssh -p " + n, argv: func(string) []string {
					return []string{"parallel-ssh", "-h", b.hostList, "-p", n, "-t", "0", "-x", sshArgs, "uname", "-r"}
				}, check: count("[SUCCESS]", hosts)},
				{name: "xargs -P " + n + " ssh", stdin: b.hostList, argv: func(string) []string {
					return []string{"xargs", "-P", n, "-I{}", "ssh", "-F", l.SSHConfig, "-o", "BatchMode=yes", "{}", "uname", "-r"}
				}, check: count(b.kernel, hosts)},
				{name: "ansible -m command -f " + n, argv: func(string) []string {
					return []string{"ansible", "all", "-i", l.InventoryINI, "-f", n, "-m", "command", "-a", "uname -r"}
				}, check: count(b.kernel, hosts)},
			},
		},
		{
			name: "facts", what: "gather facts from every host",
			tools: []tool{
				{name: "drover facts --refresh", argv: func(string) []string { return droverArgs("facts", "--refresh", "--json") }, check: count(`"kernelrelease"`, hosts)},
				{name: "ansible -m setup -f " + n, argv: func(string) []string {
					return []string{"ansible", "all", "-i", l.InventoryINI, "-f", n, "-m", "setup"}
				}, check: count("SUCCESS", hosts)},
				{name: "xargs -P " + n + " ssh facter --json", stdin: b.hostList, argv: func(string) []string {
					return []string{"xargs", "-P", n, "-I{}", "ssh", "-F", l.SSHConfig, "-o", "BatchMode=yes", "{}", "facter", "--json"}
				}, check: count(`"kernelrelease"`, hosts)},
			},
		},
		{
			name: "rollout", what: "demo-web 1.0 → 2.0, batches of 10, restart, health check",
			tools: []tool{
				{name: "drover run", argv: func(string) []string {
					return droverArgs("run", filepath.Join(b.c.benchDir, "rollout.hcl"), "--var", "version=2.0", "--yes")
				}, check: func([]byte) error { return nil }},
				{name: "ansible-playbook (serial: 10)", argv: func(string) []string {
					return []string{"ansible-playbook", "-i", l.InventoryINI, "-f", n, "-e", "version=2.0", filepath.Join(b.c.benchDir, "rollout.yml")}
				}, check: func([]byte) error { return nil }},
			},
			reset: func(ctx context.Context) error {
				return b.onAll(ctx, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades demo-web=1.0 && service demo-web restart")
			},
			verify: b.verifyVersion("2.0"),
		},
	}
	var out []scenario
	for _, s := range all {
		if slices.Contains(b.c.scenarios, s.name) {
			out = append(out, s)
		}
	}
	return out
}

// onAll runs a shell script in every lab host (not through ssh: untimed set-up).
func (b *bench) onAll(ctx context.Context, script string) error {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	for _, h := range b.lab.Hosts {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := b.lab.Exec(ctx, name, "sh", "-c", script)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w: %s", name, err, tail(out, 500)))
				mu.Unlock()
			}
		}(h.Name)
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (b *bench) verifyVersion(want string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		return b.onAll(ctx, "v=$(dpkg-query -W -f '${Version}' demo-web) && [ \"$v\" = "+want+" ] || { echo \"demo-web $v\"; exit 1; }")
	}
}

// runAll alternates the tools within every round, rotating who goes first.
func (b *bench) runAll(ctx context.Context, stdout io.Writer) ([]*result, error) {
	var results []*result
	byKey := map[string]*result{}
	scs := b.scenarios()
	for _, s := range scs {
		for _, t := range s.tools {
			r := &result{scenario: s.name, tool: t.name}
			byKey[s.name+"\x00"+t.name] = r
			results = append(results, r)
		}
	}
	for round := 1; round <= b.c.rounds; round++ {
		for _, s := range scs {
			for k := range s.tools {
				t := s.tools[(k+round-1)%len(s.tools)]
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				if s.reset != nil {
					if err := s.reset(ctx); err != nil {
						return nil, fmt.Errorf("%s: resetting the hosts: %w", s.name, err)
					}
				}
				smp := b.measure(ctx, t, fmt.Sprintf("%s-%d-%d", s.name, round, k))
				if smp.err == nil && s.verify != nil {
					if err := s.verify(ctx); err != nil {
						smp.err = fmt.Errorf("hosts not in the wanted state afterwards: %w", err)
					}
				}
				r := byKey[s.name+"\x00"+t.name]
				r.samples = append(r.samples, smp)
				status := "ok"
				if smp.err != nil {
					status = "FAILED: " + smp.err.Error()
				}
				fmt.Fprintf(stdout, "round %d/%d  %-8s %-36s %8.2fs  tree %6.1f MiB  %s\n", round, b.c.rounds, s.name, t.name,
					smp.elapsed.Seconds(), mib(smp.treeRSS), status)
			}
		}
	}
	return results, nil
}

// measure runs one tool once, its output to files (lingering ssh control masters
// keep pipes open; files don't make Wait wait for them).
func (b *bench) measure(ctx context.Context, t tool, id string) sample {
	runDir := filepath.Join(b.tmp, "runs", id)
	if err := os.MkdirAll(filepath.Join(runDir, "cp"), 0o700); err != nil {
		return sample{err: err}
	}
	outF, err := os.Create(filepath.Join(runDir, "stdout"))
	if err != nil {
		return sample{err: err}
	}
	defer outF.Close()
	errF, err := os.Create(filepath.Join(runDir, "stderr"))
	if err != nil {
		return sample{err: err}
	}
	defer errF.Close()
	argv := t.argv(runDir)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Env = b.env(runDir)
	cmd.Stdout, cmd.Stderr = outF, errF
	if t.stdin != "" {
		in, err := os.Open(t.stdin)
		if err != nil {
			return sample{err: err}
		}
		defer in.Close()
		cmd.Stdin = in
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{err: err}
	}
	peak := watchTree(cmd.Process.Pid)
	err = cmd.Wait()
	s := sample{elapsed: time.Since(start), treeRSS: peak()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.procRSS = ru.Maxrss << 10
	}
	out, _ := os.ReadFile(outF.Name())
	if err != nil {
		errOut, _ := os.ReadFile(errF.Name())
		s.err = fmt.Errorf("%s: %w\n%s%s", strings.Join(argv[:min(len(argv), 3)], " "), err, tail(out, 800), tail(errOut, 800))
		return s
	}
	s.err = t.check(out)
	return s
}

// watchTree samples the summed RSS of pid and its descendants every treeSample until
// the returned function is called; it returns the peak.
// treeSample is how often watchTree scans /proc. A scan reads every process's stat
// file: every 50 ms that took ~15% of a core beside a 50-host lab, slowing the very tools
// being timed on a 2-core machine; every 250 ms it is a fifth of that.
const treeSample = 250 * time.Millisecond

func watchTree(pid int) func() int64 {
	stop := make(chan struct{})
	done := make(chan int64)
	go func() {
		var peak int64
		t := time.NewTicker(treeSample)
		defer t.Stop()
		for {
			if r := treeRSS(pid); r > peak {
				peak = r
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(stop); return <-done }
}

// treeRSS is the resident memory of pid and every descendant, from /proc.
func treeRSS(root int) int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	page := int64(os.Getpagesize())
	children := map[int][]int{}
	rss := map[int]int64{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pages, _ := strconv.ParseInt(f[21], 10, 64)
		children[ppid] = append(children[ppid], pid)
		rss[pid] = pages * page
	}
	var sum int64
	stack := []int{root}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		sum += rss[p]
		stack = append(stack, children[p]...)
	}
	return sum
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stats are a result's figures over its successful rounds.
type stats struct {
	ok                      int
	med, lo, hi, tree, proc float64
	firstErr                error
}

func (r *result) stats() stats {
	var st stats
	var secs, tree, proc []float64
	for _, s := range r.samples {
		if s.err != nil {
			if st.firstErr == nil {
				st.firstErr = s.err
			}
			continue
		}
		st.ok++
		secs = append(secs, s.elapsed.Seconds())
		tree = append(tree, mib(s.treeRSS))
		proc = append(proc, mib(s.procRSS))
	}
	if st.ok > 0 {
		st.med, st.tree, st.proc = median(secs), median(tree), median(proc)
		st.lo, st.hi = slices.Min(secs), slices.Max(secs)
	}
	return st
}

func (b *bench) markdown(results []*result, loadBefore, loadAfter string, total time.Duration) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# drover benchmark results\n\n")
	fmt.Fprintf(&w, "Generated by `make bench` (bench/cmd/drover-bench) on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&w, "- machine: %s, %d cores, kernel %s\n", cpuModel(), runtime.NumCPU(), b.kernel)
	fmt.Fprintf(&w, "- lab: %d hosts (real sshd in namespaces on loopback), %d rounds, tools alternating within each round\n", b.c.hosts, b.c.rounds)
	if b.c.leanDpkg {
		fmt.Fprintf(&w, "- hosts' dpkg database: lean, %d packages (Debian's Essential and required ones and what they\n"+
			"  depend on, apt configuration of those only), as on a minimal server; `-lean-dpkg=false` keeps this\n"+
			"  machine's (every install then reads all of its packages' file lists and runs its apt hooks)\n", b.lab.LeanPackages)
	} else {
		fmt.Fprintf(&w, "- hosts' dpkg database: this machine's (`-lean-dpkg=false`)\n")
	}
	fmt.Fprintf(&w, "- load average before / after: %s / %s; total %s\n", loadBefore, loadAfter, total.Round(time.Second))
	fmt.Fprintf(&w, "- versions: %s\n\n", strings.Join(versions(b.c.drover), "; "))
	fmt.Fprintf(&w, "Times are wall-clock medians over the rounds (min–max). \"× drover\" is the tool's median\n"+
		"divided by drover's: above 1 means drover is faster. Peak tree RSS is the largest summed RSS of\n"+
		"the tool's whole process tree (sampled every 250 ms: xargs, pssh and Ansible run one ssh per host);\n"+
		"max process RSS is the largest single process of the tree (wait4 rusage).\n\n")
	byScenario := map[string][]*result{}
	var order []string
	for _, r := range results {
		if _, ok := byScenario[r.scenario]; !ok {
			order = append(order, r.scenario)
		}
		byScenario[r.scenario] = append(byScenario[r.scenario], r)
	}
	var notes []string
	for _, sc := range order {
		rs := byScenario[sc]
		ref := rs[0].stats()
		fmt.Fprintf(&w, "## %s\n\n", sc)
		fmt.Fprintf(&w, "| tool | median s | min–max s | × drover | peak tree RSS MiB | max process RSS MiB | ok rounds |\n")
		fmt.Fprintf(&w, "|---|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range rs {
			st := r.stats()
			ratio := "—"
			if st.ok > 0 && ref.ok > 0 && ref.med > 0 {
				ratio = fmt.Sprintf("%.2f", st.med/ref.med)
			}
			fmt.Fprintf(&w, "| %s | %.2f | %.2f–%.2f | %s | %.1f | %.1f | %d/%d |\n", r.tool, st.med, st.lo, st.hi, ratio, st.tree, st.proc, st.ok, len(r.samples))
			if st.firstErr != nil {
				notes = append(notes, fmt.Sprintf("%s / %s failed: %s", sc, r.tool, firstLine(st.firstErr.Error())))
			}
		}
		w.WriteString("\n")
	}
	w.WriteString(b.targets(byScenario))
	if len(notes) > 0 {
		w.WriteString("\n## Failures\n\n")
		for _, n := range notes {
			fmt.Fprintf(&w, "- %s\n", n)
		}
	}
	return w.String()
}

// targets checks the acceptance figures against the medians.
func (b *bench) targets(by map[string][]*result) string {
	med := func(sc, prefix string) (float64, bool) {
		for _, r := range by[sc] {
			if strings.HasPrefix(r.tool, prefix) {
				st := r.stats()
				return st.med, st.ok > 0
			}
		}
		return 0, false
	}
	type target struct {
		desc     string
		sc, a, b string
		ratio    float64 // want med(b)/med(a) >= ratio
	}
	ts := []target{
		{"exec: drover ≤ 1.1 × xargs ssh", "exec", "drover", "xargs", 1 / 1.1},
		{"exec: drover ≤ parallel-ssh", "exec", "drover", "parallel-ssh", 1},
		{"facts: drover ≥ 10 × faster than ansible -m setup", "facts", "drover", "ansible", 10},
		{"facts: drover ≥ 2 × faster than facter over ssh", "facts", "drover", "xargs", 2},
		{"rollout: drover ≥ 5 × faster than ansible-playbook", "rollout", "drover", "ansible", 5},
	}
	var w strings.Builder
	w.WriteString("## Targets (issue 8)\n\n| target | measured | met |\n|---|---:|:---:|\n")
	for _, t := range ts {
		a, aok := med(t.sc, t.a)
		o, ook := med(t.sc, t.b)
		if !aok || !ook || a == 0 {
			continue
		}
		met := "no"
		if o/a >= t.ratio {
			met = "yes"
		}
		fmt.Fprintf(&w, "| %s | %s %.2fs vs %.2fs (%.2f×) | %s |\n", t.desc, t.a, a, o, o/a, met)
	}
	return w.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// versions are the first line each tool prints about its version.
func versions(drover string) []string {
	var out []string
	for _, v := range [][]string{
		{drover, "version"}, {"ssh", "-V"}, {"parallel-ssh", "--version"}, {"ansible", "--version"}, {"facter", "--version"},
	} {
		b, _ := exec.Command(v[0], v[1:]...).CombinedOutput()
		line := strings.TrimSpace(firstLine(string(b)))
		if line == "" {
			line = "?"
		}
		if !strings.Contains(strings.ToLower(line), strings.ToLower(strings.TrimPrefix(filepath.Base(v[0]), "parallel-"))) {
			line = filepath.Base(v[0]) + " " + line
		}
		out = append(out, line)
	}
	return out
}
