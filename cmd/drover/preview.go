package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"al.essio.dev/pkg/shellescape"
	"github.com/drover-sh/drover/facts"
	"github.com/drover-sh/drover/playbook"
)

// commandPreviewer turns one step, evaluated for one host, into the lines `plan`
// shows for it: the commands the step would run there. hostFacts pick the backend
// (package_manager, init_system). The steps package is to provide the real one,
// printing the exact remote command lines; until then specPreviewer describes the
// step's spec. An error (an invalid name, an unsupported backend) is shown on the
// step and makes the plan fail.
type commandPreviewer interface {
	Commands(spec *playbook.StepSpec, hostFacts map[string]any) ([]string, error)
}

// specPreviewer describes what a step asks for, one clear line per action, with
// the backend the host's facts name.
type specPreviewer struct{}

func (specPreviewer) Commands(s *playbook.StepSpec, hostFacts map[string]any) ([]string, error) {
	via := func(fact string) string {
		if v, ok := facts.Facts(hostFacts).Get(fact); ok {
			if str, ok := v.(string); ok && str != "" {
				return " (" + str + ")"
			}
		}
		return ""
	}
	switch {
	case s.Package != nil:
		p := s.Package
		switch p.State {
		case "latest":
			return []string{"upgrade package " + p.Name + " to the latest version" + via("package_manager")}, nil
		case "absent":
			return []string{"remove package " + p.Name + via("package_manager")}, nil
		}
		if p.Version != "" {
			return []string{"install package " + p.Name + " version " + p.Version + via("package_manager")}, nil
		}
		return []string{"install package " + p.Name + " (any version)" + via("package_manager")}, nil
	case s.Service != nil:
		sv := s.Service
		var out []string
		if sv.State != "" {
			out = append(out, "service "+sv.Name+": "+sv.State+via("init_system"))
		}
		if sv.Enabled != nil {
			word := "disable"
			if *sv.Enabled {
				word = "enable"
			}
			out = append(out, word+" service "+sv.Name+" at boot"+via("init_system"))
		}
		return out, nil
	case s.Puppet != nil:
		return []string{puppetLine(s.Puppet)}, nil
	case s.Command != nil:
		if s.Command.Creates != "" {
			return []string{s.Command.Run, "(skipped when " + s.Command.Creates + " exists)"}, nil
		}
		return []string{s.Command.Run}, nil
	case s.Upload != nil:
		u := s.Upload
		src := u.Source
		if u.HasContent {
			src = strconv.Itoa(len(u.Content)) + " bytes of inline content"
		}
		mode := u.Mode
		if mode == 0 {
			mode = 0o644
		}
		line := fmt.Sprintf("upload %s -> %s (mode %04o", src, u.Destination, uint32(mode))
		if u.Owner != "" {
			line += ", owner " + u.Owner
		}
		return []string{line + ")"}, nil
	case s.Patch != nil:
		line := "upgrade all packages" + via("package_manager")
		if s.Patch.SecurityOnly {
			line = "apply security updates" + via("package_manager")
		}
		if len(s.Patch.Exclude) > 0 {
			line += ", excluding " + strings.Join(s.Patch.Exclude, ", ")
		}
		return []string{line}, nil
	case s.Reboot != nil:
		if s.Reboot.Force {
			return []string{"reboot, then wait for SSH to return"}, nil
		}
		return []string{"reboot if the system requires it, then wait for SSH to return"}, nil
	}
	return nil, fmt.Errorf("step %s %q: nothing to preview", s.Kind, s.Name)
}

func puppetLine(p *playbook.PuppetSpec) string {
	switch p.Action {
	case "enable":
		return "puppet agent --enable"
	case "disable":
		if p.Reason != "" {
			return "puppet agent --disable " + shellescape.Quote(p.Reason)
		}
		return "puppet agent --disable"
	}
	var b strings.Builder
	if p.Manifest != "" {
		b.WriteString("puppet apply " + shellescape.Quote(p.Manifest))
	} else {
		b.WriteString("puppet agent --onetime --no-daemonize")
	}
	if p.Environment != "" {
		b.WriteString(" --environment " + shellescape.Quote(p.Environment))
	}
	if len(p.Tags) > 0 {
		b.WriteString(" --tags " + shellescape.Quote(strings.Join(p.Tags, ",")))
	}
	if p.Noop {
		b.WriteString(" --noop")
	}
	return b.String()
}

// checkLine describes a check or action (before, health, after, gate).
func checkLine(c *playbook.CheckSpec) string {
	var line string
	switch {
	case c.HTTP != nil:
		h := c.HTTP
		line = h.Method + " " + h.URL
		if h.Status != 0 {
			line += fmt.Sprintf(", expect status %d", h.Status)
		} else {
			line += ", expect 2xx"
		}
		if h.Body != "" {
			line += ", body containing " + strconv.Quote(h.Body)
		}
	case c.TCP != nil:
		line = "connect to " + c.TCP.Address
	case c.Command != nil:
		line = c.Command.Run
	case c.Prometheus != nil:
		pc := c.Prometheus
		line = fmt.Sprintf("query %s at %s", strconv.Quote(pc.Query), pc.URL)
		switch {
		case pc.Min != nil && pc.Max != nil:
			line += fmt.Sprintf(", want %s <= value <= %s", fmtFloat(*pc.Min), fmtFloat(*pc.Max))
		case pc.Min != nil:
			line += ", want value >= " + fmtFloat(*pc.Min)
		case pc.Max != nil:
			line += ", want value <= " + fmtFloat(*pc.Max)
		}
	}
	var extra []string
	if c.Retries > 0 {
		extra = append(extra, fmt.Sprintf("retries %d", c.Retries))
	}
	if c.Interval > 0 {
		extra = append(extra, "every "+fmtDuration(c.Interval))
	}
	if c.Timeout > 0 {
		extra = append(extra, "timeout "+fmtDuration(c.Timeout))
	}
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	return line
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// fmtDuration is a duration as people write it: 2m rather than 2m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
