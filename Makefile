# drover — the two commands a newcomer needs: `make demo` and `make test` (as root on Debian).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build deps test unit fuzz e2e demo lab-up lab-down vet fmt clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/drover ./cmd/drover
	$(GO) build -o bin/drover-lab ./cmd/drover-lab

deps:
	./scripts/install-deps.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed" >&2; exit 1; }
	$(GO) vet ./...

# Everything: unit tests (in-process SSH servers) and end-to-end tests against a lab of real
# sshd hosts that the tests start themselves, all under the race detector (e2e's drover
# binary is built without it), then every fuzz target for a short budget. Needs root.
test: deps vet
	$(GO) test -race -count=1 -timeout 80m ./...
	./scripts/fuzz-short.sh

# Fuzz each target for a duration (default 1m) rather than `make test`'s count: make fuzz FUZZTIME=5m
FUZZTIME ?= 1m
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-short.sh

unit:
	$(GO) test -count=1 -short ./...

# drover against parallel-ssh, xargs+ssh, Ansible and facter on a lab of BENCH_HOSTS (50)
# real sshd hosts, BENCH_ROUNDS (5) rounds; writes bench/RESULTS.md. Needs root, ~30 min.
# The controller-scale benchmark (1,000 and 10,000 simulated hosts) is separate:
#   go test -bench Fleet -run '^$$' -benchtime 1x -timeout 60m ./bench/
.PHONY: bench
bench: build
	$(GO) run ./bench/cmd/drover-bench -drover bin/drover -dir bench -out bench/RESULTS.md

demo: deps build
	./scripts/demo.sh

clean:
	rm -rf bin
