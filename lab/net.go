package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// lockDir holds one lock file per lab network so that labs in concurrent processes
// (go test runs packages in parallel) never share addresses.
const lockDir = "/run/drover-lab"

// maxNet is the highest third octet a lab may use: 127.1.NET.i.
const maxNet = 255

// claimNet locks network n, or the first free one from 1 up when n is -1. A network
// counts as taken while another lab holds its lock or while something answers on its
// first address (a detached lab started by `drover-lab up` keeps running after the
// command, and with it its addresses, but not its lock).
func claimNet(ctx context.Context, n int) (int, *flock.Flock, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return 0, nil, fmt.Errorf("lab: lock directory: %w", err)
	}
	try := func(n int) (*flock.Flock, error) {
		l := flock.New(filepath.Join(lockDir, fmt.Sprintf("net-%d.lock", n)))
		ok, err := l.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lab: lock network %d: %w", n, err)
		}
		if !ok {
			return nil, errNetBusy
		}
		if addrInUse(ctx, hostAddress(n, 1)) {
			_ = l.Unlock()
			return nil, errNetBusy
		}
		return l, nil
	}
	if n >= 0 {
		if n > maxNet {
			return 0, nil, fmt.Errorf("lab: network %d out of range 0..%d", n, maxNet)
		}
		l, err := try(n)
		if errors.Is(err, errNetBusy) {
			return 0, nil, fmt.Errorf("lab: network 127.1.%d.0/24 is in use by another lab", n)
		}
		return n, l, err
	}
	for n := 1; n <= maxNet; n++ {
		l, err := try(n)
		if errors.Is(err, errNetBusy) {
			continue
		}
		return n, l, err
	}
	return 0, nil, errors.New("lab: no free network in 127.1.1.0 .. 127.1.255.0")
}

var errNetBusy = errors.New("network busy")

func hostAddress(net, i int) string { return fmt.Sprintf("127.1.%d.%d", net, i) }

// addrInUse reports whether something accepts TCP connections on addr:22.
func addrInUse(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: 200 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
