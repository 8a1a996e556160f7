package expr

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
)

// ToCty converts facts or variables as decoded from JSON, YAML or HCL into a cty
// value: maps become objects (so facts.os.name works), slices become tuples (their
// elements may differ in type, as JSON allows), strings, bools and numbers map to
// their cty kinds, nil to a null of dynamic type. json.Number keeps its full
// precision. Any map with string keys and any slice or array are accepted, as is a
// cty.Value. NaN, other types and map keys that are not strings are errors naming
// the offending path. Invalid UTF-8 in strings is replaced with U+FFFD, since cty
// strings must be valid Unicode.
func ToCty(v any) (cty.Value, error) { return toCty(v, "") }

func toCty(v any, path string) (cty.Value, error) {
	switch t := v.(type) {
	case nil:
		return cty.NullVal(cty.DynamicPseudoType), nil
	case cty.Value:
		return t, nil
	case string:
		return cty.StringVal(validUTF8(t)), nil
	case bool:
		return cty.BoolVal(t), nil
	case int:
		return cty.NumberIntVal(int64(t)), nil
	case int64:
		return cty.NumberIntVal(t), nil
	case int32:
		return cty.NumberIntVal(int64(t)), nil
	case uint64:
		return cty.NumberUIntVal(t), nil
	case float64:
		return floatVal(t, path)
	case float32:
		return floatVal(float64(t), path)
	case json.Number:
		n, err := cty.ParseNumberVal(t.String())
		if err != nil {
			return cty.NilVal, fmt.Errorf("%s: invalid number %q: %w", where(path), t.String(), err)
		}
		return n, nil
	case map[string]any:
		if len(t) == 0 {
			return cty.EmptyObjectVal, nil
		}
		attrs := make(map[string]cty.Value, len(t))
		for k, x := range t {
			cv, err := toCty(x, join(path, k))
			if err != nil {
				return cty.NilVal, err
			}
			attrs[validUTF8(k)] = cv
		}
		return cty.ObjectVal(attrs), nil
	case []any:
		if len(t) == 0 {
			return cty.EmptyTupleVal, nil
		}
		elems := make([]cty.Value, len(t))
		for i, x := range t {
			cv, err := toCty(x, join(path, fmt.Sprint(i)))
			if err != nil {
				return cty.NilVal, err
			}
			elems[i] = cv
		}
		return cty.TupleVal(elems), nil
	}
	return reflectToCty(reflect.ValueOf(v), path)
}

// reflectToCty handles the less common typed forms ([]string, map[string]string,
// uint8, …) by reflection so callers need not convert first.
func reflectToCty(rv reflect.Value, path string) (cty.Value, error) {
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cty.NumberIntVal(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return cty.NumberUIntVal(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return floatVal(rv.Float(), path)
	case reflect.String:
		return cty.StringVal(validUTF8(rv.String())), nil
	case reflect.Bool:
		return cty.BoolVal(rv.Bool()), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return cty.NullVal(cty.DynamicPseudoType), nil
		}
		return toCty(rv.Elem().Interface(), path)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return cty.NilVal, fmt.Errorf("%s: map keys must be strings, not %s", where(path), rv.Type().Key())
		}
		if rv.Len() == 0 {
			return cty.EmptyObjectVal, nil
		}
		keys := rv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		attrs := make(map[string]cty.Value, len(keys))
		for _, k := range keys {
			cv, err := toCty(rv.MapIndex(k).Interface(), join(path, k.String()))
			if err != nil {
				return cty.NilVal, err
			}
			attrs[validUTF8(k.String())] = cv
		}
		return cty.ObjectVal(attrs), nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() || rv.Len() == 0 {
			return cty.EmptyTupleVal, nil
		}
		elems := make([]cty.Value, rv.Len())
		for i := range elems {
			cv, err := toCty(rv.Index(i).Interface(), join(path, fmt.Sprint(i)))
			if err != nil {
				return cty.NilVal, err
			}
			elems[i] = cv
		}
		return cty.TupleVal(elems), nil
	}
	if !rv.IsValid() {
		return cty.NullVal(cty.DynamicPseudoType), nil
	}
	return cty.NilVal, fmt.Errorf("%s: unsupported value of type %s", where(path), rv.Type())
}

func floatVal(f float64, path string) (cty.Value, error) {
	if math.IsNaN(f) {
		// cty panics on NaN; a fact cannot meaningfully hold one.
		return cty.NilVal, fmt.Errorf("%s: NaN is not a number cty can hold", where(path))
	}
	if math.IsInf(f, 0) {
		return cty.NumberVal(new(big.Float).SetInf(f < 0)), nil
	}
	return cty.NumberFloatVal(f), nil
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func where(path string) string {
	if path == "" {
		return "value"
	}
	return path
}

// HostValue builds the `host` object expressions see: name, address (pass the
// resolved address; callers use the name when the inventory gives none), groups
// (a list of strings, so contains(host.groups, "web") works) and vars (an object).
func HostValue(name, address string, groups []string, vars map[string]any) (cty.Value, error) {
	gl := cty.ListValEmpty(cty.String)
	if len(groups) > 0 {
		gs := make([]cty.Value, len(groups))
		for i, g := range groups {
			gs[i] = cty.StringVal(validUTF8(g))
		}
		gl = cty.ListVal(gs)
	}
	vv := cty.EmptyObjectVal
	if len(vars) > 0 {
		var err error
		if vv, err = toCty(vars, "host.vars"); err != nil {
			return cty.NilVal, fmt.Errorf("host %s: %w", name, err)
		}
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":    cty.StringVal(validUTF8(name)),
		"address": cty.StringVal(validUTF8(address)),
		"groups":  gl,
		"vars":    vv,
	}), nil
}
