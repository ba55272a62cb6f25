//! The tracing layer behind `/debug/pprof/trace`: while a capture runs it writes each span
//! (begin/end) and each event at debug level and above straight into the capture's JSON
//! document (Chrome Trace Event format, which Perfetto and chrome://tracing load). Recording
//! is compact and bounded in bytes: once the document reaches its limit, further events are
//! only counted, and the finished document is served as it is, without another copy.
//!
//! While no capture runs it costs one relaxed atomic load per debug-or-higher callsite. While
//! one runs, fields are written escaped straight into the document, with no allocation per
//! event: under full load every request is three events, and that cost is the capture's.

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

    /// Appends one event, written by `write(doc, ts_ns, tid)`.
    fn record(&self, write: impl FnOnce(&mut Vec<u8>, u64, u64)) {
        let mut guard = lock(&self.shared.recording);
        let Some(rec) = guard.as_mut() else { return };
        if rec.doc.len() >= rec.limit {
            rec.dropped += 1;
            self.shared.accepting.store(false, Ordering::Release);
            return;
        }
        let ts = rec.start.elapsed().as_nanos() as u64;
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
    out.push(b'"');
    escape(out, s);
    out.push(b'"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The inside of a JSON string: `"`, `\` and control characters escaped, the rest as is.
fn escape(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Almost every string needs nothing: one branch-free (vectorised) pass says so.
    if !bytes.iter().fold(false, |any, &b| any | needs_escape(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[plain..i]);
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
}

/// `write!` into the inside of a JSON string (Debug and Display values), escaped on the way.
struct Escaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape(self.0, s);
        Ok(())
    }
}

/// The common head of an event: phase, ids, time (microseconds) and category; the caller
/// writes the name's value next.
fn event_head(out: &mut Vec<u8>, ph: u8, ts_ns: u64, tid: u64, cat: &str) {
    out.extend_from_slice(br#"{"ph":""#);
    out.push(ph);
    out.extend_from_slice(br#"","pid":1,"tid":"#);
    push_u64(out, tid);
    out.extend_from_slice(br#","ts":"#);
    push_u64(out, ts_ns / 1000);
    let frac = ts_ns % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
    out.extend_from_slice(br#","cat":"#);
    json_str(out, cat);
    out.extend_from_slice(br#","name":"#);
}

/// The head of a span's begin or end: the event head, the span's name and its id.
fn span_head(out: &mut Vec<u8>, ph: u8, ts_ns: u64, tid: u64, meta: &Metadata<'_>, id: &Id) {
    event_head(out, ph, ts_ns, tid, meta.target());
    json_str(out, meta.name());
    // Decimal span ids: async slices pair by id, which any string spelling serves.
    out.extend_from_slice(br#","id":""#);
    push_u64(out, id.into_u64());
    out.push(b'"');
}

/// A number in decimal, without `fmt`'s machinery (three per event).
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl<S> Layer<S> for TraceRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        self.record(|out, ts, tid| {
            span_head(out, b'b', ts, tid, meta, id);
            out.extend_from_slice(br#","args":{"#);
            attrs.record(&mut Fields::new(out));
            out.extend_from_slice(b"}}");
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Recorded);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        self.record(|out, ts, tid| {
            event_head(out, b'i', ts, tid, meta.target());
            // The message is the event's name; an event without one is named by its callsite.
            out.push(b'"');
            let mut message = Message { out, found: false };
            event.record(&mut message);
            if !message.found {
                escape(out, meta.name());
            }
            out.extend_from_slice(br#"","s":"t","args":{"#);
            event.record(&mut Fields::new(out));
            out.extend_from_slice(b"}}");
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if span.extensions().get::<Recorded>().is_none() {
            return;
        }
        let meta = span.metadata();
        self.record(|out, ts, tid| {
            span_head(out, b'e', ts, tid, meta, &id);
            out.push(b'}');
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

/// An event's or span's fields, but its message, as the members of a JSON object, written
/// into the document.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Fields<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Fields { out, first: true }
    }

    /// Writes the member's key; false for the message, which is not a member.
    fn key(&mut self, field: &Field) -> bool {
        if field.name() == "message" {
            return false;
        }
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        json_str(self.out, field.name());
        self.out.push(b':');
        true
    }

    fn number(&mut self, field: &Field, value: impl fmt::Display) {
        if self.key(field) {
            let _ = write!(self.out, "{value}");
        }
    }
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.out.push(b'"');
            let _ = write!(Escaped(self.out), "{value:?}");
            self.out.push(b'"');
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            json_str(self.out, value);
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.key(field) {
            push_u64(self.out, value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        match value.is_finite() {
            true => self.number(field, value),
            false => self.number(field, "null"),
        }
    }
}

/// An event's message only, escaped into the inside of a JSON string.
struct Message<'a> {
    out: &'a mut Vec<u8>,
    found: bool,
}

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.found = true;
            let _ = write!(Escaped(self.out), "{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.found = true;
            escape(self.out, value);
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

    #[test]
    fn fields_and_messages_round_trip_through_a_json_parser() {
        let recorder = TraceRecorder::default();
        let subscriber =
            tracing_subscriber::registry().with(recorder.clone().with_filter(recorder.clone()));
        let hostile = "a\"b\\c\nd\te\u{1}f\u{7f}g\u{e9}h\u{1F600}";
        tracing::subscriber::with_default(subscriber, || {
            let capture = recorder.start(1 << 20);
            let span = tracing::debug_span!("request", path = %hostile, n = -3i64, x = 1.5f64);
            let _e = span.enter();
            tracing::debug!(s = hostile, d = ?hostile, inf = f64::INFINITY, "msg {hostile}");
            tracing::debug!(flag = false);
            let done = capture.finish();
            let doc: serde_json::Value = serde_json::from_slice(&done.json).expect("valid JSON");
            let events = doc["traceEvents"].as_array().unwrap();
            let begin = events.iter().find(|e| e["ph"] == "b").unwrap();
            assert_eq!(begin["name"], "request");
            assert_eq!(begin["args"]["path"], hostile);
            assert_eq!(begin["args"]["n"], -3);
            assert_eq!(begin["args"]["x"], 1.5);
            let msg = events.iter().find(|e| e["args"]["s"] == hostile).unwrap();
            assert_eq!(msg["name"], format!("msg {hostile}"));
            assert_eq!(msg["args"]["d"], format!("{hostile:?}"));
            assert!(msg["args"]["inf"].is_null());
            assert!(msg["args"].get("message").is_none());
            let unnamed = events.iter().find(|e| e["args"]["flag"] == false).unwrap();
            assert!(unnamed["name"].as_str().unwrap().starts_with("event "));
            let ts: Vec<f64> = events.iter().filter_map(|e| e["ts"].as_f64()).collect();
            assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
        });
    }
}
