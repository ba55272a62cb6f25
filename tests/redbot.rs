//! REDbot (the HTTP linter, from PyPI, in the tools venv) on the release binary's answers:
//! health, readiness, every debug endpoint and the errors. Each must be one no cache may store
//! (REDbot's note STORE_NO_STORE), with no note saying a cache may store it, assign it a
//! freshness lifetime or serve it stale, and no header error (a note of level BAD). Prints
//! REDbot's own summary of each. Needs TOOLS_BIN (the venv) and HTTPSERVER_BIN: `make test`.
mod common;

use std::process::Command;

use common::Server;
use serde_json::Value;

/// The answers REDbot reads: health, readiness, each debug endpoint, a 404 and a 400.
const ANSWERS: [&str; 16] = [
    "/healthz",
    "/readyz",
    "/debug/pprof/",
    "/debug/pprof/profile?seconds=1",
    "/debug/pprof/flamegraph?seconds=1",
    "/debug/pprof/heap",
    "/debug/pprof/allocs",
    "/debug/pprof/goroutine?debug=1",
    "/debug/pprof/threadcreate",
    "/debug/pprof/block",
    "/debug/pprof/mutex",
    "/debug/pprof/cmdline",
    "/debug/pprof/symbol",
    "/debug/pprof/trace?seconds=1",
    "/nothing-here",
    "/debug/pprof/heap?debug=9",
];

/// REDbot's notes that let a cache keep an answer.
const STORABLE: [&str; 5] = [
    "STORE_STORABLE",
    "FRESHNESS_HEURISTIC",
    "FRESHNESS_FRESH",
    "STALE_SERVABLE",
    "STORE_SHARED",
];

fn redbot(url: &str, format: &str) -> String {
    let bin = common::tools_bin().unwrap_or_else(|e| panic!("{e}"));
    let out = common::output_of(
        Command::new(bin.join("redbot")).args(["-o", format, url]),
        None,
    )
    .unwrap_or_else(|e| panic!("redbot {url}: {e}"));
    String::from_utf8(out).unwrap()
}

#[test]
#[ignore = "needs the release binary and REDbot: make test"]
fn no_health_debug_or_error_answer_may_be_stored() {
    let bin = std::env::var_os("HTTPSERVER_BIN").expect("HTTPSERVER_BIN");
    let srv = Server::start_with(bin.into(), &[], &[]);
    let mut problems = Vec::new();
    for path in ANSWERS {
        let url = format!("http://{}{path}", srv.addr);
        let har: Value = serde_json::from_str(&redbot(&url, "har")).expect("REDbot's HAR");
        let notes = har["log"]["entries"][0]["_red_messages"]
            .as_array()
            .expect("REDbot's notes")
            .clone();
        let ids: Vec<&str> = notes.iter().filter_map(|n| n["note_id"].as_str()).collect();
        if !ids.contains(&"STORE_NO_STORE") {
            problems.push(format!("{path}: not marked unstorable ({ids:?})"));
        }
        for n in &notes {
            let id = n["note_id"].as_str().unwrap_or("");
            if STORABLE.contains(&id) || n["level"] == "BAD" {
                problems.push(format!("{path}: {id}: {}", n["summary"]));
            }
        }
        println!("== {path}\n{}", redbot(&url, "text"));
    }
    assert!(problems.is_empty(), "REDbot:\n{}", problems.join("\n"));
}
