package stages

import (
	"errors"
	"fmt"
	"time"

	"github.com/drover-sh/drover/playbook"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// ErrNoTargets is returned when there is no host to plan for.
var ErrNoTargets = errors.New("no target hosts: the inventory pattern, filters and targets.where left nothing to run on")

// Target is one selected host, in inventory order.
type Target struct {
	Name  string
	Host  playbook.HostData // Name may be left empty: Target.Name is used
	Facts map[string]any
}

// Plan is the rollout, stage by stage, in execution order.
type Plan struct {
	Targets int // how many hosts the plan covers
	Stages  []PlannedStage
}

// PlannedStage is one stage with its hosts resolved. A stage whose hosts were
// all taken by earlier stages is kept with no hosts, so a preview shows it.
type PlannedStage struct {
	Name      string
	Kind      playbook.StageKind
	Hosts     []string
	Batches   [][]string    // run one after the other; the gate is checked after each
	Parallel  int           // hosts worked on at once within a batch
	MaxFailed int           // failed hosts tolerated in the stage (resolved count)
	Pause     time.Duration // between batches
	Gate      *playbook.Gate
	Domains   []string // canary with spread_by: the failure domains, in first-appearance order
}

// PlanStages computes the plan for p over targets (already in inventory order
// and already filtered by targets.where). The same inputs always give the same
// plan. forks caps parallelism; 0 uses the playbook's settings.forks, else
// playbook.DefaultForks.
func PlanStages(p *playbook.Playbook, targets []Target) (*Plan, error) {
	return PlanStagesForks(p, targets, 0)
}

// PlanStagesForks is PlanStages with the command line's --forks (0: not given),
// which wins over settings.forks.
func PlanStagesForks(p *playbook.Playbook, targets []Target, forks int) (*Plan, error) {
	if len(targets) == 0 {
		return nil, ErrNoTargets
	}
	if forks <= 0 {
		forks = playbook.DefaultForks
		if p.Settings != nil && p.Settings.Forks > 0 {
			forks = p.Settings.Forks
		}
	}
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		if seen[t.Name] {
			return nil, fmt.Errorf("target %q appears twice", t.Name)
		}
		seen[t.Name] = true
	}
	stageDefs := p.Stages
	total := len(targets)
	left := targets
	plan := &Plan{Targets: total}
	for _, def := range stageDefs {
		ps := PlannedStage{Name: def.Name, Kind: def.Kind, Pause: def.Pause, Gate: def.Gate}
		var take []Target
		switch def.Kind {
		case playbook.KindCanary:
			n := min(atLeastOne(ceilOf(def.Hosts, total)), len(left))
			var domains []string
			if def.SpreadBy != nil {
				var err error
				if take, left, domains, err = spread(p, def, left, n); err != nil {
					return nil, err
				}
			} else {
				take, left = left[:n], left[n:]
			}
			ps.Domains = domains
		case playbook.KindBatch:
			n := len(left)
			if def.Hosts.Set {
				n = min(ceilOf(def.Hosts, total), len(left))
			}
			take, left = left[:n], left[n:]
		default: // remaining
			take, left = left, nil
		}
		ps.Hosts = names(take)
		ps.MaxFailed = floorOf(def.MaxFailed, len(take))
		ps.Batches, ps.Parallel = batches(def, ps.Hosts, forks)
		plan.Stages = append(plan.Stages, ps)
	}
	if len(left) > 0 {
		// Stages that end before every host is taken (no remaining block, batches
		// with explicit hosts): the rest run as an implicit remaining stage, as
		// when there is no stage at all, rather than being silently left out.
		def := &playbook.Stage{Kind: playbook.KindRemaining, Name: "remaining"}
		ps := PlannedStage{Name: def.Name, Kind: def.Kind, Hosts: names(left)}
		ps.Batches, ps.Parallel = batches(def, ps.Hosts, forks)
		plan.Stages = append(plan.Stages, ps)
	}
	return plan, nil
}

func names(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// ceilOf resolves a host count: percentages of n round up.
func ceilOf(q playbook.Quantity, n int) int {
	if !q.IsPercent {
		return q.Count
	}
	return (q.Hundredths*n + 9999) / 10000
}

// floorOf resolves max_failed: a count is capped by the stage's hosts,
// percentages round down ("tolerate at most").
func floorOf(q playbook.Quantity, n int) int {
	if !q.IsPercent {
		return min(q.Count, n)
	}
	return q.Hundredths * n / 10000
}

func atLeastOne(n int) int { return max(n, 1) }

// batches splits a stage's hosts. Canary: one batch. Batch: batches of size
// (percentages of the stage's hosts, rounded up, at least 1), or one batch;
// parallel defaults to the batch size. Remaining: one batch worked through by a
// sliding window of parallel hosts (default forks). Parallel never exceeds forks.
func batches(def *playbook.Stage, hosts []string, forks int) ([][]string, int) {
	if len(hosts) == 0 {
		return nil, 0
	}
	size := len(hosts)
	if def.Kind == playbook.KindBatch && def.Size.Set {
		size = min(atLeastOne(ceilOf(def.Size, len(hosts))), len(hosts))
	}
	var out [][]string
	for i := 0; i < len(hosts); i += size {
		out = append(out, hosts[i:min(i+size, len(hosts))])
	}
	parallel := size
	if def.Parallel > 0 {
		parallel = min(def.Parallel, size)
	} else if def.Kind == playbook.KindRemaining {
		parallel = forks
	}
	return out, max(min(parallel, forks, size), 1)
}

// spread picks n canaries round-robin across the values of spread_by, domains
// ordered by first appearance, hosts within a domain in inventory order; a host
// without a value is in the domain "". The others keep inventory order.
func spread(p *playbook.Playbook, def *playbook.Stage, ts []Target, n int) (take, rest []Target, domains []string, err error) {
	byDomain := map[string][]int{}
	for i, t := range ts {
		v, err := domainOf(p, def, t)
		if err != nil {
			return nil, nil, nil, err
		}
		if _, ok := byDomain[v]; !ok {
			domains = append(domains, v)
		}
		byDomain[v] = append(byDomain[v], i)
	}
	picked := make([]bool, len(ts))
	for round := 0; len(take) < n; round++ {
		for _, d := range domains {
			if idx := byDomain[d]; round < len(idx) && len(take) < n {
				take = append(take, ts[idx[round]])
				picked[idx[round]] = true
			}
		}
	}
	for i, t := range ts {
		if !picked[i] {
			rest = append(rest, t)
		}
	}
	return take, rest, domains, nil
}

func domainOf(p *playbook.Playbook, def *playbook.Stage, t Target) (string, error) {
	h := t.Host
	if h.Name == "" {
		h.Name = t.Name
	}
	ctx, err := p.HostContext(h, t.Facts)
	if err != nil {
		return "", fmt.Errorf("spread_by: %w", err)
	}
	v, diags := def.SpreadBy.Value(ctx)
	if diags.HasErrors() {
		// A missing fact is a domain of its own, like a null value.
		return "", nil
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !v.IsWhollyKnown() {
		return "", nil
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		return "", fmt.Errorf("spread_by on %s: the value is a %s, not a string, number or bool", t.Name, v.Type().FriendlyName())
	}
	return s.AsString(), nil
}
