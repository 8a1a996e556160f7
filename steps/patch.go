package steps

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"al.essio.dev/pkg/shellescape"

	"github.com/drover-sh/drover/transport"
)

// Patch modes: the apt terms, which the other backends map to their own.
const (
	PatchUpgrade     = "upgrade"      // upgrade what is installed; never remove, apt keeps back what needs new packages
	PatchDistUpgrade = "dist-upgrade" // also install and remove packages as dependencies change
)

// PatchAction is a whole-system upgrade.
type PatchAction struct {
	Mode string // upgrade (default) | dist-upgrade
	// SecurityOnly upgrades only security updates. apt has no such switch: the
	// packages whose candidate version comes from an archive named *-security
	// (e.g. Debian-Security:12/stable-security, Ubuntu's jammy-security) are chosen
	// from the simulated upgrade and installed with `apt-get install --only-upgrade`,
	// which may still pull in dependencies from other archives. dnf and yum use
	// --security (updateinfo advisories), zypper `patch --category security`; apk
	// has no security metadata and refuses it.
	SecurityOnly bool
	Exclude      []string // package names never upgraded
	// LockTimeout is how long to wait for another process holding the package
	// manager's lock; 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// Upgrade is one package a patch run upgrades (or would).
type Upgrade struct {
	Name string `json:"name"`
	From string `json:"from,omitempty"` // "" when the package is new (dist-upgrade pulled it in)
	To   string `json:"to"`
}

func (u Upgrade) String() string {
	from := u.From
	if from == "" {
		from = "(new)"
	}
	return u.Name + " " + from + " -> " + u.To
}

// patchBackend is one package manager's patching syntax. Names reaching it are
// validated.
type patchBackend struct {
	name string
	// list refreshes the index and prints what an upgrade would do; the script
	// exits refreshExit (stderr says why) when it could not.
	list func(a PatchAction, lock int) (string, error)
	// parse reads list's output. Backends whose tool filters (dnf --security)
	// get SecurityOnly applied by the tool; exclusions are applied by Patch.
	parse func(stdout string, a PatchAction) []Upgrade
	// change upgrades; ups is what list found, after exclusions. filtered says
	// that ups is a subset of what the tool would upgrade on its own.
	change func(a PatchAction, ups []Upgrade, filtered bool, lock int) (string, error)
	// installed prints "name<TAB>version" for each installed package of names.
	installed func(qnames []string) string
	// lockProblem: non-empty when the command failed on the manager's lock.
	lockProblem func(output string) string // stderr then stdout
}

// PatchCommands are the command lines a patch run would use on a host with the
// given package_manager fact, for plan previews: the listing, then the upgrade.
func PatchCommands(packageManager string, a PatchAction) ([]string, error) {
	b, err := patchBackendFor(packageManager)
	if err != nil {
		return nil, err
	}
	if err := validatePatch(&a); err != nil {
		return nil, err
	}
	lock := secs(a.LockTimeout)
	list, err := b.list(a, lock)
	if err != nil {
		return nil, err
	}
	change, err := b.change(a, nil, len(a.Exclude) > 0 || (a.SecurityOnly && b.name == "apt"), lock)
	if err != nil {
		return nil, err
	}
	return []string{list, change}, nil
}

func validatePatch(a *PatchAction) error {
	switch a.Mode {
	case "":
		a.Mode = PatchUpgrade
	case PatchUpgrade, PatchDistUpgrade:
	default:
		return fmt.Errorf("%w: patch mode %q (want upgrade or dist-upgrade)", ErrInvalid, a.Mode)
	}
	for _, n := range a.Exclude {
		if err := ValidatePackageName(n); err != nil {
			return fmt.Errorf("patch exclude: %w", err)
		}
	}
	if a.LockTimeout <= 0 {
		a.LockTimeout = DefaultLockTimeout
	}
	return nil
}

func patchBackendFor(fact string) (patchBackend, error) {
	switch fact {
	case "apt":
		return aptPatch(), nil
	case "dnf":
		return rpmPatch("dnf"), nil
	case "yum":
		return rpmPatch("yum"), nil
	case "zypper":
		return zypperPatch(), nil
	case "apk":
		return apkPatch(), nil
	}
	return patchBackend{}, fmt.Errorf("%w: package manager %q for patch (want apt, dnf, yum, zypper or apk)", ErrUnsupported, fact)
}

// Patch upgrades the host's packages with the backend for the package_manager
// fact: one round trip to refresh the index and list the upgrades, one to
// upgrade (none when there is nothing to do), one to read the versions now
// installed. The Result is ok when nothing needed upgrading, changed otherwise;
// Detail lists the upgrades ("2 upgraded: demo-tool 1.0 -> 1.1, …") and
// Before/After map each upgraded package to its old and new version. In dry-run
// it lists what would be upgraded and changes nothing.
func Patch(ctx context.Context, r transport.Runner, packageManager string, a PatchAction, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	b, err := patchBackendFor(packageManager)
	if err != nil {
		return fail(res, start, err)
	}
	if err := validatePatch(&a); err != nil {
		return fail(res, start, err)
	}
	lock := secs(a.LockTimeout)
	script, err := b.list(a, lock)
	if err != nil {
		return fail(res, start, err)
	}

	// Round trip 1: refresh and list.
	out, err := run(ctx, r, script, o)
	if err != nil {
		return fail(res, start, fmt.Errorf("patch: list upgrades: %w", err))
	}
	if out.ExitCode != 0 {
		if p := b.lockProblem(string(out.Stderr) + "\n" + string(out.Stdout)); p != "" {
			return fail(res, start, fmt.Errorf("patch: list upgrades: %w: %s; gave up after %ds", ErrLocked, p, lock))
		}
		return fail(res, start, fmt.Errorf("patch: %s: listing upgrades exited %d: %s", b.name, out.ExitCode, tail(out.Stderr)))
	}
	all := b.parse(string(out.Stdout), a)
	excluded := map[string]bool{}
	for _, n := range a.Exclude {
		excluded[n] = true
	}
	var ups []Upgrade
	for _, u := range all {
		if !excluded[u.Name] && !excluded[strings.SplitN(u.Name, ":", 2)[0]] {
			ups = append(ups, u)
		}
	}
	res.Before, res.After = map[string]string{}, map[string]string{}
	if len(ups) == 0 {
		res.Status, res.Detail = StatusOK, "nothing to upgrade"
		if len(all) > 0 {
			res.Detail += fmt.Sprintf(" (%d excluded)", len(all))
		}
		res.Duration = time.Since(start)
		return res, nil
	}
	filtered := len(ups) < len(all) || (a.SecurityOnly && b.name == "apt")
	cmd, err := b.change(a, ups, filtered, lock)
	if err != nil {
		return fail(res, start, err)
	}
	res.Commands = []string{cmd}
	if o.DryRun {
		for _, u := range ups {
			res.Before[u.Name], res.After[u.Name] = u.From, u.To
		}
		res.Status, res.Detail = StatusChanged, "would upgrade "+upgradeList(ups)
		res.Duration = time.Since(start)
		return res, nil
	}

	// Round trip 2: the upgrade.
	out, err = run(ctx, r, cmd, o)
	if err != nil {
		return fail(res, start, fmt.Errorf("patch: %w", err))
	}
	res.Stdout, res.Stderr = string(out.Stdout), string(out.Stderr)
	if out.ExitCode != 0 {
		if p := b.lockProblem(res.Stderr + "\n" + res.Stdout); p != "" {
			return fail(res, start, fmt.Errorf("patch: %w: %s; gave up after %ds", ErrLocked, p, lock))
		}
		return fail(res, start, fmt.Errorf("patch: %s exited %d: %s", b.name, out.ExitCode, tail(out.Stderr)))
	}

	// Round trip 3: what is installed now, so the report shows what happened
	// rather than what was planned.
	names := make([]string, len(ups))
	for i, u := range ups {
		names[i] = shellescape.Quote(u.Name)
	}
	out, err = run(ctx, r, b.installed(names), o)
	if err != nil {
		return fail(res, start, fmt.Errorf("patch: read installed versions: %w", err))
	}
	now := parseNameVersions(string(out.Stdout))
	var done, kept []Upgrade
	for _, u := range ups {
		v, ok := now[u.Name]
		if !ok {
			v, ok = now[strings.SplitN(u.Name, ":", 2)[0]]
		}
		if ok && v != u.From {
			done = append(done, Upgrade{Name: u.Name, From: u.From, To: v})
			res.Before[u.Name], res.After[u.Name] = u.From, v
		} else {
			kept = append(kept, u)
		}
	}
	res.Duration = time.Since(start)
	if len(done) == 0 {
		res.Status = StatusOK
		res.Detail = fmt.Sprintf("nothing upgraded; %d kept back: %s", len(kept), names2(kept))
		return res, nil
	}
	res.Status, res.Detail = StatusChanged, upgradeList(done)
	if len(kept) > 0 {
		res.Detail += fmt.Sprintf("; %d kept back: %s", len(kept), names2(kept))
	}
	return res, nil
}

// upgradeList renders "2 upgraded: a 1.0 -> 1.1, b 2 -> 3", eliding past ten.
func upgradeList(ups []Upgrade) string {
	const show = 10
	parts := make([]string, 0, min(len(ups), show)+1)
	for i, u := range ups {
		if i == show {
			parts = append(parts, fmt.Sprintf("… and %d more", len(ups)-show))
			break
		}
		parts = append(parts, u.String())
	}
	return fmt.Sprintf("%d upgraded: %s", len(ups), strings.Join(parts, ", "))
}

func names2(ups []Upgrade) string {
	n := make([]string, len(ups))
	for i, u := range ups {
		n[i] = u.Name
	}
	return strings.Join(n, ", ")
}

// parseNameVersions reads "name<TAB>version" lines; other lines are ignored.
func parseNameVersions(stdout string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(stdout, "\n") {
		f := strings.Split(strings.TrimSpace(l), "\t")
		if len(f) >= 2 && f[0] != "" && f[1] != "" {
			if len(f) >= 3 && !strings.HasPrefix(f[2], "ii") {
				continue // dpkg: not (fully) installed
			}
			m[f[0]] = f[1]
		}
	}
	return m
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = shellescape.Quote(n)
	}
	return strings.Join(q, " ")
}

func upgradeNames(ups []Upgrade) []string {
	n := make([]string, len(ups))
	for i, u := range ups {
		n[i] = u.Name
	}
	return n
}

// ---- apt ----

// aptInstRe matches a simulated install: "Inst NAME [OLD] (NEW ORIGIN, ORIGIN [ARCH])";
// no [OLD] for a package dist-upgrade newly installs.
var aptInstRe = regexp.MustCompile(`^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) ([^\[\)]*)\[[^\]]*\]\)`)

func aptPatch() patchBackend {
	const apt = "DEBIAN_FRONTEND=noninteractive apt-get -y -q"
	return patchBackend{
		name: "apt",
		list: func(a PatchAction, lock int) (string, error) {
			return fmt.Sprintf("apt-get update -q -o DPkg::Lock::Timeout=%d >&2 || exit %d; LC_ALL=C apt-get -s -q %s || exit %d",
				lock, refreshExit, a.Mode, refreshExit), nil
		},
		parse: parseAptSimulation,
		change: func(a PatchAction, ups []Upgrade, filtered bool, lock int) (string, error) {
			opts := fmt.Sprintf("-o DPkg::Lock::Timeout=%d -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold", lock)
			if !filtered {
				return fmt.Sprintf("%s %s %s", apt, opts, a.Mode), nil
			}
			// Only the chosen ones; packages new to the host come in as their dependencies.
			var names []string
			for _, u := range ups {
				if u.From != "" {
					names = append(names, u.Name)
				}
			}
			if ups == nil { // a preview: the list is known only on the host
				return fmt.Sprintf("%s %s install --only-upgrade PACKAGES…", apt, opts), nil
			}
			if len(names) == 0 {
				return "", fmt.Errorf("%w: patch: only new packages to install, nothing to upgrade", ErrInvalid)
			}
			return fmt.Sprintf("%s %s install --only-upgrade %s", apt, opts, quoteAll(names)), nil
		},
		installed: func(q []string) string {
			return `dpkg-query -W -f='${binary:Package}\t${Version}\t${db:Status-Abbrev}\n' ` + strings.Join(q, " ") + ` 2>/dev/null; true`
		},
		lockProblem: aptBackend().lockProblem,
	}
}

// parseAptSimulation reads `apt-get -s upgrade|dist-upgrade`. With SecurityOnly
// it keeps the packages whose candidate comes from an archive whose name ends
// in -security (the part after "/" of each origin, e.g. "12/stable-security").
func parseAptSimulation(stdout string, a PatchAction) []Upgrade {
	var ups []Upgrade
	for _, l := range strings.Split(stdout, "\n") {
		m := aptInstRe.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		if a.SecurityOnly && !aptSecurityOrigin(m[4]) {
			continue
		}
		ups = append(ups, Upgrade{Name: m[1], From: m[2], To: m[3]})
	}
	return ups
}

func aptSecurityOrigin(origins string) bool {
	for _, o := range strings.Split(origins, ",") {
		o = strings.TrimSpace(o)
		if i := strings.LastIndex(o, "/"); i >= 0 && strings.HasSuffix(o[i+1:], "-security") {
			return true
		}
	}
	return false
}

// ---- dnf, yum ----

func rpmPatch(tool string) patchBackend {
	flags := func(a PatchAction) string {
		var f []string
		if a.SecurityOnly {
			f = append(f, "--security")
		}
		for _, x := range a.Exclude {
			f = append(f, "--exclude="+shellescape.Quote(x))
		}
		return strings.Join(f, " ")
	}
	return patchBackend{
		name: tool,
		list: func(a PatchAction, _ int) (string, error) {
			refresh := ""
			if tool == "dnf" {
				refresh = " --refresh"
			}
			// check-update exits 100 when there are updates, 0 when none. The
			// installed versions follow as @@old lines.
			return fmt.Sprintf(`out=$(%s -q%s check-update %s); rc=$?; [ $rc -eq 0 ] || [ $rc -eq 100 ] || exit %d; printf '%%s\n' "$out"; `+
				`printf '%%s\n' "$out" | awk 'NF==3 && $1 ~ /\./ {n=$1; sub(/\.[^.]*$/, "", n); print n}' | sort -u | xargs -r rpm -q --qf '@@old %%{NAME} %%{VERSION}-%%{RELEASE}\n' 2>/dev/null; true`,
				tool, refresh, flags(a), refreshExit), nil
		},
		parse: func(stdout string, _ PatchAction) []Upgrade {
			old := map[string]string{}
			var ups []Upgrade
			seen := map[string]bool{}
			for _, l := range strings.Split(stdout, "\n") {
				f := strings.Fields(l)
				if len(f) == 3 && f[0] == "@@old" {
					old[f[1]] = f[2]
					continue
				}
				if len(f) != 3 || !strings.Contains(f[0], ".") || strings.HasPrefix(l, " ") {
					continue
				}
				name := f[0][:strings.LastIndex(f[0], ".")]
				if seen[name] {
					continue
				}
				seen[name] = true
				ups = append(ups, Upgrade{Name: name, To: stripEpoch(f[1])})
			}
			for i := range ups {
				ups[i].From = old[ups[i].Name]
			}
			return ups
		},
		change: func(a PatchAction, ups []Upgrade, _ bool, _ int) (string, error) {
			verb := "upgrade"
			if tool == "yum" {
				verb = "update"
			}
			if a.Mode == PatchDistUpgrade && !a.SecurityOnly {
				verb = "distro-sync"
			}
			return strings.TrimSpace(tool + " -y " + verb + " " + flags(a)), nil
		},
		installed: func(q []string) string {
			return `rpm -q --qf '%{NAME}\t%{VERSION}-%{RELEASE}\n' ` + strings.Join(q, " ") + ` 2>/dev/null | grep -v 'is not installed'; true`
		},
		lockProblem: func(string) string { return "" }, // dnf and yum wait for their lock themselves
	}
}

// stripEpoch turns "1:3.0.7-27.el9" into "3.0.7-27.el9", as rpm -q prints it.
func stripEpoch(v string) string {
	if i := strings.Index(v, ":"); i >= 0 {
		return v[i+1:]
	}
	return v
}

// ---- zypper ----

func zypperPatch() patchBackend {
	z := func(lock int) string { return fmt.Sprintf("ZYPP_LOCK_TIMEOUT=%d zypper --non-interactive", lock) }
	return patchBackend{
		name: "zypper",
		list: func(a PatchAction, lock int) (string, error) {
			if a.SecurityOnly && len(a.Exclude) > 0 {
				return "", fmt.Errorf("%w: zypper cannot exclude packages from security patches", ErrUnsupported)
			}
			verb := "list-updates"
			if a.Mode == PatchDistUpgrade {
				verb = "list-updates --type package --all"
			}
			return fmt.Sprintf("%s refresh >&2 || exit %d; LC_ALL=C %s %s || exit %d", z(lock), refreshExit, z(lock), verb, refreshExit), nil
		},
		parse: func(stdout string, _ PatchAction) []Upgrade {
			var ups []Upgrade
			for _, l := range strings.Split(stdout, "\n") {
				c := strings.Split(l, "|")
				if len(c) < 6 || strings.TrimSpace(c[0]) != "v" {
					continue
				}
				ups = append(ups, Upgrade{Name: strings.TrimSpace(c[2]), From: strings.TrimSpace(c[3]), To: strings.TrimSpace(c[4])})
			}
			return ups
		},
		change: func(a PatchAction, ups []Upgrade, filtered bool, lock int) (string, error) {
			switch {
			case a.SecurityOnly:
				return z(lock) + " patch --category security", nil
			case filtered && ups != nil:
				return z(lock) + " update " + quoteAll(upgradeNames(ups)), nil
			case a.Mode == PatchDistUpgrade:
				return z(lock) + " dist-upgrade", nil
			}
			return z(lock) + " update", nil
		},
		installed: func(q []string) string {
			return `rpm -q --qf '%{NAME}\t%{VERSION}-%{RELEASE}\n' ` + strings.Join(q, " ") + ` 2>/dev/null | grep -v 'is not installed'; true`
		},
		lockProblem: zypperBackend().lockProblem,
	}
}

// ---- apk ----

// apkVersionRe splits `apk version -l '<'` rows: "name-1.2.3-r4   < 1.2.5-r0".
var apkVersionRe = regexp.MustCompile(`^(\S+)-(\d[^-\s]*-r\d+)\s+<\s+(\S+)`)

func apkPatch() patchBackend {
	apk := func(verb string, lock int) string { return fmt.Sprintf("apk %s --no-progress --wait %d", verb, lock) }
	return patchBackend{
		name: "apk",
		list: func(a PatchAction, lock int) (string, error) {
			if a.SecurityOnly {
				return "", fmt.Errorf("%w: apk has no security metadata; security_only cannot be honoured", ErrUnsupported)
			}
			return fmt.Sprintf("%s >&2 || exit %d; apk version -l '<' || exit %d", apk("update", lock), refreshExit, refreshExit), nil
		},
		parse: func(stdout string, _ PatchAction) []Upgrade {
			var ups []Upgrade
			for _, l := range strings.Split(stdout, "\n") {
				if m := apkVersionRe.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
					ups = append(ups, Upgrade{Name: m[1], From: m[2], To: m[3]})
				}
			}
			return ups
		},
		change: func(a PatchAction, ups []Upgrade, filtered bool, lock int) (string, error) {
			if filtered && ups != nil {
				return apk("add", lock) + " --upgrade " + quoteAll(upgradeNames(ups)), nil
			}
			if a.Mode == PatchDistUpgrade {
				return apk("upgrade", lock) + " --available", nil
			}
			return apk("upgrade", lock), nil
		},
		installed: func(q []string) string {
			// apk info -v NAME prints NAME-VERSION; split on the version's start.
			return `for p in ` + strings.Join(q, " ") + `; do v=$(apk info -e -v "$p" 2>/dev/null) && printf '%s\t%s\n' "$p" "${v#"$p"-}"; done; true`
		},
		lockProblem: apkBackend().lockProblem,
	}
}
