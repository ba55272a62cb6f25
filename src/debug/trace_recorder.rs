//! The tracing layer behind `/debug/pprof/trace`: while a capture runs it writes each span
//! (begin/end) and each event at debug level and above straight into the capture's JSON
//! document (Chrome Trace Event format, which Perfetto and chrome://tracing load). Recording
//! is compact and bounded in bytes: once the document reaches its limit, further events are
//! only counted, and the finished document is served as it is, without another copy.
//!
//! While no capture runs it costs one relaxed atomic load per debug-or-higher callsite.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

const HEAD: &[u8] = b"{\"traceEvents\":[";

/// Room past the limit for the event that crosses it and the document's closing metadata.
const TAIL_RESERVE: usize = 64 * 1024;

/// Whether any recorder is capturing: lets the request path skip debug-level work (the access
/// log's span and fields) with one load when neither the log nor a trace wants it.
static CAPTURING: AtomicBool = AtomicBool::new(false);

pub fn capturing() -> bool {
    CAPTURING.load(Ordering::Relaxed)
}

#[derive(Clone, Default)]
pub struct TraceRecorder {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Recording, and not yet full: what the filter reads.
    accepting: AtomicBool,
    recording: Mutex<Option<Recording>>,
}

struct Recording {
    start: Instant,
    /// The document so far: HEAD, then events separated by commas.
    doc: Vec<u8>,
    limit: usize,
    events: u64,
    dropped: u64,
    threads: Vec<(u64, String)>,
}

/// A running capture; dropping it (the client went away) discards the recording.
pub struct Capture {
    shared: Arc<Shared>,
}

/// What a finished capture holds.
pub struct Finished {
    pub json: Vec<u8>,
    pub events: u64,
    pub dropped: u64,
}

/// Marks spans whose begin was recorded, so their end is recorded too.
struct Recorded;

impl TraceRecorder {
    /// Starts recording, up to `limit` bytes of JSON. The caller allows one capture at a time.
    pub fn start(&self, limit: usize) -> Capture {
        // All of it reserved at once (address space only, until written): growing by doubling
        // would hold the old and the new buffer at once, twice the limit at the peak.
        let mut doc = Vec::with_capacity(limit + TAIL_RESERVE);
        doc.extend_from_slice(HEAD);
        *lock(&self.shared.recording) = Some(Recording {
            start: Instant::now(),
            doc,
            limit,
            events: 0,
            dropped: 0,
            threads: Vec::new(),
        });
        self.shared.accepting.store(true, Ordering::Release);
        CAPTURING.store(true, Ordering::Relaxed);
        Capture {
            shared: self.shared.clone(),
        }
    }

    /// Appends one event, written by `write(doc, ts_us, tid)`.
    fn record(&self, write: impl FnOnce(&mut Vec<u8>, f64, u64)) {
        let mut guard = lock(&self.shared.recording);
        let Some(rec) = guard.as_mut() else { return };
        if rec.doc.len() >= rec.limit {
            rec.dropped += 1;
            self.shared.accepting.store(false, Ordering::Release);
            return;
        }
        let ts = rec.start.elapsed().as_secs_f64() * 1e6;
        let tid = thread_id(rec);
        if rec.events > 0 {
            rec.doc.push(b',');
        }
        write(&mut rec.doc, ts, tid);
        rec.events += 1;
    }
}

impl Capture {
    /// Ends the capture: the process and thread names, then the closing of the document.
    pub fn finish(self) -> Finished {
        self.shared.accepting.store(false, Ordering::Release);
        let Some(mut rec) = lock(&self.shared.recording).take() else {
            return Finished {
                json: b"{\"traceEvents\":[]}".to_vec(),
                events: 0,
                dropped: 0,
            };
        };
        let doc = &mut rec.doc;
        if rec.events > 0 {
            doc.push(b',');
        }
        doc.extend_from_slice(
            br#"{"ph":"M","pid":1,"tid":0,"name":"process_name","args":{"name":"httpserver"}}"#,
        );
        for (tid, name) in &rec.threads {
            let _ = write!(
                doc,
                r#",{{"ph":"M","pid":1,"tid":{tid},"name":"thread_name","args":{{"name":"#
            );
            json_str(doc, name);
            doc.extend_from_slice(b"}}");
        }
        let _ = write!(
            doc,
            r#"],"displayTimeUnit":"ms","otherData":{{"producer":"httpserver {}","events":{},"dropped_events":{},"limit_bytes":{}}}}}"#,
            env!("CARGO_PKG_VERSION"),
            rec.events,
            rec.dropped,
            rec.limit
        );
        Finished {
            json: rec.doc,
            events: rec.events,
            dropped: rec.dropped,
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shared.accepting.store(false, Ordering::Release);
        CAPTURING.store(false, Ordering::Relaxed);
        lock(&self.shared.recording).take();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Small stable per-thread ids (std's ThreadId has no stable integer form).
fn thread_id(rec: &mut Recording) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static TID: Cell<u64> = const { Cell::new(0) });
    let tid = TID.with(|t| {
        if t.get() == 0 {
            t.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    });
    if !rec.threads.iter().any(|(t, _)| *t == tid) {
        let name = std::thread::current().name().unwrap_or("thread").to_owned();
        rec.threads.push((tid, name));
    }
    tid
}

/// A JSON string literal, escaped.
fn json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(out, s);
}

/// The common head of an event: phase, ids, time, name and category.
fn event_head(out: &mut Vec<u8>, ph: &str, ts: f64, tid: u64, name: &str, cat: &str) {
    let _ = write!(
        out,
        r#"{{"ph":"{ph}","pid":1,"tid":{tid},"ts":{ts:.3},"name":"#
    );
    json_str(out, name);
    out.extend_from_slice(b",\"cat\":");
    json_str(out, cat);
}

impl<S> Layer<S> for TraceRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        let mut args = Fields::default();
        attrs.record(&mut args);
        self.record(|out, ts, tid| {
            event_head(out, "b", ts, tid, meta.name(), meta.target());
            let _ = write!(
                out,
                r#","id":"{:#x}","args":{{{}}}}}"#,
                id.into_u64(),
                args.json
            );
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Recorded);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut args = Fields::default();
        event.record(&mut args);
        let name = args
            .message
            .take()
            .unwrap_or_else(|| meta.name().to_owned());
        self.record(|out, ts, tid| {
            event_head(out, "i", ts, tid, &name, meta.target());
            let _ = write!(out, r#","s":"t","args":{{{}}}}}"#, args.json);
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if span.extensions().get::<Recorded>().is_none() {
            return;
        }
        let meta = span.metadata();
        self.record(|out, ts, tid| {
            event_head(out, "e", ts, tid, meta.name(), meta.target());
            let _ = write!(out, r#","id":"{:#x}"}}"#, id.into_u64());
        });
    }
}

/// Per-layer filter: interested in DEBUG and above, only while a capture is accepting events.
impl<S> Filter<S> for TraceRecorder {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        *meta.level() <= Level::DEBUG && self.shared.accepting.load(Ordering::Relaxed)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if *meta.level() <= Level::DEBUG {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }
}

/// An event's or span's fields as the inside of a JSON object; `message` kept apart.
#[derive(Default)]
struct Fields {
    json: String,
    message: Option<String>,
}

impl Fields {
    fn key(&mut self, field: &Field) {
        if !self.json.is_empty() {
            self.json.push(',');
        }
        let _ = write!(self.json, "{:?}:", field.name());
    }

    fn string(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
            return;
        }
        self.key(field);
        self.json
            .push_str(&serde_json::Value::String(value).to_string());
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.string(field, format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.json, "{value}");
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.json, "{value}");
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.json, "{value}");
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        match value.is_finite() {
            true => {
                let _ = write!(self.json, "{value}");
            }
            false => self.json.push_str("null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn stops_at_the_byte_limit_and_stays_valid_json() {
        let recorder = TraceRecorder::default();
        let subscriber =
            tracing_subscriber::registry().with(recorder.clone().with_filter(recorder.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let capture = recorder.start(4096);
            for i in 0..1000 {
                let span = tracing::debug_span!("request", path = "/healthz \"quoted\"", i);
                let _e = span.enter();
                tracing::debug!(status = 200u64, ok = true, "served");
            }
            let done = capture.finish();
            assert!(done.json.len() < 4096 + 1024, "{} bytes", done.json.len());
            assert!(done.dropped > 0);
            let doc: serde_json::Value = serde_json::from_slice(&done.json).expect("valid JSON");
            let events = doc["traceEvents"].as_array().unwrap();
            assert!(events.iter().any(|e| e["name"] == "served"));
            assert_eq!(doc["otherData"]["dropped_events"], done.dropped);
        });
    }
}
