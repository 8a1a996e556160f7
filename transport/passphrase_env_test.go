package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// An unattended run sets DROVER_KEY_PASSPHRASE; it must be used before the
// interactive callback, which would otherwise fail for want of a terminal.
func TestPassphraseEnvWinsOverCallback(t *testing.T) {
	const pass = "env-passphrase-81"
	f := newFixture(t)
	_, priv := newEd25519(t)
	writeKey(t, f.keyFile, priv, pass)
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	f.srv.authorize(pub)
	t.Setenv(PassphraseEnv, pass)
	asked := false
	d := NewDialer(DialerOptions{AgentSocket: "none", Passphrase: func(string) ([]byte, error) {
		asked = true
		return nil, errors.New("no terminal")
	}})
	c, err := d.Dial(context.Background(), kdfEndpoint(f))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	if asked {
		t.Error("the callback was asked although the environment had the passphrase")
	}
}

// kdfEndpoint is f's endpoint with room for decrypting a passphrase-protected
// key: its bcrypt KDF runs inside the handshake deadline and takes seconds under
// the race detector on a loaded machine.
func kdfEndpoint(f *fixture) *Endpoint {
	ep := f.endpoint()
	ep.ConnectTimeout = 2 * time.Minute
	return ep
}
