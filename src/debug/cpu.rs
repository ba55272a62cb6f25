//! `/debug/pprof/profile` (pprof protobuf, as Go's) and `/debug/pprof/flamegraph` (SVG): a
//! CPU capture of the whole process, sampled at 100 Hz like Go's. Captures overlap (two
//! scrapers and a person at once): each gets the samples of its own window, up to
//! `--max-cpu-profiles` at once, then 503 with Retry-After.

#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::time::Duration;

use hyper::{Response, StatusCode};

use super::{Debug, Reply, params};
use crate::responses::{self, Body};
use profiler::cpu::{CpuProfile, CpuSampler};
use profiler::pprof::{self, Builder, Profile};

const SAMPLE_HZ: u32 = 100;

pub async fn profile(debug: &Debug, query: &str) -> Reply {
    let captured = capture(debug, query).await?;
    let gz = super::render(move || Ok(to_pprof(&captured).to_gzip())).await?;
    Ok(params::protobuf("profile", gz))
}

pub async fn flamegraph(debug: &Debug, query: &str) -> Reply {
    let captured = capture(debug, query).await?;
    let svg = super::render(move || to_svg(&captured)).await?;
    Ok(responses::with_type(StatusCode::OK, "image/svg+xml", svg))
}

async fn capture(debug: &Debug, query: &str) -> Result<CpuProfile, Response<Body>> {
    let seconds = params::capture_seconds(query, debug.limits.max_seconds)?;
    let _slot = debug.cpu_slots.take(Duration::from_secs(seconds))?;
    let sampler = CpuSampler::start(SAMPLE_HZ)
        .map_err(|e| super::internal_error("could not start the CPU profiler", &e))?;
    let running = debug.cpu_slots.in_use();
    tracing::info!(seconds, running, "CPU profile started");
    // A client that goes away drops this future, and with it the sampler (which stops).
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    Ok(sampler.stop())
}

/// Go's CPU profile shape: samples/count and cpu/nanoseconds per stack.
pub fn to_pprof(p: &CpuProfile) -> Profile {
    let period = p.period.as_nanos() as i64;
    let mut b = Builder::new(
        &[("samples", "count"), ("cpu", "nanoseconds")],
        ("cpu", "nanoseconds", period),
    );
    b.duration(p.duration);
    for (stack, n) in p.samples() {
        b.sample(stack, vec![n as i64, n as i64 * period], &[]);
    }
    if p.dropped > 0 {
        b.comment(&format!(
            "{} samples not recorded: too many distinct stacks",
            p.dropped
        ));
    }
    if p.busy > 0 {
        b.comment(&format!(
            "{} samples not recorded: the unwinder was walking a heap sample",
            p.busy
        ));
    }
    if p.concurrent > 0 {
        b.comment(&format!(
            "{} samples not recorded: another thread's sample was being walked",
            p.concurrent
        ));
    }
    b.build()
}

/// Folded stacks (root first) rendered by inferno; an idle capture still gets a valid SVG.
fn to_svg(p: &CpuProfile) -> Result<Vec<u8>, String> {
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut lines = Vec::new();
    for (stack, n) in p.samples() {
        let mut frames: Vec<String> = Vec::new();
        for addr in stack.iter().rev() {
            let name = names.entry(*addr).or_insert_with(|| {
                pprof::symbolize(*addr)
                    .map_or_else(|| format!("{addr:#x}"), |s| s.name.replace(';', ":"))
            });
            frames.push(name.clone());
        }
        lines.push(format!("{} {n}", frames.join(";")));
    }
    let seconds = p.duration.as_secs_f64();
    if lines.is_empty() {
        return Ok(format!(
            "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"1200\" height=\"60\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"600\" y=\"34\" text-anchor=\"middle\" font-family=\"Verdana\" font-size=\"14\">No CPU samples in {seconds:.0} s: the process was idle.</text></svg>\n"
        ).into_bytes());
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = format!("httpserver CPU, {seconds:.0} s, {} samples", p.total());
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut svg)
        .map_err(|e| e.to_string())?;
    Ok(svg)
}
