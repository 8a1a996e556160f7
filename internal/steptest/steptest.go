// Package steptest helps tests that fake a host for the steps package: it plays the
// composite scripts some steps send in one round trip as the shell would, one part at
// a time, so a fake need only understand plain commands.
package steptest

import (
	"regexp"

	"github.com/drover-sh/drover/transport"
)

// composite matches the change-then-check scripts of the package and service steps:
// "CHANGE\nrc=$?\nprintf … MARKER\nSTATUS\nexit $rc" (package) and
// "{ CHANGE; }\nrc=$?\n[ $rc -eq 0 ] || exit $rc\nprintf … MARKER\nVERIFY" (service).
var composite = regexp.MustCompile(`(?s)^(\{ )?(.*?)(?:; \})?\nrc=\$\?\n(\[ \$rc -eq 0 \] \|\| exit \$rc\n)?printf '\\n%s\\n' (\S+)\n(.*?)(?:\nexit \$rc)?$`)

// RunComposite plays such a script on a fake host, one part at a time through run, as
// the shell would; ok is false when cmd is not one.
func RunComposite(cmd string, run func(string) (*transport.Result, error)) (res *transport.Result, ok bool, err error) {
	m := composite.FindStringSubmatch(cmd)
	if m == nil {
		return nil, false, nil
	}
	change, service, marker, check := m[2], m[3] != "", m[4], m[5]
	first, err := run(change)
	if err != nil || (service && first.ExitCode != 0) {
		return first, true, err
	}
	second, err := run(check)
	if err != nil {
		return nil, true, err
	}
	out := &transport.Result{ExitCode: first.ExitCode, Stderr: append(first.Stderr, second.Stderr...)}
	out.Stdout = append(append([]byte(nil), first.Stdout...), "\n"+marker+"\n"...)
	out.Stdout = append(out.Stdout, second.Stdout...)
	if service {
		out.ExitCode = second.ExitCode
	}
	return out, true, nil
}
