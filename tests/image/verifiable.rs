//! Verifiable images: `make sign` signs what `make push` published, `make verify`'s checks pass
//! on it (signature, provenance, SBOM = embedded crates, config, debug symbols) and refuse an
//! unsigned image, another key and a tampered image; `make sign` and `make verify` as the release
//! workflow runs them (from the push's metadata), with cosign 3 and with cosign 2; two release
//! builds from source, through the real docker/metadata-action's files, publish the same images
//! and carry the project's own title, description and version.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use libtest_mimic::Trial;

use crate::bake;
use crate::docker::{self, CALL_LIMIT, registry};
use crate::fixtures::{self, BUILD_LIMIT, VARIANTS, Variant};
use crate::report::check;
use crate::verify::{self, Signer, Target};

const PASSWORD: &str = "e2e-only-password";

pub fn checks() -> Vec<Trial> {
    let mut all = vec![check(
        "sign: make sign signs every index make push pushed",
        || signed().clone(),
    )];
    for v in VARIANTS {
        all.extend(verify::checks(
            &format!("verify {} pushed", v.name()),
            move || {
                signed().as_ref().map_err(Clone::clone)?;
                Ok(Target {
                    reference: v.pushed_ref(),
                    signer: Signer::Key(key_pair("e2e")?.1),
                    revision: Some(head_commit()?),
                })
            },
        ));
    }
    all.push(check("verify: refuses a signature by another key", || {
        signed().as_ref().map_err(Clone::clone)?;
        let other = Target {
            reference: Variant::Scratch.pushed_ref(),
            signer: Signer::Key(key_pair("other")?.1),
            revision: None,
        };
        refused(&other, "signature verifies")
    }));
    all.push(check(
        "verify: refuses an unsigned, tampered image",
        tampered,
    ));
    all.push(check(
        "verify: make verify as the release workflow runs it (every image of the last push)",
        || make_verify(None, "cosign"),
    ));
    all.push(check(
        "cosign 2: make sign and make verify with cosign 2.5 (cosign-2)",
        cosign_2,
    ));
    all.push(check(
        "reproducible: two release pushes from source, with the metadata-action bake files",
        reproducible,
    ));
    for v in VARIANTS {
        all.push(check(
            format!(
                "{}: pushed with metadata-action's files, the index, manifests and config say the project's title, description, version",
                v.name()
            ),
            move || own_metadata(&v.pushed_at(&format!("{}-repro1", fixtures::settings().push_tag)), v),
        ));
    }
    all
}

/// A cosign key pair generated for this run: (private, public).
fn key_pair(name: &str) -> Result<(PathBuf, PathBuf), String> {
    let dir = bake::scratch_file("cosign");
    let (key, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    if !key.exists() {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        docker::output(
            Command::new("cosign")
                .args(["generate-key-pair", "--output-key-prefix"])
                .arg(dir.join(name))
                .env("COSIGN_PASSWORD", PASSWORD),
            CALL_LIMIT,
        )?;
    }
    Ok((key, public))
}

/// `make sign` with `cosign` (the engine's PATH has cosign 3 and cosign-2) of what `make push`
/// published, as the release workflow runs it: from the push's metadata file.
fn make_sign(cosign: &str) -> Result<String, String> {
    fixtures::push()?;
    let mut cmd = fixtures::make("sign");
    cmd.env("METADATA_FILE", bake::metadata_file("make push"))
        .env("COSIGN", cosign)
        .env("COSIGN_KEY", key_pair("e2e")?.0)
        .env("COSIGN_PASSWORD", PASSWORD);
    let out = docker::output(&mut cmd, CALL_LIMIT)?;
    let signed = out.lines().filter(|l| l.starts_with("signing ")).count();
    if signed < 3 {
        return Err(format!(
            "signed {signed} images, want every variant and the symbols:\n{out}"
        ));
    }
    Ok(format!("{signed} indexes with {cosign}, --recursive"))
}

/// `make sign` of what `make push` published, with this run's key, once.
fn signed() -> &'static Result<String, String> {
    static CELL: OnceLock<Result<String, String>> = OnceLock::new();
    CELL.get_or_init(|| make_sign("cosign"))
}

/// `make verify` through make (a nested run of this harness's verifications): REF, or else
/// every image of the push's metadata file, as the release workflow's last step runs it.
fn make_verify(reference: Option<&str>, cosign: &str) -> Result<String, String> {
    signed().as_ref().map_err(Clone::clone)?;
    let mut cmd = fixtures::make("verify");
    cmd.env("METADATA_FILE", bake::metadata_file("make push"))
        .env("COSIGN", cosign)
        .env("COSIGN_PUBLIC_KEY", key_pair("e2e")?.1)
        .env("EXPECT_REVISION", head_commit()?)
        .env("REF", reference.unwrap_or(""));
    let out = docker::output(&mut cmd, fixtures::BUILD_LIMIT)?;
    let passed = out
        .lines()
        .filter(|l| l.starts_with("test verify ") && l.ends_with(" ok"))
        .count();
    let images = if reference.is_some() {
        1
    } else {
        VARIANTS.len()
    };
    if passed != images * verify::VERIFICATIONS.len() {
        return Err(format!(
            "{passed} verifications passed, want {}:\n{out}",
            images * verify::VERIFICATIONS.len()
        ));
    }
    Ok(format!(
        "{passed} verifications passed ({images} images, {cosign})"
    ))
}

/// cosign 2 signs what was pushed (its signatures beside cosign 3's), and verifies them.
fn cosign_2() -> Result<String, String> {
    let signed = make_sign("cosign-2")?;
    let verified = make_verify(Some(&Variant::Distroless.pushed_ref()), "cosign-2")?;
    Ok(format!("{signed}; {verified}"))
}

fn head_commit() -> Result<String, String> {
    Ok(docker::output(
        Command::new("git")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["rev-parse", "HEAD"]),
        CALL_LIMIT,
    )?
    .trim()
    .to_owned())
}

/// Passes when the verification named `what` fails for `target`.
fn refused(target: &Target, what: &str) -> Result<String, String> {
    let results = verify::all(target);
    match results.iter().find(|(w, _)| *w == what) {
        Some((_, Err(why))) => Ok(format!("refused: {}", why.lines().next().unwrap_or(""))),
        Some((_, Ok(fig))) => Err(format!("{what} passed: {fig}")),
        None => Err(format!("no verification named {what}")),
    }
}

/// The scratch image with one label changed, pushed unsigned: make verify must fail on the
/// signature and on the config.
fn tampered() -> Result<String, String> {
    signed().as_ref().map_err(Clone::clone)?;
    let s = fixtures::settings();
    let tag = format!("{}-tampered", s.push_tag);
    let mut cmd = fixtures::make("push");
    cmd.env("TAG", &tag)
        .env("REGISTRY", &s.registry)
        .env("RELEASE_PLATFORMS", fixtures::host_platform())
        .env("BAKE_FLAGS", "--set scratch.labels.other=tampered scratch");
    bake::run("tampered push", cmd, BUILD_LIMIT)?;
    let target = Target {
        reference: format!("{}/{}:{tag}", s.registry, s.image),
        signer: Signer::Key(key_pair("e2e")?.1),
        revision: None,
    };
    let results = verify::all(&target);
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(w, _)| *w)
        .collect();
    if failed.contains(&"signature verifies") && failed.iter().any(|w| w.starts_with("labels")) {
        Ok(format!("refused: {}", failed.join("; ")))
    } else {
        Err(format!("only {failed:?} failed"))
    }
}

/// The project's own title, description and version on a pushed index: its annotations, and
/// each platform manifest's annotations and config labels (metadata-action's files say other
/// things; its url passes through).
fn own_metadata(reference: &str, v: Variant) -> Result<String, String> {
    let version = fixtures::cargo_version();
    let index = registry::index(reference)?;
    let mut seen = vec![("index annotations", index.annotations.clone())];
    for arch in crate::published::ARCHES {
        let m = index
            .platform(arch)
            .ok_or_else(|| format!("{reference}: no {arch}"))?;
        let at = verify::repo_at(reference, &m.digest);
        seen.push(("manifest annotations", registry::manifest(&at)?.annotations));
        seen.push((
            "config labels",
            registry::config(&at)?.config.labels.into_iter().collect(),
        ));
    }
    for (what, map) in &seen {
        let get = |k: &str| {
            map.get(&format!("org.opencontainers.image.{k}"))
                .cloned()
                .unwrap_or_default()
        };
        let description = get("description");
        let distroless = description.contains("(distroless)");
        if get("title") != "httpserver"
            || get("version") != version
            || !description.starts_with("Small HTTP service")
            || distroless != (v == Variant::Distroless)
            || get("url") != "https://github.com/Owner/HTTPServer"
        {
            return Err(format!("{reference}: {what}: {map:?}"));
        }
    }
    Ok(format!("{} places say httpserver {version}", seen.len()))
}

/// What one push published, per variant: the index digest, the image manifest digest of each
/// platform, and the SBOM attestation's statement digest of each platform.
#[derive(Debug, PartialEq)]
struct Published {
    index: String,
    images: Vec<String>,
    sboms: Vec<String>,
}

fn published(reference: &str) -> Result<Published, String> {
    let raw = docker::docker(&["buildx", "imagetools", "inspect", "--raw", reference])?;
    let index = registry::index(reference)?;
    let mut images = Vec::new();
    let mut sboms = Vec::new();
    for arch in crate::published::ARCHES {
        let image = index
            .platform(arch)
            .ok_or_else(|| format!("{reference}: no {arch}"))?;
        images.push(image.digest.clone());
        let attestation = index
            .attestations()
            .find(|a| a.annotations.get("vnd.docker.reference.digest") == Some(&image.digest))
            .ok_or_else(|| format!("{reference}: no attestation for {arch}"))?;
        let manifest = registry::manifest(&verify::repo_at(reference, &attestation.digest))?;
        sboms.extend(
            manifest
                .layers
                .iter()
                .filter(|l| {
                    l.annotations
                        .get("in-toto.io/predicate-type")
                        .is_some_and(|t| t.contains("spdx"))
                })
                .map(|l| l.digest.clone()),
        );
    }
    Ok(Published {
        index: format!("sha256:{}", crate::common::sha256_hex(raw.as_bytes())?),
        images,
        sboms,
    })
}

/// Two release builds of the same commit, pushed through the release workflow's metadata-action
/// bake files: `make push` (the first: on a fresh machine built from source by `make release`
/// before it) and a push from source (every stage that compiles or assembles the program rebuilt;
/// the toolchain stage cached, like the base image). The images (each platform's manifest) must
/// be identical, and so must the SBOM statements and the index digests once the SLSA provenance
/// is left out: BuildKit's provenance records its own invocation (id, start and finish times),
/// so an index that carries it differs from one build to the next by that attestation alone.
/// Each build is pushed again without provenance (from its own cache: the same layers) to one
/// tag, as a rebuild of a release would be: BuildKit names the SBOM's subject by the pushed tag,
/// so distinct tags would differ there. The pushes with provenance each go to a tag of their own:
/// distribution 2.8 has answered 500 to a HEAD racing an overwrite with different content.
fn reproducible() -> Result<String, String> {
    let first = fixtures::push()?.run.seconds;
    let s = fixtures::settings();
    let refs = |tag: &str| -> Vec<String> { VARIANTS.iter().map(|v| v.pushed_at(tag)).collect() };
    let published_at = |tag: &str| -> Result<Vec<Published>, String> {
        refs(tag).iter().map(|r| published(r)).collect()
    };
    let without_provenance = |label: &str| -> Result<Vec<Published>, String> {
        let tag = format!("{}-repro-np", s.push_tag);
        let mut cmd = fixtures::make("push");
        fixtures::with_metadata_action(&mut cmd, &tag);
        cmd.env("PROVENANCE", "false");
        bake::run(label, cmd, BUILD_LIMIT)?;
        published_at(&tag)
    };
    let a = (
        published_at(&s.push_tag)?,
        without_provenance("make push's build without provenance")?,
        first,
    );
    let tag = format!("{}-repro1", s.push_tag);
    let mut from_source = fixtures::make("push");
    fixtures::with_metadata_action(&mut from_source, &tag);
    from_source.env(
        "NO_CACHE_FILTER",
        "planner,builder,runtime-scratch,built,runtime-distroless",
    );
    let rebuilt = bake::run("release push from source", from_source, BUILD_LIMIT)?.seconds;
    let b = (
        published_at(&tag)?,
        without_provenance("the rebuild without provenance")?,
        rebuilt,
    );
    eprintln!("[reproducible] make push: {a:?}; from source: {b:?}");
    for (i, r) in refs("repro").iter().enumerate() {
        if a.0[i].images != b.0[i].images {
            return Err(format!(
                "{r}: image manifests differ: {:?} vs {:?}",
                a.0[i].images, b.0[i].images
            ));
        }
        if a.1[i].images != a.0[i].images || b.1[i].images != a.0[i].images {
            return Err(format!("{r}: image manifests differ without provenance"));
        }
        if a.1[i].sboms != b.1[i].sboms {
            return Err(format!("{r}: SBOM statements differ"));
        }
        if a.1[i].index != b.1[i].index {
            return Err(format!(
                "{r}: index digests (SBOM, no provenance) differ: {} vs {}",
                a.1[i].index, b.1[i].index
            ));
        }
    }
    Ok(format!(
        "scratch index {} and distroless index {} both times (make push {} s, from source {} s); images {} / {}",
        short(&a.1[0].index),
        short(&a.1[1].index),
        a.2,
        b.2,
        a.0[0]
            .images
            .iter()
            .map(|d| short(d))
            .collect::<Vec<_>>()
            .join(" "),
        a.0[1]
            .images
            .iter()
            .map(|d| short(d))
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}
