//! `/debug/pprof/`: every endpoint with its current count where it has one (as Go's index
//! shows), what it is, and the command to read it; and the answer for Go's profiles that have
//! no Rust counterpart.

use crate::request_body::RequestBody;
use hyper::{Request, Response, StatusCode};

use super::process::threads;
use crate::profiler::heap;
use crate::responses::{self, Body};

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
        what: "Not available: Rust has no runtime that records where threads block on synchronization.",
        command: "",
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
        what: "Every async task and where it is suspended (tokio's task dump), plus the OS threads. ?debug=1 per distinct stack, ?debug=2 per task.",
        command: "curl 'http://{host}/debug/pprof/goroutine?debug=1'",
    },
    Entry {
        name: "heap",
        what: "Sampled live heap (inuse_space by default; also inuse_objects, alloc_*), one sample per 512 KiB allocated on average. ?debug=1 for text; ?gc=1 accepted and ignored.",
        command: "go tool pprof -top 'http://{host}/debug/pprof/heap'",
    },
    Entry {
        name: "mutex",
        what: "Not available: Rust has no runtime that records lock contention.",
        command: "",
    },
    Entry {
        name: "profile",
        what: "CPU profile of the whole process, 100 Hz. ?seconds=N (default 30).",
        command: "go tool pprof -top 'http://{host}/debug/pprof/profile?seconds=10'",
    },
    Entry {
        name: "symbol",
        what: "Go's symbol protocol: POST +-separated hex addresses, get one '0xADDR name' line each.",
        command: "curl -d 0x401000 'http://{host}/debug/pprof/symbol'",
    },
    Entry {
        name: "threadcreate",
        what: "The process's OS threads by name (Rust keeps no creation stacks). ?debug=1 for text.",
        command: "curl 'http://{host}/debug/pprof/threadcreate?debug=1'",
    },
    Entry {
        name: "trace",
        what: "Tracing spans and events (every request) as Chrome Trace Event JSON for Perfetto, bounded by --max-trace-bytes. ?seconds=N.",
        command: "curl -o trace.json 'http://{host}/debug/pprof/trace?seconds=5'",
    },
];

pub fn is_endpoint(name: &str) -> bool {
    ENTRIES.iter().any(|e| e.name == name)
}

/// Go's block and mutex profiles have no Rust counterpart.
pub fn unavailable(name: &str) -> Response<Body> {
    let why = ENTRIES
        .iter()
        .find(|e| e.name == name)
        .map_or("", |e| e.what);
    responses::error(StatusCode::NOT_FOUND, &format!("{name} profile: {why}"))
}

/// The count Go's index shows beside each profile.
fn count(name: &str) -> Option<String> {
    Some(match name {
        "heap" => heap::live_samples().to_string(),
        "allocs" => heap::stack_count().to_string(),
        "goroutine" => tokio::runtime::Handle::try_current()
            .ok()?
            .metrics()
            .num_alive_tasks()
            .to_string(),
        "threadcreate" => threads().len().to_string(),
        "block" | "mutex" => "n/a".to_owned(),
        _ => return None,
    })
}

pub fn page(req: &Request<RequestBody>) -> Response<Body> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let host = html_escape(host);
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>/debug/pprof/</title></head>\n<body>\n<h1>/debug/pprof/</h1>\n<p>Types of profiles available. One capture (profile, flamegraph or trace) runs at a time. Profiles are gzipped pprof protobuf (go tool pprof, pprof) unless ?debug=1.</p>\n<table>\n<tr><th>count</th><th>profile</th><th>what</th><th>use it</th></tr>\n",
    );
    for e in ENTRIES {
        let count = count(e.name).unwrap_or_default();
        let cmd = html_escape(&e.command.replace("{host}", "\u{0}")).replace('\u{0}', &host);
        html.push_str(&format!(
            "<tr><td>{count}</td><td><a href=\"{name}\">{name}</a></td><td>{what}</td><td><code>{cmd}</code></td></tr>\n",
            name = e.name,
            what = html_escape(e.what),
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
