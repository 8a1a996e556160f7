package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkReachLab compares, on the shared lab, drover's fact gathering (one round trip per
// host, fresh connections each time, cache bypassed) and `drover exec uname -a` with OpenSSH
// running `uname -a` on every host in parallel — the floor for "ask the whole fleet
// something". `make bench` is the full comparison (pssh, Ansible, facter).
//
//	go test ./e2e -run '^$' -bench ReachLab -benchtime 5x
func BenchmarkReachLab(b *testing.B) {
	home := b.TempDir()
	b.Run("drover-facts", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			args := append([]string{"facts", "--refresh", "--json", "--forks", "50"}, labArgs()...)
			cmd := exec.CommandContext(ctx, shared.bin, args...)
			cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "DROVER_STATE_DIR=" + filepath.Join(home, "state")}
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				b.Fatalf("drover facts: %v\n%s", err, out)
			}
		}
	})
	b.Run("drover-exec-uname", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			args := append([]string{"exec"}, labArgs()...)
			args = append(args, "--forks", "50", "--", "uname", "-a")
			cmd := exec.CommandContext(ctx, shared.bin, args...)
			cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "DROVER_STATE_DIR=" + filepath.Join(home, "state")}
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				b.Fatalf("drover exec: %v\n%s", err, out)
			}
		}
	})
	b.Run("openssh-uname", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			errs := make(chan error, len(shared.lab.Hosts))
			for _, h := range shared.lab.Hosts {
				wg.Add(1)
				go func(name string) {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					cmd := exec.CommandContext(ctx, "ssh", "-F", shared.lab.SSHConfig, "-o", "BatchMode=yes", name, "uname", "-a")
					cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
					if out, err := cmd.CombinedOutput(); err != nil {
						errs <- &exec.Error{Name: name + ": " + string(out), Err: err}
					}
				}(h.Name)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		}
	})
}
