# hogrelay — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/hogrelay/hogrelay/cli.Version=$(VERSION)

.PHONY: build run test test-short bench install deb vet fmt clean

build: ## build bin/hogrelay
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/hogrelay ./cmd/hogrelay

run: build ## try it: the agent plus a local PostHog stand-in (Ctrl-C stops)
	./bin/hogrelay dev

test: ## gofmt, vet, staticcheck; every test with the race detector (end-to-end and, with Node, posthog-node); lists every skip
	GO=$(GO) scripts/test.sh

test-short: ## unit tests only (skips the slow end-to-end tests)
	$(GO) test -short -count=1 ./...

bench: ## throughput and latency figures (see README "Performance")
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=2s -count=3 ./bench/ ./capture/ ./flags/ ./flags/eval/

install: build ## install on this machine (systemd unit, user, config); DESTDIR/PREFIX honoured
	scripts/install.sh --binary bin/hogrelay

deb: ## Debian package bin/hogrelay_<version>_<arch>.deb, its binary stripped (needs dpkg-deb)
	scripts/build-deb.sh --out bin

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
