//! Checks on the release musl builds from `make build` (run by `make test`; ignored by a plain
//! `cargo test`, which has no release binaries): static, symbols kept, a build id with its
//! split debug file, profiles on amd64 and on arm64 (under qemu-user) with real addresses and
//! named, full-depth stacks, file:line through `go tool pprof` with the debug file, and every
//! debug endpoint working with no writable filesystem at all.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, dynamic_needed, get};
use object::{Object, ObjectSection};
use profiler::pprof::Profile;

use common::decode;

fn static_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("HTTPSERVER_STATIC_DIR")
            .expect("HTTPSERVER_STATIC_DIR (make static-test sets it)"),
    )
}

fn binary(arch: &str) -> PathBuf {
    static_dir().join(arch).join("httpserver")
}

fn build_id(path: &Path) -> String {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let file = object::File::parse(&*data).expect("ELF");
    let id = file
        .build_id()
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("{path:?} has no build id"));
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn assert_static(path: &Path, machine: object::Architecture) {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let elf = ElfFile64::<object::Endianness>::parse(&*data).expect("ELF64");
    assert_eq!(elf.architecture(), machine, "{path:?}");
    let endian = elf.endian();
    for ph in elf.elf_program_headers() {
        assert_ne!(
            ph.p_type(endian),
            object::elf::PT_INTERP,
            "{path:?} has a program interpreter"
        );
    }
    // static-pie keeps a dynamic section for self-relocation only: no shared library at all.
    let needed = dynamic_needed(&elf);
    assert!(
        needed.is_empty(),
        "{path:?} needs shared libraries: {needed:?}"
    );
    // Symbols kept (profiles name functions from them); DWARF split out, linked by name.
    assert!(elf.symbols().count() > 1000, "{path:?} looks stripped");
    assert!(
        elf.section_by_name(".debug_info").is_none(),
        "{path:?} carries debuginfo"
    );
    assert!(
        elf.section_by_name(".debug_line").is_none(),
        "{path:?} carries line tables"
    );
    assert!(
        elf.section_by_name(".gnu_debuglink").is_some(),
        "{path:?} has no debuglink"
    );
}

#[test]
#[ignore = "needs `make build`"]
fn both_binaries_are_static_with_a_build_id_and_a_debug_file() {
    for (arch, machine) in [
        ("amd64", object::Architecture::X86_64),
        ("arm64", object::Architecture::Aarch64),
    ] {
        let bin = binary(arch);
        assert_static(&bin, machine);
        let id = build_id(&bin);
        assert_eq!(id.len(), 40, "{arch}: a sha1 build id");
        // The debug file: same build id, the line tables, found under .build-id/ as pprof looks.
        for debug in [
            bin.with_extension("debug"),
            static_dir()
                .join(arch)
                .join(format!(".build-id/{}/{}.debug", &id[..2], &id[2..])),
        ] {
            assert_eq!(build_id(&debug), id, "{debug:?}");
            let data = std::fs::read(&debug).unwrap();
            let file = object::File::parse(&*data).unwrap();
            let lines = file.section_by_name(".debug_line").map_or(0, |s| s.size());
            assert!(lines > 100_000, "{debug:?}: .debug_line is {lines} bytes");
        }
    }
}

#[test]
#[ignore = "needs `make build` and qemu-user (binfmt)"]
fn arm64_binary_serves_under_qemu() {
    let srv = Server::start_with(binary("arm64"), &[], &[]);
    let r = get(srv.addr, "/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
}

/// CPU and heap profiles of one architecture's build under load.
fn profiles_under_load(arch: &str) -> (Profile, Profile, Vec<u8>) {
    let srv = Server::start_with(binary(arch), &["--heap-sample-rate", "8192"], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = common::load(srv.addr, 3, stop.clone());
    let cpu = get(srv.addr, "/debug/pprof/profile?seconds=3");
    stop.store(true, Ordering::Relaxed);
    let served = load.join().unwrap();
    let heap = get(srv.addr, "/debug/pprof/allocs");
    assert_eq!((cpu.status, heap.status), (200, 200), "{arch}");
    eprintln!("{arch}: {served} requests served during the capture");
    (decode(&cpu.body), decode(&heap.body), cpu.body)
}

/// Where a thread's stack begins: musl's thread entry and process start (and glibc's, for a
/// host build). A stack that ends there was walked to its root. On arm64 the main thread's
/// walk ends one frame past `main`, in musl's `libc_start_main_stage2` (reached through the
/// return address; musl has no unwind tables to go further).
const THREAD_ROOTS: [&str; 8] = [
    "__clone",
    "start",
    "_start_c",
    "main",
    "libc_start_main_stage2",
    "__libc_start_main",
    "start_thread",
    "clone3",
];

/// Named frames of ours, real addresses in a mapping that carries the binary's build id, and
/// stacks walked to their thread's root (the unwinder is full depth on both targets).
fn assert_release_profile(p: &Profile, arch: &str, what: &str) {
    let exe = p
        .mapping
        .first()
        .unwrap_or_else(|| panic!("{arch} {what}: no mapping"));
    assert_eq!(
        p.string(exe.build_id),
        build_id(&binary(arch)),
        "{arch} {what}: build id"
    );
    assert!(
        p.string(exe.filename).ends_with("httpserver"),
        "{arch} {what}"
    );
    let names: Vec<&str> = p.function.iter().map(|f| p.string(f.name)).collect();
    assert!(
        names.iter().any(|n| n.starts_with("httpserver::")),
        "{arch} {what}: {names:?}"
    );
    for l in p.location.iter().filter(|l| l.mapping_id == exe.id) {
        assert!(
            (exe.memory_start..exe.memory_limit).contains(&l.address),
            "{arch} {what}"
        );
    }
    let location_names = |id: u64| -> Vec<&str> {
        p.location[id as usize - 1]
            .line
            .iter()
            .map(|l| p.string(p.function[l.function_id as usize - 1].name))
            .collect()
    };
    // Stacks whose innermost frame is Rust code (which has unwind info) must be walked to
    // their thread's root. musl's own C functions are built without unwind tables, so a
    // sample that lands inside one (malloc, say) can stop there: those are not counted.
    let is_root = |id: u64| location_names(id).iter().any(|n| THREAD_ROOTS.contains(n));
    let from_rust: Vec<_> = p
        .sample
        .iter()
        .filter(|s| {
            s.location_id
                .first()
                .is_some_and(|&id| location_names(id).iter().any(|n| n.contains("::")))
        })
        .collect();
    let rooted = from_rust
        .iter()
        .filter(|s| s.location_id.last().is_some_and(|&id| is_root(id)))
        .count();
    let deepest = p
        .sample
        .iter()
        .map(|s| s.location_id.len())
        .max()
        .unwrap_or(0);
    let unrooted: Vec<Vec<&str>> = from_rust
        .iter()
        .filter(|s| !s.location_id.last().is_some_and(|&id| is_root(id)))
        .map(|s| {
            s.location_id
                .iter()
                .flat_map(|&id| location_names(id))
                .collect()
        })
        .collect();
    assert!(
        from_rust.len() >= 5 && rooted * 10 >= from_rust.len() * 9,
        "{arch} {what}: {rooted} of {} stacks from Rust code reach a thread root (deepest {deepest} frames); the others:\n{unrooted:#?}",
        from_rust.len()
    );
    eprintln!(
        "{arch} {what}: {} samples, {} functions, deepest stack {deepest}",
        p.sample.len(),
        names.len()
    );
}

#[test]
#[ignore = "needs `make build`"]
fn amd64_profiles_are_named_full_depth_and_symbolize_to_file_and_line() {
    let (cpu, heap, raw) = profiles_under_load("amd64");
    assert_release_profile(&cpu, "amd64", "cpu");
    assert_release_profile(&heap, "amd64", "allocs");
    // pprof finds bin/amd64/httpserver (the mapping's file name) and symbolizes with
    // addr2line, which follows its debuglink to httpserver.debug: file:line of our sources.
    let dir = static_dir().join("amd64");
    let out = common::google_pprof(
        &raw,
        "profile",
        &["-lines", "-top", "-nodecount=1000"],
        &[("PPROF_BINARY_PATH", dir.to_str().unwrap())],
    );
    let ours = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");
    assert!(
        out.lines().any(|l| l.contains(ours) && l.contains(".rs:")),
        "no file:line in {ours}:\n{out}"
    );
}

#[test]
#[ignore = "needs `make build` and qemu-user (binfmt)"]
fn arm64_profiles_are_named_and_full_depth_under_qemu() {
    let (cpu, heap, _) = profiles_under_load("arm64");
    assert_release_profile(&cpu, "arm64", "cpu");
    assert_release_profile(&heap, "arm64", "allocs");
}

/// Every debug endpoint, with nothing writable: a bubblewrap sandbox whose root is a read-only
/// directory holding only the binary (plus /proc and /dev), as uid 12345.
#[test]
#[ignore = "needs `make build` and bubblewrap"]
fn every_debug_endpoint_works_with_no_writable_filesystem() {
    let root = std::env::temp_dir().join(format!("httpserver-ro-{}", std::process::id()));
    // Only the binary, and the two mount points bubblewrap mounts /proc and /dev on.
    for dir in ["proc", "dev"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(binary("amd64"), root.join("httpserver")).unwrap();
    let before = listing(&root);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_arg = port.to_string();
    let mut sandbox = Command::new("bwrap");
    sandbox.args([
        "--ro-bind",
        root.to_str().unwrap(),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]);
    // Even the fresh /dev (and its shm) read-only: no path in the sandbox takes a write.
    sandbox.args(["--remount-ro", "/dev"]);
    sandbox.args([
        "--unshare-user",
        "--uid",
        "12345",
        "--gid",
        "12345",
        "--unshare-pid",
    ]);
    sandbox.args([
        "--die-with-parent",
        "/httpserver",
        "--port",
        &port_arg,
        "--listen",
        "127.0.0.1",
    ]);
    sandbox.args(["--heap-sample-rate", "8192", "-v", "1"]);
    let srv = Server::from_command(sandbox);
    let stop = Arc::new(AtomicBool::new(false));
    let load = common::load(srv.addr, 2, stop.clone());
    for path in [
        "/debug/pprof/",
        "/debug/pprof/profile?seconds=1",
        "/debug/pprof/flamegraph?seconds=1",
        "/debug/pprof/heap",
        "/debug/pprof/allocs?debug=1",
        "/debug/pprof/goroutine?debug=2",
        "/debug/pprof/threadcreate",
        "/debug/pprof/cmdline",
        "/debug/pprof/trace?seconds=1",
        "/debug/pprof/symbol",
    ] {
        let r = get(srv.addr, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let cpu = decode(&get(srv.addr, "/debug/pprof/profile?seconds=1").body);
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(
        cpu.function
            .iter()
            .any(|f| cpu.string(f.name).starts_with("httpserver::"))
    );
    drop(srv);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        listing(&root),
        before,
        "a file appeared in the sandbox root"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

fn listing(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    all.sort();
    all
}

/// The dependency list cargo-auditable embedded (`.dep-v0`) in each release binary, against
/// the crates the build compiled into it (cargo's own compiler-artifact messages, which
/// `make build` keeps in bin/ARCH/build-messages.jsonl). Every compiled crate must be listed.
/// The list may also name a few optional dependencies that were not built: cargo-auditable
/// reads them from `cargo metadata`, which reports optional dependencies of a package whether
/// or not their feature is on (rust-lang/cargo#10718, rust-secure-code/cargo-auditable#38);
/// each such extra must be one that the lock file declares for a compiled crate.
#[test]
#[ignore = "needs `make build`"]
fn embedded_dependency_lists_name_every_compiled_crate() {
    use std::collections::BTreeSet;
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    for (arch, triple) in [
        ("amd64", "x86_64-unknown-linux-musl"),
        ("arm64", "aarch64-unknown-linux-musl"),
    ] {
        let info = auditable_info::audit_info_from_file(&binary(arch), Default::default())
            .unwrap_or_else(|e| panic!("{arch}: no audit data: {e}"));
        let embedded: BTreeSet<String> = info
            .packages
            .iter()
            .filter(|p| p.kind == auditable_serde::DependencyKind::Runtime)
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        let compiled = compiled_crates(
            &static_dir().join(arch).join("build-messages.jsonl"),
            triple,
        );
        assert!(
            compiled.len() > 50,
            "{arch}: only {} compiled crates found",
            compiled.len()
        );
        let missing: Vec<_> = compiled.difference(&embedded).collect();
        assert!(
            missing.is_empty(),
            "{arch}: compiled but not listed: {missing:?}"
        );
        let extras: Vec<_> = embedded.difference(&compiled).collect();
        for extra in &extras {
            let name = extra.split('@').next().unwrap();
            assert!(
                lock.contains(&format!(" \"{name}\",\n")) || lock.contains(&format!(" \"{name} ")),
                "{arch}: {extra} is listed but neither compiled nor a locked dependency"
            );
        }
        eprintln!(
            "{arch}: {} crates compiled, all listed; {} listed but not built: {extras:?}",
            compiled.len(),
            extras.len()
        );
    }
}

/// `name@version` of every library the build compiled for `triple` (not build scripts, not
/// proc-macros, which run on the build host).
fn compiled_crates(messages: &Path, triple: &str) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(messages).unwrap_or_else(|e| panic!("{messages:?}: {e}"));
    let mut out = std::collections::BTreeSet::new();
    for line in text.lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if m["reason"] != "compiler-artifact" {
            continue;
        }
        let kinds: Vec<&str> = m["target"]["kind"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str())
            .collect();
        let for_target = m["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .any(|f| f.contains(&format!("/{triple}/")));
        if kinds.contains(&"custom-build") || kinds.contains(&"proc-macro") || !for_target {
            continue;
        }
        // "registry+…#name@1.2.3", or "path+file:///…/name#1.2.3" for a path package.
        let id = m["package_id"].as_str().unwrap_or("");
        let (url, fragment) = id.rsplit_once('#').unwrap_or(("", id));
        let (name, version) = match fragment.split_once('@') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => (
                url.rsplit('/').next().unwrap_or("").to_owned(),
                fragment.to_owned(),
            ),
        };
        out.insert(format!("{name}@{version}"));
    }
    out
}
