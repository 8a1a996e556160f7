// Package steps turns package, service and Puppet actions into the remote
// commands that carry them out on one host, over a transport.Runner, and reports
// each as ok / changed / skipped / failed with the state before and after.
//
// Backends are chosen from the package_manager (apt, dnf, yum, zypper, apk) and
// init_system (systemd, sysv, openrc) facts. Every name and version is validated
// and shell-quoted before a command line is built, so untrusted input is refused
// before anything connects. Each action also has a dry-run form (Options.DryRun)
// that reports what would change without changing it, for `plan --live`.
package steps
