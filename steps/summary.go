package steps

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// LastRunSummary is the part of Puppet's last_run_summary.yaml that status
// reports show.
type LastRunSummary struct {
	ConfigVersion string    `json:"config_version,omitempty"`
	PuppetVersion string    `json:"puppet_version,omitempty"`
	LastRun       time.Time `json:"last_run,omitempty"`
	Changed       int       `json:"changed"`
	Failed        int       `json:"failed"`
	OutOfSync     int       `json:"out_of_sync"`
	Total         int       `json:"total"`
	EventFailures int       `json:"event_failures"`
	Duration      float64   `json:"duration_s,omitempty"` // time.total, seconds
}

// rawSummary takes any scalar type: Puppet writes config versions as integers
// or strings and older agents omit sections.
type rawSummary struct {
	Version struct {
		Config any `yaml:"config"`
		Puppet any `yaml:"puppet"`
	} `yaml:"version"`
	Resources map[string]any `yaml:"resources"`
	Time      map[string]any `yaml:"time"`
	Events    map[string]any `yaml:"events"`
}

// ParseLastRunSummary reads a last_run_summary.yaml.
func ParseLastRunSummary(b []byte) (*LastRunSummary, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("last run summary: empty")
	}
	var raw rawSummary
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("last run summary: %w", err)
	}
	s := &LastRunSummary{
		ConfigVersion: scalarString(raw.Version.Config),
		PuppetVersion: scalarString(raw.Version.Puppet),
		Changed:       toInt(raw.Resources["changed"]),
		Failed:        toInt(raw.Resources["failed"]),
		OutOfSync:     toInt(raw.Resources["out_of_sync"]),
		Total:         toInt(raw.Resources["total"]),
		EventFailures: toInt(raw.Events["failure"]),
		Duration:      toFloat(raw.Time["total"]),
	}
	if t := toFloat(raw.Time["last_run"]); t > 0 && t < 1e12 {
		s.LastRun = time.Unix(int64(t), 0).UTC()
	}
	return s, nil
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int, int64, uint64, bool:
		return fmt.Sprint(x)
	}
	return "" // a mapping or list is not a version
}

func toFloat(v any) float64 {
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case float64:
		f = x
	case string:
		f, _ = strconv.ParseFloat(x, 64)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func toInt(v any) int {
	f := toFloat(v)
	if f > math.MaxInt32 || f < math.MinInt32 {
		return 0
	}
	return int(f)
}
