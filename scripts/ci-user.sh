#!/usr/bin/env bash
# ci-user.sh JOB: replays .github/workflows/ci.yml's job JOB the way GitHub's ubuntu-24.04
# runner runs it: as an unprivileged user with its own HOME and passwordless sudo, a fresh
# rustup (minimal profile, stable as its default toolchain, nothing else installed), CI=true, in
# a clone of this checkout's HEAD, each `run:` step in order with `bash -e` (the `uses:` set-up
# steps, checkout and caches, have nothing to do here). As root; the user, its home, its
# sudoers entry, and sudo itself where this installed it, are removed afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
job=${1:?usage: ci-user.sh JOB}
user=${CI_USER:-ci-runner}
home=/home/$user
sudoers=/etc/sudoers.d/httpserver-ci-user
log() { printf '[ci-user %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
[[ "$(id -u)" == 0 ]] || { log "needs root: it creates and removes the user $user"; exit 2; }
! id "$user" >/dev/null 2>&1 || { log "user $user exists already: remove it (userdel -r $user) or set CI_USER"; exit 2; }

# The job's run: steps, read from the workflow with PyYAML (the tools venv, make lint's).
python=$here/target/tools-venv/bin/python
[[ -x "$python" ]] || bash "$here/scripts/install-host-deps.sh" k8s >&2
mapfile -t steps < <("$python" - "$here/.github/workflows/ci.yml" "$job" <<'EOF'
import sys, yaml
steps = yaml.safe_load(open(sys.argv[1]))["jobs"][sys.argv[2]]["steps"]
for s in steps:
    if "run" in s:
        assert "\n" not in s["run"].strip(), "one command per run: step"
        print(s["run"].strip())
    else:
        print("# uses: " + s["uses"])
EOF
)

installed_sudo=
cleanup() {
  log "removing $user, its home and $sudoers${installed_sudo:+, and sudo}"
  pkill -KILL -u "$user" 2>/dev/null || true
  userdel -r "$user" 2>/dev/null || log "userdel -r $user failed"
  rm -f "$sudoers"
  # Debian's sudo refuses its own removal unless told (it guards machines without a root password).
  if [[ -n "$installed_sudo" ]]; then
    SUDO_FORCE_REMOVE=yes DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq sudo >/dev/null
    rm -rf /run/sudo # its timestamps
  fi
}
trap cleanup EXIT
if ! command -v sudo >/dev/null; then
  log "installing sudo (removed again at the end)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sudo >/dev/null
  installed_sudo=1
fi
useradd --create-home --shell /bin/bash "$user"
echo "$user ALL=(ALL) NOPASSWD:ALL" >"$sudoers" && chmod 0440 "$sudoers"

# As the user, with its own environment: the runner's (HOME, PATH with ~/.cargo/bin, CI=true),
# plus this machine's CA settings (its registries' TLS passes a proxy only that CA vouches for).
as_user() {
  local env=(HOME="$home" USER="$user" LOGNAME="$user"
    PATH="$home/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    CI=true CARGO_TERM_COLOR=never LANG=C.UTF-8)
  local v
  for v in SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE GIT_SSL_CAINFO PIP_CERT REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS; do
    [[ -z "${!v:-}" ]] || env+=("$v=${!v}")
  done
  runuser -u "$user" -- env -i "${env[@]}" "$@"
}
log "rustup for $user: minimal profile, stable as default (as on GitHub's runner)"
install -o "$user" -m 0755 "$(command -v rustup)" "$home/rustup-init"
as_user "$home/rustup-init" -y -q --no-modify-path --profile minimal --default-toolchain stable >&2
rm -f "$home/rustup-init"
# Cloned by root and handed over: git would refuse to read root's repository as the user.
git clone -q "$here" "$home/httpserver" && chown -R "$user:" "$home/httpserver"
log "$user replays ci.yml's job $job in a clone of $(git -C "$here" rev-parse --short HEAD)"
for step in "${steps[@]}"; do
  if [[ "$step" == "# "* ]]; then log "skipping ${step#\# } (a set-up step)"; continue; fi
  log "$user: $step"
  t0=$SECONDS
  (cd "$home/httpserver" && as_user bash -e -o pipefail -c "$step") || { log "$user: $step failed"; exit 1; }
  log "$user: $step passed in $((SECONDS - t0)) s"
done
