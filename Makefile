# verifyd — run `make` for the list of targets.

GO        ?= go
BIN       ?= bin
FUZZ      ?= FuzzScopeMatch
FUZZPKG   ?= ./fuzz
# Every package with a fuzz target.
FUZZPKGS  ?= $(sort $(dir $(shell grep -rlE --include='*_test.go' '^func Fuzz[A-Z]' .)))
FUZZTIME  ?= 10m
# A count, not a duration: go1.26's fuzzing coordinator can report a
# spurious "context deadline exceeded" when a -fuzztime duration ends while
# a worker is busy (go.dev/issue/75804, fixed in go1.27); a count has no
# deadline to race.
SMOKETIME ?= 10000x
SOAK      ?= 10m
COUNT     ?= 10
# Every package of this module with a benchmark (not those of nested
# modules); BENCH selects benchmarks (-bench).
BENCHPKGS ?= $(patsubst $(CURDIR)/%,./%,$(filter $(shell $(GO) list -e -f '{{.Dir}}/' ./...),$(sort $(dir $(shell grep -rlE --include='*_test.go' '^func Benchmark[A-Z]' $(CURDIR))))))
BENCH     ?= .
BENCHSTAT ?= $(if $(wildcard $(HOME)/go/bin/benchstat),$(HOME)/go/bin/benchstat,$(GO) run golang.org/x/perf/cmd/benchstat@latest)
GCC       ?= gcc
CFLAGS_C  ?= -std=c99 -Wall -Wextra -Werror -O2

.PHONY: help build run test test-go test-cluster deps c-client fuzz-smoke fuzz fuzz-all bench benchcmp lint tidy-check ci clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

build: ## build verifyd and verifyctl into ./bin
	$(GO) build -o $(BIN)/ ./cmd/verifyd ./cmd/verifyctl

run: build ## run the daemon on the embedded default (store in ./data, HTTP on 127.0.0.1:8080)
	./$(BIN)/verifyd

test: deps test-go test-cluster fuzz-smoke ## the whole suite: unit, end-to-end and fuzz-corpus tests with -race, the etcd cluster tests, then a short fuzz run of every target

test-go: deps
	$(GO) test -race -shuffle=on -timeout 8m ./...

# The scale-out tests live in a module of their own (internal/clustertest), so
# that the daemon's go.mod never pulls etcd's server: 3 embedded etcd members
# and 3 verifyd binaries on loopback.
CLUSTERMOD ?= internal/clustertest
test-cluster: ## the scale-out tests: embedded etcd cluster, real verifyd nodes
	cd $(CLUSTERMOD) && $(GO) test -count=1 -timeout 8m ./...

deps: ## install the system programs the tests drive (gcc, nginx, rabbitmq-server, mosquitto-clients, node), when missing and root
	@bash .ci/install-deps

.PHONY: faults soak
faults: deps ## the failure tests of SECURITY.md §3.3 (docs/reliability.md), logging their figures; VERIFYD_FAULTS_LONG=1 runs their long versions
	$(GO) test -race -count=1 -v -run 'Fault' -timeout 45m ./...

soak: ## mixed load for $(SOAK) with no growth of goroutines or memory (not in CI): make soak SOAK=10m
	VERIFYD_SOAK=$(SOAK) $(GO) test -count=1 -run '^TestSoak$$' -timeout 90m -v ./cmd/verifyd/

c-client: ## build the C client into $(BIN)/libverifyd.a and its test program into $(BIN)/verifyd_c_test
	@mkdir -p $(BIN)
	$(GCC) $(CFLAGS_C) -Iipc/include -c ipc/c/verifyd.c -o $(BIN)/verifyd.o
	ar rcs $(BIN)/libverifyd.a $(BIN)/verifyd.o
	$(GCC) $(CFLAGS_C) -Iipc/include ipc/c/verifyd_test.c $(BIN)/libverifyd.a -o $(BIN)/verifyd_c_test

fuzz-smoke: ## run every fuzz target of $(FUZZPKGS) for $(SMOKETIME)
	@set -e; for p in $(FUZZPKGS); do for t in $$($(GO) test $$p -list '^Fuzz' | grep '^Fuzz'); do \
		echo "fuzz-smoke: $$p $$t"; \
		$(GO) test $$p -run '^$$' -fuzz "^$$t$$" -fuzztime $(SMOKETIME); \
	done; done

fuzz: ## run one fuzz target for long: make fuzz FUZZ=FuzzScopeMatch FUZZTIME=10m (FUZZPKG=./ipc/httpapi FUZZ=FuzzVerifyBody)
	$(GO) test $(FUZZPKG) -run '^$$' -fuzz '^$(FUZZ)$$' -fuzztime $(FUZZTIME)

fuzz-all: ## run every fuzz target for $(FUZZTIME)
	@$(MAKE) fuzz-smoke SMOKETIME=$(FUZZTIME)

bench: ## run the benchmarks $(COUNT) times (make bench COUNT=3) into bench/out/, compare with the baseline, print the ratios to the floors
	@mkdir -p bench/out
	@{ $(GO) test -p 1 -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) -timeout 120m $(BENCHPKGS); echo $$? > bench/out/status; } | tee bench/out/new.txt
	@$(BENCHSTAT) bench/results/baseline.txt bench/out/new.txt > bench/out/compare.txt && echo "benchstat against the baseline: bench/out/compare.txt"
	@$(GO) run ./bench/ratios bench/out/new.txt
	@exit $$(cat bench/out/status)

benchcmp: ## compare bench/out/new.txt with the committed baseline
	$(BENCHSTAT) bench/results/baseline.txt bench/out/new.txt

.PHONY: bench-redis bench-http
bench-http: ## POST /v1/verify against a bare fasthttp handler under wrk, 50 connections: make bench-http DURATION=10s
	DURATION='$(DURATION)' GO='$(GO)' bash bench/http.sh

bench-flood: ## valid-key latency over the socket, quiet and during floods of 1M random well-formed keys, and the daemon's RSS: make bench-flood
	BIN='$(BIN)' GO='$(GO)' bash bench/flood.sh

bench-redis: ## verifyd's socket against Redis GET, 50 connections, depth 1 and 16: make bench-redis KEYS=1000000
	KEYS='$(KEYS)' BIN='$(BIN)' GO='$(GO)' bash bench/redis.sh

lint: ## gofmt, go vet and the project's own lint tests
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd $(CLUSTERMOD) && $(GO) vet ./...

tidy-check: ## go.mod and go.sum are tidy (the cluster test module's too)
	$(GO) mod tidy
	cd $(CLUSTERMOD) && $(GO) mod tidy
	git diff --exit-code go.mod go.sum $(CLUSTERMOD)/go.mod $(CLUSTERMOD)/go.sum

ci: lint tidy-check test ## what CI runs

clean: ## remove build output (never ./data)
	rm -rf $(BIN) bench/out
