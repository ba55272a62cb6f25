# httpserver: static musl binary in a scratch image, for linux/amd64 and linux/arm64.
# Every build step runs on the build platform; arm64 is cross-compiled (rust-lld, see
# .cargo/config.toml), so nothing executes under emulation. Build through docker-bake.hcl.

ARG RUST_VERSION=1.95.0
ARG RUST_IMAGE=docker.io/library/rust:${RUST_VERSION}-slim-bookworm
ARG CARGO_CHEF_VERSION=0.1.78
ARG CARGO_AUDITABLE_VERSION=0.7.7

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
# The line tables go to /debug/BUILD_ID/httpserver.debug beside a copy of the binary (pprof
# looks up PPROF_BINARY_PATH/BUILD_ID/httpserver, addr2line follows its debuglink) and to
# /debug/.build-id/xx/rest.debug (gdb's layout); the shipped binary keeps its symbol table.
# Its mtime is the commit's, so the layers it lands in are the same from one build to the next.
ARG SOURCE_DATE_EPOCH=0
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo auditable build --release --locked --target "$(cat /triple)" \
 && objcopy="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/host: //p')/bin/llvm-objcopy" \
 && bin="target/$(cat /triple)/release/httpserver" \
 && "$objcopy" --only-keep-debug "$bin" /httpserver.debug \
 && "$objcopy" --strip-debug --add-gnu-debuglink=/httpserver.debug "$bin" /httpserver \
 && touch -d "@${SOURCE_DATE_EPOCH}" /httpserver /httpserver.debug \
 && id="$(readelf -n /httpserver | sed -n 's/.*Build ID: //p')" \
 && rest="${id#??}" && dir="/debug/.build-id/${id%"$rest"}" \
 && mkdir -p "/debug/$id" "$dir" \
 && cp -p /httpserver /httpserver.debug "/debug/$id/" \
 && ln "/debug/$id/httpserver.debug" "$dir/$rest.debug" \
 && rm /httpserver.debug

# --- the binary and its debug file by build id, for symbolizing profiles: exported by bake
# target debug-symbols, published as IMAGE:TAG-debug by `make push` (see docs/debug-symbols.md)
FROM scratch AS debug-symbols
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/httpserver/httpserver
COPY --from=builder /debug/ /
LABEL org.opencontainers.image.title="httpserver debug symbols" \
      org.opencontainers.image.description="Binary and split debug file of httpserver, by GNU build id, for PPROF_BINARY_PATH" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# --- runtime: nothing but the binary ---------------------------------------------------------
FROM scratch AS runtime-scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/httpserver/httpserver
COPY --from=builder /httpserver /httpserver
ENV MY_SERVICE_PORT=80
LABEL multi.l1="v1" multi.l2="v2" other="v3" \
      org.opencontainers.image.title="httpserver" \
      org.opencontainers.image.description="Small HTTP service: health, readiness, pprof-compatible profiling" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT"
EXPOSE 80
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --start-interval=1s \
  CMD ["/httpserver", "healthcheck"]
ENTRYPOINT ["/httpserver"]
