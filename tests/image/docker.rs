//! The engine, driven through the docker CLI (the one a user has) and skopeo for registry reads,
//! with every call bounded in time and every JSON answer read into typed structs.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub const CALL_LIMIT: Duration = Duration::from_secs(120);

/// Runs `cmd` to completion within `limit`; Ok(stdout) on exit 0, else the command, its
/// status and the end of its stderr.
pub fn output(cmd: &mut Command, limit: Duration) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = wait_bounded(&mut child, limit).map_err(|e| format!("{what}: {e}"))?;
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{what} failed ({status}): {}", tail(&err, 15)))
    }
}

/// Runs `cmd` (output discarded) within `limit` and returns its exit status.
pub fn status(cmd: &mut Command, limit: Duration) -> Result<std::process::ExitStatus, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    wait_bounded(&mut child, limit)
}

pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {limit:?}: killed"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn docker(args: &[&str]) -> Result<String, String> {
    output(Command::new("docker").args(args), CALL_LIMIT).map(|s| s.trim().to_owned())
}

pub fn json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("unexpected JSON ({e}): {}", tail(text, 5)))
}

/// `docker inspect` of one object.
pub fn inspect<T: DeserializeOwned>(kind: &str, name: &str) -> Result<T, String> {
    let mut all: Vec<T> = json(&docker(&[kind, "inspect", name])?)?;
    all.pop()
        .ok_or_else(|| format!("docker {kind} inspect {name}: empty"))
}

/// What an image config says (the same keys in `docker inspect` and in an OCI config's `config`).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    pub exposed_ports: HashMap<String, serde_json::Value>,
    pub entrypoint: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub user: String,
    pub healthcheck: Option<HealthConfig>,
    pub working_dir: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    pub test: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub size: u64,
    pub config: ImageConfig,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub state: ContainerState,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub running: bool,
    pub pid: u32,
    pub exit_code: i32,
    pub health: Option<HealthState>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthState {
    pub status: String,
}

/// Containers this run created; `remove_all` at the end removes any still there.
static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A container removed (`docker rm -f`) when dropped.
#[derive(Debug)]
pub struct Container {
    pub name: String,
    /// The host port published for the container's port 80 (on 127.0.0.1), if any.
    pub port: Option<u16>,
}

impl Container {
    /// `docker run -d` with `args` (before the image) and `cmd` (after it); publishes port 80
    /// on a free 127.0.0.1 port unless `args` carries its own network settings.
    pub fn run(image: &str, platform: &str, args: &[&str], cmd: &[&str]) -> Result<Self, String> {
        Self::run_publishing(image, platform, &[80], args, cmd).map(|(c, _)| c)
    }

    /// `run` publishing each of `ports` on a free 127.0.0.1 port: the container and the host
    /// ports, in order (the first is `addr()`).
    pub fn run_publishing(
        image: &str,
        platform: &str,
        ports: &[u16],
        args: &[&str],
        cmd: &[&str],
    ) -> Result<(Self, Vec<u16>), String> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("httpserver-e2e-{}-{n}", std::process::id());
        let host_ports: Vec<u16> = ports.iter().map(|_| free_port()).collect();
        let publish: Vec<String> = ports
            .iter()
            .zip(&host_ports)
            .map(|(c, h)| format!("127.0.0.1:{h}:{c}"))
            .collect();
        let mut all = vec!["run", "-d", "--name", &name, "--platform", platform];
        for p in &publish {
            all.extend(["-p", p]);
        }
        all.extend_from_slice(args);
        all.push(image);
        all.extend_from_slice(cmd);
        CREATED.lock().unwrap().push(name.clone());
        docker(&all)?;
        let port = host_ports.first().copied();
        Ok((Self { name, port }, host_ports))
    }

    pub fn inspect(&self) -> Result<ContainerInspect, String> {
        inspect("container", &self.name)
    }

    pub fn logs(&self) -> String {
        docker(&["logs", "--tail", "5", &self.name])
            .unwrap_or_else(|e| e)
            .replace('\n', " | ")
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port.unwrap_or(0)))
    }

    /// Polls (bounded) until GET /healthz answers `200 ok`; returns how long it took.
    pub fn wait_healthy_http(&self, limit: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Ok(r) = crate::common::try_request(
                self.addr(),
                "GET",
                "/healthz",
                b"",
                Duration::from_secs(5),
            ) && r.status == 200
                && r.body == b"ok\n"
            {
                return Ok(t0.elapsed());
            }
            if matches!(self.inspect(), Ok(i) if !i.state.running) {
                return Err(format!("container exited: {}", self.logs()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "/healthz did not answer ok within {limit:?}: {}",
            self.logs()
        ))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

/// Removes every container this run created that is still there.
pub fn remove_all() {
    for name in CREATED.lock().unwrap().drain(..) {
        let _ = output(Command::new("docker").args(["rm", "-f", &name]), CALL_LIMIT);
    }
}

/// Removes every image in the engine named `names` (any tag, or only a digest): what this run
/// built, pushed (the docker driver keeps a pushed image in the engine's store too) and
/// pulled. The e2e uses names of its own, so nothing else is touched. Returns how many.
pub fn remove_images_named(names: &[String]) -> usize {
    let mut args = vec![
        "images".to_owned(),
        "-q".to_owned(),
        "--no-trunc".to_owned(),
    ];
    for n in names {
        args.push("--filter".to_owned());
        args.push(format!("reference={n}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ids: Vec<String> = docker(&args)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    if !ids.is_empty() {
        let mut rmi = vec!["rmi", "-f"];
        rmi.extend(ids.iter().map(String::as_str));
        if let Err(e) = docker(&rmi) {
            eprintln!("could not remove the run's images: {e}");
        }
    }
    ids.len()
}

/// The Go original's README command, verbatim: `docker images` with its three label filters,
/// as `repository:tag` lines.
pub fn original_label_filter() -> Result<String, String> {
    docker(&[
        "images",
        "--filter",
        "label=multi.l1=v1",
        "--filter",
        "label=multi.l2=v2",
        "--filter",
        "label=other=v3",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ])
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The uid the container's main process runs as (from /proc when the engine shares this
/// machine's PID namespace, else from `docker top`).
pub fn container_uid(c: &Container) -> Result<u32, String> {
    let pid = c.inspect()?.state.pid;
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        return status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| "no Uid line in /proc status".to_owned());
    }
    docker(&["top", &c.name, "-o", "uid"])?
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| "docker top printed no uid".to_owned())
}

/// Registry reads (skopeo: plain HTTP on the local registry).
pub mod registry {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Index {
        pub manifests: Vec<Descriptor>,
        #[serde(default)]
        pub annotations: HashMap<String, String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Descriptor {
        pub digest: String,
        #[serde(default)]
        pub size: u64,
        pub platform: Option<Platform>,
        #[serde(default)]
        pub annotations: HashMap<String, String>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Platform {
        pub os: String,
        pub architecture: String,
    }

    #[derive(Debug, Deserialize)]
    pub struct Manifest {
        pub config: Descriptor,
        pub layers: Vec<Descriptor>,
        #[serde(default)]
        pub annotations: HashMap<String, String>,
    }

    /// An OCI image config as stored in the registry.
    #[derive(Debug, Deserialize)]
    pub struct OciConfig {
        pub architecture: String,
        pub os: String,
        #[serde(default)]
        pub config: ImageConfig,
    }

    /// A registry on this machine speaks plain HTTP; any other is checked as usual.
    pub fn local(reference: &str) -> bool {
        reference.starts_with("localhost:") || reference.starts_with("127.0.0.1:")
    }

    fn inspect(reference: &str, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect").args(args);
        if local(reference) {
            cmd.arg("--tls-verify=false");
        }
        cmd.arg(format!("docker://{reference}"));
        output(&mut cmd, CALL_LIMIT)
    }

    pub fn index(reference: &str) -> Result<Index, String> {
        json(&inspect(reference, &["--raw"])?)
    }

    pub fn manifest(reference: &str) -> Result<Manifest, String> {
        json(&inspect(reference, &["--raw"])?)
    }

    /// The config blob as stored (skopeo's parsed form would drop Docker's Healthcheck).
    pub fn config(reference: &str) -> Result<OciConfig, String> {
        json(&inspect(reference, &["--config", "--raw"])?)
    }

    /// The image's manifest, config and layers as files in `dir` (named by digest).
    pub fn copy_to_dir(reference: &str, dir: &std::path::Path) -> Result<(), String> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("copy").arg("-q");
        if local(reference) {
            cmd.arg("--src-tls-verify=false");
        }
        cmd.arg(format!("docker://{reference}"))
            .arg(format!("dir:{}", dir.display()));
        output(&mut cmd, CALL_LIMIT).map(|_| ())
    }

    impl Index {
        /// The image manifest for linux/`arch`.
        pub fn platform(&self, arch: &str) -> Option<&Descriptor> {
            self.manifests.iter().find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
        }

        pub fn attestations(&self) -> impl Iterator<Item = &Descriptor> {
            self.manifests.iter().filter(|m| {
                m.annotations
                    .get("vnd.docker.reference.type")
                    .is_some_and(|t| t == "attestation-manifest")
            })
        }
    }
}
