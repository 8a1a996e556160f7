package lab

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys is one host's key pair set: ed25519 and ecdsa, so clients must negotiate.
type hostKeys struct {
	ed25519Priv, ecdsaPriv []byte // OpenSSH PEM
	ed25519Pub, ecdsaPub   ssh.PublicKey
}

func newHostKeys() (*hostKeys, error) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 host key: %w", err)
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ecdsa host key: %w", err)
	}
	k := &hostKeys{}
	if k.ed25519Priv, k.ed25519Pub, err = marshalKey(edPriv, edPriv.Public()); err != nil {
		return nil, err
	}
	if k.ecdsaPriv, k.ecdsaPub, err = marshalKey(ecPriv, ecPriv.Public()); err != nil {
		return nil, err
	}
	return k, nil
}

func marshalKey(priv, pub any) ([]byte, ssh.PublicKey, error) {
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, fmt.Errorf("marshal private key: %w", err)
	}
	p, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(block), p, nil
}

// writeHostKeys stores the keys under etc/ssh of root (an upper dir before boot, or
// /proc/PID/root of a running host so the write goes through its overlay).
func writeHostKeys(root string, k *hostKeys) error {
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"etc/ssh/ssh_host_ed25519_key", k.ed25519Priv, 0o600},
		{"etc/ssh/ssh_host_ed25519_key.pub", ssh.MarshalAuthorizedKey(k.ed25519Pub), 0o644},
		{"etc/ssh/ssh_host_ecdsa_key", k.ecdsaPriv, 0o600},
		{"etc/ssh/ssh_host_ecdsa_key.pub", ssh.MarshalAuthorizedKey(k.ecdsaPub), 0o644},
	}
	for _, f := range files {
		if err := writeFileLike(root, f.name, f.data, f.mode, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// account is the sudo user's identity, shared by every host of a lab.
type account struct {
	name     string
	uid, gid int
	files    map[string][]byte // etc/passwd, etc/group, etc/shadow, etc/gshadow with the user added
}

// newAccount derives the account database files from the machine's own (the overlay's
// lower layer) with the sudo user appended, so every host gets them without running
// useradd/chpasswd in each.
func newAccount(name, password string) (*account, error) {
	a := &account{name: name, files: map[string][]byte{}}
	read := func(f string) ([][]string, error) {
		b, err := os.ReadFile("/" + f)
		if err != nil {
			return nil, fmt.Errorf("read /%s: %w", f, err)
		}
		var rows [][]string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if fields[0] == name || sc.Text() == "" {
				continue // replaced below
			}
			rows = append(rows, fields)
		}
		return rows, sc.Err()
	}
	passwd, err := read("etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := read("etc/group")
	if err != nil {
		return nil, err
	}
	// One id free as both uid and gid, as useradd picks for a user with its own group.
	a.uid = freeID(append(passwd, group...), 2)
	a.gid = a.uid
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	hash := sha512Crypt(password, hex.EncodeToString(salt))
	add := map[string]string{
		"etc/passwd":  fmt.Sprintf("%s:x:%d:%d:drover lab sudo user:/home/%s:/bin/bash", name, a.uid, a.gid, name),
		"etc/group":   fmt.Sprintf("%s:x:%d:", name, a.gid),
		"etc/shadow":  fmt.Sprintf("%s:%s:19000:0:99999:7:::", name, hash),
		"etc/gshadow": fmt.Sprintf("%s:!::", name),
	}
	for f, line := range add {
		rows, err := read(f)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		for _, r := range rows {
			buf.WriteString(strings.Join(r, ":") + "\n")
		}
		buf.WriteString(line + "\n")
		a.files[f] = buf.Bytes()
	}
	return a, nil
}

// freeID returns the lowest id >= 2000 not used in column col of the rows.
func freeID(rows [][]string, col int) int {
	used := map[int]bool{}
	for _, r := range rows {
		if len(r) > col {
			if n, err := strconv.Atoi(r[col]); err == nil {
				used[n] = true
			}
		}
	}
	id := 2000
	for used[id] {
		id++
	}
	return id
}

// hostFacts are the external facts (Facter's facts.d key=value format) of host i.
// role alternates web/db; datacenter alternates every two hosts, so every role appears
// in every datacenter.
func hostFacts(name string, i int) (role, dc string) {
	role = "web"
	if i%2 == 0 {
		role = "db"
	}
	dc = "dc1"
	if (i-1)/2%2 == 1 {
		dc = "dc2"
	}
	return role, dc
}

const ubuntuOSRelease = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=jammy
`

const ubuntuLSBRelease = `DISTRIB_ID=Ubuntu
DISTRIB_RELEASE=22.04
DISTRIB_CODENAME=jammy
DISTRIB_DESCRIPTION="Ubuntu 22.04.4 LTS"
`

// rootBashrc is Debian's stock /root/.bashrc (base-files dot.bashrc), all comments.
const rootBashrc = `# ~/.bashrc: executed by bash(1) for non-login shells.
# drover lab: Debian's stock root .bashrc, so logins do not run the controller's.
`

func sshdConfig(addr string) string {
	return fmt.Sprintf(`# drover lab host sshd configuration
ListenAddress %s:22
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
# PAM sessions add nothing inside a chroot and slow every login down.
UsePAM no
UseDNS no
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`, addr)
}

// rebootShim replaces reboot and shutdown inside a lab host: the host is a namespace on
// this machine, so the real ones (systemctl here) must never run. It asks the host's init
// (setup.sh) to restart the host: sshd stops, every process is killed, /run, /tmp and
// /dev/shm start empty and the boot id changes. Any arguments (-r now, a message) are
// accepted; halting is a reboot too, as the lab has no way to stay down on its own.
const rebootShim = `#!/bin/sh
# drover lab: restart this lab host (never the machine it runs on).
touch /run/drover-lab-reboot || exit 1
pid=$(cat /run/sshd.pid 2>/dev/null) || { echo "reboot: no sshd pid file" >&2; exit 1; }
echo "drover lab: rebooting $(hostname)" >&2
exec kill -TERM "$pid"
`

// rebootShimPaths are the host paths the shim goes to: reboot and shutdown in
// /usr/sbin, and in /sbin too when /sbin is a directory of its own (not merged /usr).
// Writing through a /sbin symlink would create a real sbin directory in the upper layer
// that hides the machine's.
func rebootShimPaths() []string {
	paths := []string{"usr/sbin/reboot", "usr/sbin/shutdown"}
	if fi, err := os.Lstat("/sbin"); err == nil && fi.IsDir() {
		paths = append(paths, "sbin/reboot", "sbin/shutdown")
	}
	return paths
}

// prepareUpper writes everything a host needs into its (empty) upper dir before its
// first boot.
func (l *Lab) prepareUpper(upper string, h *Host, index int, keys *hostKeys, acct *account, clientPub []byte) error {
	role, dc := hostFacts(h.Name, index)
	type file struct {
		name     string
		data     []byte
		mode     os.FileMode
		uid, gid int
	}
	files := []file{
		{"etc/hostname", []byte(h.Name + "\n"), 0o644, 0, 0},
		{"etc/hosts", fmt.Appendf(nil, "127.0.0.1\tlocalhost\n%s\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", h.Address, h.Name), 0o644, 0, 0},
		{"etc/ssh/sshd_config", []byte(sshdConfig(h.Address)), 0o644, 0, 0},
		{"root/.ssh/authorized_keys", clientPub, 0o600, 0, 0},
		// Debian's bash sources ~/.bashrc for every command run over ssh; the machine's own
		// /root/.bashrc (a developer's pyenv init, say) cost ~0.9 s per login in every host.
		// A host gets Debian's stock root .bashrc, as a fresh machine has.
		{"root/.bashrc", []byte(rootBashrc), 0o644, 0, 0},
		{"home/" + acct.name + "/.ssh/authorized_keys", clientPub, 0o600, acct.uid, acct.gid},
		{"etc/sudoers.d/drover-lab", fmt.Appendf(nil, "Defaults:%[1]s lecture=never\n%[1]s ALL=(ALL:ALL) ALL\n", acct.name), 0o440, 0, 0},
		{"etc/facter/facts.d/lab.txt", fmt.Appendf(nil, "role=%s\ndatacenter=%s\nlab_host=%s\n", role, dc, h.Name), 0o644, 0, 0},
	}
	for _, path := range rebootShimPaths() {
		files = append(files, file{path, []byte(rebootShim), 0o755, 0, 0})
	}
	for name, data := range acct.files {
		uid, gid, mode := ownerOf("/" + name)
		files = append(files, file{name, data, mode, uid, gid})
	}
	if index%5 == 0 {
		files = append(files,
			file{"etc/os-release", []byte(ubuntuOSRelease), 0o644, 0, 0},
			file{"usr/lib/os-release", []byte(ubuntuOSRelease), 0o644, 0, 0},
			file{"etc/lsb-release", []byte(ubuntuLSBRelease), 0o644, 0, 0},
			file{"etc/debian_version", []byte("bookworm/sid\n"), 0o644, 0, 0},
		)
	}
	// The home dir must exist with the user's ownership before its .ssh is created.
	if err := mkdirLike(upper, "home"); err != nil {
		return err
	}
	for _, d := range []string{"home/" + acct.name, "home/" + acct.name + "/.ssh"} {
		mode := os.FileMode(0o755)
		if strings.HasSuffix(d, ".ssh") {
			mode = 0o700
		}
		if err := mkdirOwned(filepath.Join(upper, d), mode, acct.uid, acct.gid); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := writeFileLike(upper, f.name, f.data, f.mode, f.uid, f.gid); err != nil {
			return err
		}
	}
	return writeHostKeys(upper, keys)
}

// ownerOf returns a file's owner and permissions on the machine (root 0644 when absent).
func ownerOf(path string) (uid, gid int, mode os.FileMode) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, 0, 0o644
	}
	return int(st.Uid), int(st.Gid), os.FileMode(st.Mode & 0o777)
}

// mkdirLike creates rel's directories under root, each with the owner and mode the
// same directory has on the machine: an upper-layer directory's attributes replace the
// lower one's in the merged view (/root must stay 0700, /etc/sudoers.d 0750).
func mkdirLike(root, rel string) error {
	parts := strings.Split(filepath.Clean(rel), string(filepath.Separator))
	cur := ""
	for _, p := range parts {
		cur = filepath.Join(cur, p)
		dst := filepath.Join(root, cur)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		var st syscall.Stat_t
		mode, uid, gid := os.FileMode(0o755), 0, 0
		if err := syscall.Stat("/"+cur, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			mode, uid, gid = os.FileMode(st.Mode&0o777), int(st.Uid), int(st.Gid)
			if st.Mode&syscall.S_ISVTX != 0 {
				mode |= os.ModeSticky
			}
		}
		if err := mkdirOwned(dst, mode, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func mkdirOwned(path string, mode os.FileMode, uid, gid int) error {
	if err := os.Mkdir(path, mode); err != nil && !os.IsExist(err) {
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	// Mkdir is subject to the umask; set the exact mode.
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// writeFileLike writes root/rel (replacing a symlink there rather than following it).
func writeFileLike(root, rel string, data []byte, mode os.FileMode, uid, gid int) error {
	if err := mkdirLike(root, filepath.Dir(rel)); err != nil {
		return err
	}
	path := filepath.Join(root, rel)
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("replace symlink %s: %w", path, err)
		}
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// writeClientFiles writes the controller-side files: key, ssh_config, known_hosts and
// both inventories.
func (l *Lab) writeClientFiles(keys map[string]*hostKeys, clientPriv []byte) error {
	if err := os.WriteFile(l.KeyFile, clientPriv, 0o600); err != nil {
		return fmt.Errorf("lab: write key: %w", err)
	}
	var cfg, kh, hcl, ini bytes.Buffer
	cfg.WriteString("# drover lab: one entry per host. Generated; rewritten by every start.\n")
	fmt.Fprintf(&hcl, "# drover lab inventory (network 127.1.%d.0/24). Generated.\n", l.net)
	fmt.Fprintf(&hcl, "defaults {\n  user = \"root\"\n  port = 22\n  key  = %q\n}\n\n", l.KeyFile)
	fmt.Fprintf(&ini, "# drover lab inventory (network 127.1.%d.0/24). Generated.\n", l.net)
	groups := map[string][]string{}
	addGroup := func(g, h string) { groups[g] = append(groups[g], h) }
	for i, h := range l.Hosts {
		fmt.Fprintf(&cfg, "\nHost %s\n  HostName %s\n  User root\n  Port %d\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n",
			h.Name, h.Address, h.Port, l.KeyFile, l.KnownHosts)
		k := keys[h.Name]
		for _, pub := range []ssh.PublicKey{k.ed25519Pub, k.ecdsaPub} {
			kh.WriteString(knownhosts.Line([]string{h.Name, h.Address}, pub) + "\n")
		}
		fmt.Fprintf(&hcl, "host %q {\n  address = %q\n}\n", h.Name, h.Address)
		fmt.Fprintf(&ini, "%s ansible_host=%s ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s\n",
			h.Name, h.Address, h.Port, l.KeyFile)
		role, dc := hostFacts(h.Name, i+1)
		addGroup(role, h.Name)
		addGroup(dc, h.Name)
	}
	// Roles first, then datacenters, each in a fixed order.
	for _, g := range []string{"web", "db", "dc1", "dc2"} {
		if len(groups[g]) == 0 {
			continue
		}
		q := make([]string, len(groups[g]))
		for i, h := range groups[g] {
			q[i] = strconv.Quote(h)
		}
		fmt.Fprintf(&hcl, "\ngroup %q {\n  hosts = [%s]\n}\n", g, strings.Join(q, ", "))
		fmt.Fprintf(&ini, "\n[%s]\n%s\n", g, strings.Join(groups[g], "\n"))
	}
	fmt.Fprintf(&ini, "\n[all:vars]\nansible_ssh_common_args='-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'\n", l.KnownHosts)
	for path, b := range map[string][]byte{l.SSHConfig: cfg.Bytes(), l.KnownHosts: kh.Bytes(), l.Inventory: hcl.Bytes(), l.InventoryINI: ini.Bytes()} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("lab: write %s: %w", path, err)
		}
	}
	return nil
}
