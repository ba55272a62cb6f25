//! `make push`: both variants as multi-platform indexes in the registry, each platform's
//! manifest carrying the documented config, plus the attestation manifests; the tag guard the
//! release workflow runs first; `make release-build`, the same bake without the push.

use libtest_mimic::Trial;

use crate::docker::registry;
use crate::expect;
use crate::fixtures::{self, VARIANTS, Variant};
use crate::release::no_new_dangling;
use crate::report::{self, check};

pub const ARCHES: [&str; 2] = ["amd64", "arm64"];

pub fn checks() -> Vec<Trial> {
    let mut all = vec![
        check(
            "push: make push (both variants, both platforms) to the registry",
            || {
                let built = fixtures::push_result().as_ref().map_err(Clone::clone)?;
                Ok(format!(
                    "{} s to {}",
                    built.run.seconds,
                    fixtures::settings().registry
                ))
            },
        ),
        check("push: no untagged image left behind", || {
            no_new_dangling(fixtures::push()?.new_dangling)
        }),
        check(
            "tag guard: make tag-guard takes v + Cargo.toml's version and refuses another tag",
            tag_guard,
        ),
        check(
            "release-build: make release-build bakes what make push does, without pushing",
            release_build,
        ),
    ];
    for v in VARIANTS {
        let name = v.name();
        all.push(check(
            format!("{name} pushed: index of linux/amd64 + linux/arm64 with attestations"),
            move || index_check(v),
        ));
        for arch in ARCHES {
            all.push(check(
                format!("{name} pushed linux/{arch}: config (labels, env, user, entrypoint)"),
                move || {
                    let config = registry::config(&platform_ref(v, arch)?)?;
                    if config.architecture != arch || config.os != "linux" {
                        return Err(format!("config is {}/{}", config.os, config.architecture));
                    }
                    expect::config_ok(&config.config).map(|_| String::new())
                },
            ));
            all.push(check(
                format!("{name} pushed linux/{arch}: compressed size"),
                move || compressed_size(v, arch),
            ));
        }
    }
    all
}

/// `repo@digest` of the variant's manifest for linux/`arch`.
pub fn platform_ref(v: Variant, arch: &str) -> Result<String, String> {
    fixtures::push()?;
    let reference = v.pushed_ref();
    let index = registry::index(&reference)?;
    let m = index
        .platform(arch)
        .ok_or_else(|| format!("{reference} has no linux/{arch} manifest"))?;
    let repo = reference
        .rsplit_once(':')
        .map_or(&reference[..], |(r, _)| r);
    Ok(format!("{repo}@{}", m.digest))
}

fn index_check(v: Variant) -> Result<String, String> {
    fixtures::push()?;
    let index = registry::index(&v.pushed_ref())?;
    let missing: Vec<&str> = ARCHES
        .iter()
        .copied()
        .filter(|a| index.platform(a).is_none())
        .collect();
    let attestations = index.attestations().count();
    if !missing.is_empty() {
        return Err(format!("no manifest for {missing:?}"));
    }
    if attestations < ARCHES.len() {
        return Err(format!(
            "{attestations} attestation manifests, want one per platform"
        ));
    }
    Ok(format!(
        "{} manifests, {attestations} attestations",
        index.manifests.len()
    ))
}

fn compressed_size(v: Variant, arch: &str) -> Result<String, String> {
    let manifest = registry::manifest(&platform_ref(v, arch)?)?;
    let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
    report::image_size(
        &format!("{} linux/{arch} (compressed, registry)", v.name()),
        size,
    );
    let figure = format!("{size} bytes ({} KiB)", size / 1024);
    if v == Variant::Scratch && size > expect::SCRATCH_BUDGET_BYTES {
        return Err(format!(
            "{figure}: over the {} byte budget",
            expect::SCRATCH_BUDGET_BYTES
        ));
    }
    Ok(figure)
}

fn tag_guard() -> Result<String, String> {
    let good = format!("v{}", fixtures::cargo_version());
    let run = |tag: &str| {
        let mut cmd = fixtures::make("tag-guard");
        cmd.env("RELEASE_TAG", tag);
        crate::docker::output(&mut cmd, crate::docker::CALL_LIMIT)
    };
    run(&good)?;
    match run("v0.0.0-not-this-one") {
        Ok(_) => Err("make tag-guard took the tag v0.0.0-not-this-one".into()),
        Err(e) if e.contains(&format!("is not {good}")) => {
            Ok(format!("{good} taken, v0.0.0-not-this-one refused"))
        }
        Err(e) => Err(format!("refused, but without naming {good}: {e}")),
    }
}

/// After `make push`, everything it compiles is cached: the release build reuses it.
fn release_build() -> Result<String, String> {
    fixtures::push()?;
    let s = fixtures::settings();
    let mut cmd = fixtures::make("release-build");
    cmd.env("TAG", format!("{}-build", s.push_tag))
        .env("REGISTRY", &s.registry);
    let run = crate::bake::run("make release-build", cmd, fixtures::BUILD_LIMIT)?;
    let compiled: Vec<&str> = run
        .steps_named("cargo auditable build")
        .chain(run.steps_named("cargo chef cook"))
        .filter(|st| !st.cached)
        .map(|st| st.name.as_str())
        .collect();
    if !compiled.is_empty() {
        return Err(format!("compiled again after make push: {compiled:?}"));
    }
    Ok(format!(
        "{} s, {} steps, nothing compiled again",
        run.seconds,
        run.steps.len()
    ))
}
