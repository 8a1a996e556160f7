// Command drover is the command line of drover, an agentless SSH-push orchestrator:
// it parses flags and arguments, wires inventory, ssh_config and the SSH transport
// together, renders results and maps them to exit codes (SPEC §2).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/drover-sh/drover/transport"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// version is set at build time: -ldflags '-X main.version=…'.
var version = "dev"

// env is everything the commands take from the process, so tests can run the whole
// command line in-process with buffers and fakes.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string // the whole environment, for DROVER_VAR_*; nil: empty
	stdoutTTY      bool
	stderrTTY      bool // progress counters are drawn only on a terminal
	// readPassword reads a secret from the terminal after showing prompt; nil when
	// stdin is not a terminal (then prompting is an error, never a hang).
	readPassword func(prompt string) ([]byte, error)
	// newConnector makes the connection source for host-touching commands.
	newConnector func(transport.DialerOptions) connector
	// now is the clock settings.window is judged by; nil: time.Now (tests set it).
	now func() time.Time
}

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	e := &env{
		stdout:       os.Stdout,
		stderr:       os.Stderr,
		getenv:       os.Getenv,
		environ:      os.Environ,
		stdoutTTY:    term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY:    term.IsTerminal(int(os.Stderr.Fd())),
		newConnector: newPoolConnector,
	}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		e.readPassword = func(prompt string) ([]byte, error) {
			fmt.Fprint(os.Stderr, prompt)
			defer fmt.Fprintln(os.Stderr)
			return term.ReadPassword(fd)
		}
	}
	os.Exit(run(os.Args, e, sigs, func() { os.Exit(exitInterrupted) }))
}

// run executes one command line and returns the exit code. Signals arrive on sigs;
// forceExit is called on the second interrupt.
func run(args []string, e *env, sigs <-chan os.Signal, forceExit func()) int {
	e.stderr = &syncWriter{w: e.stderr} // the signal watcher writes concurrently
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var interrupted atomic.Bool
	done := make(chan struct{})
	defer close(done)
	go watchSignals(done, sigs, e.stderr, func() {
		interrupted.Store(true)
		cancel()
	}, forceExit)

	app := newApp(e)
	err := app.RunContext(ctx, reorderArgs(app, args))
	reportError(e.stderr, app.Name, err, interrupted.Load())
	return exitCode(err, interrupted.Load())
}

// syncWriter serialises writes from the command and the signal watcher.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// usageError turns urfave/cli's flag parsing errors (unknown flag, bad duration, …)
// into bad input, exit 2.
func usageError(c *cli.Context, err error, _ bool) error {
	return &badInputError{Cmd: cmdPath(c), Err: err}
}

// cmdPath is the command as the user would type it, for usage hints.
func cmdPath(c *cli.Context) string {
	if c != nil && c.Command != nil && c.Command.HelpName != "" {
		return c.Command.HelpName
	}
	return "drover"
}

func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:                      "drover",
		Usage:                     "agentless SSH-push orchestration: facts, targeting, staged rollouts",
		HideVersion:               true, // `drover version`; -v is --verbose
		DisableSliceFlagSeparator: true, // --key a,b is one file; -I /a,b/ one regex
		Writer:                    e.stdout,
		ErrWriter:                 e.stderr,
		// Exit codes are decided in run(), never by os.Exit inside the library.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return badInput("drover", "unknown command %q", c.Args().First())
			}
			return badInput("drover", "no command given")
		},
		Commands: []*cli.Command{
			{
				Name:            "version",
				Usage:           "print drover's version",
				HideHelpCommand: true,
				OnUsageError:    usageError,
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprintf(e.stdout, "drover %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
					return err
				},
			},
			{
				Name:            "ping",
				Usage:           "connect, authenticate and report the round trip per host",
				ArgsUsage:       "[PATTERN]",
				HideHelpCommand: true,
				OnUsageError:    usageError,
				Flags:           append(append(commonFlags(), targetingFlags()...), factFlags()...),
				Action:          func(c *cli.Context) error { return pingAction(c, e) },
			},
			{
				Name:      "facts",
				Usage:     "gather facts: a table of KEYs per host, one KEY's values with counts, or an overview",
				ArgsUsage: "[PATTERN] [KEY...]",
				Description: "The first argument is PATTERN (use all to name keys for every host); KEYs are dotted fact names\n" +
					"such as os.release.major. Without KEY, every fact with its distinct values and host counts;\n" +
					"with one KEY, its values, how often each was found and where; with several, a host x key table.\n" +
					"--json prints {\"HOST\": {facts...}} and nothing else; hosts whose facts could not be gathered are\n" +
					"reported on stderr and the exit status is 1. Facts are cached in the state directory.\n" +
					filterHelp,
				HideHelpCommand: true,
				OnUsageError:    usageError,
				Flags:           append(append(commonFlags(), targetingFlags()...), factFlags()...),
				Action:          func(c *cli.Context) error { return factsAction(c, e) },
			},
			{
				Name:      "find",
				Usage:     "discovery: print the names of the hosts that match, one a line",
				ArgsUsage: "[PATTERN]",
				Description: "Only connects when a filter needs facts (and the cache has none fresh). Hosts that could not be\n" +
					"asked are reported on stderr and the exit status is 1. --json prints a JSON list of names.\n" +
					filterHelp,
				HideHelpCommand: true,
				OnUsageError:    usageError,
				Flags:           append(append(commonFlags(), targetingFlags()...), factFlags()...),
				Action:          func(c *cli.Context) error { return findAction(c, e) },
			},
			{
				Name:      "exec",
				Usage:     "run a shell command on the selected hosts, in batches if asked, with an mco-style summary",
				ArgsUsage: "[PATTERN] -- CMD...",
				Description: "The words after -- are joined with spaces and run by each host's login shell, as ssh does.\n" +
					"Output is printed as it arrives, each line prefixed with the host name (stderr lines on stderr);\n" +
					"--group prints each host's output whole when it finishes. A non-zero exit status marks the host\n" +
					"failed. Exit status: 0 all ok, 1 some host failed or was unreachable, 2 bad input, 4 interrupted.\n" +
					filterHelp,
				HideHelpCommand: true,
				OnUsageError:    usageError,
				Flags:           append(append(append(commonFlags(), targetingFlags()...), factFlags()...), execFlags()...),
				Action:          func(c *cli.Context) error { return execAction(c, e) },
			},
			packageCommand(e),
			serviceCommand(e),
			puppetCommand(e),
			validateCommand(e),
			planCommand(e),
			runCommand(e),
			historyCommand(e),
			reportCommand(e),
			{
				Name:         "inventory",
				Usage:        "list the inventory or show one host and how drover reaches it",
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					if c.Args().Present() {
						return badInput(cmdPath(c), "unknown subcommand %q (want list or show)", c.Args().First())
					}
					return badInput(cmdPath(c), "missing subcommand (list or show)")
				},
				Subcommands: []*cli.Command{
					{
						Name:            "list",
						Usage:           "hosts and their groups; --json prints ansible-inventory --list's structure",
						HideHelpCommand: true,
						OnUsageError:    usageError,
						Flags:           commonFlags(),
						Action:          func(c *cli.Context) error { return inventoryListAction(c, e) },
					},
					{
						Name:            "show",
						Usage:           "one host's groups, vars and resolved SSH connection",
						ArgsUsage:       "HOST",
						HideHelpCommand: true,
						OnUsageError:    usageError,
						Flags:           commonFlags(),
						Action:          func(c *cli.Context) error { return inventoryShowAction(c, e) },
					},
				},
			},
		},
	}
	return app
}
