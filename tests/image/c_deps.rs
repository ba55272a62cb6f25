//! Any Rust service, C dependencies included: the fixture under tests/c-deps (mimalloc as the
//! global allocator, zstd, ring, aws-lc-rs, rusqlite with its bundled SQLite, each used at
//! runtime) through the same pipeline as httpserver (tests/c-deps/docker-bake.hcl on top of
//! docker-bake.hcl: the main Dockerfile's stages, its C toolchain for both musl targets, SBOM).
//! Built twice from source for linux/amd64 and linux/arm64: the same digest; static; it runs in
//! its scratch image on both platforms (arm64 under QEMU); the SBOM lists the crates that
//! compile C; the debug file carries the C code's line tables.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use libtest_mimic::Trial;

use crate::bake;
use crate::docker::{self, CALL_LIMIT, registry};
use crate::fixtures::{self, BUILD_LIMIT, PLATFORMS};
use crate::report::check;

/// The crates of the fixture that compile C, as the SBOM must name them.
const C_CRATES: [&str; 5] = [
    "aws-lc-sys",
    "libmimalloc-sys",
    "libsqlite3-sys",
    "ring",
    "zstd-sys",
];
/// A C source of each, whose name the debug file's line tables must carry.
const C_SOURCES: [&str; 5] = [
    "sqlite3.c",
    "zstd_compress.c",
    "alloc.c",
    "curve25519.c",
    "bcm.c",
];

pub fn checks() -> Vec<Trial> {
    let mut all = vec![check(
        "c-deps: two builds from source (linux/amd64 + linux/arm64) give the same index digest",
        || {
            built()
                .as_ref()
                .map(|b| b.figure.clone())
                .map_err(Clone::clone)
        },
    )];
    for p in PLATFORMS {
        all.push(check(
            format!("c-deps {p}: static (no interpreter, no DT_NEEDED), build id, .eh_frame"),
            move || static_binary(p),
        ));
        all.push(check(
            format!(
                "c-deps {p}: runs in its scratch image (mimalloc, zstd, ring, aws-lc-rs, SQLite)"
            ),
            move || runs(p),
        ));
        all.push(check(
            format!("c-deps {p}: the debug file has the C code's line tables"),
            move || c_line_tables(p),
        ));
    }
    all.push(check(
        "c-deps: the SBOM lists the crates that compile C",
        sbom,
    ));
    all
}

fn image() -> String {
    format!("{}-c-deps", fixtures::settings().image)
}

fn reference() -> String {
    let s = fixtures::settings();
    format!("{}/{}:{}-repro", s.registry, image(), s.push_tag)
}

/// Whether this builder takes rewrite-timestamp on image exports (the `docker` driver does
/// not), as the Makefile decides it for `make push`.
fn rewrite_timestamp() -> &'static str {
    let driver = docker::docker(&["buildx", "inspect"]).unwrap_or_default();
    let docker_driver = driver
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Driver:", "docker"]);
    if docker_driver { "false" } else { "true" }
}

/// `docker buildx bake -f docker-bake.hcl -f tests/c-deps/docker-bake.hcl TARGET`.
fn bake_cmd(target: &str) -> Command {
    let s = fixtures::settings();
    let mut cmd = Command::new("docker");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "buildx",
            "bake",
            "-f",
            "docker-bake.hcl",
            "-f",
            "tests/c-deps/docker-bake.hcl",
        ])
        .env("REGISTRY", &s.registry)
        .env("TAG", format!("{}-repro", s.push_tag))
        .env("C_DEPS_IMAGE", image())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("REWRITE_TIMESTAMP", rewrite_timestamp())
        .arg(target);
    cmd
}

struct Built {
    figure: String,
    symbols: PathBuf,
}

/// Two pushes of the fixture to one tag, every stage that compiles or assembles it rebuilt
/// (the toolchain stage cached, like the base image), without provenance (which records the
/// build's own invocation); then its debug files exported.
fn built() -> &'static Result<Built, String> {
    static CELL: OnceLock<Result<Built, String>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut runs = Vec::new();
        for n in 1..=2 {
            let mut cmd = bake_cmd("c-deps");
            cmd.arg("--push")
                .env("PROVENANCE", "false")
                .env("NO_CACHE_FILTER", "planner,builder,built,runtime");
            let run = bake::run(&format!("c-deps build {n} from source"), cmd, BUILD_LIMIT)?;
            let raw = docker::docker(&["buildx", "imagetools", "inspect", "--raw", &reference()])?;
            runs.push((crate::common::sha256_hex(raw.as_bytes())?, run.seconds));
        }
        if runs[0].0 != runs[1].0 {
            return Err(format!(
                "index digests differ: {} vs {}",
                runs[0].0, runs[1].0
            ));
        }
        let symbols = bake::scratch_file("c-deps-symbols");
        let _ = std::fs::remove_dir_all(&symbols);
        let mut cmd = bake_cmd("c-deps-symbols");
        cmd.arg("--set").arg(format!(
            "c-deps-symbols.output=type=local,dest={},platform-split=false",
            symbols.display()
        ));
        bake::run("c-deps symbols", cmd, BUILD_LIMIT)?;
        Ok(Built {
            figure: format!(
                "sha256:{}… both times ({} s and {} s from source)",
                &runs[0].0[..12],
                runs[0].1,
                runs[1].1
            ),
            symbols,
        })
    })
}

fn machine(p: &str) -> object::Architecture {
    match p {
        "linux/amd64" => object::Architecture::X86_64,
        _ => object::Architecture::Aarch64,
    }
}

/// The exported binary (BUILD_ID/cdeps) and debug file of platform `p`.
fn files_of(p: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    use object::Object;
    let dir = &built().as_ref().map_err(Clone::clone)?.symbols;
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let d = e.map_err(|e| e.to_string())?.path();
        let bin = d.join("cdeps");
        let Ok(bytes) = std::fs::read(&bin) else {
            continue;
        };
        let file = object::File::parse(&*bytes).map_err(|e| e.to_string())?;
        if file.architecture() == machine(p) {
            let debug = std::fs::read(d.join("cdeps.debug")).map_err(|e| e.to_string())?;
            return Ok((bytes, debug));
        }
    }
    Err(format!("{}: no cdeps for {p}", dir.display()))
}

fn static_binary(p: &str) -> Result<String, String> {
    use object::read::elf::{ElfFile64, ProgramHeader};
    use object::{Object, ObjectSection};
    let (bytes, _) = files_of(p)?;
    let elf = ElfFile64::<object::Endianness>::parse(&*bytes).map_err(|e| e.to_string())?;
    let endian = elf.endian();
    let interp = elf
        .elf_program_headers()
        .iter()
        .any(|ph| ph.p_type(endian) == object::elf::PT_INTERP);
    let needed = !crate::common::dynamic_needed(&elf).is_empty();
    let build_id = elf.build_id().map_err(|e| e.to_string())?.is_some();
    let eh_frame = elf
        .section_by_name(".eh_frame")
        .is_some_and(|s| s.size() > 0);
    if interp || needed || !build_id || !eh_frame {
        return Err(format!(
            "interpreter {interp}, DT_NEEDED {needed}, build id {build_id}, .eh_frame {eh_frame}"
        ));
    }
    Ok(format!(
        "{} bytes: static, build id, .eh_frame",
        bytes.len()
    ))
}

fn runs(p: &str) -> Result<String, String> {
    built().as_ref().map_err(Clone::clone)?;
    let index = registry::index(&reference())?;
    let arch = p.trim_start_matches("linux/");
    let m = index
        .platform(arch)
        .ok_or_else(|| format!("no {p} in {}", reference()))?;
    let at = crate::verify::repo_at(&reference(), &m.digest);
    let out = docker::output(
        Command::new("docker").args(["run", "--rm", "--read-only", "--platform", p, &at]),
        CALL_LIMIT,
    )?;
    let lines: Vec<&str> = out.lines().collect();
    if lines.last() != Some(&"ok") || lines.len() != 5 {
        return Err(format!("output: {out:?}"));
    }
    Ok(lines[..4].join("; "))
}

fn c_line_tables(p: &str) -> Result<String, String> {
    let (_, debug) = files_of(p)?;
    let missing: Vec<&str> = C_SOURCES
        .iter()
        .copied()
        .filter(|name| !debug.windows(name.len()).any(|w| w == name.as_bytes()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "no line tables of {missing:?} in the {} byte debug file",
            debug.len()
        ));
    }
    // AWS-LC went through cmake (tests/c-deps/.cargo/config.toml asks aws-lc-sys for it): its
    // objects were compiled in cmake-rs's build tree, which the line tables name.
    let cmake_tree = b"/out/build/aws-lc/";
    if !debug.windows(cmake_tree.len()).any(|w| w == cmake_tree) {
        return Err(
            "AWS-LC was not built by cmake (no out/build/aws-lc/ in the line tables)".into(),
        );
    }
    Ok(format!(
        "{} byte debug file names {}; AWS-LC from cmake's build tree",
        debug.len(),
        C_SOURCES.join(", ")
    ))
}

fn sbom() -> Result<String, String> {
    built().as_ref().map_err(Clone::clone)?;
    let text = docker::docker(&[
        "buildx",
        "imagetools",
        "inspect",
        &reference(),
        "--format",
        "{{ json .SBOM }}",
    ])?;
    let all: serde_json::Value = docker::json(&text)?;
    let mut figures = Vec::new();
    for p in PLATFORMS {
        let names: Vec<&str> = all[p]["SPDX"]["packages"]
            .as_array()
            .ok_or_else(|| format!("no SBOM for {p}"))?
            .iter()
            .filter_map(|pkg| pkg["name"].as_str())
            .collect();
        let missing: Vec<&str> = C_CRATES
            .iter()
            .copied()
            .filter(|c| !names.contains(c))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{p}: the SBOM ({} packages) lacks {missing:?}",
                names.len()
            ));
        }
        figures.push(format!("{p} {} packages", names.len()));
    }
    Ok(format!(
        "{} listed; {}",
        C_CRATES.join(", "),
        figures.join(", ")
    ))
}

/// The fixture's repository, for the run's cleanup.
pub fn repositories() -> Vec<String> {
    let s = fixtures::settings();
    vec![image(), format!("{}/{}", s.registry, image())]
}
