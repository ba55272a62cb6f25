// httpserver images. `docker buildx bake` builds the host-platform images into the local
// engine; `docker buildx bake release --push` publishes every variant and the debug symbols
// for linux/amd64 and linux/arm64. The Makefile's verbs call these targets (docs/images.md).

variable "REGISTRY" { default = "localhost:5000" }
variable "IMAGE" { default = "httpserver" }
variable "TAG" { default = "v1.0" }
// What the images say about themselves (labels and annotations, below). The Makefile passes
// Cargo.toml's version (what the binary's --version prints), the commit and the repository it
// came from (git remote origin).
variable "TITLE" { default = "httpserver" }
variable "VERSION" { default = "dev" }
variable "REVISION" { default = "unknown" }
variable "SOURCE" { default = "https://github.com/httpserver/httpserver" }
variable "LICENSES" { default = "MIT" }
// Tool versions, written here only: the images get them as build args, rust-toolchain.toml
// names the same Rust (a test ties them), and scripts read them with scripts/bake-var.sh.
variable "RUST_VERSION" { default = "1.95.0" }
variable "CARGO_CHEF_VERSION" { default = "0.1.78" }
variable "CARGO_AUDITABLE_VERSION" { default = "0.7.7" }
// The builder's C toolchain, Debian bookworm packages (the base images' suite): the musl GCC
// wrappers for both targets, the aarch64 cross GCC under them, cmake and make for cmake crates.
variable "MUSL_VERSION" { default = "1.2.3-1" }
variable "CROSS_GCC_VERSION" { default = "4:12.2.0-3" }
variable "CMAKE_VERSION" { default = "3.25.1-1" }
variable "MAKE_VERSION" { default = "4.3-4.1" }
// What the Dockerfile's builder compiles: this service by default; any package and binary of
// the build context's workspace (tests/c-deps/docker-bake.hcl builds another through the same
// stages), with cargo features (FEATURES=mimalloc: mimalloc as the allocator).
variable "PACKAGE" { default = "httpserver" }
variable "BINARY" { default = "httpserver" }
variable "FEATURES" { default = "" }
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
// Attestations of the image variants: SLSA provenance (mode=max) and an SPDX SBOM made by
// SBOM_GENERATOR, an image following BuildKit's SBOM generator protocol ("" is BuildKit's
// default, docker/buildkit-syft-scanner; make engine points it at a local stand-in where
// Docker Hub is out of reach). This file owns them: the make verbs and the workflows pass no
// --sbom, --provenance or *.attest, which would apply to every target, the debug symbols too.
variable "SBOM" { default = true }
variable "SBOM_GENERATOR" { default = "" }
variable "PROVENANCE" { default = true }
// Clamp layer file times to SOURCE_DATE_EPOCH on pushes (a docker-container builder, as in
// GitHub Actions; the docker driver refuses it, and the Makefile turns it off there).
variable "REWRITE_TIMESTAMP" { default = true }
// Stages rebuilt even when cached (comma-separated): the reproducibility check rebuilds
// every stage that compiles or assembles the program, from source.
variable "NO_CACHE_FILTER" { default = "" }
// The GitHub Actions cache, one scope per pushed target (they would otherwise overwrite each
// other's index in the one default scope): "" off (anywhere but GitHub Actions), "read", or
// "write" (read and store, mode=max). A build reads the scopes its own ref stored and the
// default branch's: ci.yml's release build writes them on pushes to the default branch, so
// pull requests and release tags start from there.
variable "GHA_CACHE" { default = "" }
// The tags docker/metadata-action computed (it exports them, one per line, to the steps after
// it): each variant is pushed as these with its suffix, the debug symbols with -debug. Unset:
// REGISTRY/IMAGE:TAG.
variable "DOCKER_METADATA_OUTPUT_TAGS" { default = "" }

function "created" {
  params = [epoch]
  result = formatdate("YYYY-MM-DD'T'hh:mm:ssZ", timeadd("1970-01-01T00:00:00Z", "${epoch}s"))
}

// A comma-separated list (platforms, stage names) as a list; "" is empty.
function "csv" {
  params = [list]
  result = list == "" ? [] : split(",", list)
}

// The image variants: the file and stage that build each, its tag suffix, the variant whose
// image it starts from ("" for none; the distroless one adds its base's files to the scratch
// image), and its description. Adding a variant is one entry here (and its file); the
// targets below and the groups follow from this list, and the make verbs and workflows read
// what bake built from its metadata.
variable "VARIANTS" {
  default = [
    {
      name = "scratch", file = "Dockerfile", stage = "runtime-scratch", suffix = "", base = "",
      description = "Small HTTP service: health, readiness, pprof-compatible profiling"
    },
    {
      name = "distroless", file = "Containerfile.distroless", stage = "runtime-distroless",
      suffix = "-distroless", base = "scratch",
      description = "Small HTTP service: health, readiness, pprof-compatible profiling (distroless)"
    },
  ]
}

// A variant's tag suffix by its name (to find the target a variant starts from).
function "suffix_of" {
  params = [name]
  result = { for v in VARIANTS : v.name => v.suffix }[name]
}

// The OCI labels every image carries, set by this file only.
function "labels" {
  params = [description]
  result = {
    "org.opencontainers.image.title"       = TITLE
    "org.opencontainers.image.description" = description
    "org.opencontainers.image.source"      = SOURCE
    "org.opencontainers.image.version"     = VERSION
    "org.opencontainers.image.revision"    = REVISION
    "org.opencontainers.image.created"     = created(SOURCE_DATE_EPOCH)
    "org.opencontainers.image.licenses"    = LICENSES
  }
}

// The same as annotations of each pushed manifest and of the index (registries show those).
// A one-platform push (RELEASE_PLATFORMS=linux/amd64) may have no index: BuildKit refuses
// index annotations there, so they go on the manifest only.
function "annotations" {
  params = [description]
  result = [
    for k, v in labels(description) :
    "${length(csv(RELEASE_PLATFORMS)) > 1 ? "index,manifest" : "manifest"}:${k}=${v}"
  ]
}

// A pushed target's tags: metadata-action's, else REGISTRY/IMAGE:TAG, with the suffix.
function "tags" {
  params = [suffix]
  result = [
    for t in (DOCKER_METADATA_OUTPUT_TAGS == "" ? ["${REGISTRY}/${IMAGE}:${TAG}"] : compact(split("\n", DOCKER_METADATA_OUTPUT_TAGS))) :
    "${t}${suffix}"
  ]
}

// A pushed target's own output, so that --push (bake's *.push=true, which also gives every
// parent target an output of its own) only adds push=true to it and never replaces it.
function "pushed_output" {
  params = []
  result = [REWRITE_TIMESTAMP ? "type=image,rewrite-timestamp=true" : "type=image"]
}

function "cache_from" {
  params = [scope]
  result = GHA_CACHE == "" ? [] : ["type=gha,scope=${scope}"]
}

function "cache_to" {
  params = [scope]
  result = GHA_CACHE == "write" ? ["type=gha,scope=${scope},mode=max"] : []
}

// docker/metadata-action's bake files (bake-file-labels, bake-file-annotations) fill this in
// CI. The pushed targets inherit it, then set the project's own labels and annotations (title,
// description, version, revision, source, created, licenses) after it: where both name a key,
// the project's wins; the rest (its url, any label a workflow adds) passes through.
target "docker-metadata-action" {}

// The build context is the service's workspace; `pipeline` is this repository, whose cargo
// settings and scripts the Dockerfile applies to whatever it builds.
target "_common" {
  context  = "."
  contexts = { pipeline = "." }
  args = {
    RUST_VERSION            = RUST_VERSION
    RUST_IMAGE              = RUST_IMAGE
    CARGO_CHEF_VERSION      = CARGO_CHEF_VERSION
    CARGO_AUDITABLE_VERSION = CARGO_AUDITABLE_VERSION
    MUSL_VERSION            = MUSL_VERSION
    CROSS_GCC_VERSION       = CROSS_GCC_VERSION
    CMAKE_VERSION           = CMAKE_VERSION
    MAKE_VERSION            = MAKE_VERSION
    PACKAGE                 = PACKAGE
    BINARY                  = BINARY
    FEATURES                = FEATURES
    DISTROLESS_IMAGE        = DISTROLESS_IMAGE
    SOURCE_DATE_EPOCH       = SOURCE_DATE_EPOCH
  }
  no-cache-filter = csv(NO_CACHE_FILTER)
}

// The attestations of an image that runs: SLSA provenance (mode=max) and the SPDX SBOM.
function "attestations" {
  params = []
  result = concat(
    // Off means off: with no provenance entry buildx still adds its min-mode provenance.
    PROVENANCE ? ["type=provenance,mode=max"] : ["type=provenance,disabled=true"],
    SBOM ? [SBOM_GENERATOR == "" ? "type=sbom" : "type=sbom,generator=${SBOM_GENERATOR}"] : [],
  )
}

target "_release" {
  inherits  = ["_common", "docker-metadata-action"]
  platforms = csv(RELEASE_PLATFORMS)
  output    = pushed_output()
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
  labels     = labels(v.description)
  output     = ["type=docker"]
}

// Each variant for RELEASE_PLATFORMS, with attestations: scratch, distroless, ...
target "release-variants" {
  matrix      = { v = VARIANTS }
  name        = v.name
  inherits    = ["_release"]
  dockerfile  = v.file
  target      = v.stage
  contexts    = v.base == "" ? {} : { binary = "target:${v.base}" }
  tags        = tags(v.suffix)
  labels      = labels(v.description)
  annotations = annotations(v.description)
  output      = pushed_output()
  attest      = attestations()
  cache-from  = cache_from(v.name)
  cache-to   = cache_to(v.name)
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
  labels     = labels("${VARIANTS[0].description}, development build: not for release")
  output     = ["type=docker"]
}

// Each platform's binary and split debug file by GNU build id, published beside the images
// (`make push` also tags it sha256-DIGEST.debug for each image index it belongs to; `make sign`
// signs it; `make symbols REF=ref` fetches it). No attestations: it is not run, and without
// provenance a rebuild of the commit pushes the same digest.
target "symbols" {
  inherits    = ["_release"]
  dockerfile  = "Dockerfile"
  target      = "debug-symbols"
  tags        = tags("-debug")
  labels      = labels("Binary and split debug file of ${TITLE}, by GNU build id, for PPROF_BINARY_PATH")
  annotations = annotations("Binary and split debug file of ${TITLE}, by GNU build id, for PPROF_BINARY_PATH")
  output      = pushed_output()
  attest      = ["type=provenance,disabled=true"]
  cache-from  = cache_from("symbols")
  cache-to    = cache_to("symbols")
}

// The same files for this checkout, exported locally (bin/debug-symbols/BUILD_ID/): for
// symbolizing profiles of images built here, PPROF_BINARY_PATH=bin/debug-symbols.
target "debug-symbols" {
  inherits   = ["_common"]
  dockerfile = "Dockerfile"
  target     = "debug-symbols"
  platforms  = csv(RELEASE_PLATFORMS)
  output     = ["type=local,dest=bin/debug-symbols,platform-split=false"]
}

group "default" {
  targets = [for v in VARIANTS : "image-local${v.suffix}"]
}

group "release" {
  targets = concat([for v in VARIANTS : v.name], ["symbols"])
}
