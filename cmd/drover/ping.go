package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drover-sh/drover/transport"
	"github.com/urfave/cli/v2"
)

// Ping statuses (JSON "status") and failure reasons (JSON "reason").
const (
	statusOK          = "ok"
	statusUnreachable = "unreachable"
	statusFailed      = "failed"
	statusSkipped     = "skipped" // not started: the run was interrupted first

	reasonHostKey = "host_key"
	reasonAuth    = "auth"
	reasonBecome  = "become"
	reasonError   = "error"
)

// pinger is what ping needs of a connection; *transport.Conn has it.
type pinger interface {
	Ping(ctx context.Context) (time.Duration, error)
	Run(ctx context.Context, cmd *transport.Command) (*transport.Result, error)
}

// connector hands out connections; the real one is a transport.Pool, tests use fakes.
type connector interface {
	Get(ctx context.Context, ep *transport.Endpoint) (pinger, error)
	Close() error
}

type poolConnector struct{ pool *transport.Pool }

func newPoolConnector(o transport.DialerOptions) connector {
	return poolConnector{pool: transport.NewPool(transport.NewDialer(o))}
}

func (p poolConnector) Get(ctx context.Context, ep *transport.Endpoint) (pinger, error) {
	c, err := p.pool.Get(ctx, ep)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (p poolConnector) Close() error { return p.pool.Close() }

// Release closes ep's connection once a command is done with the host.
func (p poolConnector) Release(ep *transport.Endpoint) error { return p.pool.Release(ep) }

// releaser is a connector that can let go of one host's connection early.
type releaser interface {
	Release(ep *transport.Endpoint) error
}

// pingResult is one host's line, and its element of the JSON "hosts" array.
type pingResult struct {
	Name      string  `json:"name"`
	Address   string  `json:"address"`
	Status    string  `json:"status"`
	Reason    string  `json:"reason,omitempty"`
	Error     string  `json:"error"`
	ConnectMS float64 `json:"connect_ms"`
	RTTMS     float64 `json:"rtt_ms"`
}

// msStats are min/avg/max in milliseconds.
type msStats struct {
	Min float64 `json:"min"`
	Avg float64 `json:"avg"`
	Max float64 `json:"max"`
}

// pingSummary is the mco-style tail: counts, names per failure class, rtt spread.
type pingSummary struct {
	Total            int                 `json:"total"`
	OK               int                 `json:"ok"`
	Failed           int                 `json:"failed"`
	Unreachable      int                 `json:"unreachable"`
	Skipped          int                 `json:"skipped"`
	FailedHosts      map[string][]string `json:"failed_hosts"` // by reason
	UnreachableHosts []string            `json:"unreachable_hosts"`
	SkippedHosts     []string            `json:"skipped_hosts"`
	RTT              *msStats            `json:"rtt_ms"` // null when no host answered
	Interrupted      bool                `json:"interrupted"`
}

type pingDoc struct {
	Hosts   []pingResult `json:"hosts"`
	Summary pingSummary  `json:"summary"`
}

func pingAction(c *cli.Context, e *env) error {
	o, err := readOptions(c, e)
	if err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) > 1 {
		return badInput(o.cmd, "ping takes at most one PATTERN, got %q (join patterns with , or :)", args)
	}
	pattern := "all"
	if len(args) == 1 {
		pattern = args[0]
	}
	src, err := newFactSource(c, e, o)
	if err != nil {
		return err
	}
	s, err := openSession(c, e, o, pattern, src)
	if err != nil {
		return err
	}
	defer s.conn.Close()
	ts, conn, become := s.ts, s.conn, s.become
	pal := newPalette(useColor(e.stdoutTTY, e.getenv("NO_COLOR"), o.noColor))
	var line func(pingResult)
	if !o.json {
		w := lineWidths(append(slices.Clone(ts), unknownTargets(s.unknown)...))
		line = func(r pingResult) { renderPingLine(e.stdout, pal, w, r) }
	}
	results := runPing(c.Context, conn, ts, o, become, line)
	// Hosts lost while gathering facts for the filters.
	for _, u := range s.unknown {
		r := pingResult{Name: u.t.host.Name, Address: address(u.t.ep)}
		classify(&r, u.err, connectLimit(u.t))
		if line != nil {
			line(r)
		}
		results = append(results, r)
	}
	sum := summarize(results, c.Context.Err() != nil)
	if o.json {
		err = renderPingJSON(e.stdout, results, sum)
	} else {
		err = renderPingSummary(e.stdout, pal, sum)
	}
	if err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return hostsOutcome(sum.Interrupted, sum.Failed, sum.Unreachable)
}

// logf is the dialer's logger: stderr with -v, silent otherwise.
func logf(w io.Writer, verbose bool) func(string, ...any) {
	if !verbose {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) {
		fmt.Fprintf(w, "drover: "+strings.TrimSuffix(format, "\n")+"\n", args...)
	}
}

// runPing pings every target with at most o.forks at once and returns the results in
// target order; line, when set, sees each result as it arrives. Once ctx is cancelled
// no new host starts; hosts already started finish (their work is bounded by the
// connect and command timeouts), as SPEC's interruption rule asks.
func runPing(ctx context.Context, conn connector, ts []target, o *options, become *transport.Become, line func(pingResult)) []pingResult {
	results := make([]pingResult, len(ts))
	type done struct {
		i int
		r pingResult
	}
	arrived := make(chan done)
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for d := range arrived {
			results[d.i] = d.r
			if line != nil {
				line(d.r)
			}
		}
	}()

	work := context.WithoutCancel(ctx) // started hosts are not cut short by the first signal
	sem := make(chan struct{}, o.forks)
	var wg sync.WaitGroup
	next := 0
schedule:
	for ; next < len(ts); next++ {
		select {
		case <-ctx.Done():
			break schedule
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil { // both were ready and select chose the slot
			<-sem
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			arrived <- done{i, pingOne(work, conn, ts[i], o, become)}
		}(next)
	}
	wg.Wait()
	close(arrived)
	<-printed
	for i := next; i < len(ts); i++ {
		results[i] = pingResult{Name: ts[i].host.Name, Address: address(ts[i].ep), Status: statusSkipped, Error: "not started: interrupted"}
	}
	return results
}

// pingProbes is how many round trips ping measures on a ready connection.
const pingProbes = 3

// address is host:port as dialled (the first hop when there are jump hosts).
func address(ep *transport.Endpoint) string {
	return net.JoinHostPort(ep.HostName, strconv.Itoa(ep.Port))
}

// pingOne connects (bounded by the connect timeout, per hop when jumping), pings,
// and with become checks that sudo works.
func pingOne(ctx context.Context, conn connector, t target, o *options, become *transport.Become) pingResult {
	r := pingResult{Name: t.host.Name, Address: address(t.ep)}
	connectLimit := t.ep.ConnectTimeout * time.Duration(1+len(t.ep.ProxyJump))
	dctx, cancel := context.WithTimeout(ctx, connectLimit)
	start := time.Now()
	c, err := conn.Get(dctx, t.ep)
	cancel()
	if err != nil {
		r.ConnectMS = ms(time.Since(start))
		classify(&r, err, connectLimit)
		return r
	}
	limit := o.timeout
	if limit == 0 {
		limit = t.ep.ConnectTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// sshd finishes setting up the authenticated connection (its post-auth privilege
	// separation child) while it answers the first request — tens of milliseconds that
	// belong to "connect", not to the round trip. The round trip is the best of a few
	// requests on the ready connection, as ping(8) would show.
	_, err = c.Ping(pctx)
	r.ConnectMS = ms(time.Since(start))
	if err != nil {
		classify(&r, err, limit)
		return r
	}
	var best time.Duration
	for i := 0; i < pingProbes; i++ {
		rtt, err := c.Ping(pctx)
		if err != nil {
			classify(&r, err, limit)
			return r
		}
		if i == 0 || rtt < best {
			best = rtt
		}
	}
	r.RTTMS = ms(best)
	if become != nil {
		res, err := c.Run(pctx, &transport.Command{Cmd: "true", Become: become, Timeout: limit})
		switch {
		case err != nil:
			classify(&r, err, limit)
			if r.Status == statusFailed {
				r.Reason = reasonBecome
			}
			return r
		case res.ExitCode != 0:
			r.Status, r.Reason = statusFailed, reasonBecome
			r.Error = fmt.Sprintf("sudo failed (exit %d): %s", res.ExitCode, firstLine(res.Stderr))
			return r
		}
	}
	r.Status = statusOK
	return r
}

// classify sets status, reason and error text from a transport error. Host-key and
// auth problems are checked first: they need the operator, not a retry. The error
// text is kept whole — a host-key error names the known_hosts file and line.
func classify(r *pingResult, err error, limit time.Duration) {
	r.Error = err.Error()
	switch {
	case errors.Is(err, transport.ErrHostKey):
		r.Status, r.Reason = statusFailed, reasonHostKey
	case errors.Is(err, transport.ErrAuth):
		r.Status, r.Reason = statusFailed, reasonAuth
	case errors.Is(err, transport.ErrUnreachable), errors.Is(err, transport.ErrConnLost):
		r.Status = statusUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, transport.ErrTimeout):
		r.Status = statusUnreachable
		r.Error = fmt.Sprintf("no answer within %s: %v", limit, err)
	default:
		r.Status, r.Reason = statusFailed, reasonError
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// ms is d in milliseconds, rounded to microseconds so output stays short.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

func summarize(results []pingResult, interrupted bool) pingSummary {
	s := pingSummary{
		Total:            len(results),
		FailedHosts:      map[string][]string{},
		UnreachableHosts: []string{},
		SkippedHosts:     []string{},
		Interrupted:      interrupted,
	}
	n := 0
	for _, r := range results {
		switch r.Status {
		case statusOK:
			s.OK++
			if n == 0 {
				s.RTT = &msStats{Min: r.RTTMS, Max: r.RTTMS}
			}
			n++
			s.RTT.Min = min(s.RTT.Min, r.RTTMS)
			s.RTT.Max = max(s.RTT.Max, r.RTTMS)
			s.RTT.Avg += r.RTTMS
		case statusUnreachable:
			s.Unreachable++
			s.UnreachableHosts = append(s.UnreachableHosts, r.Name)
		case statusSkipped:
			s.Skipped++
			s.SkippedHosts = append(s.SkippedHosts, r.Name)
		default:
			s.Failed++
			s.FailedHosts[r.Reason] = append(s.FailedHosts[r.Reason], r.Name)
		}
	}
	if s.RTT != nil {
		s.RTT.Avg = math.Round(s.RTT.Avg/float64(n)*1e3) / 1e3
	}
	return s
}

// lineWidths are the name and address column widths, known before the first result.
type widths struct{ name, addr int }

func lineWidths(ts []target) widths {
	var w widths
	for _, t := range ts {
		w.name = max(w.name, len(t.host.Name))
		w.addr = max(w.addr, len(address(t.ep)))
	}
	return w
}

// statusText is the human form of a status: "failed: host key".
func statusText(r pingResult) string {
	if r.Status == statusFailed && r.Reason != "" {
		return "failed: " + strings.ReplaceAll(r.Reason, "_", " ")
	}
	return r.Status
}

// fmtMS prints milliseconds with the precision that matters at that size.
func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	default:
		return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
	}
}

// renderPingLine prints one host as its result arrives.
func renderPingLine(w io.Writer, pal *palette, wd widths, r pingResult) {
	st := fmt.Sprintf("%-16s", statusText(r))
	detail := r.Error
	if r.Status == statusOK {
		detail = "connect " + fmtMS(r.ConnectMS) + "  rtt " + fmtMS(r.RTTMS)
	}
	line := fmt.Sprintf("%-*s  %-*s  %s  %s", wd.name, r.Name, wd.addr, r.Address, pal.status(r.Status, st), detail)
	fmt.Fprintln(w, strings.TrimRight(line, " "))
}

// renderPingSummary prints the tail after all lines.
func renderPingSummary(w io.Writer, pal *palette, s pingSummary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s: %s ok, %s failed, %s unreachable",
		pal.bold.Sprint(plural(s.Total, "host")),
		pal.ok.Sprint(s.OK), pal.failed.Sprint(s.Failed), pal.unreachable.Sprint(s.Unreachable))
	if s.Skipped > 0 {
		fmt.Fprintf(&b, ", %d not started", s.Skipped)
	}
	b.WriteString("\n")
	for _, reason := range sortedKeys(s.FailedHosts) {
		fmt.Fprintf(&b, "failed (%s): %s\n", strings.ReplaceAll(reason, "_", " "), strings.Join(s.FailedHosts[reason], ", "))
	}
	if len(s.UnreachableHosts) > 0 {
		fmt.Fprintf(&b, "unreachable: %s\n", strings.Join(s.UnreachableHosts, ", "))
	}
	if s.Interrupted {
		fmt.Fprintf(&b, "interrupted: %s not started: %s\n", plural(s.Skipped, "host"), dashList(s.SkippedHosts))
	}
	if s.RTT != nil {
		fmt.Fprintf(&b, "rtt min/avg/max: %s / %s / %s\n", fmtMS(s.RTT.Min), fmtMS(s.RTT.Avg), fmtMS(s.RTT.Max))
	} else {
		b.WriteString("rtt min/avg/max: - (no host answered)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderPingJSON prints the one JSON document --json promises, and nothing else.
func renderPingJSON(w io.Writer, results []pingResult, s pingSummary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(pingDoc{Hosts: results, Summary: s})
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
