package inventory

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// parsePyValue converts an INI value as Ansible does: Python's ast.literal_eval
// when the text is a Python literal (numbers, True/False/None, quoted strings,
// lists, tuples, dicts), else the text itself. Integers become int64 (float64
// beyond int64), tuples []any, dict keys strings as JSON would render them.
func parsePyValue(s string) any {
	p := &pyParser{src: []rune(strings.TrimLeft(s, " \t"))}
	v, err := p.parseTop()
	if err != nil {
		return s
	}
	return v
}

type pyParser struct {
	src   []rune
	pos   int
	depth int
}

var errNotLiteral = errors.New("not a python literal")

func (p *pyParser) peek() rune {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *pyParser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\f') {
		p.pos++
	}
}

func (p *pyParser) parseTop() (any, error) {
	v, tuple, err := p.parseExprList(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.peek() == '#' {
		p.pos = len(p.src)
	}
	if p.pos != len(p.src) {
		return nil, errNotLiteral
	}
	if !tuple && v == nil && p.pos == 0 {
		return nil, errNotLiteral
	}
	return v, nil
}

// parseExprList reads "a, b, c" up to closer (0 at top level); a comma makes it
// a tuple.
func (p *pyParser) parseExprList(closer rune) (any, bool, error) {
	p.skipSpace()
	if closer != 0 && p.peek() == closer {
		return []any{}, true, nil
	}
	first, err := p.parseExpr()
	if err != nil {
		return nil, false, err
	}
	items := []any{first}
	tuple := false
	for {
		p.skipSpace()
		if p.peek() != ',' {
			break
		}
		tuple = true
		p.pos++
		p.skipSpace()
		if r := p.peek(); r == closer || (closer == 0 && (r == 0 || r == '#')) {
			break
		}
		v, err := p.parseExpr()
		if err != nil {
			return nil, false, err
		}
		items = append(items, v)
	}
	if tuple {
		return items, true, nil
	}
	return first, false, nil
}

func (p *pyParser) parseExpr() (any, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 100 {
		return nil, errNotLiteral
	}
	p.skipSpace()
	r := p.peek()
	switch {
	case r == '[':
		p.pos++
		v, _, err := p.parseExprList(']')
		if err != nil {
			return nil, err
		}
		return p.closeSeq(v, ']', true)
	case r == '(':
		p.pos++
		v, tuple, err := p.parseExprList(')')
		if err != nil {
			return nil, err
		}
		return p.closeSeq(v, ')', tuple)
	case r == '{':
		return p.parseDict()
	case r == '+' || r == '-':
		p.pos++
		p.skipSpace()
		n, err := p.parseNumber()
		if err != nil {
			return nil, err
		}
		if r == '-' {
			switch n := n.(type) {
			case int64:
				return -n, nil
			case float64:
				return -n, nil
			}
		}
		return n, nil
	case r >= '0' && r <= '9' || r == '.':
		return p.parseNumber()
	case r == '\'' || r == '"':
		return p.parseStrings()
	case r == '_' || unicode.IsLetter(r):
		start := p.pos
		for p.pos < len(p.src) && (p.src[p.pos] == '_' || unicode.IsLetter(p.src[p.pos]) || unicode.IsDigit(p.src[p.pos])) {
			p.pos++
		}
		word := string(p.src[start:p.pos])
		if q := p.peek(); (q == '\'' || q == '"') && isStrPrefix(word) {
			p.pos = start
			return p.parseStrings()
		}
		switch word {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
	}
	return nil, errNotLiteral
}

func (p *pyParser) closeSeq(v any, closer rune, seq bool) (any, error) {
	p.skipSpace()
	if p.peek() != closer {
		return nil, errNotLiteral
	}
	p.pos++
	if seq {
		if l, ok := v.([]any); ok {
			return l, nil
		}
		return []any{v}, nil
	}
	return v, nil
}

func (p *pyParser) parseDict() (any, error) {
	p.pos++ // {
	out := map[string]any{}
	for {
		p.skipSpace()
		if p.peek() == '}' {
			p.pos++
			return out, nil
		}
		k, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.peek() != ':' {
			return nil, errNotLiteral // sets are not JSON-serialisable; keep the text
		}
		p.pos++
		v, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		key, ok := pyKeyString(k)
		if !ok {
			return nil, errNotLiteral
		}
		out[key] = v
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
		default:
			return nil, errNotLiteral
		}
	}
}

// pyKeyString renders a dict key the way json.dumps does.
func pyKeyString(k any) (string, bool) {
	switch k := k.(type) {
	case string:
		return k, true
	case int64:
		return strconv.FormatInt(k, 10), true
	case float64:
		return strconv.FormatFloat(k, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(k), true
	case nil:
		return "null", true
	}
	return "", false
}

func isStrPrefix(w string) bool {
	switch strings.ToLower(w) {
	case "r", "u", "b", "br", "rb":
		return true
	}
	return false
}

// parseStrings reads one or more adjacent string literals, concatenated.
func (p *pyParser) parseStrings() (any, error) {
	var sb strings.Builder
	n := 0
	for {
		p.skipSpace()
		start := p.pos
		raw := false
		for p.pos < len(p.src) && unicode.IsLetter(p.src[p.pos]) {
			p.pos++
		}
		prefix := string(p.src[start:p.pos])
		if prefix != "" {
			if !isStrPrefix(prefix) {
				p.pos = start
				break
			}
			raw = strings.ContainsAny(prefix, "rR")
		}
		q := p.peek()
		if q != '\'' && q != '"' {
			p.pos = start
			break
		}
		s, err := p.parseString(raw)
		if err != nil {
			return nil, err
		}
		sb.WriteString(s)
		n++
	}
	if n == 0 {
		return nil, errNotLiteral
	}
	return sb.String(), nil
}

func (p *pyParser) parseString(raw bool) (string, error) {
	q := p.src[p.pos]
	triple := p.pos+2 < len(p.src) && p.src[p.pos+1] == q && p.src[p.pos+2] == q
	if triple {
		p.pos += 3
	} else {
		p.pos++
	}
	var sb strings.Builder
	for {
		if p.pos >= len(p.src) {
			return "", errNotLiteral
		}
		c := p.src[p.pos]
		if c == q {
			if !triple {
				p.pos++
				return sb.String(), nil
			}
			if p.pos+2 < len(p.src) && p.src[p.pos+1] == q && p.src[p.pos+2] == q {
				p.pos += 3
				return sb.String(), nil
			}
		}
		if c == '\\' && p.pos+1 < len(p.src) {
			if raw {
				sb.WriteRune(c)
				sb.WriteRune(p.src[p.pos+1])
				p.pos += 2
				continue
			}
			if err := p.escape(&sb); err != nil {
				return "", err
			}
			continue
		}
		sb.WriteRune(c)
		p.pos++
	}
}

func (p *pyParser) escape(sb *strings.Builder) error {
	p.pos++ // backslash
	c := p.src[p.pos]
	p.pos++
	simple := map[rune]string{'\\': "\\", '\'': "'", '"': "\"", 'n': "\n", 't': "\t", 'r': "\r",
		'a': "\a", 'b': "\b", 'f': "\f", 'v': "\v", '\n': ""}
	if s, ok := simple[c]; ok {
		sb.WriteString(s)
		return nil
	}
	hexN := map[rune]int{'x': 2, 'u': 4, 'U': 8}
	if n, ok := hexN[c]; ok {
		if p.pos+n > len(p.src) {
			return errNotLiteral
		}
		v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
		if err != nil || v > unicode.MaxRune {
			return errNotLiteral
		}
		p.pos += n
		sb.WriteRune(rune(v))
		return nil
	}
	if c >= '0' && c <= '7' {
		v := int(c - '0')
		for i := 0; i < 2 && p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '7'; i++ {
			v = v*8 + int(p.src[p.pos]-'0')
			p.pos++
		}
		sb.WriteRune(rune(v))
		return nil
	}
	if c == 'N' {
		return errNotLiteral
	}
	sb.WriteRune('\\')
	sb.WriteRune(c)
	return nil
}

// parseNumber reads a Python int or float token.
func (p *pyParser) parseNumber() (any, error) {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c == '.' || c < utf8.RuneSelf && (c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			p.pos++
			continue
		}
		if (c == '+' || c == '-') && p.pos > start && (p.src[p.pos-1] == 'e' || p.src[p.pos-1] == 'E') && !isHexStart(p.src[start:p.pos]) {
			p.pos++
			continue
		}
		break
	}
	tok := string(p.src[start:p.pos])
	if v, ok := pyNumber(tok); ok {
		return v, nil
	}
	return nil, errNotLiteral
}

func isHexStart(r []rune) bool {
	return len(r) > 1 && r[0] == '0' && (r[1] == 'x' || r[1] == 'X')
}

// pyNumber validates underscores (only between digits) and converts.
func pyNumber(tok string) (any, bool) {
	if tok == "" || strings.HasSuffix(tok, "_") || strings.Contains(tok, "__") {
		return nil, false
	}
	lower := strings.ToLower(tok)
	base := 0
	digits := ""
	switch {
	case strings.HasPrefix(lower, "0x"):
		base, digits = 16, lower[2:]
	case strings.HasPrefix(lower, "0o"):
		base, digits = 8, lower[2:]
	case strings.HasPrefix(lower, "0b"):
		base, digits = 2, lower[2:]
	}
	if base != 0 {
		digits = strings.TrimPrefix(digits, "_")
		if digits == "" || strings.HasPrefix(digits, "_") {
			return nil, false
		}
		return bigToValue(strings.ReplaceAll(digits, "_", ""), base)
	}
	for _, part := range strings.FieldsFunc(lower, func(r rune) bool { return r == '.' || r == 'e' || r == '+' || r == '-' }) {
		if strings.HasPrefix(part, "_") || strings.HasSuffix(part, "_") {
			return nil, false
		}
	}
	clean := strings.ReplaceAll(lower, "_", "")
	if strings.ContainsAny(clean, ".e") {
		for _, r := range clean {
			if !(r >= '0' && r <= '9' || r == '.' || r == 'e' || r == '+' || r == '-') {
				return nil, false
			}
		}
		mant, _, _ := strings.Cut(clean, "e")
		if strings.Count(mant, ".") > 1 || strings.Trim(mant, ".") == "" {
			return nil, false
		}
		f, err := strconv.ParseFloat(clean, 64)
		if err != nil {
			var ne *strconv.NumError
			if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
				return nil, false
			}
		}
		return f, true
	}
	// Python rejects leading zeros in non-zero decimal integers ("007").
	if len(clean) > 1 && clean[0] == '0' && strings.Trim(clean, "0") != "" {
		return nil, false
	}
	return bigToValue(clean, 10)
}

func bigToValue(digits string, base int) (any, bool) {
	n, ok := new(big.Int).SetString(digits, base)
	if !ok {
		return nil, false
	}
	if n.IsInt64() {
		return n.Int64(), true
	}
	f, _ := new(big.Float).SetInt(n).Float64()
	return f, true
}
