//! `/debug/pprof/goroutine`: the server's tasks and the state each is in, from its own task
//! registry (see `crate::tasks` for why not tokio's task dump), plus the OS threads. Go's
//! shapes: `debug=0` pprof protobuf (one sample per distinct stack, valued by count; with
//! `seconds=N` the change over N seconds), `debug=1` one block per distinct stack with its
//! count, `debug=2` one block per task. Each stack is named frames, innermost first: the
//! state, then (for a connection) its protocol, then the task's function.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::fmt::Write;

use hyper::StatusCode;

use super::process::threads;
use super::{Reply, params};
use crate::responses;
use crate::tasks::{self, Task};
use profiler::pprof::{self, Builder};

pub async fn goroutine(query: &str, max_seconds: u64) -> Reply {
    let (level, seconds) = params::snapshot(query, 2, max_seconds)?;
    Ok(match level {
        0 => {
            let counts = params::delta_counts(seconds, || distinct(&tasks::snapshot())).await;
            params::protobuf("goroutine", to_pprof(&counts, seconds).to_gzip())
        }
        1 => responses::text(StatusCode::OK, by_stack_text(&tasks::snapshot())),
        _ => responses::text(StatusCode::OK, per_task_text(&tasks::snapshot())),
    })
}

/// Distinct stacks and how many tasks are in each.
fn distinct(tasks: &[Task]) -> BTreeMap<Vec<&'static str>, i64> {
    let mut counts = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.stack.clone()).or_insert(0) += 1;
    }
    counts
}

fn to_pprof(counts: &BTreeMap<Vec<&'static str>, i64>, seconds: Option<u64>) -> pprof::Profile {
    let mut b = Builder::new(&[("goroutine", "count")], ("goroutine", "count", 1));
    match seconds {
        None => b.comment(&format!("{} tasks", counts.values().sum::<i64>())),
        Some(s) => {
            b.comment(&format!("change in tasks over {s} s"));
            b.duration(std::time::Duration::from_secs(s));
        }
    }
    for (stack, n) in counts {
        b.named_sample(stack, *n, &[]);
    }
    b.build()
}

fn by_stack_text(tasks: &[Task]) -> String {
    let mut out = format!("goroutine profile: total {}\n", tasks.len());
    for (stack, n) in distinct(tasks) {
        let _ = writeln!(out, "{n} @");
        for frame in stack {
            let _ = writeln!(out, "#\t{frame}");
        }
        out.push('\n');
    }
    out + &threads_text()
}

fn per_task_text(tasks: &[Task]) -> String {
    let mut out = String::new();
    for t in tasks {
        let (state, callers) = t
            .stack
            .split_first()
            .map_or(("", &[][..]), |(s, c)| (*s, c));
        let _ = writeln!(out, "task {} [{state}, {} s]:", t.id, t.age.as_secs());
        for frame in callers {
            let _ = writeln!(out, "{frame}");
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
