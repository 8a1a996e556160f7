package stages

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/drover-sh/drover/playbook"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func hosts(n int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{Name: fmt.Sprintf("h%d", i+1)}
	}
	return ts
}

func pct(h int) playbook.Quantity {
	return playbook.Quantity{Set: true, IsPercent: true, Hundredths: h}
}
func count(n int) playbook.Quantity { return playbook.Quantity{Set: true, Count: n} }

func sizes(bs [][]string) []int {
	out := []int{}
	for _, b := range bs {
		out = append(out, len(b))
	}
	return out
}

type stageShape struct {
	hosts     int
	batches   []int
	parallel  int
	maxFailed int
}

func shape(ps PlannedStage) stageShape {
	return stageShape{len(ps.Hosts), sizes(ps.Batches), ps.Parallel, ps.MaxFailed}
}

// TestPercentages: canary "5%", batch "25%" in batches of "50%", remaining with
// max_failed "5%", over fleets of several sizes.
func TestPercentages(t *testing.T) {
	p := &playbook.Playbook{Settings: &playbook.Settings{}, Stages: []*playbook.Stage{
		{Kind: playbook.KindCanary, Name: "canary", Hosts: pct(500)},
		{Kind: playbook.KindBatch, Name: "early", Hosts: pct(2500), Size: pct(5000), MaxFailed: pct(1000)},
		{Kind: playbook.KindRemaining, Name: "remaining", MaxFailed: pct(500)},
	}}
	cases := []struct {
		n                      int
		canary, early, remains stageShape
	}{
		{1, stageShape{1, []int{1}, 1, 0}, stageShape{0, []int{}, 0, 0}, stageShape{0, []int{}, 0, 0}},
		{2, stageShape{1, []int{1}, 1, 0}, stageShape{1, []int{1}, 1, 0}, stageShape{0, []int{}, 0, 0}},
		{3, stageShape{1, []int{1}, 1, 0}, stageShape{1, []int{1}, 1, 0}, stageShape{1, []int{1}, 1, 0}},
		{7, stageShape{1, []int{1}, 1, 0}, stageShape{2, []int{1, 1}, 1, 0}, stageShape{4, []int{4}, 4, 0}},
		{10, stageShape{1, []int{1}, 1, 0}, stageShape{3, []int{2, 1}, 2, 0}, stageShape{6, []int{6}, 6, 0}},
		{100, stageShape{5, []int{5}, 5, 0}, stageShape{25, []int{13, 12}, 13, 2}, stageShape{70, []int{70}, 50, 3}},
		{1000, stageShape{50, []int{50}, 50, 0}, stageShape{250, []int{125, 125}, 50, 25}, stageShape{700, []int{700}, 50, 35}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			plan, err := PlanStages(p, hosts(tc.n))
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Stages) != 3 {
				t.Fatalf("%d stages", len(plan.Stages))
			}
			for i, want := range []stageShape{tc.canary, tc.early, tc.remains} {
				if got := shape(plan.Stages[i]); !reflect.DeepEqual(got, want) {
					t.Errorf("stage %s: got %+v, want %+v", plan.Stages[i].Name, got, want)
				}
			}
			// Every host exactly once, in inventory order (no spread_by).
			var all []string
			for _, s := range plan.Stages {
				all = append(all, s.Hosts...)
			}
			if !reflect.DeepEqual(all, names(hosts(tc.n))) {
				t.Errorf("hosts out of order or lost: %v", all)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	p := &playbook.Playbook{Settings: &playbook.Settings{Forks: 4}, Stages: []*playbook.Stage{
		{Kind: playbook.KindCanary, Name: "canary", Hosts: count(2), MaxFailed: count(5)},
		{Kind: playbook.KindBatch, Name: "b", Hosts: count(3), Size: count(2), Parallel: 1},
		{Kind: playbook.KindRemaining, Name: "remaining", Parallel: 10, MaxFailed: count(1)},
	}}
	cases := []struct {
		n    int
		want []stageShape
	}{
		{1, []stageShape{{1, []int{1}, 1, 1}, {0, []int{}, 0, 0}, {0, []int{}, 0, 0}}},
		{2, []stageShape{{2, []int{2}, 2, 2}, {0, []int{}, 0, 0}, {0, []int{}, 0, 0}}},
		{3, []stageShape{{2, []int{2}, 2, 2}, {1, []int{1}, 1, 0}, {0, []int{}, 0, 0}}},
		{7, []stageShape{{2, []int{2}, 2, 2}, {3, []int{2, 1}, 1, 0}, {2, []int{2}, 2, 1}}},
		{10, []stageShape{{2, []int{2}, 2, 2}, {3, []int{2, 1}, 1, 0}, {5, []int{5}, 4, 1}}},
		{100, []stageShape{{2, []int{2}, 2, 2}, {3, []int{2, 1}, 1, 0}, {95, []int{95}, 4, 1}}},
		{1000, []stageShape{{2, []int{2}, 2, 2}, {3, []int{2, 1}, 1, 0}, {995, []int{995}, 4, 1}}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			plan, err := PlanStages(p, hosts(tc.n))
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				if got := shape(plan.Stages[i]); !reflect.DeepEqual(got, want) {
					t.Errorf("stage %s: got %+v, want %+v", plan.Stages[i].Name, got, want)
				}
			}
		})
	}
}

func mustExpr(t *testing.T, src string) hcl.Expression {
	t.Helper()
	e, diags := hclsyntax.ParseExpression([]byte(src), "t", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return e
}

func TestSpreadBy(t *testing.T) {
	dcs := []any{"a", "a", "a", "b", "c", "c", nil, "b"}
	targets := make([]Target, len(dcs))
	for i, dc := range dcs {
		facts := map[string]any{}
		if dc != nil {
			facts["dc"] = dc
		}
		targets[i] = Target{Name: fmt.Sprintf("h%d", i+1), Facts: facts}
	}
	cases := []struct {
		canary     playbook.Quantity
		want, rest []string
	}{
		{count(1), []string{"h1"}, []string{"h2", "h3", "h4", "h5", "h6", "h7", "h8"}},
		{count(3), []string{"h1", "h4", "h5"}, []string{"h2", "h3", "h6", "h7", "h8"}},
		{count(6), []string{"h1", "h4", "h5", "h7", "h2", "h8"}, []string{"h3", "h6"}},
		{pct(5000), []string{"h1", "h4", "h5", "h7"}, []string{"h2", "h3", "h6", "h8"}},
		{count(8), []string{"h1", "h4", "h5", "h7", "h2", "h8", "h6", "h3"}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.canary.String(), func(t *testing.T) {
			p := &playbook.Playbook{Settings: &playbook.Settings{}, Stages: []*playbook.Stage{
				{Kind: playbook.KindCanary, Name: "canary", Hosts: tc.canary, SpreadBy: mustExpr(t, "facts.dc")},
			}}
			plan, err := PlanStages(p, targets)
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.Stages[0].Hosts; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("canaries %v, want %v", got, tc.want)
			}
			if want := []string{"a", "b", "c", ""}; !reflect.DeepEqual(plan.Stages[0].Domains, want) {
				t.Errorf("domains %q, want %q", plan.Stages[0].Domains, want)
			}
			rest := []string{}
			if len(plan.Stages) > 1 {
				rest = plan.Stages[1].Hosts
			}
			if !reflect.DeepEqual(rest, tc.rest) {
				t.Errorf("rest %v, want %v", rest, tc.rest)
			}
		})
	}
}

func TestDefaultsAndErrors(t *testing.T) {
	none := &playbook.Playbook{Settings: &playbook.Settings{Forks: 3}}
	if _, err := PlanStages(none, nil); !errors.Is(err, ErrNoTargets) {
		t.Fatalf("empty targets: %v", err)
	}
	plan, err := PlanStages(none, hosts(7))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Stages) != 1 || plan.Stages[0].Kind != playbook.KindRemaining || shape(plan.Stages[0]).parallel != 3 || len(plan.Stages[0].Hosts) != 7 {
		t.Fatalf("no stages: %+v", plan.Stages)
	}
	if plan, err = PlanStagesForks(none, hosts(7), 2); err != nil || plan.Stages[0].Parallel != 2 {
		t.Fatalf("--forks 2: %+v %v", plan, err)
	}
	// A canary alone: the rest run as an implicit remaining stage.
	only := &playbook.Playbook{Settings: &playbook.Settings{}, Stages: []*playbook.Stage{{Kind: playbook.KindCanary, Name: "canary", Hosts: count(1)}}}
	plan, err = PlanStages(only, hosts(4))
	if err != nil || len(plan.Stages) != 2 || len(plan.Stages[1].Hosts) != 3 || plan.Stages[1].Kind != playbook.KindRemaining {
		t.Fatalf("implicit remaining: %+v %v", plan, err)
	}
	if _, err := PlanStages(none, []Target{{Name: "a"}, {Name: "a"}}); err == nil {
		t.Fatal("duplicate target accepted")
	}
}

// TestDeterministic: the same inputs give the same plan.
func TestDeterministic(t *testing.T) {
	p, _, diags := playbook.Load("../examples/demo-web-canary.hcl", playbook.VarInputs{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	ts := hosts(37)
	for i := range ts {
		ts[i].Facts = map[string]any{"networking": map[string]any{"hostname": fmt.Sprint(i % 5)}}
	}
	a, err := PlanStages(p, ts)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		b, err := PlanStages(p, ts)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("plans differ: %v", err)
		}
	}
	if got := shape(a.Stages[1]); got.hosts != 10 || !reflect.DeepEqual(got.batches, []int{2, 2, 2, 2, 2}) {
		t.Fatalf("early: %+v", got)
	}
}
