# check=skip=InvalidDefaultArgInFrom
# (RUST_IMAGE's default names RUST_VERSION, which has no default here on purpose: the version is
# written once, in docker-bake.hcl, which always passes it. BuildKit's check would warn on
# every build that the default alone is no image name.)
# A Rust service as a static musl binary in a scratch image, for linux/amd64 and linux/arm64:
# httpserver, or any crate (the build context is its workspace; PACKAGE and BINARY name it).
# Every build step runs on the build platform; arm64 is cross-compiled (rust-lld links, Debian's
# musl GCC wrappers compile C: .cargo/config.toml), so nothing executes under emulation. Build
# through docker-bake.hcl: it passes the tool versions (written there once), the named context
# `pipeline` (this repository: its cargo settings and scripts) and the image's metadata.

ARG RUST_VERSION
ARG RUST_IMAGE=docker.io/library/rust:${RUST_VERSION}-slim-bookworm
# Where the runtime stage takes the binary from: `builder` (release profile, cargo-chef
# layers), or `dev-builder` for `make image-dev` (the fast loop: no fat LTO, incremental).
ARG BINARY_STAGE=builder

# --- toolchain, cargo-chef and a C compiler for both musl targets, on the build platform -----
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS chef
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG CARGO_CHEF_VERSION
ARG CARGO_AUDITABLE_VERSION
ARG MUSL_VERSION
ARG CROSS_GCC_VERSION
ARG CMAKE_VERSION
ARG MAKE_VERSION
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
# C for the crates that compile it (ring, zstd, mimalloc, SQLite, AWS-LC...), through cc-rs and
# cmake-rs: Debian's musl GCC wrappers, x86_64-linux-musl-gcc (musl-dev) and
# aarch64-linux-musl-gcc (musl-dev:arm64, over the aarch64 cross GCC), and cmake with make.
# Pinned, as docker-bake.hcl names them (Debian bookworm's versions). No C++ compiler: Debian
# has no musl g++ (docs/images.md, "Adding a dependency that compiles C").
RUN dpkg --add-architecture arm64 \
 && apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends "musl-dev=${MUSL_VERSION}" "musl-dev:arm64=${MUSL_VERSION}" \
      "gcc-aarch64-linux-gnu=${CROSS_GCC_VERSION}" "cmake=${CMAKE_VERSION}" "make=${MAKE_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
# llvm-tools: llvm-objcopy splits the debug info out of the binary, for either architecture.
# cargo-auditable embeds the dependency list (.dep-v0) that SBOM scanners read.
RUN rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
 && rustup component add llvm-tools \
 && cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
 && cargo install cargo-auditable --locked --version "${CARGO_AUDITABLE_VERSION}" \
 && rm -rf "${CARGO_HOME}/registry" "${CARGO_HOME}/git"
# The pipeline's cargo settings (linker, link flags, the C compilers, one clock for C) as cargo's
# own configuration, so they apply to whatever workspace is built; and its debug-file layout.
# hadolint ignore=DL3022 # "pipeline" is a named build context (docker-bake.hcl), not a stage
COPY --from=pipeline .cargo/config.toml ${CARGO_HOME}/config.toml
# hadolint ignore=DL3022 # the same named context
COPY --from=pipeline --chmod=0755 scripts/split-debug.sh /usr/local/bin/split-debug.sh
WORKDIR /src

# --- dependency recipe: changes only when manifests or the lock file change ----------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- dependencies (cached layer keyed on the recipe), then the program ----------------------
FROM chef AS builder
ARG TARGETARCH
# The crate and binary to build, and cargo features (bake's PACKAGE, BINARY, FEATURES).
ARG PACKAGE
ARG BINARY
ARG FEATURES
RUN case "${TARGETARCH}" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH=${TARGETARCH}" >&2; exit 1 ;; \
    esac > /triple
COPY --from=planner /src/recipe.json recipe.json
# The crate download cache is shared by both platforms' builds: dependencies download once.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --locked --target "$(cat /triple)" --recipe-path recipe.json \
      --package "${PACKAGE}" ${FEATURES:+--features "${FEATURES}"}
COPY . .
# cargo auditable wraps only this crate's compilation: the cooked dependencies are reused.
# split-debug.sh (shared with `make build`) lays out the binary and its line tables by build id
# in /debug; the shipped binary, with its symbol table, moves to /BINARY. Their mtime is the
# commit's, so the layers they land in are the same from one build to the next.
ARG SOURCE_DATE_EPOCH=0
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo auditable build --release --locked --target "$(cat /triple)" \
      --package "${PACKAGE}" --bin "${BINARY}" ${FEATURES:+--features "${FEATURES}"} \
 && split-debug.sh "target/$(cat /triple)/release/${BINARY}" /debug \
 && mv "/debug/${BINARY}" "/${BINARY}" && rm "/debug/${BINARY}.debug"

# --- the fast loop (`make image-dev`): profile dev-image, the build directory in a cache
# mount so a one-file change recompiles that crate incrementally; no chef, no audit data.
FROM chef AS dev-builder
ARG TARGETARCH
ARG PACKAGE
ARG BINARY
ARG FEATURES
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,id=dev-target-${PACKAGE}-${TARGETARCH} \
    case "${TARGETARCH}" in amd64) triple=x86_64-unknown-linux-musl ;; arm64) triple=aarch64-unknown-linux-musl ;; esac \
 && CARGO_INCREMENTAL=1 cargo build --profile dev-image --locked --target "$triple" \
      --package "${PACKAGE}" --bin "${BINARY}" ${FEATURES:+--features "${FEATURES}"} \
 && cp "target/$triple/dev-image/${BINARY}" "/${BINARY}"

# hadolint ignore=DL3006 # a stage of this file, chosen by BINARY_STAGE
FROM ${BINARY_STAGE} AS binary

# --- the binary and its debug file by build id, for symbolizing profiles: exported by bake
# target debug-symbols, published as IMAGE:TAG-debug by `make push` (docs/profiling.md)
FROM scratch AS debug-symbols
COPY --from=builder /debug/ /

# --- runtime: nothing but the binary. This is the runtime block of every variant: the
# distroless one (Containerfile.distroless) starts from this image and adds its base's files.
# The original's labels; the OCI ones (title, version, ...) come from docker-bake.hcl.
# (Another service has its own runtime block, FROM the builder as here: tests/c-deps.)
FROM scratch AS runtime-scratch
COPY --from=binary /httpserver /httpserver
ENV MY_SERVICE_PORT=80
LABEL multi.l1="v1" multi.l2="v2" other="v3"
EXPOSE 80
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --start-interval=1s \
  CMD ["/httpserver", "healthcheck"]
ENTRYPOINT ["/httpserver"]
