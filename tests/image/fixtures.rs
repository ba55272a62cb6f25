//! What the checks share, built or started once on first use: the settings, the release build,
//! the push, and one running container per variant and platform.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::bake::{self, BuildRun};
use crate::docker::{self, Container};

pub const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];
pub const BUILD_LIMIT: Duration = Duration::from_secs(45 * 60);

pub struct Settings {
    pub image: String,
    pub tag: String,
    pub push_tag: String,
    pub registry: String,
}

pub fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Settings {
            image: std::env::var("E2E_IMAGE").unwrap_or_else(|_| "httpserver-e2e".into()),
            tag: "e2e".into(),
            push_tag: format!("e2e-{now}"),
            registry: std::env::var("REGISTRY").unwrap_or_else(|_| "localhost:5000".into()),
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    Scratch,
    Distroless,
}

pub const VARIANTS: [Variant; 2] = [Variant::Scratch, Variant::Distroless];

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Scratch => "scratch",
            Variant::Distroless => "distroless",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Variant::Scratch => "",
            Variant::Distroless => "-distroless",
        }
    }

    /// The image `make release` loads into the engine.
    pub fn local_ref(self) -> String {
        let s = settings();
        format!("{}:{}{}", s.image, s.tag, self.suffix())
    }

    /// The index `make push` publishes.
    pub fn pushed_ref(self) -> String {
        self.pushed_at(&settings().push_tag)
    }

    /// The index a push to `tag` publishes for this variant.
    pub fn pushed_at(self, tag: &str) -> String {
        let s = settings();
        format!("{}/{}:{tag}{}", s.registry, s.image, self.suffix())
    }
}

/// Cargo.toml's version: what the binary's --version prints and the images' version label says.
pub fn cargo_version() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or("")
        .to_owned()
}

/// `make VERB` with this run's image name and tag.
pub fn make(verb: &str) -> Command {
    let s = settings();
    let mut cmd = Command::new("make");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--no-print-directory", verb])
        .env("IMAGE", &s.image)
        .env("TAG", &s.tag);
    cmd
}

/// IDs of untagged ("dangling") images in the engine.
pub fn dangling_images() -> Result<BTreeSet<String>, String> {
    Ok(docker::docker(&[
        "images",
        "--filter",
        "dangling=true",
        "--quiet",
        "--no-trunc",
    ])?
    .lines()
    .map(str::to_owned)
    .collect())
}

/// A build and the untagged images it left behind.
pub struct Built {
    pub run: BuildRun,
    pub new_dangling: usize,
}

fn build_once(label: &str, cmd: Command) -> Result<Built, String> {
    let before = dangling_images()?;
    let run = bake::run(label, cmd, BUILD_LIMIT)?;
    let new_dangling = dangling_images()?.difference(&before).count();
    Ok(Built { run, new_dangling })
}

/// A shared build's outcome; dependents get a one-line error naming it.
fn outcome(result: &'static Result<Built, String>, what: &str) -> Result<&'static Built, String> {
    result.as_ref().map_err(|e| {
        format!(
            "needs {what}, which failed: {}",
            e.lines().next().unwrap_or("")
        )
    })
}

/// `make release` for both platforms (the arm64 images then run under emulation).
pub fn release_result() -> &'static Result<Built, String> {
    static CELL: OnceLock<Result<Built, String>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut cmd = make("release");
        cmd.env("LOCAL_PLATFORMS", PLATFORMS.join(","));
        build_once("make release", cmd)
    })
}

pub fn release() -> Result<&'static Built, String> {
    outcome(release_result(), "make release")
}

/// `make push` of both variants for both platforms to the registry.
pub fn push_result() -> &'static Result<Built, String> {
    static CELL: OnceLock<Result<Built, String>> = OnceLock::new();
    CELL.get_or_init(|| {
        let s = settings();
        let mut cmd = make("push");
        // As the release workflow on a tag: the tag guard first, metadata-action's tags and
        // bake files (the real action's, tests/fixtures/metadata-action).
        cmd.env("TAG", &s.push_tag)
            .env("REGISTRY", &s.registry)
            .env("RELEASE_TAG", format!("v{}", cargo_version()));
        with_metadata_action(&mut cmd, &s.push_tag);
        build_once("make push", cmd)
    })
}

pub fn push() -> Result<&'static Built, String> {
    outcome(push_result(), "make push")
}

/// The environment docker/metadata-action leaves for `make push` in the release workflow: the
/// bake files the real action wrote (tests/fixtures/metadata-action/tag: its labels, among them
/// its own title, description and version, and annotations), and this push's tags.
pub fn with_metadata_action(cmd: &mut Command, tag: &str) {
    let s = settings();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metadata-action/tag");
    cmd.env(
        "DOCKER_METADATA_OUTPUT_TAGS",
        format!("{}/{}:{tag}\n", s.registry, s.image),
    )
    .env(
        "DOCKER_METADATA_OUTPUT_BAKE_FILE_LABELS",
        fixture.join("docker-metadata-action-bake-labels.json"),
    )
    .env(
        "DOCKER_METADATA_OUTPUT_BAKE_FILE_ANNOTATIONS",
        fixture.join("docker-metadata-action-bake-annotations.json"),
    );
}

/// How a shared container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// As `docker run IMAGE` starts it.
    Default,
    /// `--read-only --user 12345:12345`: no writable path, an arbitrary uid, and heap sampling
    /// often enough that a short load gives samples.
    Locked,
}

impl Mode {
    fn args(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Mode::Default => (&[], &[]),
            Mode::Locked => (
                &["--read-only", "--user", "12345:12345"],
                &["--heap-sample-rate", "65536"],
            ),
        }
    }
}

type Key = (Variant, &'static str, Mode);

/// One container per variant, platform and mode, started on first use.
static RUNNING: Mutex<BTreeMap<Key, Container>> = Mutex::new(BTreeMap::new());

pub fn with_running<T>(
    v: Variant,
    platform: &'static str,
    f: impl FnOnce(&Container) -> Result<T, String>,
) -> Result<T, String> {
    with_container((v, platform, Mode::Default), f)
}

pub fn with_container<T>(
    key: Key,
    f: impl FnOnce(&Container) -> Result<T, String>,
) -> Result<T, String> {
    release()?;
    let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    let c = match running.entry(key) {
        std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::btree_map::Entry::Vacant(e) => {
            let (v, platform, mode) = key;
            let (args, cmd) = mode.args();
            let c = Container::run(&v.local_ref(), platform, args, cmd)?;
            if mode != Mode::Default {
                c.wait_healthy_http(startup_limit(platform))?;
            }
            e.insert(c)
        }
    };
    f(c)
}

/// Takes the running container out of the shared set (to stop it).
pub fn take_running(v: Variant, platform: &'static str) -> Result<Container, String> {
    with_running(v, platform, |_| Ok(()))?;
    let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
    Ok(running
        .remove(&(v, platform, Mode::Default))
        .expect("just started"))
}

/// Stops every container and removes every image this run made, so that afterwards the
/// engine holds what it held before (the original's label filter lists only the user's).
pub fn stop_all() {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner()).clear();
    docker::remove_all();
    let s = settings();
    let mut names = vec![s.image.clone(), format!("{}/{}", s.registry, s.image)];
    names.extend(crate::c_deps::repositories());
    names.extend(crate::allocator::repositories());
    let n = docker::remove_images_named(&names);
    eprintln!(
        "removed {n} images named {} or {}/{}",
        s.image, s.registry, s.image
    );
}

/// What the original's label filter still lists of this run's images (after `stop_all`).
pub fn leftover_images() -> Vec<String> {
    let listed = docker::original_label_filter().unwrap_or_default();
    let s = settings();
    listed
        .lines()
        .filter(|l| {
            l.split(':')
                .next()
                .is_some_and(|r| r == s.image || r.ends_with(&format!("/{}", s.image)))
        })
        .map(str::to_owned)
        .collect()
}

pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// Emulated platforms are slower: give them more time.
pub fn startup_limit(platform: &str) -> Duration {
    if platform == host_platform() {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(90)
    }
}
