#!/usr/bin/env bash
# `make bench`: builds both servers and runs bench/bench.py, which prints the table and
# writes BENCHMARKS.md. Not part of `make test` (timings are not assertions).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/engine.sh preflight # the image loop's rebuilds need an engine: root, said up front
bash scripts/install-host-deps.sh build bench
make --no-print-directory build
mkdir -p bench/out
# Debian's Go and glog in GOPATH mode: the Go module proxy is not reachable here.
(cd bench/goserver && GO111MODULE=off GOPATH=/usr/share/gocode go build -trimpath -o ../out/goserver .)
# Image sizes as the last `make e2e` measured them (tests/image writes this file).
sizes=target/tmp/image-tests/image-sizes.tsv
# The image loop's warm rebuilds need an engine: the one running, or a private one for this run.
bash scripts/install-host-deps.sh e2e
bash scripts/engine.sh running || trap 'bash scripts/engine.sh down' EXIT
env=$(bash scripts/engine.sh up) && eval "$env"
python3 bench/bench.py --ours bin/amd64/httpserver --go bench/out/goserver \
  --image-sizes "$sizes" --rebuilds --write BENCHMARKS.md "$@"
