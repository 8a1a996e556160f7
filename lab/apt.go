package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// pkgSources are the package trees: pkg/NAME is a package's root (with DEBIAN/),
// @VERSION@ in any file is replaced by the version being built, @HEALTHY@ by 1, or by
// 0 for a release whose /health fails (its /metrics says so).
//
//go:embed pkg
var pkgSources embed.FS

// aptCacheDir keeps built repositories across labs, one per content hash. The hosts
// see it at the same path (each gets a copy in its upper layer), so the repository's
// path is the same inside and outside them.
const aptCacheDir = "/var/cache/drover-lab"

// aptFormat changes whenever the build below changes in a way the sources don't show.
const aptFormat = "2"

// debSpec is one package version the lab builds.
type debSpec struct {
	name, version string
	trees         []string // directories under pkg/, merged in order
	health        string   // demo-web: body of /health ("" = no static /health file)
}

// labDebs are the packages of the lab's repository. demo-web 3.0 starts but its
// /health answers 500 (a deliberately broken release); demo-tool has no service.
var labDebs = []debSpec{
	{"demo-web", "1.0", []string{"demo-web"}, "ok 1.0"},
	{"demo-web", "2.0", []string{"demo-web"}, "ok 2.0"},
	{"demo-web", "3.0", []string{"demo-web", "demo-web-unhealthy"}, ""},
	{"demo-tool", "1.0", []string{"demo-tool"}, ""},
	{"demo-tool", "1.1", []string{"demo-tool"}, ""},
}

// packageVersions lists the repository's versions by package name, oldest first.
func packageVersions() map[string][]string {
	m := map[string][]string{}
	for _, d := range labDebs {
		m[d.name] = append(m[d.name], d.version)
	}
	return m
}

// safeRepoPath is what apt's URI-to-list-file-name mapping leaves alone apart from
// turning "/" into "_" (it %-escapes "_" and other punctuation).
var safeRepoPath = regexp.MustCompile(`^/[A-Za-z0-9/.-]+$`)

// aptRepo is a built repository and the apt list files a host needs to use it
// without running apt-get update.
type aptRepo struct {
	dir   string            // flat repository: *.deb, Packages, Release
	lists map[string][]byte // file name in /var/lib/apt/lists → content
}

// buildAptRepo returns the lab's repository, building it when the cache has no
// repository for the current package sources. Concurrent labs share one build.
func buildAptRepo(ctx context.Context) (*aptRepo, error) {
	key, err := sourcesHash()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(aptCacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: apt cache: %w", err)
	}
	final := filepath.Join(aptCacheDir, "apt-"+key)
	lock := flock.New(final + ".lock")
	if _, err := lock.TryLockContext(ctx, 50*time.Millisecond); err != nil {
		return nil, fmt.Errorf("lab: lock apt cache: %w", err)
	}
	defer func() { _ = lock.Unlock() }()
	repo := &aptRepo{dir: filepath.Join(final, "repo")}
	if !safeRepoPath.MatchString(repo.dir) {
		return nil, fmt.Errorf("lab: apt repository path %q has characters apt escapes", repo.dir)
	}
	complete := filepath.Join(final, ".complete")
	if _, err := os.Stat(complete); err != nil {
		if err := os.RemoveAll(final); err != nil { // a build that was interrupted
			return nil, fmt.Errorf("lab: apt cache: %w", err)
		}
		if err := buildDebs(ctx, final, repo.dir); err != nil {
			return nil, err
		}
		if err := os.WriteFile(complete, nil, 0o644); err != nil {
			return nil, fmt.Errorf("lab: apt cache: %w", err)
		}
	}
	// apt keeps a file: repository's indexes in its lists directory under the URI with
	// "/" turned into "_"; copying them there is what apt-get update would do.
	prefix := strings.ReplaceAll(repo.dir, "/", "_") + "_._"
	repo.lists = map[string][]byte{}
	for _, f := range []string{"Packages", "Release"} {
		b, err := os.ReadFile(filepath.Join(repo.dir, f))
		if err != nil {
			return nil, fmt.Errorf("lab: apt repository: %w", err)
		}
		repo.lists[prefix+f] = b
	}
	return repo, nil
}

// sourcesHash identifies the package sources and the build recipe.
func sourcesHash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "format %s\n%v\n", aptFormat, labDebs)
	err := fs.WalkDir(pkgSources, "pkg", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := pkgSources.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("lab: package sources: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// buildDebs builds every labDebs package into repoDir and indexes it with
// apt-ftparchive.
func buildDebs(ctx context.Context, final, repoDir string) error {
	for _, tool := range []string{"dpkg-deb", "apt-ftparchive"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("lab: %s not found (Debian packages dpkg, apt-utils): %w", tool, err)
		}
	}
	if err := os.MkdirAll(repoDir, 0o755); err != nil {
		return fmt.Errorf("lab: apt repository: %w", err)
	}
	stage := filepath.Join(final, "stage")
	for _, d := range labDebs {
		root := filepath.Join(stage, d.name+"_"+d.version)
		if err := stagePackage(root, d); err != nil {
			return fmt.Errorf("lab: stage %s %s: %w", d.name, d.version, err)
		}
		deb := filepath.Join(repoDir, d.name+"_"+d.version+"_all.deb")
		if out, err := run(ctx, "", "dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, deb); err != nil {
			return fmt.Errorf("lab: build %s %s: %w\n%s", d.name, d.version, err, out)
		}
	}
	if err := os.RemoveAll(stage); err != nil {
		return fmt.Errorf("lab: apt repository: %w", err)
	}
	packages, err := run(ctx, repoDir, "apt-ftparchive", "packages", ".")
	if err != nil {
		return fmt.Errorf("lab: apt-ftparchive packages: %w\n%s", err, packages)
	}
	if err := os.WriteFile(filepath.Join(repoDir, "Packages"), packages, 0o644); err != nil {
		return fmt.Errorf("lab: apt repository: %w", err)
	}
	release, err := run(ctx, repoDir, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Origin=drover-lab", "-o", "APT::FTPArchive::Release::Label=drover-lab",
		"-o", "APT::FTPArchive::Release::Suite=lab", "release", ".")
	if err != nil {
		return fmt.Errorf("lab: apt-ftparchive release: %w\n%s", err, release)
	}
	if err := os.WriteFile(filepath.Join(repoDir, "Release"), release, 0o644); err != nil {
		return fmt.Errorf("lab: apt repository: %w", err)
	}
	return nil
}

// stagePackage writes d's file tree under root: scripts (files starting with "#!")
// executable, everything else 0644.
func stagePackage(root string, d debSpec) error {
	healthy := "1"
	if d.name == "demo-web" && d.health == "" {
		healthy = "0"
	}
	for _, tree := range d.trees {
		base := path.Join("pkg", tree)
		err := fs.WalkDir(pkgSources, base, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			dst := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(p, base)))
			if e.IsDir() {
				return os.MkdirAll(dst, 0o755)
			}
			b, err := pkgSources.ReadFile(p)
			if err != nil {
				return err
			}
			b = bytes.ReplaceAll(b, []byte("@VERSION@"), []byte(d.version))
			return writeStaged(dst, bytes.ReplaceAll(b, []byte("@HEALTHY@"), []byte(healthy)))
		})
		if err != nil {
			return err
		}
	}
	if d.health != "" {
		return writeStaged(filepath.Join(root, "usr/share/demo-web/www/health"), []byte(d.health))
	}
	if d.name == "demo-web" {
		// No file: busybox httpd redirects /health to /health/, which runs cgi-bin/index.cgi.
		return os.MkdirAll(filepath.Join(root, "usr/share/demo-web/www/health"), 0o755)
	}
	return nil
}

func writeStaged(dst string, b []byte) error {
	mode := os.FileMode(0o644)
	if bytes.HasPrefix(b, []byte("#!")) {
		mode = 0o755
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // WriteFile is subject to the umask
}

func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, cleanEnv
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

// prepareApt points host h at the lab repository only: its own copy of the repository
// at the same path, a sources.list.d holding just that repository, the machine's
// sources.list emptied, apt lists for the repository alone (so apt-get install works
// without apt-get update), the address file demo-web listens on, and no policy-rc.d
// (Debian container images ship one that forbids starting services), and a runlevel(8)
// that says 2.
func (l *Lab) prepareApt(upper string, h *Host) error {
	if l.apt == nil {
		return nil
	}
	files := map[string][]byte{
		"etc/apt/sources.list":                   nil,
		"etc/apt/sources.list.d/drover-lab.list": fmt.Appendf(nil, "deb [trusted=yes] file:%s ./\n", l.apt.dir),
		"etc/demo-web.addr":                      []byte(h.Address + "\n"),
	}
	for name, b := range l.apt.lists {
		files["var/lib/apt/lists/"+name] = b
	}
	if l.lean != nil {
		files["var/lib/dpkg/status"] = l.lean.status
		if l.lean.triggers != nil {
			files["var/lib/dpkg/triggers/File"] = l.lean.triggers
		}
		for name, b := range l.lean.aptConf {
			files[strings.TrimPrefix(aptConfDir, "/")+"/"+name] = b
		}
	}
	entries, err := os.ReadDir(l.apt.dir)
	if err != nil {
		return fmt.Errorf("apt repository: %w", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(l.apt.dir, e.Name()))
		if err != nil {
			return fmt.Errorf("apt repository: %w", err)
		}
		files[strings.TrimPrefix(filepath.Join(l.apt.dir, e.Name()), "/")] = b
	}
	// Opaque directories hide everything the lower layer (the machine) has in them.
	opaque := []string{"etc/apt/sources.list.d", "var/lib/apt/lists"}
	if l.lean != nil {
		opaque = append(opaque, strings.TrimPrefix(aptConfDir, "/"))
	}
	for _, d := range opaque {
		if err := mkdirLike(upper, d); err != nil {
			return err
		}
		if err := syscall.Setxattr(filepath.Join(upper, d), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("make %s opaque: %w", d, err)
		}
	}
	if err := mkdirLike(upper, "var/lib/apt/lists/partial"); err != nil {
		return err
	}
	for name, b := range files {
		if err := writeFileLike(upper, name, b, 0o644, 0, 0); err != nil {
			return err
		}
	}
	// A sysv host in runlevel 2, as Debian without systemd boots: invoke-rc.d asks
	// runlevel(8), which on the machine is systemctl and fails without systemd.
	sbin, err := filepath.EvalSymlinks("/sbin")
	if err != nil {
		return fmt.Errorf("resolve /sbin: %w", err)
	}
	runlevel := strings.TrimPrefix(filepath.Join(sbin, "runlevel"), "/")
	if err := writeFileLike(upper, runlevel, []byte("#!/bin/sh\n# drover lab: hosts run sysv at runlevel 2.\necho N 2\n"), 0o755, 0, 0); err != nil {
		return err
	}
	const policy = "usr/sbin/policy-rc.d"
	if _, err := os.Lstat("/" + policy); err == nil {
		if err := mkdirLike(upper, filepath.Dir(policy)); err != nil {
			return err
		}
		// A 0/0 character device is overlayfs's whiteout: the file is gone in the host.
		if err := syscall.Mknod(filepath.Join(upper, policy), syscall.S_IFCHR, 0); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("hide %s: %w", policy, err)
		}
	}
	return nil
}
