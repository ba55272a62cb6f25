//! `/debug/pprof/goroutine`: the async runtime's tasks and where each is suspended, from
//! tokio's task dump (built with `--cfg tokio_unstable` and the `taskdump` feature, see
//! .cargo/config.toml), plus the OS threads. `debug=0` pprof protobuf (one sample per
//! distinct stack, valued by count), `debug=1` Go's text (one block per distinct stack with
//! its count), `debug=2` one block per task.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use hyper::{Response, StatusCode};

use super::heap::frames_text;
use super::params;
use super::process::threads;
use crate::profiler::pprof::{self, Builder};
use crate::responses::{self, Body};

/// A dump waits for every worker to reach a safe point; a blocked worker must not hang it.
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);

/// One task: its id and the stacks (innermost first) of the futures it is suspended in.
struct Task {
    id: String,
    stacks: Vec<Vec<u64>>,
}

pub async fn goroutine(query: &str) -> Response<Body> {
    let level = match params::debug(query, 2) {
        Ok(n) => n,
        Err(m) => return params::bad_request(&m),
    };
    let handle = tokio::runtime::Handle::current();
    let Ok(dump) = tokio::time::timeout(DUMP_TIMEOUT, handle.dump()).await else {
        return responses::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "task dump timed out: a runtime worker is blocked",
        );
    };
    // Unwinding info resolution is CPU-heavy: off the runtime's workers.
    let rendered = super::render(move || {
        let tasks: Vec<Task> = dump
            .tasks()
            .iter()
            .map(|t| Task {
                id: t.id().to_string(),
                stacks: t
                    .trace()
                    .resolve_backtraces()
                    .iter()
                    .map(|bt| {
                        // Frames hold return addresses: step back into the call instruction.
                        bt.frames()
                            .map(|f| (f.ip() as u64).saturating_sub(1))
                            .collect()
                    })
                    .collect(),
            })
            .collect();
        Ok(match level {
            0 => to_pprof(&tasks).to_gzip(),
            1 => by_stack_text(&tasks).into_bytes(),
            _ => per_task_text(&tasks).into_bytes(),
        })
    })
    .await;
    match (rendered, level) {
        (Ok(gz), 0) => params::protobuf("goroutine", gz),
        (Ok(text), _) => responses::text(StatusCode::OK, text),
        (Err(resp), _) => resp,
    }
}

/// Distinct stacks and how many tasks are suspended in each.
fn distinct(tasks: &[Task]) -> BTreeMap<&[u64], u64> {
    let mut counts = BTreeMap::new();
    for s in tasks.iter().flat_map(|t| &t.stacks) {
        *counts.entry(s.as_slice()).or_insert(0) += 1;
    }
    counts
}

fn to_pprof(tasks: &[Task]) -> pprof::Profile {
    let mut b = Builder::new(&[("goroutine", "count")], ("goroutine", "count", 1));
    b.comment(&format!("{} tasks", tasks.len()));
    for (stack, n) in distinct(tasks) {
        b.sample(stack, vec![n as i64], &[]);
    }
    b.build()
}

fn by_stack_text(tasks: &[Task]) -> String {
    let mut out = format!("goroutine profile: total {} tasks\n", tasks.len());
    for (stack, n) in distinct(tasks) {
        let addrs: Vec<String> = stack.iter().map(|a| format!("{a:#x}")).collect();
        let _ = writeln!(out, "{n} @ {}\n{}", addrs.join(" "), frames_text(stack));
    }
    out + &threads_text()
}

fn per_task_text(tasks: &[Task]) -> String {
    let mut out = String::new();
    for t in tasks {
        let _ = writeln!(out, "task {} [suspended]:", t.id);
        for (i, stack) in t.stacks.iter().enumerate() {
            if i > 0 {
                out.push_str("  -- and, in the same task --\n");
            }
            for &a in stack {
                let _ = match pprof::symbolize(a) {
                    Some(s) => writeln!(out, "{}()\n\t{a:#x} +{:#x}", s.name, s.offset),
                    None => writeln!(out, "?()\n\t{a:#x}"),
                };
            }
        }
        out.push('\n');
    }
    out + &threads_text()
}

fn threads_text() -> String {
    let all = threads();
    let mut out = format!("# OS threads: {}\n", all.len());
    for t in all {
        let _ = writeln!(out, "# thread {} {:?} state {}", t.tid, t.name, t.state);
    }
    out
}
