package main

import (
	"strings"
	"testing"

	"github.com/drover-sh/drover/playbook"
)

// plan prints every check it would run; a password in a check's URL must be
// masked there as the checks themselves mask it when they report.
func TestCheckLineHidesURLPassword(t *testing.T) {
	const pw = "pl4n-Secret-77"
	tests := []struct {
		name string
		spec *playbook.CheckSpec
		want string
	}{
		{"http", &playbook.CheckSpec{HTTP: &playbook.HTTPCheck{Method: "GET", URL: "https://ops:" + pw + "@lb.example/healthz", Status: 200}},
			"GET https://ops:xxxxx@lb.example/healthz, expect status 200"},
		{"prometheus", &playbook.CheckSpec{Prometheus: &playbook.PrometheusCheck{URL: "http://p:" + pw + "@127.0.0.1:9090", Query: "up"}},
			"http://p:xxxxx@127.0.0.1:9090"},
		{"unparsable URL kept", &playbook.CheckSpec{HTTP: &playbook.HTTPCheck{Method: "GET", URL: "http://[::1"}},
			"GET http://[::1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkLine(tc.spec)
			if strings.Contains(got, pw) || !strings.Contains(got, tc.want) {
				t.Errorf("checkLine = %q, want it to contain %q and not the password", got, tc.want)
			}
		})
	}
}
