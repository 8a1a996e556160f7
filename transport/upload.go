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
func (c *Conn) Upload(ctx context.Context, src io.Reader, dst string, mode fs.FileMode, become *Become) error {
	if !path.IsAbs(dst) || strings.HasSuffix(dst, "/") {
		return fmt.Errorf("%s: upload: destination %q must be an absolute file path", name(c.ep), dst)
	}
	dst = path.Clean(dst)
	tok, err := randomToken()
	if err != nil {
		return err
	}
	tmp := path.Join(path.Dir(dst), "."+path.Base(dst)+".drover-"+tok[:12])
	q := shellescape.Quote
	// umask 077 keeps the half-written file private until chmod sets the real mode;
	// on any failure the temporary file is removed and the status preserved.
	script := fmt.Sprintf("umask 077 && cat > %s && chmod %04o %s && mv -f %s %s || { rc=$?; rm -f %s; exit $rc; }",
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
