// Package stages turns a playbook's canary, batch and remaining blocks and the
// ordered target hosts into a concrete, deterministic rollout plan: which hosts
// each stage takes, in which batches, how many at once and how many failures it
// tolerates. The rounding rules are documented in docs/playbooks.md.
package stages
