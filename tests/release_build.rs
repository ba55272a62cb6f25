//! Checks on the release musl builds from `make build` (run by `make test`; ignored by a plain
//! `cargo test`, which has no release binaries).
mod common;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Server, get};
use pprof::protos::Message;

fn static_dir() -> PathBuf {
    PathBuf::from(
        std::env::var_os("HTTPSERVER_STATIC_DIR")
            .expect("HTTPSERVER_STATIC_DIR (make static-test sets it)"),
    )
}

fn assert_static(path: &std::path::Path, machine: object::Architecture) {
    use object::Object;
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
    // Symbols kept (profiles need them), DWARF stripped.
    assert!(elf.symbols().count() > 1000, "{path:?} looks stripped");
    assert!(
        elf.section_by_name(".debug_info").is_none(),
        "{path:?} carries debuginfo"
    );
}

/// DT_NEEDED entries (shared libraries the loader would have to find).
fn dynamic_needed(elf: &object::read::elf::ElfFile64<object::Endianness>) -> Vec<u64> {
    use object::read::elf::{Dyn, SectionHeader};
    let endian = elf.endian();
    let mut needed = Vec::new();
    for section in elf.elf_section_table().iter() {
        if let Ok(Some((entries, _))) = section.dynamic(endian, elf.data()) {
            needed.extend(
                entries
                    .iter()
                    .filter(|d| d.d_tag(endian) == object::elf::DT_NEEDED)
                    .map(|d| d.d_val(endian)),
            );
        }
    }
    needed
}

#[test]
#[ignore = "needs `make build`"]
fn both_binaries_are_static() {
    let dir = static_dir();
    assert_static(&dir.join("amd64/httpserver"), object::Architecture::X86_64);
    assert_static(&dir.join("arm64/httpserver"), object::Architecture::Aarch64);
}

#[test]
#[ignore = "needs `make build` and qemu-user (binfmt)"]
fn arm64_binary_serves_under_qemu() {
    let srv = Server::start_with(static_dir().join("arm64/httpserver"), &[], &[]);
    let r = get(srv.addr, "/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
}

#[test]
#[ignore = "needs `make build`"]
fn release_profile_names_frames_of_this_program() {
    let srv = Server::start_with(static_dir().join("amd64/httpserver"), &[], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let load = common::load(srv.addr, 3, stop.clone());
    let r = get(srv.addr, "/debug/pprof/profile?seconds=3");
    stop.store(true, Ordering::Relaxed);
    let served = load.join().unwrap();
    assert_eq!(r.status, 200);
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_end(&mut raw)
        .expect("gzip");
    let profile = pprof::protos::Profile::decode(&raw[..]).expect("pprof protobuf");
    let names: Vec<&str> = profile
        .function
        .iter()
        .map(|f| profile.string_table[f.name as usize].as_str())
        .collect();
    let samples: i64 = profile.sample.iter().map(|s| s.value[0]).sum();
    assert!(
        samples > 10,
        "only {samples} samples while serving {served} requests"
    );
    let ours: Vec<_> = names
        .iter()
        .filter(|n| n.starts_with("httpserver::"))
        .collect();
    assert!(
        !ours.is_empty(),
        "no httpserver:: frames among {} functions: {names:?}",
        names.len()
    );
    eprintln!(
        "{} samples, {} functions, {} of ours, e.g. {:?}",
        samples,
        names.len(),
        ours.len(),
        &ours[..ours.len().min(5)]
    );
}
