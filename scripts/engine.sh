#!/usr/bin/env bash
# `make engine` / `make engine-stop`: what building, running and publishing the images needs.
#   engine.sh up          prints the export lines to use it: eval "$(bash scripts/engine.sh up)"
#   engine.sh down        stops what `up` started, by PID, and undoes its host changes
#   engine.sh purge       down, then removes the Debian packages `up` and `deps` installed and
#                         deletes the state directory (downloads, images, build cache)
#   engine.sh deps GROUP... install-host-deps.sh's groups, recorded as up's are (purge removes them)
#   engine.sh tools       only the client tools (buildx plugin, cosign): export lines, no daemon
#   engine.sh host-state  what must be the same before and after (the image checks compare it)
#   engine.sh running     exit 0 while the private engine runs
#   engine.sh preflight   exit 0 where up can run (as root), else say why
#   engine.sh classic up|down  a second dockerd configured as a stock Docker with the classic
#                         image store, beside the private one; up prints its DOCKER_HOST
# up, down and purge need root (a dockerd, its namespaces and mounts, QEMU's binfmt handler);
# tools does not (as another user its state lives in ~/.cache/httpserver-engine).
#
# A working engine (`docker info` and `docker buildx` answer) is used as it is. Otherwise a
# private dockerd 28 (Debian's docker.io and docker-buildx, unpacked into the state
# directory: no package installed, no unit enabled) runs in its own network and mount
# namespaces. Its bridge, iptables chains, NAT and ip_forward live and die inside that
# namespace; slirp4netns gives it outbound access through ordinary host sockets (BuildKit's RUN
# steps fetch crates), and scripts/engine-port-proxy.sh publishes `-p 127.0.0.1:P:C` ports on
# the host. So the host's iptables, links, sysctls and units are never touched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ "$(id -u)" == 0 ]]; then default_state=/var/cache/httpserver-engine; else default_state=${XDG_CACHE_HOME:-$HOME/.cache}/httpserver-engine; fi
STATE=${ENGINE_STATE:-$default_state}
RUN=$STATE/run
ROOT=$STATE/root
EXEC_ROOT=/run/httpserver-engine
RUN_PATHS=(/run/docker /run/containerd /run/runc /run/docker.pid)
REGISTRY_PORT=${ENGINE_REGISTRY_PORT:-5000}

log() { printf '[engine %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# 0 once process $2 has ended, 1 if it still runs after $1 seconds.
wait_up_to() { local i; for ((i = 0; i < $1 * 5; i++)); do kill -0 "$2" 2>/dev/null || return 0; sleep 0.2; done; return 1; }
# Runs a long command, printing a line every 20 s so nobody wonders whether it hangs.
with_progress() { # label command...
  local label=$1 t0=$SECONDS pid rc=0
  "${@:2}" &
  pid=$!
  while ! wait_up_to 20 "$pid"; do log "$label: still running ($((SECONDS - t0)) s)"; done
  wait "$pid" || rc=$?
  ((rc == 0)) && log "$label: done in $((SECONDS - t0)) s"
  return "$rc"
}
# Polls (bounded) until a command succeeds.
until_ok() { # seconds what command...
  local i
  for ((i = 0; i < $1 * 4; i++)); do "${@:3}" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "$2 did not come up within $1 s (logs: $RUN)"
}

# Starts a command in its own session; its log and PID go to $RUN. It inherits neither the
# lock (fd 9) nor the caller's stdout (fd 8).
start() { # name command...
  setsid "${@:2}" >"$RUN/$1.log" 2>&1 </dev/null 8>&- 9>&- &
  echo "$! $(start_time $!)" >"$RUN/$1.pid" && echo "$1" >>"$RUN/started"
}
# A process's start time (clock ticks after boot): with its PID, it names that process and no
# later one that reuses the PID.
start_time() { local s f; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0; read -ra f <<<"${s##*) }"; echo "${f[19]}"; }
pid_of() { # the PID of a process start launched, while that very process runs
  local pid since
  [[ -f "$RUN/$1.pid" ]] && read -r pid since <"$RUN/$1.pid" || return 0
  if [[ -n "$since" && "$(start_time "$pid")" == "$since" ]]; then echo "$pid"; fi
}
any_alive() { local n; while read -r n; do alive "$n" && return 0; done <"$RUN/started"; return 1; }
alive() { local p; p=$(pid_of "$1"); [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; }
in_engine_ns() { nsenter --net="/proc/$(pid_of netns)/ns/net" --mount="/proc/$(pid_of netns)/ns/mnt" "$@"; }
own_netns() { [[ "$(readlink "/proc/$1/ns/net")" != "$(readlink /proc/$$/ns/net)" ]]; }

debian_mirror() ( # the first non-security Debian URI in the machine's apt sources
  set +o pipefail # a missing sources file, or head closing the pipe early, is no failure
  grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
    | grep -v security | grep -oE 'https?://[^ ]+/debian/?' | head -1 | grep . || echo http://deb.debian.org/debian
)

# The engine's packages, pinned: Debian forky's Docker 28 (the engine GitHub's runners and Docker
# Desktop run), containerd 2, buildx 0.29 and cosign 3 (the current one); trixie's cosign 2.5
# beside it as cosign-2 (make sign and make verify support both); runc from this machine's own
# release (forky's needs a newer glibc). Forky is Debian's testing suite: a pin the mirror no
# longer carries falls back to the suite's current version, with a warning.
ENGINE_SUITE=forky
ENGINE_PINS=(docker.io=28.5.2+dfsg4-5 docker-cli=28.5.2+dfsg4-5 docker-buildx=0.29.1+ds1-4
  containerd=2.1.9+ds1-5 docker-registry=2.8.3+ds1-3 cosign=3.1.1-2 tini=0.19.0-6+b2)
COSIGN2_SUITE=trixie
COSIGN2_PIN=cosign=2.5.0-2+b5

# Downloads PINS (package=version) from SUITE into DIR with a private apt state, so the machine's
# own apt sources and state stay untouched.
download_debs() { # suite dir pins...
  local apt=$STATE/apt/$1 pin
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$2"
  echo "deb $(debian_mirror) $1 main" >"$apt/sources.list"
  local opts=(-qq -o APT::Sandbox::User=root -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::Etc::SourceList=$apt/sources.list"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
  apt-get "${opts[@]}" update
  for pin in "${@:3}"; do
    (cd "$2" && apt-get "${opts[@]}" download "$pin" 2>/dev/null) && continue
    log "warning: $1 no longer has $pin; taking its current ${pin%%=*}"
    (cd "$2" && apt-get "${opts[@]}" download "${pin%%=*}" 2>/dev/null) || die "cannot download ${pin%%=*} from $1"
  done
}

# Unpacks the engine into $ROOT (cosign 2 into $ROOT/cosign-2) once per set of pins; links the
# client tools: the buildx plugin into a private DOCKER_CONFIG, cosign, cosign-2 (and docker if
# missing) into bin/.
fetch_packages() {
  local want="$ENGINE_SUITE ${ENGINE_PINS[*]} $COSIGN2_SUITE $COSIGN2_PIN" deb
  if [[ "$(cat "$ROOT/.pins" 2>/dev/null)" != "$want" ]]; then
    log "downloading the engine packages ($ENGINE_SUITE, runc from this machine's release, cosign 2 from $COSIGN2_SUITE)"
    rm -rf "$STATE/debs" && mkdir -p "$STATE/debs/engine" "$STATE/debs/cosign-2"
    download_debs "$ENGINE_SUITE" "$STATE/debs/engine" "${ENGINE_PINS[@]}"
    (cd "$STATE/debs/engine" && apt-get -qq download runc 2>/dev/null) || die "cannot download runc"
    download_debs "$COSIGN2_SUITE" "$STATE/debs/cosign-2" "$COSIGN2_PIN"
    rm -rf "$ROOT" && mkdir -p "$ROOT/cosign-2"
    for deb in "$STATE"/debs/engine/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
    dpkg-deb -x "$STATE"/debs/cosign-2/*.deb "$ROOT/cosign-2"
    echo "$want" >"$ROOT/.pins"
  fi
  mkdir -p "$STATE/bin" "$STATE/docker-config/cli-plugins"
  ln -sf "$ROOT/usr/bin/cosign" "$STATE/bin/cosign"
  ln -sf "$ROOT/cosign-2/usr/bin/cosign" "$STATE/bin/cosign-2"
  command -v docker >/dev/null 2>&1 || ln -sf "$ROOT/usr/bin/docker" "$STATE/bin/docker"
  ln -sf "$ROOT/usr/libexec/docker/cli-plugins/docker-buildx" "$STATE/docker-config/cli-plugins/"
}

start_private_engine() {
  fetch_packages
  # A process holding new network + mount namespaces (host mounts propagate in, not out).
  start netns unshare --net --mount --propagation slave sleep infinity
  until_ok 5 "the engine namespace" own_netns "$(pid_of netns)"
  in_engine_ns ip link set lo up
  start slirp4netns slirp4netns --configure --mtu=65520 --disable-host-loopback "$(pid_of netns)" tap0
  until_ok 10 "slirp4netns" in_engine_ns ip route get 1.1.1.1
  mkdir -p "$STATE/docker" && printf '{"hosts": ["unix://%s"], "data-root": "%s", "exec-root": "%s", "pidfile": "%s",
 "log-level": "warn", "features": {"containerd-snapshotter": true}, "userland-proxy-path": "%s"}\n' \
    "$RUN/docker.sock" "$STATE/docker" "$EXEC_ROOT" "$RUN/dockerd.pidfile" "$here/engine-port-proxy.sh" >"$RUN/daemon.json"
  log "starting a private dockerd in its own network namespace ($RUN/docker.sock)"
  start dockerd env PATH="$ROOT/usr/bin:$ROOT/usr/sbin:$PATH" ENGINE_HOST_NETNS="/proc/$(pid_of slirp4netns)/ns/net" \
    nsenter --net="/proc/$(pid_of netns)/ns/net" --mount="/proc/$(pid_of netns)/ns/mnt" \
    "$ROOT/usr/sbin/dockerd" --config-file "$RUN/daemon.json"
  until_ok 60 "dockerd" env DOCKER_HOST="unix://$RUN/docker.sock" docker info
}

# Debian's docker-registry (distribution 2.8) on 127.0.0.1. With the private engine it runs in
# the engine's namespace (pushes stay local) and the port proxy shows the same port on the host.
start_registry() {
  mkdir -p "$STATE/registry"
  printf 'version: 0.1\nlog: {level: warn}\nhttp: {addr: "127.0.0.1:%s"}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\n' \
    "$REGISTRY_PORT" "$STATE/registry" >"$RUN/registry.yml"
  if alive netns; then
    start registry nsenter --net="/proc/$(pid_of netns)/ns/net" "$ROOT/usr/bin/docker-registry" serve "$RUN/registry.yml"
    start registry-forward "$here/engine-port-proxy.sh" -proto tcp -host-ip 127.0.0.1 -host-port "$REGISTRY_PORT" \
      -container-ip 127.0.0.1 -container-port "$REGISTRY_PORT" -engine-netns "/proc/$(pid_of netns)/ns/net"
  else
    fetch_packages
    start registry "$ROOT/usr/bin/docker-registry" serve "$RUN/registry.yml"
  fi
  until_ok 20 "the registry on 127.0.0.1:$REGISTRY_PORT" curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
}

# QEMU for linux/arm64 containers (Debian's qemu-user-static registers it with the F flag).
ensure_binfmt() {
  [[ "$(uname -m)" == aarch64 || -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && return
  [[ -e /proc/sys/fs/binfmt_misc/register ]] \
    || { mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && echo binfmt-mount >>"$RUN/host-changes"; }
  update-binfmts --enable qemu-aarch64 || die "cannot register qemu-aarch64 (install qemu-user-static)"
  echo binfmt-qemu-aarch64 >>"$RUN/host-changes"
}

host_state() {
  iptables -S; iptables -t nat -S; ip -br link | awk '{print $1}'
  sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding; find /etc/systemd/system -path '*.wants/*' | sort
}

reachable() { timeout 30 docker buildx imagetools inspect "$1" >/dev/null 2>&1; }
rust_version() { bash "$here/bake-var.sh" RUST_VERSION; }

# The Debian packages of install-host-deps.sh's groups; those this installs are recorded, and
# purge removes them.
# binfmt_misc's entries are listed first: installing binfmt-support registers every known
# format (qemu's, python's, java's), and purging the packages leaves them registered.
install_recorded() {
  mkdir -p "$STATE"
  [[ -e "$STATE/binfmt-before" ]] || ls /proc/sys/fs/binfmt_misc >"$STATE/binfmt-before" 2>/dev/null || true
  bash "$here/install-host-deps.sh" --record "$STATE/installed-packages" "$@"
}
# Unregisters the binfmt_misc entries that were not there before the first install_recorded.
unregister_new_formats() {
  local entry gone=()
  [[ -f "$STATE/binfmt-before" ]] || return 0
  for entry in /proc/sys/fs/binfmt_misc/*; do
    [[ -e "$entry" ]] || continue
    case ${entry##*/} in register | status) continue ;; esac
    grep -qxF "${entry##*/}" "$STATE/binfmt-before" && continue
    echo -1 >"$entry" && gone+=("${entry##*/}")
  done
  ((${#gone[@]} == 0)) || log "unregistered what the purged packages left in binfmt_misc: ${gone[*]}"
}

need_root() {
  [[ "$(id -u)" == 0 ]] && return
  die "make engine, make e2e and make bench need root: they run a private dockerd in namespaces of its own, mount binfmt_misc and register QEMU. Run them as root (sudo env \"PATH=\$PATH\" make ...), or use a Docker you already have: make release and make push need no engine of this project's"
}

up() {
  need_root
  exec 8>&1 1>&2 # only the export lines go to stdout
  mkdir -p "$RUN"
  # A run directory whose processes have all gone (a reboot, a killed session: $STATE outlives
  # both) holds a host snapshot from back then and PIDs that may now name other processes.
  if [[ -s "$RUN/started" ]] && ! any_alive; then
    log "the last engine ended without make engine-stop: starting afresh, with a new host snapshot"
    rm -f "$RUN/started" "$RUN"/*.pid "$RUN/host-before" "$RUN/env.sh"
  fi
  install_recorded engine
  [[ -s "$RUN/host-before" ]] || host_state >"$RUN/host-before" 2>&1
  # What dockerd, containerd and runc create under the host's /run whatever they are told
  # (plugin and state directories): those absent now are removed by down.
  [[ -e "$RUN/run-created" ]] || for p in "${RUN_PATHS[@]}"; do [[ -e "$p" ]] || echo "$p"; done >"$RUN/run-created"
  exec 9>"$STATE/lock"
  flock -w 600 9 || die "another engine.sh holds $STATE/lock"
  local private=1 exports=()
  if alive dockerd; then
    log "the private engine is already running"
  elif [[ -z "${ENGINE_PRIVATE:-}" ]] && timeout 20 docker info >/dev/null 2>&1 && timeout 20 docker buildx version >/dev/null 2>&1; then
    private=0
    log "using the engine that answers (${DOCKER_HOST:-default socket})"
  else
    start_private_engine
  fi
  if ((private)); then
    export DOCKER_HOST="unix://$RUN/docker.sock" DOCKER_CONFIG="$STATE/docker-config"
    exports=("DOCKER_HOST=$DOCKER_HOST" "DOCKER_CONFIG=$DOCKER_CONFIG")
  else
    fetch_packages # cosign, and the registry below
  fi
  exports+=("PATH=$STATE/bin:\$PATH") # cosign (3), cosign-2, and docker where the machine has none
  ensure_binfmt
  alive registry || start_registry
  exports+=("REGISTRY=localhost:$REGISTRY_PORT")
  if [[ -z "${ENGINE_STANDINS:-}" ]] && reachable "docker.io/library/rust:$(rust_version)-slim-bookworm" \
     && reachable gcr.io/distroless/static-debian13:nonroot; then
    log "public base images reachable: using them"
  else
    log "public base images unreachable: using local stand-ins"
    # shellcheck source=scripts/standins.sh
    source "$here/standins.sh"
    ensure_standins "localhost:$REGISTRY_PORT" "$(rust_version)"
    exports+=("RUST_IMAGE=$RUST_IMAGE" "DISTROLESS_IMAGE=$DISTROLESS_IMAGE" "SBOM_GENERATOR=$SBOM_GENERATOR")
  fi
  printf 'export %s\n' "${exports[@]}" | tee "$RUN/env.sh" >&8
  log "ready: eval \"\$(make -s engine)\" in your shell; make engine-stop stops it"
}

# A second dockerd as a stock Docker Engine before 29 (Ubuntu's docker.io, an upgraded Docker
# Desktop) has it: the classic image store, whose `docker` driver cannot build two platforms at
# once. In network and mount namespaces of its own (a dockerd without a bridge removes the
# docker0 of the namespace it runs in), offline: it builds and runs nothing; the image checks
# run the make verbs' preflight against it. down stops it too.
classic() {
  need_root
  [[ -d "$RUN" ]] || die "engine.sh classic runs beside an engine: make engine first"
  case $1 in
    up)
      alive classic-dockerd || {
        mkdir -p "$STATE/classic-docker"
        printf '{"hosts": ["unix://%s"], "data-root": "%s", "exec-root": "%s", "pidfile": "%s", "bridge": "none",
 "iptables": false, "ip6tables": false, "log-level": "warn", "features": {"containerd-snapshotter": false}}\n' \
          "$RUN/classic.sock" "$STATE/classic-docker" "$RUN/classic-exec" "$RUN/classic.pidfile" >"$RUN/classic.json"
        start classic-dockerd env PATH="$ROOT/usr/bin:$ROOT/usr/sbin:$PATH" \
          unshare --net --mount --propagation slave "$ROOT/usr/sbin/dockerd" --config-file "$RUN/classic.json"
        until_ok 60 "the classic-store dockerd" env DOCKER_HOST="unix://$RUN/classic.sock" docker info
      }
      echo "unix://$RUN/classic.sock"
      ;;
    down)
      local pid
      pid=$(pid_of classic-dockerd)
      [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait_up_to 30 "$pid"
      rm -f "$RUN/classic-dockerd.pid"
      ;;
    *) die "usage: engine.sh classic up|down" ;;
  esac
}

down() {
  need_root
  [[ -d "$RUN" ]] || { log "nothing to stop"; return; }
  local name pid change
  for name in $(tac "$RUN/started" 2>/dev/null); do
    pid=$(pid_of "$name"); [[ -n "$pid" ]] || continue
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null && ! wait_up_to 30 "$pid" && log "$name ignored SIGTERM for 30 s: killing it"
    kill -KILL -- "-$pid" 2>/dev/null || true # and whatever it left in its session
  done
  for change in $(tac "$RUN/host-changes" 2>/dev/null); do
    case $change in
      binfmt-qemu-aarch64) update-binfmts --disable qemu-aarch64 || log "could not unregister qemu-aarch64" ;;
      binfmt-mount) umount /proc/sys/fs/binfmt_misc || log "could not unmount binfmt_misc" ;;
    esac
  done
  if diff <(host_state 2>&1) "$RUN/host-before" >&2; then
    log "host state (iptables, links, forwarding, enabled units) as before make engine"
  else
    log "warning: the host state differs from before make engine (diff above)"
  fi
  while read -r p; do [[ -n "$p" ]] && rm -rf "$p"; done <"$RUN/run-created" 2>/dev/null || true
  rm -rf "$RUN" "$EXEC_ROOT"
  log "stopped; state kept in $STATE ($(du -sh "$STATE" 2>/dev/null | cut -f1)): make engine-purge deletes it"
}

case ${1:-} in
  up | down) "$1" ;;
  purge)
    down
    if [[ -s "$STATE/installed-packages" ]]; then
      log "removing the Debian packages make engine and make e2e installed: $(sort -u "$STATE/installed-packages" | tr '\n' ' ')"
      # shellcheck disable=SC2046 # one word per package name
      DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $(sort -u "$STATE/installed-packages") >/dev/null
    fi
    unregister_new_formats
    rm -rf "$STATE"; log "deleted $STATE" ;;
  deps) need_root; install_recorded "${@:2}" ;;
  tools) fetch_packages >&2; printf 'export %s\n' "DOCKER_CONFIG=$STATE/docker-config" "PATH=$STATE/bin:\$PATH" ;;
  host-state) host_state ;;
  running) alive dockerd ;; # exit 0 while a private engine runs (make e2e then leaves it running)
  preflight) need_root ;;  # the verbs that bring an engine up say so before anything else
  classic) classic "${2:-}" ;;
  *) echo "usage: $0 up|down|purge|deps GROUP...|tools|host-state|running|preflight|classic up|down" >&2; exit 2 ;;
esac
