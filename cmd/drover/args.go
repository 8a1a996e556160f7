package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs lets flags stand after positional arguments, as users expect from
// ansible and kubectl: urfave/cli v2 (like Go's flag package) stops parsing flags at
// the first positional. It walks the command path in args (program name first) and,
// for the command that will run, moves that command's flags — with their values —
// ahead of its positionals. Which flags take a value comes from the cli.Flag
// definitions themselves.
//
// The positionals are put after an explicit "--" so that one looking like a flag is
// never parsed as one, and a "--" the user wrote is kept (with everything after it,
// untouched) so a command can tell PATTERN from a remote command line: the command's
// Args() are the positionals, then "--" and the rest if the user wrote "--".
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out := []string{args[0]}
	flags, cmds := app.Flags, app.Commands
	rest := args[1:]
	for {
		valued := valueFlags(flags)
		var flagToks, positionals, tail []string
		var sub *cli.Command
		dashdash := false
		i := 0
	scan:
		for i < len(rest) {
			tok := rest[i]
			switch {
			case tok == "--":
				dashdash = true
				tail = rest[i+1:]
				i = len(rest)
				break scan
			case len(tok) > 1 && tok[0] == '-':
				flagToks = append(flagToks, tok)
				name := strings.TrimLeft(tok, "-")
				if !strings.Contains(name, "=") && valued[name] && i+1 < len(rest) {
					flagToks = append(flagToks, rest[i+1])
					i++
				}
			default:
				// The first positional may name a subcommand; then what follows is
				// that subcommand's to sort out.
				if len(positionals) == 0 {
					if c := findCommand(cmds, tok); c != nil {
						sub = c
						i++
						break scan
					}
				}
				positionals = append(positionals, tok)
			}
			i++
		}
		out = append(out, flagToks...)
		if sub != nil {
			out = append(out, sub.Name)
			flags, cmds, rest = sub.Flags, sub.Subcommands, rest[i:]
			continue
		}
		if len(positionals) > 0 || dashdash {
			out = append(out, "--")
			out = append(out, positionals...)
		}
		if dashdash {
			out = append(out, "--")
			out = append(out, tail...)
		}
		return out
	}
}

// valueFlags is the set of names (without dashes) of the flags that take a value.
func valueFlags(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		tv, ok := f.(interface{ TakesValue() bool })
		if !ok || !tv.TakesValue() {
			continue
		}
		for _, n := range f.Names() {
			m[n] = true
		}
	}
	return m
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
