//! The fixture service: each dependency that compiles C does real work, so a missing or
//! miscompiled object fails here at runtime, not only at link time. Prints one line per crate
//! and `ok`; exits 1 on any mismatch. Run in its scratch image on both platforms by the image
//! checks (tests/image/c_deps.rs).

use std::process::ExitCode;

/// mimalloc (C) as the global allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match checks() {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cdeps: {e}");
            ExitCode::FAILURE
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn checks() -> Result<Vec<String>, String> {
    let mut lines = Vec::new();

    // mimalloc: a Rust allocation lives in mimalloc's heap.
    let boxed = Box::new([7u8; 4096]);
    // SAFETY: both only read mimalloc's own state; the pointer is live.
    let (ours, version) = unsafe {
        (
            libmimalloc_sys::mi_is_in_heap_region(boxed.as_ptr().cast()),
            libmimalloc_sys::mi_version(),
        )
    };
    if !ours {
        return Err("a Box is not in mimalloc's heap: mimalloc is not the allocator".into());
    }
    lines.push(format!("mimalloc {version}: the global allocator"));

    // zstd (C): a round trip.
    let data = b"the pipeline ships any Rust service, C dependencies included. ".repeat(512);
    let packed = zstd::encode_all(&data[..], 19).map_err(|e| format!("zstd: {e}"))?;
    let unpacked = zstd::decode_all(&packed[..]).map_err(|e| format!("zstd: {e}"))?;
    if unpacked != data {
        return Err("zstd: the round trip changed the data".into());
    }
    lines.push(format!("zstd: {} bytes -> {} -> {}", data.len(), packed.len(), unpacked.len()));

    // ring (C and assembly) and aws-lc-rs (AWS-LC: C, cmake or cc): SHA-256 of "abc", FIPS
    // 180-2's first example, from both.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let ring = hex(ring::digest::digest(&ring::digest::SHA256, b"abc").as_ref());
    let aws = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"abc").as_ref());
    if ring != ABC || aws != ABC {
        return Err(format!("sha256(abc): ring {ring}, aws-lc-rs {aws}, want {ABC}"));
    }
    lines.push(format!("ring, aws-lc-rs: sha256(abc) = {ABC}"));

    // rusqlite with its bundled SQLite (C): a table, rows, an aggregate.
    let db = rusqlite::Connection::open_in_memory().map_err(|e| format!("sqlite: {e}"))?;
    let sum: i64 = db
        .execute_batch(
            "CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3), (36);",
        )
        .and_then(|()| db.query_row("SELECT sum(n) FROM t", [], |r| r.get(0)))
        .map_err(|e| format!("sqlite: {e}"))?;
    if sum != 42 {
        return Err(format!("sqlite: sum {sum}, want 42"));
    }
    let version: String = db
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .map_err(|e| format!("sqlite: {e}"))?;
    lines.push(format!("sqlite {version}: sum = {sum}"));
    Ok(lines)
}
