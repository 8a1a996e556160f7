package facts

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestCacheTTL(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := &Cache{Dir: filepath.Join(t.TempDir(), "facts"), TTL: time.Hour, Now: clock.now}
	in := Facts{"os": map[string]any{"name": "Debian"}, "processors": map[string]any{"count": int64(2)}}
	if err := c.Store("web1", in); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		after     time.Duration
		wantFresh bool
	}{
		{0, true},
		{59 * time.Minute, true},
		{time.Hour, false},
		{25 * time.Hour, false},
	}
	for _, tt := range tests {
		clock.t = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(tt.after)
		got, at, fresh, err := c.Load("web1")
		if err != nil {
			t.Fatal(err)
		}
		if fresh != tt.wantFresh {
			t.Errorf("after %v: fresh = %v, want %v", tt.after, fresh, tt.wantFresh)
		}
		if !reflect.DeepEqual(got, in) {
			t.Errorf("after %v: facts = %#v, want %#v", tt.after, got, in)
		}
		if !at.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("gathered at %v", at)
		}
	}
	// TTL <= 0 disables freshness.
	c.TTL = 0
	clock.t = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, _, fresh, _ := c.Load("web1"); fresh {
		t.Error("TTL 0 must never be fresh")
	}
}

func TestCacheModesAndNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "facts")
	c := &Cache{Dir: dir, TTL: time.Hour}
	hosts := []string{"web1", "../../etc/passwd", "a/b", "..", "host:2222", "ünï"}
	for _, h := range hosts {
		if err := c.Store(h, Facts{"name": h}); err != nil {
			t.Fatalf("Store(%q): %v", h, err)
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(hosts) {
		t.Errorf("%d files for %d hosts: %v", len(entries), len(hosts), entries)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 || !info.Mode().IsRegular() {
			t.Errorf("%s mode %v, want regular 0600", e.Name(), info.Mode())
		}
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
	for _, h := range hosts {
		got, _, fresh, err := c.Load(h)
		if err != nil || !fresh || got["name"] != h {
			t.Errorf("Load(%q) = %v, %v, %v", h, got, fresh, err)
		}
	}
	if err := c.Store("", Facts{}); err == nil {
		t.Error("empty host name accepted")
	}
}

func TestCacheCorruptIsMiss(t *testing.T) {
	c := &Cache{Dir: t.TempDir(), TTL: time.Hour}
	if err := c.Store("db1", Facts{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	p, _ := c.path("db1")
	for _, content := range []string{"", "{", "null", `{"host":"other","gathered":"2026-01-01T00:00:00Z","facts":{}}`, `{"host":"db1","facts":{"a":1}}`} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, _, fresh, err := c.Load("db1")
		if f != nil || fresh || err != nil {
			t.Errorf("corrupt %q: got %v, %v, %v; want a miss", content, f, fresh, err)
		}
	}
	if f, _, fresh, err := c.Load("never-stored"); f != nil || fresh || err != nil {
		t.Errorf("absent: got %v, %v, %v", f, fresh, err)
	}
}

func TestCacheAtomicUnderConcurrency(t *testing.T) {
	// Readers racing writers of the same host must always see a whole entry.
	c := &Cache{Dir: t.TempDir(), TTL: time.Hour}
	big := strings.Repeat("x", 256<<10)
	if err := c.Store("h", Facts{"v": big}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if err := c.Store("h", Facts{"v": big}); err != nil {
					errs <- err.Error()
				}
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				f, _, _, err := c.Load("h")
				if err != nil || f == nil || f["v"] != big {
					errs <- "torn or missing read"
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestStateDir(t *testing.T) {
	tests := []struct {
		drover, xdg, home string
		want              string
	}{
		{"/s", "/x", "/h", "/s"},
		{"", "/x", "/h", "/x/drover"},
		{"", "", "/h", "/h/.local/state/drover"},
	}
	for _, tt := range tests {
		t.Setenv("DROVER_STATE_DIR", tt.drover)
		t.Setenv("XDG_STATE_HOME", tt.xdg)
		t.Setenv("HOME", tt.home)
		got, err := StateDir()
		if err != nil || got != tt.want {
			t.Errorf("StateDir() = %q, %v; want %q", got, err, tt.want)
		}
	}
}
