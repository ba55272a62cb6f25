#!/usr/bin/env bash
# Sourced by scripts/e2e/run.sh: find a usable container engine, or stand up a private one
# (dockerd + containerd image store + buildx, on its own socket and data root) and a local
# registry. Never touches a user's own engine or configuration. See docs/local-engine.md.

E2E_STATE=${E2E_STATE:-/var/cache/httpserver-e2e}
E2E_RUN=${E2E_RUN:-$E2E_STATE/run}
STARTED_PIDS=()

log() { printf '[e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# Debian mirror the machine already uses (first non-security URI in its apt sources).
debian_mirror() {
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -v security | grep -oE 'https?://[^ ]+/debian/?' | head -1)
  echo "${uri:-http://deb.debian.org/debian}"
}

# A usable engine: answers, has buildx, and can build for linux/arm64.
engine_usable() {
  timeout 20 docker info >/dev/null 2>&1 && timeout 20 docker buildx version >/dev/null 2>&1
}

# docker.io and docker-buildx from Debian trixie, fetched with a private apt state so the
# machine's own sources stay untouched; their dependencies come from the machine's release.
install_engine_packages() {
  if command -v dockerd >/dev/null && [[ -x /usr/libexec/docker/cli-plugins/docker-buildx ]]; then
    return
  fi
  local apt="$E2E_STATE/apt" mirror
  mirror=$(debian_mirror)
  mkdir -p "$apt/lists/partial" "$apt/debs"
  echo "deb $mirror trixie main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$apt/lists" -o "APT::Get::List-Cleanup=0")
  log "fetching docker.io and docker-buildx from trixie ($mirror)"
  apt-get "${opts[@]}" update -qq
  (cd "$apt/debs" && apt-get "${opts[@]}" download docker.io docker-buildx -qq)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    containerd runc tini iptables >/dev/null
  # No init system here: keep package scripts from trying to start services.
  local had_policy=0
  [[ -e /usr/sbin/policy-rc.d ]] && had_policy=1
  ((had_policy)) || printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$apt"/debs/*.deb >/dev/null
  ((had_policy)) || rm -f /usr/sbin/policy-rc.d
}

# Starts dockerd on a private socket, data root and exec root; exports DOCKER_HOST.
start_private_dockerd() {
  local dir="$E2E_STATE/docker"
  mkdir -p "$dir/data" "$E2E_RUN"
  local sock="$E2E_RUN/docker.sock" exec_root="/run/httpserver-e2e-docker"
  cat >"$E2E_RUN/daemon.json" <<JSON
{
  "hosts": ["unix://$sock"],
  "data-root": "$dir/data",
  "exec-root": "$exec_root",
  "pidfile": "$E2E_RUN/docker.pid",
  "features": {"containerd-snapshotter": true},
  "log-level": "warn"
}
JSON
  # A daemon left behind by an interrupted run of this harness (its pidfile, our config): stop it.
  local old
  old=$(cat "$E2E_RUN/docker.pid" 2>/dev/null || true)
  if [[ -n "$old" ]] && grep -qa "$E2E_RUN/daemon.json" "/proc/$old/cmdline" 2>/dev/null; then
    log "stopping a private dockerd left by an earlier run (pid $old)"
    kill -TERM "$old"
    for _ in $(seq 1 60); do kill -0 "$old" 2>/dev/null || break; sleep 0.5; done
  fi
  log "starting a private dockerd ($sock)"
  setsid dockerd --config-file "$E2E_RUN/daemon.json" >"$E2E_RUN/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  STARTED_PIDS+=("$DOCKERD_PID")
  export DOCKER_HOST="unix://$sock"
  local i
  for i in $(seq 1 120); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$E2E_RUN/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.5
  done
  tail -20 "$E2E_RUN/dockerd.log" >&2
  die "dockerd did not answer within 60 s"
}

ensure_binfmt() {
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 || "$(uname -m)" == aarch64 ]] && return
  [[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 || die "cannot register qemu-aarch64 with binfmt_misc"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Debian's docker-registry (distribution 2.8) on 127.0.0.1, storage in the state dir.
start_registry() {
  local port=${E2E_REGISTRY_PORT:-5000}
  python3 -c "import socket,sys; socket.socket().bind(('127.0.0.1', $port))" 2>/dev/null || port=$(free_port)
  mkdir -p "$E2E_STATE/registry"
  cat >"$E2E_RUN/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $E2E_STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  setsid docker-registry serve "$E2E_RUN/registry.yml" >"$E2E_RUN/registry.log" 2>&1 &
  REGISTRY_PID=$!
  STARTED_PIDS+=("$REGISTRY_PID")
  REGISTRY_ADDR="localhost:$port"
  local i
  for i in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { log "registry on $REGISTRY_ADDR"; return 0; }
    sleep 0.5
  done
  tail -20 "$E2E_RUN/registry.log" >&2
  die "registry did not answer"
}

# Stops what this run started, by PID, newest first.
stop_started() {
  local i pid
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${STARTED_PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  STARTED_PIDS=()
}
