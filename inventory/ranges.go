package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// maxRangeHosts bounds one range expression so that a typo such as
// web-[1:99999999] fails instead of exhausting memory.
const maxRangeHosts = 100000

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// expandHostRange expands Ansible host ranges: web-[01:20] (leading zeros keep
// the width), db[a:f], x[1:10:2], several ranges in one name. A name without
// '[' is returned as is.
func expandHostRange(pattern string) ([]string, error) {
	var out []string
	if err := expandInto(pattern, &out); err != nil {
		return nil, fmt.Errorf("host range %q: %w", pattern, err)
	}
	return out, nil
}

func expandInto(line string, out *[]string) error {
	open := strings.IndexByte(line, '[')
	if open < 0 {
		*out = append(*out, line)
		return nil
	}
	closeRel := strings.IndexByte(line[open:], ']')
	if closeRel < 0 {
		return errors.New("missing ']'")
	}
	head, nrange, tail := line[:open], line[open+1:open+closeRel], line[open+closeRel+1:]
	bounds := strings.Split(nrange, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return errors.New("host range must be begin:end or begin:end:step")
	}
	beg, end := bounds[0], bounds[1]
	step := 1
	if len(bounds) == 3 {
		s, err := strconv.Atoi(bounds[2])
		if err != nil || s < 1 {
			return fmt.Errorf("bad step %q", bounds[2])
		}
		step = s
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return errors.New("host range must specify end value")
	}
	var seq []string
	if len(beg) == 1 && len(end) == 1 && strings.Contains(asciiLetters, beg) && strings.Contains(asciiLetters, end) {
		ib, ie := strings.Index(asciiLetters, beg), strings.Index(asciiLetters, end)
		if ib > ie {
			return errors.New("host range must have begin <= end")
		}
		for i := ib; i <= ie; i += step {
			seq = append(seq, asciiLetters[i:i+1])
		}
	} else {
		width := 0
		if beg[0] == '0' && len(beg) > 1 {
			width = len(beg)
			if width != len(end) {
				return errors.New("host range must specify equal-length begin and end formats")
			}
		}
		ib, err1 := strconv.Atoi(beg)
		ie, err2 := strconv.Atoi(end)
		if err1 != nil || err2 != nil || ib < 0 || ie < 0 {
			return fmt.Errorf("bad range [%s]", nrange)
		}
		if ie >= ib && (ie-ib)/step >= maxRangeHosts {
			return fmt.Errorf("range [%s] expands to more than %d hosts", nrange, maxRangeHosts)
		}
		for i := ib; i <= ie; i += step {
			seq = append(seq, fmt.Sprintf("%0*d", width, i))
		}
	}
	for _, s := range seq {
		if err := expandInto(head+s+tail, out); err != nil {
			return err
		}
		if len(*out) > maxRangeHosts {
			return fmt.Errorf("expands to more than %d hosts", maxRangeHosts)
		}
	}
	return nil
}

var (
	hostPortRE = regexp.MustCompile(`^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`)
	rangeRE    = `\[(?:[a-zA-Z]:[a-zA-Z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`
	labelRE    = regexp.MustCompile(`^(?:[\p{L}\p{N}_]|` + rangeRE + `)(?:[\p{L}\p{N}_-]|` + rangeRE + `)*$`)
	numRangeRE = `\[[0-9]+:[0-9]+(?::[0-9]+)?\]`
	ipv4Part   = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|` + numRangeRE + `)`
	ipv4RE     = regexp.MustCompile(`^(?:` + ipv4Part + `\.){3}` + ipv4Part + `$`)
)

// parseAddress splits "host:port" the way Ansible's parse_address does for
// hostnames and IPv4 addresses (ranges allowed). ok is false when what remains
// is not a valid host name, in which case callers use the text unchanged.
func parseAddress(s string) (host string, port int, ok bool) {
	host = s
	if m := hostPortRE.FindStringSubmatch(s); m != nil {
		p, err := strconv.Atoi(m[2])
		if err != nil {
			return "", 0, false
		}
		host, port = m[1], p
	}
	if ipv4RE.MatchString(host) || validHostname(host) {
		return host, port, true
	}
	return "", 0, false
}

func validHostname(h string) bool {
	if h == "" {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if !labelRE.MatchString(label) || strings.HasSuffix(label, "-") || strings.HasSuffix(label, "_") {
			return false
		}
	}
	return true
}

// shlexSplit splits like Python's shlex.split (POSIX mode), which Ansible uses
// for INI host lines; with comments, '#' outside quotes ends the line.
func shlexSplit(s string, comments bool) ([]string, error) {
	var (
		toks    []string
		cur     strings.Builder
		inToken bool
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inToken {
				toks = append(toks, cur.String())
				cur.Reset()
				inToken = false
			}
		case comments && c == '#':
			if inToken {
				toks = append(toks, cur.String())
			}
			return toks, nil
		case c == '\\':
			inToken = true
			if i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
			}
		case c == '\'':
			inToken = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				cur.WriteRune(rs[j])
				j++
			}
			if j >= len(rs) {
				return nil, errors.New("no closing quotation")
			}
			i = j
		case c == '"':
			inToken = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && (rs[j+1] == '\\' || rs[j+1] == '"') {
					j++
				}
				cur.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errors.New("no closing quotation")
			}
			i = j
		default:
			inToken = true
			cur.WriteRune(c)
		}
	}
	if inToken {
		toks = append(toks, cur.String())
	}
	return toks, nil
}
