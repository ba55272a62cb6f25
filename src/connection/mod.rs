//! One connection, from accept to close: HTTP/1.1 or HTTP/2 (cleartext, prior knowledge)
//! served by hyper, always under exactly one deadline (see `deadlines`), closed gracefully when
//! it has idled too long or the server drains, and dropped when a hard deadline passes.

mod deadlines;
mod request;
mod state;
mod watched_io;

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;

pub use deadlines::Timeouts;
use deadlines::{Deadlines, Verdict};
pub use request::Shared;
use state::ConnState;
use watched_io::WatchedIo;

/// Re-armed after a phase with no deadline, to look again (a handler may run that long).
const NO_DEADLINE_RECHECK: Duration = Duration::from_secs(24 * 3600);

/// hyper's settings for every connection. hyper's own HTTP/1 header timer is off: ours starts
/// at accept (covering the protocol sniff) and is not re-created for every request.
pub fn builder(max_header_bytes: u32, t: &Timeouts) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        // A client that sends its request and then shuts its side (`nc -N`) still gets the answer.
        .half_close(true)
        .max_buf_size(max_header_bytes as usize);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(max_header_bytes)
        // A peer that vanished without a FIN is found by a PING it never answers.
        .keep_alive_interval(Some(t.header_read))
        .keep_alive_timeout(t.header_read);
    builder
}

/// Serves `stream` until the client closes, a deadline passes, or the server drains.
pub async fn serve(
    stream: TcpStream,
    builder: &auto::Builder<TokioExecutor>,
    shared: Shared,
    timeouts: Timeouts,
) {
    let accepted = Instant::now();
    let _ = stream.set_nodelay(true);
    let state = Arc::new(ConnState::default());
    let _task = crate::tasks::register("httpserver::connection::serve", state.clone());
    let io = TokioIo::new(WatchedIo::new(stream, state.clone()));
    let service = {
        let state = state.clone();
        service_fn(move |req| request::handle(shared, state.clone(), req))
    };
    let mut conn = pin!(builder.serve_connection(io, service));
    let lifecycle = shared.lifecycle;
    let mut drain = pin!(lifecycle.drain_requested());
    let mut deadlines = Deadlines::new(timeouts, accepted, &state);
    let mut armed = Some(deadlines.initial());
    let mut timer = pin!(tokio::time::sleep_until(deadlines.initial().into()));
    // The timer and the drain token are polled only when that can change something: after the
    // timer is reset, when the task's waker changed, or when the timer has elapsed. Polling them
    // on every wake-up would cost atomics (and a lock for the token) on every request.
    let mut timer_fresh = true;
    let mut waker: Option<Waker> = None;
    let mut closing = false;

    let result = poll_fn(|cx| {
        loop {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(result.map_err(|e| e.to_string()));
            }
            let new_waker = waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker()));
            if new_waker {
                waker = Some(cx.waker().clone());
            }
            if !closing
                && (lifecycle.is_draining() || (new_waker && drain.as_mut().poll(cx).is_ready()))
            {
                closing = true;
                deadlines.begin_close();
                conn.as_mut().graceful_shutdown();
                continue;
            }
            if let Some(Some(at)) = deadlines.observe(&state, Instant::now)
                && armed.is_none_or(|armed| at < armed)
            {
                timer.as_mut().reset(at.into());
                armed = Some(at);
                timer_fresh = true;
            }
            if !(timer_fresh || new_waker || timer.is_elapsed()) {
                return Poll::Pending;
            }
            timer_fresh = false;
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let next = match deadlines.expired(&state, Instant::now()) {
                Verdict::WaitUntil(at) => Some(at),
                Verdict::NoDeadline => None,
                Verdict::CloseGracefully => {
                    tracing::debug!("connection idle too long: closing it");
                    closing = true;
                    deadlines.begin_close();
                    conn.as_mut().graceful_shutdown();
                    None
                }
                Verdict::Drop(phase) => {
                    return Poll::Ready(Err(format!("{phase:?} deadline passed: dropped")));
                }
            };
            armed = next;
            timer.as_mut().reset(
                next.unwrap_or_else(|| Instant::now() + NO_DEADLINE_RECHECK)
                    .into(),
            );
            timer_fresh = true;
        }
    })
    .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended");
    }
}
