package stages

// Gates after every batch, and the probes that gates, health checks and
// before/after actions share: http, tcp, command and prometheus.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/drover-sh/drover/playbook"
	"github.com/drover-sh/drover/report"
	"github.com/drover-sh/drover/transport"
)

// DefaultProbeTimeout bounds one attempt of a check without its own `timeout`.
const DefaultProbeTimeout = 10 * time.Second

// runGate checks the stage's gate after batch b (0-based): the soak, then
// every check, retried each interval until all pass or the timeout, then the
// operator's confirmation. A failure halts the rollout; an interruption
// leaves the gate skipped. It reports whether the rollout may go on.
func (r *run) runGate(sr *stageRun, b int) bool {
	g := sr.ps.Gate
	gr := sr.rep.Gate
	name := sr.ps.Name
	r.emit(report.Event{Type: report.GateStart, Stage: name, Batch: b + 1})
	finish := func(status, detail string) bool {
		gr.Status = status
		r.emit(report.Event{Type: report.GateFinish, Stage: name, Batch: b + 1, Status: status, Detail: detail, Checks: gr.Checks})
		if status == report.Failed {
			r.halt(sr.idx, fmt.Sprintf("stage %s: gate failed after batch %d: %s", name, b+1, detail))
		}
		return status == report.Passed
	}
	if err := r.sleep(r.ctx, g.Wait); err != nil {
		return finish(report.Skipped, "interrupted during the soak")
	}
	timeout, interval := g.Timeout, g.Interval
	if timeout <= 0 {
		timeout = playbook.DefaultGateTimeout
	}
	if interval <= 0 {
		interval = playbook.DefaultGateInterval
	}
	deadline := r.now().Add(timeout)
	ectx := r.e.Playbook.StageContext(playbook.StageRef{Name: name, Kind: sr.ps.Kind, Index: sr.idx})
	for round := 1; len(g.Checks) > 0; round++ {
		checks, failing := make([]report.Check, 0, len(g.Checks)), ""
		for _, c := range g.Checks {
			cn := stepName(c.Kind, c.Name)
			ok, detail := false, ""
			spec, diags := c.Evaluate(ectx)
			switch {
			case diags.HasErrors():
				detail = diagText(diags)
			case spec.Skip:
				ok, detail = true, "when is false"
			default:
				ok, detail = r.probe(r.ctx, spec, nil)
			}
			st := report.Passed
			if !ok {
				st = report.Failed
				if failing == "" {
					failing = cn + ": " + detail
				}
			}
			checks = append(checks, report.Check{Name: cn, Status: st, Detail: detail})
		}
		if r.ctx.Err() != nil {
			return finish(report.Skipped, "interrupted")
		}
		gr.Checks = checks
		r.emit(report.Event{Type: report.GateCheck, Stage: name, Batch: b + 1, Checks: checks,
			Detail: fmt.Sprintf("round %d", round)})
		if failing == "" {
			break
		}
		if !r.now().Add(interval).Before(deadline) {
			return finish(report.Failed, fmt.Sprintf("%s (still failing after %s)", failing, timeout))
		}
		if err := r.sleep(r.ctx, interval); err != nil {
			return finish(report.Skipped, "interrupted")
		}
	}
	if g.Confirm {
		c := report.Check{Name: "confirm", Status: report.Passed}
		switch {
		case r.e.Yes:
			c.Detail = "--yes"
		case r.e.Confirm == nil:
			c.Status, c.Detail = report.Failed, "no terminal to ask for confirmation; pass --yes to continue without asking"
		default:
			ok, err := r.e.Confirm(r.ctx, r.confirmPrompt(sr, b))
			switch {
			case r.ctx.Err() != nil:
				return finish(report.Skipped, "interrupted at the confirmation prompt")
			case err != nil:
				c.Status, c.Detail = report.Failed, "confirmation: "+err.Error()
			case !ok:
				c.Status, c.Detail = report.Failed, "the operator declined"
			default:
				c.Detail = "approved by the operator"
			}
		}
		gr.Checks = append(gr.Checks, c)
		if c.Status == report.Failed {
			return finish(report.Failed, "confirm: "+c.Detail)
		}
	}
	return finish(report.Passed, "")
}

func (r *run) confirmPrompt(sr *stageRun, b int) string {
	sr.mu.Lock()
	ok, failed := sr.ok, sr.failures
	sr.mu.Unlock()
	return fmt.Sprintf("Stage %s, batch %d/%d done: %d host(s) ok, %d failed. Continue the rollout?",
		sr.ps.Name, b+1, len(sr.ps.Batches), ok, failed)
}

// probe makes one attempt of a check. host runs command checks; nil runs
// them on the controller (gates, before and after actions).
func (r *run) probe(ctx context.Context, spec *playbook.CheckSpec, host transport.Runner) (bool, string) {
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case spec.HTTP != nil:
		h := spec.HTTP
		p := httpProbe{URL: h.URL, Method: h.Method, Status: h.Status, Body: h.Body, Headers: h.Headers}
		if h.BodyRegex != "" {
			re, err := regexp.Compile(h.BodyRegex) // validated when the playbook loaded; a computed value may still be bad
			if err != nil {
				return false, "body_regex: " + err.Error()
			}
			p.BodyRegex = re
		}
		return probeHTTP(ctx, r.httpClient(), p)
	case spec.TCP != nil:
		return probeTCP(ctx, spec.TCP.Address)
	case spec.Command != nil && host == nil:
		return probeLocal(ctx, spec.Command.Run)
	case spec.Command != nil:
		return probeRemote(ctx, host, spec.Command.Run, r.e.Become, timeout)
	case spec.Prometheus != nil:
		p := spec.Prometheus
		return probePrometheus(ctx, r.httpClient(), promProbe{URL: p.URL, Query: p.Query, Min: p.Min, Max: p.Max, EmptyOK: p.EmptyOK})
	}
	return false, "check of kind " + spec.Kind + " is not supported"
}

func (r *run) httpClient() *http.Client {
	if r.e.HTTP != nil {
		return r.e.HTTP
	}
	return http.DefaultClient
}

// httpProbe is an http check or action. BodyRegex, when set, must match the
// response body.
type httpProbe struct {
	URL, Method, Body string
	BodyRegex         *regexp.Regexp
	Status            int // 0: any 2xx
	Headers           map[string]string
}

// maxBody is how much of a response body is read for body checks.
const maxBody = 1 << 20

func probeHTTP(ctx context.Context, c *http.Client, p httpProbe) (bool, string) {
	method := p.Method
	if method == "" {
		method = http.MethodGet
	}
	shown := p.URL
	if u, err := url.Parse(p.URL); err == nil {
		shown = u.Redacted() // never show credentials in a URL
	}
	req, err := http.NewRequestWithContext(ctx, method, p.URL, nil)
	if err != nil {
		return false, fmt.Sprintf("%s %s: %s", method, shown, redactURLError(err, p.URL, shown))
	}
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, fmt.Sprintf("%s %s: %s", method, shown, redactURLError(err, p.URL, shown))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return false, fmt.Sprintf("%s %s: reading the body: %v", method, shown, err)
	}
	got := fmt.Sprintf("%s %s: %d", method, shown, resp.StatusCode)
	switch {
	case p.Status != 0 && resp.StatusCode != p.Status:
		return false, fmt.Sprintf("%s, want %d", got, p.Status)
	case p.Status == 0 && (resp.StatusCode < 200 || resp.StatusCode > 299):
		return false, got + ", want 2xx"
	case p.Body != "" && !strings.Contains(string(body), p.Body):
		return false, fmt.Sprintf("%s, body lacks %q", got, p.Body)
	case p.BodyRegex != nil && !p.BodyRegex.Match(body):
		return false, fmt.Sprintf("%s, body does not match /%s/", got, p.BodyRegex)
	}
	return true, got
}

// redactURLError keeps a URL's password out of an error message.
func redactURLError(err error, raw, shown string) string {
	return strings.ReplaceAll(err.Error(), raw, shown)
}

func probeTCP(ctx context.Context, addr string) (bool, string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, fmt.Sprintf("connect %s: %v", addr, err)
	}
	conn.Close()
	return true, "connected to " + addr
}

// localEnvKey carries the environment of a controller-side command made for
// one host (before/after actions) through probeRetry to probeLocal.
type localEnvKey struct{}

// withLocalEnv adds env (KEY=VALUE) to the environment of controller-side
// commands run under ctx.
func withLocalEnv(ctx context.Context, env []string) context.Context {
	return context.WithValue(ctx, localEnvKey{}, env)
}

// hostEnv is what a before/after command on the controller learns about its
// host: values in the environment, so a name or address never becomes shell
// code the way a template interpolation could.
func hostEnv(hd playbook.HostData, stage string) []string {
	addr := hd.Address
	if addr == "" {
		addr = hd.Name
	}
	return []string{"DROVER_HOST=" + hd.Name, "DROVER_HOST_ADDRESS=" + addr, "DROVER_STAGE=" + stage}
}

// probeLocal runs a command on the controller with sh -c: a gate's (which
// sees only `var` and `stage`, never facts) or a before/after action's, whose
// host arrives in DROVER_HOST / DROVER_HOST_ADDRESS (see withLocalEnv).
func probeLocal(ctx context.Context, run string) (bool, string) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", run)
	if env, _ := ctx.Value(localEnvKey{}).([]string); len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = time.Second // a background child keeping the pipes open must not hang the gate
	out, err := cmd.CombinedOutput()
	tail := outputTail(&transport.Result{Stdout: out})
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() >= 0 {
			return false, fmt.Sprintf("exit %d%s", ee.ExitCode(), tail)
		}
		if ctx.Err() != nil {
			return false, "timed out" + tail
		}
		return false, err.Error() + tail
	}
	return true, "exit 0" + tail
}

func probeRemote(ctx context.Context, host transport.Runner, run string, become *transport.Become, timeout time.Duration) (bool, string) {
	out, err := host.Run(ctx, &transport.Command{Cmd: run, Become: become, Timeout: timeout})
	if err != nil {
		return false, err.Error()
	}
	if out.ExitCode != 0 {
		return false, fmt.Sprintf("exit %d%s", out.ExitCode, outputTail(out))
	}
	return true, "exit 0" + outputTail(out)
}

// promProbe is an instant query whose every sample must lie within Min and
// Max. An empty result fails unless EmptyOK.
type promProbe struct {
	URL, Query string
	Min, Max   *float64
	EmptyOK    bool
}

// promResponse is the Prometheus HTTP API envelope of /api/v1/query.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// promSample is one [timestamp, "value"] pair.
type promSample [2]any

func (s promSample) value() (float64, error) {
	str, ok := s[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", s[1])
	}
	return strconv.ParseFloat(str, 64)
}

func probePrometheus(ctx context.Context, c *http.Client, p promProbe) (bool, string) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return false, "prometheus url: " + err.Error()
	}
	if !strings.HasSuffix(u.Path, "/api/v1/query") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/query"
	}
	u.RawQuery = url.Values{"query": {p.Query}}.Encode()
	shown := u.Redacted()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, redactURLError(err, u.String(), shown)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return false, "prometheus: " + redactURLError(err, u.String(), shown)
	}
	defer resp.Body.Close()
	var pr promResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&pr); err != nil {
		return false, fmt.Sprintf("prometheus: HTTP %d, undecodable answer: %v", resp.StatusCode, err)
	}
	if pr.Status != "success" {
		return false, fmt.Sprintf("prometheus: HTTP %d: %s: %s", resp.StatusCode, pr.ErrorType, pr.Error)
	}
	var samples []float64
	switch pr.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  promSample        `json:"value"`
		}
		if err := json.Unmarshal(pr.Data.Result, &vec); err != nil {
			return false, "prometheus: vector: " + err.Error()
		}
		for _, s := range vec {
			v, err := s.Value.value()
			if err != nil {
				return false, "prometheus: " + err.Error()
			}
			samples = append(samples, v)
		}
	case "scalar":
		var s promSample
		if err := json.Unmarshal(pr.Data.Result, &s); err != nil {
			return false, "prometheus: scalar: " + err.Error()
		}
		v, err := s.value()
		if err != nil {
			return false, "prometheus: " + err.Error()
		}
		samples = append(samples, v)
	default:
		return false, fmt.Sprintf("prometheus: result type %q: an instant query must give a vector or a scalar", pr.Data.ResultType)
	}
	if len(samples) == 0 {
		if p.EmptyOK {
			return true, "empty result (allowed)"
		}
		return false, "empty result: the query matched no series"
	}
	for _, v := range samples {
		switch {
		case math.IsNaN(v):
			return false, "value is NaN"
		case p.Min != nil && v < *p.Min:
			return false, fmt.Sprintf("value %s below min %s", fmtFloat(v), fmtFloat(*p.Min))
		case p.Max != nil && v > *p.Max:
			return false, fmt.Sprintf("value %s above max %s", fmtFloat(v), fmtFloat(*p.Max))
		}
	}
	if len(samples) == 1 {
		return true, "value " + fmtFloat(samples[0])
	}
	return true, fmt.Sprintf("%d series within bounds", len(samples))
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
