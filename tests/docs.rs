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

/// Every tracked (or new, unignored) file of the checkout, relative to its root.
fn tracked_files() -> Vec<String> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-co", "--exclude-standard"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git ls-files");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Whether `path` (relative to the root; a trailing `/` a directory, `*` any name) names
/// something in the checkout.
fn exists_in(files: &[String], path: &str) -> bool {
    let path = path.trim_start_matches("./");
    if path.contains('*') {
        let (head, tail) = path.split_once('*').unwrap();
        return files
            .iter()
            .any(|f| f.starts_with(head) && f[head.len()..].contains(tail.trim_end_matches('/')));
    }
    let dir = format!("{}/", path.trim_end_matches('/'));
    files.iter().any(|f| f == path || f.starts_with(&dir))
}

/// The top-level names of the checkout (what a relative path in a doc starts with).
fn top_level(files: &[String]) -> BTreeSet<String> {
    files
        .iter()
        .map(|f| f.split('/').next().unwrap().to_owned())
        .collect()
}

/// Repository paths in `text`: words starting with a top-level name and a `/`, or naming a
/// top-level file, up to a character no path has here.
fn repo_paths(text: &str, roots: &BTreeSet<String>) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || "._-/*".contains(c);
    let mut out = BTreeSet::new();
    for (i, _) in text.char_indices() {
        if i > 0 && word(text[..i].chars().next_back().unwrap()) {
            continue;
        }
        let w: String = text[i..].chars().take_while(|c| word(*c)).collect();
        let w = w.trim_end_matches(['.', ',']);
        let first = w.split('/').next().unwrap();
        if !roots.contains(first) || first.is_empty() {
            continue;
        }
        // A top-level file alone, or anything below a top-level directory.
        if w.contains('/') || !w.contains('*') {
            out.insert(w.to_owned());
        }
    }
    out
}

/// The comment text of a build file, workflow, script or manifest.
fn comments(path: &str, text: &str) -> String {
    let marker = if path.ends_with(".hcl") || path.ends_with(".alloy") {
        "//"
    } else {
        "#"
    };
    text.lines()
        .filter_map(|l| l.find(marker).map(|i| &l[i + marker.len()..]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The build files, workflows, scripts and manifests whose comments name paths and verbs.
fn commented_files(files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|f| {
            let name = f.rsplit('/').next().unwrap();
            matches!(name, "Makefile" | "Dockerfile" | "run")
                || name.starts_with("Containerfile")
                || [".hcl", ".sh", ".toml", ".yml", ".yaml", ".alloy"]
                    .iter()
                    .any(|e| name.ends_with(e))
        })
        .filter(|f| !f.starts_with("tests/fixtures/"))
        .cloned()
        .collect()
}

#[test]
fn every_path_the_docs_and_build_comments_name_exists() {
    let files = tracked_files();
    let roots = top_level(&files);
    let mut missing = Vec::new();
    for (name, text) in all_docs() {
        let dir = std::path::Path::new(&name).parent().unwrap().to_owned();
        // Markdown links, relative to the document.
        for (i, _) in text.match_indices("](") {
            let target = text[i + 2..].split(')').next().unwrap();
            let target = target.split('#').next().unwrap();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let path = dir.join(target);
            let path = path.to_string_lossy().replace("docs/../", "");
            if !exists_in(&files, &path) {
                missing.push(format!("{name}: link to {target}"));
            }
        }
        // Paths in code spans.
        for span in text.split('`').skip(1).step_by(2) {
            for p in repo_paths(span, &roots) {
                if !exists_in(&files, &p) {
                    missing.push(format!("{name}: `{p}`"));
                }
            }
        }
    }
    for f in commented_files(&files) {
        let text = doc(&f);
        for p in repo_paths(&comments(&f, &text), &roots) {
            if !exists_in(&files, &p) {
                missing.push(format!("{f} (a comment): {p}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths that are not there:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_make_verb_in_build_comments_and_workflows_exists() {
    let makefile = doc("Makefile");
    let files = tracked_files();
    let mut missing = Vec::new();
    for f in commented_files(&files) {
        let text = doc(&f);
        // Workflows run make in their steps; everywhere else only comments name verbs.
        let text = if f.starts_with(".github/") {
            text
        } else {
            comments(&f, &text)
        };
        for verb in make_verbs(&text) {
            if !makefile.lines().any(|l| l.starts_with(&format!("{verb}:"))) {
                missing.push(format!("{f}: make {verb}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "make verbs that do not exist:\n{}",
        missing.join("\n")
    );
}

/// UPPER_CASE names at the start of `s`.
fn name_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
        .collect()
}

/// Names a text reads: `$(NAME)`, `${NAME`, `$NAME`, `var("NAME")`, `var_os("NAME")`.
fn names_read(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for pat in ["$(", "${", "$", "var(\"", "var_os(\""] {
        for (i, _) in text.match_indices(pat) {
            out.insert(name_at(&text[i + pat.len()..]));
        }
    }
    out.remove("");
    out
}

/// The settings `make VERB` reads: names in its recipe and its prerequisites' recipes, in the
/// make variables those expand (their definitions, transitively), in the scripts they run; bake's
/// variables where it runs bake (bake reads them from the environment); the image harness's
/// environment where it runs that; cosign's own password.
fn settings_of(verb: &str) -> BTreeSet<String> {
    let makefile = doc("Makefile");
    let definition = |name: &str| -> String {
        let mut text = String::new();
        let mut lines = makefile.lines();
        while let Some(l) = lines.next() {
            let l2 = l.trim_start_matches("export ");
            if l2.starts_with(name) && l2[name.len()..].trim_start().starts_with(['=', '?', ':']) {
                text.push_str(l);
                let mut cont = l.ends_with('\\');
                while cont {
                    let Some(next) = lines.next() else { break };
                    text.push_str(next);
                    cont = next.ends_with('\\');
                }
            }
        }
        text
    };
    let recipe = |target: &str| -> (String, Vec<String>) {
        let mut lines = makefile
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{target}:")));
        let Some(head) = lines.next() else {
            return (String::new(), vec![]);
        };
        let prereqs = head[target.len() + 1..]
            .split("##")
            .next()
            .unwrap()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let body: Vec<&str> = lines.take_while(|l| l.starts_with('\t')).collect();
        (format!("{head}\n{}", body.join("\n")), prereqs)
    };
    let mut text = String::new();
    let mut todo = vec![verb.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(t) = todo.pop() {
        if !seen.insert(t.clone()) {
            continue;
        }
        let (body, prereqs) = recipe(&t);
        text.push_str(&body);
        todo.extend(prereqs);
    }
    // Expand the make variables the recipe uses, to a fixed point.
    let mut expanded = BTreeSet::new();
    loop {
        let fresh: Vec<String> = names_read(&text)
            .into_iter()
            .filter(|n| expanded.insert(n.clone()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for n in fresh {
            text.push_str(&definition(&n));
        }
    }
    let mut known = names_read(&text);
    known.insert("COSIGN_PASSWORD".into());
    for script in text
        .split_whitespace()
        .filter(|w| w.starts_with("scripts/"))
    {
        if let Ok(t) = std::fs::read_to_string(format!("{}/{script}", env!("CARGO_MANIFEST_DIR"))) {
            known.extend(names_read(&t));
        }
    }
    if text.contains("$(BAKE)") {
        for l in doc("docker-bake.hcl").lines() {
            if let Some(rest) = l.strip_prefix("variable \"") {
                known.insert(name_at(rest));
            }
        }
    }
    if text.contains("--test image") {
        for e in std::fs::read_dir(format!("{}/tests/image", env!("CARGO_MANIFEST_DIR"))).unwrap() {
            known.extend(names_read(
                &std::fs::read_to_string(e.unwrap().path()).unwrap(),
            ));
        }
    }
    known
}

#[test]
fn every_setting_given_to_make_is_one_that_verb_reads() {
    let files = tracked_files();
    let mut texts = all_docs();
    for f in commented_files(&files) {
        let text = doc(&f);
        texts.push((f.clone(), comments(&f, &text)));
    }
    let mut unknown = Vec::new();
    for (name, text) in texts {
        for line in text.lines() {
            // Each `make VERB ...` command on the line, up to where the command ends.
            for (i, _) in line.match_indices("make ") {
                let verb: String = line[i + 5..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                    .collect();
                if verb.len() < 2 || !make_verbs(line).contains(&verb) {
                    continue;
                }
                let known = settings_of(&verb);
                // Settings before make (VAR=... make VERB) and after it, in this command.
                let start = line[..i]
                    .rfind(['`', ';', '&', '|', '('])
                    .map_or(0, |j| j + 1);
                let end = line[i..]
                    .find(['`', ';', '&', '|', ')', '#'])
                    .map_or(line.len(), |j| i + j);
                for (j, _) in line[start..end].match_indices('=') {
                    let before = &line[start..start + j];
                    let var = name_at(
                        &before
                            .chars()
                            .rev()
                            .take_while(|c| {
                                c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_'
                            })
                            .collect::<String>()
                            .chars()
                            .rev()
                            .collect::<String>(),
                    );
                    // Cargo's own settings (CARGO_PROFILE_RELEASE_LTO=thin) need no reader here.
                    if var.len() > 1 && !known.contains(&var) && !var.starts_with("CARGO_") {
                        unknown.push(format!("{name}: make {verb} does not read {var}: {line:?}"));
                    }
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "settings nothing reads:\n{}",
        unknown.join("\n")
    );
}

/// `(file.md, "Heading")` and `"Heading" below|above` point at headings that exist.
#[test]
fn section_references_point_at_headings_that_exist() {
    let headings = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim().to_owned())
            .collect()
    };
    let mut broken = Vec::new();
    for (name, text) in all_docs() {
        let dir = std::path::Path::new(&name).parent().unwrap().to_owned();
        for (i, _) in text
            .match_indices("\" below")
            .chain(text.match_indices("\" above"))
        {
            let title = text[..i].rsplit('"').next().unwrap();
            if !headings(&text).iter().any(|h| h.starts_with(title)) {
                broken.push(format!("{name}: \"{title}\" is no heading here"));
            }
        }
        for (i, _) in text.match_indices(".md), \"") {
            let file = text[..i + 3].rsplit('(').next().unwrap();
            let title = text[i + 6..].split('"').next().unwrap();
            let path = dir.join(file).to_string_lossy().replace("docs/../", "");
            if !headings(&doc(&path)).iter().any(|h| h.starts_with(title)) {
                broken.push(format!("{name}: {file} has no heading \"{title}\""));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
