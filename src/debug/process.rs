//! `/debug/pprof/cmdline` (argv, NUL-separated, as Go's) and `/debug/pprof/threadcreate` (the
//! process's OS threads: Go counts threads created with their creation stacks; Rust keeps no
//! creation stacks, so this lists the live threads by name, read from /proc/self/task).

#![cfg(target_os = "linux")]

use hyper::{Response, StatusCode};

use super::{Reply, params};
use crate::responses::{self, Body};
use profiler::pprof::Builder;

pub fn cmdline() -> Response<Body> {
    let args: Vec<String> = std::env::args().collect();
    responses::text(StatusCode::OK, args.join("\0"))
}

/// One OS thread of this process.
pub struct Thread {
    pub tid: u32,
    pub name: String,
    /// The kernel's state letter (R running, S sleeping, ...).
    pub state: char,
}

pub fn threads() -> Vec<Thread> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut all: Vec<Thread> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let tid = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) S ...`: the name may hold spaces and parentheses.
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            Some(Thread {
                tid,
                name: stat[open + 1..close].to_owned(),
                state: stat[close + 1..].trim_start().chars().next()?,
            })
        })
        .collect();
    all.sort_by_key(|t| t.tid);
    all
}

pub async fn threadcreate(query: &str, max_seconds: u64) -> Reply {
    let (level, seconds) = params::snapshot(query, 1, max_seconds)?;
    if level > 0 {
        let threads = threads();
        let mut out = format!("threadcreate profile: total {}\n", threads.len());
        for t in &threads {
            out.push_str(&format!(
                "1 @ thread {} {:?} state {}\n",
                t.tid, t.name, t.state
            ));
        }
        return Ok(responses::text(StatusCode::OK, out));
    }
    // One sample per thread, under a one-frame stack named after the thread; as a delta, +1
    // for a thread that started in the window and -1 for one that ended.
    let by_thread = params::delta_counts(seconds, || {
        threads()
            .into_iter()
            .map(|t| ((t.name, t.tid), 1))
            .collect()
    })
    .await;
    let mut b = Builder::new(&[("threadcreate", "count")], ("threadcreate", "count", 1));
    for ((name, tid), n) in &by_thread {
        b.named_sample(
            &[&format!("thread {name}")],
            *n,
            &[("tid", &tid.to_string())],
        );
    }
    if let Some(s) = seconds {
        b.duration(std::time::Duration::from_secs(s));
    }
    Ok(params::protobuf("threadcreate", b.build().to_gzip()))
}
