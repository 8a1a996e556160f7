// Package transport is drover's SSH layer: it resolves how to reach a host the way
// OpenSSH does (ssh_config, inventory overrides), verifies host keys against
// known_hosts, authenticates, and keeps one connection per host over which every
// command, sudo invocation and upload of a run is a separate session.
//
// Packages above it (steps, stages, cmd) use the Runner interface and the types in
// this file; they never import golang.org/x/crypto/ssh themselves.
package transport

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"
)

// Host-key policies, named as OpenSSH's StrictHostKeyChecking values.
const (
	HostKeyStrict    = "yes"        // unknown and changed keys are refused
	HostKeyAcceptNew = "accept-new" // unknown keys are recorded, changed keys refused
	HostKeyOff       = "no"         // unknown keys recorded, changed keys still refused (as OpenSSH)
)

// Endpoint is the fully resolved way to reach one host: what `drover inventory show`
// prints and what the dialer uses. Field meanings follow `ssh -G`.
type Endpoint struct {
	Alias                 string        `json:"alias"`    // the name it was resolved for (inventory host name)
	HostName              string        `json:"hostname"` // address to dial
	Port                  int           `json:"port"`
	User                  string        `json:"user"`
	IdentityFiles         []string      `json:"identity_files"` // expanded (~, %h %u %p %r)
	CertificateFiles      []string      `json:"certificate_files,omitempty"`
	IdentitiesOnly        bool          `json:"identities_only"`
	IdentityAgent         string        `json:"identity_agent,omitempty"` // socket path; "none" disables the agent
	ProxyJump             []string      `json:"proxy_jump,omitempty"`     // hops in order, each "[user@]host[:port]" as written
	UserKnownHostsFiles   []string      `json:"user_known_hosts_files"`
	GlobalKnownHostsFiles []string      `json:"global_known_hosts_files,omitempty"`
	StrictHostKeyChecking string        `json:"strict_host_key_checking"` // yes | accept-new | no (ask is treated as yes)
	ConnectTimeout        time.Duration `json:"connect_timeout"`          // 0: none (the caller's context still applies)
	ServerAliveInterval   time.Duration `json:"server_alive_interval"`
	ServerAliveCountMax   int           `json:"server_alive_count_max"`
}

// Overrides are per-host settings from the inventory or the command line. Like
// OpenSSH's command-line options they win over ssh_config; zero values mean "not set".
type Overrides struct {
	HostName              string
	Port                  int
	User                  string
	IdentityFiles         []string // tried before those from ssh_config
	ProxyJump             string   // comma-separated hops, or "none"
	KnownHostsFiles       []string // replaces UserKnownHostsFile
	StrictHostKeyChecking string
	ConnectTimeout        time.Duration
}

// Become runs a command through sudo as another user (root when User is empty).
// The password, when set, is written to sudo's stdin (sudo -S) and never appears on
// a command line, in output or in errors.
type Become struct {
	User     string
	Password []byte
}

// Command is one remote command. Cmd is a shell command line run by the login shell
// of the remote user; callers quote untrusted values (facts, inventory vars) before
// they build it.
type Command struct {
	Cmd       string
	Stdin     io.Reader     // optional
	Stdout    io.Writer     // optional: output is streamed here as it arrives, as well as captured
	Stderr    io.Writer     // optional
	MaxOutput int           // bytes captured per stream; 0 means DefaultMaxOutput; the rest is counted and dropped
	Timeout   time.Duration // 0: only ctx bounds it
	Become    *Become       // nil: run as the connecting user
}

// DefaultMaxOutput is how much of each stream a Result keeps when Command.MaxOutput is 0.
const DefaultMaxOutput = 1 << 20

// Result is what a finished command left behind.
type Result struct {
	ExitCode  int    // -1 when the command died by a signal or the session was lost
	Signal    string // e.g. "KILL", when the remote process died by a signal
	Stdout    []byte
	Stderr    []byte
	Truncated bool // some output exceeded MaxOutput and was dropped
	Duration  time.Duration
}

// Runner is what steps and stages need from a host connection.
type Runner interface {
	// Run executes cmd in a new session on the host's shared connection. An error is
	// returned only when the command could not be run or finish (connection lost,
	// timeout, context cancelled); a non-zero exit status is a Result, not an error.
	Run(ctx context.Context, cmd *Command) (*Result, error)
	// Upload writes src to dst on the host with the given mode, atomically (temp file
	// then rename), without needing SFTP on the target.
	Upload(ctx context.Context, src io.Reader, dst string, mode fs.FileMode, become *Become) error
	Close() error
}

// Error classes callers branch on. Wrapped errors keep the detail; use errors.Is.
var (
	// ErrUnreachable: TCP connect refused or timed out, no SSH banner, handshake
	// stalled past the connect timeout, or a jump host could not be reached.
	ErrUnreachable = errors.New("host unreachable")
	// ErrHostKey: the host key is unknown under a strict policy, changed, or revoked.
	ErrHostKey = errors.New("host key verification failed")
	// ErrAuth: the server refused every authentication method offered.
	ErrAuth = errors.New("authentication failed")
	// ErrTimeout: a command ran past its timeout.
	ErrTimeout = errors.New("command timed out")
	// ErrConnLost: the connection dropped while a command was running.
	ErrConnLost = errors.New("connection lost")
)
