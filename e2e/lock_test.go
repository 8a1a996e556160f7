package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestLockAndNotify, with the real binary and a real host: while one run of a
// locked playbook works, a second run of it exits 5 at once naming the first
// (its pid); the first posts its summary to the webhook at the end; a later
// run whose webhook is down still succeeds.
func TestLockAndNotify(t *testing.T) {
	host := shared.lab.Hosts[len(shared.lab.Hosts)-1].Name
	release := "/tmp/drover-e2e-lock-release"
	onHost := func(args ...string) result {
		return drover(t, append(append(append([]string{"exec", host}, labArgs()...), "--"), args...)...)
	}
	if r := onHost("rm", "-f", release); r.code != 0 {
		t.Fatalf("exec on %s: exit %d\n%s", host, r.code, r.stderr)
	}
	t.Cleanup(func() { onHost("rm", "-f", release) })

	var mu sync.Mutex
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer srv.Close()

	dir := t.TempDir()
	playbook := func(name, hook string) string {
		pb := filepath.Join(dir, name+".hcl")
		src := fmt.Sprintf(`playbook "e2e-lock" {}
settings {
  lock = true
}
targets {
  hosts = [%q]
}
steps {
  command "wait" { run = "n=0; while [ ! -e %s ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done; test -e %s" }
}
notify { webhook = %q }
`, host, release, release, hook)
		if err := os.WriteFile(pb, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return pb
	}
	home := t.TempDir()
	pb := playbook("up", srv.URL+"/hook/s3cret")

	ctx, cancel := context.WithTimeout(context.Background(), rolloutTimeout)
	defer cancel()
	first := exec.CommandContext(ctx, shared.bin, append([]string{"run", pb}, labArgs()...)...)
	first.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1", "DROVER_STATE_DIR=" + filepath.Join(home, "state")}
	stderr, err := first.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	inStep := make(chan struct{})
	var firstErr strings.Builder
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			firstErr.WriteString(sc.Text() + "\n")
			if !seen && strings.Contains(sc.Text(), host+" command wait ...") {
				seen = true
				close(inStep)
			}
		}
	}()
	select {
	case <-inStep:
	case <-scanned:
		_ = first.Wait()
		t.Fatalf("the first run ended before its step:\n%s", firstErr.String())
	}

	second := droverHome(t, home, append([]string{"run", pb}, labArgs()...)...)
	if second.code != 5 {
		t.Errorf("second run: exit %d, want 5\n%s", second.code, second.stderr)
	}
	m := regexp.MustCompile(`locked by another run: pid (\d+) on `).FindStringSubmatch(second.stderr)
	if m == nil || m[1] != strconv.Itoa(first.Process.Pid) {
		t.Errorf("the refusal does not name pid %d:\n%s", first.Process.Pid, second.stderr)
	}

	if r := onHost("touch", release); r.code != 0 {
		t.Fatalf("releasing the first run: exit %d\n%s", r.code, r.stderr)
	}
	<-scanned
	err = first.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if code := first.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, firstErr.String())
	}
	mu.Lock()
	got := bodies
	mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("webhook called %d times, want once (the refused run does not notify)", len(got))
	}
	var sum struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
		Hosts  struct {
			Total   int `json:"total"`
			Changed int `json:"changed"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(got[0], &sum); err != nil || sum.Status != "succeeded" || sum.Hosts.Total != 1 || sum.Hosts.Changed != 1 || sum.RunID == "" {
		t.Errorf("webhook summary %s (%v)", got[0], err)
	}

	// The webhook is down now: the run still succeeds, with a warning.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/hook/s3cret"
	l.Close()
	third := droverHome(t, home, append([]string{"run", playbook("down", down), "--quiet"}, labArgs()...)...)
	if third.code != 0 || !strings.Contains(third.stderr, "warning: notify webhook") || strings.Contains(third.stderr, "s3cret") {
		t.Errorf("down webhook: exit %d\n%s", third.code, third.stderr)
	}
	if strings.Contains(third.stderr, "command wait") {
		t.Errorf("--quiet printed step events:\n%s", third.stderr)
	}

	hist := droverHome(t, home, "history", "--json")
	var runs []struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(hist.stdout), &runs); err != nil || len(runs) != 2 || runs[1].RunID != sum.RunID {
		t.Errorf("history --json: %v\n%s", err, hist.stdout)
	}
}
