//! One source per build setting: the tool versions and the project's home URL are written in
//! docker-bake.hcl only (the Dockerfile gets them as build args, the Makefile and scripts read
//! them with scripts/bake-var.sh). Any other tracked file that spells one out has a second copy
//! that will drift; rust-toolchain.toml, which rustup and editors read, must name the same Rust,
//! and the images' licenses label must be Cargo.toml's license.

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SETTINGS: [&str; 4] = [
    "RUST_VERSION",
    "CARGO_CHEF_VERSION",
    "CARGO_AUDITABLE_VERSION",
    "SOURCE",
];
/// Files allowed to hold the values: the source itself, rust-toolchain.toml (checked below),
/// and a generated report (it records the rustc it ran).
const ALLOWED: [&str; 3] = ["docker-bake.hcl", "rust-toolchain.toml", "BENCHMARKS.md"];

fn bake_default(name: &str) -> String {
    let out = Command::new("bash")
        .arg(format!("{ROOT}/scripts/bake-var.sh"))
        .arg(name)
        .output()
        .expect("run scripts/bake-var.sh");
    assert!(
        out.status.success(),
        "bake-var.sh {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn tool_versions_and_the_source_url_are_written_once() {
    let files = Command::new("git")
        .args(["ls-files", "-co", "--exclude-standard"])
        .current_dir(ROOT)
        .output()
        .expect("git ls-files");
    let files = String::from_utf8(files.stdout).unwrap();
    let mut copies = Vec::new();
    for name in SETTINGS {
        let value = bake_default(name);
        assert!(
            value.len() >= 5,
            "{name}={value:?} is too short to search for"
        );
        for file in files.lines().filter(|f| !ALLOWED.contains(f)) {
            let Ok(text) = std::fs::read_to_string(format!("{ROOT}/{file}")) else {
                continue;
            };
            if text.contains(&value) {
                copies.push(format!("{file} spells out {name}={value}"));
            }
        }
    }
    assert!(
        copies.is_empty(),
        "second copies of docker-bake.hcl's settings:\n{}",
        copies.join("\n")
    );
}

#[test]
fn the_dockerfile_takes_the_versions_from_bake_without_defaults() {
    let dockerfile = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    for name in [
        "RUST_VERSION",
        "CARGO_CHEF_VERSION",
        "CARGO_AUDITABLE_VERSION",
    ] {
        let lines: Vec<&str> = dockerfile
            .lines()
            .filter(|l| {
                let decl = l.trim_start().strip_prefix("ARG ").unwrap_or("");
                decl.split('=').next() == Some(name)
            })
            .collect();
        assert!(!lines.is_empty(), "the Dockerfile declares no ARG {name}");
        for l in lines {
            assert_eq!(
                l.trim(),
                format!("ARG {name}"),
                "a default in the Dockerfile: {l}"
            );
        }
    }
}

#[test]
fn rust_toolchain_toml_names_the_rust_the_images_build_with() {
    let toml = std::fs::read_to_string(format!("{ROOT}/rust-toolchain.toml")).unwrap();
    let channel = toml
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-toolchain.toml: channel");
    assert_eq!(
        channel,
        bake_default("RUST_VERSION"),
        "rust-toolchain.toml vs docker-bake.hcl"
    );
    for needed in [
        "rustfmt",
        "clippy",
        "llvm-tools",
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
    ] {
        assert!(
            toml.contains(&format!("\"{needed}\"")),
            "rust-toolchain.toml lacks {needed}"
        );
    }
}

#[test]
fn the_licenses_label_is_cargo_tomls_license() {
    let cargo = std::fs::read_to_string(format!("{ROOT}/Cargo.toml")).unwrap();
    let license = cargo
        .lines()
        .find_map(|l| l.strip_prefix("license = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml: license");
    assert_eq!(bake_default("LICENSES"), license);
}
