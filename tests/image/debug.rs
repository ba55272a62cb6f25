//! The debug surface where it ships: in each image on each platform, read-only and as an
//! arbitrary uid, CPU and heap profiles taken while the container serves load decode as pprof
//! and name this program's frames, and the other endpoints answer. A profile from the scratch
//! image symbolizes to file:line with the debug file bake exports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libtest_mimic::Trial;

use crate::common;
use crate::docker::Container;
use crate::fixtures::{self, Mode, PLATFORMS, VARIANTS};
use crate::report::check;

pub fn checks() -> Vec<Trial> {
    let mut all = Vec::new();
    for v in VARIANTS {
        for p in PLATFORMS {
            let label = format!("{} {p} --read-only --user 12345", v.name());
            all.push(check(
                format!("{label}: CPU + heap profiles under load name our frames"),
                move || fixtures::with_container((v, p, Mode::Locked), profiles),
            ));
            all.push(check(
                format!("{label}: goroutine, threadcreate, cmdline, trace answer"),
                move || fixtures::with_container((v, p, Mode::Locked), other_endpoints),
            ));
        }
    }
    all.push(check(
        "scratch linux/amd64: pprof -lines with the exported debug symbols shows file:line",
        lines_with_debug_symbols,
    ));
    all
}

fn get(c: &Container, path: &str, limit: Duration) -> Result<common::Reply, String> {
    common::try_request(c.addr(), "GET", path, b"", limit).map_err(|e| format!("GET {path}: {e}"))
}

/// Requests from two keep-alive connections while `f` runs.
fn under_load<T>(c: &Container, f: impl FnOnce() -> T) -> T {
    let stop = Arc::new(AtomicBool::new(false));
    let load = common::load_keepalive(c.addr(), 2, stop.clone());
    let out = f();
    stop.store(true, Ordering::Relaxed);
    let _ = load.join();
    out
}

fn decoded(c: &Container, path: &str) -> Result<httpserver::profiler::pprof::Profile, String> {
    let r = get(c, path, Duration::from_secs(60))?;
    if r.status != 200 {
        return Err(format!("GET {path}: {} {}", r.status, r.text()));
    }
    std::panic::catch_unwind(|| common::decode(&r.body))
        .map_err(|_| format!("{path}: not a pprof profile"))
}

fn ours(p: &httpserver::profiler::pprof::Profile) -> usize {
    p.function
        .iter()
        .filter(|f| p.string(f.name).starts_with("httpserver::"))
        .count()
}

fn profiles(c: &Container) -> Result<String, String> {
    let cpu = under_load(c, || decoded(c, "/debug/pprof/profile?seconds=2"))?;
    let heap = decoded(c, "/debug/pprof/allocs")?;
    let samples: i64 = cpu.sample.iter().map(|s| s.value[0]).sum();
    let build_id = cpu
        .mapping
        .first()
        .map(|m| cpu.string(m.build_id).to_owned())
        .unwrap_or_default();
    match (ours(&cpu), ours(&heap), build_id.len()) {
        (0, _, _) => Err(format!(
            "CPU profile ({samples} samples) has no httpserver:: frame"
        )),
        (_, 0, _) => Err(format!(
            "heap profile ({} samples) has no httpserver:: frame",
            heap.sample.len()
        )),
        (_, _, 40) => Ok(format!(
            "cpu {samples} samples / {} of our functions; heap {} stacks / {} of ours; build id {}",
            ours(&cpu),
            heap.sample.len(),
            ours(&heap),
            &build_id[..12]
        )),
        _ => Err(format!("mapping build id {build_id:?}")),
    }
}

fn other_endpoints(c: &Container) -> Result<String, String> {
    let mut sizes = Vec::new();
    for path in [
        "/debug/pprof/goroutine?debug=1",
        "/debug/pprof/goroutine",
        "/debug/pprof/threadcreate?debug=1",
        "/debug/pprof/cmdline",
        "/debug/pprof/trace?seconds=1",
    ] {
        let r = get(c, path, Duration::from_secs(60))?;
        if r.status != 200 {
            return Err(format!("GET {path}: {} {}", r.status, r.text()));
        }
        sizes.push(format!(
            "{} {} B",
            path.trim_start_matches("/debug/pprof/"),
            r.body.len()
        ));
    }
    Ok(sizes.join(", "))
}

/// A CPU profile from the scratch image (whose binary has no line tables), symbolized by
/// Google's pprof with `PPROF_BINARY_PATH` at the `debug-symbols` bake export: file:line of
/// this program's sources (built under /src in the image).
fn lines_with_debug_symbols() -> Result<String, String> {
    let platform = fixtures::host_platform();
    let dir = crate::bake::scratch_file("debug-symbols");
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = crate::rebuild::bake_cmd(
        "debug-symbols",
        &[
            format!("debug-symbols.platform={platform}"),
            format!("debug-symbols.output=type=local,dest={}", dir.display()),
        ],
    );
    cmd.env("LOCAL_PLATFORMS", &platform);
    crate::bake::run("debug symbols", cmd, fixtures::BUILD_LIMIT)?;
    let raw = fixtures::with_container(
        (fixtures::Variant::Scratch, "linux/amd64", Mode::Locked),
        |c| {
            under_load(c, || {
                get(c, "/debug/pprof/profile?seconds=2", Duration::from_secs(60))
            })
        },
    )?;
    let out = std::panic::catch_unwind(|| {
        common::google_pprof(
            &raw.body,
            "profile",
            &["-lines", "-top", "-nodecount=1000"],
            &[("PPROF_BINARY_PATH", dir.to_str().unwrap())],
        )
    })
    .map_err(|_| "pprof could not read the profile".to_owned())?;
    let ours: Vec<&str> = out
        .split_whitespace()
        .filter(|w| w.starts_with("/src/src/") && w.contains(".rs:"))
        .collect();
    match ours.first() {
        Some(example) => Ok(format!(
            "{} frames in our sources, e.g. {example}",
            ours.len()
        )),
        None => Err(format!("no file:line in /src/src/:\n{out}")),
    }
}
