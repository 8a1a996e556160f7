package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/drover-sh/drover/inventory"
	"github.com/urfave/cli/v2"
)

const (
	defaultInventory      = "inventory.hcl"
	defaultForks          = 50
	defaultConnectTimeout = 10 * time.Second
)

// commonFlags are SPEC §2's global flags. They are built fresh for every App because
// urfave/cli keeps parse state in the flag values.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `SRC`: HCL, Ansible INI/YAML, an executable printing --list JSON, or h1,h2,h3", DefaultText: "$DROVER_INVENTORY, else ./" + defaultInventory},
		&cli.StringFlag{Name: "ssh-config", Usage: "ssh_config `FILE` (none: ignore all ssh_config files)", DefaultText: "~/.ssh/config and /etc/ssh/ssh_config"},
		&cli.StringFlag{Name: "known-hosts", Usage: "known_hosts `FILE` (replaces UserKnownHostsFile)"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "remote `USER`"},
		&cli.StringSliceFlag{Name: "key", Usage: "private key `FILE`, tried first (repeatable)"},
		&cli.BoolFlag{Name: "become", Usage: "run remote commands through sudo"},
		&cli.BoolFlag{Name: "ask-become-pass", Usage: "ask for the sudo password (needs a terminal)"},
		&cli.IntFlag{Name: "forks", Value: defaultForks, Usage: "`N` hosts worked on at once"},
		&cli.DurationFlag{Name: "connect-timeout", Value: defaultConnectTimeout, Usage: "give up connecting after `D` (overrides ssh_config's ConnectTimeout when given)"},
		&cli.DurationFlag{Name: "timeout", Usage: "per-command timeout `D` (0: none)"},
		&cli.BoolFlag{Name: "json", Usage: "print data as JSON"},
		&cli.BoolFlag{Name: "no-color", Usage: "no colour even on a terminal"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log connection details on stderr"},
	}
}

// targetingFlags choose hosts beyond PATTERN; only commands that take a PATTERN have them.
func targetingFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "with-fact", Aliases: []string{"F"}, Usage: "fact filter 'KEY OP VALUE', OP one of = != < > <= >= =~ (repeatable, all must hold)"},
		&cli.StringSliceFlag{Name: "identity", Aliases: []string{"I"}, Usage: "host `NAME` or /regex/ (repeatable, any matches)"},
		&cli.StringFlag{Name: "select", Aliases: []string{"S"}, Usage: "HCL `EXPR` over facts and host, e.g. 'facts.role == \"db\" || facts.processors.count > 8'"},
	}
}

// options are the parsed global flags of one command run.
type options struct {
	cmd               string // command path for usage hints
	inventory         string
	sshConfig         string // "" = OpenSSH's defaults
	knownHosts        string
	user              string
	keys              []string
	become            bool
	askBecomePass     bool
	forks             int
	connectTimeout    time.Duration
	connectTimeoutSet bool
	timeout           time.Duration
	identities        []identityMatcher
	selector          *inventory.Selector // -F and -S; nil when neither is given
	json, noColor     bool
	verbose           bool
}

// identityMatcher is one -I value: an exact host name or a /regex/.
type identityMatcher struct {
	name string
	re   *regexp.Regexp
}

func (m identityMatcher) match(host string) bool {
	if m.re != nil {
		return m.re.MatchString(host)
	}
	return m.name == host
}

func parseIdentity(s string) (identityMatcher, error) {
	if len(s) >= 2 && strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/") {
		re, err := regexp.Compile(s[1 : len(s)-1])
		if err != nil {
			return identityMatcher{}, fmt.Errorf("-I %s: %w", s, err)
		}
		return identityMatcher{re: re}, nil
	}
	if s == "" {
		return identityMatcher{}, fmt.Errorf("-I: empty host name")
	}
	return identityMatcher{name: s}, nil
}

// readOptions collects and checks the global flags; every problem is bad input.
func readOptions(c *cli.Context, e *env) (*options, error) {
	o := &options{
		cmd:               cmdPath(c),
		inventory:         c.String("inventory"),
		sshConfig:         c.String("ssh-config"),
		knownHosts:        c.String("known-hosts"),
		user:              c.String("user"),
		keys:              c.StringSlice("key"),
		become:            c.Bool("become"),
		askBecomePass:     c.Bool("ask-become-pass"),
		forks:             c.Int("forks"),
		connectTimeout:    c.Duration("connect-timeout"),
		connectTimeoutSet: c.IsSet("connect-timeout"),
		timeout:           c.Duration("timeout"),
		json:              c.Bool("json"),
		noColor:           c.Bool("no-color"),
		verbose:           c.Bool("verbose"),
	}
	if o.inventory == "" {
		o.inventory = e.getenv("DROVER_INVENTORY")
	}
	if o.inventory == "" {
		o.inventory = defaultInventory
	}
	if o.forks < 1 {
		return nil, badInput(o.cmd, "--forks must be at least 1, got %d", o.forks)
	}
	if o.connectTimeoutSet && o.connectTimeout <= 0 {
		return nil, badInput(o.cmd, "--connect-timeout must be positive, got %s", o.connectTimeout)
	}
	if o.timeout < 0 {
		return nil, badInput(o.cmd, "--timeout must not be negative, got %s", o.timeout)
	}
	sel, err := parseSelector(c, o)
	if err != nil {
		return nil, err
	}
	o.selector = sel
	for _, s := range c.StringSlice("identity") {
		m, err := parseIdentity(s)
		if err != nil {
			return nil, &badInputError{Cmd: o.cmd, Err: err}
		}
		o.identities = append(o.identities, m)
	}
	return o, nil
}
