package facts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// DefaultTTL is how long cached facts stay fresh unless --fact-cache-ttl says otherwise.
const DefaultTTL = time.Hour

// Cache keeps each host's facts in its own file under Dir (mode 0600, Dir 0700),
// so `plan` can preview without connecting.
type Cache struct {
	Dir string           // usually filepath.Join(StateDir(), "facts")
	TTL time.Duration    // entries older than this are stale; <= 0: never fresh
	Now func() time.Time // clock; nil means time.Now
}

// cacheEntry is the file format.
type cacheEntry struct {
	Host     string    `json:"host"`
	Gathered time.Time `json:"gathered"`
	Facts    Facts     `json:"facts"`
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// path is the host's cache file. The name is escaped so that any inventory
// name (with "/", "..", ":") stays one file inside Dir.
func (c *Cache) path(host string) (string, error) {
	if c.Dir == "" {
		return "", errors.New("fact cache: no directory")
	}
	if host == "" {
		return "", errors.New("fact cache: empty host name")
	}
	name := url.PathEscape(host)
	if name == "." || name == ".." {
		name = "%2E" + name[1:]
	}
	return filepath.Join(c.Dir, name+".json"), nil
}

// Load returns the cached facts of host, when they were gathered, and whether
// they are still fresh. Stale facts are returned too (fresh=false) so a caller
// may show them as such. A missing or unreadable-as-JSON file is a miss (nil
// facts, no error); other I/O errors are returned.
func (c *Cache) Load(host string) (Facts, time.Time, bool, error) {
	p, err := c.path(host)
	if err != nil {
		return nil, time.Time{}, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, false, nil
	}
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("fact cache: read %s: %w", host, err)
	}
	var raw struct {
		Host     string         `json:"host"`
		Gathered time.Time      `json:"gathered"`
		Facts    map[string]any `json:"facts"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw.Facts == nil || raw.Host != host || raw.Gathered.IsZero() {
		return nil, time.Time{}, false, nil // corrupt or foreign: treat as a miss
	}
	f := Facts(Normalize(raw.Facts).(map[string]any))
	age := c.now().Sub(raw.Gathered)
	fresh := c.TTL > 0 && age < c.TTL && age >= -time.Minute
	return f, raw.Gathered, fresh, nil
}

// Store writes host's facts atomically: a temp file in Dir, fsync, rename, so a
// reader sees the old entry or the new one, never half of either.
func (c *Cache) Store(host string, f Facts) error {
	p, err := c.path(host)
	if err != nil {
		return err
	}
	b, err := json.Marshal(cacheEntry{Host: host, Gathered: c.now().UTC(), Facts: f})
	if err != nil {
		return fmt.Errorf("fact cache: encode %s: %w", host, err)
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("fact cache: %w", err)
	}
	if err := os.Chmod(c.Dir, 0o700); err != nil {
		return fmt.Errorf("fact cache: %w", err)
	}
	tmp, err := os.CreateTemp(c.Dir, ".tmp-*") // CreateTemp makes it 0600
	if err != nil {
		return fmt.Errorf("fact cache: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("fact cache: write %s: %w", host, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fact cache: sync %s: %w", host, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("fact cache: close %s: %w", host, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		done = true
		return fmt.Errorf("fact cache: %w", err)
	}
	done = true
	// The rename is durable only once the directory is synced.
	if d, err := os.Open(c.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// StateDir is drover's state directory: $DROVER_STATE_DIR, else
// $XDG_STATE_HOME/drover, else ~/.local/state/drover. It is not created here.
func StateDir() (string, error) {
	if d := os.Getenv("DROVER_STATE_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "drover"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "drover"), nil
}
