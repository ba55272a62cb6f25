//! Verifiable images: `make sign` signs what `make push` published, `make verify`'s checks pass
//! on it (signature, provenance, SBOM = embedded crates, config) and refuse an unsigned image,
//! another key and a tampered image; two release builds from source publish the same images.

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
    let mut all = vec![check("sign: make sign signs both pushed indexes", || {
        signed()
            .as_ref()
            .map(|_| "scratch and distroless, --recursive".to_owned())
            .map_err(Clone::clone)
    })];
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
        "reproducible: two release pushes from source, with the metadata-action bake files",
        reproducible,
    ));
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

/// `make sign` of what `make push` published, with this run's key.
fn signed() -> &'static Result<(), String> {
    static CELL: OnceLock<Result<(), String>> = OnceLock::new();
    CELL.get_or_init(|| {
        fixtures::push()?;
        let s = fixtures::settings();
        let mut cmd = fixtures::make("sign");
        cmd.env("TAG", &s.push_tag)
            .env("REGISTRY", &s.registry)
            .env("COSIGN_KEY", key_pair("e2e")?.0)
            .env("COSIGN_PASSWORD", PASSWORD);
        docker::output(&mut cmd, CALL_LIMIT).map(|_| ())
    })
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

/// The bake files docker/metadata-action writes in the release workflow (bake-file-tags,
/// -labels, -annotations, for both variants), with `created` from the commit time as the
/// workflow passes it; returns `-f` flags for them.
fn metadata_files(tag: &str, epoch: &str) -> Result<String, String> {
    let s = fixtures::settings();
    let created = docker::output(
        Command::new("date").args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"]),
        CALL_LIMIT,
    )?
    .trim()
    .to_owned();
    let revision = head_commit()?;
    let labels = serde_json::json!({
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.description": "Small HTTP service",
        "org.opencontainers.image.licenses": "MIT",
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": "https://github.com/httpserver/httpserver",
        "org.opencontainers.image.title": "httpserver",
        "org.opencontainers.image.url": "https://github.com/httpserver/httpserver",
        "org.opencontainers.image.version": "1.2.3-e2e",
    });
    let annotations: Vec<String> = ["manifest", "index"]
        .iter()
        .flat_map(|level| {
            labels
                .as_object()
                .into_iter()
                .flatten()
                .map(move |(k, v)| format!("{level}:{k}={}", v.as_str().unwrap_or("")))
        })
        .collect();
    let mut flags = String::from("-f docker-bake.hcl");
    for (target, suffix) in [
        ("docker-metadata-action", ""),
        ("docker-metadata-action-distroless", "-distroless"),
    ] {
        let tags = vec![format!("{}/{}:{tag}{suffix}", s.registry, s.image)];
        for (kind, value) in [
            ("tags", serde_json::json!(tags)),
            ("labels", labels.clone()),
            ("annotations", serde_json::json!(annotations)),
        ] {
            let file = bake::scratch_file(&format!("{target}-{kind}.json"));
            let doc = serde_json::json!({ "target": { target: { kind: value } } });
            std::fs::write(&file, doc.to_string()).map_err(|e| e.to_string())?;
            flags.push_str(&format!(" -f {}", file.display()));
        }
    }
    Ok(flags)
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
        index: format!("sha256:{}", sha256_hex(raw.as_bytes())?),
        images,
        sboms,
    })
}

fn sha256_hex(bytes: &[u8]) -> Result<String, String> {
    let out = crate::common::output_of(&mut Command::new("sha256sum"), Some(bytes))?;
    Ok(String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned())
}

/// Two release pushes from source (every stage that compiles or assembles the program rebuilt;
/// the toolchain stage cached, like the base image) of the same commit, through the workflow's
/// metadata bake files. The images (each platform's manifest) must be identical, and so must the
/// SBOM statements and the index digests once the SLSA provenance is left out: BuildKit's
/// provenance records its own invocation (id, start and finish times), so an index that carries
/// it differs from one build to the next by that attestation alone. The pushes without
/// provenance go to one tag, as a rebuild of a release would: BuildKit names the SBOM's subject
/// by the pushed tag, so distinct tags would differ there. Those with provenance (which differ
/// anyway) each go to a tag of their own: distribution 2.8 has answered 500 to a HEAD racing an
/// overwrite with different content.
fn reproducible() -> Result<String, String> {
    fixtures::push()?;
    let s = fixtures::settings();
    let epoch = docker::output(
        Command::new("git")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["log", "-1", "--format=%ct"]),
        CALL_LIMIT,
    )?
    .trim()
    .to_owned();
    let refs = |tag: &str| -> Vec<String> {
        VARIANTS
            .iter()
            .map(|v| {
                let suffix = if *v == Variant::Scratch {
                    ""
                } else {
                    "-distroless"
                };
                format!("{}/{}:{tag}{suffix}", s.registry, s.image)
            })
            .collect()
    };
    let mut runs = Vec::new();
    for n in 1..=2 {
        let tag = format!("{}-repro{n}", s.push_tag);
        let mut from_source = fixtures::make("push");
        from_source
            .env("BAKE_FLAGS", metadata_files(&tag, &epoch)?)
            .env("SOURCE_DATE_EPOCH", &epoch)
            .env(
                "NO_CACHE_FILTER",
                "planner,builder,runtime-scratch,built,runtime-distroless",
            );
        let t = bake::run(
            &format!("release push {n} from source"),
            from_source,
            BUILD_LIMIT,
        )?
        .seconds;
        let with: Vec<Published> = refs(&tag)
            .iter()
            .map(|r| published(r))
            .collect::<Result<_, _>>()?;
        let tag = format!("{}-repro-np", s.push_tag);
        let mut without_provenance = fixtures::make("push");
        without_provenance
            .env("BAKE_FLAGS", metadata_files(&tag, &epoch)?)
            .env("SOURCE_DATE_EPOCH", &epoch)
            .env("PROVENANCE", "false");
        bake::run(
            &format!("release push {n} without provenance"),
            without_provenance,
            BUILD_LIMIT,
        )?;
        let without: Vec<Published> = refs(&tag)
            .iter()
            .map(|r| published(r))
            .collect::<Result<_, _>>()?;
        eprintln!(
            "[reproducible] push {n} from source: {t} s; {with:?}; without provenance {without:?}"
        );
        runs.push((with, without, t));
    }
    let (a, b) = (&runs[0], &runs[1]);
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
        "scratch index {} and distroless index {} both times ({} s and {} s from source); images {} / {}",
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
