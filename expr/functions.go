package expr

import (
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// Functions returns the functions drover expressions may call, named as in
// Terraform so that users can rely on what they know:
//
//   - strings: chomp, format, formatlist, indent, join, lower, upper, title,
//     regex, regexall, regex_replace, replace, split, strlen, strrev, substr,
//     trim, trimprefix, trimsuffix, trimspace
//   - numbers: abs, ceil, floor, log, max, min, parseint, pow, signum
//   - collections: chunklist, coalesce, coalescelist, compact, concat, contains,
//     distinct, element, flatten, index, keys, length, lookup, merge, range,
//     reverse, setintersection, setproduct, setsubtract, setunion, slice, sort,
//     values, zipmap
//   - encoding and time: csvdecode, jsondecode, jsonencode, formatdate, timeadd
//   - conversion: tobool, tolist, tomap, tonumber, toset, tostring
//   - errors: try, can
//   - versions (Debian ordering, dotted-numeric fallback; see CompareVersions):
//     version_compare(a, b) → -1, 0 or 1; version_lt, version_lte, version_gt,
//     version_gte(a, b) → bool
//   - raw(x): x itself. In a command's `run` it marks x to be spliced into the
//     shell line unquoted (see playbook's shell templating); elsewhere it changes nothing.
//
// A new map is returned on every call so callers may add their own entries.
func Functions() map[string]function.Function {
	return map[string]function.Function{
		"abs":             stdlib.AbsoluteFunc,
		"can":             tryfunc.CanFunc,
		"ceil":            stdlib.CeilFunc,
		"chomp":           stdlib.ChompFunc,
		"chunklist":       stdlib.ChunklistFunc,
		"coalesce":        stdlib.CoalesceFunc,
		"coalescelist":    stdlib.CoalesceListFunc,
		"compact":         stdlib.CompactFunc,
		"concat":          stdlib.ConcatFunc,
		"contains":        stdlib.ContainsFunc,
		"csvdecode":       stdlib.CSVDecodeFunc,
		"distinct":        stdlib.DistinctFunc,
		"element":         stdlib.ElementFunc,
		"flatten":         stdlib.FlattenFunc,
		"floor":           stdlib.FloorFunc,
		"format":          stdlib.FormatFunc,
		"formatdate":      stdlib.FormatDateFunc,
		"formatlist":      stdlib.FormatListFunc,
		"indent":          stdlib.IndentFunc,
		"index":           stdlib.IndexFunc,
		"join":            stdlib.JoinFunc,
		"jsondecode":      stdlib.JSONDecodeFunc,
		"jsonencode":      stdlib.JSONEncodeFunc,
		"keys":            stdlib.KeysFunc,
		"length":          stdlib.LengthFunc,
		"log":             stdlib.LogFunc,
		"lookup":          stdlib.LookupFunc,
		"lower":           stdlib.LowerFunc,
		"max":             stdlib.MaxFunc,
		"merge":           stdlib.MergeFunc,
		"min":             stdlib.MinFunc,
		"parseint":        stdlib.ParseIntFunc,
		"pow":             stdlib.PowFunc,
		"range":           stdlib.RangeFunc,
		"raw":             rawFunc,
		"regex":           stdlib.RegexFunc,
		"regex_replace":   stdlib.RegexReplaceFunc,
		"regexall":        stdlib.RegexAllFunc,
		"replace":         stdlib.ReplaceFunc,
		"reverse":         stdlib.ReverseListFunc,
		"setintersection": stdlib.SetIntersectionFunc,
		"setproduct":      stdlib.SetProductFunc,
		"setsubtract":     stdlib.SetSubtractFunc,
		"setunion":        stdlib.SetUnionFunc,
		"signum":          stdlib.SignumFunc,
		"slice":           stdlib.SliceFunc,
		"sort":            stdlib.SortFunc,
		"split":           stdlib.SplitFunc,
		"strlen":          stdlib.StrlenFunc,
		"strrev":          stdlib.ReverseFunc,
		"substr":          stdlib.SubstrFunc,
		"timeadd":         stdlib.TimeAddFunc,
		"title":           stdlib.TitleFunc,
		"tobool":          stdlib.MakeToFunc(cty.Bool),
		"tolist":          stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
		"tomap":           stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"tonumber":        stdlib.MakeToFunc(cty.Number),
		"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tostring":        stdlib.MakeToFunc(cty.String),
		"trim":            stdlib.TrimFunc,
		"trimprefix":      stdlib.TrimPrefixFunc,
		"trimspace":       stdlib.TrimSpaceFunc,
		"trimsuffix":      stdlib.TrimSuffixFunc,
		"try":             tryfunc.TryFunc,
		"upper":           stdlib.UpperFunc,
		"values":          stdlib.ValuesFunc,
		"version_compare": versionCompareFunc,
		"version_gt":      versionPredicate(func(c int) bool { return c > 0 }),
		"version_gte":     versionPredicate(func(c int) bool { return c >= 0 }),
		"version_lt":      versionPredicate(func(c int) bool { return c < 0 }),
		"version_lte":     versionPredicate(func(c int) bool { return c <= 0 }),
		"zipmap":          stdlib.ZipmapFunc,
	}
}

// rawFunc is the identity; playbook command templates override it with one
// that marks its result as not to be quoted.
var rawFunc = function.New(&function.Spec{
	Description: "Returns its argument; in a command template, the value is not shell-quoted.",
	Params:      []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowNull: true, AllowDynamicType: true, AllowMarked: true}},
	Type:        func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl:        func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
})

var versionParams = []function.Parameter{
	{Name: "a", Type: cty.String},
	{Name: "b", Type: cty.String},
}

// versionCompareFunc is immutable once built; sharing it is safe.
var versionCompareFunc = function.New(&function.Spec{
	Description: "Compares two versions with Debian ordering: -1 if a < b, 0 if equal, 1 if a > b.",
	Params:      versionParams,
	Type:        function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.NumberIntVal(int64(CompareVersions(args[0].AsString(), args[1].AsString()))), nil
	},
})

func versionPredicate(ok func(int) bool) function.Function {
	return function.New(&function.Spec{
		Description: "Compares two versions with Debian ordering.",
		Params:      versionParams,
		Type:        function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(ok(CompareVersions(args[0].AsString(), args[1].AsString()))), nil
		},
	})
}
