package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/drover-sh/drover/inventory"
	"github.com/drover-sh/drover/transport"
)

// target is one selected host and how to reach it.
type target struct {
	host *inventory.Host
	ep   *transport.Endpoint
}

// loadInventory loads o.inventory; a missing or unparsable inventory is bad input.
func loadInventory(ctx context.Context, o *options) (*inventory.Inventory, error) {
	inv, err := inventory.Load(ctx, o.inventory)
	if err != nil {
		return nil, &badInputError{Cmd: o.cmd, Err: fmt.Errorf("loading inventory: %w", err)}
	}
	return inv, nil
}

// loadSSHConfig reads --ssh-config, or OpenSSH's default files like plain ssh.
func loadSSHConfig(o *options) (*transport.SSHConfig, error) {
	var (
		cfg *transport.SSHConfig
		err error
	)
	if o.sshConfig != "" {
		cfg, err = transport.LoadSSHConfig(o.sshConfig)
	} else {
		cfg, err = transport.LoadDefaultSSHConfig()
	}
	if err != nil {
		return nil, &badInputError{Cmd: o.cmd, Err: fmt.Errorf("ssh_config: %w", err)}
	}
	return cfg, nil
}

// selectHosts applies PATTERN and then -I. Selecting nothing is bad input: the user
// named hosts that do not exist, and running on none would hide that.
func selectHosts(inv *inventory.Inventory, pattern string, o *options) ([]*inventory.Host, error) {
	hosts, err := inv.Select(pattern)
	if err != nil {
		return nil, &badInputError{Cmd: o.cmd, Err: fmt.Errorf("selecting hosts: %w", err)}
	}
	if len(hosts) == 0 {
		return nil, badInput(o.cmd, "pattern %q matches no host in %s", pattern, o.inventory)
	}
	if len(o.identities) == 0 {
		return hosts, nil
	}
	var kept []*inventory.Host
	for _, h := range hosts {
		for _, m := range o.identities {
			if m.match(h.Name) {
				kept = append(kept, h)
				break
			}
		}
	}
	if len(kept) == 0 {
		return nil, badInput(o.cmd, "no host of pattern %q matches -I", pattern)
	}
	return kept, nil
}

// overridesFor layers the inventory's settings for h, then the command line's (the
// command line wins, as ssh's -l/-i/-o win over ssh_config).
func overridesFor(h *inventory.Host, o *options) transport.Overrides {
	ov := transport.Overrides{
		HostName:  h.Address,
		Port:      h.Port,
		User:      h.User,
		ProxyJump: h.ProxyJump,
	}
	ov.IdentityFiles = append(ov.IdentityFiles, h.KeyFiles...)
	if o.user != "" {
		ov.User = o.user
	}
	if len(o.keys) > 0 {
		// CLI keys are tried first; the inventory's stay as fallbacks.
		ov.IdentityFiles = append(append([]string{}, o.keys...), h.KeyFiles...)
	}
	if o.knownHosts != "" {
		ov.KnownHostsFiles = []string{o.knownHosts}
	}
	if o.connectTimeoutSet {
		ov.ConnectTimeout = o.connectTimeout
	}
	return ov
}

// resolveHost resolves h's endpoint. Without a ConnectTimeout from the command line or
// ssh_config, drover's default applies: a run must never wait forever on one host.
func resolveHost(cfg *transport.SSHConfig, h *inventory.Host, o *options) (*transport.Endpoint, error) {
	ep, err := cfg.Resolve(h.Name, overridesFor(h, o))
	if err != nil {
		return nil, &badInputError{Cmd: o.cmd, Err: fmt.Errorf("resolving %s: %w", h.Name, err)}
	}
	if ep.ConnectTimeout <= 0 {
		ep.ConnectTimeout = defaultConnectTimeout
	}
	return ep, nil
}

// targets loads everything a host-touching command needs: inventory, selection,
// ssh_config and a resolved endpoint per host. All failures are bad input, before
// anything connects.
func targets(ctx context.Context, o *options, pattern string) ([]target, *transport.SSHConfig, error) {
	inv, err := loadInventory(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	hosts, err := selectHosts(inv, pattern, o)
	if err != nil {
		return nil, nil, err
	}
	return resolveTargets(o, hosts)
}

// resolveTargets reads ssh_config and resolves an endpoint for each of hosts.
func resolveTargets(o *options, hosts []*inventory.Host) ([]target, *transport.SSHConfig, error) {
	cfg, err := loadSSHConfig(o)
	if err != nil {
		return nil, nil, err
	}
	ts := make([]target, 0, len(hosts))
	for _, h := range hosts {
		ep, err := resolveHost(cfg, h, o)
		if err != nil {
			return nil, nil, err
		}
		ts = append(ts, target{host: h, ep: ep})
	}
	return ts, cfg, nil
}

// secrets asks for passwords and key passphrases on the terminal, one prompt at a
// time, each key's passphrase once per run. Without a terminal it refuses instead of
// hanging on a read.
type secrets struct {
	mu    sync.Mutex
	read  func(prompt string) ([]byte, error)
	cache map[string][]byte
}

func newSecrets(read func(string) ([]byte, error)) *secrets {
	return &secrets{read: read, cache: map[string][]byte{}}
}

// errNoTerminal is wrapped when a secret is needed and there is nobody to ask.
var errNoTerminal = errors.New("no terminal to ask on")

func (s *secrets) ask(key, prompt string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cache[key]; ok {
		return v, nil
	}
	if s.read == nil {
		return nil, errNoTerminal
	}
	v, err := s.read(prompt)
	if err != nil {
		return nil, fmt.Errorf("reading from terminal: %w", err)
	}
	s.cache[key] = v
	return v, nil
}

// passphrase is transport.DialerOptions.Passphrase.
func (s *secrets) passphrase(keyFile string) ([]byte, error) {
	v, err := s.ask("key:"+keyFile, fmt.Sprintf("Enter passphrase for key %s: ", keyFile))
	if err != nil {
		return nil, fmt.Errorf("passphrase for %s: %w", keyFile, err)
	}
	return v, nil
}

// becomePassword asks once for --ask-become-pass.
func (s *secrets) becomePassword(o *options) ([]byte, error) {
	v, err := s.ask("become", "BECOME password: ")
	if err != nil {
		return nil, &badInputError{Cmd: o.cmd, Err: fmt.Errorf("--ask-become-pass: %w", err)}
	}
	return v, nil
}
