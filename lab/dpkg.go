package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A lab host is an overlay of this machine's root, so by default its dpkg database is the
// machine's: on a build machine that is ~900 packages and ~125,000 files, and dpkg reads
// all of them before every install. A fleet node carries far fewer. With Config.LeanDpkg
// a host's /var/lib/dpkg/status lists only the packages Debian marks Essential or
// required, the packages the lab itself relies on, and everything those depend on: a
// consistent database (apt-get check passes) the size of a minimal Debian system. The
// other packages' files stay on disk; dpkg simply no longer knows them. Likewise apt's
// configuration (/etc/apt/apt.conf.d) keeps only the files of kept packages: not the hooks
// of packages the host no longer has (packagekit, appstream) nor a container image's
// (docker-clean, which turns off apt's package cache).

// leanRoots are packages a lean host keeps besides Essential and Priority: required ones:
// demo-web depends on busybox; sshd, sudo and apt are what the lab's hosts are for.
var leanRoots = []string{"busybox", "openssh-server", "sudo", "apt"}

// dpkgPara is one stanza of dpkg's status file.
type dpkgPara struct {
	name   string
	text   []byte // the stanza as it stands in the file, without the blank line
	fields map[string]string
}

// parseDpkgStatus splits a status file into stanzas, keeping each one's text verbatim.
func parseDpkgStatus(data []byte) []dpkgPara {
	var out []dpkgPara
	for _, chunk := range bytes.Split(data, []byte("\n\n")) {
		chunk = bytes.Trim(chunk, "\n")
		if len(chunk) == 0 {
			continue
		}
		p := dpkgPara{text: chunk, fields: map[string]string{}}
		var key string
		for _, line := range strings.Split(string(chunk), "\n") {
			if line != "" && (line[0] == ' ' || line[0] == '\t') {
				if key != "" {
					p.fields[key] += "\n" + line
				}
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			key = strings.ToLower(k)
			p.fields[key] = strings.TrimSpace(v)
		}
		p.name = p.fields["package"]
		if p.name != "" {
			out = append(out, p)
		}
	}
	return out
}

// depNames parses a Depends-style field into clauses of alternative package names,
// dropping version constraints and architecture qualifiers.
func depNames(field string) [][]string {
	var out [][]string
	for _, clause := range strings.Split(field, ",") {
		var alts []string
		for _, alt := range strings.Split(clause, "|") {
			alt = strings.TrimSpace(alt)
			if i := strings.IndexAny(alt, " (["); i >= 0 {
				alt = alt[:i]
			}
			alt, _, _ = strings.Cut(alt, ":")
			if alt != "" {
				alts = append(alts, alt)
			}
		}
		if len(alts) > 0 {
			out = append(out, alts)
		}
	}
	return out
}

// leanDpkgStatus returns the status file of a lean host: the installed packages of
// status that are Essential, Priority required or in roots, closed over Depends and
// Pre-Depends (the first installed alternative of each clause, real or provided), in the
// file's order. It also returns how many packages it kept.
func leanDpkgStatus(status []byte, roots []string) ([]byte, int, error) {
	paras := parseDpkgStatus(status)
	installed := map[string]*dpkgPara{}
	provides := map[string][]string{}
	for i := range paras {
		p := &paras[i]
		if !strings.HasSuffix(p.fields["status"], " installed") {
			continue
		}
		// Multi-arch packages may appear once per architecture; the first wins, and both
		// are kept below because keep is by name.
		if installed[p.name] == nil {
			installed[p.name] = p
		}
		for _, alts := range depNames(p.fields["provides"]) {
			for _, v := range alts {
				provides[v] = append(provides[v], p.name)
			}
		}
	}
	if len(installed) == 0 {
		return nil, 0, fmt.Errorf("dpkg status lists no installed package")
	}
	keep := map[string]bool{}
	var queue []string
	add := func(name string) {
		if !keep[name] {
			keep[name] = true
			queue = append(queue, name)
		}
	}
	for name, p := range installed {
		if strings.EqualFold(p.fields["essential"], "yes") || p.fields["priority"] == "required" || slices.Contains(roots, name) {
			add(name)
		}
	}
	for len(queue) > 0 {
		p := installed[queue[0]]
		queue = queue[1:]
		deps := depNames(p.fields["pre-depends"])
		deps = append(deps, depNames(p.fields["depends"])...)
		for _, alts := range deps {
			if found := satisfier(alts, installed, provides); found != "" {
				add(found)
			}
		}
	}
	var out bytes.Buffer
	for _, p := range paras {
		if keep[p.name] && strings.HasSuffix(p.fields["status"], " installed") {
			out.Write(p.text)
			out.WriteString("\n\n")
		}
	}
	return out.Bytes(), len(keep), nil
}

// satisfier names the installed package satisfying one of alts (a package of that
// name, else one providing it), or "" when none is installed.
func satisfier(alts []string, installed map[string]*dpkgPara, provides map[string][]string) string {
	for _, a := range alts {
		if installed[a] != nil {
			return a
		}
	}
	for _, a := range alts {
		if ps := provides[a]; len(ps) > 0 {
			return ps[0]
		}
	}
	return ""
}

// leanTriggers filters dpkg's file-trigger interests (/var/lib/dpkg/triggers/File, lines
// "PATH PACKAGE[:ARCH] [/noawait]") to packages a lean host still has: dpkg would
// otherwise activate triggers of packages its database no longer lists.
func leanTriggers(file []byte, kept map[string]bool) []byte {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(file), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			pkg, _, _ := strings.Cut(f[1], ":")
			if !kept[pkg] {
				continue
			}
		}
		out.WriteString(line)
	}
	return out.Bytes()
}

// leanDpkg is what a lean host's upper layer gets, computed once per lab.
type leanDpkg struct {
	status   []byte
	triggers []byte            // nil when the machine has no triggers/File
	aptConf  map[string][]byte // apt.conf.d file name → content, kept packages' only
	packages int               // packages kept
}

// newLeanDpkg derives the lean database from this machine's.
func newLeanDpkg() (*leanDpkg, error) {
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		return nil, fmt.Errorf("lean dpkg database: %w", err)
	}
	lean, n, err := leanDpkgStatus(status, leanRoots)
	if err != nil {
		return nil, fmt.Errorf("lean dpkg database: %w", err)
	}
	d := &leanDpkg{status: lean, packages: n}
	kept := map[string]bool{}
	for _, p := range parseDpkgStatus(lean) {
		kept[p.name] = true
	}
	if trig, err := os.ReadFile("/var/lib/dpkg/triggers/File"); err == nil {
		d.triggers = leanTriggers(trig, kept)
	}
	if d.aptConf, err = keptAptConf(kept); err != nil {
		return nil, fmt.Errorf("lean dpkg database: %w", err)
	}
	return d, nil
}

// aptConfDir is where apt reads its configuration fragments.
const aptConfDir = "/etc/apt/apt.conf.d"

// keptAptConf reads the files of aptConfDir that a kept package's file list names.
func keptAptConf(kept map[string]bool) (map[string][]byte, error) {
	lists, err := filepath.Glob("/var/lib/dpkg/info/*.list")
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, list := range lists {
		pkg, _, _ := strings.Cut(strings.TrimSuffix(filepath.Base(list), ".list"), ":")
		if !kept[pkg] {
			continue
		}
		data, err := os.ReadFile(list)
		if err != nil {
			return nil, err
		}
		for _, path := range strings.Split(string(data), "\n") {
			if filepath.Dir(path) != aptConfDir {
				continue
			}
			b, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue // a conffile the admin deleted
			}
			if err != nil {
				return nil, err
			}
			out[filepath.Base(path)] = b
		}
	}
	return out, nil
}
