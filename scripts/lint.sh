#!/usr/bin/env bash
# `make lint`: actionlint (workflows), hadolint (Dockerfiles), shellcheck (every shell script),
# and `docker buildx bake --print` for every target and group of docker-bake.hcl.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
step() { # name command...
  local name=$1
  shift
  if "$@"; then echo "lint: $name ok" >&2; else echo "lint: $name FAILED" >&2; status=1; fi
}

step actionlint actionlint
step hadolint hadolint Dockerfile Containerfile.distroless scripts/e2e/distroless-standin.Dockerfile
mapfile -t scripts < <(git ls-files -co --exclude-standard '*.sh' .ci/run)
step shellcheck shellcheck -x "${scripts[@]}"

# Every target and group must evaluate (variables, functions, inheritance, contexts).
mapfile -t bake_names < <(sed -nE 's/^(target|group) "([^"]+)".*/\2/p' docker-bake.hcl)
for name in "${bake_names[@]}"; do
  step "bake --print $name" docker buildx bake --print "$name" >/dev/null
done
exit "$status"
