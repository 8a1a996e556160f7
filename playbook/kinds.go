package playbook

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// kindSpec describes one step or check kind: whether its label is required, its
// attributes, and which container blocks may hold it.
type kindSpec struct {
	labelRequired bool
	fields        []fieldSpec
}

var (
	fTimeoutStep = fieldSpec{name: "timeout", kind: kDuration, dmin: time.Second, dmax: 24 * time.Hour}
	fRetries     = fieldSpec{name: "retries", kind: kNumber, min: 0, max: 1000}
	fInterval    = fieldSpec{name: "interval", kind: kDuration, dmin: 100 * time.Millisecond, dmax: time.Hour}
	fTimeoutChk  = fieldSpec{name: "timeout", kind: kDuration, dmin: 100 * time.Millisecond, dmax: time.Hour}
	fURL         = fieldSpec{name: "url", kind: kString, required: true, validate: validURL}
)

// stepKinds are the step kinds of SPEC §4.
var stepKinds = map[string]kindSpec{
	"package": {labelRequired: true, fields: []fieldSpec{
		{name: "name", kind: kString, safe: safeName, safeWhat: "package name"},
		{name: "version", kind: kString, safe: safeVersion, safeWhat: "package version"},
		{name: "state", kind: kString, enum: []string{"present", "latest", "absent"}},
		fTimeoutStep,
	}},
	"service": {labelRequired: true, fields: []fieldSpec{
		{name: "name", kind: kString, safe: safeName, safeWhat: "service name"},
		{name: "state", kind: kString, required: true, enum: []string{"started", "stopped", "restarted", "reloaded"}},
		{name: "enabled", kind: kBool},
		fTimeoutStep,
	}},
	"puppet": {fields: []fieldSpec{
		{name: "action", kind: kString, enum: []string{"run", "enable", "disable"}},
		{name: "tags", kind: kStrings, safe: safeWord, safeWhat: "Puppet tag"},
		{name: "noop", kind: kBool},
		{name: "manifest", kind: kString},
		{name: "environment", kind: kString, safe: safeWord, safeWhat: "Puppet environment"},
		{name: "reason", kind: kString, validate: oneLine},
		fTimeoutStep,
	}},
	"command": {labelRequired: true, fields: []fieldSpec{
		{name: "run", kind: kString, required: true, validate: nonEmpty},
		{name: "creates", kind: kString, validate: absPath},
		fTimeoutStep,
	}},
	"upload": {labelRequired: true, fields: []fieldSpec{
		{name: "source", kind: kString, validate: localSource},
		{name: "content", kind: kString},
		{name: "destination", kind: kString, required: true, validate: absPath},
		{name: "mode", kind: kString, safe: safeMode, safeWhat: "octal file mode"},
		{name: "owner", kind: kString, safe: safeName, safeWhat: "owner"},
		fTimeoutStep,
	}},
	"patch": {fields: []fieldSpec{
		{name: "mode", kind: kString, enum: []string{"upgrade", "dist-upgrade"}},
		{name: "security_only", kind: kBool},
		{name: "exclude", kind: kStrings, safe: safeName, safeWhat: "package name"},
		fTimeoutStep,
	}},
	"reboot": {fields: []fieldSpec{
		{name: "force", kind: kBool},
		fTimeoutStep,
	}},
}

// checkKinds are the kinds of before/after actions, health checks and gate checks.
var checkKinds = map[string]kindSpec{
	"http": {fields: []fieldSpec{
		fURL,
		{name: "method", kind: kString, enum: []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}},
		{name: "status", kind: kNumber, min: 100, max: 599},
		{name: "body", kind: kString},
		{name: "body_regex", kind: kString, validate: validRegexp},
		{name: "headers", kind: kStrMap},
		fRetries, fInterval, fTimeoutChk,
	}},
	"tcp": {fields: []fieldSpec{
		{name: "address", kind: kString, required: true, validate: hostPort},
		fRetries, fInterval, fTimeoutChk,
	}},
	"command": {fields: []fieldSpec{
		{name: "run", kind: kString, required: true, validate: nonEmpty},
		fRetries, fInterval, fTimeoutChk,
	}},
	"prometheus": {fields: []fieldSpec{
		fURL,
		{name: "query", kind: kString, required: true, validate: nonEmpty},
		{name: "min", kind: kNumber},
		{name: "max", kind: kNumber},
		{name: "empty_ok", kind: kBool},
		fRetries, fInterval, fTimeoutChk,
	}},
}

// Which check kinds each container accepts.
var (
	actionKinds = []string{"http", "command"}
	healthKinds = []string{"http", "tcp", "command", "prometheus"}
	gateKinds   = []string{"http", "tcp", "command", "prometheus"}
	stepOrder   = []string{"package", "service", "puppet", "command", "upload", "patch", "reboot"}
)

func validURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("%q is not an http:// or https:// URL.", s)
	}
	return ""
}

func validRegexp(s string) string {
	if _, err := regexp.Compile(s); err != nil {
		return fmt.Sprintf("%q is not a valid regular expression (Go RE2 syntax): %v.", s, err)
	}
	return ""
}

func hostPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err != nil {
		return fmt.Sprintf("%q is not an address of the form host:port.", s)
	}
	return ""
}

// localSource accepts an upload source on the controller: an absolute path, or
// a relative one that stays inside the playbook's directory (no "..", so a
// playbook shared with others cannot reach for ~/.ssh through a relative path).
func localSource(s string) string {
	if s == "" {
		return "The value must not be empty."
	}
	if !filepath.IsAbs(s) && !filepath.IsLocal(s) {
		return fmt.Sprintf("%q leaves the playbook's directory; use a path inside it, or an absolute path.", s)
	}
	return ""
}

// oneLine accepts free text that ends up as one argument of a remote command
// (quoted there): no control characters, which only serve to forge output.
func oneLine(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Sprintf("%q contains a control character (NUL, newline, …); write it on one line.", s)
	}
	return ""
}

// absPath accepts a remote file path: absolute, already clean (no "..", "//" or
// trailing "/", so what is checked is what is written) and free of control
// characters, which no file name of a managed host should need.
func absPath(s string) string {
	switch {
	case !path.IsAbs(s):
		return fmt.Sprintf("%q is not an absolute path.", s)
	case strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Sprintf("%q contains a control character (NUL, newline, …).", s)
	case path.Clean(s) != s:
		return fmt.Sprintf("%q is not a clean path; write %q.", s, path.Clean(s))
	}
	return ""
}

func nonEmpty(s string) string {
	if s == "" {
		return "The value must not be empty."
	}
	return ""
}
