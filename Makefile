# httpserver — build, test, package and publish. `make help` lists the targets.
# The Go original's verbs (root, build, release, push) keep their meaning.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export TAG ?= v1.0
export REGISTRY ?= localhost:5000
export IMAGE ?= httpserver
export VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
export REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Image timestamps come from the last commit, so rebuilding a commit gives the same image.
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
BAKE ?= docker buildx bake
CARGO ?= cargo
PORT ?= 8080

TRIPLE_amd64 := x86_64-unknown-linux-musl
TRIPLE_arm64 := aarch64-unknown-linux-musl
ARCHES := amd64 arm64
BINS := $(foreach a,$(ARCHES),bin/$(a)/httpserver)

.PHONY: help root deps build run test unit static-test fmt-check clippy lint release push e2e bench clean

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# The original's `root` exported ROOT, the project's root path; so does this one.
export ROOT := $(CURDIR)
root: ## Print the project root (ROOT), as the original's root target set it
	@echo "ROOT=$(ROOT)"

deps: ## Install what this machine lacks for build and test (rustup targets, qemu-user)
	bash scripts/install-host-deps.sh build test

build: deps ## Static musl binaries: bin/amd64/httpserver and bin/arm64/httpserver
	@$(MAKE) --no-print-directory $(BINS)
	@ls -l $(BINS)

# Cargo decides what is stale; make always asks it.
bin/%/httpserver: FORCE
	$(CARGO) build --release --locked --target $(TRIPLE_$*)
	@install -D -m 0755 target/$(TRIPLE_$*)/release/httpserver $@

FORCE:

run: ## Run the service on port 8080 (PORT=...), debug logs on
	$(CARGO) run --release --locked -- --port $(PORT) -v 1

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	$(CARGO) test --locked

static-test: build ## The release musl binaries: static, arm64 serves under qemu, profiles name our frames
	HTTPSERVER_BIN=$(CURDIR)/bin/amd64/httpserver HTTPSERVER_STATIC_DIR=$(CURDIR)/bin \
	  $(CARGO) test --locked --test release_build -- --include-ignored

test: deps fmt-check clippy unit static-test ## Everything: fmt, clippy, unit + integration tests, release build checks

lint: ## actionlint, hadolint, shellcheck, bake --print
	bash scripts/install-host-deps.sh lint
	bash scripts/lint.sh

release: ## Build the images with bake into the local engine: $(IMAGE):$(TAG) (scratch) and $(IMAGE):$(TAG)-distroless
	$(BAKE) $(BAKE_FLAGS) default

push: ## Bake the release group (scratch + distroless, linux/amd64 + linux/arm64) and push to $(REGISTRY)
	$(BAKE) $(BAKE_FLAGS) release --push

e2e: ## End-to-end: engine, registry, release, push, run, cache, reproducibility
	bash scripts/e2e/run.sh

bench: ## Benchmark against the Go original, side by side (writes BENCHMARKS.md)
	bash bench/run.sh

clean: ## Remove build outputs
	rm -rf bin target
