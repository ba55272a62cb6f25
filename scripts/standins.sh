#!/usr/bin/env bash
# Sourced by scripts/engine.sh: local stand-ins for the public base images when Docker Hub and
# gcr.io are out of reach, built once and kept in the local registry under a key of what they
# are built from (this file, scripts/standins/, the Rust version, the Debian suite).
#   rust:       Debian bookworm minbase + gcc + rustup toolchain with both musl targets,
#               laid out like the official rust image (RUSTUP_HOME, CARGO_HOME, PATH).
#   distroless: scripts/standins/distroless/, like gcr.io/distroless/static-debian13:nonroot.
STANDIN_SUITE=bookworm
standin_dir=$(dirname "${BASH_SOURCE[0]}")/standins

standin_key() { # rust-version
  { cat "${BASH_SOURCE[0]}"; find "$standin_dir" -type f | sort | xargs cat; echo "$1 $STANDIN_SUITE"; } \
    | sha256sum | cut -c1-12
}

registry_has() { # registry/repo:tag
  local ref=${1#*/} registry=${1%%/*}
  curl -fs -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$registry/v2/${ref%:*}/manifests/${ref##*:}"
}

# debootstrap, then rustup in a chroot whose /proc is mounted in a private mount namespace (so
# it goes away with the process, whatever happens), then `docker import` and push.
build_rust_image() { # image rust-version
  local rootfs=$STATE/standin-rootfs
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates,tzdata \
    "$STANDIN_SUITE" "$rootfs" "$(debian_mirror)" >"$RUN/debootstrap.log" 2>&1 \
    || { tail -20 "$RUN/debootstrap.log" >&2; return 1; }
  # Build containers reach crates.io through this host's TLS setup: trust what it trusts.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  cp "$(command -v rustup)" "$rootfs/rustup-init"
  # shellcheck disable=SC2016 # $1/$2 expand in the inner sh, which gets them as arguments
  unshare --mount --propagation private sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" \
      env RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo /rustup-init -y --no-modify-path \
      --profile minimal --default-toolchain "$2" --target x86_64-unknown-linux-musl,aarch64-unknown-linux-musl' \
    sh "$rootfs" "$2" >"$RUN/rustup.log" 2>&1 || { tail -20 "$RUN/rustup.log" >&2; return 1; }
  rm -rf "$rootfs/rustup-init" "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV RUST_VERSION=$2" - "$1" >/dev/null
  rm -rf "$rootfs"
  docker push -q "$1" >/dev/null
}

# Sets RUST_IMAGE and DISTROLESS_IMAGE, building what the registry does not have yet.
ensure_standins() { # registry rust-version
  local key
  key=$(standin_key "$2")
  RUST_IMAGE="$1/standin/rust:$2-$STANDIN_SUITE-$key"
  DISTROLESS_IMAGE="$1/standin/distroless-static:nonroot-$key"
  if registry_has "$RUST_IMAGE"; then
    log "stand-in cached: $RUST_IMAGE"
  else
    with_progress "rust stand-in: debootstrap $STANDIN_SUITE, Rust $2, import, push" build_rust_image "$RUST_IMAGE" "$2"
  fi
  if registry_has "$DISTROLESS_IMAGE"; then
    log "stand-in cached: $DISTROLESS_IMAGE"
  else
    with_progress "distroless stand-in (linux/amd64, linux/arm64)" docker buildx build -q \
      --platform linux/amd64,linux/arm64 --build-arg "DEBIAN_IMAGE=$RUST_IMAGE" \
      --output "type=image,name=$DISTROLESS_IMAGE,push=true,registry.insecure=true" "$standin_dir/distroless" >/dev/null
  fi
}
