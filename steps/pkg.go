package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"al.essio.dev/pkg/shellescape"

	"github.com/drover-sh/drover/transport"
)

// Package states a PackageAction can ask for.
const (
	StatePresent = "present" // installed; at Version when one is given
	StateLatest  = "latest"  // installed at the candidate version
	StateAbsent  = "absent"  // removed
)

// PackageAction is one package step: install NAME[=VERSION], update to latest, or
// remove, optionally refreshing the package index first.
type PackageAction struct {
	Name    string
	Version string // only with State present; "" means any version
	State   string // present (default) | latest | absent
	// UpdateCache refreshes the package index before the query, unless it was
	// refreshed less than CacheValidTime ago (0: always), like Ansible's
	// update_cache / cache_valid_time.
	UpdateCache    bool
	CacheValidTime time.Duration
	// LockTimeout is how long to wait for another process holding the package
	// manager's lock; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// PkgStatus is what the host's package manager says about one package.
type PkgStatus struct {
	Name      string `json:"name"`
	Installed bool   `json:"installed"`
	Version   string `json:"version,omitempty"`   // installed version
	Candidate string `json:"candidate,omitempty"` // what an install or update would bring; "" when unknown
}

// PackageManager runs package actions with one backend (apt, dnf, yum, zypper, apk).
type PackageManager interface {
	// Name is the package_manager fact value this backend serves.
	Name() string
	// Status asks for the installed and candidate versions (one round trip).
	Status(ctx context.Context, r transport.Runner, name string, become *transport.Become) (PkgStatus, error)
	// Apply brings the package to the action's state: a status query (with the
	// cache refresh), the change when needed, and a verifying status query. The
	// Result is never nil; the error is the Result's Err.
	Apply(ctx context.Context, r transport.Runner, a PackageAction, o Options) (*Result, error)
	// Commands are the command lines Apply would run to make the change on a host
	// that does not have the package yet, for plan previews.
	Commands(a PackageAction) ([]string, error)
}

// PackageManagerFor picks the backend for a package_manager fact value.
func PackageManagerFor(fact string) (PackageManager, error) {
	switch fact {
	case "apt":
		return &pkgManager{b: aptBackend()}, nil
	case "dnf":
		return &pkgManager{b: rpmBackend("dnf", "upgrade", "/var/cache/dnf")}, nil
	case "yum":
		return &pkgManager{b: rpmBackend("yum", "update", "/var/cache/yum")}, nil
	case "zypper":
		return &pkgManager{b: zypperBackend()}, nil
	case "apk":
		return &pkgManager{b: apkBackend()}, nil
	}
	return nil, fmt.Errorf("%w: package manager %q (want apt, dnf, yum, zypper or apk)", ErrUnsupported, fact)
}

// pkgBackend holds one package manager's command syntax. Names and versions
// reaching it are validated and already quoted.
type pkgBackend struct {
	name   string
	status func(qname string) string
	// installed, when set, asks only what is installed: cheaper than status, which also
	// asks the repositories for the candidate (apt-cache builds its whole cache for it).
	installed   func(qname string) string
	parse       func(name, stdout string) PkgStatus
	refresh     func(lockSecs int) string
	stamps      []string // files or dirs whose newest mtime marks the last refresh
	change      func(a PackageAction, st PkgStatus, lockSecs int) string
	matches     func(installed, want string) bool
	lockProblem func(output string) string // output: stderr then stdout; non-empty: the command failed on the lock
}

type pkgManager struct{ b pkgBackend }

func (m *pkgManager) Name() string { return m.b.name }

// refreshExit is the exit status the status script uses when the cache refresh failed.
const refreshExit = 97

// refreshScript refreshes the index unless a stamp is younger than valid;
// it reports which on stdout as an @@ line the parsers ignore.
func (b pkgBackend) refreshScript(valid time.Duration, lockSecs int) string {
	upd := b.refresh(lockSecs) + fmt.Sprintf(" >&2 || exit %d; echo '@@cache updated'", refreshExit)
	if valid <= 0 {
		return upd
	}
	return fmt.Sprintf(`now=$(date +%%s); last=0; for f in %s; do m=$(stat -c %%Y "$f" 2>/dev/null) && [ "$m" -gt "$last" ] && last=$m; done; `+
		`if [ $((now - last)) -ge %d ]; then %s; else echo '@@cache fresh'; fi`,
		strings.Join(b.stamps, " "), secs(valid), upd)
}

func validateAction(a *PackageAction) error {
	if err := ValidatePackageName(a.Name); err != nil {
		return err
	}
	if err := ValidateVersion(a.Version); err != nil {
		return err
	}
	if a.State == "" {
		a.State = StatePresent
	}
	switch a.State {
	case StatePresent:
	case StateLatest, StateAbsent:
		if a.Version != "" {
			return fmt.Errorf("%w: package %s: a version goes only with state %q, not %q", ErrInvalid, a.Name, StatePresent, a.State)
		}
	default:
		return fmt.Errorf("%w: package %s: state %q (want present, latest or absent)", ErrInvalid, a.Name, a.State)
	}
	if a.LockTimeout <= 0 {
		a.LockTimeout = DefaultLockTimeout
	}
	return nil
}

func (m *pkgManager) Status(ctx context.Context, r transport.Runner, name string, become *transport.Become) (PkgStatus, error) {
	if err := ValidatePackageName(name); err != nil {
		return PkgStatus{}, err
	}
	res, err := run(ctx, r, m.b.status(shellescape.Quote(name)), Options{Become: become})
	if err != nil {
		return PkgStatus{}, fmt.Errorf("package %s: status: %w", name, err)
	}
	return m.b.parse(name, string(res.Stdout)), nil
}

func (m *pkgManager) Commands(a PackageAction) ([]string, error) {
	if err := validateAction(&a); err != nil {
		return nil, err
	}
	lock := secs(a.LockTimeout)
	var cmds []string
	if a.UpdateCache {
		cmds = append(cmds, m.b.refresh(lock))
	}
	st := PkgStatus{Name: a.Name}
	if a.State == StateAbsent {
		st = PkgStatus{Name: a.Name, Installed: true}
	}
	return append(cmds, m.b.change(a, st, lock)), nil
}

// query is the status query Apply needs for a: the candidate version matters only for
// state latest and for present without a version; a pinned version or absent needs only
// what is installed.
func (m *pkgManager) query(a PackageAction) string {
	q := shellescape.Quote(a.Name)
	if m.b.installed != nil && a.State != StateLatest && (a.Version != "" || a.State == StateAbsent) {
		return m.b.installed(q)
	}
	return m.b.status(q)
}

// holds says whether st satisfies the action.
func (m *pkgManager) holds(a PackageAction, st PkgStatus) bool {
	switch a.State {
	case StateAbsent:
		return !st.Installed
	case StateLatest:
		return st.Installed && (st.Candidate == "" || st.Candidate == st.Version)
	}
	return st.Installed && (a.Version == "" || m.b.matches(st.Version, a.Version))
}

func pkgState(st PkgStatus) map[string]string {
	if !st.Installed {
		return map[string]string{"state": StateAbsent, "version": ""}
	}
	return map[string]string{"state": StatePresent, "version": st.Version}
}

func verString(st PkgStatus) string {
	if !st.Installed {
		return "absent"
	}
	return st.Version
}

func (m *pkgManager) Apply(ctx context.Context, r transport.Runner, a PackageAction, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	if err := validateAction(&a); err != nil {
		return fail(res, start, err)
	}
	lock := secs(lockWait(a.LockTimeout, o.Timeout))

	// Round trip 1: refresh the index when asked (not in dry-run: it changes the
	// host) and query the package.
	query := m.query(a)
	script := query
	if a.UpdateCache && !o.DryRun {
		script = m.b.refreshScript(a.CacheValidTime, lock) + "\n" + script
	}
	out, err := run(ctx, r, script, o)
	if err != nil {
		return fail(res, start, fmt.Errorf("package %s: status: %w", a.Name, err))
	}
	if out.ExitCode == refreshExit {
		if p := m.b.lockProblem(string(out.Stderr) + "\n" + string(out.Stdout)); p != "" {
			return fail(res, start, fmt.Errorf("package %s: update cache: %w: %s; gave up after %ds", a.Name, ErrLocked, p, lock))
		}
		return fail(res, start, fmt.Errorf("package %s: update cache failed: %s", a.Name, tail(out.Stderr)))
	}
	cacheNote := ""
	if strings.Contains(string(out.Stdout), "@@cache updated") {
		cacheNote = " (cache updated)"
	}
	before := m.b.parse(a.Name, string(out.Stdout))
	res.Before = pkgState(before)
	if m.holds(a, before) {
		res.Status, res.After = StatusOK, res.Before
		res.Detail = verString(before) + cacheNote
		res.Duration = time.Since(start)
		return res, nil
	}

	cmd := m.b.change(a, before, lock)
	res.Commands = []string{cmd}
	if o.DryRun {
		want := a.Version
		switch {
		case a.State == StateAbsent:
			want = "absent"
		case want == "" && before.Candidate != "":
			want = before.Candidate
		case want == "":
			want = "latest"
		}
		res.Status = StatusChanged
		res.Detail = "would change: " + verString(before) + " -> " + want
		res.Duration = time.Since(start)
		return res, nil
	}

	// Round trip 2: the change, then what the manager now reports, after a marker line
	// (one session fewer per changed host: on a fleet that is CPU on every host and a
	// network round trip each).
	out, err = run(ctx, r, thenCheck(cmd, afterMarker, query, false), o)
	if err != nil {
		return fail(res, start, fmt.Errorf("package %s: %w", a.Name, err))
	}
	changeOut, statusOut, verified := splitMarker(string(out.Stdout), afterMarker)
	res.Stdout, res.Stderr = changeOut, string(out.Stderr)
	if out.ExitCode != 0 {
		if p := m.b.lockProblem(res.Stderr + "\n" + res.Stdout); p != "" {
			return fail(res, start, fmt.Errorf("package %s: %w: %s; gave up after %ds", a.Name, ErrLocked, p, lock))
		}
		return fail(res, start, fmt.Errorf("package %s: %s %s exited %d: %s", a.Name, m.b.name, a.State, out.ExitCode, tail(out.Stderr)))
	}
	// Without the marker (output cut at the capture cap, say) ask in a round trip of its own.
	var after PkgStatus
	if verified {
		after = m.b.parse(a.Name, statusOut)
	} else if after, err = m.Status(ctx, r, a.Name, o.Become); err != nil {
		return fail(res, start, err)
	}
	res.After = pkgState(after)
	res.Detail = verString(before) + " -> " + verString(after) + cacheNote
	if !m.holds(a, after) {
		want := a.Version
		if want == "" {
			want = a.State
		}
		return fail(res, start, fmt.Errorf("package %s: %s reported success but the package is %s, want %s", a.Name, m.b.name, verString(after), want))
	}
	res.Status = StatusChanged
	if verString(after) == verString(before) {
		res.Status = StatusOK
	}
	res.Duration = time.Since(start)
	return res, nil
}

// afterMarker is the line that separates a package change's own output from the status
// query run after it in the same round trip.
const afterMarker = "@@drover-package-after"
