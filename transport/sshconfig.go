package transport

// This file resolves OpenSSH client configuration (ssh_config) into an Endpoint,
// agreeing with `ssh -G` from OpenSSH 9.2 for the keys drover uses.
//
// Deliberate differences from ssh(1), each because drover reads configs it did not
// write and must never act on them beyond computing an Endpoint:
//   - Unknown keywords are ignored instead of being fatal (ssh needs IgnoreUnknown).
//   - `Match exec` is never executed: the criterion is false (so `!exec` is true).
//     Running commands from a config while resolving an inventory would be a
//     surprising side effect and a code-execution path.
//   - `Match canonical` and `Match final` are false and there is a single pass:
//     drover does no hostname canonicalisation, so there is no second pass. This is
//     exactly what ssh does on its first pass; a config relying on `Match final`
//     may differ from ssh.
//   - An Include cycle is an error naming the file and line (ssh stops at depth 16).
//   - The alias, Overrides.HostName and Overrides.User are checked for shell/control
//     characters like ssh checks names given on its command line, since inventory
//     values are untrusted.

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	maxIncludeDepth  = 16  // READCONF_MAX_DEPTH in readconf.c
	maxIdentityFiles = 100 // SSH_MAX_IDENTITY_FILES
	maxHostsFiles    = 16  // SSH_MAX_HOSTS_FILES
	maxLineLength    = 64 << 10
)

// SSHConfig is a parsed client configuration (user file, optionally the system file).
type SSHConfig struct {
	env   sshEnv
	files []*cfgFile // read in order, each starting with every line active
}

// sshEnv is what resolution needs from the local machine; tests inject it.
type sshEnv struct {
	home      string // ~ (ssh uses the passwd entry, drover os.UserHomeDir)
	localUser string // %u, default remote user, Match localuser
	uid       int    // %i and the owner check on included files
	localHost string // %l (full) and %L (up to the first dot)
	sysDir    string // base of relative Includes in the system file
	sysConfig string // the system-wide file LoadDefaultSSHConfig reads
	getenv    func(string) (string, bool)
}

func defaultSSHEnv() (sshEnv, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return sshEnv{}, fmt.Errorf("ssh config: home directory: %w", err)
	}
	u, err := user.Current()
	if err != nil {
		return sshEnv{}, fmt.Errorf("ssh config: local user: %w", err)
	}
	hn, err := os.Hostname()
	if err != nil {
		return sshEnv{}, fmt.Errorf("ssh config: local host name: %w", err)
	}
	return sshEnv{
		home:      home,
		localUser: u.Username,
		uid:       os.Getuid(),
		localHost: hn,
		sysDir:    "/etc/ssh",
		sysConfig: "/etc/ssh/ssh_config",
		getenv:    os.LookupEnv,
	}, nil
}

// cfgFile is one parsed file; Include directives hold the files they pulled in.
type cfgFile struct {
	path     string
	userConf bool // a user file (or included from one): ~ allowed, entries "user provided"
	lines    []*directive
}

type directive struct {
	file    string
	line    int
	keyword string   // lowercased
	args    []string // after quote removal
	raw     string   // rest of the line after the keyword (ProxyCommand keeps it verbatim)

	hosts    []hostPattern    // Host
	criteria []matchCriterion // Match
	includes []*cfgFile       // Include
}

type hostPattern struct {
	pattern string
	negated bool
}

type matchCriterion struct {
	attr    string // lowercased: all, canonical, final, host, originalhost, user, localuser, exec
	arg     string
	negated bool
}

// configError names the file and line like ssh does: "path line N: msg".
func configError(file string, line int, format string, a ...any) error {
	return fmt.Errorf("ssh config %s line %d: %s", file, line, fmt.Sprintf(format, a...))
}

// LoadSSHConfig reads one file as `ssh -F path` does (the system-wide file is NOT read).
// path "none" gives an empty config (all defaults).
func LoadSSHConfig(path string) (*SSHConfig, error) {
	env, err := defaultSSHEnv()
	if err != nil {
		return nil, err
	}
	return loadSSHConfigEnv(path, env)
}

func loadSSHConfigEnv(path string, env sshEnv) (*SSHConfig, error) {
	c := &SSHConfig{env: env}
	if strings.EqualFold(path, "none") {
		return c, nil
	}
	// Like ssh -F: treated as a user file, no ownership check on the file itself.
	f, err := c.parseFile(path, true, false, nil)
	if err != nil {
		return nil, err
	}
	c.files = append(c.files, f)
	return c, nil
}

// LoadDefaultSSHConfig reads ~/.ssh/config (if present) then /etc/ssh/ssh_config (if present),
// as plain `ssh` does.
func LoadDefaultSSHConfig() (*SSHConfig, error) {
	env, err := defaultSSHEnv()
	if err != nil {
		return nil, err
	}
	return loadDefaultSSHConfigEnv(env)
}

func loadDefaultSSHConfigEnv(env sshEnv) (*SSHConfig, error) {
	c := &SSHConfig{env: env}
	for _, top := range []struct {
		path     string
		user     bool
		checkOwn bool
	}{
		{filepath.Join(env.home, ".ssh", "config"), true, true},
		{env.sysConfig, false, false},
	} {
		// ssh silently skips a default file it cannot open.
		if _, err := os.Stat(top.path); err != nil {
			continue
		}
		f, err := c.parseFile(top.path, top.user, top.checkOwn, nil)
		if err != nil {
			return nil, err
		}
		c.files = append(c.files, f)
	}
	return c, nil
}

// parseFile reads and parses path; stack is the chain of files including it.
func (c *SSHConfig) parseFile(path string, userConf, checkOwner bool, stack []string) (*cfgFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ssh config: can't open %s: %w", path, err)
	}
	defer fh.Close()
	if checkOwner {
		if err := c.checkOwner(fh, path); err != nil {
			return nil, err
		}
	}
	return c.parse(fh, path, userConf, append(stack, path))
}

// checkOwner refuses files another user could have written, as ssh does for
// ~/.ssh/config and included files: they decide where drover connects.
func (c *SSHConfig) checkOwner(fh *os.File, path string) error {
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("ssh config: stat %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if (st.Uid != 0 && int(st.Uid) != c.env.uid) || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("ssh config: bad owner or permissions on %s", path)
	}
	return nil
}

func (c *SSHConfig) parse(r io.Reader, path string, userConf bool, stack []string) (*cfgFile, error) {
	f := &cfgFile{path: path, userConf: userConf}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLength)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		d, err := parseLine(sc.Text(), path, lineNo)
		if err != nil {
			return nil, err
		}
		if d == nil {
			continue
		}
		if d.keyword == "include" {
			if err := c.loadIncludes(d, userConf, stack); err != nil {
				return nil, err
			}
		}
		f.lines = append(f.lines, d)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, configError(path, lineNo+1, "line too long")
		}
		// A directory opened as a config reads as an error here; ssh treats it as empty.
		var pe *fs.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, syscall.EISDIR) {
			return f, nil
		}
		return nil, fmt.Errorf("ssh config: reading %s: %w", path, err)
	}
	return f, nil
}

// parseLine parses one line; nil means blank or comment.
func parseLine(line, file string, n int) (*directive, error) {
	line = strings.TrimRight(line, " \t\r\n\f")
	s := strings.TrimLeft(line, " \t\r\n")
	if s == "" || s[0] == '#' {
		return nil, nil
	}
	// The keyword ends at whitespace or a single '=' (with optional spaces around).
	i := strings.IndexAny(s, " \t=")
	kw, rest := s, ""
	if i >= 0 {
		kw, rest = s[:i], s[i:]
		rest = strings.TrimLeft(rest, " \t")
		if strings.HasPrefix(rest, "=") {
			rest = strings.TrimLeft(rest[1:], " \t")
		}
	}
	kw = strings.ToLower(kw)
	if rest == "" {
		return nil, configError(file, n, "no argument after keyword %q", kw)
	}
	args, err := splitArgs(rest)
	if err != nil {
		return nil, configError(file, n, "%v", err)
	}
	d := &directive{file: file, line: n, keyword: kw, args: args, raw: rest}
	if err := d.validate(); err != nil {
		return nil, configError(file, n, "%v", err)
	}
	return d, nil
}

// splitArgs splits like OpenSSH's argv_split: whitespace separates, single or double
// quotes group, backslash escapes quotes, backslash and (unquoted) space, and a '#'
// at the start of an argument ends the line.
func splitArgs(s string) ([]string, error) {
	var args []string
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		var b strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			ch := s[i]
			switch {
			case ch == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				b.WriteByte(s[i])
				continue
			case quote == 0 && (ch == ' ' || ch == '\t'):
			case quote == 0 && (ch == '"' || ch == '\''):
				quote = ch
				continue
			case quote != 0 && ch == quote:
				quote = 0
				continue
			default:
				b.WriteByte(ch)
				continue
			}
			break // unquoted whitespace ends the argument
		}
		if quote != 0 {
			return nil, errors.New("invalid quotes")
		}
		args = append(args, b.String())
	}
	return args, nil
}

// validate checks a directive's arguments at load time, as ssh does for every line,
// whether or not its block applies to the host.
func (d *directive) validate() error {
	one := func() (string, error) {
		if len(d.args) == 0 || d.args[0] == "" {
			return "", fmt.Errorf("missing argument for %s", d.keyword)
		}
		if len(d.args) > 1 {
			return "", fmt.Errorf("keyword %s extra arguments at end of line", d.keyword)
		}
		return d.args[0], nil
	}
	switch d.keyword {
	case "host":
		for _, a := range d.args {
			if a == "" {
				return fmt.Errorf("keyword host empty argument")
			}
			p := hostPattern{pattern: a}
			if strings.HasPrefix(a, "!") {
				p = hostPattern{pattern: a[1:], negated: true}
			}
			d.hosts = append(d.hosts, p)
		}
	case "match":
		crit, err := parseMatch(d.args)
		if err != nil {
			return err
		}
		d.criteria = crit
	case "include":
		for _, a := range d.args {
			if a == "" {
				return fmt.Errorf("keyword include empty argument")
			}
		}
	case "hostname", "user", "identityfile", "certificatefile", "hostkeyalias":
		_, err := one()
		return err
	case "identityagent":
		v, err := one()
		if err != nil {
			return err
		}
		if strings.HasPrefix(v, "$") && !strings.HasPrefix(v, "${") && !validEnvName(v[1:]) {
			return fmt.Errorf("invalid environment name %s", v)
		}
	case "port":
		v, err := one()
		if err != nil {
			return err
		}
		if p := parsePort(v); p <= 0 {
			return fmt.Errorf("bad port '%s'", v)
		}
	case "identitiesonly":
		v, err := one()
		if err != nil {
			return err
		}
		if _, ok := parseFlag(v); !ok {
			return fmt.Errorf("unsupported option %q for %s", v, d.keyword)
		}
	case "stricthostkeychecking":
		v, err := one()
		if err != nil {
			return err
		}
		if _, ok := parseStrict(v); !ok {
			return fmt.Errorf("unsupported option %q for %s", v, d.keyword)
		}
	case "connecttimeout", "serveraliveinterval":
		v, err := one()
		if err != nil {
			return err
		}
		if _, ok := parseTime(v); !ok {
			return fmt.Errorf("invalid time value %q", v)
		}
	case "serveralivecountmax":
		v, err := one()
		if err != nil {
			return err
		}
		if n, err := strconv.ParseUint(v, 10, 31); err != nil || n > 1<<31-1 {
			return fmt.Errorf("invalid integer value %q", v)
		}
	case "proxyjump":
		v, err := one()
		if err != nil {
			return err
		}
		if _, err := parseJump(v); err != nil {
			return fmt.Errorf("invalid ProxyJump %q: %w", v, err)
		}
	case "userknownhostsfile", "globalknownhostsfile":
		if len(d.args) > maxHostsFiles {
			return fmt.Errorf("too many %s entries", d.keyword)
		}
		for i, a := range d.args {
			if a == "" {
				return fmt.Errorf("keyword %s empty argument", d.keyword)
			}
			if strings.EqualFold(a, "none") && (i > 0 || len(d.args) > 1) {
				return fmt.Errorf("keyword %s \"none\" argument must appear alone", d.keyword)
			}
		}
	}
	return nil
}

// parseMatch mirrors match_cfg_line's syntax rules; values are evaluated at Resolve.
func parseMatch(args []string) ([]matchCriterion, error) {
	var out []matchCriterion
	attributes := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		c := matchCriterion{}
		if strings.HasPrefix(a, "!") {
			c.negated, a = true, a[1:]
		}
		c.attr = strings.ToLower(a)
		switch c.attr {
		case "all":
			if attributes > 1 || i+1 < len(args) {
				return nil, fmt.Errorf("'%s' cannot be combined with other Match attributes", args[i])
			}
			return append(out, c), nil
		case "canonical", "final":
			attributes++
			out = append(out, c)
			continue
		case "host", "originalhost", "user", "localuser", "exec":
		default:
			return nil, fmt.Errorf("unsupported Match attribute %s", a)
		}
		attributes++
		if i+1 >= len(args) || args[i+1] == "" {
			return nil, fmt.Errorf("missing Match criteria for %s", a)
		}
		i++
		c.arg = args[i]
		out = append(out, c)
	}
	if attributes == 0 {
		return nil, errors.New("one or more attributes required for Match")
	}
	return out, nil
}

// loadIncludes expands an Include line's globs and parses every file now, so that
// syntax errors surface at load time even in blocks that never apply (as in ssh).
func (c *SSHConfig) loadIncludes(d *directive, userConf bool, stack []string) error {
	for _, arg := range d.args {
		if strings.HasPrefix(arg, "~") && !userConf {
			return configError(d.file, d.line, "bad include path %s", arg)
		}
		pat := arg
		switch {
		case strings.HasPrefix(arg, "~"):
			p, err := c.tildeExpand(arg)
			if err != nil {
				return configError(d.file, d.line, "%v", err)
			}
			pat = p
		case !filepath.IsAbs(arg) && userConf:
			pat = filepath.Join(c.env.home, ".ssh", arg)
		case !filepath.IsAbs(arg):
			pat = filepath.Join(c.env.sysDir, arg)
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return configError(d.file, d.line, "glob failed for %s: %v", arg, err)
		}
		for _, m := range matches {
			for _, s := range stack {
				if s == m {
					return configError(d.file, d.line, "Include cycle: %s", strings.Join(append(stack, m), " -> "))
				}
			}
			if len(stack) > maxIncludeDepth {
				return configError(d.file, d.line, "too many recursive configuration includes")
			}
			f, err := c.parseFile(m, userConf, true, stack)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // vanished between glob and open: ssh ignores ENOENT
				}
				return configError(d.file, d.line, "Include: %v", err)
			}
			d.includes = append(d.includes, f)
		}
	}
	return nil
}

// resolveState holds option values in the order ssh obtains them: the first value
// obtained wins, so every field records whether it was set.
type resolveState struct {
	alias string

	hostName, user, identityAgent, hostKeyAlias, strict *string
	port                                                int
	identities                                          []identity
	certs                                               []identity
	identitiesOnly                                      *bool
	jump, proxyCommand                                  *string
	userKnown, globalKnown                              []string
	connectTimeout, aliveInterval                       *time.Duration
	aliveCountMax                                       *int
}

// identity is an IdentityFile/CertificateFile as written; userProvided mirrors
// ssh's de-duplication, which only merges entries from the same kind of source.
type identity struct {
	path         string
	userProvided bool
}

// Resolve computes the Endpoint for alias, applying o like OpenSSH command-line options
// (-p, -l, -i, -J, -o UserKnownHostsFile=…, -o StrictHostKeyChecking=…, -o ConnectTimeout=…,
// and HostName from o.HostName as if given with -o HostName=…).
func (c *SSHConfig) Resolve(alias string, o Overrides) (*Endpoint, error) {
	if alias == "" || !validHostname(alias) {
		return nil, fmt.Errorf("ssh config: host %q contains invalid characters", alias)
	}
	st := &resolveState{alias: alias}
	if err := c.applyOverrides(st, o); err != nil {
		return nil, err
	}
	for _, f := range c.files {
		active := true
		c.walk(st, f, &active)
	}
	return c.endpoint(st)
}

func (c *SSHConfig) applyOverrides(st *resolveState, o Overrides) error {
	if o.HostName != "" {
		if !validHostname(o.HostName) {
			return fmt.Errorf("ssh config: host name %q contains invalid characters", o.HostName)
		}
		st.hostName = &o.HostName
	}
	if o.Port != 0 {
		if o.Port < 1 || o.Port > 65535 {
			return fmt.Errorf("ssh config: bad port %d", o.Port)
		}
		st.port = o.Port
	}
	if o.User != "" {
		if !validRemoteUser(o.User) {
			return fmt.Errorf("ssh config: remote user name %q contains invalid characters", o.User)
		}
		st.user = &o.User
	}
	for _, id := range o.IdentityFiles {
		// ssh expands ~ in -i at once, so "-i ~/k" and "IdentityFile ~/k" are two
		// entries for it (the same key file, tried twice) — kept identical here.
		p, err := c.tildeExpand(id)
		if err != nil {
			return fmt.Errorf("ssh config: identity file %q: %w", id, err)
		}
		st.addIdentity(&st.identities, p, true)
	}
	if o.ProxyJump != "" {
		if _, err := parseJump(o.ProxyJump); err != nil {
			return fmt.Errorf("ssh config: invalid ProxyJump %q: %w", o.ProxyJump, err)
		}
		st.jump = &o.ProxyJump
	}
	if len(o.KnownHostsFiles) > 0 {
		st.userKnown = append([]string(nil), o.KnownHostsFiles...)
	}
	if o.StrictHostKeyChecking != "" {
		v, ok := parseStrict(o.StrictHostKeyChecking)
		if !ok {
			return fmt.Errorf("ssh config: bad StrictHostKeyChecking %q", o.StrictHostKeyChecking)
		}
		st.strict = &v
	}
	if o.ConnectTimeout < 0 {
		return fmt.Errorf("ssh config: negative connect timeout %s", o.ConnectTimeout)
	}
	if o.ConnectTimeout > 0 {
		st.connectTimeout = &o.ConnectTimeout
	}
	return nil
}

func (st *resolveState) addIdentity(list *[]identity, path string, userProvided bool) {
	if len(*list) >= maxIdentityFiles {
		return
	}
	for _, id := range *list {
		if id.userProvided == userProvided && id.path == path {
			return
		}
	}
	*list = append(*list, identity{path, userProvided})
}

// walk applies f's directives; active is shared with the including file, as in
// readconf.c, and restored after each Include.
func (c *SSHConfig) walk(st *resolveState, f *cfgFile, active *bool) {
	for _, d := range f.lines {
		switch d.keyword {
		case "host":
			*active = false
			for _, p := range d.hosts {
				if matchPattern(st.alias, p.pattern) {
					if p.negated {
						*active = false
						break
					}
					*active = true
				}
			}
		case "match":
			*active = c.evalMatch(st, d.criteria)
		case "include":
			if !*active {
				continue // included files can only apply while the block applies
			}
			for _, inc := range d.includes {
				c.walk(st, inc, active)
				*active = true
			}
		default:
			if *active {
				st.apply(d, f.userConf)
			}
		}
	}
}

func (c *SSHConfig) evalMatch(st *resolveState, crit []matchCriterion) bool {
	host := st.alias
	if st.hostName != nil {
		// Unknown escapes make ssh fail later anyway; match on what expands.
		if h, err := percentExpand(*st.hostName, map[byte]string{'h': st.alias}); err == nil {
			host = h
		}
	}
	ruser := c.env.localUser
	if st.user != nil {
		ruser = *st.user
	}
	result := true
	for _, m := range crit {
		var r bool
		switch m.attr {
		case "all":
			if result {
				result = !m.negated
			}
			return result
		case "canonical", "final", "exec":
			r = false // see the file comment: no second pass, nothing executed
		case "host":
			r = matchPatternList(strings.ToLower(host), m.arg, true) == 1
		case "originalhost":
			r = matchPatternList(strings.ToLower(st.alias), m.arg, true) == 1
		case "user":
			r = matchPatternList(ruser, m.arg, false) == 1
		case "localuser":
			r = matchPatternList(c.env.localUser, m.arg, false) == 1
		}
		if r == m.negated {
			result = false
		}
	}
	return result
}

// apply records an active directive's value unless one was obtained already.
func (st *resolveState) apply(d *directive, userConf bool) {
	arg := ""
	if len(d.args) > 0 {
		arg = d.args[0]
	}
	setStr := func(p **string, v string) {
		if *p == nil {
			*p = &v
		}
	}
	setDur := func(p **time.Duration) {
		if *p == nil {
			v, _ := parseTime(arg)
			*p = &v
		}
	}
	switch d.keyword {
	case "hostname":
		setStr(&st.hostName, arg)
	case "user":
		setStr(&st.user, arg)
	case "port":
		if st.port == 0 {
			st.port = parsePort(arg)
		}
	case "identityfile":
		st.addIdentity(&st.identities, arg, userConf)
	case "certificatefile":
		st.addIdentity(&st.certs, arg, userConf)
	case "identitiesonly":
		if st.identitiesOnly == nil {
			v, _ := parseFlag(arg)
			st.identitiesOnly = &v
		}
	case "identityagent":
		setStr(&st.identityAgent, arg)
	case "hostkeyalias":
		setStr(&st.hostKeyAlias, strings.ToLower(arg))
	case "proxyjump":
		if st.jump == nil && st.proxyCommand == nil {
			setStr(&st.jump, arg)
		}
	case "proxycommand":
		// Tracked only for precedence: drover dials jumps itself, it runs no commands.
		if st.jump == nil {
			setStr(&st.proxyCommand, d.raw)
		}
	case "userknownhostsfile":
		if len(st.userKnown) == 0 {
			st.userKnown = append([]string(nil), d.args...)
		}
	case "globalknownhostsfile":
		if len(st.globalKnown) == 0 {
			st.globalKnown = append([]string(nil), d.args...)
		}
	case "stricthostkeychecking":
		if st.strict == nil {
			v, _ := parseStrict(arg)
			st.strict = &v
		}
	case "connecttimeout":
		setDur(&st.connectTimeout)
	case "serveraliveinterval":
		setDur(&st.aliveInterval)
	case "serveralivecountmax":
		if st.aliveCountMax == nil {
			n, _ := strconv.Atoi(arg)
			st.aliveCountMax = &n
		}
	}
}

// endpoint fills defaults and expands tokens with the final values, as ssh.c does
// after reading every file.
func (c *SSHConfig) endpoint(st *resolveState) (*Endpoint, error) {
	e := &Endpoint{Alias: st.alias}
	host := st.alias
	if st.hostName != nil {
		h, err := percentExpand(*st.hostName, map[byte]string{'h': st.alias})
		if err != nil {
			return nil, fmt.Errorf("ssh config: HostName %q: %w", *st.hostName, err)
		}
		host = h
	}
	e.HostName = strings.ToLower(host)
	e.Port = 22
	if st.port != 0 {
		e.Port = st.port
	}
	e.User = c.env.localUser
	if st.user != nil {
		e.User = *st.user
	}

	short, _, _ := strings.Cut(c.env.localHost, ".")
	keyAlias := st.alias
	if st.hostKeyAlias != nil {
		keyAlias = *st.hostKeyAlias
	}
	portStr := strconv.Itoa(e.Port)
	sum := sha1.Sum([]byte(c.env.localHost + e.HostName + portStr + e.User))
	tokens := map[byte]string{
		'C': hex.EncodeToString(sum[:]),
		'L': short,
		'i': strconv.Itoa(c.env.uid),
		'k': keyAlias,
		'l': c.env.localHost,
		'n': st.alias,
		'p': portStr,
		'd': c.env.home,
		'h': e.HostName,
		'r': e.User,
		'u': c.env.localUser,
	}
	expand := func(what, s string) (string, error) {
		t, err := c.tildeExpand(s)
		if err == nil {
			t, err = c.dollarExpand(t)
		}
		if err == nil {
			t, err = percentExpand(t, tokens)
		}
		if err != nil {
			return "", fmt.Errorf("ssh config: %s %q: %w", what, s, err)
		}
		return t, nil
	}

	ids := st.identities
	if len(ids) == 0 {
		for _, n := range []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"} {
			ids = append(ids, identity{path: "~/.ssh/" + n})
		}
	}
	for _, id := range ids {
		p, err := expand("IdentityFile", id.path)
		if err != nil {
			return nil, err
		}
		e.IdentityFiles = append(e.IdentityFiles, p)
	}
	for _, id := range st.certs {
		p, err := expand("CertificateFile", id.path)
		if err != nil {
			return nil, err
		}
		e.CertificateFiles = append(e.CertificateFiles, p)
	}
	if st.identitiesOnly != nil {
		e.IdentitiesOnly = *st.identitiesOnly
	}
	if st.identityAgent != nil {
		p, err := expand("IdentityAgent", *st.identityAgent)
		if err != nil {
			return nil, err
		}
		e.IdentityAgent = p
	}
	if st.jump != nil && !strings.EqualFold(*st.jump, "none") {
		e.ProxyJump = strings.Split(*st.jump, ",")
	}
	known := st.userKnown
	if len(known) == 0 {
		known = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
	}
	// "none" (only ever alone) becomes an empty list, so nothing reads or writes a
	// file literally named "none".
	e.UserKnownHostsFiles = []string{}
	for _, k := range known {
		if strings.EqualFold(k, "none") {
			break
		}
		p, err := expand("UserKnownHostsFile", k)
		if err != nil {
			return nil, err
		}
		e.UserKnownHostsFiles = append(e.UserKnownHostsFiles, p)
	}
	// ssh 9.2 does not expand GlobalKnownHostsFile; neither do we.
	e.GlobalKnownHostsFiles = []string{}
	global := st.globalKnown
	if len(global) == 0 {
		global = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	if !strings.EqualFold(global[0], "none") {
		e.GlobalKnownHostsFiles = append(e.GlobalKnownHostsFiles, global...)
	}
	e.StrictHostKeyChecking = "ask"
	if st.strict != nil {
		e.StrictHostKeyChecking = *st.strict
	}
	if st.connectTimeout != nil {
		e.ConnectTimeout = *st.connectTimeout
	}
	if st.aliveInterval != nil {
		e.ServerAliveInterval = *st.aliveInterval
	}
	e.ServerAliveCountMax = 3
	if st.aliveCountMax != nil {
		e.ServerAliveCountMax = *st.aliveCountMax
	}
	return e, nil
}

// tildeExpand follows OpenSSH's tilde_expand: "~", "~/x", "~user", "~user/x".
func (c *SSHConfig) tildeExpand(s string) (string, error) {
	if !strings.HasPrefix(s, "~") {
		return s, nil
	}
	rest := s[1:]
	name, path := "", ""
	if strings.HasPrefix(rest, "/") || rest == "" {
		path = strings.TrimLeft(rest, "/")
	} else {
		name, path, _ = strings.Cut(rest, "/")
		path = strings.TrimLeft(path, "/")
	}
	home := c.env.home
	if name != "" && name != c.env.localUser {
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("tilde expansion: no such user %s", name)
		}
		home = u.HomeDir
	}
	if !strings.HasSuffix(home, "/") {
		home += "/"
	}
	return home + path, nil
}

// dollarExpand replaces ${NAME} with the environment variable; unset is an error.
func (c *SSHConfig) dollarExpand(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", errors.New("environment variable '${' without '}'")
		}
		name := s[i+2 : i+j]
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable name %q", name)
		}
		v, ok := "", false
		if c.env.getenv != nil {
			v, ok = c.env.getenv(name)
		}
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// percentExpand replaces %X tokens; %% is a literal percent and an unknown token is
// an error (ssh is fatal on both).
func percentExpand(s string, tokens map[byte]string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i >= len(s) {
			return "", errors.New("invalid format: trailing %")
		}
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := tokens[s[i]]
		if !ok {
			return "", fmt.Errorf("unknown key %%%c", s[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// matchPattern is OpenSSH's match_pattern: '*' and '?' wildcards, byte-wise and
// case-sensitive. It backtracks only to the last '*', so it is linear-ish.
func matchPattern(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchPatternList is OpenSSH's match_pattern_list: comma-separated patterns, '!'
// negates; 1 for a positive match, -1 when a negated pattern matched, 0 otherwise.
func matchPatternList(s, list string, lower bool) int {
	got := 0
	for _, sub := range strings.Split(list, ",") {
		neg := strings.HasPrefix(sub, "!")
		if neg {
			sub = sub[1:]
		}
		if lower {
			sub = strings.ToLower(sub)
		}
		if matchPattern(s, sub) {
			if neg {
				return -1
			}
			got = 1
		}
	}
	return got
}

// parsePort is a2port: a number 0..65535 or a TCP service name; -1 when invalid.
func parsePort(s string) int {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 65535 {
			return -1
		}
		return n
	}
	if s == "" || strings.ContainsAny(s, "/ \t") {
		return -1
	}
	n, err := net.LookupPort("tcp", s)
	if err != nil {
		return -1
	}
	return n
}

func parseFlag(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "yes", "true":
		return true, true
	case "no", "false":
		return false, true
	}
	return false, false
}

// parseStrict normalises StrictHostKeyChecking to the HostKey* constants; "ask"
// stays "ask" (the dialer treats it as strict, since drover never prompts).
func parseStrict(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "yes", "true":
		return HostKeyStrict, true
	case "no", "false", "off":
		return HostKeyOff, true
	case "accept-new":
		return HostKeyAcceptNew, true
	case "ask":
		return "ask", true
	}
	return "", false
}

// parseTime is OpenSSH's convtime: "90", "1m30s", units s m h d w (either case).
func parseTime(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	const maxSecs = 1<<31 - 1
	var total int64
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > maxSecs {
			return 0, false
		}
		s = s[i:]
		mult := int64(1)
		if s != "" {
			switch s[0] {
			case 's', 'S':
			case 'm', 'M':
				mult = 60
			case 'h', 'H':
				mult = 3600
			case 'd', 'D':
				mult = 86400
			case 'w', 'W':
				mult = 7 * 86400
			default:
				return 0, false
			}
			s = s[1:]
		}
		if n > maxSecs/mult {
			return 0, false
		}
		total += n * mult
		if total > maxSecs {
			return 0, false
		}
	}
	return time.Duration(total) * time.Second, true
}

// parseJump checks a ProxyJump value: "none" or comma-separated hops, each
// [user@]host[:port] or ssh://[user@]host[:port]. It returns the hops as written.
func parseJump(s string) ([]string, error) {
	if strings.EqualFold(s, "none") {
		return nil, nil
	}
	hops := strings.Split(s, ",")
	for _, h := range hops {
		if err := checkHop(h); err != nil {
			return nil, fmt.Errorf("hop %q: %w", h, err)
		}
	}
	return hops, nil
}

func checkHop(h string) error {
	if rest, ok := strings.CutPrefix(h, "ssh://"); ok {
		if strings.ContainsAny(rest, "/?#") {
			return errors.New("URI must be ssh://[user@]host[:port]")
		}
		h = rest
	}
	if i := strings.LastIndexByte(h, '@'); i >= 0 {
		if i == 0 {
			return errors.New("empty user")
		}
		h = h[i+1:]
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return errors.New("unterminated [")
		}
		host, port = h[1:end], h[end+1:]
		if port != "" {
			if port[0] != ':' {
				return errors.New("junk after ]")
			}
			port = port[1:]
			if port == "" {
				return errors.New("empty port")
			}
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
		if port == "" {
			return errors.New("empty port")
		}
	}
	if host == "" {
		return errors.New("empty host")
	}
	if port != "" && parsePort(port) <= 0 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// validHostname mirrors ssh's check on a host name given on its command line.
func validHostname(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if strings.IndexByte("'`\"$\\;&<>|(){},", ch) >= 0 || ch <= ' ' || ch == 0x7f {
			return false
		}
	}
	return true
}

// validRemoteUser mirrors ssh's check on a user name given on its command line.
func validRemoteUser(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if strings.IndexByte("'`\";&<>|(){}", ch) >= 0 || ch < ' ' || ch == 0x7f {
			return false
		}
		if (ch == ' ' || ch == '\t') && i+1 < len(s) && s[i+1] == '-' {
			return false
		}
		if ch == '\\' && i+1 == len(s) {
			return false
		}
	}
	return s != ""
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (i > 0 && ch >= '0' && ch <= '9')) {
			return false
		}
	}
	return true
}
