#!/usr/bin/env bash
# split-debug.sh BUILT OUT: the release binary as it ships, and its line tables beside it, in
# the one layout `make build` and the Dockerfile share (NAME is BUILT's file name):
#   OUT/NAME              symbol table kept, debug info stripped, debuglink to the file below
#   OUT/NAME.debug        the DWARF line tables
#   OUT/BUILD_ID/NAME{,.debug}        where pprof looks with PPROF_BINARY_PATH=OUT
#   OUT/.build-id/xx/rest.debug       where gdb and addr2line look
# The BUILD_ID and .build-id entries are hard links. With SOURCE_DATE_EPOCH set, the files
# carry that time, so image layers are the same from one build of a commit to the next.
set -euo pipefail
built=$1 out=$2
name=$(basename "$built")
host=$(rustc -vV | sed -n 's/host: //p')
# The toolchain's llvm-objcopy (rustup component llvm-tools) reads either architecture.
objcopy="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-objcopy"
mkdir -p "$out"
rm -rf "$out/.build-id" "${out:?}/$name" "$out/$name.debug"
"$objcopy" --only-keep-debug "$built" "$out/$name.debug"
"$objcopy" --strip-debug --add-gnu-debuglink="$out/$name.debug" "$built" "$out/$name"
[[ -z "${SOURCE_DATE_EPOCH:-}" ]] || touch -d "@$SOURCE_DATE_EPOCH" "$out/$name" "$out/$name.debug"
id=$(readelf -n "$out/$name" | sed -n 's/.*Build ID: //p')
[[ -n "$id" ]] || { echo "split-debug.sh: $built has no GNU build id" >&2; exit 1; }
# Only this build's id: an earlier build's BUILD_ID folder would otherwise stay beside it.
for dir in "$out"/*/; do
  [[ "$(basename "$dir")" =~ ^[0-9a-f]{40}$ ]] && rm -rf "$dir"
done
mkdir -p "$out/$id" "$out/.build-id/${id:0:2}"
ln "$out/$name" "$out/$name.debug" "$out/$id/"
ln "$out/$name.debug" "$out/.build-id/${id:0:2}/${id:2}.debug"
