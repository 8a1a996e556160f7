package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// planDoc is the plan as data: what --json prints and what the text view renders.
type planDoc struct {
	Playbook    string            `json:"playbook"`
	Description string            `json:"description,omitempty"`
	File        string            `json:"file"`
	Hosts       []string          `json:"hosts"`           // targets.hosts patterns
	Where       string            `json:"where,omitempty"` // targets.where as written
	Matched     int               `json:"matched"`         // inventory hosts the patterns matched
	Targets     int               `json:"targets"`         // hosts the plan covers
	FactSource  string            `json:"fact_source"`     // "cache" (--cached) or "cache or gathered"
	Settings    planSettings      `json:"settings"`
	LeftOut     []leftOutHost     `json:"left_out"`
	Unreachable []unreachableHost `json:"unreachable"`
	Stages      []planStage       `json:"stages"`
	Previews    []hostPreview     `json:"previews"` // step previews of the shown hosts
	Rollback    []string          `json:"rollback,omitempty"`
	// Live is what the hosts said would change (--live only).
	Live *liveDoc `json:"live,omitempty"`

	jobs []liveJob // every targeted host's evaluated steps, for --live
}

// liveDoc is plan --live: each targeted host's steps checked in check mode.
type liveDoc struct {
	Hosts       []liveHost `json:"hosts"`        // stage order
	WouldChange []string   `json:"would_change"` // hosts with a step that would change or run
	NoChange    []string   `json:"no_change"`
	Errors      []string   `json:"errors"` // a check failed, or the host could not be reached
}

// liveHost is one host's check: status is "would change", "no change", "error"
// or "unreachable".
type liveHost struct {
	Host   string      `json:"host"`
	Stage  string      `json:"stage"`
	Status string      `json:"status"`
	Error  string      `json:"error,omitempty"`
	Steps  []stepCheck `json:"steps"`
}

// stepCheck is one step's mark: would change, no change, would run, not
// checked, skipped or error, with the detail ("1.0 -> 2.0").
type stepCheck struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Mark   string `json:"mark"`
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

type planSettings struct {
	Forks       int    `json:"forks"`
	Become      bool   `json:"become"`
	Lock        bool   `json:"lock"`
	StepTimeout string `json:"step_timeout,omitempty"`
	Window      string `json:"window,omitempty"`
}

// leftOutHost is a host targets.where excluded, with the facts it looked at.
type leftOutHost struct {
	Host  string      `json:"host"`
	Facts []factValue `json:"facts"`
}

// factValue is one fact an expression refers to and a host's value of it.
type factValue struct {
	Fact  string `json:"fact"`  // facts.os.family
	Value any    `json:"value"` // null when not set
	Set   bool   `json:"set"`
}

type unreachableHost struct {
	Host  string `json:"host"`
	Error string `json:"error"`
}

type planStage struct {
	Name      string     `json:"name"`
	Kind      string     `json:"kind"`
	Hosts     []string   `json:"hosts"`
	Batches   [][]string `json:"batches"`
	Parallel  int        `json:"parallel"`
	MaxFailed int        `json:"max_failed"`
	Pause     string     `json:"pause,omitempty"`
	SpreadBy  string     `json:"spread_by,omitempty"`
	Domains   []string   `json:"domains,omitempty"`
	Gate      *planGate  `json:"gate,omitempty"`
}

type planGate struct {
	Wait     string          `json:"wait,omitempty"`
	Timeout  string          `json:"timeout"`
	Interval string          `json:"interval"`
	Confirm  bool            `json:"confirm"`
	Checks   []actionPreview `json:"checks"`
}

// hostPreview is what one host would go through, in order.
type hostPreview struct {
	Host    string          `json:"host"`
	Address string          `json:"address"`
	Stage   string          `json:"stage"`
	Before  []actionPreview `json:"before"`
	Steps   []actionPreview `json:"steps"`
	Health  []actionPreview `json:"health"`
	After   []actionPreview `json:"after"`
}

// actionPreview is one step or check: what it would run, or why it would not.
type actionPreview struct {
	Kind     string   `json:"kind"`
	Name     string   `json:"name"`
	Commands []string `json:"commands,omitempty"`
	Skipped  bool     `json:"skipped,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Timeout  string   `json:"timeout,omitempty"`
	Error    string   `json:"error,omitempty"`
	// Check is the step's live mark on this host (--live only).
	Check *stepCheck `json:"check,omitempty"`
}

func (a actionPreview) title() string {
	if a.Name == "" || a.Name == a.Kind {
		return a.Kind
	}
	return a.Kind + " " + strconv.Quote(a.Name)
}

// jsonText is a fact value as it reads in an expression: strings quoted.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// renderPlan prints the plan for a person, top to bottom in the order things
// would happen.
func renderPlan(w io.Writer, pal *palette, d *planDoc) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)\n", pal.bold.Sprint("Playbook"), pal.bold.Sprint(d.Playbook), d.File)
	if d.Description != "" {
		fmt.Fprintf(&b, "  %s\n", d.Description)
	}
	s := d.Settings
	settings := []string{fmt.Sprintf("forks %d", s.Forks)}
	if s.Become {
		settings = append(settings, "become")
	}
	if s.StepTimeout != "" {
		settings = append(settings, "step timeout "+s.StepTimeout)
	}
	if s.Lock {
		settings = append(settings, "locked")
	}
	if s.Window != "" {
		settings = append(settings, "window "+s.Window)
	}
	fmt.Fprintf(&b, "  %s\n", strings.Join(settings, ", "))

	fmt.Fprintf(&b, "\n%s hosts %s", pal.bold.Sprint("Targets:"), jsonText(d.Hosts))
	if d.Where != "" {
		fmt.Fprintf(&b, ", where %s", d.Where)
	}
	fmt.Fprintf(&b, "\n  %d matched in the inventory, %d targeted, %d left out by where, %d unreachable (facts from %s)\n",
		d.Matched, d.Targets, len(d.LeftOut), len(d.Unreachable), d.FactSource)

	width := 0
	for _, l := range d.LeftOut {
		width = max(width, len(l.Host))
	}
	for _, u := range d.Unreachable {
		width = max(width, len(u.Host))
	}
	if len(d.LeftOut) > 0 {
		fmt.Fprintf(&b, "\n%s\n", pal.bold.Sprint("Left out by where:"))
		for _, l := range d.LeftOut {
			why := factValuesText(l.Facts)
			if why == "" {
				why = "where is false"
			}
			fmt.Fprintf(&b, "  %-*s  %s\n", width, l.Host, why)
		}
	}
	if len(d.Unreachable) > 0 {
		fmt.Fprintf(&b, "\n%s\n", pal.bold.Sprint("Unreachable (facts could not be gathered; not planned):"))
		for _, u := range d.Unreachable {
			fmt.Fprintf(&b, "  %-*s  %s %s\n", width, u.Host, pal.status(statusUnreachable, statusUnreachable+":"), u.Error)
		}
	}
	if d.Targets == 0 {
		b.WriteString("\nNo host is left to run on.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}

	fmt.Fprintf(&b, "\n%s %s\n", pal.bold.Sprint("Stages:"), plural(d.Targets, "host"))
	for i, st := range d.Stages {
		renderStage(&b, pal, i+1, st)
	}
	for _, hp := range d.Previews {
		renderHostPreview(&b, pal, hp)
	}
	if d.Live != nil {
		renderLive(&b, pal, d.Live)
	}
	if len(d.Rollback) > 0 {
		fmt.Fprintf(&b, "\n%s %s (evaluated on a failed host, with what it had before)\n",
			pal.bold.Sprint("Rollback:"), strings.Join(d.Rollback, ", "))
	}
	if len(d.Previews) == 1 && d.Targets > 1 {
		b.WriteString(pal.dim.Sprint("\n(--host HOST for another host's steps, -v for every host)") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func renderStage(b *strings.Builder, pal *palette, n int, st planStage) {
	title := st.Kind
	if st.Kind == "batch" {
		title = "batch " + strconv.Quote(st.Name)
	}
	var facts []string
	facts = append(facts, plural(len(st.Hosts), "host"))
	if len(st.Batches) > 1 {
		facts = append(facts, fmt.Sprintf("%d batches of up to %d", len(st.Batches), len(st.Batches[0])))
	}
	if st.Parallel > 0 && len(st.Hosts) > 0 {
		facts = append(facts, fmt.Sprintf("%d at once", st.Parallel))
	}
	if st.Pause != "" && len(st.Batches) > 1 {
		facts = append(facts, "pause "+st.Pause)
	}
	facts = append(facts, fmt.Sprintf("max %d failed", st.MaxFailed))
	if st.SpreadBy != "" {
		facts = append(facts, fmt.Sprintf("spread by %s (%s)", st.SpreadBy, plural(len(st.Domains), "domain")))
	}
	fmt.Fprintf(b, "  %d. %s: %s\n", n, pal.bold.Sprint(title), strings.Join(facts, ", "))
	if len(st.Hosts) == 0 {
		fmt.Fprintf(b, "     %s\n", pal.dim.Sprint("(no hosts left for this stage)"))
	}
	for i, batch := range st.Batches {
		fmt.Fprintf(b, "     batch %d: %s\n", i+1, strings.Join(batch, " "))
	}
	if g := st.Gate; g != nil {
		how := []string{}
		if g.Wait != "" {
			how = append(how, "wait "+g.Wait)
		}
		if len(g.Checks) > 0 {
			how = append(how, fmt.Sprintf("retry every %s for up to %s", g.Interval, g.Timeout))
		}
		if g.Confirm {
			how = append(how, "operator confirmation")
		}
		when := "after each batch"
		if st.Kind == "remaining" {
			when = "after the stage"
		}
		fmt.Fprintf(b, "     gate %s: %s\n", when, strings.Join(how, ", "))
		for _, c := range g.Checks {
			renderAction(b, pal, "       ", c)
		}
	}
}

func renderHostPreview(b *strings.Builder, pal *palette, hp hostPreview) {
	fmt.Fprintf(b, "\n%s %s (%s, stage %s)\n", pal.bold.Sprint("Steps on"), pal.bold.Sprint(hp.Host), hp.Address, hp.Stage)
	section := func(name string, list []actionPreview) {
		if len(list) == 0 {
			return
		}
		fmt.Fprintf(b, "  %s:\n", name)
		for _, a := range list {
			renderAction(b, pal, "    ", a)
		}
	}
	section("before", hp.Before)
	if len(hp.Steps) > 0 {
		b.WriteString("  steps:\n")
		for i, a := range hp.Steps {
			renderAction(b, pal, fmt.Sprintf("    %d. ", i+1), a)
		}
	}
	section("health", hp.Health)
	section("after", hp.After)
}

// renderAction prints one step or check: its title, then what it would run, one
// line each, or why it would not.
func renderAction(b *strings.Builder, pal *palette, indent string, a actionPreview) {
	pad := strings.Repeat(" ", len(indent))
	switch {
	case a.Error != "":
		fmt.Fprintf(b, "%s%s: %s %s\n", indent, a.title(), pal.status(statusFailed, "error:"), a.Error)
	case a.Skipped:
		fmt.Fprintf(b, "%s%s: %s\n", indent, a.title(), pal.dim.Sprint("skipped, "+a.Reason))
	default:
		head := a.title()
		if a.Timeout != "" {
			head += " (timeout " + a.Timeout + ")"
		}
		fmt.Fprintf(b, "%s%s\n", indent, head)
		for _, c := range a.Commands {
			// A script (reboot's check) keeps its lines under its dash.
			fmt.Fprintf(b, "%s  - %s\n", pad, strings.ReplaceAll(c, "\n", "\n"+pad+"    "))
		}
	}
	if a.Check != nil {
		fmt.Fprintf(b, "%s  = %s\n", pad, checkText(pal, *a.Check))
	}
}

// checkText is a live mark with its detail: "would change: 1.0 -> 2.0".
func checkText(pal *palette, c stepCheck) string {
	st := statusFailed
	switch c.Mark {
	case markNoChange:
		st = statusOK
	case markSkipped, markNotChecked:
		st = statusSkipped
	case markWouldChange, markWouldRun:
		st = statusUnreachable // the warning colour: not a failure
	}
	text := pal.status(st, c.Mark)
	switch {
	case c.Error != "":
		text += ": " + c.Error
	case c.Detail != "":
		text += ": " + c.Detail
	}
	return text
}

// renderLive prints every checked host, its status, and each step's mark.
func renderLive(b *strings.Builder, pal *palette, l *liveDoc) {
	fmt.Fprintf(b, "\n%s %s asked in check mode, nothing changed: %d would change, %d no change, %s\n",
		pal.bold.Sprint("Live check:"), plural(len(l.Hosts), "host"), len(l.WouldChange), len(l.NoChange), plural(len(l.Errors), "error"))
	width := 0
	for _, h := range l.Hosts {
		width = max(width, len(h.Host))
	}
	for _, h := range l.Hosts {
		head := checkText(pal, stepCheck{Mark: h.Status})
		if h.Status == statusUnreachable {
			head = pal.status(statusUnreachable, h.Status) + ": " + h.Error
		}
		fmt.Fprintf(b, "  %-*s  %s\n", width, h.Host, head)
		for _, s := range h.Steps {
			a := actionPreview{Kind: s.Kind, Name: s.Name}
			fmt.Fprintf(b, "  %-*s    %s: %s\n", width, "", a.title(), checkText(pal, s))
		}
	}
}
