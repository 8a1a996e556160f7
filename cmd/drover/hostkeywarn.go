package main

import (
	"fmt"
	"io"
	"strings"
)

// maxNamedHosts bounds how many host names the host-key warning lists.
const maxNamedHosts = 5

// warnInsecureHostKeys prints one warning per run when any target is reached with
// StrictHostKeyChecking no: unknown host keys are then accepted unverified, which
// the operator must not forget is on (a setting left over in ssh_config is easy
// to miss). Changed keys are refused under every policy, so the warning says so.
func warnInsecureHostKeys(w io.Writer, ts []target, sshConfig string) {
	var names []string
	for _, t := range ts {
		switch strings.ToLower(strings.TrimSpace(t.ep.StrictHostKeyChecking)) {
		case "no", "off", "false":
			names = append(names, t.host.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	shown := strings.Join(names, ", ")
	if len(names) > maxNamedHosts {
		shown = fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamedHosts], ", "), len(names)-maxNamedHosts)
	}
	from := "ssh_config"
	if sshConfig != "" {
		from = sshConfig
	}
	fmt.Fprintf(w, "drover: warning: StrictHostKeyChecking no (from %s) for %s: unknown host keys are accepted "+
		"without verification (changed keys are still refused); use yes, or accept-new to record keys once\n", from, shown)
}
