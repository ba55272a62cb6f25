# shellcheck shell=sh
# BuildKit's SBOM generator protocol
# (https://github.com/moby/buildkit/blob/master/docs/attestations/sbom-protocol.md): scan
# $BUILDKIT_SCAN_SOURCE, and every directory in $BUILDKIT_SCAN_SOURCE_EXTRAS, with syft, and
# write each SPDX document, wrapped in an in-toto statement, to
# $BUILDKIT_SCAN_DESTINATION/<name>.spdx.json.
#
# The same image gives the same statement, where syft would write the clock and a random UUID:
# `created` is the newest modification time in the scanned filesystem (the Dockerfile stamps
# the binary with the commit's SOURCE_DATE_EPOCH; BuildKit passes the generator no build
# argument), and the document namespace is named by the document's own hash.
set -eu
b=/busybox

scan() { # rootfs
  name=$($b basename "$1") && raw=/tmp/$($b basename "$1").spdx.raw
  newest=$($b find "$1" -type f -exec $b stat -c %Y {} + | $b sort -n | $b tail -n 1)
  /syft scan "dir:$1" -q -o "spdx-json=$raw"
  $b sed -i -e "s/\"created\":\"[^\"]*\"/\"created\":\"$($b date -u -d "@${newest:-0}" +%Y-%m-%dT%H:%M:%SZ)\"/" \
    -e 's/"documentNamespace":"[^"]*"/"documentNamespace":"NAMESPACE"/' "$raw"
  hash=$($b sha256sum "$raw" | $b cut -c1-64)
  $b sed "s|\"documentNamespace\":\"NAMESPACE\"|\"documentNamespace\":\"https://spdx.org/spdxdocs/$name-$hash\"|" "$raw" \
    | { printf '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","predicate":'
        $b cat && printf '}'; } >"$BUILDKIT_SCAN_DESTINATION/$name.spdx.json"
}

scan "$BUILDKIT_SCAN_SOURCE"
for extra in "${BUILDKIT_SCAN_SOURCE_EXTRAS:-/nonexistent}"/*; do if [ -d "$extra" ]; then scan "$extra"; fi; done
