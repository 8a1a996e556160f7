package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// PassphraseEnv names the environment variable holding the passphrase of
// protected keys; when set it is used before DialerOptions.Passphrase is asked.
const PassphraseEnv = "DROVER_KEY_PASSPHRASE"

// defaultIdentityNames are the files OpenSSH tries when none is configured; when
// one of these is missing it is skipped silently, like OpenSSH does.
var defaultIdentityNames = []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"}

// authPlan is everything one handshake offers, plus the notes that explain an
// authentication failure (which keys were skipped and why). Notes never contain
// secrets.
type authPlan struct {
	signers   []ssh.Signer
	sources   []string // human description per signer, for error messages
	notes     []string
	agentConn net.Conn
}

func (a *authPlan) close() {
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}

func (a *authPlan) add(s ssh.Signer, source string) {
	blob := s.PublicKey().Marshal()
	for _, have := range a.signers {
		if bytes.Equal(have.PublicKey().Marshal(), blob) {
			return
		}
	}
	a.signers = append(a.signers, s)
	a.sources = append(a.sources, source)
}

// fileIdentity is one IdentityFiles entry after loading.
type fileIdentity struct {
	path   string
	pub    ssh.PublicKey // known even when the private key could not be decrypted
	signer ssh.Signer    // nil when unusable
	certs  []*ssh.Certificate
}

// buildAuth collects the agent keys and key files ep allows, in OpenSSH's spirit:
// agent keys first (only those matching IdentityFiles under IdentitiesOnly),
// then key files, each with its certificate tried before the plain key.
func (d *Dialer) buildAuth(ep *Endpoint) *authPlan {
	plan := &authPlan{}
	var ids []*fileIdentity
	for _, p := range ep.IdentityFiles {
		if id := d.loadIdentity(expandHome(p), plan); id != nil {
			ids = append(ids, id)
		}
	}
	extraCerts := d.loadCertFiles(ep.CertificateFiles, plan)

	agentSigners := d.agentSigners(ep, plan)
	if ep.IdentitiesOnly {
		var kept []ssh.Signer
		for _, id := range ids {
			for _, s := range agentSigners {
				if keyMatches(s.PublicKey(), id.pub) {
					kept = append(kept, s)
				}
			}
		}
		agentSigners = kept
	}
	for _, s := range agentSigners {
		plan.add(s, "agent key "+ssh.FingerprintSHA256(s.PublicKey()))
	}

	// Certificates given by CertificateFiles pair with any private key we hold.
	all := append([]ssh.Signer{}, agentSigners...)
	for _, id := range ids {
		if id.signer != nil {
			all = append(all, id.signer)
		}
	}
	for _, c := range extraCerts {
		paired := false
		for _, s := range all {
			if keyMatches(s.PublicKey(), c.cert.Key) {
				if cs, err := ssh.NewCertSigner(c.cert, s); err == nil {
					plan.add(cs, "certificate "+c.path)
					paired = true
					break
				}
			}
		}
		if !paired {
			plan.notes = append(plan.notes, fmt.Sprintf("certificate %s: no matching private key", c.path))
		}
	}
	for _, id := range ids {
		if id.signer == nil {
			continue
		}
		for _, c := range id.certs {
			if cs, err := ssh.NewCertSigner(c, id.signer); err == nil {
				plan.add(cs, "certificate "+id.path+"-cert.pub")
			} else {
				plan.notes = append(plan.notes, fmt.Sprintf("certificate %s-cert.pub: %v", id.path, err))
			}
		}
		plan.add(id.signer, "key "+id.path)
	}
	return plan
}

// keyMatches compares two keys, looking through certificates to the key they certify.
func keyMatches(a, b ssh.PublicKey) bool {
	if a == nil || b == nil {
		return false
	}
	if c, ok := a.(*ssh.Certificate); ok {
		a = c.Key
	}
	if c, ok := b.(*ssh.Certificate); ok {
		b = c.Key
	}
	return bytes.Equal(a.Marshal(), b.Marshal())
}

func isDefaultIdentity(path string) bool {
	home, err := os.UserHomeDir()
	if err != nil {
		return false
	}
	for _, n := range defaultIdentityNames {
		if path == filepath.Join(home, ".ssh", n) {
			return true
		}
	}
	return false
}

// loadIdentity reads one key file (and its KEY-cert.pub), decrypting it with the
// passphrase source when needed. Decrypted keys are cached on the Dialer so an
// operator is asked once per key, not once per host.
func (d *Dialer) loadIdentity(path string, plan *authPlan) *fileIdentity {
	id := &fileIdentity{path: path}
	if c, err := readCert(path + "-cert.pub"); err == nil {
		id.certs = append(id.certs, c)
	} else if !errors.Is(err, fs.ErrNotExist) {
		plan.notes = append(plan.notes, fmt.Sprintf("certificate %s-cert.pub: %v", path, err))
	}

	d.keyMu.Lock()
	cached, ok := d.keyCache[path]
	d.keyMu.Unlock()
	if ok {
		id.signer, id.pub = cached, cached.PublicKey()
		return id
	}

	pem, err := readSmallFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if !isDefaultIdentity(path) {
				plan.notes = append(plan.notes, fmt.Sprintf("identity file %s does not exist", path))
			}
			return nil
		}
		plan.notes = append(plan.notes, fmt.Sprintf("identity file %s: %v", path, err))
		return nil
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		id.pub = missing.PublicKey
		if id.pub == nil {
			id.pub = readPub(path + ".pub")
		}
		signer, err = d.decrypt(path, pem)
	}
	if err != nil {
		plan.notes = append(plan.notes, fmt.Sprintf("identity file %s: %v", path, err))
		if id.pub == nil {
			id.pub = readPub(path + ".pub")
		}
		return id // keep the public key: IdentitiesOnly may still match it in the agent
	}
	id.signer, id.pub = signer, signer.PublicKey()
	d.keyMu.Lock()
	d.keyCache[path] = signer
	d.keyMu.Unlock()
	return id
}

// decrypt asks for the passphrase of a protected key; the passphrase is wiped
// after use and never appears in errors.
func (d *Dialer) decrypt(path string, pem []byte) (ssh.Signer, error) {
	var pass []byte
	switch {
	case os.Getenv(PassphraseEnv) != "":
		// The environment wins over the callback: an unattended run (cron, CI) sets
		// it precisely because nobody is at a terminal to answer a prompt.
		pass = []byte(os.Getenv(PassphraseEnv))
	case d.opts.Passphrase != nil:
		p, err := d.opts.Passphrase(path)
		if err != nil {
			return nil, fmt.Errorf("key is passphrase-protected and reading the passphrase failed: %w", err)
		}
		// A copy: the callback may keep its answer for the next key, and pass is wiped.
		pass = append([]byte(nil), p...)
	default:
		return nil, fmt.Errorf("key is passphrase-protected and no passphrase is available "+
			"(load it into ssh-agent or set %s)", PassphraseEnv)
	}
	defer clear(pass)
	if len(pass) == 0 {
		return nil, errors.New("key is passphrase-protected and the passphrase given is empty")
	}
	s, err := ssh.ParsePrivateKeyWithPassphrase(pem, pass)
	if err != nil {
		// Don't echo library text that could one day include key material.
		return nil, errors.New("cannot decrypt key: wrong passphrase or unsupported key format")
	}
	return s, nil
}

func readPub(path string) ssh.PublicKey {
	b, err := readSmallFile(path)
	if err != nil {
		return nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return k
}

func readCert(path string) (*ssh.Certificate, error) {
	b, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	c, ok := k.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("not an OpenSSH certificate")
	}
	return c, nil
}

type certFile struct {
	path string
	cert *ssh.Certificate
}

func (d *Dialer) loadCertFiles(paths []string, plan *authPlan) []certFile {
	var out []certFile
	for _, p := range paths {
		p = expandHome(p)
		c, err := readCert(p)
		if err != nil {
			plan.notes = append(plan.notes, fmt.Sprintf("certificate %s: %v", p, err))
			continue
		}
		out = append(out, certFile{path: p, cert: c})
	}
	return out
}

// agentSocket picks the agent: DialerOptions first (the command line), then the
// host's IdentityAgent, then $SSH_AUTH_SOCK. "none" disables the agent.
func (d *Dialer) agentSocket(ep *Endpoint) string {
	sock := d.opts.AgentSocket
	if sock == "" {
		sock = ep.IdentityAgent
	}
	if sock == "SSH_AUTH_SOCK" || sock == "$SSH_AUTH_SOCK" {
		sock = ""
	} else if strings.HasPrefix(sock, "$") {
		sock = os.Getenv(sock[1:])
	}
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock == "none" {
		return ""
	}
	return expandHome(sock)
}

func (d *Dialer) agentSigners(ep *Endpoint, plan *authPlan) []ssh.Signer {
	sock := d.agentSocket(ep)
	if sock == "" {
		return nil
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		plan.notes = append(plan.notes, fmt.Sprintf("ssh-agent at %s: %v", sock, err))
		return nil
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		plan.notes = append(plan.notes, fmt.Sprintf("ssh-agent at %s: %v", sock, err))
		return nil
	}
	// The connection must stay open until the handshake has signed with it.
	plan.agentConn = conn
	return signers
}

// authError explains a refused authentication: what was offered and what was
// skipped, so "which key?" needs no -vvv.
func (a *authPlan) describe() string {
	var b strings.Builder
	if len(a.sources) == 0 {
		b.WriteString("no usable identity (no agent keys, no readable key files)")
	} else {
		b.WriteString("offered: " + strings.Join(a.sources, ", "))
	}
	if len(a.notes) > 0 {
		b.WriteString("; skipped: " + strings.Join(a.notes, "; "))
	}
	return b.String()
}
