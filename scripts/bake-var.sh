#!/usr/bin/env bash
# bake-var.sh NAME: the default of docker-bake.hcl's variable NAME. Tool versions are written
# there once (RUST_VERSION, CARGO_CHEF_VERSION, CARGO_AUDITABLE_VERSION): the images get them
# as build args, and the Makefile and scripts read them with this.
set -euo pipefail
sed -n "s/^variable \"$1\" { default = \"\(.*\)\" }/\1/p" "$(dirname "$0")/../docker-bake.hcl" | grep . \
  || { echo "docker-bake.hcl has no variable $1 with a default" >&2; exit 1; }
