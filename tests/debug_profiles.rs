//! Go's named profiles over real sockets: each decodes as pprof protobuf with real addresses,
//! a mapping of the executable with its build id, and named frames of this program; `go tool
//! pprof` (a real client no one here wrote) reads each one; the text forms read like Go's.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Server, decode, get};
use httpserver::profiler::pprof::Profile;

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

#[test]
fn goroutine_lists_tasks_in_protobuf_and_in_go_text() {
    let srv = Server::start(&[]);
    // Idle keep-alive connections: each is a task suspended in our connection code.
    let _idle: Vec<_> = (0..3).map(|_| common::connect(srv.addr)).collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let r = get(srv.addr, "/debug/pprof/goroutine");
    assert_eq!(r.status, 200);
    let p = decode(&r.body);
    assert_eq!(sample_types(&p), ["goroutine/count"]);
    let tasks: i64 = p.sample.iter().map(|s| s.value[0]).sum();
    assert!(
        tasks >= 4,
        "{tasks} tasks (accept loop + 3 connections at least)"
    );
    assert_symbolizable(&p, "goroutine");
    common::pprof_reads(&r.body, "goroutine");

    let text = get(srv.addr, "/debug/pprof/goroutine?debug=1").text();
    assert!(text.starts_with("goroutine profile: total "), "{text}");
    assert!(text.contains("httpserver::"), "{text}");
    assert!(text.contains("# OS threads: "), "{text}");
    let per_task = get(srv.addr, "/debug/pprof/goroutine?debug=2").text();
    assert!(
        per_task.matches("\ntask ").count() + usize::from(per_task.starts_with("task ")) >= 4,
        "{per_task}"
    );
    assert!(
        per_task.contains("httpserver-worker") || per_task.contains("# thread "),
        "{per_task}"
    );
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
fn block_and_mutex_say_why_they_are_not_available() {
    let srv = Server::start(&[]);
    for name in ["block", "mutex"] {
        let r = get(srv.addr, &format!("/debug/pprof/{name}"));
        assert_eq!(r.status, 404, "{name}");
        assert!(r.text().contains("Not available"), "{}", r.text());
        assert_eq!(r.text().lines().count(), 1);
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
    // Counts beside goroutine and threadcreate, "n/a" beside block and mutex.
    assert!(
        html.contains("<tr><td>n/a</td><td><a href=\"block\">"),
        "{html}"
    );
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
