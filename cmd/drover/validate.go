package main

import (
	"fmt"
	"io"

	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/playbook"
	"github.com/hashicorp/hcl/v2"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// varFlags set playbook variables; validate, plan and run share them.
func varFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "var", Usage: "set a playbook variable `NAME=VALUE` (repeatable; wins over --var-file and DROVER_VAR_NAME)"},
		&cli.StringSliceFlag{Name: "var-file", Usage: "read variables from an HCL or JSON `FILE` of name = value (repeatable, later wins)"},
	}
}

// varInputs collects --var, --var-file and DROVER_VAR_* for playbook.Load.
func varInputs(c *cli.Context, e *env) playbook.VarInputs {
	in := playbook.VarInputs{Flags: c.StringSlice("var"), Files: c.StringSlice("var-file")}
	if e.environ != nil {
		in.Environ = e.environ()
	}
	return in
}

// playbookArg is the one positional PLAYBOOK of validate and plan.
func playbookArg(c *cli.Context) (string, error) {
	args := c.Args().Slice()
	switch len(args) {
	case 0:
		return "", badInput(cmdPath(c), "missing PLAYBOOK")
	case 1:
		return args[0], nil
	}
	return "", badInput(cmdPath(c), "takes one PLAYBOOK, got %q", args)
}

// diagPrinter prints HCL diagnostics on stderr, coloured only on a terminal.
type diagPrinter struct {
	w     io.Writer
	color bool
	width uint
}

func newDiagPrinter(e *env, noColorFlag bool) diagPrinter {
	d := diagPrinter{w: e.stderr, color: useColor(e.stderrTTY, e.getenv("NO_COLOR"), noColorFlag)}
	if e.stderrTTY {
		d.width = 100
		if w, _, err := term.GetSize(2); err == nil && w > 20 {
			d.width = uint(w) - 1
		}
	}
	return d
}

// report prints diags (warnings too) and turns errors among them into a
// diagnosticsError for file.
func (d diagPrinter) report(file string, files *playbook.Files, diags hcl.Diagnostics) error {
	if len(diags) == 0 {
		return nil
	}
	if err := playbook.WriteDiagnostics(d.w, files, diags, d.color, d.width); err != nil {
		return fmt.Errorf("printing diagnostics: %w", err)
	}
	if n := len(diags.Errs()); n > 0 {
		return &diagnosticsError{File: file, Errors: n}
	}
	return nil
}

func validateCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "parse and check a playbook without connecting to any host",
		ArgsUsage: "PLAYBOOK",
		Description: "Every problem is reported at once on stderr as a diagnostic with FILE:LINE:COL and a source\n" +
			"snippet. With an inventory (-i or $DROVER_INVENTORY), facts.X references are also checked\n" +
			"against the fact cache of its hosts (whatever its age), so a misspelt fact is caught before a\n" +
			"run. Exit status: 0 valid, 2 invalid.",
		HideHelpCommand: true,
		OnUsageError:    usageError,
		Flags: append(varFlags(),
			&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `SRC` whose cached facts the playbook's facts.X must exist in"},
			&cli.BoolFlag{Name: "no-color", Usage: "no colour even on a terminal"},
		),
		Action: func(c *cli.Context) error { return validateAction(c, e) },
	}
}

func validateAction(c *cli.Context, e *env) error {
	path, err := playbookArg(c)
	if err != nil {
		return err
	}
	dp := newDiagPrinter(e, c.Bool("no-color"))
	p, files, diags := playbook.Load(path, varInputs(c, e))
	if p != nil && !diags.HasErrors() {
		known, err := cachedFactNames(c, e)
		if err != nil {
			return err
		}
		if known != nil {
			diags = append(diags, p.CheckFactRefs(known)...)
		}
	}
	return dp.report(path, files, diags)
}

// cachedFactNames is the lookup of fact names that some host of the inventory has
// in the fact cache; nil when no inventory was named or nothing is cached (then
// fact names cannot be checked without connecting, and validate never connects).
func cachedFactNames(c *cli.Context, e *env) (func(string) bool, error) {
	src := c.String("inventory")
	if src == "" {
		src = e.getenv("DROVER_INVENTORY")
	}
	dir := stateDir(e)
	if src == "" || dir == "" {
		return nil, nil
	}
	inv, err := loadInventory(c.Context, &options{cmd: cmdPath(c), inventory: src})
	if err != nil {
		return nil, err
	}
	cache := &facts.Cache{Dir: factCacheDir(dir)}
	var all []map[string]any
	for _, h := range inv.Hosts {
		f, _, _, err := cache.Load(h.Name)
		if err != nil {
			fmt.Fprintf(e.stderr, "drover: warning: %s: %v\n", h.Name, err)
		}
		if f != nil {
			all = append(all, f)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return playbook.KnownFacts(all), nil
}
