// Command drover-lab starts and controls a lab of real OpenSSH hosts on this machine
// (package lab) for drover's demo and manual testing. It needs root.
//
//	drover-lab up --hosts 5 --dir .lab      # boot h1..h5 on 127.1.0.1-5 and return
//	drover-lab up --prometheus …            # and Prometheus on 127.1.0.253:9090
//	drover-lab status --dir .lab
//	drover-lab freeze|thaw|kill|restart h2 --dir .lab
//	drover-lab exec h2 --dir .lab -- cat /etc/os-release
//	drover-lab down --dir .lab
//
// The hosts keep running after `up` returns; their pids are in DIR/state.json, which
// every other subcommand reads.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/drover-sh/drover/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp(os.Stdout, os.Stderr)
	if err := app.RunContext(ctx, reorder(app, os.Args)); err != nil {
		fmt.Fprintf(os.Stderr, "drover-lab: %v\n", err)
		os.Exit(1)
	}
}

var dirFlag = &cli.StringFlag{Name: "dir", Value: ".lab", Usage: "the lab's state directory"}

func newApp(stdout, stderr io.Writer) *cli.App {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	open := func(c *cli.Context) (*lab.Lab, error) { return lab.Open(c.String("dir"), logf) }
	hostCmd := func(name, usage string, fn func(c *cli.Context, l *lab.Lab, host string) error) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "HOST", Flags: []cli.Flag{dirFlag},
			Action: func(c *cli.Context) error {
				if c.NArg() < 1 {
					return errors.New(name + ": which host?")
				}
				l, err := open(c)
				if err != nil {
					return err
				}
				return fn(c, l, c.Args().First())
			},
		}
	}
	return &cli.App{
		Name:      "drover-lab",
		Usage:     "a lab of real OpenSSH hosts on this machine (needs root)",
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			{
				Name:  "up",
				Usage: "boot the hosts h1..hN and leave them running",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "hosts", Value: 5, Usage: "number of hosts"},
					&cli.IntFlag{Name: "net", Value: 0, Usage: "third octet of the addresses 127.1.NET.i; -1 picks a free one"},
					&cli.BoolFlag{Name: "prometheus", Usage: "also start Prometheus on 127.1.NET.253:9090, scraping every host's demo-web /metrics"},
					&cli.BoolFlag{Name: "lean-dpkg", Usage: "give each host a minimal dpkg database (Essential, required and what they need) instead of this machine's"},
					dirFlag,
				},
				Action: func(c *cli.Context) error {
					l, err := lab.Start(c.Context, lab.Config{
						Hosts: c.Int("hosts"), Net: c.Int("net"), Dir: c.String("dir"), Logf: logf, Detached: true,
						Prometheus: c.Bool("prometheus"),
						LeanDpkg:   c.Bool("lean-dpkg"),
					})
					if err != nil {
						return err
					}
					fmt.Fprintf(stdout, "lab up: %d hosts, %s .. %s\n", len(l.Hosts), l.Hosts[0].Address, l.Hosts[len(l.Hosts)-1].Address)
					fmt.Fprintf(stdout, "  ssh -F %s h1\n", l.SSHConfig)
					fmt.Fprintf(stdout, "  inventory:     %s (Ansible: %s)\n", l.Inventory, l.InventoryINI)
					fmt.Fprintf(stdout, "  known_hosts:   %s\n  key:           %s\n", l.KnownHosts, l.KeyFile)
					fmt.Fprintf(stdout, "  sudo user:     %s (password in %s/state.json)\n", l.SudoUser, l.Dir)
					if l.Prometheus != nil {
						fmt.Fprintf(stdout, "  prometheus:    %s\n", l.Prometheus.URL())
					}
					fmt.Fprintf(stdout, "  stop it with: drover-lab down --dir %s\n", c.String("dir"))
					return nil
				},
			},
			{
				Name: "down", Usage: "stop every host and remove the lab's files", Flags: []cli.Flag{dirFlag},
				Action: func(c *cli.Context) error {
					l, err := open(c)
					if err != nil {
						return err
					}
					return l.Stop()
				},
			},
			{
				Name: "status", Usage: "each host's address and state (running, frozen, down)",
				Flags: []cli.Flag{dirFlag, &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: func(c *cli.Context) error {
					l, err := open(c)
					if err != nil {
						return err
					}
					return printStatus(stdout, l, c.Bool("json"))
				},
			},
			hostCmd("freeze", "SIGSTOP every process of the host (a hang)", func(_ *cli.Context, l *lab.Lab, h string) error { return l.Freeze(h) }),
			hostCmd("thaw", "SIGCONT a frozen host", func(_ *cli.Context, l *lab.Lab, h string) error { return l.Thaw(h) }),
			hostCmd("kill", "SIGKILL the host (a crash); its disk state stays", func(_ *cli.Context, l *lab.Lab, h string) error { return l.Kill(h) }),
			hostCmd("restart", "boot a killed host again with its disk state (a reboot)", func(c *cli.Context, l *lab.Lab, h string) error {
				return l.Restart(c.Context, h)
			}),
			hostCmd("exec", "run a command inside the host as root: exec HOST -- CMD…", func(c *cli.Context, l *lab.Lab, h string) error {
				argv := c.Args().Tail()
				if len(argv) > 0 && argv[0] == "--" {
					argv = argv[1:] // urfave/cli keeps "--" once parsing stopped at HOST
				}
				if len(argv) == 0 {
					return errors.New("exec: no command (exec HOST -- CMD…)")
				}
				out, err := l.Exec(c.Context, h, argv...)
				_, _ = stdout.Write(out)
				return err
			}),
		},
	}
}

type hostStatus struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	State   string `json:"state"`
}

func printStatus(w io.Writer, l *lab.Lab, asJSON bool) error {
	var hosts []hostStatus
	for _, h := range l.Hosts {
		st, err := l.HostState(h.Name)
		if err != nil {
			return err
		}
		hosts = append(hosts, hostStatus{h.Name, h.Address, h.Port, st})
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		doc := map[string]any{
			"dir": l.Dir, "ssh_config": l.SSHConfig, "known_hosts": l.KnownHosts, "inventory": l.Inventory,
			"inventory_ini": l.InventoryINI, "key_file": l.KeyFile, "sudo_user": l.SudoUser, "hosts": hosts,
		}
		if l.Prometheus != nil {
			doc["prometheus"] = l.Prometheus.URL()
		}
		return enc.Encode(doc)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tSTATE")
	for _, h := range hosts {
		fmt.Fprintf(tw, "%s\t%s:%d\t%s\n", h.Name, h.Address, h.Port, h.State)
	}
	return tw.Flush()
}

// reorder moves a subcommand's flags in front of its positional arguments, so
// `drover-lab kill h2 --dir x` works like `drover-lab kill --dir x h2` (urfave/cli
// stops parsing flags at the first positional). Everything after "--" stays put.
func reorder(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.Name == args[1] {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, positional []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		name := strings.TrimLeft(a, "-")
		if !strings.HasPrefix(a, "-") || a == "-" {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		if n, _, hasValue := strings.Cut(name, "="); !hasValue && takesValue[n] && i+1 < len(rest) {
			flags = append(flags, rest[i+1])
			i++
		}
	}
	out := append([]string{args[0], args[1]}, flags...)
	return append(out, positional...)
}
