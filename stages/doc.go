// Package stages plans and runs a rollout. The planner turns a playbook's canary, batch and
// remaining blocks and the ordered target hosts into a concrete, deterministic plan: which
// hosts each stage takes, in which batches, how many at once and how many failures it
// tolerates (rounding rules in docs/playbooks.md). The Engine executes that plan host by
// host over one connection each — before actions, steps, health checks, after actions —
// with gates after every batch, per-stage failure budgets and rollback, and reports every
// transition as a report.Event.
package stages
