package playbook

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// DefaultForks is how many hosts are worked on at once when neither the playbook
// nor the command line says (the CLI's --forks default).
const DefaultForks = 50

// Playbook is a decoded, validated playbook. Slices keep file order.
type Playbook struct {
	Name        string
	Description string
	File        string // path it was loaded from
	Variables   []*Variable
	Targets     *Targets  // never nil: default hosts ["all"]
	Settings    *Settings // never nil: zero values mean "not set"
	Stages      []*Stage  // as written; empty means one implicit remaining stage
	Before      []*Check  // per host, before its steps (http, command)
	Steps       []*Step
	Health      []*Check // per host, after its steps
	After       []*Check // per host, once healthy (http, command)
	Rollback    []*Step
	Notify      *Notify // nil when absent

	vars cty.Value // object of resolved variable values, for `var`
}

// Variable is one `variable "name"` block with its resolved value.
type Variable struct {
	Name        string
	Type        cty.Type // cty.DynamicPseudoType when no type is given
	Default     cty.Value
	HasDefault  bool
	Description string
	Sensitive   bool // the value must be redacted from output (see Secrets)
	Validations []*Validation
	Value       cty.Value // resolved from inputs or default; cty.DynamicVal when unresolved
	DeclRange   hcl.Range

	defaultInvalid bool // a default was written but was not valid (reported)
}

// Validation is a `validation` block of a variable.
type Validation struct {
	Condition    hcl.Expression
	ErrorMessage string
}

// Targets selects the hosts of the run.
type Targets struct {
	Hosts []string       // inventory patterns, default ["all"]
	Where hcl.Expression // nil when absent; sees var, host, facts
}

// Settings are run-wide options. Zero values mean "not set": the command line or
// drover's defaults decide.
type Settings struct {
	Forks       int
	Become      *bool
	BecomeUser  string
	StepTimeout time.Duration
	Facter      bool // gather the full `facter --json`
	Lock        *bool
	Window      *Window
}

// Window is the maintenance window outside which a run does not start.
type Window struct {
	Days     []string // mon … sun; all days when empty
	Start    string   // "HH:MM"
	End      string   // "HH:MM"; before Start means the window spans midnight
	Timezone string   // IANA name; "UTC" when empty
}

// StageKind is canary, batch or remaining.
type StageKind string

// Stage kinds, named as their blocks.
const (
	KindCanary    StageKind = "canary"
	KindBatch     StageKind = "batch"
	KindRemaining StageKind = "remaining"
)

// Stage is a canary, batch or remaining block. Unset quantities have Set false.
type Stage struct {
	Kind      StageKind
	Name      string // the batch label; "canary" or "remaining" for those
	Hosts     Quantity
	Size      Quantity
	Parallel  int // 0: not set
	Pause     time.Duration
	MaxFailed Quantity
	SpreadBy  hcl.Expression // canary only; nil when absent
	Gate      *Gate          // nil when absent
	DeclRange hcl.Range
}

// Quantity is a count ("3") or a percentage ("25%") as written.
type Quantity struct {
	Set        bool
	Count      int
	IsPercent  bool
	Hundredths int // the percentage in hundredths of a percent: "12.5%" is 1250
	Range      hcl.Range
}

// Gate is checked after every batch of a stage.
type Gate struct {
	Wait     time.Duration // soak before the first check
	Timeout  time.Duration // checks are retried until then
	Interval time.Duration // between retries
	Confirm  bool          // operator approval on a terminal
	Checks   []*Check
}

// Gate defaults, documented in docs/playbooks.md.
const (
	DefaultGateTimeout  = time.Minute
	DefaultGateInterval = 5 * time.Second
)

// Notify says where the run summary goes at the end of a run: a webhook that
// receives it as a JSON POST, a controller command that reads it on stdin, or
// both. At least one is set.
type Notify struct {
	Webhook string            // http:// or https:// URL; "" when absent
	Headers map[string]string // extra request headers for the webhook (e.g. Authorization)
	Command string            // run by sh -c on the controller; "" when absent
	Timeout time.Duration     // per attempt / for the command; 0: the notifier's default
}

// block is what steps and checks share: their kind, name, condition and attributes.
type block struct {
	Kind      string
	Name      string         // the label; the kind when unnamed
	When      hcl.Expression // nil: always
	DeclRange hcl.Range
	fields    map[string]*field
	specs     []fieldSpec
	dir       string // the playbook's directory, for relative upload sources
}

// field is one attribute: its expression and, when it refers only to `var`, its
// value checked at load time.
type field struct {
	attr   *hcl.Attribute
	value  cty.Value
	static bool
	shell  hcl.Expression // shell-bound attributes: the expression with its interpolations quoted (shell.go)
}

// Step is one step of `steps` or `rollback`: package, service, puppet, command,
// upload, patch or reboot.
type Step struct{ block }

// Check is one check or action of `before`, `health`, `after` or a gate: http,
// tcp, command or prometheus.
type Check struct{ block }
