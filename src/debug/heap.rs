//! `/debug/pprof/heap` and `/debug/pprof/allocs`: the sampled heap profile (see
//! profiler::heap) with Go's four sample types, `heap` defaulting to inuse_space and `allocs`
//! to alloc_space. `debug=1` gives Go's legacy text form; `seconds=N` a delta profile over N
//! seconds; `gc=1` is accepted and ignored: Rust has no garbage collector to run first, and
//! freed memory is already out of the in-use figures.

#![cfg(target_os = "linux")]

use std::time::Duration;

use hyper::StatusCode;

use super::{Debug, Reply, params};
use crate::responses;
use profiler::heap::{self, Record};
use profiler::pprof::{self, Builder, Profile};

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Heap,
    Allocs,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Heap => "heap",
            Kind::Allocs => "allocs",
        }
    }
}

pub async fn profile(debug: &Debug, kind: Kind, query: &str) -> Reply {
    let (level, seconds) = params::snapshot(query, 1, debug.limits.max_seconds)?;
    let records = match seconds {
        None => heap::snapshot(),
        Some(s) => {
            let before = heap::snapshot();
            tokio::time::sleep(Duration::from_secs(s)).await;
            delta(heap::snapshot(), &before)
        }
    };
    let rate = heap::rate();
    let rendered = super::render(move || {
        Ok(match level {
            0 => to_pprof(kind, &records, rate).to_gzip(),
            _ => to_text(&records, rate).into_bytes(),
        })
    })
    .await?;
    Ok(match level {
        0 => params::protobuf(kind.name(), rendered),
        _ => responses::text(StatusCode::OK, rendered),
    })
}

/// What was allocated (and is still in use) since `before`: stacks only ever get appended.
fn delta(mut now: Vec<Record>, before: &[Record]) -> Vec<Record> {
    for (r, b) in now.iter_mut().zip(before) {
        r.alloc_objects -= b.alloc_objects.min(r.alloc_objects);
        r.alloc_bytes -= b.alloc_bytes.min(r.alloc_bytes);
        r.inuse_objects = r.inuse_objects.saturating_sub(b.inuse_objects);
        r.inuse_bytes = r.inuse_bytes.saturating_sub(b.inuse_bytes);
    }
    now
}

pub fn to_pprof(kind: Kind, records: &[Record], rate: usize) -> Profile {
    let mut b = Builder::new(
        &[
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes"),
        ],
        ("space", "bytes", rate as i64),
    );
    b.default_sample_type(match kind {
        Kind::Heap => "inuse_space",
        Kind::Allocs => "alloc_space",
    });
    if rate == 0 {
        b.comment("heap sampling is off (--heap-sample-rate 0)");
    }
    for r in records
        .iter()
        .filter(|r| r.alloc_objects > 0 || r.inuse_objects > 0)
    {
        let (ao, ab) = heap::scale(r.alloc_objects, r.alloc_bytes, rate);
        let (io, ib) = heap::scale(r.inuse_objects, r.inuse_bytes, rate);
        b.sample(
            heap::caller_stack(&r.stack),
            vec![ao as i64, ab as i64, io as i64, ib as i64],
            &[],
        );
    }
    b.build()
}

/// Go's `debug=1` heap text: a header with the totals, then each stack with its figures
/// (`inuse objects: bytes [alloc objects: bytes]`) and its symbolized frames.
fn to_text(records: &[Record], rate: usize) -> String {
    let scaled: Vec<(&Record, [u64; 4])> = records
        .iter()
        .filter(|r| r.alloc_objects > 0 || r.inuse_objects > 0)
        .map(|r| {
            let (ao, ab) = heap::scale(r.alloc_objects, r.alloc_bytes, rate);
            let (io, ib) = heap::scale(r.inuse_objects, r.inuse_bytes, rate);
            (r, [io, ib, ao, ab])
        })
        .collect();
    let total = scaled.iter().fold([0u64; 4], |mut t, (_, v)| {
        t.iter_mut().zip(v).for_each(|(a, b)| *a += b);
        t
    });
    let mut out = format!(
        "heap profile: {}: {} [{}: {}] @ heap/{}\n",
        total[0],
        total[1],
        total[2],
        total[3],
        rate * 2
    );
    for (r, v) in &scaled {
        let stack = heap::caller_stack(&r.stack);
        out.push_str(&format!("{}: {} [{}: {}] @", v[0], v[1], v[2], v[3]));
        for a in stack {
            out.push_str(&format!(" {a:#x}"));
        }
        out.push('\n');
        out.push_str(&frames_text(stack));
        out.push('\n');
    }
    out.push_str(&format!(
        "\n# heap sample rate: {rate} bytes (--heap-sample-rate)\n{}",
        process_memory()
    ));
    out
}

/// `#\t0xADDR\tname+0xOFF` per frame, as Go's text profiles print them (file:line comes from
/// the debug file, through the tools).
pub fn frames_text(stack: &[u64]) -> String {
    let mut out = String::new();
    for &a in stack {
        match pprof::symbolize(a) {
            Some(s) => out.push_str(&format!("#\t{a:#x}\t{}+{:#x}\n", s.name, s.offset)),
            None => out.push_str(&format!("#\t{a:#x}\n")),
        }
    }
    out
}

/// The process's memory as the kernel counts it (Go prints runtime.MemStats here).
fn process_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("Vm") || l.starts_with("Rss"))
        .map(|l| format!("# {}\n", l.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_values_are_scaled_like_go() {
        let record = Record {
            stack: vec![to_pprof as *const () as u64].into(),
            alloc_objects: 302,
            alloc_bytes: 626_276,
            inuse_objects: 1,
            inuse_bytes: 12_931,
        };
        let p = to_pprof(Kind::Heap, &[record], 4096);
        let (ao, ab) = heap::scale(302, 626_276, 4096);
        let (io, ib) = heap::scale(1, 12_931, 4096);
        assert_eq!(
            p.sample[0].value,
            [ao as i64, ab as i64, io as i64, ib as i64]
        );
        assert!(ao > 302 && ib > 12_931);
        assert_eq!(p.string(p.default_sample_type), "inuse_space");
    }
}
