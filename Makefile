# drover — the two commands a newcomer needs: `make demo` and `make test` (as root on Debian).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build deps test unit e2e demo lab-up lab-down vet fmt clean

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
# sshd hosts that the tests start themselves. Needs root.
test: deps vet
	$(GO) test -count=1 -timeout 80m ./...

unit:
	$(GO) test -count=1 -short ./...

demo: deps build
	./scripts/demo.sh

clean:
	rm -rf bin
