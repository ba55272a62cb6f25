#!/usr/bin/env bash
# Sourced by scripts/e2e/run.sh: local stand-ins for the two base images when Docker Hub and
# gcr.io are out of reach. Built once and kept in the local registry, keyed on what they are
# built from (this file, the Rust version, the Debian suite).
#   rust:       Debian bookworm minbase + gcc + rustup toolchain with both musl targets,
#               laid out like the official rust image (RUSTUP_HOME, CARGO_HOME, PATH).
#   distroless: like gcr.io/distroless/static-debian13:nonroot: CA bundle, tzdata,
#               passwd/group with nonroot 65532, /tmp, /home/nonroot; no shell, no binaries.

STANDIN_SUITE=bookworm

standin_key() {
  { cat "${BASH_SOURCE[0]}" "$(dirname "${BASH_SOURCE[0]}")/distroless-standin.Dockerfile"
    echo "$1" "$STANDIN_SUITE"; } | sha256sum | cut -c1-12
}

registry_has() { # repo tag
  curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://${REGISTRY_ADDR}/v2/$1/manifests/$2"
}

# Builds (or finds) the stand-ins; sets RUST_IMAGE and DISTROLESS_IMAGE.
ensure_standins() {
  local rust_version=$1 key rootfs
  key=$(standin_key "$rust_version")
  RUST_IMAGE="$REGISTRY_ADDR/standin/rust:${rust_version}-${STANDIN_SUITE}-$key"
  DISTROLESS_IMAGE="$REGISTRY_ADDR/standin/distroless-static:nonroot-$key"
  rootfs="$E2E_STATE/standin-rootfs-$key"

  if registry_has standin/rust "${rust_version}-${STANDIN_SUITE}-$key"; then
    log "stand-in rust image cached: $RUST_IMAGE"
  else
    local t0=$SECONDS
    rm -rf "$E2E_STATE"/standin-rootfs-*
    log "debootstrap $STANDIN_SUITE for the rust stand-in"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates,tzdata \
      "$STANDIN_SUITE" "$rootfs" "$(debian_mirror)" >"$E2E_RUN/debootstrap.log" 2>&1 \
      || { tail -20 "$E2E_RUN/debootstrap.log" >&2; die "debootstrap failed"; }
    # Keep Debian's own CA bundle and zoneinfo for the distroless stand-in.
    mkdir -p "$E2E_STATE/distroless-src"
    cp "$rootfs/etc/ssl/certs/ca-certificates.crt" "$E2E_STATE/distroless-src/ca-certificates.crt"
    # The build containers reach crates.io through this host's TLS setup: trust what it trusts.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    cp "$(command -v rustup)" "$rootfs/rustup-init"
    log "installing Rust $rust_version in the stand-in"
    mount -t proc proc "$rootfs/proc"
    local rc=0
    chroot "$rootfs" env RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
      /rustup-init -y --no-modify-path --profile minimal --default-toolchain "$rust_version" \
      --target x86_64-unknown-linux-musl,aarch64-unknown-linux-musl >"$E2E_RUN/rustup.log" 2>&1 || rc=$?
    umount "$rootfs/proc"
    ((rc == 0)) || { tail -20 "$E2E_RUN/rustup.log" >&2; die "rustup in the stand-in failed"; }
    rm -f "$rootfs/rustup-init"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    log "importing the rust stand-in"
    tar -C "$rootfs" -c . | docker import \
      --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
      --change 'ENV CARGO_HOME=/usr/local/cargo' \
      --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "ENV RUST_VERSION=$rust_version" \
      - "$RUST_IMAGE" >/dev/null
    docker push -q "$RUST_IMAGE" >/dev/null
    cp -r "$rootfs/usr/share/zoneinfo" "$E2E_STATE/distroless-src/zoneinfo"
    rm -rf "$rootfs"
    log "rust stand-in ready in $((SECONDS - t0)) s"
  fi

  if registry_has standin/distroless-static "nonroot-$key"; then
    log "stand-in distroless image cached: $DISTROLESS_IMAGE"
  else
    local ctx="$E2E_RUN/distroless-ctx"
    [[ -s "$E2E_STATE/distroless-src/ca-certificates.crt" ]] || die "distroless sources missing; remove $E2E_STATE and rerun"
    rm -rf "$ctx" && mkdir -p "$ctx/etc/ssl/certs" "$ctx/usr/share" "$ctx/tmp" "$ctx/home/nonroot"
    cp "$E2E_STATE/distroless-src/ca-certificates.crt" "$ctx/etc/ssl/certs/"
    cp -r "$E2E_STATE/distroless-src/zoneinfo" "$ctx/usr/share/zoneinfo"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$ctx/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$ctx/etc/group"
    printf 'PRETTY_NAME="Distroless stand-in (httpserver e2e)"\nID=debian\n' >"$ctx/etc/os-release"
    chmod 1777 "$ctx/tmp"
    cp "$(dirname "${BASH_SOURCE[0]}")/distroless-standin.Dockerfile" "$ctx/Dockerfile"
    log "building the distroless stand-in (linux/amd64, linux/arm64)"
    docker buildx build -q --platform linux/amd64,linux/arm64 \
      --output "type=image,name=$DISTROLESS_IMAGE,push=true,registry.insecure=true" "$ctx" >/dev/null
  fi
}
