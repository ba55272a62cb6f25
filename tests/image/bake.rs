//! Builds through bake (`make release`, `make push`, or `docker buildx bake` with overrides) with
//! `--progress=rawjson`: BuildKit's own solve status, one JSON object per line. It gives a
//! progress line at least every 20 s, each step's cached/uncached state for the cache checks,
//! and the failing step's log when a build breaks.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// One solve-status message of `--progress=rawjson`.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct SolveStatus {
    vertexes: Vec<RawVertex>,
    logs: Vec<RawLog>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawVertex {
    digest: String,
    name: String,
    started: Option<String>,
    completed: Option<String>,
    cached: bool,
    error: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct RawLog {
    vertex: String,
    data: String,
}

/// A build step as BuildKit last reported it.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub name: String,
    pub started: bool,
    pub completed: bool,
    pub cached: bool,
    pub error: String,
}

#[derive(Debug)]
pub struct BuildRun {
    pub seconds: u64,
    pub steps: Vec<Step>,
}

impl BuildRun {
    /// Steps whose name contains `needle`.
    pub fn steps_named<'a>(&'a self, needle: &'a str) -> impl Iterator<Item = &'a Step> + 'a {
        self.steps.iter().filter(move |s| s.name.contains(needle))
    }
}

/// Runs `cmd` (a bake invocation, directly or through make) with rawjson progress and a
/// metadata file; `label` prefixes the progress lines. Once more if the local registry
/// answered a push with a 500: distribution 2.8's filesystem storage rewrites a tag's link file
/// in place, and a HEAD that reads it mid-write fails ("invalid checksum digest format").
pub fn run(label: &str, cmd: Command, limit: Duration) -> Result<BuildRun, String> {
    let again = copy_of(&cmd);
    match run_once(label, cmd, limit) {
        Err(e) if e.contains("500 Internal Server Error") => {
            eprintln!("[{label}] the registry answered 500 (a tag read mid-write): once more");
            run_once(label, again, limit)
        }
        other => other,
    }
}

fn copy_of(cmd: &Command) -> Command {
    let mut c = Command::new(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    c
}

/// Where the build labelled `label` leaves bake's metadata (make's METADATA_FILE for it): a
/// name of letters, digits and dashes only, since make hands it to a shell unquoted.
pub fn metadata_file(label: &str) -> PathBuf {
    let name: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    scratch_file(&format!("metadata-{name}.json"))
}

fn run_once(label: &str, mut cmd: Command, limit: Duration) -> Result<BuildRun, String> {
    let metadata_file = metadata_file(label);
    let _ = std::fs::remove_file(&metadata_file);
    // Through make, BAKE_FLAGS carries the progress flag (after any the caller set) and
    // METADATA_FILE names the metadata file (make's own verbs read it too); a direct bake
    // takes both as arguments.
    if cmd.get_program() == "make" {
        let before = cmd
            .get_envs()
            .find(|(k, _)| *k == "BAKE_FLAGS")
            .and_then(|(_, v)| v)
            .map(|v| v.to_string_lossy().into_owned());
        let flags = "--progress=rawjson";
        cmd.env(
            "BAKE_FLAGS",
            before.map_or(flags.to_owned(), |b| format!("{b} {flags}")),
        )
        .env("METADATA_FILE", &metadata_file);
    } else {
        cmd.arg("--progress=rawjson")
            .arg(format!("--metadata-file={}", metadata_file.display()));
    }
    let what = format!("{cmd:?}");
    eprintln!("[{label}] {what}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Message>();
    std::thread::spawn(move || read_progress(stderr, tx));
    let t0 = Instant::now();
    let mut state = Progress::default();
    let mut last_report = Instant::now();
    let deadline = t0 + limit;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(message) => state.absorb(message),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break crate::docker::wait_bounded(&mut child, Duration::from_secs(30))?;
            }
        }
        if last_report.elapsed() >= PROGRESS_EVERY {
            eprintln!("[{label} {} s] {}", t0.elapsed().as_secs(), state.summary());
            last_report = Instant::now();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{what}: still running after {limit:?}, killed; {}",
                state.summary()
            ));
        }
    };
    let seconds = t0.elapsed().as_secs();
    eprintln!(
        "[{label}] finished in {seconds} s ({status}): {}",
        state.summary()
    );
    if !status.success() {
        return Err(format!(
            "{label} failed ({status}) after {seconds} s: {}\n{what}\n{}",
            state.cause(),
            state.failure_report()
        ));
    }
    Ok(BuildRun {
        seconds,
        steps: state.steps.into_values().collect(),
    })
}

/// What the progress reader sends: solve statuses, then (after the JSON ends) plain lines.
enum Message {
    Status(SolveStatus),
    Text(String),
}

/// rawjson prints each status as one JSON object: on one line (buildx 0.29), or pretty-printed
/// with a lone `{` and `}` as its first and last lines (buildx 0.13). Any other line (make's and
/// bake's own messages) is plain text.
fn read_progress(stderr: std::process::ChildStderr, tx: std::sync::mpsc::Sender<Message>) {
    let mut object: Option<String> = None;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let message = match object.as_mut() {
            None if line == "{" => {
                object = Some(line);
                continue;
            }
            None if line == "{}" => continue,
            None if line.starts_with('{') && line.ends_with('}') => {
                match serde_json::from_str::<SolveStatus>(&line) {
                    Ok(status) => Message::Status(status),
                    Err(_) => Message::Text(line),
                }
            }
            None => Message::Text(line),
            Some(text) => {
                text.push_str(&line);
                if line != "}" {
                    continue;
                }
                let text = object.take().unwrap_or_default();
                match serde_json::from_str(&text) {
                    Ok(status) => Message::Status(status),
                    Err(e) => Message::Text(format!("(unreadable progress: {e})")),
                }
            }
        };
        if tx.send(message).is_err() {
            return;
        }
    }
}

#[derive(Default)]
struct Progress {
    steps: BTreeMap<String, Step>,
    /// The last log lines of each step (for the failure report).
    logs: BTreeMap<String, VecDeque<String>>,
    /// Lines that were not solve status (make, bake and buildx messages).
    other: VecDeque<String>,
}

impl Progress {
    fn absorb(&mut self, message: Message) {
        let status = match message {
            Message::Status(status) => status,
            Message::Text(line) => {
                eprintln!("  > {line}");
                push_bounded(&mut self.other, line, 30);
                return;
            }
        };
        for v in status.vertexes {
            let step = self.steps.entry(v.digest).or_default();
            step.name = v.name;
            step.started |= v.started.is_some();
            step.completed |= v.completed.is_some();
            step.cached |= v.cached;
            if !v.error.is_empty() {
                step.error = v.error;
            }
        }
        for log in status.logs {
            let data = base64::engine::general_purpose::STANDARD
                .decode(log.data.as_bytes())
                .unwrap_or_default();
            let lines = self.logs.entry(log.vertex).or_default();
            for l in String::from_utf8_lossy(&data).lines() {
                push_bounded(lines, l.to_owned(), 40);
            }
        }
    }

    fn summary(&self) -> String {
        let done = self.steps.values().filter(|s| s.completed).count();
        let cached = self.steps.values().filter(|s| s.cached).count();
        let running: Vec<&str> = self
            .steps
            .values()
            .filter(|s| s.started && !s.completed)
            .map(|s| short(&s.name))
            .take(2)
            .collect();
        format!(
            "{done}/{} steps done ({cached} cached); running: {}",
            self.steps.len(),
            if running.is_empty() {
                "-".to_owned()
            } else {
                running.join(" | ")
            }
        )
    }

    /// The one-line reason: the failed step's error, else BuildKit's last ERROR line.
    fn cause(&self) -> String {
        self.steps
            .values()
            .find(|s| !s.error.is_empty())
            .map(|s| format!("{}: {}", short(&s.name), s.error))
            .or_else(|| {
                self.other
                    .iter()
                    .rev()
                    .find(|l| l.contains("ERROR"))
                    .cloned()
            })
            .unwrap_or_else(|| "see the log above".into())
    }

    fn failure_report(&self) -> String {
        let mut out = String::new();
        for (digest, step) in &self.steps {
            if step.error.is_empty() {
                continue;
            }
            out.push_str(&format!("step {:?} failed: {}\n", step.name, step.error));
            for l in self.logs.get(digest).into_iter().flatten() {
                out.push_str(&format!("  | {l}\n"));
            }
        }
        for l in &self.other {
            out.push_str(&format!("  > {l}\n"));
        }
        out
    }
}

/// A step name cut to a readable length (RUN lines can be long).
fn short(name: &str) -> &str {
    match name.char_indices().nth(90) {
        Some((i, _)) => &name[..i],
        None => name,
    }
}

fn push_bounded(q: &mut VecDeque<String>, line: String, max: usize) {
    if q.len() == max {
        q.pop_front();
    }
    q.push_back(line);
}

/// A path for this run's scratch files (under target/, removed with it).
pub fn scratch_file(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image-tests");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}
