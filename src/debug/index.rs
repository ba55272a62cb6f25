//! `/debug/pprof/`: every endpoint with its current count where it has one (as Go's index
//! shows), what it is, and the command to read it.

#![cfg(target_os = "linux")]

use crate::request_body::RequestBody;
use hyper::{Request, Response, StatusCode};

use super::Debug;
use super::contention::WHY_EMPTY;
use super::process::threads;
use crate::responses::{self, Body};
use crate::tasks;
use profiler::heap;

struct Entry {
    name: &'static str,
    what: &'static str,
    /// The command, with `{host}` for the address the client used.
    command: &'static str,
}

const ENTRIES: &[Entry] = &[
    Entry {
        name: "allocs",
        what: "Sampled allocations since start (alloc_space by default; also alloc_objects, inuse_*). ?debug=1 for text, ?seconds=N for a delta.",
        command: "go tool pprof -top 'http://{host}/debug/pprof/allocs'",
    },
    Entry {
        name: "block",
        what: "Go's block profile (contentions, delay), {why_empty}.",
        command: "go tool pprof -raw 'http://{host}/debug/pprof/block'",
    },
    Entry {
        name: "cmdline",
        what: "The command line, arguments separated by NUL bytes.",
        command: "curl 'http://{host}/debug/pprof/cmdline' | tr '\\0' ' '",
    },
    Entry {
        name: "flamegraph",
        what: "A CPU capture rendered as an SVG flame graph. ?seconds=N (default 30).",
        command: "curl -o flame.svg 'http://{host}/debug/pprof/flamegraph?seconds=10'",
    },
    Entry {
        name: "goroutine",
        what: "The server's tasks (accept loops, connections, the main task) and the state each is in, plus the OS threads. ?debug=1 per distinct stack, ?debug=2 per task, ?seconds=N for the change.",
        command: "curl 'http://{host}/debug/pprof/goroutine?debug=1'",
    },
    Entry {
        name: "heap",
        what: "Sampled live heap (inuse_space by default; also inuse_objects, alloc_*), one sample per {heap_rate} bytes allocated on average (--heap-sample-rate). ?debug=1 for text, ?seconds=N for a delta; ?gc=1 accepted and ignored.",
        command: "go tool pprof -top 'http://{host}/debug/pprof/heap'",
    },
    Entry {
        name: "mutex",
        what: "Go's mutex profile (contentions, delay), {why_empty}.",
        command: "go tool pprof -raw 'http://{host}/debug/pprof/mutex'",
    },
    Entry {
        name: "profile",
        what: "CPU profile of the whole process, 100 Hz. ?seconds=N (default 30). Captures overlap, each with its own window, up to {max_cpu} at once (--max-cpu-profiles, shared with flamegraph).",
        command: "go tool pprof -top 'http://{host}/debug/pprof/profile?seconds=10'",
    },
    Entry {
        name: "symbol",
        what: "Go's symbol protocol: POST +-separated hex addresses, get one '0xADDR name' line each.",
        command: "curl -d 0x401000 'http://{host}/debug/pprof/symbol'",
    },
    Entry {
        name: "threadcreate",
        what: "The process's OS threads by name (Rust keeps no creation stacks). ?debug=1 for text, ?seconds=N for the change.",
        command: "curl 'http://{host}/debug/pprof/threadcreate?debug=1'",
    },
    Entry {
        name: "trace",
        what: "Tracing spans and events (every request) as Chrome Trace Event JSON for Perfetto, bounded by --max-trace-bytes. ?seconds=N. One capture at a time.",
        command: "curl -o trace.json 'http://{host}/debug/pprof/trace?seconds=5'",
    },
];

pub fn is_endpoint(name: &str) -> bool {
    ENTRIES.iter().any(|e| e.name == name)
}

/// The count Go's index shows beside each profile.
fn count(name: &str) -> Option<String> {
    Some(match name {
        "heap" => heap::live_samples().to_string(),
        "allocs" => heap::stack_count().to_string(),
        "goroutine" => tasks::count().to_string(),
        "threadcreate" => threads().len().to_string(),
        "block" | "mutex" => "0".to_owned(),
        _ => return None,
    })
}

pub fn page(debug: &Debug, req: &Request<RequestBody>) -> Response<Body> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let host = html_escape(host);
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>/debug/pprof/</title></head>\n<body>\n<h1>/debug/pprof/</h1>\n<p>Types of profiles available. Profiles are gzipped pprof protobuf (go tool pprof, pprof) unless ?debug=1.</p>\n<table>\n<tr><th>count</th><th>profile</th><th>what</th><th>use it</th></tr>\n",
    );
    for e in ENTRIES {
        let count = count(e.name).unwrap_or_default();
        let cmd = html_escape(&e.command.replace("{host}", "\u{0}")).replace('\u{0}', &host);
        let what = e
            .what
            .replace("{why_empty}", WHY_EMPTY)
            .replace("{heap_rate}", &heap::rate().to_string())
            .replace("{max_cpu}", &debug.cpu_slots.max().to_string());
        html.push_str(&format!(
            "<tr><td>{count}</td><td><a href=\"{name}\">{name}</a></td><td>{what}</td><td><code>{cmd}</code></td></tr>\n",
            name = e.name,
            what = html_escape(&what),
        ));
    }
    html.push_str(
        "</table>\n<p><a href=\"goroutine?debug=2\">full task dump</a></p>\n</body></html>\n",
    );
    responses::with_type(StatusCode::OK, "text/html; charset=utf-8", html)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
