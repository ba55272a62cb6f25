//! The docs and the code agree: every /debug/pprof endpoint the index serves is in
//! docs/profiling.md's table and every row there is served; docs/configuration.md lists
//! exactly the flags `--help` does, with the same environment variables and defaults; the
//! README's endpoints answer; every `make VERB` the docs and CI name is a Makefile target that
//! `make help` lists.
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

/// The verbs of `make VERB` written as commands: in a code span, at the start of a line of a
/// code block, or after `&&`, `;` or `|` (prose such as "the make verbs" is not one).
fn make_verbs(text: &str) -> BTreeSet<String> {
    text.lines()
        .flat_map(|line| {
            let trimmed = line.trim_start();
            line.match_indices("make ")
                .filter(|(i, _)| {
                    let before = line[..*i].trim_end();
                    before.ends_with('`')
                        || before.ends_with("&&")
                        || before.ends_with(';')
                        || before.ends_with('|') && !before.ends_with("||")
                        || before.ends_with("$(")
                        || (before.is_empty() && trimmed.starts_with("make "))
                        || before.ends_with('"')
                })
                .map(|(i, _)| {
                    line[i + 5..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                        .collect::<String>()
                })
                .filter(|w| w.len() > 1 && !w.starts_with('-'))
                .collect::<Vec<_>>()
        })
        .collect()
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

/// One row of a flag table: the long flag, its env column, its default column.
struct FlagRow {
    flag: String,
    env: String,
    default: String,
}

fn flag_table(text: &str, section: &str) -> Vec<FlagRow> {
    let table = text
        .split(section)
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .unwrap_or_else(|| panic!("no {section} section"));
    let code = |cell: &str| cell.trim().trim_matches('`').to_owned();
    table
        .lines()
        .filter(|l| l.starts_with("| `-"))
        .map(|l| l.replace("\\|", "/"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            FlagRow {
                flag: words_after(cells[1], "--").into_iter().next().unwrap(),
                env: code(cells[2]),
                default: code(cells[3]),
            }
        })
        .collect()
}

/// `--help`'s line for `--flag`.
fn help_line<'a>(help: &'a str, flag: &str) -> Option<&'a str> {
    help.lines().find(|l| {
        l.split_whitespace()
            .any(|w| w.trim_end_matches(',') == format!("--{flag}"))
    })
}

#[test]
fn configuration_reference_matches_help_flags_env_and_defaults() {
    let (_, help, _) = common::run_to_end(&["--help"], &[]);
    let taken: BTreeSet<String> = words_after(&help, "--")
        .into_iter()
        .filter(|f| f != "help" && f != "version")
        .collect();
    let rows = flag_table(&doc("docs/configuration.md"), "## Flags and environment");
    let documented: BTreeSet<String> = rows.iter().map(|r| r.flag.clone()).collect();
    assert_eq!(
        documented, taken,
        "docs/configuration.md's flag table vs httpserver --help"
    );
    for r in &rows {
        let line = help_line(&help, &r.flag).unwrap();
        if r.env.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !r.env.is_empty() {
            assert!(
                line.contains(&format!("[env: {}=", r.env)),
                "--{}: env {} vs {line}",
                r.flag,
                r.env
            );
        }
        match line
            .split("[default: ")
            .nth(1)
            .and_then(|d| d.split(']').next())
        {
            Some(d) => assert_eq!(r.default, d, "--{}: default", r.flag),
            None => assert!(
                !r.default.chars().next().is_some_and(|c| c.is_ascii_digit()),
                "--{}: --help shows no default, the docs say {}",
                r.flag,
                r.default
            ),
        }
    }
    // The README's short table: a subset, with the same defaults.
    let all: std::collections::BTreeMap<String, String> =
        rows.into_iter().map(|r| (r.flag, r.default)).collect();
    for r in flag_table(&doc("README.md"), "## The flags most people change") {
        let want = all
            .get(&r.flag)
            .unwrap_or_else(|| panic!("README: --{} is not a flag", r.flag));
        assert_eq!(&r.default, want, "README: --{} default", r.flag);
    }
}

#[test]
fn make_help_lists_every_target_the_docs_and_ci_use() {
    let (help, _) = make_help();
    let mut used = BTreeSet::new();
    for (_, text) in all_docs() {
        used.extend(make_verbs(&text));
    }
    for ci in [
        ".ci/run",
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
    ] {
        used.extend(make_verbs(&doc(ci)));
    }
    for verb in used {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{verb} "))),
            "`make {verb}` is used by the docs or CI but `make help` does not list it:\n{help}"
        );
    }
}

fn make_help() -> (String, String) {
    let out = std::process::Command::new("make")
        .args(["-s", "--no-print-directory", "help"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run make help");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn readme_endpoints_are_routed_and_routed_ones_are_in_the_readme() {
    let srv = Server::start(&[]);
    let readme = doc("README.md");
    let table = readme
        .split("## Endpoints")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let paths: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("| `/"))
        .map(|l| l.split('`').nth(1).unwrap().to_owned())
        .collect();
    for path in &paths {
        let status = get(srv.addr, path).status;
        assert_eq!(status, 200, "README lists {path}, which answers {status}");
    }
    for routed in ["/healthz", "/readyz", "/debug/pprof/"] {
        assert!(
            paths.iter().any(|p| p == routed),
            "README's endpoints miss {routed}"
        );
    }
    assert_eq!(get(srv.addr, "/nothing-here").status, 404);
    assert_eq!(
        common::request(srv.addr, "POST", "/debug/pprof/", b"").status,
        405,
        "a known path, the wrong method"
    );
}

#[test]
fn every_make_verb_the_docs_name_exists() {
    let makefile = doc("Makefile");
    for (name, text) in all_docs() {
        for verb in make_verbs(&text) {
            assert!(
                makefile.lines().any(|l| l.starts_with(&format!("{verb}:"))),
                "{name} names `make {verb}`, which the Makefile does not define"
            );
        }
    }
}
