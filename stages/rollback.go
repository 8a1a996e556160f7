package stages

// Rollback: steps record what they found before changing a host (`prior`), and
// a failed host runs the playbook's rollback block with it.

import (
	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/report"
	"github.com/drover-sh/drover/steps"
)

// remember records the state a step found before it acted, the first time a
// package or service is touched, as prior.package[NAME] (the installed
// version, "" when absent) and prior.service[NAME] ("running" or "stopped").
// A step that failed before it could look records nothing.
func (hr *hostRun) remember(spec *playbook.StepSpec, res *steps.Result) {
	if res == nil || res.Before == nil {
		return
	}
	put := func(kind, name, value string) {
		m, _ := hr.prior[kind].(map[string]any)
		if m == nil {
			m = map[string]any{}
			hr.prior[kind] = m
		}
		if _, seen := m[name]; !seen {
			m[name] = value
		}
	}
	switch {
	case spec.Package != nil:
		put("package", spec.Package.Name, res.Before["version"])
	case spec.Service != nil:
		put("service", spec.Service.Name, res.Before["state"])
	}
}

// rollback runs every rollback step in order over the host's connection, with
// prior as recorded. It runs even when the rollout is halting or was
// interrupted: leaving a failed host half-changed is worse than finishing it.
// The first failing step ends it.
func (hr *hostRun) rollback() error {
	for _, s := range hr.r.e.Playbook.Rollback {
		if err := hr.step(report.PhaseRollback, s); err != nil {
			return err
		}
	}
	return nil
}
