package notify

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drover-sh/drover/playbook"
)

const summary = `{"run_id":"20260302T010000Z-abcdef","playbook":"demo-web","status":"halted"}`

// recorder is a webhook receiver on 127.0.0.1:0 that answers with the next
// scripted status (200 once the script runs out) and keeps what it got.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	bodies   []string
	headers  []http.Header
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	h := req.Header.Clone()
	h.Set("X-Method", req.Method)
	r.headers = append(r.headers, h)
	code := http.StatusOK
	if len(r.statuses) > 0 {
		code, r.statuses = r.statuses[0], r.statuses[1:]
	}
	r.mu.Unlock()
	w.WriteHeader(code)
	if code != http.StatusOK {
		io.WriteString(w, "receiver says no")
	}
}

func serve(t *testing.T, r *recorder) string {
	t.Helper()
	srv := httptest.NewServer(r) // listens on 127.0.0.1:0
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestWebhook(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		wantErr  string // "" for success
		wantHits int
	}{
		{"delivered", nil, "", 1},
		{"500 then 200 is retried", []int{500}, "", 2},
		{"429 is retried", []int{429, 503}, "", 3},
		{"always 500 gives up after 3", []int{500, 500, 500, 500}, "3 attempts failed, last: HTTP 500", 3},
		{"404 is not retried", []int{404}, "HTTP 404 Not Found: \"receiver says no\"", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{statuses: tt.statuses}
			base := serve(t, r)
			n := &playbook.Notify{Webhook: base + "/hook/s3cr3t-token", Headers: map[string]string{"Authorization": "Bearer xyz"}}
			err := Send(context.Background(), n, []byte(summary), WithBackoff(time.Millisecond))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Send: %v", err)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Errorf("the webhook's path leaked into %q", err)
				}
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.bodies) != tt.wantHits {
				t.Fatalf("%d requests, want %d", len(r.bodies), tt.wantHits)
			}
			for i, b := range r.bodies {
				h := r.headers[i]
				if b != summary || h.Get("Content-Type") != "application/json" || h.Get("X-Method") != "POST" || h.Get("Authorization") != "Bearer xyz" {
					t.Errorf("request %d: %s %q %v", i, h.Get("X-Method"), b, h)
				}
			}
		})
	}
}

// A receiver that is down (nothing listens) fails after every attempt, and
// the error names neither the user info nor the path of the URL.
func TestWebhookDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the port is now (very likely) closed: connection refused
	n := &playbook.Notify{Webhook: "http://alice:pa55word@" + addr + "/hook?token=t0ken"}
	err = Send(context.Background(), n, []byte(summary), WithBackoff(time.Millisecond))
	if err == nil {
		t.Fatal("a down webhook reported success")
	}
	for _, secret := range []string{"pa55word", "alice", "t0ken", "/hook"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks %q: %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), "http://"+addr+"/…") || !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("error %v: want the redacted URL and the attempt count", err)
	}
}

// A receiver that never answers is given up on after the timeout, per attempt.
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	n := &playbook.Notify{Webhook: srv.URL, Timeout: 50 * time.Millisecond}
	err := Send(context.Background(), n, []byte(summary), WithBackoff(time.Millisecond), WithAttempts(2))
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("error %v, want a timeout", err)
	}
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "got")
	tests := []struct {
		name    string
		cmd     string
		timeout time.Duration
		wantErr string
	}{
		{"summary on stdin, run facts in the environment", `cat > "$OUT"; printf '%s|%s|%s' "$DROVER_RUN_ID" "$DROVER_PLAYBOOK" "$DROVER_STATUS" > "$OUT.env"`, 0, ""},
		{"failing command", `echo "no mail today" >&2; exit 3`, 0, `exit 3: "no mail today"`},
		{"hanging command is killed", `sleep 30 & sleep 30`, 100 * time.Millisecond, "no exit within 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &playbook.Notify{Command: tt.cmd, Timeout: tt.timeout}
			start := time.Now()
			err := Send(context.Background(), n, []byte(summary), WithEnv("OUT="+out))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				got, _ := os.ReadFile(out)
				env, _ := os.ReadFile(out + ".env")
				if string(got) != summary || string(env) != "20260302T010000Z-abcdef|demo-web|halted" {
					t.Errorf("stdin %q, env %q", got, env)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "sleep") || strings.Contains(err.Error(), "echo") {
				t.Errorf("error quotes the command line: %v", err)
			}
			// The background sleep holds stderr open; WaitDelay and the
			// process-group kill must not let it hold us for its 30 s.
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// Both targets are tried even when the first fails.
func TestWebhookAndCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "got")
	r := &recorder{statuses: []int{400}}
	n := &playbook.Notify{Webhook: serve(t, r), Command: `cat > "$OUT"`}
	err := Send(context.Background(), n, []byte(summary), WithEnv("OUT="+out))
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("error %v, want the webhook's 400", err)
	}
	if got, _ := os.ReadFile(out); string(got) != summary {
		t.Errorf("the command got %q after the webhook failed", got)
	}
	if err := Send(context.Background(), nil, []byte(summary)); err != nil {
		t.Errorf("nil notify: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://hooks.example.com/services/T0/B0/XYZ": "https://hooks.example.com/…",
		"http://u:p@127.0.0.1:9000":                    "http://127.0.0.1:9000/…",
		"http://127.0.0.1:9000/":                       "http://127.0.0.1:9000",
		"http://127.0.0.1:9000?k=v":                    "http://127.0.0.1:9000/…",
		"::bad":                                        "[redacted URL]",
	}
	for in, want := range tests {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
