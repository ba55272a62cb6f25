//! The allocator as a build choice: the service's image with mimalloc (`FEATURES=mimalloc`,
//! C cross-compiled for both platforms by the builder) runs on linux/amd64 and linux/arm64
//! (under QEMU), its heap profiler samples under it (the sampler wraps whichever allocator is
//! global), and CPU samples taken inside mimalloc's C code walk through its frames (their
//! `.eh_frame`) to this program's. Built as `make image-dev` builds (profile dev-image: no fat
//! LTO, which changes neither the allocator nor the unwinding, and saves minutes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libtest_mimic::Trial;

use crate::bake;
use crate::common;
use crate::docker::Container;
use crate::fixtures::{self, BUILD_LIMIT, PLATFORMS};
use crate::report::check;

pub fn checks() -> Vec<Trial> {
    let mut all = vec![check(
        "mimalloc: make image-dev FEATURES=mimalloc builds for linux/amd64 + linux/arm64",
        || built().clone(),
    )];
    for p in PLATFORMS {
        all.push(check(
            format!("mimalloc {p} --read-only: heap samples name our frames; CPU samples in mimalloc's C walk to ours"),
            move || profiles(p),
        ));
    }
    all
}

fn image() -> String {
    format!("{}-mimalloc", fixtures::settings().image)
}

fn built() -> &'static Result<String, String> {
    static CELL: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        let mut cmd = fixtures::make("image-dev");
        cmd.env("IMAGE", image())
            .env("FEATURES", "mimalloc")
            .env("LOCAL_PLATFORMS", PLATFORMS.join(","));
        let run = bake::run("make image-dev FEATURES=mimalloc", cmd, BUILD_LIMIT)?;
        Ok(format!("{} s", run.seconds))
    })
}

/// The text-rendering debug endpoints allocate plenty per request: two threads asking for
/// them keep mimalloc busy while `f` runs.
fn allocating<T>(c: &Container, f: impl FnOnce() -> T) -> T {
    let stop = Arc::new(AtomicBool::new(false));
    let addr = c.addr();
    let threads: Vec<_> = [
        "/debug/pprof/goroutine?debug=2",
        "/debug/pprof/heap?debug=1",
    ]
    .into_iter()
    .map(|path| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conn = None;
            while !stop.load(Ordering::Relaxed) {
                let _ = common::keepalive_get(&mut conn, addr, path);
            }
        })
    })
    .collect();
    let out = f();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    out
}

fn decoded(c: &Container, path: &str) -> Result<profiler::pprof::Profile, String> {
    let r = common::try_request(c.addr(), "GET", path, b"", Duration::from_secs(60))
        .map_err(|e| format!("GET {path}: {e}"))?;
    if r.status != 200 {
        return Err(format!("GET {path}: {}", r.status));
    }
    std::panic::catch_unwind(|| common::decode(&r.body)).map_err(|_| format!("{path}: not pprof"))
}

/// The function names of a sample's stack, leaf first.
fn stack(p: &profiler::pprof::Profile, s: &profiler::pprof::Sample) -> Vec<String> {
    s.location_id
        .iter()
        .filter_map(|id| p.location.iter().find(|l| l.id == *id))
        .flat_map(|l| l.line.iter())
        .filter_map(|line| p.function.iter().find(|f| f.id == line.function_id))
        .map(|f| p.string(f.name).to_owned())
        .collect()
}

fn profiles(platform: &'static str) -> Result<String, String> {
    built().as_ref().map_err(Clone::clone)?;
    let c = Container::run(
        &format!("{}:dev", image()),
        platform,
        &["--read-only", "--user", "12345:12345"],
        &["--heap-sample-rate", "65536"],
    )?;
    c.wait_healthy_http(fixtures::startup_limit(platform))?;
    let cpu = allocating(&c, || decoded(&c, "/debug/pprof/profile?seconds=3"))?;
    let heap = decoded(&c, "/debug/pprof/allocs")?;
    let in_mimalloc: Vec<Vec<String>> = cpu
        .sample
        .iter()
        .map(|s| stack(&cpu, s))
        .filter(|st| {
            st.first()
                .is_some_and(|leaf| leaf.starts_with("mi_") || leaf.starts_with("_mi_"))
        })
        .collect();
    let walked = in_mimalloc
        .iter()
        .filter(|st| st.iter().any(|f| f.starts_with("httpserver::")))
        .count();
    let ours_in_heap = heap
        .sample
        .iter()
        .filter(|s| {
            stack(&heap, s)
                .iter()
                .any(|f| f.starts_with("httpserver::"))
        })
        .count();
    if ours_in_heap == 0 {
        return Err(format!(
            "heap profile ({} samples): none names our frames",
            heap.sample.len()
        ));
    }
    if walked == 0 {
        return Err(format!(
            "{} CPU samples ({} with the leaf in mimalloc): none walks on to our frames",
            cpu.sample.len(),
            in_mimalloc.len()
        ));
    }
    Ok(format!(
        "heap: {ours_in_heap} of {} samples in our frames; cpu: {walked} of {} samples in mimalloc walk to ours",
        heap.sample.len(),
        in_mimalloc.len()
    ))
}

/// The image's name, for the run's cleanup.
pub fn repositories() -> Vec<String> {
    vec![image()]
}
