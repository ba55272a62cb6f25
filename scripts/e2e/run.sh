#!/usr/bin/env bash
# `make e2e`: the images end to end on a real engine, registry and container runtime.
# Uses a working engine and the public base images where they are reachable; otherwise stands
# up a private dockerd + BuildKit + registry and local stand-in base images (cached in
# $E2E_STATE between runs). Prints a summary table; exits non-zero if any check failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=scripts/e2e
# shellcheck source=scripts/e2e/engine.sh
source "$here/engine.sh"
# shellcheck source=scripts/e2e/standins.sh
source "$here/standins.sh"

RUST_VERSION=${RUST_VERSION:-$(sed -n 's/^variable "RUST_VERSION" { default = "\(.*\)" }/\1/p' docker-bake.hcl)}
export IMAGE=${E2E_IMAGE:-httpserver-e2e}
export TAG=${E2E_TAG:-v1.0}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
# Logs of the last run stay here for inspection; scratch files are removed at exit.
WORK="$E2E_STATE/last-run"
rm -rf "$WORK" && mkdir -p "$WORK"
CONTAINERS=()
RESULTS=()
FAILED=0
E2E_T0=$SECONDS

# A check passes when the command after its name and figure succeeds.
verdict() { # check figure command...
  local name=$1 figure=$2
  shift 2
  if "$@"; then record "$name" PASS "$figure"; else record "$name" FAIL "$figure"; fi
}

record() { # check result figure
  RESULTS+=("$1|$2|$3")
  [[ "$2" == PASS ]] || FAILED=1
  log "$2 $1 ${3:+($3)}"
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  stop_started
  rm -rf "$WORK/tree" "$WORK"/oci-*
}
trap cleanup EXIT

summary() {
  printf '\n%-68s %-6s %s\n' CHECK RESULT FIGURE
  printf '%-68s %-6s %s\n' "--------------------------------------------------------------------" ------ ------
  local r
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r c res fig <<<"$r"
    printf '%-68s %-6s %s\n' "$c" "$res" "$fig"
  done
  printf '\ntotal e2e time: %d s\n' "$((SECONDS - E2E_T0))"
}

# ---------------------------------------------------------------- engine, registry, bases
mkdir -p "$E2E_STATE" "$E2E_RUN"
if [[ -z "${E2E_PRIVATE_ENGINE:-}" ]] && engine_usable; then
  log "using the existing engine (${DOCKER_HOST:-default socket})"
else
  install_engine_packages
  start_private_dockerd
fi
ensure_binfmt
start_registry
export REGISTRY=$REGISTRY_ADDR

if [[ -z "${E2E_STANDINS:-}" ]] \
  && timeout 60 docker buildx imagetools inspect "docker.io/library/rust:${RUST_VERSION}-slim-bookworm" >/dev/null 2>&1 \
  && timeout 60 docker buildx imagetools inspect gcr.io/distroless/static-debian13:nonroot >/dev/null 2>&1 \
  && timeout 60 docker buildx imagetools inspect docker.io/docker/buildkit-syft-scanner:stable-1 >/dev/null 2>&1; then
  log "public base images reachable: using them"
  BASES=public
else
  log "public base images unreachable: using local stand-ins"
  t=$SECONDS
  ensure_standins "$RUST_VERSION"
  export RUST_IMAGE DISTROLESS_IMAGE
  # BuildKit's SBOM scanner image lives on Docker Hub too; provenance is still attested.
  export SBOM=false
  BASES=standin
  record "stand-in base images ready" PASS "$((SECONDS - t)) s"
fi

# E2E_COLD=1: drop the build cache first, to measure a cold build with cached stand-ins.
if [[ -n "${E2E_COLD:-}" ]]; then
  log "E2E_COLD: pruning the build cache"
  docker buildx prune -af >/dev/null
  docker image rm -f "$IMAGE:$TAG" "$IMAGE:$TAG-distroless" >/dev/null 2>&1 || true
fi
SIZES="$WORK/image-sizes.tsv"
: >"$SIZES"

# ---------------------------------------------------------------- 1. make release
# Build for both platforms so the arm64 image can run under emulation too.
export LOCAL_PLATFORMS=linux/amd64,linux/arm64
t=$SECONDS
if make --no-print-directory release BAKE_FLAGS="--progress=plain" >"$WORK/release.log" 2>&1; then
  COLD=$((SECONDS - t))
  record "1. make release (both platforms, both variants; cold unless cached)" PASS "${COLD} s"
else
  tail -40 "$WORK/release.log" >&2
  record "1. make release" FAIL "see log above"
  summary; exit 1
fi
listed=$(docker images --filter label=multi.l1=v1 --filter label=multi.l2=v2 --filter label=other=v3 \
  --format '{{.Repository}}:{{.Tag}}')
for ref in "$IMAGE:$TAG" "$IMAGE:$TAG-distroless"; do
  if grep -qx "$ref" <<<"$listed"; then
    record "1. label filter lists $ref" PASS ""
  else
    record "1. label filter lists $ref" FAIL "listed: $(tr '\n' ' ' <<<"$listed")"
  fi
done

# ---------------------------------------------------------------- 2 + 3. run the images
# What every runtime image config carries, as docker inspect's .Config or the OCI config's .config.
CONFIG_OK='def config_ok: (.Env | index("MY_SERVICE_PORT=80") != null)
  and .Labels["multi.l1"] == "v1" and .Labels["multi.l2"] == "v2" and .Labels["other"] == "v3"
  and .User == "65532:65532" and .Entrypoint == ["/httpserver"]; '

http_get() { curl -fsS --max-time 5 "$1" 2>/dev/null; }

wait_healthz() { # url -> 0 when it answers ok
  local i
  for i in $(seq 1 150); do
    [[ "$(http_get "$1")" == ok ]] && return 0
    sleep 0.2
  done
  return 1
}

run_checks() { # ref platform label
  local ref=$1 platform=$2 label=$3 port name cid pid uid ins health i t code body
  port=$(free_port)
  name="httpserver-e2e-$$-$RANDOM"
  cid=$(docker run -d --platform "$platform" --name "$name" -p "127.0.0.1:$port:80" "$ref")
  CONTAINERS+=("$name")
  if wait_healthz "http://127.0.0.1:$port/healthz"; then
    body=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/healthz" | od -An -c | tr -s ' ')
    record "2. $label answers /healthz" PASS "body:$body"
  else
    record "2. $label answers /healthz" FAIL "$(docker logs "$name" 2>&1 | tail -3 | tr '\n' ' ')"
    return
  fi
  pid=$(docker inspect -f '{{.State.Pid}}' "$cid")
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  verdict "2. $label runs as uid 65532" "uid $uid" test "$uid" = 65532
  ins=$(docker inspect "$cid")
  if jq -e "$CONFIG_OK"'.[0].Config | config_ok
        and (.ExposedPorts | has("80/tcp"))
        and .Healthcheck.Test == ["CMD", "/httpserver", "healthcheck"]' <<<"$ins" >/dev/null; then
    record "2. $label inspect: env, labels, port, entrypoint, user" PASS ""
  else
    record "2. $label inspect: env, labels, port, entrypoint, user" FAIL \
      "$(jq -c '.[0].Config | {Env, Labels, ExposedPorts, Entrypoint, User, Healthcheck}' <<<"$ins")"
  fi
  health=starting
  for i in $(seq 1 60); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$cid")
    [[ "$health" == healthy ]] && break
    sleep 1
  done
  verdict "2. $label health status" "$health after ${i} s" test "$health" = healthy
  t=$(date +%s%N)
  docker stop -t 10 "$cid" >/dev/null
  t=$((($(date +%s%N) - t) / 1000000))
  code=$(docker inspect -f '{{.State.ExitCode}}' "$cid")
  if [[ "$code" == 0 ]] && ((t < 5000)); then
    record "2. $label docker stop" PASS "exit 0 in $t ms"
  else
    record "2. $label docker stop" FAIL "exit $code in $t ms"
  fi
}

nothing_extra() { # ref label
  local ref=$1 label=$2 port name size
  if docker run --rm --entrypoint /bin/sh "$ref" -c true >/dev/null 2>&1; then
    record "3. $label has no shell" FAIL "/bin/sh ran"
  else
    record "3. $label has no shell" PASS ""
  fi
  port=$(free_port)
  name="httpserver-e2e-ro-$$-$RANDOM"
  docker run -d --read-only --name "$name" -p "127.0.0.1:$port:80" "$ref" >/dev/null
  CONTAINERS+=("$name")
  if wait_healthz "http://127.0.0.1:$port/healthz"; then
    record "3. $label serves with --read-only" PASS ""
  else
    record "3. $label serves with --read-only" FAIL "$(docker logs "$name" 2>&1 | tail -3 | tr '\n' ' ')"
  fi
  docker rm -f "$name" >/dev/null
  size=$(docker image inspect -f '{{.Size}}' "$ref")
  record "3. $label image size, local $host_platform" PASS "$size bytes ($((size / 1024)) KiB)"
  printf '%s\t%s\n' "$label $host_platform (uncompressed, local)" "$size bytes" >>"$SIZES"
}

host_platform="linux/$(dpkg --print-architecture 2>/dev/null || echo amd64)"
run_checks "$IMAGE:$TAG" "$host_platform" "scratch $host_platform"
run_checks "$IMAGE:$TAG" linux/arm64 "scratch linux/arm64 (qemu)"
nothing_extra "$IMAGE:$TAG" scratch
run_checks "$IMAGE:$TAG-distroless" "$host_platform" "distroless $host_platform"
run_checks "$IMAGE:$TAG-distroless" linux/arm64 "distroless linux/arm64 (qemu)"
nothing_extra "$IMAGE:$TAG-distroless" distroless

# ---------------------------------------------------------------- 4. make push
PUSH_TAG="e2e-$(date +%s)"
t=$SECONDS
if make --no-print-directory push TAG="$PUSH_TAG" REGISTRY="$REGISTRY" BAKE_FLAGS="--progress=plain" >"$WORK/push.log" 2>&1; then
  record "4. make push to $REGISTRY" PASS "$((SECONDS - t)) s"
else
  tail -40 "$WORK/push.log" >&2
  record "4. make push to $REGISTRY" FAIL "see log above"
fi

check_index() { # ref label
  local ref=$1 label=$2 raw plats att arch cfg
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$ref") || { record "4. $label index" FAIL "cannot read $ref"; return; }
  plats=$(jq -r '[.manifests[] | select(.platform.os != "unknown") | "\(.platform.os)/\(.platform.architecture)"] | sort | join(",")' <<<"$raw")
  att=$(jq '[.manifests[] | select(.annotations["vnd.docker.reference.type"] == "attestation-manifest")] | length' <<<"$raw")
  verdict "4. $label index platforms" "$plats" test "$plats" = "linux/amd64,linux/arm64"
  local kinds=provenance
  [[ "${SBOM:-true}" == false ]] || kinds="provenance + sbom"
  verdict "4. $label attestation manifests" "$att ($kinds)" test "$att" -ge 2
  local repo=${ref%:*} digest
  for arch in amd64 arm64; do
    digest=$(jq -r --arg a "$arch" \
      '.manifests[] | select(.platform.os == "linux" and .platform.architecture == $a) | .digest' <<<"$raw")
    size=$(skopeo inspect --tls-verify=false --raw "docker://$repo@$digest" | jq '[.config.size, (.layers[].size)] | add')
    record "3. $label image size linux/$arch (compressed, registry)" PASS "$size bytes ($((size / 1024)) KiB)"
    printf '%s\t%s\n' "$label linux/$arch (compressed, registry)" "$size bytes" >>"$SIZES"
    cfg=$(skopeo inspect --tls-verify=false --config "docker://$repo@$digest")
    if jq -e "$CONFIG_OK"'.config | config_ok
          and (.Labels["org.opencontainers.image.version"] | length > 0)' <<<"$cfg" >/dev/null \
       && [[ "$(jq -r .architecture <<<"$cfg")" == "$arch" ]]; then
      record "4. $label $arch config: labels, env, user, entrypoint" PASS "$digest"
    else
      record "4. $label $arch config: labels, env, user, entrypoint" FAIL "$(jq -c '.config' <<<"$cfg")"
    fi
  done
}
check_index "$REGISTRY/$IMAGE:$PUSH_TAG" scratch
check_index "$REGISTRY/$IMAGE:$PUSH_TAG-distroless" distroless

# ---------------------------------------------------------------- 5. dependency cache
step_cached() { # log pattern: was the BuildKit step whose command matches cached?
  local id
  id=$(grep -E "^#[0-9]+ \[.*\] RUN .*$2" "$1" | head -1 | grep -oE '^#[0-9]+') || return 1
  grep -qE "^$id CACHED" "$1"
}

# Change one source file in a copy of the tree; the cook (dependency) layer must be reused.
copy="$WORK/tree"
mkdir -p "$copy"
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$copy"
echo "// e2e cache probe $(date +%s)" >>"$copy/src/routes.rs"
t=$SECONDS
if docker buildx bake -f docker-bake.hcl --progress=plain --set "image-local.context=$copy" \
     --set "image-local.platform=$host_platform" --set "image-local.tags=$IMAGE:cache-probe" \
     image-local >"$WORK/warm.log" 2>&1; then
  WARM=$((SECONDS - t))
  if step_cached "$WORK/warm.log" "cargo chef cook" && ! step_cached "$WORK/warm.log" "cargo build --release"; then
    record "5. one-file change reuses the cook layer" PASS "warm rebuild ${WARM} s (make release: ${COLD} s)"
  else
    record "5. one-file change reuses the cook layer" FAIL "cook step was rebuilt"
  fi
else
  tail -30 "$WORK/warm.log" >&2
  record "5. warm rebuild" FAIL "build failed"
fi

# ---------------------------------------------------------------- 6. reproducibility
# The docker driver refuses rewrite-timestamp on image exports; the OCI layout exporter supports it.
# The toolchain stage (chef: base image + cargo-chef) is an input and stays cached; every stage
# that compiles or assembles this program is rebuilt from nothing.
repro_build() { # platform out-dir log
  docker buildx build --progress=plain --platform "$1" --target runtime-scratch \
    --no-cache-filter planner,builder,runtime-scratch \
    --build-arg "RUST_IMAGE=${RUST_IMAGE:-docker.io/library/rust:${RUST_VERSION}-slim-bookworm}" \
    --build-arg "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" \
    --output "type=oci,dest=$2,tar=false,rewrite-timestamp=true" . >"$3" 2>&1
}
digests=()
for n in 1 2; do
  t=$SECONDS
  if repro_build linux/amd64 "$WORK/oci-$n" "$WORK/repro-$n.log"; then
    digests+=("$(jq -r '.manifests[0].digest' "$WORK/oci-$n/index.json")")
    record "   rebuild $n linux/amd64 from source (toolchain cached)" PASS "$((SECONDS - t)) s"
  else
    tail -30 "$WORK/repro-$n.log" >&2
    digests+=("build-failed-$n")
  fi
done
if [[ "${digests[0]}" == "${digests[1]}" && "${digests[0]}" == sha256:* ]]; then
  record "6. two rebuilds, same SOURCE_DATE_EPOCH: same digest" PASS "${digests[0]}"
else
  record "6. two rebuilds, same SOURCE_DATE_EPOCH: same digest" FAIL "${digests[*]}"
fi
# The same rebuild for arm64 (cross-compiled), for the amd64 vs arm64 build time.
t=$SECONDS
if repro_build linux/arm64 "$WORK/oci-arm64" "$WORK/repro-arm64.log"; then
  record "   rebuild linux/arm64 from source (toolchain cached)" PASS "$((SECONDS - t)) s"
else
  tail -30 "$WORK/repro-arm64.log" >&2
  record "   rebuild linux/arm64 from source" FAIL "build failed"
fi

record "bases used" PASS "$BASES"
cp "$SIZES" "$E2E_STATE/image-sizes.tsv"
summary | tee "$WORK/summary.txt"
exit "$FAILED"
