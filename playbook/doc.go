// Package playbook reads drover playbooks: it decodes and validates the HCL
// language of SPEC §4 (blocks, attributes, variables and their inputs), reports
// every problem at once as HCL diagnostics with file, line, column and a source
// snippet, and evaluates the per-host expressions (when, step attributes, checks)
// later, once a host's facts are known.
//
// Attributes whose expressions refer only to `var` are evaluated and checked at
// load time; those that refer to `host`, `facts`, `stage` or `prior` are kept as
// hcl.Expression and evaluated per host with HostContext, by the Evaluate
// methods of Step and Check.
package playbook
