// httpserver images. `docker buildx bake` builds the host-platform images into the local
// engine; `docker buildx bake release --push` publishes both variants for linux/amd64 and
// linux/arm64. The Makefile's release/push verbs call these targets.

variable "REGISTRY" { default = "localhost:5000" }
variable "IMAGE" { default = "httpserver" }
variable "TAG" { default = "v1.0" }
variable "VERSION" { default = "dev" }
variable "REVISION" { default = "unknown" }
variable "SOURCE" { default = "https://github.com/httpserver/httpserver" }
// Tool versions, written here only: the images get them as build args, the host's cargo runs
// with RUSTUP_TOOLCHAIN=RUST_VERSION (Makefile), and scripts read them with scripts/bake-var.sh.
variable "RUST_VERSION" { default = "1.95.0" }
variable "CARGO_CHEF_VERSION" { default = "0.1.78" }
variable "CARGO_AUDITABLE_VERSION" { default = "0.7.7" }
// Base images (null: the Dockerfile's own default, rust:RUST_VERSION-slim-bookworm and
// distroless static); the e2e harness points them at local stand-ins where the public ones
// are unreachable.
variable "RUST_IMAGE" { default = null }
variable "DISTROLESS_IMAGE" { default = null }
// Reproducible builds: file and config timestamps come from this (seconds since the epoch).
variable "SOURCE_DATE_EPOCH" { default = "0" }
// Platforms of the host-platform targets (the e2e adds linux/arm64 to run it under emulation).
variable "LOCAL_PLATFORMS" { default = "" }
variable "RELEASE_PLATFORMS" { default = "linux/amd64,linux/arm64" }
// Attestations of the release targets: SLSA provenance (mode=max) and an SPDX SBOM made by
// SBOM_GENERATOR, an image following BuildKit's SBOM generator protocol ("" is BuildKit's
// default, docker/buildkit-syft-scanner; make engine points it at a local stand-in where
// Docker Hub is out of reach).
variable "SBOM" { default = true }
variable "SBOM_GENERATOR" { default = "" }
variable "PROVENANCE" { default = true }
// Clamp layer file times to SOURCE_DATE_EPOCH on pushes (a docker-container builder; the
// docker driver refuses it, and the Makefile turns it off there).
variable "REWRITE_TIMESTAMP" { default = true }
// Stages rebuilt even when cached (comma-separated): the reproducibility check rebuilds
// every stage that compiles or assembles the program, from source.
variable "NO_CACHE_FILTER" { default = "" }

function "created" {
  params = [epoch]
  result = formatdate("YYYY-MM-DD'T'hh:mm:ssZ", timeadd("1970-01-01T00:00:00Z", "${epoch}s"))
}

// A comma-separated list (platforms, stage names) as a list; "" is empty.
function "csv" {
  params = [list]
  result = list == "" ? [] : split(",", list)
}

// The image variants: the file and stage that build each, its tag suffix, and the variant
// whose image it starts from ("" for none; the distroless one adds its base's files to the
// scratch image). Adding a variant is one entry here (and its file); the targets below, the
// groups and the metadata-action placeholders follow from this list.
variable "VARIANTS" {
  default = [
    { name = "scratch", file = "Dockerfile", stage = "runtime-scratch", suffix = "", base = "" },
    { name = "distroless", file = "Containerfile.distroless", stage = "runtime-distroless", suffix = "-distroless", base = "scratch" },
  ]
}

// A variant's tag suffix by its name (to find the target a variant starts from).
function "suffix_of" {
  params = [name]
  result = { for v in VARIANTS : v.name => v.suffix }[name]
}

// Placeholders that docker/metadata-action's bake files override in CI (tags, labels,
// annotations); the defaults here name the image for `make push`.
target "docker-metadata-action-variants" {
  matrix = { v = VARIANTS }
  name   = "docker-metadata-action${v.suffix}"
  tags   = ["${REGISTRY}/${IMAGE}:${TAG}${v.suffix}"]
}

target "docker-metadata-action-debug" {
  tags = ["${REGISTRY}/${IMAGE}:${TAG}-debug"]
}

target "_common" {
  context = "."
  args = {
    RUST_VERSION       = RUST_VERSION
    RUST_IMAGE         = RUST_IMAGE
    CARGO_CHEF_VERSION = CARGO_CHEF_VERSION
    CARGO_AUDITABLE_VERSION = CARGO_AUDITABLE_VERSION
    DISTROLESS_IMAGE   = DISTROLESS_IMAGE
    VERSION            = VERSION
    REVISION           = REVISION
    SOURCE             = SOURCE
    CREATED            = created(SOURCE_DATE_EPOCH)
    SOURCE_DATE_EPOCH  = SOURCE_DATE_EPOCH
  }
  no-cache-filter = csv(NO_CACHE_FILTER)
}

target "_release" {
  inherits  = ["_common"]
  platforms = csv(RELEASE_PLATFORMS)
  output    = [REWRITE_TIMESTAMP ? "type=image,rewrite-timestamp=true" : "type=image"]
  attest = concat(
    // Off means off: with no provenance entry buildx still adds its min-mode provenance.
    PROVENANCE ? ["type=provenance,mode=max"] : ["type=provenance,disabled=true"],
    SBOM ? [SBOM_GENERATOR == "" ? "type=sbom" : "type=sbom,generator=${SBOM_GENERATOR}"] : [],
  )
}

// Each variant for the host platform, into the engine: image-local (scratch),
// image-local-distroless, ...
target "image-local-variants" {
  matrix     = { v = VARIANTS }
  name       = "image-local${v.suffix}"
  inherits   = ["_common"]
  dockerfile = v.file
  target     = v.stage
  contexts   = v.base == "" ? {} : { binary = "target:image-local${suffix_of(v.base)}" }
  platforms  = csv(LOCAL_PLATFORMS)
  tags       = ["${IMAGE}:${TAG}${v.suffix}"]
  output     = ["type=docker"]
}

// Each variant for RELEASE_PLATFORMS, with attestations: scratch, distroless, ...
target "release-variants" {
  matrix     = { v = VARIANTS }
  name       = v.name
  inherits   = ["_release", "docker-metadata-action${v.suffix}"]
  dockerfile = v.file
  target     = v.stage
  contexts   = v.base == "" ? {} : { binary = "target:${v.base}" }
}

// The fast loop (`make image-dev`): the scratch image for the host platform with a binary of
// profile dev-image (no fat LTO, incremental in a cache mount), as IMAGE:dev. Not for release.
target "image-dev" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile"
  target     = "runtime-scratch"
  args       = { BINARY_STAGE = "dev-builder" }
  platforms  = csv(LOCAL_PLATFORMS)
  tags       = ["${IMAGE}:dev"]
  output     = ["type=docker"]
}

// Each platform's binary and split debug file by GNU build id, published beside the images
// as IMAGE:TAG-debug (`make push` also tags it sha256-DIGEST.debug for each image index it
// belongs to; `make sign` signs it; `make symbols IMAGE=ref` fetches it). No attestations:
// it is not run, and without provenance a rebuild of the commit pushes the same digest.
target "symbols" {
  inherits   = ["_common", "docker-metadata-action-debug"]
  dockerfile = "Dockerfile"
  target     = "debug-symbols"
  platforms  = csv(RELEASE_PLATFORMS)
  output     = [REWRITE_TIMESTAMP ? "type=image,rewrite-timestamp=true" : "type=image"]
  attest     = ["type=provenance,disabled=true"]
}

// The same files for this checkout, exported locally (bin/debug-symbols/BUILD_ID/): for
// symbolizing profiles of images built here, PPROF_BINARY_PATH=bin/debug-symbols.
target "debug-symbols" {
  inherits  = ["_common"]
  dockerfile = "Dockerfile"
  target    = "debug-symbols"
  platforms = csv(RELEASE_PLATFORMS)
  output    = ["type=local,dest=bin/debug-symbols,platform-split=false"]
}

group "default" {
  targets = [for v in VARIANTS : "image-local${v.suffix}"]
}

group "release" {
  targets = concat([for v in VARIANTS : v.name], ["symbols"])
}
