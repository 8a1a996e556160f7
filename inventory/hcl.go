package inventory

import (
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// hclFunctions are the functions inventory expressions may call: enough to
// build addresses and names from name and index.
func hclFunctions() map[string]function.Function {
	return map[string]function.Function{
		"format": stdlib.FormatFunc, "lower": stdlib.LowerFunc, "upper": stdlib.UpperFunc,
		"replace": stdlib.ReplaceFunc, "substr": stdlib.SubstrFunc, "join": stdlib.JoinFunc,
		"split": stdlib.SplitFunc, "floor": stdlib.FloorFunc, "ceil": stdlib.CeilFunc,
		"min": stdlib.MinFunc, "max": stdlib.MaxFunc,
	}
}

// DiagnosticsError reports the problems of a drover HCL inventory. Error() gives
// one "file:line:col: summary: detail" line per error; Files lets a caller print
// source snippets with hcl.NewDiagnosticTextWriter.
type DiagnosticsError struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

func (e *DiagnosticsError) Error() string {
	var lines []string
	for _, d := range e.Diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		if d.Subject != nil {
			msg = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, msg)
		}
		lines = append(lines, msg)
	}
	return strings.Join(lines, "\n")
}

var (
	hclRootSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "defaults"},
		{Type: "host", LabelNames: []string{"name"}},
		{Type: "group", LabelNames: []string{"name"}},
	}}
	hclConnAttrs = []hcl.AttributeSchema{
		{Name: "port"}, {Name: "user"}, {Name: "key"}, {Name: "keys"},
		{Name: "proxy_jump"}, {Name: "become"}, {Name: "vars"},
	}
	hclDefaultsSchema = &hcl.BodySchema{Attributes: hclConnAttrs}
	hclHostSchema     = &hcl.BodySchema{Attributes: append([]hcl.AttributeSchema{{Name: "address"}}, hclConnAttrs...)}
	hclGroupSchema    = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "hosts"}, {Name: "children"}, {Name: "vars"},
	}}
)

// hclHostDef is one block's decoded settings; set fields override defaults.
type hclHostDef struct {
	conn hostConn
	vars map[string]any
}

// parseHCL reads drover's HCL inventory:
//
//	defaults { user port key|keys proxy_jump become vars }   # at most one; vars are the "all" group's
//	host "web-[01:20]" { address port user key|keys proxy_jump become vars }  # name, index in scope
//
// Expressions may call format, lower, upper, replace, substr, join, split,
// floor, ceil, min and max.
//
//	group "web" { hosts = [...names or ranges] children = [...] vars = {...} }
//
// Host attributes win over defaults; vars merge as in Ansible (defaults < groups
// by depth < host). Numbers in vars are int64 when integral and in range, else
// float64.
func parseHCL(filename string, src []byte) (*Inventory, error) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	fail := func(d hcl.Diagnostics) error {
		return &DiagnosticsError{Diags: d, Files: map[string]*hcl.File{filename: file}}
	}
	if diags.HasErrors() {
		return nil, fail(diags)
	}
	content, d := file.Body.Content(hclRootSchema)
	diags = append(diags, d...)
	if diags.HasErrors() {
		return nil, fail(diags)
	}

	b := newBuilder(filename)
	funcs := hclFunctions()
	plainCtx := &hcl.EvalContext{Functions: funcs}
	var defaults hclHostDef
	var defaultsBlock *hcl.Block
	hostDefs := map[string]*hclHostDef{}
	hostAt := map[string]hcl.Range{}
	var groupBlocks []*hcl.Block
	groupAt := map[string]hcl.Range{}

	for _, blk := range content.Blocks {
		switch blk.Type {
		case "defaults":
			if defaultsBlock != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Duplicate defaults block",
					Detail:  fmt.Sprintf("defaults are already set at %s", defaultsBlock.DefRange),
					Subject: blk.DefRange.Ptr(),
				})
				continue
			}
			defaultsBlock = blk
			bc, d := blk.Body.Content(hclDefaultsSchema)
			diags = append(diags, d...)
			if !d.HasErrors() {
				diags = append(diags, decodeHostDef(bc, plainCtx, &defaults)...)
			}
		case "host":
			label, labelRange := blk.Labels[0], blk.LabelRanges[0]
			names, err := expandHostRange(label)
			if err == nil {
				err = checkHostNames(names)
			}
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid host name", Detail: err.Error(), Subject: labelRange.Ptr()})
				continue
			}
			bc, d := blk.Body.Content(hclHostSchema)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			for i, name := range names {
				if prev, dup := hostAt[name]; dup {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError, Summary: "Duplicate host",
						Detail:  fmt.Sprintf("host %q is already defined at %s", name, prev),
						Subject: labelRange.Ptr(),
					})
					continue
				}
				hostAt[name] = labelRange
				ctx := &hcl.EvalContext{Functions: funcs, Variables: map[string]cty.Value{
					"name":  cty.StringVal(name),
					"index": cty.NumberIntVal(int64(i + 1)),
				}}
				def := &hclHostDef{}
				d := decodeHostDef(bc, ctx, def)
				diags = append(diags, d...)
				if d.HasErrors() {
					break // the same mistake would repeat for every name in the range
				}
				hostDefs[name] = def
				if err := b.addHost(name, "", 0); err != nil {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid host", Detail: err.Error(), Subject: labelRange.Ptr()})
				}
			}
		case "group":
			name, r := blk.Labels[0], blk.LabelRanges[0]
			switch {
			case name == "all" || name == "ungrouped":
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Reserved group name",
					Detail:  fmt.Sprintf("%q is built in; use the defaults block for vars of every host", name),
					Subject: r.Ptr(),
				})
				continue
			case name == "" || strings.ContainsAny(name, " \t\n,:!&~*?[]"):
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid group name",
					Detail: fmt.Sprintf("%q: group names cannot be empty or contain spaces or pattern characters", name), Subject: r.Ptr()})
				continue
			}
			if prev, dup := groupAt[name]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Duplicate group",
					Detail:  fmt.Sprintf("group %q is already defined at %s", name, prev),
					Subject: r.Ptr(),
				})
				continue
			}
			groupAt[name] = r
			groupBlocks = append(groupBlocks, blk)
			_ = b.addGroup(name) // name checked non-empty above
		}
	}
	if diags.HasErrors() {
		return nil, fail(diags)
	}

	for _, blk := range groupBlocks {
		diags = append(diags, decodeGroup(b, blk, hostAt, plainCtx)...)
	}
	if diags.HasErrors() {
		return nil, fail(diags)
	}

	for k, v := range defaults.vars {
		_ = b.setVar("all", k, v) // "all" always exists
	}
	for _, name := range b.hostOrder {
		def := hostDefs[name]
		for k, v := range def.vars {
			_ = b.setVar(name, k, v)
		}
		c := mergeConn(defaults.conn, def.conn)
		b.conn[name] = &c
	}
	inv, err := b.finish()
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", filename, err)
	}
	return inv, nil
}

func checkHostNames(names []string) error {
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, " \t\n,") {
			return fmt.Errorf("%q: host names cannot be empty or contain spaces or commas", n)
		}
	}
	return nil
}

func mergeConn(def, host hostConn) hostConn {
	out := def
	if host.address != "" {
		out.address = host.address
	}
	if host.port != 0 {
		out.port = host.port
	}
	if host.user != "" {
		out.user = host.user
	}
	if host.proxyJump != "" {
		out.proxyJump = host.proxyJump
	}
	if host.keys != nil {
		out.keys = host.keys
	}
	if host.become != nil {
		out.become = host.become
	}
	return out
}

// decodeHostDef evaluates the connection attributes and vars of a defaults or
// host block.
func decodeHostDef(bc *hcl.BodyContent, ctx *hcl.EvalContext, def *hclHostDef) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, name := range sortedAttrNames(bc.Attributes) {
		attr := bc.Attributes[name]
		val, d := attr.Expr.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		bad := func(want string) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid " + name,
				Detail:  fmt.Sprintf("%s must be %s", name, want),
				Subject: attr.Expr.Range().Ptr(), Expression: attr.Expr, EvalContext: ctx,
			})
		}
		if val.IsNull() {
			continue
		}
		if !val.IsWhollyKnown() {
			bad("a known value")
			continue
		}
		val, _ = val.UnmarkDeep()
		switch name {
		case "address", "user", "proxy_jump", "key":
			if val.Type() != cty.String || val.AsString() == "" {
				bad("a non-empty string")
				continue
			}
			s := val.AsString()
			switch name {
			case "address":
				def.conn.address = s
			case "user":
				def.conn.user = s
			case "proxy_jump":
				def.conn.proxyJump = s
			case "key":
				def.conn.keys = []string{s}
			}
		case "keys":
			list, ok := stringList(val)
			if !ok {
				bad("a list of strings")
				continue
			}
			def.conn.keys = list
		case "port":
			p, ok := toInt(mustGo(val))
			if val.Type() != cty.Number || !ok || p < 1 || p > 65535 {
				bad("a whole number from 1 to 65535")
				continue
			}
			def.conn.port = p
		case "become":
			if val.Type() != cty.Bool {
				bad("true or false")
				continue
			}
			v := val.True()
			def.conn.become = &v
		case "vars":
			if !(val.Type().IsObjectType() || val.Type().IsMapType()) {
				bad("an object, such as { role = \"web\" }")
				continue
			}
			m, ok := ctyToGo(val).(map[string]any)
			if !ok {
				bad("an object")
				continue
			}
			def.vars = m
		}
	}
	if _, k := bc.Attributes["key"]; k {
		if attr, ks := bc.Attributes["keys"]; ks {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Conflicting key and keys",
				Detail: "set either key (one file) or keys (a list), not both", Subject: attr.NameRange.Ptr(),
			})
		}
	}
	return diags
}

func decodeGroup(b *builder, blk *hcl.Block, hostAt map[string]hcl.Range, ctx *hcl.EvalContext) hcl.Diagnostics {
	name := blk.Labels[0]
	bc, diags := blk.Body.Content(hclGroupSchema)
	if diags.HasErrors() {
		return diags
	}
	errAt := func(attr *hcl.Attribute, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: attr.Expr.Range().Ptr()})
	}
	for _, an := range sortedAttrNames(bc.Attributes) {
		attr := bc.Attributes[an]
		val, d := attr.Expr.Value(ctx)
		diags = append(diags, d...)
		if d.HasErrors() || val.IsNull() {
			continue
		}
		if !val.IsWhollyKnown() {
			errAt(attr, "Invalid "+an, an+" must be a known value")
			continue
		}
		val, _ = val.UnmarkDeep()
		switch an {
		case "hosts":
			list, ok := stringList(val)
			if !ok {
				errAt(attr, "Invalid hosts", "hosts must be a list of host names or ranges")
				continue
			}
			for _, item := range list {
				names, err := expandHostRange(item)
				if err != nil {
					errAt(attr, "Invalid host range", err.Error())
					continue
				}
				for _, h := range names {
					if _, ok := hostAt[h]; !ok {
						errAt(attr, "Unknown host", fmt.Sprintf("group %q names host %q, which no host block defines", name, h))
						continue
					}
					_ = b.addHost(h, name, 0) // host and group both exist
				}
			}
		case "children":
			list, ok := stringList(val)
			if !ok {
				errAt(attr, "Invalid children", "children must be a list of group names")
				continue
			}
			for _, c := range list {
				if _, ok := b.groups[c]; !ok || c == "all" || c == "ungrouped" {
					errAt(attr, "Unknown group", fmt.Sprintf("group %q names child %q, which no group block defines", name, c))
					continue
				}
				if err := b.addChild(name, c); err != nil {
					errAt(attr, "Group cycle", err.Error())
				}
			}
		case "vars":
			m, ok := ctyToGo(val).(map[string]any)
			if !ok || !(val.Type().IsObjectType() || val.Type().IsMapType()) {
				errAt(attr, "Invalid vars", "vars must be an object, such as { http_port = 8080 }")
				continue
			}
			for k, v := range m {
				_ = b.setVar(name, k, v) // the group exists
			}
		}
	}
	return diags
}

func sortedAttrNames(attrs hcl.Attributes) []string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	// Source order, so diagnostics come out in reading order.
	slices.SortFunc(names, func(a, b string) int {
		ra, rb := attrs[a].Range, attrs[b].Range
		return ra.Start.Byte - rb.Start.Byte
	})
	return names
}

func stringList(v cty.Value) ([]string, bool) {
	t := v.Type()
	if !(t.IsListType() || t.IsTupleType() || t.IsSetType()) {
		return nil, false
	}
	out := []string{}
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() || e.Type() != cty.String {
			return nil, false
		}
		out = append(out, e.AsString())
	}
	return out, true
}

func mustGo(v cty.Value) any { return ctyToGo(v) }

// ctyToGo converts a known cty value to plain Go: string, int64 (integral and in
// range) or float64, bool, nil, []any, map[string]any.
func ctyToGo(v cty.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Bool:
		return v.True()
	case t == cty.Number:
		bf := v.AsBigFloat()
		if bf.IsInt() {
			if i, acc := bf.Int64(); acc == big.Exact {
				return i
			}
		}
		f, _ := bf.Float64()
		return f
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, ctyToGo(e))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = ctyToGo(e)
		}
		return out
	}
	return nil
}
