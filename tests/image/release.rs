//! `make release`: both variants built through bake into the engine, found by the original's
//! label filter, configured as documented, with nothing extra inside and nothing left over.

use libtest_mimic::Trial;

use crate::docker::{self, Container, ImageInspect};
use crate::expect;
use crate::fixtures::{self, VARIANTS, Variant};
use crate::report::{self, check};

pub fn checks() -> Vec<Trial> {
    let mut all = vec![
        check("engine: server, buildx and base images", engine),
        check(
            "engine: host firewall, links, forwarding and units as before it started",
            host_untouched,
        ),
        check(
            "release: make release builds both variants for linux/amd64 + linux/arm64",
            || {
                let built = fixtures::release_result().as_ref().map_err(Clone::clone)?;
                let cached = built.run.steps.iter().filter(|s| s.cached).count();
                Ok(format!(
                    "{} s ({cached}/{} steps cached)",
                    built.run.seconds,
                    built.run.steps.len()
                ))
            },
        ),
        check("release: no untagged image left behind", || {
            no_new_dangling(fixtures::release()?.new_dangling)
        }),
        check("release: the label filter lists both images", label_filter),
    ];
    for v in VARIANTS {
        let name = v.name();
        all.push(check(
            format!("{name}: image config (env, labels, port, user, entrypoint, healthcheck)"),
            move || {
                let image = local_image(v)?;
                expect::config_ok(&image.config).map(|_| String::new())
            },
        ));
        all.push(check(format!("{name}: no shell inside"), move || {
            no_shell(v)
        }));
        all.push(check(
            format!("{name}: serves with --read-only"),
            move || {
                fixtures::release()?;
                let c = Container::run(
                    &v.local_ref(),
                    &fixtures::host_platform(),
                    &["--read-only"],
                    &[],
                )?;
                let t = c.wait_healthy_http(fixtures::startup_limit(&fixtures::host_platform()))?;
                Ok(format!("healthy after {} ms", t.as_millis()))
            },
        ));
        all.push(check(
            format!("{name}: image size in the engine"),
            move || {
                let size = local_image(v)?.size;
                let label = format!("{name} {} (uncompressed, local)", fixtures::host_platform());
                report::image_size(&label, size);
                Ok(format!(
                    "{size} bytes ({} KiB, {})",
                    size / 1024,
                    fixtures::host_platform()
                ))
            },
        ));
    }
    all
}

fn engine() -> Result<String, String> {
    let server = docker::docker(&["version", "--format", "{{.Server.Version}}"])?;
    let buildx = docker::docker(&["buildx", "version"])?;
    let bases = match std::env::var("RUST_IMAGE") {
        Ok(img) if img.contains("/standin/") => "local stand-in bases",
        _ => "public bases",
    };
    Ok(format!(
        "dockerd {server}; {}; {bases}",
        buildx
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

/// `make engine` snapshots the host state when it starts; it must not have changed since.
fn host_untouched() -> Result<String, String> {
    let state =
        std::env::var("ENGINE_STATE").unwrap_or_else(|_| "/var/cache/httpserver-engine".into());
    let before = std::fs::read_to_string(format!("{state}/run/host-before"))
        .map_err(|e| format!("no snapshot from make engine ({e})"))?;
    let now = docker::output(
        std::process::Command::new("bash")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["scripts/engine.sh", "host-state"]),
        docker::CALL_LIMIT,
    )?;
    let changed: Vec<&str> = now
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .chain(before.lines().filter(|b| !now.lines().any(|l| l == *b)))
        .collect();
    if changed.is_empty() {
        Ok(format!("{} lines compared, all equal", now.lines().count()))
    } else {
        Err(format!("changed: {changed:?}"))
    }
}

pub fn no_new_dangling(n: usize) -> Result<String, String> {
    if n == 0 {
        Ok("0 new untagged images".into())
    } else {
        Err(format!(
            "{n} new untagged images (docker images --filter dangling=true)"
        ))
    }
}

fn local_image(v: Variant) -> Result<ImageInspect, String> {
    fixtures::release()?;
    docker::inspect("image", &v.local_ref())
}

/// The Go original's README command, verbatim.
fn label_filter() -> Result<String, String> {
    fixtures::release()?;
    let listed = docker::original_label_filter()?;
    let listed: Vec<&str> = listed.lines().collect();
    let missing: Vec<String> = VARIANTS
        .iter()
        .map(|v| v.local_ref())
        .filter(|r| !listed.contains(&r.as_str()))
        .collect();
    if missing.is_empty() {
        Ok(format!("{} images listed", listed.len()))
    } else {
        Err(format!("missing {missing:?}; listed {listed:?}"))
    }
}

/// `docker run` exits 127 when the command cannot be found: there is no /bin/sh to run.
fn no_shell(v: Variant) -> Result<String, String> {
    fixtures::release()?;
    let mut cmd = std::process::Command::new("docker");
    cmd.args([
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &v.local_ref(),
        "-c",
        "true",
    ]);
    let status = docker::status(&mut cmd, docker::CALL_LIMIT)?;
    match status.code() {
        Some(127) => Ok("/bin/sh: not found (exit 127)".into()),
        other => Err(format!(
            "docker run --entrypoint /bin/sh exited {other:?}, want 127"
        )),
    }
}
