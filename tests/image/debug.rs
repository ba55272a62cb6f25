//! The debug surface where it ships: in each image on each platform, read-only and as an
//! arbitrary uid, CPU and heap profiles taken while the container serves load decode as pprof
//! and name this program's frames, and the other endpoints answer; Parca's and Alloy's default
//! scrapes plus a person's `go tool pprof` all succeed at once under load in each variant. A
//! profile from each pushed platform image symbolizes to file:line with the debug symbols
//! `make symbols` fetches for it from the registry.

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
    for v in VARIANTS {
        all.push(check(
            format!(
                "{} linux/amd64 --read-only --user 12345: Parca + Alloy + go tool pprof at once under load, then SIGTERM",
                v.name()
            ),
            move || scrapers_in_image(v),
        ));
    }
    for arch in crate::published::ARCHES {
        all.push(check(
            format!("symbols: make symbols for the pushed scratch image; pprof -lines on its linux/{arch} profile shows file:line"),
            move || pushed_symbols(arch),
        ));
    }
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

fn decoded(c: &Container, path: &str) -> Result<profiler::pprof::Profile, String> {
    let r = get(c, path, Duration::from_secs(60))?;
    if r.status != 200 {
        return Err(format!("GET {path}: {} {}", r.status, r.text()));
    }
    std::panic::catch_unwind(|| common::decode(&r.body))
        .map_err(|_| format!("{path}: not a pprof profile"))
}

fn ours(p: &profiler::pprof::Profile) -> usize {
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

/// The scrapers' conformance run (common::scrapers), shorter than `make test`'s: two rounds
/// of each scraper and a person's capture, in a container of its own (it gets SIGTERM).
fn scrapers_in_image(v: fixtures::Variant) -> Result<String, String> {
    fixtures::release()?;
    let c = Container::run(
        &v.local_ref(),
        "linux/amd64",
        &["--read-only", "--user", "12345:12345"],
        &[],
    )?;
    c.wait_healthy_http(fixtures::startup_limit("linux/amd64"))?;
    let plan = common::scrapers::Plan {
        scraping: Duration::from_secs(20),
        baseline: Duration::from_secs(5),
        load_connections: 8,
        // Every connection to the container goes through the engine's port proxy, which
        // forks and execs socat for each: under load, a fresh connection takes 0.5 to 1.5 s
        // when several open at once, and the scrapers' fresh connections cost the proxy CPU
        // on the same two cores the load uses. So here a stall is a probe unanswered for 3 s
        // (a wedged worker never answers), and throughput is reported, not judged; the
        // release binary's run (tests/scrapers.rs) judges both, straight to the server.
        probe_limit: Duration::from_secs(3),
        throughput_share: None,
    };
    let outcome = common::scrapers::run(c.addr(), &plan);
    eprintln!("{} linux/amd64:\n{}", v.name(), outcome.table());
    let t = std::time::Instant::now();
    crate::docker::docker(&["kill", "--signal", "TERM", &c.name])?;
    let code = crate::docker::docker(&["wait", &c.name])?;
    let exit = t.elapsed();
    let mut problems = outcome.problems.clone();
    if exit > Duration::from_secs(1) || code.trim() != "0" {
        problems.push(format!("SIGTERM: exit code {} after {exit:?}", code.trim()));
    }
    let (scrapes, ok) = outcome
        .rows
        .values()
        .fold((0, 0), |(n, k), r| (n + r.scrapes, k + r.ok));
    match problems.first() {
        Some(first) => Err(format!(
            "{first} ({} problems)\n{}",
            problems.len(),
            problems.join("\n")
        )),
        None => Ok(format!(
            "{ok}/{scrapes} scrapes 200 + readable; {:.0} % throughput while scraping; slowest probe {:.0} ms; exit {:.0} ms",
            100.0 * outcome.rps_with / outcome.rps_without.max(1.0),
            outcome.probe_max.as_secs_f64() * 1000.0,
            exit.as_secs_f64() * 1000.0
        )),
    }
}

/// `make symbols` for the pushed scratch index, once: the directory it filled.
fn fetched_symbols() -> Result<&'static std::path::PathBuf, String> {
    static CELL: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        fixtures::push()?;
        let dir = crate::bake::scratch_file("symbols");
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = fixtures::make("symbols");
        cmd.env("REF", fixtures::Variant::Scratch.pushed_ref())
            .env("SYMBOLS", &dir);
        crate::docker::output(&mut cmd, fixtures::BUILD_LIMIT)?;
        Ok(dir)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A CPU profile taken from a container of the pushed linux/`arch` image (pulled by digest
/// from the registry), symbolized by Google's pprof with PPROF_BINARY_PATH at what `make
/// symbols` fetched: the mapping's build id finds its directory, and file:line of this
/// program's sources (built under /src in the image) appear.
fn pushed_symbols(arch: &str) -> Result<String, String> {
    let dir = fetched_symbols()?;
    let image = crate::published::platform_ref(fixtures::Variant::Scratch, arch)?;
    let platform = format!("linux/{arch}");
    let c = Container::run(
        &image,
        &platform,
        &["--read-only", "--user", "12345:12345"],
        &[],
    )?;
    c.wait_healthy_http(fixtures::startup_limit(&platform))?;
    let raw = under_load(&c, || {
        get(
            &c,
            "/debug/pprof/profile?seconds=3",
            Duration::from_secs(60),
        )
    })?;
    let profile = std::panic::catch_unwind(|| common::decode(&raw.body))
        .map_err(|_| "not a pprof profile".to_owned())?;
    let build_id = profile
        .mapping
        .first()
        .map(|m| profile.string(m.build_id).to_owned())
        .unwrap_or_default();
    if !dir.join(&build_id).join("httpserver.debug").is_file() {
        return Err(format!(
            "make symbols fetched nothing for build id {build_id:?} in {}",
            dir.display()
        ));
    }
    let out = std::panic::catch_unwind(|| {
        common::google_pprof(
            &raw.body,
            "profile",
            &["-lines", "-top", "-nodecount=1000"],
            &[
                ("PPROF_BINARY_PATH", dir.to_str().unwrap()),
                // llvm-symbolizer reads either architecture's DWARF (addr2line: the host's).
                ("PPROF_TOOLS", &common::llvm_tools_dir()),
            ],
        )
    })
    .map_err(|_| "pprof could not read the profile".to_owned())?;
    let ours: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" /src/src/") && l.contains(".rs:"))
        .collect();
    match ours.first() {
        Some(example) => Ok(format!(
            "build id {}: {} lines in our sources, e.g. {}",
            &build_id[..12.min(build_id.len())],
            ours.len(),
            example
                .split_whitespace()
                .skip(5)
                .collect::<Vec<_>>()
                .join(" ")
        )),
        None => Err(format!("no file:line in /src/src/:\n{out}")),
    }
}
