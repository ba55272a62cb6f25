// A second service through the same pipeline: the fixture under tests/c-deps, whose
// dependencies compile C. Layered on the project's bake file, whose stages (the main
// Dockerfile), layers, attestations and debug symbols it reuses; only its context, package and
// runtime block are its own:
//   docker buildx bake -f docker-bake.hcl -f tests/c-deps/docker-bake.hcl c-deps
// The image checks build, push, run and inspect it (tests/image/c_deps.rs).

variable "C_DEPS_IMAGE" { default = "c-deps" }

// The fixture's workspace as the build context, built by the main Dockerfile.
target "_c-deps" {
  inherits   = ["_common"]
  context    = "tests/c-deps"
  dockerfile = "../../Dockerfile"
  args       = { PACKAGE = "cdeps", BINARY = "cdeps", FEATURES = "" }
}

// The pipeline's builder stage for the fixture, both platforms: its runtime block's input.
target "c-deps-builder" {
  inherits  = ["_c-deps"]
  target    = "builder"
  platforms = csv(RELEASE_PLATFORMS)
}

// The fixture's image, pushed like the service's variants: SBOM and provenance.
target "c-deps" {
  inherits    = ["_release", "_c-deps"]
  dockerfile  = "Containerfile"
  target      = "runtime"
  contexts    = { binary = "target:c-deps-builder" }
  tags        = ["${REGISTRY}/${C_DEPS_IMAGE}:${TAG}"]
  labels      = merge(labels("Fixture: a service whose dependencies compile C"), { "org.opencontainers.image.title" = "cdeps" })
  output      = pushed_output()
  attest      = attestations()
}

// Its binary and debug file by build id, exported for the checks.
target "c-deps-symbols" {
  inherits  = ["_c-deps"]
  target    = "debug-symbols"
  platforms = csv(RELEASE_PLATFORMS)
  output    = ["type=local,dest=target/c-deps-symbols,platform-split=false"]
}
