# Strata: build, run and test.
#
#   make run    one-process mode on http://127.0.0.1:9009 (data in ./data)
#   make test   unit, property and end-to-end tests (installs what they need)
#               and the Kubernetes manifests (make k8s-validate)
#   make bench  Strata vs Prometheus vs VictoriaMetrics, then the criterion
#               micro-benchmarks (< 30 min; writes docs/benchmarks.md)
#   make bench-compare  only the side-by-side comparison
#   make bench-micro    only the criterion benchmarks of the hot paths
#   make fuzz   coverage-guided fuzzing, FUZZ_SECONDS per target (default 60);
#               grows fuzz/corpus/, which make test replays (docs/fuzzing.md)

CARGO ?= cargo
NPM_PREFIX := $(CURDIR)/.tmp/npm
DYNALITE := $(NPM_PREFIX)/node_modules/.bin/dynalite
CARGO_PREFIX := $(CURDIR)/.tmp/cargo
S3S_FS := $(CARGO_PREFIX)/bin/s3s-fs
S3S_FS_VERSION := 0.14.1
MEMCACHED := /usr/bin/memcached
# Alertmanager 0.25 (Debian), which the ruler's end-to-end tests send alerts to.
ALERTMANAGER := /usr/bin/prometheus-alertmanager
# kubernetes-validate (PyPI, schemas shipped in the package: works offline)
# and PyPI's PyYAML for k8s/check.py, in a venv under .tmp.
VENV := $(CURDIR)/.tmp/venv
KUBERNETES_VALIDATE_VERSION := 1.37.0
PYYAML_VERSION := 6.0.3
# The oldest Kubernetes the manifests support, and the newest the validator knows.
K8S_VERSIONS := 1.29.0 1.37.0
K8S_MANIFESTS := $(wildcard k8s/*.yaml)
# Where the end-to-end tests find the servers they start.
TEST_SERVERS := DYNALITE_BIN=$(DYNALITE) S3S_FS_BIN=$(S3S_FS) MEMCACHED_BIN=$(MEMCACHED) ALERTMANAGER_BIN=$(ALERTMANAGER)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND := noninteractive

.PHONY: all build run test test-deps k8s-validate unit-test e2e-test bench bench-micro fuzz fmt lint clean

all: build

build:
	$(CARGO) build --release --bins

## One-process mode with the embedded defaults: in-memory ring, no servers.
run:
	$(CARGO) build --release -p strata
	mkdir -p data
	./target/release/strata --data-dir=data $(ARGS)

## Servers the end-to-end tests start: Prometheus 2.42 and memcached (Debian),
## dynalite (npm) and s3s-fs (crates.io, built once into .tmp/cargo).
test-deps:
	@# Only what is missing: a Node.js from elsewhere (e.g. NodeSource) brings
	@# its own npm and conflicts with Debian's npm package.
	@pkgs=""; \
	if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then pkgs=" prometheus"; fi; \
	if [ ! -x $(ALERTMANAGER) ]; then pkgs="$$pkgs prometheus-alertmanager"; fi; \
	if ! command -v npm >/dev/null; then pkgs="$$pkgs nodejs npm"; fi; \
	if [ ! -x $(MEMCACHED) ]; then pkgs="$$pkgs memcached"; fi; \
	if [ -n "$$pkgs" ]; then \
	  echo "installing Debian packages:$$pkgs"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq --no-install-recommends $$pkgs >/dev/null; \
	fi
	@if [ ! -x $(DYNALITE) ]; then \
	  echo "installing dynalite from npm into $(NPM_PREFIX)"; \
	  mkdir -p $(NPM_PREFIX) && \
	  npm install --prefix $(NPM_PREFIX) --no-audit --no-fund --loglevel=error dynalite@4 >/dev/null; \
	fi
	@if [ ! -x $(S3S_FS) ]; then \
	  echo "building s3s-fs $(S3S_FS_VERSION) from crates.io into $(CARGO_PREFIX)"; \
	  $(CARGO) install s3s-fs@$(S3S_FS_VERSION) --locked --features binary --root $(CARGO_PREFIX) --quiet \
	    && test -x $(S3S_FS); \
	fi
	@prometheus --version 2>&1 | head -n 1
	@test -x $(DYNALITE) && echo "dynalite: $(DYNALITE)"
	@$(MEMCACHED) -V
	@$(ALERTMANAGER) --version 2>&1 | head -n 1
	@$(S3S_FS) --version

## The criterion benchmarks are compiled (not run) so they cannot rot;
## `--bench '*'` builds only [[bench]] targets, not every crate's libtest
## harness in release mode.
test: k8s-validate test-deps
	$(CARGO) build --bins
	$(CARGO) bench --no-run --workspace --bench '*'
	$(TEST_SERVERS) $(CARGO) test --workspace --no-fail-fast

## The manifests in k8s/ against the Kubernetes API schemas, strict (an
## unknown field fails), then k8s/check.py: resources, probes and a
## PodDisruptionBudget for every workload.
k8s-validate:
	@if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
	  echo "installing Debian package python3-venv"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; \
	fi
	@if [ ! -x $(VENV)/bin/python ]; then python3 -m venv $(VENV); fi
	@stamp=$(VENV)/.kubernetes-validate-$(KUBERNETES_VALIDATE_VERSION)-pyyaml-$(PYYAML_VERSION); \
	if [ ! -e $$stamp ]; then \
	  echo "installing kubernetes-validate $(KUBERNETES_VALIDATE_VERSION) and PyYAML $(PYYAML_VERSION) into $(VENV)"; \
	  $(VENV)/bin/pip install -q --disable-pip-version-check \
	    kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION) PyYAML==$(PYYAML_VERSION) && touch $$stamp; \
	fi
	@for v in $(K8S_VERSIONS); do \
	  echo "kubernetes-validate --strict -k $$v"; \
	  $(VENV)/bin/kubernetes-validate --strict -k $$v $(K8S_MANIFESTS) || exit 1; \
	done
	$(VENV)/bin/python k8s/check.py $(K8S_MANIFESTS)

unit-test:
	$(CARGO) test --workspace --lib

e2e-test: test-deps
	$(CARGO) build --bins
	$(TEST_SERVERS) $(CARGO) test -p strata-e2e

## The whole benchmark: side by side at 100k and 1M active series (its own
## time budget, TIME_BUDGET, defaults to 1550 s with the build), then
## the ingest-path micro-benchmarks with short measurement windows
## (bench-micro also runs the PromQL engine benchmark).
bench: bench-compare
	$(CARGO) bench -p strata-remote-write --bench decode -- --warm-up-time 1 --measurement-time 2
	$(CARGO) bench -p strata-chunk --bench xor -- --warm-up-time 1 --measurement-time 2

## Criterion benchmarks of the hot paths; CRITERION_ARGS are passed on
## (e.g. --save-baseline before / --baseline before).
CRITERION_ARGS ?=
bench-micro:
	$(CARGO) bench -p strata-remote-write --bench decode -- $(CRITERION_ARGS)
	$(CARGO) bench -p strata-chunk --bench xor -- $(CRITERION_ARGS)
	$(CARGO) bench -p strata-promql --bench query -- $(CRITERION_ARGS)

## Side by side with Prometheus 2.42 and VictoriaMetrics, same generator and
## data (loadtest/README.md). Knobs: SERIES, SYSTEMS, INGEST_DURATION,
## TIME_BUDGET, ... (see loadtest/bench/compare.sh).
.PHONY: bench-compare
bench-compare: test-deps
	BENCH_VIA_MAKE="$(or $(MAKECMDGOALS),bench-compare)" loadtest/bench/compare.sh

## Coverage-guided fuzzing with cargo-fuzz (libFuzzer; crates.io, built
## once into .tmp/cargo) on stable Rust: no sanitizer (ASan needs nightly;
## the targets are safe Rust, a panic is the crash signal), release build
## with debug assertions and overflow checks. Seeds the corpora, runs each
## target FUZZ_SECONDS (FUZZ_ARGS go to libFuzzer), then minimises each
## corpus with cmin to a set cover of the edges (hit counts ignored, so a
## few hundred files stay, not thousands). The crate lives in fuzz/ (its
## own workspace, built in fuzz/target); a crashing input lands in
## fuzz/artifacts/<target>/ and fails the run (docs/fuzzing.md: how to
## reproduce and keep it).
CARGO_FUZZ := $(CARGO_PREFIX)/bin/cargo-fuzz
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TARGETS := remote_write promql
FUZZ_SECONDS ?= 60
FUZZ_ARGS ?=
FUZZ := PATH=$(CARGO_PREFIX)/bin:$$PATH $(CARGO) fuzz
FUZZ_BUILD := --sanitizer none
FUZZ_CMIN_ARGS := -use_counters=0 -set_cover_merge=1
fuzz:
	@if [ ! -x $(CARGO_FUZZ) ]; then \
	  echo "building cargo-fuzz $(CARGO_FUZZ_VERSION) from crates.io into $(CARGO_PREFIX)"; \
	  $(CARGO) install cargo-fuzz@$(CARGO_FUZZ_VERSION) --locked --root $(CARGO_PREFIX) --quiet \
	    && test -x $(CARGO_FUZZ); \
	fi
	$(CARGO) test -p strata-remote-write -p strata-promql --test fuzz_corpus -- --ignored write_seeds
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ) run $(FUZZ_BUILD) $$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 $(FUZZ_ARGS) || failed="$$failed $$t"; \
	  echo "minimising fuzz/corpus/$$t"; \
	  $(FUZZ) cmin $(FUZZ_BUILD) $$t -- $(FUZZ_CMIN_ARGS) || failed="$$failed $$t(cmin)"; \
	  echo "fuzz/corpus/$$t: $$(ls fuzz/corpus/$$t | wc -l) inputs, $$(du -sb fuzz/corpus/$$t | cut -f1) bytes"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzzing failed:$$failed (inputs in fuzz/artifacts/)"; exit 1; fi

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf .tmp
