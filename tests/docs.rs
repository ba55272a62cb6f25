//! The docs and the code agree: every /debug/pprof endpoint the index serves is in
//! docs/profiling.md's table and every row there is served; every `--flag` the README and
//! docs/ name is one the binary takes; every `make VERB` they name is a Makefile target.
mod common;

use std::collections::BTreeSet;

use common::{Server, get};

fn doc(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn all_docs() -> Vec<(String, String)> {
    let mut docs = vec![("README.md".to_owned(), doc("README.md"))];
    let dir = format!("{}/docs", env!("CARGO_MANIFEST_DIR"));
    for e in std::fs::read_dir(dir).unwrap() {
        let name = format!("docs/{}", e.unwrap().file_name().to_string_lossy());
        docs.push((name.clone(), doc(&name)));
    }
    docs
}

/// Words of `text` that start with `prefix`, up to the first byte not in `[a-z0-9-]`.
fn words_after(text: &str, prefix: &str) -> BTreeSet<String> {
    text.match_indices(prefix)
        .filter(|(i, _)| {
            // `make X` only where make starts a word; `--flag` anywhere.
            *i == 0 || !text.as_bytes()[i - 1].is_ascii_alphanumeric()
        })
        .map(|(i, _)| {
            text[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                .collect::<String>()
        })
        .filter(|w| w.len() > 1 && !w.ends_with('-') && !w.starts_with('-'))
        .collect()
}

#[test]
fn profiling_doc_lists_exactly_the_served_endpoints() {
    let srv = Server::start(&[]);
    let html = get(srv.addr, "/debug/pprof/").text();
    let served: BTreeSet<String> = html
        .match_indices("<a href=\"")
        .map(|(i, m)| {
            html[i + m.len()..]
                .split(['"', '?'])
                .next()
                .unwrap()
                .to_owned()
        })
        .filter(|h| !h.is_empty() && !h.contains('='))
        .collect();
    let text = doc("docs/profiling.md");
    let table = text
        .split("## Endpoints")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .expect("an Endpoints section");
    let documented: BTreeSet<String> = table
        .lines()
        .filter(|l| l.starts_with("| `") && !l.starts_with("| `/debug/pprof/`"))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap();
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|p| p.split('?').next().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(documented, served, "docs/profiling.md's table vs the index");
}

#[test]
fn readme_flag_table_lists_exactly_the_flags_the_binary_takes() {
    let (_, help, _) = common::run_to_end(&["--help"], &[]);
    let taken: BTreeSet<String> = words_after(&help, "--")
        .into_iter()
        .filter(|f| f != "help" && f != "version")
        .collect();
    let readme = doc("README.md");
    let table = readme
        .split("## Flags and environment")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .expect("a Flags and environment section");
    let documented: BTreeSet<String> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| words_after(l.split('|').nth(1).unwrap(), "--"))
        .collect();
    assert_eq!(
        documented, taken,
        "README's flag table vs httpserver --help"
    );
}

#[test]
fn every_make_verb_the_docs_name_exists() {
    let makefile = doc("Makefile");
    for (name, text) in all_docs() {
        for verb in words_after(&text, "make ") {
            assert!(
                makefile.lines().any(|l| l.starts_with(&format!("{verb}:"))),
                "{name} names `make {verb}`, which the Makefile does not define"
            );
        }
    }
}
