//! /debug/pprof: capture validation, one capture at a time, flame graph, symbols, trace.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{Server, get, request};

#[test]
fn seconds_must_be_a_positive_integer_within_the_maximum() {
    let srv = Server::start(&["--max-profile-seconds", "5"]);
    for path in ["profile", "flamegraph", "trace"] {
        for bad in ["0", "-1", "abc", "1.5", "", "6", "99999999999999999999"] {
            let r = get(srv.addr, &format!("/debug/pprof/{path}?seconds={bad}"));
            assert_eq!(r.status, 400, "{path}?seconds={bad}");
            assert!(r.text().contains("from 1 to 5"), "{}", r.text());
        }
    }
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

#[test]
fn cpu_captures_overlap_up_to_the_bound_then_503_with_retry_after() {
    let srv = Server::start(&["--max-cpu-profiles", "3"]);
    let addr = srv.addr;
    // Three at once, each of its own length, as two scrapers and a person would.
    let long = thread::spawn(move || get(addr, "/debug/pprof/profile?seconds=3"));
    srv.wait_for_log("CPU profile started");
    let t = std::time::Instant::now();
    let short = thread::spawn(move || get(addr, "/debug/pprof/profile?seconds=1"));
    let flame = thread::spawn(move || get(addr, "/debug/pprof/flamegraph?seconds=2"));
    thread::sleep(Duration::from_millis(300));
    // The fourth is over the bound: refused at once, told when to come back.
    let r = get(srv.addr, "/debug/pprof/profile?seconds=1");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("--max-cpu-profiles"), "{}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "retry-after {retry}");
    let short = short.join().unwrap();
    assert_eq!(short.status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "the short one ended on its own time"
    );
    let p = common::decode(&short.body);
    assert!(p.duration_nanos >= 1_000_000_000 && p.duration_nanos < 2_000_000_000);
    assert_eq!(flame.join().unwrap().status, 200);
    let long = long.join().unwrap();
    assert_eq!(long.status, 200);
    assert!(common::decode(&long.body).duration_nanos >= 3_000_000_000);
    // Every slot is free again.
    assert_eq!(get(srv.addr, "/debug/pprof/profile?seconds=1").status, 200);
}

#[test]
fn one_trace_at_a_time_then_503_with_retry_after() {
    let srv = Server::start(&[]);
    let addr = srv.addr;
    let first = thread::spawn(move || get(addr, "/debug/pprof/trace?seconds=2"));
    srv.wait_for_log("trace capture started");
    let t = std::time::Instant::now();
    let r = get(srv.addr, "/debug/pprof/trace?seconds=1");
    assert_eq!(r.status, 503);
    assert!(t.elapsed() < Duration::from_secs(1), "refused at once");
    assert!(r.header("retry-after").is_some());
    // A CPU capture is not held up by the trace.
    assert_eq!(get(srv.addr, "/debug/pprof/profile?seconds=1").status, 200);
    let r = first.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(get(srv.addr, "/debug/pprof/trace?seconds=1").status, 200);
}

#[test]
fn flamegraph_is_svg() {
    let srv = Server::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = common::load(srv.addr, 2, stop.clone());
    let r = get(srv.addr, "/debug/pprof/flamegraph?seconds=1");
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    let svg = r.text();
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{}",
        &svg[..svg.len().min(300)]
    );
}

#[test]
fn trace_records_request_spans_as_chrome_trace_json() {
    let srv = Server::start(&[]);
    let addr = srv.addr;
    let capture = thread::spawn(move || get(addr, "/debug/pprof/trace?seconds=2"));
    srv.wait_for_log("trace capture started");
    for _ in 0..5 {
        assert_eq!(get(srv.addr, "/healthz").status, 200);
    }
    assert_eq!(get(srv.addr, "/nope").status, 404);
    let r = capture.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_slice(&r.body).expect("valid JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents array");
    let begins: Vec<_> = events
        .iter()
        .filter(|e| e["ph"] == "b" && e["name"] == "request" && e["args"]["path"] == "/healthz")
        .collect();
    assert_eq!(begins.len(), 5, "{doc}");
    for b in &begins {
        assert!(b["ts"].as_f64().unwrap() >= 0.0);
        let id = &b["id"];
        assert!(
            events.iter().any(|e| e["ph"] == "e" && &e["id"] == id),
            "span {id} never ends"
        );
    }
    // The access-log events are recorded inside the spans, with their status.
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "i" && e["args"]["status"] == 404),
        "{doc}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "M" && e["name"] == "thread_name")
    );
}

/// Runtime address of a function of the running server, from its ELF symbol table and maps.
fn runtime_address(pid: u32, needle: &str) -> (u64, String) {
    use object::{Object, ObjectKind, ObjectSymbol};
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let data = std::fs::read(&exe).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let sym = file
        .symbols()
        .find(|s| {
            s.name()
                .is_ok_and(|n| n.contains("httpserver") && n.contains(needle))
                && s.size() > 0
        })
        .unwrap_or_else(|| panic!("no symbol like {needle} in {exe:?}"));
    let base = if file.kind() == ObjectKind::Executable {
        0
    } else {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let exe = exe.to_string_lossy();
        let line = maps
            .lines()
            .find(|l| l.ends_with(&*exe))
            .expect("exe mapping");
        u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap()
    };
    (base + sym.address(), sym.name().unwrap().to_owned())
}

#[test]
fn symbol_resolves_addresses_of_this_program() {
    let srv = Server::start(&[]);
    let (addr, mangled) = runtime_address(srv.child.id(), "6symbol6lookup17h");
    let body = format!("{addr:#x}+0x0+{:#x}", addr + 1);
    let r = request(srv.addr, "POST", "/debug/pprof/symbol", body.as_bytes());
    assert_eq!(r.status, 200);
    let text = r.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("num_symbols: 1"));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("nothing resolved for {mangled}: {text}"));
    // Named from the symbol table, demangled without the hash.
    assert_eq!(
        first,
        format!("{addr:#x} httpserver::debug::symbol::lookup"),
        "{text}"
    );
    // The next address (inside the same function) resolves too; 0x0 does not.
    assert_eq!(
        lines.next(),
        Some(format!("{:#x} httpserver::debug::symbol::lookup", addr + 1).as_str())
    );
    // Go's GET form: addresses in the query string.
    let r = get(srv.addr, &format!("/debug/pprof/symbol?{addr:#x}"));
    assert!(
        r.text().contains("httpserver::debug::symbol::lookup"),
        "{}",
        r.text()
    );
}
