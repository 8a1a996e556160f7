package steps

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"al.essio.dev/pkg/shellescape"
)

// statusLines yields stdout lines, skipping the @@ markers of the refresh script.
func statusLines(stdout string) []string {
	var out []string
	for _, l := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(l, "@@") {
			out = append(out, l)
		}
	}
	return out
}

// lockWait is how long a package command waits for the package manager's lock:
// the action's lock timeout, but at most half the command's timeout, so a held
// lock is reported as such ("dpkg lock … held by pid N; gave up after Ns")
// rather than the step being killed at its timeout with nothing to say why.
func lockWait(lock, cmdTimeout time.Duration) time.Duration {
	if cmdTimeout > 0 && lock > cmdTimeout/2 {
		return max(cmdTimeout/2, time.Second)
	}
	return lock
}

// ---- apt ----

// apt names the lock's holder in "Could not get lock X. It is held by process N
// (name)": on stderr without a lock timeout, but with DPkg::Lock::Timeout (apt
// 2.x) only on stdout, as "Waiting for cache lock: …" progress lines, while stderr
// says just "Unable to acquire the dpkg frontend lock (X)". lockProblem is
// therefore given stderr and stdout.
var (
	aptLockRe    = regexp.MustCompile(`Could not get lock (\S+?)\.? It is held by process (\d+)(?: \(([^)]*)\))?`)
	aptAcquireRe = regexp.MustCompile(`Unable to acquire the dpkg frontend lock \(([^)]+)\)`)
)

func aptBackend() pkgBackend {
	const frontend = "DEBIAN_FRONTEND=noninteractive apt-get"
	return pkgBackend{
		name: "apt",
		status: func(q string) string {
			return `dpkg-query -W -f='${Status}\t${Version}\n' ` + q + ` 2>/dev/null; LC_ALL=C apt-cache policy ` + q
		},
		installed: func(q string) string {
			return `dpkg-query -W -f='${Status}\t${Version}\n' ` + q + ` 2>/dev/null`
		},
		parse: parseApt,
		refresh: func(lock int) string {
			return fmt.Sprintf("apt-get update -q -o DPkg::Lock::Timeout=%d", lock)
		},
		stamps: []string{"/var/lib/apt/periodic/update-success-stamp", "/var/lib/apt/lists"},
		change: func(a PackageAction, st PkgStatus, lock int) string {
			q := shellescape.Quote(a.Name)
			if a.State == StateAbsent {
				return fmt.Sprintf("%s remove -y -q -o DPkg::Lock::Timeout=%d %s", frontend, lock, q)
			}
			if a.Version != "" {
				q = shellescape.Quote(a.Name + "=" + a.Version)
			}
			return fmt.Sprintf("%s install -y -q -o DPkg::Lock::Timeout=%d -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --allow-downgrades %s", frontend, lock, q)
		},
		matches: func(installed, want string) bool { return installed == want },
		lockProblem: func(stderr string) string { // stderr, then stdout
			if m := aptLockRe.FindStringSubmatch(stderr); m != nil {
				s := "dpkg lock " + m[1] + " held by pid " + m[2]
				if m[3] != "" {
					s += " (" + m[3] + ")"
				}
				return s
			}
			if m := aptAcquireRe.FindStringSubmatch(stderr); m != nil {
				return "dpkg lock " + m[1] + " held by another process"
			}
			if strings.Contains(stderr, "Unable to lock directory") {
				return "dpkg/apt lock held by another process"
			}
			return ""
		},
	}
}

// parseApt reads dpkg-query's "status<TAB>version" lines and apt-cache policy.
func parseApt(name, stdout string) PkgStatus {
	st := PkgStatus{Name: name}
	for _, l := range statusLines(stdout) {
		if stat, ver, ok := strings.Cut(l, "\t"); ok {
			// "install ok installed", "hold ok installed"; "deinstall ok config-files" is gone.
			f := strings.Fields(stat)
			if len(f) == 3 && f[2] == "installed" && !st.Installed {
				st.Installed, st.Version = true, strings.TrimSpace(ver)
			}
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate:"); ok && st.Candidate == "" {
			if v = strings.TrimSpace(v); v != "(none)" {
				st.Candidate = v
			}
		}
	}
	return st
}

// ---- dnf, yum ----

// rpmQuery prints "installed=V-R" only when the package is installed (rpm -q
// prints "package x is not installed" on stdout otherwise).
func rpmQuery(q string) string {
	return `v=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' ` + q + ` 2>/dev/null) && echo "installed=$v"`
}

func parseRPMInstalled(st *PkgStatus, l string) bool {
	v, ok := strings.CutPrefix(l, "installed=")
	if ok && !st.Installed {
		// Several lines when several arches are installed; keep the first.
		st.Installed, st.Version = true, strings.TrimSpace(strings.SplitN(v, "\n", 2)[0])
	}
	return ok
}

func rpmBackend(tool, upgradeVerb, cacheDir string) pkgBackend {
	return pkgBackend{
		name: tool,
		status: func(q string) string {
			// "list available" shows only versions newer than the installed one.
			return rpmQuery(q) + "; " + tool + " -q list available " + q + " 2>/dev/null"
		},
		installed: rpmQuery,
		parse: func(name, stdout string) PkgStatus {
			st := PkgStatus{Name: name}
			var rest []string
			for _, l := range statusLines(stdout) {
				if !parseRPMInstalled(&st, l) {
					rest = append(rest, l)
				}
			}
			// Tokens, not lines: yum wraps a long "name.arch version repo" row.
			tok := strings.Fields(strings.Join(rest, "\n"))
			for i := 0; i+1 < len(tok); i++ {
				if tok[i] == name || strings.HasPrefix(tok[i], name+".") {
					st.Candidate = tok[i+1]
				}
			}
			if st.Candidate == "" && st.Installed {
				st.Candidate = st.Version
			}
			return st
		},
		refresh: func(int) string { return tool + " -y -q makecache" },
		stamps:  []string{cacheDir},
		change: func(a PackageAction, st PkgStatus, _ int) string {
			q := shellescape.Quote(a.Name)
			switch {
			case a.State == StateAbsent:
				return tool + " -y remove " + q
			case a.State == StateLatest && st.Installed:
				return tool + " -y " + upgradeVerb + " " + q
			case a.Version != "":
				verb := "install"
				if st.Installed && rpmVerCmp(rpmComparable(st.Version, a.Version), a.Version) > 0 {
					verb = "downgrade"
				}
				return tool + " -y " + verb + " " + shellescape.Quote(a.Name+"-"+a.Version)
			}
			return tool + " -y install " + q
		},
		matches:     rpmMatches,
		lockProblem: func(string) string { return "" }, // dnf and yum wait for their lock themselves
	}
}

// rpmMatches: a wanted "2.0" matches an installed "2.0-1.el9" (any release).
func rpmMatches(installed, want string) bool {
	return installed == want || (!strings.Contains(want, "-") && strings.HasPrefix(installed, want+"-"))
}

// rpmComparable trims the release off installed when want has none.
func rpmComparable(installed, want string) string {
	if !strings.Contains(want, "-") {
		if i := strings.LastIndex(installed, "-"); i > 0 {
			return installed[:i]
		}
	}
	return installed
}

// ---- zypper ----

var zypperLockRe = regexp.MustCompile(`System management is locked by the application with pid (\d+)(?: \(([^)]*)\))?`)

func zypperBackend() pkgBackend {
	z := func(lock int) string { return fmt.Sprintf("ZYPP_LOCK_TIMEOUT=%d zypper --non-interactive", lock) }
	return pkgBackend{
		name: "zypper",
		status: func(q string) string {
			return rpmQuery(q) + "; LC_ALL=C zypper --non-interactive info " + q + " 2>/dev/null"
		},
		installed: rpmQuery,
		parse: func(name, stdout string) PkgStatus {
			st := PkgStatus{Name: name}
			for _, l := range statusLines(stdout) {
				if parseRPMInstalled(&st, l) {
					continue
				}
				k, v, ok := strings.Cut(l, ":")
				if ok && strings.TrimSpace(k) == "Version" && st.Candidate == "" {
					st.Candidate = strings.TrimSpace(v)
				}
			}
			return st
		},
		refresh: func(lock int) string { return z(lock) + " refresh" },
		stamps:  []string{"/var/cache/zypp/raw"},
		change: func(a PackageAction, st PkgStatus, lock int) string {
			q := shellescape.Quote(a.Name)
			switch {
			case a.State == StateAbsent:
				return z(lock) + " remove " + q
			case a.State == StateLatest && st.Installed:
				return z(lock) + " update " + q
			case a.Version != "":
				return z(lock) + " install --oldpackage " + shellescape.Quote(a.Name+"="+a.Version)
			}
			return z(lock) + " install " + q
		},
		matches: rpmMatches,
		lockProblem: func(stderr string) string {
			if m := zypperLockRe.FindStringSubmatch(stderr); m != nil {
				s := "zypp lock held by pid " + m[1]
				if m[2] != "" {
					s += " (" + m[2] + ")"
				}
				return s
			}
			return ""
		},
	}
}

// ---- apk ----

func apkBackend() pkgBackend {
	apk := func(verb string, lock int) string { return fmt.Sprintf("apk %s --no-progress --wait %d", verb, lock) }
	return pkgBackend{
		name:   "apk",
		status: func(q string) string { return "apk policy " + q + " 2>/dev/null" },
		parse:  parseApkPolicy,
		refresh: func(lock int) string {
			return apk("update", lock)
		},
		stamps: []string{"/var/cache/apk"},
		change: func(a PackageAction, st PkgStatus, lock int) string {
			q := shellescape.Quote(a.Name)
			switch {
			case a.State == StateAbsent:
				return apk("del", lock) + " " + q
			case a.State == StateLatest && st.Installed:
				return apk("add", lock) + " --upgrade " + q
			case a.Version != "":
				return apk("add", lock) + " " + shellescape.Quote(a.Name+"="+a.Version)
			}
			return apk("add", lock) + " " + q
		},
		// A wanted "2.0" matches an installed "2.0-r3".
		matches: func(installed, want string) bool {
			return installed == want || (!strings.Contains(want, "-r") && strings.HasPrefix(installed, want+"-r"))
		},
		lockProblem: func(stderr string) string {
			if strings.Contains(stderr, "Unable to lock database") || strings.Contains(stderr, "unable to obtain lock") {
				return "apk database lock held by another process"
			}
			return ""
		},
	}
}

// parseApkPolicy reads `apk policy NAME`: versions at two spaces of indent,
// ascending, each followed by its sources; lib/apk/db/installed marks the
// installed one.
func parseApkPolicy(name, stdout string) PkgStatus {
	st := PkgStatus{Name: name}
	cur := ""
	for _, l := range statusLines(stdout) {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "    "):
			if t == "lib/apk/db/installed" && cur != "" {
				st.Installed, st.Version = true, cur
			}
		case strings.HasPrefix(l, "  ") && strings.HasSuffix(t, ":"):
			cur = strings.TrimSuffix(t, ":")
			st.Candidate = cur
		}
	}
	return st
}
