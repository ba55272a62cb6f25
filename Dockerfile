# check=skip=InvalidDefaultArgInFrom
# (RUST_IMAGE's default names RUST_VERSION, which has no default here on purpose: the version is
# written once, in docker-bake.hcl, which always passes it. BuildKit's check would warn on
# every build that the default alone is no image name.)
# httpserver: static musl binary in a scratch image, for linux/amd64 and linux/arm64.
# Every build step runs on the build platform; arm64 is cross-compiled (rust-lld, see
# .cargo/config.toml), so nothing executes under emulation. Build through docker-bake.hcl:
# it passes the tool versions (written there once) and the image's metadata.

ARG RUST_VERSION
ARG RUST_IMAGE=docker.io/library/rust:${RUST_VERSION}-slim-bookworm
# Where the runtime stage takes /httpserver from: `builder` (release profile, cargo-chef
# layers), or `dev-builder` for `make image-dev` (the fast loop: no fat LTO, incremental).
ARG BINARY_STAGE=builder

# --- toolchain + cargo-chef, on the build platform ------------------------------------------
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS chef
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG CARGO_CHEF_VERSION
ARG CARGO_AUDITABLE_VERSION
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
# llvm-tools: llvm-objcopy splits the debug info out of the binary, for either architecture.
# cargo-auditable embeds the dependency list (.dep-v0) that SBOM scanners read.
RUN rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
 && rustup component add llvm-tools \
 && cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
 && cargo install cargo-auditable --locked --version "${CARGO_AUDITABLE_VERSION}" \
 && rm -rf "${CARGO_HOME}/registry" "${CARGO_HOME}/git"
WORKDIR /src

# --- dependency recipe: changes only when manifests or the lock file change ----------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- dependencies (cached layer keyed on the recipe), then the program ----------------------
FROM chef AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG TARGETARCH
RUN case "${TARGETARCH}" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH=${TARGETARCH}" >&2; exit 1 ;; \
    esac > /triple
COPY .cargo .cargo
COPY --from=planner /src/recipe.json recipe.json
# The crate download cache is shared by both platforms' builds: dependencies download once.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --locked --target "$(cat /triple)" --recipe-path recipe.json
COPY . .
# cargo auditable wraps only this crate's compilation: the cooked dependencies are reused.
# split-debug.sh (shared with `make build`) lays out the binary and its line tables by build id
# in /debug; the shipped binary, with its symbol table, moves to /httpserver. Their mtime is
# the commit's, so the layers they land in are the same from one build to the next.
ARG SOURCE_DATE_EPOCH=0
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo auditable build --release --locked --target "$(cat /triple)" \
 && bash scripts/split-debug.sh "target/$(cat /triple)/release/httpserver" /debug \
 && mv /debug/httpserver /httpserver && rm /debug/httpserver.debug

# --- the fast loop (`make image-dev`): profile dev-image, the build directory in a cache
# mount so a one-file change recompiles that crate incrementally; no chef, no audit data.
FROM chef AS dev-builder
ARG TARGETARCH
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,id=httpserver-dev-target-${TARGETARCH} \
    case "${TARGETARCH}" in amd64) triple=x86_64-unknown-linux-musl ;; arm64) triple=aarch64-unknown-linux-musl ;; esac \
 && CARGO_INCREMENTAL=1 cargo build --profile dev-image --locked --target "$triple" \
 && cp "target/$triple/dev-image/httpserver" /httpserver

# hadolint ignore=DL3006 # a stage of this file, chosen by BINARY_STAGE
FROM ${BINARY_STAGE} AS binary

# --- the binary and its debug file by build id, for symbolizing profiles: exported by bake
# target debug-symbols, published as IMAGE:TAG-debug by `make push` (docs/profiling.md)
FROM scratch AS debug-symbols
COPY --from=builder /debug/ /

# --- runtime: nothing but the binary. This is the runtime block of every variant: the
# distroless one (Containerfile.distroless) starts from this image and adds its base's files.
# The original's labels; the OCI ones (title, version, ...) come from docker-bake.hcl.
FROM scratch AS runtime-scratch
COPY --from=binary /httpserver /httpserver
ENV MY_SERVICE_PORT=80
LABEL multi.l1="v1" multi.l2="v2" other="v3"
EXPOSE 80
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --start-interval=1s \
  CMD ["/httpserver", "healthcheck"]
ENTRYPOINT ["/httpserver"]
