//! Rebuilds: a one-file source change reuses the cached dependency layer (cargo chef cook).
//! (Rebuilding the same commit from source is checked in verifiable.rs.)

use std::path::Path;
use std::process::Command;

use libtest_mimic::Trial;

use crate::bake::{self, BuildRun};
use crate::docker;
use crate::fixtures::{self, BUILD_LIMIT};
use crate::report::check;

pub fn checks() -> Vec<Trial> {
    vec![check(
        "cache: a one-file source change reuses the cook layer",
        cache_reuse,
    )]
}

/// `docker buildx bake TARGET` on this repository with `--set` overrides.
pub fn bake_cmd(target: &str, sets: &[String]) -> Command {
    let s = fixtures::settings();
    let mut cmd = Command::new("docker");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["buildx", "bake", "-f", "docker-bake.hcl"])
        .env("IMAGE", &s.image)
        .env("TAG", &s.tag);
    for set in sets {
        cmd.args(["--set", set]);
    }
    cmd.arg(target);
    cmd
}

/// A copy of the tracked (and new, unignored) files, to change without touching the checkout.
fn copy_of_tree(dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    let files = docker::output(
        Command::new("git")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["ls-files", "-co", "--exclude-standard"]),
        docker::CALL_LIMIT,
    )?;
    for f in files.lines() {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
        let to = dir.join(f);
        if !from.is_file() {
            continue;
        }
        std::fs::create_dir_all(to.parent().unwrap()).map_err(|e| e.to_string())?;
        std::fs::copy(&from, &to).map_err(|e| format!("{f}: {e}"))?;
    }
    Ok(())
}

fn cache_reuse() -> Result<String, String> {
    let cold = fixtures::release()?.run.seconds;
    let tree = bake::scratch_file("tree");
    copy_of_tree(&tree)?;
    let main = tree.join("src/main.rs");
    let mut text = std::fs::read_to_string(&main).map_err(|e| e.to_string())?;
    text.push_str(&format!("// cache probe {}\n", std::process::id()));
    std::fs::write(&main, text).map_err(|e| e.to_string())?;
    let run = bake::run(
        "warm rebuild",
        bake_cmd(
            "image-local",
            &[
                format!("image-local.context={}", tree.display()),
                format!("image-local.platform={}", fixtures::host_platform()),
                "image-local.output=type=cacheonly".into(),
            ],
        ),
        BUILD_LIMIT,
    );
    let _ = std::fs::remove_dir_all(&tree);
    let run = run?;
    let cook = cached_state(&run, "cargo chef cook")?;
    let build = cached_state(&run, " build --release")?;
    match (cook, build) {
        (true, false) => Ok(format!(
            "warm rebuild {} s (make release: {cold} s)",
            run.seconds
        )),
        _ => Err(format!(
            "cook cached: {cook}, program build cached: {build}; want true, false"
        )),
    }
}

/// Whether every started step whose name contains `needle` came from the cache.
fn cached_state(run: &BuildRun, needle: &str) -> Result<bool, String> {
    let steps: Vec<_> = run
        .steps_named(needle)
        .filter(|s| !s.name.contains("chef prepare"))
        .collect();
    if steps.is_empty() {
        return Err(format!("no build step matching {needle:?}"));
    }
    Ok(steps.iter().all(|s| s.cached))
}
