# Commands a contributor needs; CI (.ci/run) runs lint and test with more flags.
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The static build of the Dockerfile (litestream's flags).
BUILD_TAGS = osusergo,netgo,sqlite_omit_load_extension
BUILD_LDFLAGS = -s -w -extldflags '-static' -X main.version=$(VERSION)

.PHONY: build static test lint bench perf demo clean

build:
	$(GO) build -o registrywatch ./cmd/registrywatch

# static is the Dockerfile's build command.
static:
	CGO_ENABLED=1 $(GO) build -tags $(BUILD_TAGS) -ldflags "$(BUILD_LDFLAGS)" -trimpath -o registrywatch ./cmd/registrywatch

test:
	$(GO) test ./...

lint:
	$(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	staticcheck ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

# perf regenerates docs/PERFORMANCE.md from the benchmarks.
perf:
	$(GO) run ./internal/perfdoc -out docs/PERFORMANCE.md

demo:
	$(GO) run ./cmd/registrywatch demo

clean:
	rm -f registrywatch
