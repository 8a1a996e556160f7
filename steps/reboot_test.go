package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drover-sh/drover/transport"
)

const (
	bootA = "2b769a23-829e-4362-a1d3-d67a3b6f8044"
	bootB = "db2e952f-48c0-425e-bc7e-6ecefbc6c86b"
)

// noSleep counts waits instead of waiting; after limit waits it reports the
// deadline as passed.
type noSleep struct {
	n, limit int
	waited   time.Duration
}

func (s *noSleep) sleep(_ context.Context, d time.Duration) error {
	s.n++
	s.waited += d
	if s.limit > 0 && s.n > s.limit {
		return context.DeadlineExceeded
	}
	return nil
}

// The real connection is a Reconnector, so Reboot redials it on each attempt.
var _ Reconnector = (*transport.Conn)(nil)

// reconnectingRunner is a fakeRunner that also implements Reconnector.
type reconnectingRunner struct {
	*fakeRunner
	reconnects int
}

func (r *reconnectingRunner) Reconnect(context.Context) error {
	r.reconnects++
	return nil
}

func TestReboot(t *testing.T) {
	unreachable := fmt.Errorf("dial: %w", transport.ErrUnreachable)
	tests := []struct {
		name       string
		a          RebootAction
		dry        bool
		replies    []reply
		limit      int
		wantStatus Status
		wantDetail string // prefix
		wantCmds   []string
		wantErr    bool
	}{
		{
			name:       "not required: nothing happens",
			replies:    []reply{{stdout: bootA + "\n"}},
			wantStatus: StatusOK, wantDetail: "no reboot required",
			wantCmds: []string{rebootCheck},
		},
		{
			name: "required: reboots, waits through the old id and the outage, sees the new id",
			replies: []reply{
				{stdout: bootA + "\n@@required\n@@pkg linux-image-amd64\n"},
				{},                     // reboot issued
				{stdout: bootA + "\n"}, // not down yet
				{err: unreachable},     // down
				{err: fmt.Errorf("%w: ssh: handshake failed", transport.ErrConnLost)},
				{stdout: bootB + "\n"}, // back
			},
			wantStatus: StatusChanged,
			wantDetail: "rebooted (boot id 2b769a23 -> db2e952f, back after ",
			wantCmds:   []string{rebootCheck, rebootCmd, bootIDCmd, bootIDCmd, bootIDCmd, bootIDCmd},
		},
		{
			name:       "forced when not required",
			a:          RebootAction{Force: true},
			replies:    []reply{{stdout: bootA + "\n"}, {}, {stdout: bootB + "\n"}},
			wantStatus: StatusChanged, wantDetail: "rebooted (boot id 2b769a23 -> db2e952f",
			wantCmds: []string{rebootCheck, rebootCmd, bootIDCmd},
		},
		{
			name:       "the connection dropping while issuing is not a failure",
			a:          RebootAction{Force: true},
			replies:    []reply{{stdout: bootA + "\n"}, {err: transport.ErrConnLost}, {stdout: bootB + "\n"}},
			wantStatus: StatusChanged, wantDetail: "rebooted",
			wantCmds: []string{rebootCheck, rebootCmd, bootIDCmd},
		},
		{
			name:       "dry run says it would and does not",
			dry:        true,
			replies:    []reply{{stdout: bootA + "\n@@required\n"}},
			wantStatus: StatusChanged, wantDetail: "would reboot (required)",
			wantCmds: []string{rebootCheck},
		},
		{
			name:       "never comes back",
			a:          RebootAction{Force: true, Timeout: time.Minute},
			replies:    []reply{{stdout: bootA + "\n"}, {}, {err: unreachable}, {err: unreachable}},
			limit:      2,
			wantStatus: StatusFailed,
			wantDetail: "reboot: the host did not come back with a new boot id within 1m0s (last: dial: host unreachable)",
			wantCmds:   []string{rebootCheck, rebootCmd, bootIDCmd, bootIDCmd},
			wantErr:    true,
		},
		{
			name:       "the reboot command fails",
			a:          RebootAction{Force: true},
			replies:    []reply{{stdout: bootA + "\n"}, {exit: 1, stderr: "sudo: a password is required\n"}},
			wantStatus: StatusFailed, wantDetail: "reboot: exited 1: sudo: a password is required",
			wantCmds: []string{rebootCheck, rebootCmd},
			wantErr:  true,
		},
		{
			name:       "no boot id",
			replies:    []reply{{exit: 1, stderr: "cat: /proc/sys/kernel/random/boot_id: No such file or directory\n"}},
			wantStatus: StatusFailed, wantDetail: "reboot: cannot read the boot id (exit 1)",
			wantCmds: []string{rebootCheck},
			wantErr:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{t: t, replies: tt.replies}
			s := &noSleep{limit: tt.limit}
			a := tt.a
			a.sleep = s.sleep
			res, err := Reboot(context.Background(), f, a, Options{DryRun: tt.dry})
			f.done()
			if res.Status != tt.wantStatus || !strings.HasPrefix(res.Detail, tt.wantDetail) {
				t.Errorf("got %s %q, want %s %q…", res.Status, res.Detail, tt.wantStatus, tt.wantDetail)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("err %v", err)
			}
			if got := f.ran(); strings.Join(got, "\x00") != strings.Join(tt.wantCmds, "\x00") {
				t.Errorf("ran %q\nwant %q", got, tt.wantCmds)
			}
			if tt.wantStatus == StatusChanged && !tt.dry {
				if res.Before["boot_id"] != bootA || res.After["boot_id"] != bootB {
					t.Errorf("before %v after %v", res.Before, res.After)
				}
			}
		})
	}
}

func TestRebootBacksOffAndReconnects(t *testing.T) {
	f := &fakeRunner{t: t, replies: []reply{{stdout: bootA + "\n@@required\n"}, {}}}
	for i := 0; i < 8; i++ {
		f.replies = append(f.replies, reply{err: transport.ErrUnreachable})
	}
	f.replies = append(f.replies, reply{stdout: bootB})
	r := &reconnectingRunner{fakeRunner: f}
	s := &noSleep{}
	res, err := Reboot(context.Background(), r, RebootAction{sleep: s.sleep}, Options{})
	f.done()
	if err != nil || res.Status != StatusChanged {
		t.Fatalf("%s %q %v", res.Status, res.Detail, err)
	}
	if r.reconnects != 9 {
		t.Errorf("Reconnect called %d times, want once per attempt (9)", r.reconnects)
	}
	// 0.5 1 2 4 5 5 5 5 5 s: doubling from half a second, capped at 5 s.
	if want := 32500 * time.Millisecond; s.waited != want {
		t.Errorf("waited %s in total, want %s", s.waited, want)
	}
}

func TestRebootInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeRunner{t: t, replies: []reply{{stdout: bootA + "\n@@required\n"}, {}}}
	res, err := Reboot(ctx, f, RebootAction{sleep: func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}}, Options{})
	f.done()
	if !errors.Is(err, context.Canceled) || res.Status != StatusFailed {
		t.Fatalf("%s %q %v, want failed with context.Canceled", res.Status, res.Detail, err)
	}
}
