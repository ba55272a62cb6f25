#!/usr/bin/env bash
# build-pprof.sh OUT: Google's standalone pprof, built offline from the copy Go vendors for
# `go tool pprof` (GOROOT/src/cmd/vendor), into OUT: `make pprof`, and the tests' file:line
# checks. Unlike `go tool pprof` it symbolizes native binaries (with llvm-symbolizer or
# addr2line, and PPROF_BINARY_PATH). `go install github.com/google/pprof@latest` is no way here:
# it needs the module proxy, and google/pprof's go.mod asks for a newer Go than Debian 12's.
set -euo pipefail
out=$(realpath -m "$1")
goroot=$(go env GOROOT)
vendor=$goroot/src/cmd/vendor/github.com
[[ -d "$vendor/google/pprof/driver" ]] || { echo "build-pprof.sh: no pprof sources in $vendor (install golang-go: make deps)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src/github.com" "$dir/src/pprofmain" "$(dirname "$out")"
for pkg in google ianlancetaylor; do ln -s "$vendor/$pkg" "$dir/src/github.com/$pkg"; done
cat >"$dir/src/pprofmain/main.go" <<'GO'
package main

import "github.com/google/pprof/driver"

func main() {
	if err := driver.PProf(&driver.Options{}); err != nil {
		panic(err)
	}
}
GO
(cd "$dir" && GOPATH=$dir GO111MODULE=off go build -o "$out" pprofmain)
echo "$out: Google's pprof, from Go $(go env GOVERSION)'s vendored sources"
