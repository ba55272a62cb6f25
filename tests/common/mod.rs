//! Test harness: starts the real binary on an ephemeral loopback port and talks to it over
//! real sockets. Every wait is bounded.
#![allow(dead_code)]

pub mod h2_raw;
pub mod manifests;
#[allow(dead_code)]
pub mod relabel;
pub mod scrapers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary under test: `HTTPSERVER_BIN` (e.g. the release musl build) or cargo's build.
pub fn binary() -> PathBuf {
    std::env::var_os("HTTPSERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_httpserver")))
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub debug_addr: Option<SocketAddr>,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with `--port 0 --listen 127.0.0.1` plus `args`.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with(binary(), args, &[])
    }

    pub fn start_with(bin: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut all = vec!["--port", "0", "--listen", "127.0.0.1"];
        all.extend_from_slice(args);
        Self::start_exact(bin, &all, env)
    }

    /// Starts the server with exactly `args` (no default port or address).
    pub fn start_exact(bin: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin);
        cmd.args(args).envs(env.iter().copied());
        Self::from_command(cmd)
    }

    /// Starts the server as `cmd` runs it (e.g. inside a sandbox); it must log its startup line.
    pub fn from_command(mut cmd: Command) -> Server {
        // The caller's environment must not leak in, but what the test set stays.
        for key in ["RUST_LOG", "MY_SERVICE_PORT"] {
            if !cmd.get_envs().any(|(k, _)| k == key) {
                cmd.env_remove(key);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn httpserver");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("httpserver started")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line.clone());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let started = match rx.recv_timeout(IO_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; log:\n{}", log.lock().unwrap());
            }
        };
        let addr = field(&started, "listen").parse().expect("listen address");
        let debug_addr = field(&started, "debug").parse().ok();
        Server {
            child,
            addr,
            debug_addr,
            log,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log shows `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never showed {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server still running after {limit:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Value of `key=value` in a text log line (quotes stripped), or of `key` in a JSON line.
pub fn field(line: &str, key: &str) -> String {
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        return v[key].as_str().unwrap_or("").to_owned();
    }
    let pat = format!(" {key}=");
    let start = line.find(&pat).map(|i| i + pat.len()).unwrap_or(line.len());
    let rest = &line[start..];
    let value = if let Some(stripped) = rest.strip_prefix('"') {
        stripped.split('"').next().unwrap_or("")
    } else {
        rest.split(' ').next().unwrap_or("")
    };
    value.to_owned()
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads until EOF or error, bounded; returns what arrived and how long it took.
pub fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if start.elapsed() >= limit {
            break;
        }
    }
    (out, start.elapsed())
}

/// CPU seconds (user + system) process `pid` has used so far, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Reply {
    try_request(addr, method, path, body, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// `request` that reports failures (connect, I/O, unparsable reply) instead of panicking.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_reply(&raw, method == "HEAD").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unparsable reply: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, b"")
}

/// Parses one response from `raw` (body: by content-length, else the rest).
pub fn parse_reply(raw: &[u8], head_only: bool) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let body = if head_only {
        rest.to_vec()
    } else {
        match headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            Some((_, n)) => rest[..n.parse::<usize>().ok()?.min(rest.len())].to_vec(),
            None => rest.to_vec(),
        }
    };
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// Runs `httpserver` with `args` to completion (bounded) and returns (exit code, stdout, stderr).
pub fn run_to_end(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MY_SERVICE_PORT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn httpserver");
    let deadline = Instant::now() + IO_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("httpserver {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends requests from `threads` threads until `stop` is set, a new connection for each
/// (`Connection: close`); returns how many succeeded.
pub fn load(
    addr: SocketAddr,
    threads: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    clients(addr, threads, stop, |addr, stop| {
        let mut ok = 0u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            if get(addr, "/healthz").status == 200 {
                ok += 1;
            }
        }
        ok
    })
}

/// `threads` clients running `each` until `stop` is set; the sum of what they return.
fn clients(
    addr: SocketAddr,
    threads: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    each: fn(SocketAddr, &std::sync::atomic::AtomicBool) -> u64,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || each(addr, &stop))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

/// The gzipped pprof protobuf of a `debug=0` answer, decoded; panics (fails the test) on
/// anything else.
pub fn decode(body: &[u8]) -> profiler::pprof::Profile {
    use prost::Message;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut raw)
        .expect("a gzip body");
    profiler::pprof::Profile::decode(&raw[..]).expect("a pprof protobuf")
}

/// Has `go tool pprof` (a real pprof client: Debian's golang-go) read the gzipped profile
/// `body`; fails the test when it cannot. Returns its `-raw` output.
pub fn pprof_reads(body: &[u8], name: &str) -> String {
    // Reading is the check: no local symbolization (it would open the debug test binary).
    go_pprof(body, name, &["-symbolize=none", "-raw"], &[])
}

/// Runs `go tool pprof ARGS FILE` on `body` saved to a scratch file, with extra environment.
pub fn go_pprof(body: &[u8], name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    run_pprof(
        Command::new("go").args(["tool", "pprof"]),
        body,
        name,
        args,
        env,
    )
}

/// Google's standalone pprof, which symbolizes native binaries with addr2line (Go's `go tool
/// pprof` does only Go binaries). Built once, offline, from the google/pprof sources that
/// Debian's Go ships in GOROOT/src/cmd/vendor.
pub fn google_pprof(body: &[u8], name: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let bin = BUILT.get_or_init(|| {
        // `make pprof`, as a user builds it for the README's file:line recipe.
        let bin = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("google-pprof/pprof");
        if bin.exists() {
            return bin;
        }
        let status = Command::new("make")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["-s", "--no-print-directory", "pprof"])
            .arg(format!("PPROF={}", bin.display()))
            .status()
            .expect("make pprof");
        assert!(
            status.success(),
            "make pprof: Google's pprof from Go's vendored sources"
        );
        bin
    });
    run_pprof(&mut Command::new(bin), body, name, args, env)
}

/// The directory of `llvm-symbolizer` (Debian's llvm: make e2e installs it), for PPROF_TOOLS:
/// it symbolizes both architectures' binaries, where the host's addr2line reads only its own.
pub fn llvm_tools_dir() -> String {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("llvm-symbolizer").is_file())
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

/// Runs `cmd` with `input` (if any) on its standard input: its standard output, or what
/// went wrong (its status and standard error).
/// The bin directory of the Python tools' virtual environment (TOOLS_BIN, which `make lint` and
/// `make k8s-check` set: kubectl, kubernetes-validate, and PyYAML with them).
#[allow(dead_code)]
pub fn tools_bin() -> Result<PathBuf, String> {
    std::env::var_os("TOOLS_BIN")
        .map(PathBuf::from)
        .ok_or_else(|| "TOOLS_BIN is not set (make lint and make k8s-check set it)".to_owned())
}

/// Every document of a YAML stream as JSON, read by PyYAML (from the tools' environment).
#[allow(dead_code)]
pub fn yaml_documents(yaml: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    let json = output_of(
        Command::new(tools_bin()?.join("python")).args([
            "-c",
            "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)",
        ]),
        Some(yaml),
    )?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

/// DT_NEEDED entries of an ELF file (shared libraries the loader would have to find).
#[allow(dead_code)]
pub fn dynamic_needed(elf: &object::read::elf::ElfFile64<object::Endianness>) -> Vec<u64> {
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

/// sha256 of `bytes` in hex (sha256sum's).
#[allow(dead_code)]
pub fn sha256_hex(bytes: &[u8]) -> Result<String, String> {
    let out = output_of(&mut Command::new("sha256sum"), Some(bytes))?;
    Ok(String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned())
}

pub fn output_of(cmd: &mut Command, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if let Some(bytes) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(bytes)
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// A new, empty directory of this test process's own; the caller removes it.
pub fn scratch_dir(what: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("httpserver-{what}-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_pprof(
    cmd: &mut Command,
    body: &[u8],
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> String {
    // One directory per call (tests run in parallel threads), removed with what pprof left.
    let dir = scratch_dir("pprof");
    let file = dir.join(format!("{name}-{}.pb.gz", body.len()));
    std::fs::write(&file, body).unwrap();
    let out = cmd
        .args(args)
        .arg(&file)
        .envs(env.iter().copied())
        // Symbolization against a URL or a missing binary must never reach the network.
        .env("PPROF_TMPDIR", &dir)
        .stdin(Stdio::null())
        .output()
        .expect("run `go tool pprof` (install golang-go: make deps)");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "go tool pprof {args:?} could not read the {name} profile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Like `load`, but each thread keeps one connection open and sends requests on it one after
/// another (HTTP/1.1 keep-alive): the most requests per second a client can send.
pub fn load_keepalive(
    addr: SocketAddr,
    threads: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    clients(addr, threads, stop, |addr, stop| {
        let count = std::sync::atomic::AtomicU64::new(0);
        let _ = keepalive_requests(addr, stop, &count, Duration::from_secs(60));
        count.load(std::sync::atomic::Ordering::Relaxed)
    })
}

/// GET `path` on the kept-alive connection in `conn` (opened first if there is none): the
/// status. An error leaves `conn` empty, so the next call opens a new one.
pub fn keepalive_get(
    conn: &mut Option<BufReader<TcpStream>>,
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<u16> {
    if conn.is_none() {
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        *conn = Some(BufReader::new(s));
    }
    let r = conn.as_mut().unwrap();
    let result = (|| {
        // One write: write! would send each piece on its own, and Nagle would hold them.
        let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        r.get_mut().write_all(head.as_bytes())?;
        let (mut status, mut length) = (0, 0);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if status == 0 {
                status = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            } else if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        r.read_exact(&mut vec![0; length])?;
        Ok(status)
    })();
    if result.is_err() {
        *conn = None;
    }
    result
}

/// GET /healthz on one kept-alive connection until `stop` or `limit`, adding each answered
/// request to `count`.
pub fn keepalive_requests(
    addr: SocketAddr,
    stop: &std::sync::atomic::AtomicBool,
    count: &std::sync::atomic::AtomicU64,
    limit: Duration,
) -> std::io::Result<()> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let deadline = Instant::now() + limit;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
        writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: load\r\n\r\n")?;
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}
