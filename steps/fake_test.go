package steps

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"testing"

	"github.com/drover-sh/drover/transport"
)

// reply is one scripted answer of fakeRunner.
type reply struct {
	exit           int
	stdout, stderr string
	err            error
}

// fakeRunner records every command and answers them in order.
type fakeRunner struct {
	t       *testing.T
	replies []reply
	cmds    []*transport.Command
	uploads map[string]string
}

func (f *fakeRunner) Run(_ context.Context, c *transport.Command) (*transport.Result, error) {
	f.cmds = append(f.cmds, c)
	if len(f.replies) == 0 {
		f.t.Fatalf("unexpected command %d: %s", len(f.cmds), c.Cmd)
	}
	r := f.replies[0]
	f.replies = f.replies[1:]
	if r.err != nil {
		return nil, r.err
	}
	return &transport.Result{ExitCode: r.exit, Stdout: []byte(r.stdout), Stderr: []byte(r.stderr)}, nil
}

func (f *fakeRunner) Upload(_ context.Context, src io.Reader, dst string, _ fs.FileMode, _ *transport.Become) error {
	b, err := io.ReadAll(src)
	if err != nil {
		return err
	}
	if f.uploads == nil {
		f.uploads = map[string]string{}
	}
	f.uploads[dst] = string(b)
	return nil
}

func (f *fakeRunner) Close() error { return nil }

// ran lists the command lines run, in order.
func (f *fakeRunner) ran() []string {
	var s []string
	for _, c := range f.cmds {
		s = append(s, c.Cmd)
	}
	return s
}

// done fails the test when scripted replies were left unused.
func (f *fakeRunner) done() {
	f.t.Helper()
	if len(f.replies) != 0 {
		f.t.Errorf("%d scripted replies unused; ran %q", len(f.replies), f.ran())
	}
}

var errConn = errors.New("connection lost")
