package transport

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sudoPass = "Tr0ub4dor&3 'quoted' $HOME"

func TestBecome(t *testing.T) {
	tests := []struct {
		name     string
		nopasswd bool
		become   Become
		wantOut  string
		wantErr  string // substring; "" = success
	}{
		{name: "password", become: Become{Password: []byte(sudoPass)}, wantOut: "input:hello user=root"},
		{name: "other user", become: Become{User: "postgres", Password: []byte(sudoPass)}, wantOut: "input:hello user=postgres"},
		{name: "nopasswd with a password given", nopasswd: true, become: Become{Password: []byte(sudoPass)},
			wantOut: "input:hello user=root"},
		{name: "nopasswd without password", nopasswd: true, wantOut: "input:hello user=root"},
		{name: "wrong password", become: Become{Password: []byte("wrong-" + sudoPass)}, wantErr: "incorrect sudo password"},
		{name: "password required but none given", wantErr: "needs a password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, withEnv(fakeSudoEnv(t, sudoPass, tc.nopasswd)...))
			c := f.dial(t)
			b := tc.become
			res, err := c.Run(context.Background(), &Command{
				Cmd:    `printf 'input:%s user=%s' "$(cat)" "$FAKE_SUDO_USER"`,
				Stdin:  strings.NewReader("hello"),
				Become: &b,
			})
			if tc.wantErr != "" {
				if !errors.Is(err, ErrBecome) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrBecome with %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), sudoPass) {
					t.Error("password leaked into the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v (stderr %q)", err, res.Stderr)
			}
			if string(res.Stdout) != tc.wantOut || res.ExitCode != 0 {
				t.Errorf("stdout %q exit %d, want %q", res.Stdout, res.ExitCode, tc.wantOut)
			}
			if bytes.Contains(res.Stdout, []byte("Tr0ub4dor")) || bytes.Contains(res.Stderr, []byte("Tr0ub4dor")) ||
				bytes.Contains(res.Stderr, []byte("drover-sudo")) {
				t.Errorf("password or prompt leaked: stdout %q stderr %q", res.Stdout, res.Stderr)
			}
		})
	}
}

func TestUpload(t *testing.T) {
	f := newFixture(t, withEnv(fakeSudoEnv(t, sudoPass, true)...))
	c := f.dial(t)
	dir := t.TempDir()
	content := bytes.Repeat([]byte("line with 'quotes' and $vars\n"), 5000)
	tests := []struct {
		name   string
		dst    string
		mode   os.FileMode
		become *Become
		err    string
	}{
		{name: "plain", dst: filepath.Join(dir, "a file.conf"), mode: 0o640},
		{name: "become with password on NOPASSWD host", dst: filepath.Join(dir, "b.conf"), mode: 0o600,
			become: &Become{Password: []byte(sudoPass)}},
		{name: "overwrite", dst: filepath.Join(dir, "a file.conf"), mode: 0o644},
		{name: "relative refused", dst: "etc/x.conf", mode: 0o644, err: "absolute"},
		{name: "missing directory", dst: filepath.Join(dir, "nope", "x"), mode: 0o644, err: "upload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Upload(context.Background(), bytes.NewReader(content), tc.dst, tc.mode, tc.become)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			got, err := os.ReadFile(tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("uploaded %d bytes differ from the %d sent (starts %q)", len(got), len(content), got[:min(40, len(got))])
			}
			assertMode(t, tc.dst, tc.mode)
			leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(tc.dst), ".*drover-*"))
			if len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

func TestPromptFilterSplitWrites(t *testing.T) {
	prompt := "[drover-sudo:abc]"
	in := "lecture\n" + prompt + "Sorry, try again.\n" + prompt + "tail"
	for split := 1; split < len(in); split++ {
		var out bytes.Buffer
		n := 0
		pf := &promptFilter{next: &out, prompt: []byte(prompt), onPrompt: func() { n++ }}
		pf.Write([]byte(in[:split]))
		pf.Write([]byte(in[split:]))
		if out.String() != "lecture\nSorry, try again.\ntail" || n != 2 {
			t.Fatalf("split %d: out %q prompts %d", split, out.String(), n)
		}
	}
}

func TestMarkerFilterSplitWrites(t *testing.T) {
	marker := "drover-become-ok-abc\n"
	in := marker + "real output"
	for split := 1; split < len(in); split++ {
		var out bytes.Buffer
		seen := false
		mf := &markerFilter{next: &out, marker: []byte(marker), onMarker: func() { seen = true }}
		mf.Write([]byte(in[:split]))
		mf.Write([]byte(in[split:]))
		if out.String() != "real output" || !seen {
			t.Fatalf("split %d: out %q seen %v", split, out.String(), seen)
		}
	}
	var out bytes.Buffer
	mf := &markerFilter{next: &out, marker: []byte(marker), onMarker: func() { t.Error("marker reported") }}
	mf.Write([]byte("sudo said something else\n"))
	if out.String() != "sudo said something else\n" {
		t.Errorf("foreign output mangled: %q", out.String())
	}
}
