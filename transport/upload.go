package transport

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"al.essio.dev/pkg/shellescape"
)

// Upload writes src to dst on the host with the given mode, atomically, without
// SFTP: the bytes stream into `cat` writing a temporary file next to dst, which
// is then chmod'ed and renamed over dst. With become the whole script runs
// through sudo (password first on stdin, see becomeRun).
//
// The write never lands outside dst: dst must be absolute and clean (no ".."),
// the temporary file is created exclusively (set -C, so a planted file or
// symlink of that name is not followed), and `mv -T` renames over dst itself, so
// a symlink at dst is replaced rather than followed and a directory at dst is
// refused instead of receiving the file.
func (c *Conn) Upload(ctx context.Context, src io.Reader, dst string, mode fs.FileMode, become *Become) error {
	if err := CheckUploadPath(dst); err != nil {
		return fmt.Errorf("%s: upload: %w", name(c.ep), err)
	}
	tok, err := randomToken()
	if err != nil {
		return err
	}
	tmp := path.Join(path.Dir(dst), "."+path.Base(dst)+".drover-"+tok[:12])
	q := shellescape.Quote
	// umask 077 keeps the half-written file private until chmod sets the real mode;
	// on any failure the temporary file is removed and the status preserved.
	script := fmt.Sprintf("umask 077 && set -C && cat > %s && chmod %04o %s && mv -f -T %s %s || { rc=$?; rm -f %s; exit $rc; }",
		q(tmp), mode.Perm(), q(tmp), q(tmp), q(dst), q(tmp))
	res, err := c.Run(ctx, &Command{Cmd: script, Stdin: src, Become: become, MaxOutput: 64 << 10})
	if err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s: upload %s failed (exit %d): %s", name(c.ep), dst, res.ExitCode,
			strings.TrimSpace(firstLines(res.Stderr, 3)))
	}
	return nil
}

// CheckUploadPath accepts an upload destination: an absolute, clean file path
// (not "/", no "..", "//" or trailing "/") without control characters.
func CheckUploadPath(dst string) error {
	switch {
	case !path.IsAbs(dst) || strings.HasSuffix(dst, "/"):
		return fmt.Errorf("destination %q must be an absolute file path", dst)
	case strings.IndexFunc(dst, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("destination %q contains a control character", dst)
	case path.Clean(dst) != dst:
		return fmt.Errorf("destination %q is not a clean path (want %q)", dst, path.Clean(dst))
	}
	return nil
}
