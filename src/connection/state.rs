//! What a connection's requests and socket have done, shared between the connection task (which
//! owns the socket and the deadlines) and the requests (HTTP/2 runs each on its own task).
//! Updated with plain atomic loads and stores where only the connection task writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};

use crate::lifecycle::Lifecycle;

// `requests` packs three counters into one word, so a request costs one atomic add at each of
// its three steps and the connection task reads all of them with one load.
const SENDING: u64 = 1; // bits 0..24: responses not yet handed to the socket
const HANDLING: u64 = 1 << 24; // bits 24..48: handlers still running
const STARTED: u64 = 1 << 48; // bits 48..64: requests started (wrapping)
const COUNT_MASK: u64 = (1 << 24) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Unknown,
    Http1,
    Http2,
}

#[derive(Default)]
pub struct ConnState {
    requests: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    write_blocked: AtomicBool,
    protocol: AtomicU8,
}

/// One load of the request counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requests(u64);

impl Requests {
    /// Requests whose handler still runs.
    pub fn handling(self) -> u64 {
        (self.0 / HANDLING) & COUNT_MASK
    }
    /// Requests not finished: handler running or response not yet handed over.
    pub fn in_flight(self) -> u64 {
        self.0 & COUNT_MASK
    }
    /// Changes whenever a request starts.
    pub fn started(self) -> u64 {
        self.0 / STARTED
    }
}

impl ConnState {
    pub fn requests(&self) -> Requests {
        Requests(self.requests.load(Relaxed))
    }
    pub fn reads(&self) -> u64 {
        self.reads.load(Relaxed)
    }
    pub fn writes(&self) -> u64 {
        self.writes.load(Relaxed)
    }
    pub fn write_blocked(&self) -> bool {
        self.write_blocked.load(Relaxed)
    }
    pub fn protocol(&self) -> Protocol {
        match self.protocol.load(Relaxed) {
            1 => Protocol::Http1,
            2 => Protocol::Http2,
            _ => Protocol::Unknown,
        }
    }

    // Socket events, from the connection task only (hence load + store, not read-modify-write).
    pub(super) fn on_read(&self) {
        self.reads
            .store(self.reads.load(Relaxed).wrapping_add(1), Relaxed);
    }
    pub(super) fn on_write(&self) {
        self.writes
            .store(self.writes.load(Relaxed).wrapping_add(1), Relaxed);
        self.write_blocked.store(false, Relaxed);
    }
    pub(super) fn on_write_blocked(&self) {
        self.write_blocked.store(true, Relaxed);
    }
    pub(super) fn set_protocol(&self, p: Protocol) {
        self.protocol.store(
            match p {
                Protocol::Unknown => 0,
                Protocol::Http1 => 1,
                Protocol::Http2 => 2,
            },
            Relaxed,
        );
    }
}

/// What /debug/pprof/goroutine shows of a connection: its protocol and what it waits for.
impl crate::tasks::Activity for ConnState {
    fn now(&self) -> (Option<&'static str>, &'static str) {
        let protocol = match self.protocol() {
            Protocol::Unknown => "protocol not yet known",
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        };
        let r = self.requests();
        let state = if r.handling() > 0 {
            "handling a request"
        } else if r.in_flight() > 0 && self.write_blocked() {
            "writing a response the client does not read"
        } else if r.in_flight() > 0 {
            "writing a response"
        } else if self.reads() == 0 {
            "awaiting the first bytes"
        } else {
            "awaiting a request"
        };
        (Some(protocol), state)
    }
}

/// One request, from the handler's call until its response is handed to the socket (or the
/// request is dropped). Counted on its connection and process-wide.
pub struct RequestGuard {
    conn: Arc<ConnState>,
    lifecycle: &'static Lifecycle,
    handling: bool,
}

impl RequestGuard {
    pub fn begin(conn: Arc<ConnState>, lifecycle: &'static Lifecycle) -> Self {
        conn.requests
            .fetch_add(STARTED + HANDLING + SENDING, Relaxed);
        lifecycle.request_started();
        Self {
            conn,
            lifecycle,
            handling: true,
        }
    }

    /// The handler returned; the response is being sent.
    pub fn handler_done(&mut self) {
        if std::mem::take(&mut self.handling) {
            self.conn.requests.fetch_sub(HANDLING, Relaxed);
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let done = if self.handling {
            HANDLING + SENDING
        } else {
            SENDING
        };
        self.conn.requests.fetch_sub(done, Relaxed);
        self.lifecycle.request_finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_a_request_through_its_steps() {
        let lifecycle: &'static Lifecycle = Box::leak(Box::default());
        let conn = Arc::new(ConnState::default());
        let before = conn.requests();
        let mut guard = RequestGuard::begin(conn.clone(), lifecycle);
        let r = conn.requests();
        assert_eq!((r.handling(), r.in_flight()), (1, 1));
        assert_ne!(r.started(), before.started());
        assert_eq!(lifecycle.requests_in_flight(), 1);
        guard.handler_done();
        let r = conn.requests();
        assert_eq!((r.handling(), r.in_flight()), (0, 1));
        drop(guard);
        let r = conn.requests();
        assert_eq!((r.handling(), r.in_flight()), (0, 0));
        assert_eq!(lifecycle.requests_in_flight(), 0);
        // Dropped while the handler runs (the client went away): both counts return to 0.
        drop(RequestGuard::begin(conn.clone(), lifecycle));
        let r = conn.requests();
        assert_eq!((r.handling(), r.in_flight()), (0, 0));
    }
}
