#!/usr/bin/env bash
# image-preflight.sh VERB PLATFORMS [load] [registry]: before an image verb builds anything,
# whether the Docker at hand can do it; if not, one line saying exactly what to run, exit 2.
#   PLATFORMS  the platforms VERB builds at once (comma-separated)
#   load       the result goes into the engine's image store (make release)
#   registry   it pushes to $REGISTRY/... (make push without metadata-action's tags)
# Two platforms at once need a builder that can: the `docker` driver only with the containerd
# image store (Docker Desktop's default for new installs, Docker Engine 29's), any
# docker-container builder (GitHub Actions' setup-buildx-action makes one). Loading two
# platforms into the engine needs the containerd image store whatever the builder.
set -euo pipefail
verb=$1 platforms=$2
shift 2
load='' registry=''
for a in "$@"; do case $a in load) load=1 ;; registry) registry=1 ;; esac; done
fail() { echo "make $verb: $*" >&2; exit 2; }

docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info); start one, or run as root: eval \"\$(make -s engine)\""
docker buildx version >/dev/null 2>&1 || fail "docker buildx is missing: install the buildx plugin (Debian/Ubuntu: docker-buildx), or eval \"\$(make -s engine)\""
if [[ "$platforms" == *,* ]]; then
  driver=$(docker buildx inspect 2>/dev/null | awk '/^Driver:/ {print $2; exit}')
  containerd_store=
  docker info --format '{{range .DriverStatus}}{{index . 1}} {{end}}' 2>/dev/null | grep -q 'io.containerd.snapshotter' && containerd_store=1
  store_howto="turn on the containerd image store (Docker Desktop: Settings > General > \"Use containerd for pulling and storing images\"; dockerd: {\"features\": {\"containerd-snapshotter\": true}} in /etc/docker/daemon.json, then restart it)"
  if [[ -n "$load" && -z "$containerd_store" ]]; then
    fail "loading $platforms into this engine needs its containerd image store: $store_howto, or build one platform (LOCAL_PLATFORMS=)"
  fi
  if [[ "$driver" == docker && -z "$containerd_store" ]]; then
    fail "the builder $(docker buildx inspect 2>/dev/null | awk '/^Name:/ {print $2; exit}') (docker driver, classic image store) cannot build $platforms at once: $store_howto, or create a builder that can: docker buildx create --name multiplatform --driver docker-container --use"
  fi
fi
# A push to a registry on this machine (the default, localhost:5000) needs one listening there.
if [[ -n "$registry" ]]; then
  case ${REGISTRY:-} in
    localhost:* | 127.0.0.1:*)
      curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY/v2/" 2>/dev/null \
        || fail "no registry answers at $REGISTRY (make engine starts one there); push elsewhere with REGISTRY=ghcr.io/you after docker login ghcr.io"
      ;;
  esac
fi
