package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/gofrs/flock"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// Host-key refusal reasons carried in HostKeyError.Reason.
const (
	HostKeyChanged     = "changed"     // known_hosts holds a different key for the host
	HostKeyRevoked     = "revoked"     // the key (or its CA) is marked @revoked
	HostKeyUnknown     = "unknown"     // no key is known and the policy is strict
	HostKeyBadCert     = "certificate" // a host certificate failed validation
	HostKeyUnreadable  = "unreadable"  // a known_hosts file could not be read or parsed
	hostKeyMaxFileSize = 64 << 20      // refuse absurd known_hosts files instead of reading them whole
)

// HostKeyError is returned (wrapped, errors.Is(err, ErrHostKey)) for changed,
// revoked or unknown-under-strict keys; its message names the known_hosts file and
// line like OpenSSH does, so the operator can find and fix the entry.
type HostKeyError struct {
	Host        string // the address looked up, e.g. "web1.example:22" or "127.0.0.1:2222"
	File        string // known_hosts file holding the conflicting entry (or where one would be added)
	Line        int    // 0 when no line applies
	KeyType     string // type of the key the server offered, e.g. "ssh-ed25519"
	Fingerprint string // SHA256 fingerprint of the offered key
	Reason      string // HostKeyChanged, HostKeyRevoked, HostKeyUnknown, HostKeyBadCert, HostKeyUnreadable
	Detail      string // extra explanation (certificate errors, searched files)
}

func (e *HostKeyError) Error() string {
	lookup := xknownhosts.Normalize(e.Host)
	offered := fmt.Sprintf("%s key %s", e.KeyType, e.Fingerprint)
	switch e.Reason {
	case HostKeyChanged:
		return fmt.Sprintf("REMOTE HOST IDENTIFICATION HAS CHANGED for %s: the server offered %s, "+
			"but %s:%d holds a different key (someone may be intercepting the connection); "+
			"if the change is expected, remove the old entry with: ssh-keygen -R '%s' -f %s",
			e.Host, offered, e.File, e.Line, lookup, e.File)
	case HostKeyRevoked:
		return fmt.Sprintf("host key for %s is revoked: the server offered %s, marked @revoked in %s:%d",
			e.Host, offered, e.File, e.Line)
	case HostKeyUnknown:
		return fmt.Sprintf("no host key known for %s (server offered %s; searched %s) and "+
			"StrictHostKeyChecking is yes: verify the fingerprint out of band, then add it with "+
			"`ssh-keyscan -p %s %s >> %s`, or connect once with StrictHostKeyChecking=accept-new",
			e.Host, offered, e.Detail, portOf(e.Host), hostOf(e.Host), e.File)
	case HostKeyBadCert:
		return fmt.Sprintf("host certificate for %s rejected (%s): %s", e.Host, offered, e.Detail)
	default:
		return fmt.Sprintf("host key check for %s: %s", e.Host, e.Detail)
	}
}

// Is makes errors.Is(err, ErrHostKey) true for every HostKeyError.
func (e *HostKeyError) Is(target error) bool { return target == ErrHostKey }

func hostOf(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return h
}

func portOf(hostport string) string {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "22"
	}
	return p
}

// hostKeyChecker verifies one hop's host key under that hop's policy. It records
// the refusal so Dial can classify the handshake error even if the ssh package
// rewrapped it.
type hostKeyChecker struct {
	d         *Dialer
	addr      string // host:port as dialed; the known_hosts lookup key
	policy    string
	files     []string // existing known_hosts files that were loaded
	writeFile string   // where accept-new records keys ("" = nowhere)
	db        *knownhosts.HostKeyDB
	idx       *khIndex // nil: use db alone
	err       error
}

// newHostKeyChecker loads every known_hosts file of ep that exists.
func (d *Dialer) newHostKeyChecker(ep *Endpoint, addr string) (*hostKeyChecker, error) {
	hc := &hostKeyChecker{d: d, addr: addr, policy: normalizePolicy(ep.StrictHostKeyChecking)}
	var stamps []fileStamp
	all := append(append([]string{}, ep.UserKnownHostsFiles...), ep.GlobalKnownHostsFiles...)
	for i, f := range all {
		f = expandHome(f)
		if i == 0 && len(ep.UserKnownHostsFiles) > 0 {
			hc.writeFile = f
		}
		fi, err := os.Stat(f)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // OpenSSH silently ignores missing known_hosts files
			}
			return nil, &HostKeyError{Host: addr, File: f, Reason: HostKeyUnreadable, Detail: err.Error()}
		}
		hc.files = append(hc.files, f)
		stamps = append(stamps, stampOf(fi))
	}
	db, idx, err := d.kh.load(hc.files, stamps)
	if err != nil {
		return nil, &HostKeyError{Host: addr, Reason: HostKeyUnreadable,
			Detail: fmt.Sprintf("reading known_hosts %s: %v", strings.Join(hc.files, ", "), err)}
	}
	hc.db, hc.idx = db, idx
	return hc, nil
}

// khCache keeps parsed known_hosts databases between dials. Parsing on every dial
// made a fleet run O(hosts × known_hosts lines): at 10,000 hosts, 10^8 lines read.
// An entry is reused while every file's stamp is unchanged, so a line appended by
// accept-new (or by the operator) is seen by the next dial. The zero value is ready.
type khCache struct {
	mu      sync.Mutex // held while loading too: concurrent first dials parse once
	entries map[string]*khEntry
}

type khEntry struct {
	stamps []fileStamp
	db     *knownhosts.HostKeyDB
	idx    *khIndex // nil: the files need the library's full matching
}

// fileStamp identifies one version of a file: an edit changes the size or the
// change time, a replacement (rename over it) the inode.
type fileStamp struct {
	size         int64
	mtime, ctime int64 // ns
	ino, dev     uint64
}

func stampOf(fi fs.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ctime = st.Ctim.Nano()
		s.ino, s.dev = st.Ino, uint64(st.Dev) // Dev is narrower on some platforms
	}
	return s
}

// load returns the database for files, parsing them only when their stamps
// differ from the cached entry's, and its exact-host index when one applies.
func (c *khCache) load(files []string, stamps []fileStamp) (*knownhosts.HostKeyDB, *khIndex, error) {
	key := strings.Join(files, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && slices.Equal(e.stamps, stamps) {
		return e.db, e.idx, nil
	}
	db, err := knownhosts.NewDB(files...)
	if err != nil {
		return nil, nil, err
	}
	if c.entries == nil {
		c.entries = make(map[string]*khEntry)
	}
	e := &khEntry{stamps: stamps, db: db, idx: buildIndex(files)}
	c.entries[key] = e
	return e.db, e.idx, nil
}

// khIndex maps a host:port to its known_hosts keys. The library scans every line
// for every lookup (twice per dial: algorithms, then the check), which at 10,000
// hosts was a fifth of the controller's CPU. The index is built only when every
// line is a plain entry — exact host names, no wildcards, negations, hashes,
// @cert-authority or @revoked markers — for then a line matches a host exactly
// when one of its names equals it, and the index gives the library's verdict.
type khIndex struct {
	byAddr map[string][]khKey // "host\x00port"
}

type khKey struct {
	key  ssh.PublicKey
	file string
	line int
}

func indexKey(host, port string) string { return host + "\x00" + port }

// buildIndex returns nil when some line needs the library's full matching.
func buildIndex(files []string) *khIndex {
	idx := &khIndex{byAddr: map[string][]khKey{}}
	for _, f := range files {
		b, err := readSmallFile(f)
		if err != nil {
			return nil
		}
		for n, line := range bytes.Split(b, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			fields := bytes.Fields(line)
			if len(fields) < 3 || fields[0][0] == '@' || fields[0][0] == '|' || bytes.ContainsAny(fields[0], "*?!") {
				return nil
			}
			key, _, _, _, err := ssh.ParseAuthorizedKey(bytes.Join(fields[1:], []byte(" ")))
			if err != nil {
				return nil // the library skips such a line; let it decide
			}
			for _, p := range strings.Split(string(fields[0]), ",") {
				if p == "" {
					continue
				}
				host, port, err := net.SplitHostPort(p)
				if err != nil {
					if p[0] == '[' {
						return nil
					}
					host, port = p, "22"
				}
				k := indexKey(host, port)
				idx.byAddr[k] = append(idx.byAddr[k], khKey{key: key, file: f, line: n + 1})
			}
		}
	}
	return idx
}

// lookup returns the keys known for hostport and whether the index can answer.
func (x *khIndex) lookup(hostport string) ([]khKey, bool) {
	if x == nil {
		return nil, false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, false
	}
	return x.byAddr[indexKey(host, port)], true
}

// normalizePolicy maps StrictHostKeyChecking values onto the three behaviours;
// anything unrecognised (yes, ask, "") is strict.
func normalizePolicy(p string) string {
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "accept-new":
		return HostKeyAcceptNew
	case "no", "off", "false":
		return HostKeyOff
	default:
		return HostKeyStrict
	}
}

// algorithms returns the host key algorithms to negotiate: what known_hosts holds
// for this host (so a host with several key types presents the one we know), or,
// for an unknown host, every plain-key algorithm (a certificate could not be
// verified without a CA line, and a plain key can at least be recorded).
func (hc *hostKeyChecker) algorithms() []string {
	if keys, ok := hc.idx.lookup(hc.addr); ok {
		var algos []string
		for _, k := range keys {
			t := k.key.Type()
			if t == ssh.KeyAlgoRSA { // as the library: RSA keys sign with SHA-2 first
				algos = appendNew(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
			}
			algos = appendNew(algos, t)
		}
		if len(algos) > 0 {
			return algos
		}
	} else if algos := hc.db.HostKeyAlgorithms(hc.addr); len(algos) > 0 {
		return algos
	}
	var plain []string
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !strings.Contains(a, "-cert-") {
			plain = append(plain, a)
		}
	}
	return plain
}

// check is the ssh.HostKeyCallback. Only unknown hosts are ever recorded: a
// changed or revoked key is refused under every policy. OpenSSH with
// StrictHostKeyChecking=no merely warns about a changed key (and disables
// password auth); drover refuses, because an unattended fleet-wide push through a
// possible man-in-the-middle is worse than one unreachable host.
func (hc *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := hc.verifyIndexed(hostname, remote, key)
	if err != nil && hc.policy != HostKeyStrict && isUnknown(err) && hc.writeFile != "" {
		err = hc.d.recordHostKey(hc, hostname, remote, key)
	}
	if err != nil {
		hc.err = err
	}
	return err
}

func isUnknown(err error) bool {
	var he *HostKeyError
	return errors.As(err, &he) && he.Reason == HostKeyUnknown
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// verifyIndexed is verify answered from the index when it can: plain keys only
// (a certificate needs the library's CA handling).
func (hc *hostKeyChecker) verifyIndexed(hostname string, remote net.Addr, key ssh.PublicKey) error {
	keys, ok := hc.idx.lookup(hostname)
	if _, cert := key.(*ssh.Certificate); !ok || cert {
		return hc.verify(hc.db, hostname, remote, key)
	}
	offered := key.Marshal()
	for _, k := range keys {
		if bytes.Equal(k.key.Marshal(), offered) {
			return nil
		}
	}
	he := &HostKeyError{Host: hostname, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
	if len(keys) == 0 {
		he.Reason, he.File, he.Detail = HostKeyUnknown, hc.writeFile, strings.Join(hc.files, ", ")
		if he.Detail == "" {
			he.Detail = "no known_hosts file exists"
		}
		if he.File == "" {
			he.File = "~/.ssh/known_hosts"
		}
		return he
	}
	he.Reason, he.File, he.Line = HostKeyChanged, keys[0].file, keys[0].line
	for _, k := range keys { // prefer naming an entry of the same key type, as OpenSSH does
		if k.key.Type() == key.Type() {
			he.File, he.Line = k.file, k.line
			break
		}
	}
	return he
}

// verify translates the knownhosts library's verdict into a HostKeyError.
func (hc *hostKeyChecker) verify(db *knownhosts.HostKeyDB, hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := db.HostKeyCallback()(hostname, remote, key)
	if err == nil {
		return nil
	}
	he := &HostKeyError{Host: hostname, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
	var revoked *xknownhosts.RevokedError
	var keyErr *xknownhosts.KeyError
	switch {
	case errors.As(err, &revoked):
		he.Reason, he.File, he.Line = HostKeyRevoked, revoked.Revoked.Filename, revoked.Revoked.Line
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		he.Reason, he.File, he.Line = HostKeyChanged, keyErr.Want[0].Filename, keyErr.Want[0].Line
		// Prefer naming an entry of the same key type, as OpenSSH does.
		for _, w := range keyErr.Want {
			if w.Key.Type() == key.Type() {
				he.File, he.Line = w.Filename, w.Line
				break
			}
		}
	case errors.As(err, &keyErr):
		he.Reason, he.File = HostKeyUnknown, hc.writeFile
		he.Detail = strings.Join(hc.files, ", ")
		if he.Detail == "" {
			he.Detail = "no known_hosts file exists"
		}
		if he.File == "" {
			he.File = "~/.ssh/known_hosts"
		}
	default:
		// Certificate validation failures come back as plain errors.
		he.Reason, he.Detail = HostKeyBadCert, err.Error()
		if _, ok := key.(*ssh.Certificate); !ok {
			he.Reason = HostKeyUnreadable
		}
	}
	return he
}

// recordHostKey appends an unknown host's key to the first user known_hosts
// file. An in-process mutex plus a file lock serialise writers, and the file is
// re-read under the lock so concurrent dials never write duplicate or conflicting
// lines: the first writer wins and the others verify against its line.
func (d *Dialer) recordHostKey(hc *hostKeyChecker, hostname string, remote net.Addr, key ssh.PublicKey) error {
	d.khMu.Lock()
	defer d.khMu.Unlock()

	file := hc.writeFile
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("record host key for %s: %w", hostname, err)
	}
	lock := flock.New(file, flock.SetPermissions(0o600))
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("record host key for %s: lock %s: %w", hostname, file, err)
	}
	defer lock.Close()
	defer lock.Unlock() //nolint:errcheck // Close releases the lock anyway

	files := append([]string{}, hc.files...)
	if !containsString(files, file) {
		files = append(files, file)
	}
	db, err := knownhosts.NewDB(files...)
	if err != nil {
		return &HostKeyError{Host: hostname, File: file, Reason: HostKeyUnreadable, Detail: err.Error()}
	}
	if err := hc.verify(db, hostname, remote, key); err == nil || !isUnknown(err) {
		return err // another dial recorded it meanwhile (nil), or recorded a different key
	}

	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key for %s: %w", hostname, err)
	}
	defer f.Close()
	line := []byte(knownhosts.Line([]string{hostname}, key) + "\n")
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		// Don't glue our entry onto a last line that lacks its newline.
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte("\n"), line...)
		}
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("record host key for %s in %s: %w", hostname, file, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("record host key for %s in %s: %w", hostname, file, err)
	}
	d.logf("recorded new host key for %s (%s %s) in %s", hostname, key.Type(), ssh.FingerprintSHA256(key), file)
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// expandHome expands a leading "~/" the way OpenSSH does for file options.
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// readSmallFile reads a key or known_hosts-sized file, refusing huge ones.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(f, hostKeyMaxFileSize+1)); err != nil {
		return nil, err
	}
	if buf.Len() > hostKeyMaxFileSize {
		return nil, fmt.Errorf("%s: file too large", path)
	}
	return buf.Bytes(), nil
}
