//! An ordinary Docker: on the classic image store with the `docker` driver (Ubuntu's docker.io
//! before 29, an upgraded Docker Desktop) two platforms cannot be built at once, so `make push`,
//! `make symbols` and a two-platform `make release` stop before building with one line saying
//! what to run; one platform goes ahead. Shown on a second dockerd configured that way
//! (`engine.sh classic`, beside the private engine), and on the engine the checks use.

use std::process::Command;

use libtest_mimic::Trial;

use crate::docker::{self, CALL_LIMIT};
use crate::fixtures::{self, PLATFORMS};
use crate::report::check;

pub fn checks() -> Vec<Trial> {
    vec![check(
        "stock Docker, classic image store: two-platform verbs stop with one line saying what to run",
        classic_store,
    )]
}

fn engine(args: &[&str]) -> Result<String, String> {
    docker::output(
        Command::new("bash")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("scripts/engine.sh")
            .args(args),
        CALL_LIMIT,
    )
    .map(|s| s.trim().to_owned())
}

/// `make VERB` against the engine at `host`: its exit code and stderr.
fn verb_on(host: &str, verb: &str, env: &[(&str, &str)]) -> Result<(Option<i32>, String), String> {
    let mut cmd = fixtures::make(verb);
    cmd.env("DOCKER_HOST", host).envs(env.iter().copied());
    let out = cmd.output().map_err(|e| e.to_string())?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn classic_store() -> Result<String, String> {
    if engine(&["running"]).is_err() {
        return Err(
            "needs the private engine (make e2e starts one where it finds no Docker)".into(),
        );
    }
    let host = engine(&["classic", "up"])?;
    let result = (|| {
        let two = PLATFORMS.join(",");
        let mut refused = Vec::new();
        for (verb, env) in [
            ("push", vec![("RELEASE_PLATFORMS", two.as_str())]),
            ("symbols", vec![("REF", "localhost:5000/any:tag")]),
            ("release", vec![("LOCAL_PLATFORMS", two.as_str())]),
        ] {
            let (code, stderr) = verb_on(&host, verb, &env)?;
            let line = stderr
                .lines()
                .find(|l| l.starts_with(&format!("make {verb}: ")))
                .ok_or_else(|| format!("make {verb}: no one-line reason in {stderr:?}"))?;
            if code != Some(2)
                || !line.contains("containerd image store")
                || !(verb == "release" || line.contains("docker buildx create"))
            {
                return Err(format!("make {verb}: exit {code:?}: {line}"));
            }
            refused.push(verb);
        }
        // One platform is what this engine can do: the preflight lets it through.
        let status = docker::status(
            Command::new("bash")
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(["scripts/image-preflight.sh", "release", "", "load"])
                .env("DOCKER_HOST", &host),
            CALL_LIMIT,
        )?;
        if !status.success() {
            return Err("one platform refused on the classic store".into());
        }
        Ok(refused)
    })();
    let stopped = engine(&["classic", "down"]);
    let refused = result?;
    stopped?;
    // The engine the checks use (containerd image store) passes the same preflight.
    let status = docker::status(
        Command::new("bash")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["scripts/image-preflight.sh", "push", &PLATFORMS.join(",")]),
        CALL_LIMIT,
    )?;
    if !status.success() {
        return Err("the containerd-store engine refused two platforms".into());
    }
    Ok(format!(
        "classic store: make {} refused, one platform passes; containerd store passes",
        refused.join(", make ")
    ))
}
