package transport

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUploadContained: an upload writes exactly its destination path, never
// through a symlink at it, never into a directory at it, never elsewhere via "..".
func TestUploadContained(t *testing.T) {
	f := newFixture(t)
	c := f.dial(t)
	ctx := context.Background()

	t.Run("symlink at destination is replaced, its target untouched", func(t *testing.T) {
		dir := t.TempDir()
		victim := filepath.Join(t.TempDir(), "victim")
		if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "app.conf")
		if err := os.Symlink(victim, dst); err != nil {
			t.Fatal(err)
		}
		if err := c.Upload(ctx, strings.NewReader("new"), dst, 0o644, nil); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "precious" {
			t.Fatalf("symlink target was written: %q", b)
		}
		fi, err := os.Lstat(dst)
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("destination is not a regular file now: %v %v", fi, err)
		}
		if b, _ := os.ReadFile(dst); string(b) != "new" {
			t.Fatalf("destination holds %q", b)
		}
	})

	t.Run("symlink to a directory at destination is replaced, not written into", func(t *testing.T) {
		dir, elsewhere := t.TempDir(), t.TempDir()
		dst := filepath.Join(dir, "app.conf")
		if err := os.Symlink(elsewhere, dst); err != nil {
			t.Fatal(err)
		}
		if err := c.Upload(ctx, strings.NewReader("new"), dst, 0o644, nil); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
			t.Fatalf("file landed in the symlinked directory: %v", ents)
		}
		if fi, err := os.Lstat(dst); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("destination is not a regular file now: %v %v", fi, err)
		}
	})

	t.Run("directory at destination is refused", func(t *testing.T) {
		dst := t.TempDir()
		err := c.Upload(ctx, strings.NewReader("new"), dst, 0o644, nil)
		if err == nil {
			t.Fatal("upload onto a directory succeeded")
		}
		if ents, _ := os.ReadDir(dst); len(ents) != 0 {
			t.Fatalf("directory received files: %v", ents)
		}
	})

	for _, tc := range []struct{ name, dst, want string }{
		{"relative", "etc/x.conf", "absolute"},
		{"dotdot", "/tmp/a/../../etc/x.conf", "not a clean path"},
		{"double slash", "/tmp//x.conf", "not a clean path"},
		{"trailing slash", "/tmp/x/", "absolute file path"},
		{"newline", "/tmp/x\n.conf", "control character"},
		{"NUL", "/tmp/x\x00.conf", "control character"},
		{"root", "/", "absolute file path"},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			err := c.Upload(ctx, strings.NewReader("x"), tc.dst, 0o644, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
