//! Verifying a published image, as `make verify REF=repo:tag|repo@digest` does for any image and the
//! e2e does for what it pushed: the cosign signature (a key, or the release workflow's keyless
//! identity), the provenance naming the source repository and the commit, the SBOM listing
//! exactly the crates embedded in each platform's binary, the documented config, and the debug
//! symbols `make push` linked to it holding each platform binary's build id.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use libtest_mimic::Trial;
use serde::Deserialize;

use crate::docker::{self, CALL_LIMIT, registry};
use crate::expect;
use crate::report::check;

/// What to verify, and against what.
#[derive(Clone, Debug)]
pub struct Target {
    /// `repo:tag` or `repo@sha256:…`.
    pub reference: String,
    /// How the signature must verify.
    pub signer: Signer,
    /// The commit the provenance must name (else: the image's revision label).
    pub revision: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Signer {
    /// A cosign public key file.
    Key(PathBuf),
    /// Keyless (Sigstore): certificate identity regexp and OIDC issuer.
    Keyless { identity: String, issuer: String },
}

impl Target {
    /// From `make verify`'s environment: VERIFY_IMAGE, and COSIGN_PUBLIC_KEY, or else the
    /// release workflow's keyless identity for the repository in CERT_IDENTITY / SOURCE.
    pub fn from_env() -> Option<Self> {
        let reference = std::env::var("VERIFY_IMAGE")
            .ok()
            .filter(|s| !s.is_empty())?;
        let signer = match std::env::var("COSIGN_PUBLIC_KEY") {
            Ok(key) if !key.is_empty() => Signer::Key(key.into()),
            _ => {
                let source = std::env::var("SOURCE").unwrap_or_default();
                Signer::Keyless {
                    identity: std::env::var("CERT_IDENTITY").unwrap_or_else(|_| {
                        format!("^{}/.github/workflows/release.yml@", regex_quote(&source))
                    }),
                    issuer: std::env::var("CERT_ISSUER")
                        .unwrap_or_else(|_| "https://token.actions.githubusercontent.com".into()),
                }
            }
        };
        let revision = std::env::var("EXPECT_REVISION")
            .ok()
            .filter(|s| !s.is_empty());
        Some(Self {
            reference,
            signer,
            revision,
        })
    }
}

fn regex_quote(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '.' | '/' | '?' | '+' | '*' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => {
                vec!['\\', c]
            }
            c => vec![c],
        })
        .collect()
}

/// One trial per verification, named "`label`: …".
pub fn checks(
    label: &str,
    target: impl Fn() -> Result<Target, String> + Clone + Send + 'static,
) -> Vec<Trial> {
    let mut all = Vec::new();
    for (what, f) in VERIFICATIONS {
        let target = target.clone();
        all.push(check(format!("{label}: {what}"), move || f(&target()?)));
    }
    all
}

type Verification = fn(&Target) -> Result<String, String>;

pub const VERIFICATIONS: [(&str, Verification); 5] = [
    ("signature verifies", signature),
    ("provenance names the source and the commit", provenance),
    (
        "SBOM lists exactly the crates in each platform's binary",
        sbom,
    ),
    (
        "labels, env, user, entrypoint, healthcheck as documented",
        config,
    ),
    (
        "debug symbols linked, with each platform binary's build id",
        debug_symbols,
    ),
];

/// Every verification of `target`, in order: for checks that expect some to fail.
pub fn all(target: &Target) -> Vec<(&'static str, Result<String, String>)> {
    VERIFICATIONS
        .iter()
        .map(|(what, f)| (*what, f(target)))
        .collect()
}

/// The cosign that `make sign` used (COSIGN, as there; cosign 2 and 3 both work).
fn cosign() -> Command {
    Command::new(std::env::var_os("COSIGN").unwrap_or_else(|| "cosign".into()))
}

fn signature(t: &Target) -> Result<String, String> {
    let mut cmd = cosign();
    cmd.arg("verify");
    let local = registry::local(&t.reference);
    if local {
        cmd.args(["--allow-insecure-registry", "--allow-http-registry"]);
    }
    let how = match &t.signer {
        Signer::Key(key) => {
            cmd.arg("--key").arg(key);
            // `make sign` records signatures in the transparency log, except in a registry on
            // this machine.
            if local {
                cmd.arg("--insecure-ignore-tlog");
            }
            format!("key {}", key.display())
        }
        Signer::Keyless { identity, issuer } => {
            cmd.args(["--certificate-identity-regexp", identity])
                .args(["--certificate-oidc-issuer", issuer]);
            format!("keyless, identity {identity}")
        }
    };
    cmd.arg(&t.reference);
    let out = docker::output(&mut cmd, CALL_LIMIT)?;
    let n = out
        .lines()
        .filter(|l| l.starts_with('[') || l.starts_with('{'))
        .count();
    Ok(format!("{how} ({n} signature payloads)"))
}

/// `docker buildx imagetools inspect --format '{{json .X}}'` of every platform.
fn attestations<T: serde::de::DeserializeOwned>(
    reference: &str,
    what: &str,
) -> Result<BTreeMap<String, T>, String> {
    let text = docker::docker(&[
        "buildx",
        "imagetools",
        "inspect",
        reference,
        "--format",
        &format!("{{{{ json .{what} }}}}"),
    ])?;
    let all: BTreeMap<String, T> = docker::json(&text)?;
    if all.is_empty() {
        return Err(format!("no {what} attestation"));
    }
    Ok(all)
}

#[derive(Deserialize)]
struct Provenance {
    #[serde(rename = "SLSA")]
    slsa: serde_json::Value,
}

fn provenance(t: &Target) -> Result<String, String> {
    let labels = platform_configs(&t.reference)?
        .into_values()
        .next()
        .map(|c| c.config.labels)
        .unwrap_or_default();
    let revision = t
        .revision
        .clone()
        .or_else(|| labels.get("org.opencontainers.image.revision").cloned())
        .ok_or("no revision to expect (no EXPECT_REVISION, no revision label)")?;
    let source = labels
        .get("org.opencontainers.image.source")
        .cloned()
        .unwrap_or_default();
    let mut seen = Vec::new();
    for (platform, p) in attestations::<Provenance>(&t.reference, "Provenance")? {
        let vcs = &p.slsa["metadata"]["https://mobyproject.org/buildkit@v1#metadata"]["vcs"];
        let got = vcs["revision"].as_str().unwrap_or("");
        if got != revision {
            return Err(format!(
                "{platform}: provenance names commit {got:?}, want {revision}"
            ));
        }
        // buildx records the repository when the build context had a git remote, as git
        // printed it (the label has it as https://, the Makefile's SOURCE).
        if let Some(src) = vcs["source"].as_str()
            && repository(src) != repository(&source)
        {
            return Err(format!(
                "{platform}: provenance source {src:?}, label {source:?}"
            ));
        }
        seen.push(platform);
    }
    Ok(format!(
        "commit {} on {}",
        &revision[..revision.len().min(12)],
        seen.join(", ")
    ))
}

/// A repository URL in one spelling: git@host:path and ssh://[user@]host/path as
/// https://host/path, without credentials, a trailing slash or `.git`.
fn repository(url: &str) -> String {
    let url = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let url = match url.split_once("://") {
        Some((_, rest)) => rest
            .rsplit_once('@')
            .map_or(rest, |(_, host)| host)
            .to_owned(),
        None => match url.split_once('@').and_then(|(_, r)| r.split_once(':')) {
            Some((host, path)) => format!("{host}/{path}"),
            None => return url.to_owned(),
        },
    };
    format!("https://{url}")
}

#[derive(Deserialize)]
struct Sbom {
    #[serde(rename = "SPDX")]
    spdx: Spdx,
}

#[derive(Deserialize)]
struct Spdx {
    #[serde(default)]
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    name: String,
    #[serde(default)]
    version_info: String,
    #[serde(default)]
    external_refs: Vec<ExternalRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_locator: String,
}

fn sbom(t: &Target) -> Result<String, String> {
    let sboms = attestations::<Sbom>(&t.reference, "SBOM")?;
    let mut figures = Vec::new();
    for (platform, digest) in platform_manifests(&t.reference)? {
        let sbom = sboms
            .get(&platform)
            .ok_or_else(|| format!("no SBOM for {platform}"))?;
        let listed: BTreeSet<String> = sbom
            .spdx
            .packages
            .iter()
            .filter(|p| {
                p.external_refs
                    .iter()
                    .any(|r| r.reference_locator.starts_with("pkg:cargo/"))
            })
            .map(|p| format!("{}@{}", p.name, p.version_info))
            .collect();
        let embedded = embedded_crates(&repo_at(&t.reference, &digest))?;
        if listed != embedded {
            let missing: Vec<_> = embedded.difference(&listed).collect();
            let extra: Vec<_> = listed.difference(&embedded).collect();
            return Err(format!(
                "{platform}: SBOM misses {missing:?}, adds {extra:?}"
            ));
        }
        figures.push(format!("{platform} {} crates = audit data", listed.len()));
    }
    Ok(figures.join(", "))
}

/// The image's /httpserver, taken out of its (gzipped) layers into a scratch directory.
fn image_binary(manifest_ref: &str) -> Result<Vec<u8>, String> {
    let dir = crate::bake::scratch_file(&format!(
        "layers-{}",
        manifest_ref.rsplit(':').next().unwrap_or("x")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let manifest = registry::manifest(manifest_ref)?;
    registry::copy_to_dir(manifest_ref, &dir)?;
    let bin = dir.join("httpserver");
    for layer in &manifest.layers {
        let blob = dir.join(layer.digest.trim_start_matches("sha256:"));
        let _ = docker::output(
            Command::new("tar")
                .arg("-xzf")
                .arg(&blob)
                .arg("-C")
                .arg(&dir)
                .arg("httpserver"),
            CALL_LIMIT,
        );
        if bin.exists() {
            break;
        }
    }
    let bytes = std::fs::read(&bin).map_err(|e| format!("{manifest_ref}: no /httpserver ({e})"));
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// The crates cargo-auditable embedded in the image's /httpserver that are compiled into it:
/// the audit data also names build-time crates (build scripts, proc macros), which scanners
/// rightly leave out of the image's SBOM.
fn embedded_crates(manifest_ref: &str) -> Result<BTreeSet<String>, String> {
    let bin = image_binary(manifest_ref)?;
    let limit = auditable_info::Limits::default().decompressed_json_size;
    let info = auditable_info::audit_info_from_slice(&bin, limit)
        .map_err(|e| format!("{manifest_ref}: no audit data in /httpserver: {e}"))?;
    Ok(info
        .packages
        .iter()
        .filter(|p| p.kind == auditable_serde::DependencyKind::Runtime)
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect())
}

/// The GNU build id of an ELF file, in hex.
fn build_id(elf: &[u8]) -> Result<String, String> {
    use object::Object;
    let file = object::File::parse(elf).map_err(|e| e.to_string())?;
    let id = file
        .build_id()
        .map_err(|e| e.to_string())?
        .ok_or("no GNU build id")?;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// `make push` tags each image index's debug symbols REPO:sha256-HEX.debug (HEX: the index
/// digest); there, each platform's image must hold BUILD_ID/httpserver.debug for the build id
/// of that platform's /httpserver (the path pprof looks up with PPROF_BINARY_PATH).
fn debug_symbols(t: &Target) -> Result<String, String> {
    let raw = docker::docker(&["buildx", "imagetools", "inspect", "--raw", &t.reference])?;
    let hex = crate::common::sha256_hex(raw.as_bytes())?;
    let debug_ref = format!("{}:sha256-{hex}.debug", repo_of(&t.reference));
    let debug_index = registry::index(&debug_ref).map_err(|e| {
        format!(
            "no debug symbols at {debug_ref}: {}",
            e.lines().next().unwrap_or("")
        )
    })?;
    let mut figures = Vec::new();
    for (platform, digest) in platform_manifests(&t.reference)? {
        let id = build_id(&image_binary(&repo_at(&t.reference, &digest))?)?;
        let arch = platform.trim_start_matches("linux/");
        let debug = debug_index
            .platform(arch)
            .ok_or_else(|| format!("{debug_ref} has no {platform}"))?;
        let files = layer_files(&repo_at(&t.reference, &debug.digest))?;
        let want = format!("{id}/httpserver.debug");
        if !files.iter().any(|f| f.trim_start_matches("./") == want) {
            return Err(format!("{platform}: {debug_ref} lacks {want}"));
        }
        figures.push(format!("{platform} {}", &id[..12]));
    }
    Ok(format!("{debug_ref}: {}", figures.join(", ")))
}

/// The paths in every layer of an image manifest.
fn layer_files(manifest_ref: &str) -> Result<Vec<String>, String> {
    let dir = crate::bake::scratch_file(&format!(
        "files-{}",
        manifest_ref.rsplit(':').next().unwrap_or("x")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    registry::copy_to_dir(manifest_ref, &dir)?;
    let mut files = Vec::new();
    for layer in registry::manifest(manifest_ref)?.layers {
        let blob = dir.join(layer.digest.trim_start_matches("sha256:"));
        let list = docker::output(Command::new("tar").arg("-tzf").arg(&blob), CALL_LIMIT)?;
        files.extend(list.lines().map(str::to_owned));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(files)
}

fn config(t: &Target) -> Result<String, String> {
    let configs = platform_configs(&t.reference)?;
    for (platform, c) in &configs {
        expect::config_ok(&c.config).map_err(|e| format!("{platform}: {e}"))?;
    }
    Ok(format!("{} platforms", configs.len()))
}

/// linux/ARCH → the image manifest digest, for every platform of the index.
fn platform_manifests(reference: &str) -> Result<BTreeMap<String, String>, String> {
    let index = registry::index(reference)?;
    Ok(index
        .manifests
        .iter()
        .filter_map(|m| {
            let p = m.platform.as_ref()?;
            (p.os == "linux").then(|| (format!("linux/{}", p.architecture), m.digest.clone()))
        })
        .collect())
}

fn platform_configs(reference: &str) -> Result<BTreeMap<String, registry::OciConfig>, String> {
    platform_manifests(reference)?
        .into_iter()
        .map(|(platform, digest)| Ok((platform, registry::config(&repo_at(reference, &digest))?)))
        .collect()
}

/// The repository of a reference given as `repo:tag` or `repo@digest`.
pub fn repo_of(reference: &str) -> &str {
    match reference.split_once('@') {
        Some((repo, _)) => repo,
        None => match reference.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => reference,
        },
    }
}

/// `repo@digest` for a reference given as `repo:tag` or `repo@digest`.
pub fn repo_at(reference: &str, digest: &str) -> String {
    format!("{}@{digest}", repo_of(reference))
}
