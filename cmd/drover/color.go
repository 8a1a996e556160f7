package main

import "github.com/fatih/color"

// useColor decides colour for one writer: only on a terminal, never when NO_COLOR is
// set to anything non-empty (no-color.org) or --no-color was given.
func useColor(isTerminal bool, noColorEnv string, noColorFlag bool) bool {
	return isTerminal && noColorEnv == "" && !noColorFlag
}

// palette holds the colours of one output stream. Each color.Color is switched on or
// off explicitly so fatih/color's package-level guess (made from os.Stdout at init)
// never decides for us.
type palette struct {
	ok, failed, unreachable, dim, bold *color.Color
}

func newPalette(enabled bool) *palette {
	p := &palette{
		ok:          color.New(color.FgGreen),
		failed:      color.New(color.FgRed, color.Bold),
		unreachable: color.New(color.FgYellow),
		dim:         color.New(color.Faint),
		bold:        color.New(color.Bold),
	}
	for _, c := range []*color.Color{p.ok, p.failed, p.unreachable, p.dim, p.bold} {
		if enabled {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	return p
}

// status colours a padded status word by what it means.
func (p *palette) status(status, text string) string {
	switch status {
	case statusOK:
		return p.ok.Sprint(text)
	case statusUnreachable:
		return p.unreachable.Sprint(text)
	case statusSkipped:
		return p.dim.Sprint(text)
	default:
		return p.failed.Sprint(text)
	}
}
