#!/usr/bin/env bash
# dockerd's userland proxy (daemon.json "userland-proxy-path") for the private engine, whose
# containers live in the engine's own network namespace: listens on HOST-IP:HOST-PORT in the
# host's namespace ($ENGINE_HOST_NETNS) and forwards each connection to CONTAINER-IP:PORT from
# inside the engine's namespace. Same arguments and readiness protocol as docker-proxy ("0"
# on fd 3 once listening). scripts/engine.sh also uses it to show the registry on the host.
set -euo pipefail
engine_ns=/proc/$$/ns/net
host_ns=${ENGINE_HOST_NETNS:-/proc/$$/ns/net}
while (($# > 1)); do
  case $1 in
    -proto) proto=$2 ;; -host-ip) host_ip=$2 ;; -host-port) host_port=$2 ;;
    -container-ip) container_ip=$2 ;; -container-port) container_port=$2 ;; -engine-netns) engine_ns=$2 ;;
  esac
  shift 2
done
ready() { { printf '%s\n' "$@" >&3; } 2>/dev/null || true; }
[[ ${proto:-} == tcp ]] || { ready 1 "only TCP ports can be published by the private engine"; exit 1; }
case $host_ip in *:*) listen="TCP6-LISTEN:$host_port,bind=[$host_ip],ipv6only=1" ;; *) listen="TCP4-LISTEN:$host_port,bind=$host_ip" ;; esac
case $container_ip in *:*) target="TCP6:[$container_ip]:$container_port" ;; *) target="TCP4:$container_ip:$container_port" ;; esac
nsenter --net="$host_ns" socat "$listen,reuseaddr,fork" "EXEC:nsenter --net=$engine_ns socat STDIO ${target//:/\\:}" &
child=$!
trap 'kill "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
# Ready once the listening socket exists in the host's namespace (bounded: 5 s).
for _ in $(seq 1 50); do
  if nsenter --net="$host_ns" ss -Hltn "sport = :$host_port" | grep -q .; then
    ready 0 && exec 3>&- && wait "$child" && exit 0
  fi
  kill -0 "$child" 2>/dev/null || break
  sleep 0.1
done
ready 1 "cannot listen on $host_ip:$host_port"
exit 1
