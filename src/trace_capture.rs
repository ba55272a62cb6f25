//! `/debug/pprof/trace`: records tracing spans and events for a while and renders them as
//! Chrome Trace Event JSON (loads in Perfetto and chrome://tracing).
//!
//! The layer costs one relaxed atomic load per DEBUG-or-higher callsite while no capture runs.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Upper bound on recorded events, so a long capture under load cannot exhaust memory.
const MAX_EVENTS: usize = 1_000_000;

#[derive(Clone, Default)]
pub struct TraceRecorder {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    active: AtomicBool,
    recording: Mutex<Option<Recording>>,
}

struct Recording {
    start: Instant,
    events: Vec<Value>,
    threads: Vec<(u64, String)>,
    dropped: u64,
}

/// Stops the capture when dropped (e.g. the client went away mid-capture).
pub struct Capture {
    shared: Arc<Shared>,
}

/// Marks spans whose begin was recorded, so their end is recorded too.
struct Recorded;

impl TraceRecorder {
    /// Starts recording. The caller guarantees one capture at a time.
    pub fn start(&self) -> Capture {
        *lock(&self.shared.recording) = Some(Recording {
            start: Instant::now(),
            events: Vec::new(),
            threads: Vec::new(),
            dropped: 0,
        });
        self.shared.active.store(true, Ordering::Release);
        Capture {
            shared: self.shared.clone(),
        }
    }

    fn record(&self, make: impl FnOnce(f64, u64) -> Value) {
        let mut guard = lock(&self.shared.recording);
        let Some(rec) = guard.as_mut() else { return };
        if rec.events.len() >= MAX_EVENTS {
            rec.dropped += 1;
            return;
        }
        let ts = rec.start.elapsed().as_secs_f64() * 1e6;
        let tid = thread_id(rec);
        rec.events.push(make(ts, tid));
    }
}

impl Capture {
    /// Ends the capture and renders the Chrome Trace Event JSON document.
    pub fn finish(self) -> Vec<u8> {
        self.shared.active.store(false, Ordering::Release);
        let rec = lock(&self.shared.recording).take();
        let Some(rec) = rec else {
            return b"{\"traceEvents\":[]}".to_vec();
        };
        let mut events = rec.events;
        events.push(
            json!({"ph": "M", "pid": 1, "tid": 0, "name": "process_name",
                            "args": {"name": "httpserver"}}),
        );
        for (tid, name) in rec.threads {
            events.push(
                json!({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name",
                                "args": {"name": name}}),
            );
        }
        let doc = json!({
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "otherData": {
                "producer": concat!("httpserver ", env!("CARGO_PKG_VERSION")),
                "dropped_events": rec.dropped,
            },
        });
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shared.active.store(false, Ordering::Release);
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

impl<S> Layer<S> for TraceRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        let mut args = FieldsToJson::default();
        attrs.record(&mut args);
        self.record(|ts, tid| {
            json!({"ph": "b", "pid": 1, "tid": tid, "ts": ts, "name": meta.name(),
                   "cat": meta.target(), "id": format!("{:#x}", id.into_u64()), "args": args.0})
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Recorded);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut args = FieldsToJson::default();
        event.record(&mut args);
        let name = match args.0.remove("message") {
            Some(Value::String(m)) => m,
            _ => meta.name().to_owned(),
        };
        self.record(|ts, tid| {
            json!({"ph": "i", "s": "t", "pid": 1, "tid": tid, "ts": ts, "name": name,
                   "cat": meta.target(), "args": args.0})
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if span.extensions().get::<Recorded>().is_none() {
            return;
        }
        let meta = span.metadata();
        self.record(|ts, tid| {
            json!({"ph": "e", "pid": 1, "tid": tid, "ts": ts, "name": meta.name(),
                   "cat": meta.target(), "id": format!("{:#x}", id.into_u64())})
        });
    }
}

/// Per-layer filter: interested in DEBUG and above, and only while a capture runs.
impl<S> Filter<S> for TraceRecorder {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        *meta.level() <= Level::DEBUG && self.shared.active.load(Ordering::Relaxed)
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

#[derive(Default)]
struct FieldsToJson(Map<String, Value>);

impl Visit for FieldsToJson {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}
