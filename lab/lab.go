// Package lab runs a fleet of real OpenSSH hosts on one machine for drover's end-to-end
// tests, demo and benchmarks (SPEC §6). It needs root.
//
// Each host hN is an `unshare --mount --uts --pid --fork` whose pid 1 (lab/setup.sh)
// mounts a copy-on-write overlay of / (upper layer on a tmpfs under /dev/shm), fresh
// /proc, /run, /tmp and /dev/shm, sets the hostname and becomes the host's init,
// chrooted into the overlay: it runs sshd listening on 127.1.NET.N:22 (every
// 127.0.0.0/8 address is already on lo) and starts it again, with a new boot id, when
// the host reboots. Killing that init (pid 1) ends the host, as does sshd ending without
// a reboot; its upper layer, and so its disk state, stays until Stop.
//
// Every host has its own ed25519 and ecdsa host keys, root and the sudo user "drover"
// authorised for the lab's client key, and external facts in
// /etc/facter/facts.d/lab.txt: role=web for odd N and db for even N, datacenter=dc1 for
// h1,h2,h5,h6,… and dc2 for h3,h4,h7,h8,…, lab_host=hN. Every fifth host (h5, h10, …)
// reports Ubuntu 22.04 in /etc/os-release. The inventories put the hosts into the
// groups web, db, dc1 and dc2 accordingly.
//
// The hosts see one apt repository only, Lab.AptRepo (a flat `file:` repository at the
// same path inside every host, `deb [trusted=yes] file:AptRepo ./`), whose apt lists are
// in place, so `apt-get install demo-web=2.0` works at once and offline. It holds the
// versions in Lab.Packages: demo-web 1.0, 2.0 and 3.0, a sysv service (/etc/init.d/demo-web,
// busybox httpd on the host's address, port 8080) whose GET /health answers 200
// "ok VERSION", except 3.0, which starts but answers 500 "unhealthy"; GET /metrics
// answers Prometheus text (demo_web_up 1, demo_web_version_info{version}, and
// demo_web_healthy: 1, or 0 for 3.0); and demo-tool 1.0 and 1.1, a command without a
// service. The built packages are cached by content hash under /var/cache/drover-lab.
// There is no systemd in a host (its pid 1 is the lab's small init, which runs sshd),
// so `service demo-web start` runs the init script and the init_system fact is sysv.
//
// Optional servers on the lab's network: a puppetserver on 127.1.NET.254
// (StartPuppetServer) and a Prometheus on 127.1.NET.253:9090 scraping every host's
// demo-web each second (Config.Prometheus or StartPrometheus).
package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/crypto/ssh"
)

//go:embed setup.sh
var setupScript string

// Config says what lab to start.
type Config struct {
	Hosts int    // number of hosts, named h1..hN
	Dir   string // state directory ("" = a new temp dir); the lab writes its files here
	// Net is the third octet of the addresses 127.1.NET.i; -1 = pick a free one (flock
	// on a file in /run/drover-lab/) so concurrent test packages never collide; 0 is the
	// demo/default network.
	Net  int
	Logf func(format string, args ...any) // optional
	// Detached hosts outlive the calling process (drover-lab up); otherwise the kernel
	// kills them when it exits, so a crashed test leaves nothing running.
	Detached bool
	// Prometheus starts a real Prometheus (Debian's package) on 127.1.NET.253:9090 that
	// scrapes every host's demo-web metrics (see StartPrometheus); Stop stops it.
	Prometheus bool
	// LeanDpkg gives every host a minimal dpkg database (see leanDpkgStatus) instead of
	// this machine's, so an install costs what it costs on a small server: make bench
	// measures the tools, not dpkg reading a build machine's ~125,000 files.
	LeanDpkg bool
}

// Host is one lab host.
type Host struct {
	Name    string // "h3"
	Address string // "127.1.NET.3"
	Port    int    // 22
}

// Lab is a running lab. Its methods are safe for concurrent use.
type Lab struct {
	Dir          string
	Hosts        []*Host
	SSHConfig    string // ssh_config with a Host entry per host
	KnownHosts   string // each host's keys under "hN,127.1.NET.N"
	Inventory    string // HCL inventory
	InventoryINI string // the same hosts as an Ansible INI inventory
	KeyFile      string // the controller's private key (ed25519, no passphrase)
	SudoUser     string // "drover": a non-root user that may sudo with SudoPassword
	SudoPassword string
	AptRepo      string              // the hosts' apt repository (same path inside them)
	Packages     map[string][]string // the repository's package versions by name, oldest first
	Prometheus   *Prometheus         // nil unless Config.Prometheus
	// LeanPackages is how many packages a host's dpkg database lists with
	// Config.LeanDpkg (0 without: the machine's).
	LeanPackages int

	apt      *aptRepo  // nil for a lab loaded by Open
	lean     *leanDpkg // nil unless Config.LeanDpkg
	net      int
	fsDir    string // tmpfs directory holding the hosts' upper and work dirs
	ownDir   bool   // Dir was created by Start, so Stop removes it
	detached bool
	logf     func(string, ...any)
	lock     *flock.Flock // holds the network; nil for a lab loaded by Open

	mu      sync.Mutex
	procs   map[string]*hostProc // nil entry: host is down
	index   map[string]int       // 1-based host number
	stopped bool
}

// hostProc is one boot of a host.
type hostProc struct {
	unsharePID int
	pid1       int           // the host's init (setup.sh), pid 1 of its pid namespace
	pidNS      string        // readlink of /proc/PID/ns/pid, e.g. "pid:[4026532301]"
	done       chan struct{} // closed when unshare was reaped; nil when not our child (Open)
}

const (
	stateFile    = "state.json"
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Start boots cfg.Hosts hosts and returns when every sshd sends its banner. On error
// nothing of the lab is left behind.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	began := time.Now()
	if err := checkPrereqs(); err != nil {
		return nil, err
	}
	if cfg.Hosts < 1 || cfg.Hosts > 254 {
		return nil, fmt.Errorf("lab: %d hosts: want 1..254", cfg.Hosts)
	}
	l := &Lab{
		SudoUser: "drover",
		detached: cfg.Detached,
		logf:     cfg.Logf,
		procs:    map[string]*hostProc{},
		index:    map[string]int{},
	}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	netN, lock, err := claimNet(ctx, cfg.Net)
	if err != nil {
		return nil, err
	}
	l.net, l.lock = netN, lock
	ok := false
	defer func() {
		if !ok {
			_ = l.Stop()
		}
	}()

	if err := l.makeDirs(cfg.Dir); err != nil {
		return nil, err
	}
	secret := make([]byte, 12)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("lab: password: %w", err)
	}
	l.SudoPassword = hex.EncodeToString(secret)
	acct, err := newAccount(l.SudoUser, l.SudoPassword)
	if err != nil {
		return nil, fmt.Errorf("lab: sudo user: %w", err)
	}
	clientPubKey, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lab: client key: %w", err)
	}
	clientPEM, clientPub, err := marshalKey(clientPriv, clientPubKey)
	if err != nil {
		return nil, fmt.Errorf("lab: client key: %w", err)
	}
	authorized := ssh.MarshalAuthorizedKey(clientPub)

	for i := 1; i <= cfg.Hosts; i++ {
		h := &Host{Name: fmt.Sprintf("h%d", i), Address: hostAddress(netN, i), Port: 22}
		l.Hosts = append(l.Hosts, h)
		l.index[h.Name] = i
	}
	keys := make(map[string]*hostKeys, len(l.Hosts))
	for _, h := range l.Hosts {
		if keys[h.Name], err = newHostKeys(); err != nil {
			return nil, fmt.Errorf("lab: %s: %w", h.Name, err)
		}
	}
	if err := l.writeClientFiles(keys, clientPEM); err != nil {
		return nil, err
	}
	if l.apt, err = buildAptRepo(ctx); err != nil {
		return nil, err
	}
	l.AptRepo, l.Packages = l.apt.dir, packageVersions()
	if cfg.LeanDpkg {
		if l.lean, err = newLeanDpkg(); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
		l.LeanPackages = l.lean.packages
	}

	// Boot concurrently; each boot is a handful of short processes, so a few per core
	// keep both cores busy while others wait for their sshd.
	workers := min(4*runtime.NumCPU(), len(l.Hosts))
	sem := make(chan struct{}, workers)
	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	for i, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				errs[i] = fmt.Errorf("lab: %s: %w", h.Name, ctx.Err())
				return
			}
			upper, work := l.layerDirs(h.Name)
			for _, d := range []string{filepath.Dir(upper), upper, work, l.rootDir(h.Name)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					errs[i] = fmt.Errorf("lab: %s: %w", h.Name, err)
					return
				}
			}
			if err := l.prepareUpper(upper, h, i+1, keys[h.Name], acct, authorized); err != nil {
				errs[i] = fmt.Errorf("lab: %s: prepare: %w", h.Name, err)
				return
			}
			if err := l.prepareApt(upper, h); err != nil {
				errs[i] = fmt.Errorf("lab: %s: apt: %w", h.Name, err)
				return
			}
			errs[i] = l.boot(ctx, h)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Prometheus {
		if l.Prometheus, err = StartPrometheus(ctx, l); err != nil {
			return nil, err
		}
	}
	if err := l.saveState(); err != nil {
		return nil, err
	}
	ok = true
	l.logf("lab: %d hosts up on 127.1.%d.0/24 in %s (dir %s)", len(l.Hosts), netN, time.Since(began).Round(time.Millisecond), l.Dir)
	return l, nil
}

func checkPrereqs() error {
	if os.Geteuid() != 0 {
		return errors.New("lab: needs root (mount and pid namespaces, chroot, overlayfs)")
	}
	for _, tool := range []string{"/usr/sbin/sshd", "unshare", "nsenter", "mount", "chroot", "hostname"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("lab: %s not found (Debian packages openssh-server, util-linux, coreutils, hostname): %w", tool, err)
		}
	}
	if _, err := os.Stat("/dev/shm"); err != nil {
		return fmt.Errorf("lab: need a tmpfs at /dev/shm for the overlay upper dirs: %w", err)
	}
	return nil
}

func (l *Lab) makeDirs(dir string) error {
	var err error
	switch {
	case dir == "":
		if dir, err = os.MkdirTemp("", "drover-lab-"); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		l.ownDir = true
	default:
		if dir, err = filepath.Abs(dir); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			l.ownDir = true
		} else if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
			return fmt.Errorf("lab: %s already holds a lab (stop it first: drover-lab down --dir %s)", dir, dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	l.Dir = dir
	// Upper dirs must not be on the filesystem of / (the lower layer).
	if l.fsDir, err = os.MkdirTemp("/dev/shm", "drover-lab-"); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "hosts"), 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	l.SSHConfig = filepath.Join(dir, "ssh_config")
	l.KnownHosts = filepath.Join(dir, "known_hosts")
	l.Inventory = filepath.Join(dir, "inventory.hcl")
	l.InventoryINI = filepath.Join(dir, "inventory.ini")
	l.KeyFile = filepath.Join(dir, "id_ed25519")
	return nil
}

func (l *Lab) layerDirs(name string) (upper, work string) {
	return filepath.Join(l.fsDir, name, "upper"), filepath.Join(l.fsDir, name, "work")
}

func (l *Lab) rootDir(name string) string { return filepath.Join(l.Dir, "hosts", name, "root") }

func (l *Lab) consoleLog(name string) string {
	return filepath.Join(l.Dir, "hosts", name, "console.log")
}

// Host returns the host called name.
func (l *Lab) Host(name string) (*Host, error) {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return nil, fmt.Errorf("lab: no host %q", name)
}

// Net is the third octet of the lab's addresses.
func (l *Lab) Net() int { return l.net }

// Stop tears the lab down: every host process, the upper dirs and the files it wrote.
// It is idempotent.
func (l *Lab) Stop() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return nil
	}
	if l.Prometheus != nil {
		if err := l.Prometheus.Stop(); err != nil {
			return err
		}
	}
	// Kill every host first, then wait: namespace teardown takes a while per host, and
	// the kernel does it for all of them at once.
	for _, p := range l.procs {
		if p != nil && nsOf(p.pid1) == p.pidNS {
			_ = syscall.Kill(p.pid1, syscall.SIGKILL)
		}
	}
	var errs []error
	for _, h := range l.Hosts {
		if err := l.killLocked(h.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, l.removeFiles())
	}
	if l.lock != nil {
		if err := l.lock.Unlock(); err != nil {
			errs = append(errs, fmt.Errorf("lab: unlock network: %w", err))
		}
	}
	err := errors.Join(errs...)
	if err == nil {
		l.stopped = true
	}
	return err
}

// removeFiles deletes what the lab wrote. The hosts' mount points are removed with a
// non-recursive Remove first: if one were still a mount point of an overlay of /,
// a recursive removal would wipe the machine.
func (l *Lab) removeFiles() error {
	if l.Dir == "" {
		return nil
	}
	for _, h := range l.Hosts {
		if err := os.Remove(l.rootDir(h.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("lab: remove %s mount point (still mounted?): %w", h.Name, err)
		}
	}
	var errs []error
	if l.fsDir != "" {
		errs = append(errs, os.RemoveAll(l.fsDir))
	}
	if l.ownDir {
		errs = append(errs, os.RemoveAll(l.Dir))
	} else {
		for _, f := range []string{l.SSHConfig, l.KnownHosts, l.Inventory, l.InventoryINI, l.KeyFile, filepath.Join(l.Dir, stateFile)} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		errs = append(errs, os.RemoveAll(filepath.Join(l.Dir, "hosts")))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: remove files: %w", err)
	}
	return nil
}

// state is what state.json records so another process (the drover-lab CLI) can
// control a detached lab.
type state struct {
	Net          int                 `json:"net"`
	Dir          string              `json:"dir"`
	FSDir        string              `json:"fs_dir"`
	OwnDir       bool                `json:"own_dir"`
	SSHConfig    string              `json:"ssh_config"`
	KnownHosts   string              `json:"known_hosts"`
	Inventory    string              `json:"inventory"`
	InventoryINI string              `json:"inventory_ini"`
	KeyFile      string              `json:"key_file"`
	SudoUser     string              `json:"sudo_user"`
	SudoPassword string              `json:"sudo_password"`
	AptRepo      string              `json:"apt_repo,omitempty"`
	Packages     map[string][]string `json:"packages,omitempty"`
	Hosts        []hostState         `json:"hosts"`
	Prometheus   *promState          `json:"prometheus,omitempty"`
}

// promState is a detached lab's Prometheus, for drover-lab down.
type promState struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
	Dir     string `json:"dir"`
	PID     int    `json:"pid"`
}

type hostState struct {
	Host
	UnsharePID int    `json:"unshare_pid,omitempty"`
	PID1       int    `json:"pid1,omitempty"`
	PIDNS      string `json:"pid_ns,omitempty"`
}

func (l *Lab) saveState() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.saveStateLocked()
}

func (l *Lab) saveStateLocked() error {
	st := state{
		Net: l.net, Dir: l.Dir, FSDir: l.fsDir, OwnDir: l.ownDir,
		SSHConfig: l.SSHConfig, KnownHosts: l.KnownHosts, Inventory: l.Inventory,
		InventoryINI: l.InventoryINI, KeyFile: l.KeyFile,
		SudoUser: l.SudoUser, SudoPassword: l.SudoPassword,
		AptRepo: l.AptRepo, Packages: l.Packages,
	}
	if p := l.Prometheus; p != nil {
		st.Prometheus = &promState{Address: p.Address, Port: p.Port, Dir: p.Dir, PID: p.pid}
	}
	for _, h := range l.Hosts {
		hs := hostState{Host: *h}
		if p := l.procs[h.Name]; p != nil {
			hs.UnsharePID, hs.PID1, hs.PIDNS = p.unsharePID, p.pid1, p.pidNS
		}
		st.Hosts = append(st.Hosts, hs)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: state: %w", err)
	}
	// 0600: it holds the sudo password.
	tmp := filepath.Join(l.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("lab: state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(l.Dir, stateFile)); err != nil {
		return fmt.Errorf("lab: state: %w", err)
	}
	return nil
}

// Open attaches to a lab another process started (drover-lab up) from its state
// directory. Hosts it boots again are detached too.
func Open(dir string, logf func(string, ...any)) (*Lab, error) {
	if err := checkPrereqs(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("lab: no lab in %s: %w", dir, err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", filepath.Join(dir, stateFile), err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	l := &Lab{
		Dir: st.Dir, SSHConfig: st.SSHConfig, KnownHosts: st.KnownHosts, Inventory: st.Inventory,
		InventoryINI: st.InventoryINI, KeyFile: st.KeyFile, SudoUser: st.SudoUser, SudoPassword: st.SudoPassword,
		AptRepo: st.AptRepo, Packages: st.Packages,
		net: st.Net, fsDir: st.FSDir, ownDir: st.OwnDir, detached: true, logf: logf,
		procs: map[string]*hostProc{}, index: map[string]int{},
	}
	if ps := st.Prometheus; ps != nil {
		l.Prometheus = attachPrometheus(ps.Address, ps.Port, ps.Dir, ps.PID)
	}
	for i, hs := range st.Hosts {
		h := hs.Host
		l.Hosts = append(l.Hosts, &h)
		l.index[h.Name] = i + 1
		if hs.PID1 != 0 && nsOf(hs.PID1) == hs.PIDNS {
			l.procs[h.Name] = &hostProc{unsharePID: hs.UnsharePID, pid1: hs.PID1, pidNS: hs.PIDNS}
		}
	}
	return l, nil
}
