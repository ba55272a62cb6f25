//! The `/debug/pprof/*` endpoints: CPU profile (pprof protobuf), flame graph, Go's symbol
//! protocol, tracing capture, and the index page. One capture runs at a time.

use std::ffi::c_void;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use pprof::protos::Message;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::responses::{self, Body};
use crate::trace_capture::TraceRecorder;

/// Go's default capture length.
const DEFAULT_SECONDS: u64 = 30;
/// Sampling rate; Go samples at 100 Hz too.
const SAMPLE_HZ: i32 = 100;
/// Largest symbol lookup body accepted.
const MAX_SYMBOL_BODY: usize = 64 * 1024;

pub struct Profiling {
    max_seconds: u64,
    slot: Arc<Mutex<()>>,
    recorder: TraceRecorder,
}

#[derive(Clone, Copy)]
enum CaptureKind {
    CpuProfile,
    FlameGraph,
    Trace,
}

impl Profiling {
    pub fn new(max_seconds: u64, recorder: TraceRecorder) -> Self {
        Self {
            max_seconds,
            slot: Arc::new(Mutex::new(())),
            recorder,
        }
    }

    /// Routes a request whose path starts with `/debug/pprof`.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let name = req.uri().path().trim_start_matches("/debug/pprof");
        match (name, &method) {
            ("", _) => responses::redirect("/debug/pprof/"),
            ("/", &Method::GET | &Method::HEAD) => index(&req),
            ("/", _) => responses::method_not_allowed("GET, HEAD"),
            ("/profile", &Method::GET) => self.capture(&req, CaptureKind::CpuProfile).await,
            ("/flamegraph", &Method::GET) => self.capture(&req, CaptureKind::FlameGraph).await,
            ("/trace", &Method::GET) => self.capture(&req, CaptureKind::Trace).await,
            ("/profile" | "/flamegraph" | "/trace", _) => responses::method_not_allowed("GET"),
            ("/symbol", &Method::GET | &Method::HEAD) => {
                symbol_lookup(req.uri().query().unwrap_or("").as_bytes())
            }
            ("/symbol", &Method::POST) => match read_limited(req.into_body()).await {
                Ok(body) => symbol_lookup(&body),
                Err(resp) => resp,
            },
            ("/symbol", _) => responses::method_not_allowed("GET, HEAD, POST"),
            _ => responses::not_found(),
        }
    }

    async fn capture(&self, req: &Request<Incoming>, kind: CaptureKind) -> Response<Body> {
        let seconds = match parse_seconds(req.uri().query(), self.max_seconds) {
            Ok(s) => s,
            Err(msg) => return responses::error(StatusCode::BAD_REQUEST, &msg),
        };
        let Ok(slot) = self.slot.clone().try_lock_owned() else {
            return responses::error(
                StatusCode::CONFLICT,
                "another profile, flame graph or trace capture is running; only one runs at a time, retry when it ends",
            );
        };
        let duration = Duration::from_secs(seconds);
        match kind {
            CaptureKind::Trace => self.trace(duration, slot).await,
            CaptureKind::CpuProfile | CaptureKind::FlameGraph => cpu(duration, kind, slot).await,
        }
    }

    async fn trace(&self, duration: Duration, _slot: OwnedMutexGuard<()>) -> Response<Body> {
        let capture = self.recorder.start();
        tracing::info!(seconds = duration.as_secs(), "trace capture started");
        tokio::time::sleep(duration).await;
        let json = capture.finish();
        responses::attachment(
            json,
            "application/json",
            "attachment; filename=\"trace.json\"",
        )
    }
}

async fn cpu(duration: Duration, kind: CaptureKind, _slot: OwnedMutexGuard<()>) -> Response<Body> {
    let guard = match pprof::ProfilerGuardBuilder::default()
        .frequency(SAMPLE_HZ)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
    {
        Ok(g) => g,
        Err(e) => return internal_error("could not start the CPU profiler", &e),
    };
    tracing::info!(seconds = duration.as_secs(), "CPU profile started");
    tokio::time::sleep(duration).await;
    // Symbolization is CPU-bound: do it on the blocking pool so it does not stall the
    // connections sharing this worker.
    let rendered = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let report = guard.report().build().map_err(|e| e.to_string())?;
        drop(guard);
        match kind {
            CaptureKind::FlameGraph => {
                let mut svg = Vec::new();
                report.flamegraph(&mut svg).map_err(|e| e.to_string())?;
                Ok(svg)
            }
            _ => {
                let profile = report.pprof().map_err(|e| e.to_string())?;
                let mut gz = GzEncoder::new(Vec::new(), Compression::default());
                gz.write_all(&profile.encode_to_vec())
                    .and_then(|_| gz.finish())
                    .map_err(|e| e.to_string())
            }
        }
    })
    .await
    .unwrap_or_else(|e| Err(format!("rendering task failed: {e}")));
    match (rendered, kind) {
        (Ok(svg), CaptureKind::FlameGraph) => {
            responses::with_type(StatusCode::OK, "image/svg+xml", svg)
        }
        (Ok(pb), _) => responses::attachment(
            pb,
            "application/octet-stream",
            "attachment; filename=\"profile\"",
        ),
        (Err(e), _) => internal_error("could not render the profile", &e),
    }
}

fn internal_error(what: &str, err: &dyn std::fmt::Display) -> Response<Body> {
    tracing::error!(error = %err, "{what}");
    responses::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{what}: {err}"))
}

/// `seconds=N`: a whole number from 1 to `max`; absent means Go's default of 30 (capped at `max`).
pub fn parse_seconds(query: Option<&str>, max: u64) -> Result<u64, String> {
    let raw = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == "seconds")
        .map(|(_, v)| v);
    let Some(raw) = raw else {
        return Ok(DEFAULT_SECONDS.min(max));
    };
    match raw.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid seconds={raw:?}: must be a whole number of seconds from 1 to {max} (--max-profile-seconds)"
        )),
    }
}

async fn read_limited(body: Incoming) -> Result<Vec<u8>, Response<Body>> {
    match Limited::new(body, MAX_SYMBOL_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(responses::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("symbol lookup body is larger than {MAX_SYMBOL_BODY} bytes"),
        )),
        Err(e) => Err(responses::error(
            StatusCode::BAD_REQUEST,
            &format!("reading request: {e}"),
        )),
    }
}

/// Go's symbol protocol: `num_symbols: 1`, then `0xADDR name` for each `+`-separated address
/// that resolves to a function of this process.
fn symbol_lookup(input: &[u8]) -> Response<Body> {
    let mut out = String::from("num_symbols: 1\n");
    for word in input.split(|b| *b == b'+') {
        let Some(addr) = parse_address(word) else {
            continue;
        };
        let mut name = None;
        // backtrace treats addresses as return addresses and looks up addr - 1; Go's
        // FuncForPC looks up the address itself.
        backtrace::resolve((addr + 1) as *mut c_void, |sym| {
            if name.is_none() {
                name = sym.name().map(|n| format!("{n:#}"));
            }
        });
        if let Some(name) = name {
            out.push_str(&format!("{addr:#x} {name}\n"));
        }
    }
    responses::text(StatusCode::OK, out)
}

fn parse_address(word: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(word).ok()?.trim();
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    usize::from_str_radix(hex, 16).ok().filter(|a| *a != 0)
}

fn index(req: &Request<Incoming>) -> Response<Body> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let host = html_escape(host);
    let rows = [
        (
            "profile",
            "CPU profile of the whole process, gzipped pprof protobuf. ?seconds=N (default 30).",
            format!("go tool pprof -top 'http://{host}/debug/pprof/profile?seconds=10'"),
        ),
        (
            "flamegraph",
            "The same CPU capture rendered as an SVG flame graph.",
            format!("curl -o flame.svg 'http://{host}/debug/pprof/flamegraph?seconds=10'"),
        ),
        (
            "symbol",
            "Go's symbol protocol: POST +-separated hex addresses, get one '0xADDR name' line each.",
            format!("curl -d 0x401000 'http://{host}/debug/pprof/symbol'"),
        ),
        (
            "trace",
            "Tracing spans and events (requests at least) as Chrome Trace Event JSON for Perfetto.",
            format!(
                "curl -o trace.json 'http://{host}/debug/pprof/trace?seconds=5'  # open in ui.perfetto.dev"
            ),
        ),
    ];
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>/debug/pprof/</title></head>\n<body>\n<h1>/debug/pprof/</h1>\n<p>One capture (profile, flamegraph or trace) runs at a time.</p>\n<table>\n<tr><th>endpoint</th><th>what</th><th>use it</th></tr>\n",
    );
    for (name, what, cmd) in rows {
        html.push_str(&format!(
            "<tr><td><a href=\"{name}\">{name}</a></td><td>{what}</td><td><code>{cmd}</code></td></tr>\n"
        ));
    }
    html.push_str("</table>\n</body></html>\n");
    responses::with_type(StatusCode::OK, "text/html; charset=utf-8", html)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_defaults_and_bounds() {
        assert_eq!(parse_seconds(None, 300), Ok(30));
        assert_eq!(parse_seconds(Some("debug=1"), 300), Ok(30));
        assert_eq!(parse_seconds(None, 10), Ok(10));
        assert_eq!(parse_seconds(Some("seconds=5"), 300), Ok(5));
        assert!(parse_seconds(Some("seconds=0"), 300).is_err());
        assert!(parse_seconds(Some("seconds=-1"), 300).is_err());
        assert!(parse_seconds(Some("seconds=1.5"), 300).is_err());
        assert!(parse_seconds(Some("seconds="), 300).is_err());
        assert!(parse_seconds(Some("seconds=301"), 300).is_err());
    }

    #[test]
    fn addresses_parse_like_go() {
        assert_eq!(parse_address(b"0x10"), Some(16));
        assert_eq!(parse_address(b"0x0"), None);
        assert_eq!(parse_address(b"zz"), None);
    }
}
