#!/usr/bin/env bash
# cosign-sign.sh REF...: `make sign`. Signs each image (REPO@DIGEST) and, with --recursive,
# every manifest under it. With COSIGN_KEY (and COSIGN_PASSWORD): that key. Without: keyless, a
# Fulcio certificate for the ambient OIDC identity (GitHub Actions' id-token).
# A registry on this machine (localhost:*, 127.0.0.1:*) is spoken to over plain HTTP and gets
# no transparency-log entry (a throwaway key's signatures have no place in the public log);
# anywhere else cosign records the signature in Sigstore's log, as it does by default.
# cosign 2 and 3 take different flags for that: cosign 3 takes its services from a signing
# config (and refuses --tlog-upload=false beside one), cosign 2 takes --tlog-upload=false.
# The installed one is asked which it is (Debian's builds report no version number).
set -euo pipefail
cosign=${COSIGN:-cosign}
(($#)) || { echo "cosign-sign.sh: no image to sign" >&2; exit 2; }
command -v "$cosign" >/dev/null || { echo "make sign: $cosign not found (eval \"\$(make -s engine)\" provides one)" >&2; exit 2; }
key=()
[[ -z "${COSIGN_KEY:-}" ]] || key=(--key "$COSIGN_KEY")
local_flags=(--allow-insecure-registry --allow-http-registry --tlog-upload=false)
if "$cosign" sign --help 2>&1 | grep -q -- '--signing-config'; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  "$cosign" signing-config create --out "$dir/no-tlog.json" # no services: no log, no timestamps
  local_flags=(--allow-insecure-registry --allow-http-registry --signing-config "$dir/no-tlog.json")
fi
for ref in "$@"; do
  flags=()
  case $ref in localhost:* | 127.0.0.1:*) flags=("${local_flags[@]}") ;; esac
  echo "signing $ref${COSIGN_KEY:+ with $COSIGN_KEY}"
  # ${a[@]+"${a[@]}"}: an empty array is no word, and no error in macOS's bash 3.2 either.
  "$cosign" sign --yes --recursive ${key[@]+"${key[@]}"} ${flags[@]+"${flags[@]}"} "$ref"
done
