//! The server's lifecycle as one type: readiness, stopping the accept loops, draining the
//! connections, and waiting for them to close. Shared by the accept loops, every connection
//! and the shutdown sequence.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

#[derive(Default)]
pub struct Lifecycle {
    /// Set when shutdown begins: /readyz answers 503 from then on.
    shutting_down: AtomicBool,
    /// Cancelled when the accept loops must stop.
    stop_accepting: CancellationToken,
    /// Set, then cancelled, when every connection must finish its requests and close.
    /// Connections read the flag on every poll (a load) and wait on the token only to be woken.
    draining: AtomicBool,
    drain: CancellationToken,
    /// Every connection task.
    connections: TaskTracker,
    /// Requests in flight across all connections (for the shutdown report).
    requests: AtomicUsize,
}

impl Lifecycle {
    pub fn is_ready(&self) -> bool {
        !self.shutting_down.load(Ordering::Relaxed)
    }

    /// Readiness turns false; accepting and serving go on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub fn stop_accepting(&self) {
        self.stop_accepting.cancel();
    }

    pub fn accepting_stopped(&self) -> WaitForCancellationFuture<'_> {
        self.stop_accepting.cancelled()
    }

    /// Asks every connection to finish its in-flight requests and close.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.drain.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Resolves when `drain` is called.
    pub fn drain_requested(&self) -> WaitForCancellationFuture<'_> {
        self.drain.cancelled()
    }

    pub fn connections(&self) -> &TaskTracker {
        &self.connections
    }

    /// Resolves once every connection task has ended (call after the accept loops stopped).
    pub async fn connections_closed(&self) {
        self.connections.close();
        self.connections.wait().await;
    }

    pub fn requests_in_flight(&self) -> usize {
        self.requests.load(Ordering::Acquire)
    }

    pub(crate) fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn request_finished(&self) {
        self.requests.fetch_sub(1, Ordering::AcqRel);
    }
}
