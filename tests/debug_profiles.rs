//! Go's named profiles over real sockets: each decodes as pprof protobuf with real addresses,
//! a mapping of the executable with its build id, and named frames of this program; `go tool
//! pprof` (a real client no one here wrote) reads each one; the text forms read like Go's.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Server, decode, get};
use profiler::pprof::Profile;

fn sample_types(p: &Profile) -> Vec<String> {
    p.sample_type
        .iter()
        .map(|t| format!("{}/{}", p.string(t.r#type), p.string(t.unit)))
        .collect()
}

fn function_names(p: &Profile) -> Vec<&str> {
    p.function.iter().map(|f| p.string(f.name)).collect()
}

/// Real addresses inside the executable's mapping, which names the file and its build id,
/// and frames of this program among the functions.
fn assert_symbolizable(p: &Profile, what: &str) {
    let exe = &p
        .mapping
        .first()
        .unwrap_or_else(|| panic!("{what}: no mapping"));
    assert!(
        !p.string(exe.filename).is_empty(),
        "{what}: mapping without a file name"
    );
    assert_eq!(
        p.string(exe.build_id).len(),
        40,
        "{what}: mapping without a GNU build id"
    );
    assert!(exe.memory_limit > exe.memory_start, "{what}: empty mapping");
    let in_exe: Vec<_> = p
        .location
        .iter()
        .filter(|l| l.mapping_id == exe.id)
        .collect();
    assert!(!in_exe.is_empty(), "{what}: no location in the executable");
    for l in in_exe {
        assert!(
            (exe.memory_start..exe.memory_limit).contains(&l.address),
            "{what}: location {:#x} outside its mapping",
            l.address
        );
    }
    let names = function_names(p);
    assert!(
        names.iter().any(|n| n.starts_with("httpserver::")),
        "{what}: no httpserver:: frame among {names:?}"
    );
}

/// Loads the server from a few threads while `f` runs.
fn under_load<T>(srv: &Server, f: impl FnOnce() -> T) -> T {
    let stop = Arc::new(AtomicBool::new(false));
    let load = common::load(srv.addr, 3, stop.clone());
    let out = f();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    out
}

#[test]
fn cpu_profile_has_addresses_a_mapping_and_our_frames() {
    let srv = Server::start(&[]);
    let r = under_load(&srv, || get(srv.addr, "/debug/pprof/profile?seconds=2"));
    assert_eq!(r.status, 200);
    let p = decode(&r.body);
    assert_eq!(sample_types(&p), ["samples/count", "cpu/nanoseconds"]);
    assert_eq!(p.period, 10_000_000);
    let samples: i64 = p.sample.iter().map(|s| s.value[0]).sum();
    assert!(samples >= 10, "{samples} samples");
    assert_symbolizable(&p, "profile");
    common::pprof_reads(&r.body, "profile");
}

#[test]
fn heap_and_allocs_have_go_sample_types_and_our_frames() {
    // A small rate so that a few requests produce samples.
    let srv = Server::start(&["--heap-sample-rate", "512"]);
    under_load(&srv, || {
        std::thread::sleep(std::time::Duration::from_millis(500))
    });
    for (name, default) in [("heap", "inuse_space"), ("allocs", "alloc_space")] {
        let r = get(srv.addr, &format!("/debug/pprof/{name}"));
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(
            r.header("content-disposition"),
            Some(format!("attachment; filename=\"{name}\"").as_str())
        );
        let p = decode(&r.body);
        assert_eq!(
            sample_types(&p),
            [
                "alloc_objects/count",
                "alloc_space/bytes",
                "inuse_objects/count",
                "inuse_space/bytes"
            ]
        );
        assert_eq!(p.string(p.default_sample_type), default);
        assert_eq!(p.period, 512);
        assert!(
            p.sample.iter().any(|s| s.value[1] > 0),
            "{name}: no allocation sampled"
        );
        assert_symbolizable(&p, name);
        common::pprof_reads(&r.body, name);
    }
    let text = get(srv.addr, "/debug/pprof/heap?debug=1&gc=1").text();
    assert!(
        text.starts_with("heap profile: "),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(
        text.contains("@ heap/1024\n"),
        "{}",
        &text[..text.len().min(200)]
    );
    assert!(
        text.contains("httpserver::"),
        "no frame of ours in the heap text"
    );
    // A delta profile over one second.
    assert_eq!(get(srv.addr, "/debug/pprof/allocs?seconds=1").status, 200);
}

#[test]
fn heap_sampling_off_still_answers_a_valid_empty_profile() {
    let srv = Server::start(&["--heap-sample-rate", "0"]);
    let p = decode(&get(srv.addr, "/debug/pprof/heap").body);
    assert!(p.sample.is_empty());
    assert!(p.comment.iter().any(|c| p.string(*c).contains("off")));
}

/// The stacks of a goroutine profile (innermost frame first, as names) with their counts.
fn named_stacks(p: &Profile) -> Vec<(Vec<String>, i64)> {
    let name_of = |loc: u64| {
        let l = &p.location[loc as usize - 1];
        let f = &p.function[l.line[0].function_id as usize - 1];
        p.string(f.name).to_owned()
    };
    p.sample
        .iter()
        .map(|s| {
            (
                s.location_id.iter().map(|&l| name_of(l)).collect(),
                s.value[0],
            )
        })
        .collect()
}

#[test]
fn goroutine_lists_tasks_in_protobuf_and_in_go_text() {
    let srv = Server::start(&[]);
    // Idle keep-alive connections: each is a connection task awaiting a request.
    let _idle: Vec<_> = (0..3).map(|_| common::connect(srv.addr)).collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let r = get(srv.addr, "/debug/pprof/goroutine");
    assert_eq!(r.status, 200);
    let p = decode(&r.body);
    assert_eq!(sample_types(&p), ["goroutine/count"]);
    let stacks = named_stacks(&p);
    let count = |want: &[&str]| {
        stacks
            .iter()
            .filter(|(s, _)| s == want)
            .map(|(_, n)| n)
            .sum::<i64>()
    };
    assert_eq!(
        count(&[
            "awaiting the first bytes",
            "protocol not yet known",
            "httpserver::connection::serve"
        ]),
        3,
        "{stacks:?}"
    );
    // The scrape's own connection is handling its request.
    assert_eq!(
        count(&[
            "handling a request",
            "HTTP/1.1",
            "httpserver::connection::serve"
        ]),
        1,
        "{stacks:?}"
    );
    assert_eq!(
        count(&["accepting connections", "httpserver::accept::Acceptor::run"]),
        1
    );
    assert_eq!(
        count(&[
            "serving, waiting for SIGTERM or SIGINT",
            "httpserver::server::run"
        ]),
        1
    );
    // One sample per distinct stack, and go tool pprof reads it.
    let mut distinct: Vec<_> = stacks.iter().map(|(s, _)| s).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), stacks.len(), "{stacks:?}");
    let top = common::pprof_reads(&r.body, "goroutine");
    assert!(top.contains("awaiting the first bytes"), "{top}");

    // 6 tasks, or 7 while the previous scrape's connection is still ending.
    let text = get(srv.addr, "/debug/pprof/goroutine?debug=1").text();
    let total = |s: &str| -> usize { s.split_whitespace().next().unwrap().parse().unwrap() };
    let n = total(text.strip_prefix("goroutine profile: total ").expect(&text));
    assert!((6..=7).contains(&n), "{text}");
    assert!(
        text.contains("\n3 @\n#\tawaiting the first bytes\n"),
        "{text}"
    );
    assert!(text.contains("# OS threads: "), "{text}");
    let per_task = get(srv.addr, "/debug/pprof/goroutine?debug=2").text();
    assert_eq!(
        per_task.matches("[awaiting the first bytes, ").count(),
        3,
        "{per_task}"
    );
    assert!(per_task.contains("# thread "), "{per_task}");
    // The index shows the same count.
    let html = get(srv.addr, "/debug/pprof/").text();
    let n = total(
        html.split("<tr><td>")
            .find(|r| r.contains("href=\"goroutine\""))
            .unwrap()
            .split('<')
            .next()
            .unwrap(),
    );
    assert!((6..=7).contains(&n), "{html}");
}

#[test]
fn goroutine_delta_counts_what_changed_over_the_window() {
    let srv = Server::start(&[]);
    let addr = srv.addr;
    let scrape = std::thread::spawn(move || get(addr, "/debug/pprof/goroutine?seconds=2"));
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _new: Vec<_> = (0..2).map(|_| common::connect(srv.addr)).collect();
    let r = scrape.join().unwrap();
    assert_eq!(r.status, 200);
    let p = decode(&r.body);
    assert_eq!(p.duration_nanos, 2_000_000_000);
    let stacks = named_stacks(&p);
    assert_eq!(
        stacks,
        [(
            vec![
                "awaiting the first bytes".to_owned(),
                "protocol not yet known".to_owned(),
                "httpserver::connection::serve".to_owned()
            ],
            2
        )]
    );
    // Go's rule: a delta is protobuf only.
    let r = get(srv.addr, "/debug/pprof/goroutine?seconds=1&debug=1");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("incompatible"), "{}", r.text());
}

#[test]
fn threadcreate_and_cmdline() {
    let srv = Server::start(&["-v", "0"]);
    let r = get(srv.addr, "/debug/pprof/cmdline");
    assert_eq!(r.status, 200);
    let args: Vec<&str> = std::str::from_utf8(&r.body).unwrap().split('\0').collect();
    assert_eq!(
        args[1..],
        ["--port", "0", "--listen", "127.0.0.1", "-v", "0"]
    );

    let text = get(srv.addr, "/debug/pprof/threadcreate?debug=1").text();
    let threads = std::fs::read_dir(format!("/proc/{}/task", srv.child.id()))
        .unwrap()
        .count();
    assert!(
        text.starts_with(&format!("threadcreate profile: total {threads}\n")),
        "{text}"
    );
    let p = decode(&get(srv.addr, "/debug/pprof/threadcreate").body);
    assert_eq!(sample_types(&p), ["threadcreate/count"]);
    assert_eq!(p.sample.len(), threads);
    assert!(function_names(&p).iter().any(|n| n.starts_with("thread ")));
}

#[test]
fn block_and_mutex_answer_valid_empty_profiles_like_go() {
    let srv = Server::start(&[]);
    for name in ["block", "mutex"] {
        let r = get(srv.addr, &format!("/debug/pprof/{name}"));
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(
            r.header("content-disposition"),
            Some(format!("attachment; filename=\"{name}\"").as_str())
        );
        let p = decode(&r.body);
        assert_eq!(sample_types(&p), ["contentions/count", "delay/nanoseconds"]);
        assert!(p.sample.is_empty());
        assert!(
            p.comment
                .iter()
                .any(|c| p.string(*c).contains("always empty"))
        );
        common::pprof_reads(&r.body, name);
        let text = get(srv.addr, &format!("/debug/pprof/{name}?debug=1")).text();
        assert!(
            text.starts_with("--- contention:\ncycles/second="),
            "{text}"
        );
        let t = std::time::Instant::now();
        let r = get(srv.addr, &format!("/debug/pprof/{name}?seconds=1"));
        assert_eq!(r.status, 200);
        assert!(
            t.elapsed() >= std::time::Duration::from_secs(1),
            "a delta waits its window"
        );
        assert_eq!(decode(&r.body).duration_nanos, 1_000_000_000);
    }
}

#[test]
fn index_lists_every_profile_with_its_count_and_command() {
    let srv = Server::start(&[]);
    let html = get(srv.addr, "/debug/pprof/").text();
    for name in [
        "allocs",
        "block",
        "cmdline",
        "flamegraph",
        "goroutine",
        "heap",
        "mutex",
        "profile",
        "symbol",
        "threadcreate",
        "trace",
    ] {
        assert!(html.contains(&format!("href=\"{name}\"")), "{name} missing");
    }
    assert!(html.contains("go tool pprof -top &#39;http://"), "{html}");
    // Counts beside goroutine and threadcreate, 0 beside block and mutex (always empty).
    assert!(
        html.contains("<tr><td>0</td><td><a href=\"block\">"),
        "{html}"
    );
    assert!(html.contains("always empty: Rust has no runtime"), "{html}");
    let threads = std::fs::read_dir(format!("/proc/{}/task", srv.child.id()))
        .unwrap()
        .count();
    assert!(
        html.contains(&format!(
            "<tr><td>{threads}</td><td><a href=\"threadcreate\">"
        )),
        "{html}"
    );
}

#[test]
fn an_idle_capture_still_answers_a_valid_svg_and_profile() {
    let srv = Server::start(&[]);
    let r = get(srv.addr, "/debug/pprof/flamegraph?seconds=1");
    assert_eq!(r.status, 200);
    let svg = r.text();
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    let p = decode(&get(srv.addr, "/debug/pprof/profile?seconds=1").body);
    assert_eq!(sample_types(&p), ["samples/count", "cpu/nanoseconds"]);
}
