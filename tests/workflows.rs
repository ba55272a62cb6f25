//! The GitHub workflows, replayed offline as GitHub would run them:
//! - every action is pinned by its full commit hash, with the version in a comment;
//! - release.yml: after the set-up actions, every step is `make VERB`, a verb `make e2e` runs;
//!   ci.yml's jobs are make verbs too (.ci/run replays the test job as an unprivileged user);
//! - release.yml's metadata-action step still has the inputs with which the real action was
//!   run to write tests/fixtures/metadata-action (its bake files and exported environment);
//! - `make push`'s own bake invocation, in the environment that real run exported (a v1.2.3
//!   tag, and a by-hand run on the default branch), through `docker buildx bake --print --push`:
//!   every pushed image keeps rewrite-timestamp, the debug symbols get no attestation, every
//!   image carries the project's title, description and version (labels and annotations)
//!   whatever metadata-action's files say, the tags are metadata-action's with each variant's
//!   suffix, and each target has its own gha cache scope;
//! - the tag guard stops a release whose tag is not v + Cargo.toml's version before bake runs;
//! - bake metadata with `buildx.build.warnings` (as bake-action and make push write it) through
//!   the make verbs' one parser.
//!
//! The YAML is read with PyYAML from the tools' environment (TOOLS_BIN) and bake --print needs a
//! buildx: `make lint` provides both; these tests are ignored without them.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn workflow(name: &str) -> Value {
    let text = read(&format!(".github/workflows/{name}"));
    common::yaml_documents(text.as_bytes())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .remove(0)
}

fn steps<'a>(wf: &'a Value, job: &str) -> &'a Vec<Value> {
    wf["jobs"][job]["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no job {job}"))
}

/// The make verbs a job's `run:` steps run, in order; panics on a step that is no make verb.
fn job_verbs(wf: &Value, job: &str) -> Vec<String> {
    steps(wf, job)
        .iter()
        .filter(|s| s.get("run").is_some())
        .map(make_verb)
        .collect()
}

/// The verb of a `make VERB` step; panics on any other command.
fn make_verb(step: &Value) -> String {
    let run = step["run"].as_str().unwrap().trim();
    let verb = run
        .strip_prefix("make ")
        .unwrap_or_else(|| panic!("a run: step that is not a make verb: {run:?}"));
    assert!(
        verb.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "one make verb per step, without arguments: {run:?}"
    );
    verb.to_owned()
}

fn makefile_targets() -> BTreeSet<String> {
    read("Makefile")
        .lines()
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
        .map(str::to_owned)
        .collect()
}

/// The verbs the image checks run (`fixtures::make("VERB")` in tests/image).
fn e2e_verbs() -> BTreeSet<String> {
    let mut verbs = BTreeSet::new();
    for e in std::fs::read_dir(Path::new(ROOT).join("tests/image")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for (i, m) in text.match_indices("make(\"") {
            let rest = &text[i + m.len()..];
            verbs.insert(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    verbs
}

fn cargo_version() -> String {
    read("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("Cargo.toml's version")
        .to_owned()
}

#[test]
fn every_action_is_pinned_by_commit_hash_with_its_version() {
    for name in ["ci.yml", "release.yml"] {
        for line in read(&format!(".github/workflows/{name}")).lines() {
            let Some(uses) = line.trim().trim_start_matches("- ").strip_prefix("uses: ") else {
                continue;
            };
            let (reference, comment) = uses.split_once(" # ").unwrap_or((uses, ""));
            let (_, pin) = reference.split_once('@').unwrap();
            assert!(
                pin.len() == 40 && pin.chars().all(|c| c.is_ascii_hexdigit()),
                "{name}: {reference} is not pinned by a full commit hash"
            );
            assert!(
                comment.starts_with('v') && comment[1..].contains('.'),
                "{name}: {reference} has no version comment (# vX.Y.Z)"
            );
        }
    }
}

#[test]
#[ignore = "needs the tools venv (TOOLS_BIN) and docker buildx: make lint"]
fn every_step_after_the_set_up_actions_is_a_make_verb_the_e2e_runs() {
    let targets = makefile_targets();
    let e2e = e2e_verbs();
    let release = workflow("release.yml");
    let verbs = job_verbs(&release, "publish");
    assert_eq!(
        verbs,
        ["tag-guard", "push", "sign", "verify"],
        "release.yml"
    );
    for verb in &verbs {
        assert!(
            targets.contains(verb),
            "release.yml: make {verb} is no target"
        );
        assert!(
            e2e.contains(verb),
            "release.yml runs make {verb}, which the image checks never run (they run {e2e:?})"
        );
    }
    let text = read(".github/workflows/release.yml");
    for v in ["scratch", "distroless", "-debug"] {
        assert!(
            !text
                .lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains(v)),
            "release.yml names the variant {v}: docker-bake.hcl's VARIANTS owns them"
        );
    }
    let ci = workflow("ci.yml");
    let test_job = job_verbs(&ci, "test");
    assert_eq!(
        test_job.first().map(String::as_str),
        Some("deps"),
        "ci.yml's test job installs the toolchain before anything runs cargo"
    );
    assert!(test_job.contains(&"test".to_owned()), "README's make test");
    for (job, verb) in [("images", "e2e"), ("release-build", "release-build")] {
        let runs: Vec<&str> = steps(&ci, job)
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect();
        assert_eq!(runs.len(), 1, "ci.yml {job}: {runs:?}");
        assert!(
            runs[0].ends_with(&format!("make {verb}")),
            "ci.yml {job}: {runs:?}"
        );
        assert!(targets.contains(verb));
    }
    for verb in test_job {
        assert!(targets.contains(&verb), "ci.yml: make {verb} is no target");
    }
    assert!(
        read(".ci/run").contains("scripts/ci-user.sh test"),
        ".ci/run replays ci.yml's test job"
    );
}

fn fixtures() -> PathBuf {
    Path::new(ROOT).join("tests/fixtures/metadata-action")
}

#[test]
#[ignore = "needs the tools venv (TOOLS_BIN) and docker buildx: make lint"]
fn the_metadata_step_has_the_inputs_the_fixtures_were_made_with() {
    let inputs: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("inputs.json")).unwrap())
            .unwrap();
    let release = workflow("release.yml");
    let step = steps(&release, "publish")
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/metadata-action@"))
        })
        .expect("a docker/metadata-action step");
    let regenerate = "run the real action again as tests/fixtures/metadata-action/README.md says";
    assert_eq!(step["uses"], inputs["action"], "{regenerate}");
    assert_eq!(step["with"], inputs["step"]["with"], "{regenerate}");
    assert_eq!(step["env"], inputs["step"]["env"], "{regenerate}");
    assert!(
        step.get("id").is_none() && step.get("with").unwrap().get("bake-target").is_none(),
        "make push takes the action's default target, docker-metadata-action, from its environment"
    );
}

/// The environment metadata-action exported in the fixture run `run` (GITHUB_ENV's
/// NAME<<DELIMITER blocks), its bake files' folder being the fixture's.
fn exported_env(run: &str) -> BTreeMap<String, String> {
    let dir = fixtures().join(run);
    let text = std::fs::read_to_string(dir.join("github-env")).unwrap();
    let mut env = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(head) = lines.next() {
        let (name, delimiter) = head.split_once("<<").expect("NAME<<DELIMITER");
        let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
        let value = value
            .join("\n")
            .replace("$FIXTURE", &dir.display().to_string());
        env.insert(name.to_owned(), value);
    }
    env
}

/// A command run from the checkout with exactly this environment (and PATH, HOME, DOCKER_*).
fn clean_command(program: &str, env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(ROOT).env_clear();
    for keep in ["PATH", "HOME", "DOCKER_CONFIG", "DOCKER_HOST"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.envs(env);
    cmd
}

/// What `make push` would hand bake, in that environment: make runs its own BAKE_RELEASE (with
/// make's exported settings: VERSION, REVISION, SOURCE, ...) with --print and the --push that
/// `make push` adds.
fn push_definition(env: &BTreeMap<String, String>) -> Value {
    let out = common::output_of(
        clean_command("make", env).args([
            "-s",
            "--no-print-directory",
            "--eval=print-push: ; @$(BAKE_RELEASE) --print --push",
            "print-push",
        ]),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&out).unwrap()
}

/// The annotations BuildKit applies at `level`: for each key, the last entry naming it.
fn effective_annotations(target: &Value, level: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for a in target["annotations"].as_array().into_iter().flatten() {
        let a = a.as_str().unwrap();
        let (levels, kv) = a
            .split_once(':')
            .filter(|(l, _)| !l.contains('='))
            .unwrap_or(("manifest", a));
        if !levels.split(',').any(|l| l == level) {
            continue;
        }
        let (k, v) = kv.split_once('=').unwrap();
        out.insert(k.to_owned(), v.to_owned());
    }
    out
}

/// The variants docker-bake.hcl defines, from `bake --print release` with its defaults (tags
/// REGISTRY/IMAGE:TAG + suffix): (name, tag suffix, description).
fn variants() -> Vec<(String, String, String)> {
    let print = common::output_of(
        clean_command("docker", &BTreeMap::new()).args(["buildx", "bake", "--print", "release"]),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let def: Value = serde_json::from_slice(&print).unwrap();
    let scratch_tag = def["target"]["symbols"]["tags"][0]
        .as_str()
        .unwrap()
        .trim_end_matches("-debug")
        .to_owned();
    def["target"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "symbols")
        .map(|(name, t)| {
            let tag = t["tags"][0].as_str().unwrap();
            let suffix = tag
                .strip_prefix(&scratch_tag)
                .unwrap_or_else(|| panic!("{name}: {tag} does not extend {scratch_tag}"));
            let description = t["labels"]["org.opencontainers.image.description"]
                .as_str()
                .unwrap();
            (name.clone(), suffix.to_owned(), description.to_owned())
        })
        .collect()
}

#[test]
#[ignore = "needs the tools venv (TOOLS_BIN) and docker buildx: make lint"]
fn make_push_under_the_real_metadata_action_output_keeps_every_promise() {
    let version = cargo_version();
    let release = workflow("release.yml");
    let job_env = &release["jobs"]["publish"]["env"];
    let variants = variants();
    assert!(variants.len() >= 2, "{variants:?}");
    for run in ["tag", "edge"] {
        let exported = exported_env(run);
        let mut env = exported.clone();
        // The job's env, as GitHub expands it for this run; a docker-container builder
        // (setup-buildx-action's), which takes rewrite-timestamp.
        env.insert(
            "GHA_CACHE".into(),
            job_env["GHA_CACHE"].as_str().unwrap().into(),
        );
        env.insert("REWRITE_TIMESTAMP".into(), "true".into());
        let def = push_definition(&env);
        let targets = def["target"].as_object().unwrap();
        let meta_tags: Vec<&str> = exported["DOCKER_METADATA_OUTPUT_TAGS"].lines().collect();
        let labels_file: Value = serde_json::from_str(
            &std::fs::read_to_string(&exported["DOCKER_METADATA_OUTPUT_BAKE_FILE_LABELS"]).unwrap(),
        )
        .unwrap();
        let their_labels = &labels_file["target"]["docker-metadata-action"]["labels"];
        let mut expected: Vec<(String, String, String)> = variants.clone();
        expected.push(("symbols".into(), "-debug".into(), String::new()));
        assert_eq!(
            targets.keys().cloned().collect::<BTreeSet<_>>(),
            expected.iter().map(|v| v.0.clone()).collect(),
            "{run}: the release group"
        );
        for (name, suffix, description) in &expected {
            let t = &targets[name];
            let what = format!("{run}: {name}");
            // rewrite-timestamp on every pushed image, and pushed.
            let outputs = t["output"].as_array().unwrap();
            assert_eq!(outputs.len(), 1, "{what}: {outputs:?}");
            assert_eq!(outputs[0]["type"], "image", "{what}");
            assert_eq!(outputs[0]["push"], "true", "{what}");
            assert_eq!(
                outputs[0]["rewrite-timestamp"], "true",
                "{what}: {outputs:?}"
            );
            // metadata-action's tags, with the variant's suffix.
            let tags: Vec<String> = meta_tags.iter().map(|t| format!("{t}{suffix}")).collect();
            assert_eq!(t["tags"], serde_json::json!(tags), "{what}: tags");
            // Attestations: the variants SBOM + max provenance, the debug symbols none.
            let attest: Vec<String> = t["attest"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    format!(
                        "{}:{}",
                        a["type"].as_str().unwrap(),
                        a.get("mode")
                            .or(a.get("disabled"))
                            .map(|v| v.to_string())
                            .unwrap_or_default()
                    )
                })
                .collect();
            if name == "symbols" {
                assert_eq!(
                    attest,
                    ["provenance:true"],
                    "{what}: provenance disabled, no SBOM"
                );
            } else {
                assert!(
                    attest.contains(&"provenance:\"max\"".to_owned()),
                    "{what}: {attest:?}"
                );
                assert!(
                    attest.iter().any(|a| a.starts_with("sbom")),
                    "{what}: {attest:?}"
                );
            }
            // The project's own title, description and version, in labels and annotations.
            let labels = &t["labels"];
            let own_description = labels["org.opencontainers.image.description"]
                .as_str()
                .unwrap();
            if name == "symbols" {
                assert!(
                    own_description.contains("debug file"),
                    "{what}: {own_description}"
                );
            } else {
                assert_eq!(own_description, description, "{what}");
            }
            assert_ne!(
                own_description,
                their_labels["org.opencontainers.image.description"]
                    .as_str()
                    .unwrap()
            );
            assert_eq!(
                labels["org.opencontainers.image.title"], "httpserver",
                "{what}"
            );
            assert_eq!(
                labels["org.opencontainers.image.version"],
                version.as_str(),
                "{what}: the binary's version"
            );
            // What metadata-action alone says passes through.
            assert_eq!(
                labels["org.opencontainers.image.url"],
                their_labels["org.opencontainers.image.url"],
                "{what}"
            );
            for level in ["index", "manifest"] {
                let a = effective_annotations(t, level);
                for key in ["title", "description", "version"] {
                    let key = format!("org.opencontainers.image.{key}");
                    assert_eq!(
                        a.get(&key).map(String::as_str),
                        labels[&key].as_str(),
                        "{what}: {level} annotation {key}"
                    );
                }
            }
            // Its own gha cache scope, read only in the release workflow.
            assert_eq!(
                t["cache-from"],
                serde_json::json!([{"type": "gha", "scope": name}]),
                "{what}"
            );
            assert!(
                t.get("cache-to")
                    .is_none_or(|c| c.as_array().is_some_and(|a| a.is_empty())),
                "{what}: {:?}",
                t.get("cache-to")
            );
        }
    }
}

#[test]
#[ignore = "needs docker buildx: make lint"]
fn a_one_platform_push_puts_no_annotation_on_an_index() {
    // BuildKit refuses index annotations on a one-platform export ("index annotations not
    // supported for single platform export"): `make push RELEASE_PLATFORMS=linux/amd64` must
    // ask for none. Two platforms have an index, which carries them.
    for (platforms, index) in [("linux/amd64", false), ("linux/amd64,linux/arm64", true)] {
        let env = BTreeMap::from([("RELEASE_PLATFORMS".to_owned(), platforms.to_owned())]);
        let def = push_definition(&env);
        for (name, t) in def["target"].as_object().unwrap() {
            let title = effective_annotations(t, "index")
                .remove("org.opencontainers.image.title")
                .is_some();
            assert_eq!(title, index, "{platforms}: {name}: {:?}", t["annotations"]);
            assert!(
                effective_annotations(t, "manifest").contains_key("org.opencontainers.image.title"),
                "{platforms}: {name}: {:?}",
                t["annotations"]
            );
        }
    }
}

/// `make push` with bake replaced by a command that leaves a mark: did it get as far as bake?
fn push_reaches_bake(tag: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("httpserver-tag-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mark = dir.join("bake-ran");
    let _ = std::fs::remove_file(&mark);
    let out = Command::new("make")
        .current_dir(ROOT)
        .args(["-s", "--no-print-directory", "push"])
        .env("RELEASE_TAG", tag)
        .env("BAKE", format!("touch {} #", mark.display()))
        .env("METADATA_FILE", dir.join("none.json"))
        .output()
        .unwrap();
    let reached = mark.exists();
    let _ = std::fs::remove_dir_all(&dir);
    (reached, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_tag_guard_stops_a_release_whose_tag_is_not_the_cargo_version() {
    let version = cargo_version();
    let (reached, stderr) = push_reaches_bake("v1.2.3-not-this");
    assert!(!reached, "make push went on to bake with the wrong tag");
    assert!(
        stderr.contains(&format!("is not v{version}")),
        "the refusal is the tag guard's, naming the version: {stderr}"
    );
    let guard = |tag: &str| {
        Command::new("make")
            .current_dir(ROOT)
            .args(["-s", "--no-print-directory", "tag-guard"])
            .env("RELEASE_TAG", tag)
            .status()
            .unwrap()
            .success()
    };
    assert!(
        guard(&format!("v{version}")),
        "v + Cargo.toml's version passes"
    );
    assert!(guard(""), "outside a release (no tag) nothing is checked");
    assert!(!guard(&version), "the tag has its v");
    assert!(
        read("Makefile")
            .lines()
            .any(|l| l.starts_with("push: tag-guard ")),
        "make push runs the tag guard before anything else"
    );
}

fn parse(metadata: &Value, args: &[&str]) -> Result<Vec<String>, String> {
    let file = std::env::temp_dir().join(format!(
        "httpserver-bake-metadata-{}-{}.json",
        std::process::id(),
        args.join("-")
    ));
    std::fs::write(&file, metadata.to_string()).unwrap();
    let out = common::output_of(
        Command::new("python3")
            .arg(Path::new(ROOT).join("scripts/bake-metadata.py"))
            .arg(&file)
            .args(args),
        None,
    );
    let _ = std::fs::remove_file(&file);
    out.map(|o| {
        String::from_utf8(o)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    })
}

#[test]
fn the_metadata_parser_takes_what_buildx_writes_warnings_included() {
    // A real `make push`'s metadata (BUILDX_METADATA_WARNINGS=true, as bake-action sets it).
    let real: Value = serde_json::from_str(&read("tests/fixtures/bake-metadata.json")).unwrap();
    assert!(
        real["buildx.build.warnings"].is_array(),
        "the fixture carries buildx.build.warnings"
    );
    let digest = |t: &str| {
        real[t]["containerimage.digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let name = real["scratch"]["image.name"].as_str().unwrap();
    let repo = &name[..name.rfind(':').unwrap()];
    let refs = parse(&real, &["refs"]).unwrap();
    let want: BTreeSet<String> = ["scratch", "distroless", "symbols"]
        .iter()
        .map(|t| format!("{repo}@{}", digest(t)))
        .collect();
    assert_eq!(refs.iter().cloned().collect::<BTreeSet<_>>(), want);
    let images = parse(&real, &["images", "symbols"]).unwrap();
    assert_eq!(images.len(), 2, "{images:?}");
    for t in ["scratch", "distroless"] {
        let line = format!("{repo} {} {}", digest(t), digest("symbols"));
        assert!(images.contains(&line), "{line} in {images:?}");
    }
    // Pushed to two registries at once (metadata-action with two images): one line per
    // repository; the symbols must have gone to each.
    let mut two = real.clone();
    for t in ["scratch", "distroless", "symbols"] {
        let names = two[t]["image.name"].as_str().unwrap().to_owned();
        let other = names.replace("localhost:5000", "ghcr.io/owner");
        two[t]["image.name"] = Value::String(format!("{names},{other}"));
    }
    assert_eq!(parse(&two, &["refs"]).unwrap().len(), 6);
    assert_eq!(parse(&two, &["images", "symbols"]).unwrap().len(), 4);
    let mut no_symbols = real.clone();
    no_symbols.as_object_mut().unwrap().remove("symbols");
    assert!(
        parse(&no_symbols, &["images", "symbols"]).is_err(),
        "images without their symbols"
    );
    assert!(
        parse(&serde_json::json!([1, 2]), &["refs"]).is_err(),
        "not bake metadata"
    );
}
