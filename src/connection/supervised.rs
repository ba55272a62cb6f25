//! The connection as a future: hyper's connection polled under the one deadline `Deadlines`
//! names, closed gracefully when the server drains or the connection idles too long, dropped
//! when a hard deadline passes. `poll` is a loop over small steps, one method each:
//! `poll_drain` (has the server asked us to close?), `rearm` (did the deadline move earlier?),
//! `poll_timer` (did it pass, and what then?) and `begin_close` (the one way a close starts).
//!
//! The timer and the drain token are polled only when that can change something: after the
//! timer is reset, when the task's waker changed, or when the timer has elapsed. Polling them
//! on every wake-up would cost atomics (and a lock for the token) on every request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::body::{Body, Incoming};
use hyper::rt::{Read, Write};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::server::conn::auto::{self, HttpServerConnExec};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tokio_util::sync::WaitForCancellationFuture;

use super::deadlines::{Deadlines, Phase, Timeouts, Verdict};
use super::state::ConnState;
use crate::lifecycle::Lifecycle;

/// Re-armed after a phase with no deadline, to look again (a handler may run that long).
const NO_DEADLINE_RECHECK: Duration = Duration::from_secs(24 * 3600);

/// What the lifecycle needs of the protocol connection: to poll it, and to ask it to close
/// gracefully (HTTP/2 GOAWAY, HTTP/1 `connection: close` after the request in flight).
pub(super) trait Serve {
    fn poll_serve(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), String>>;
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, E, B> Serve for auto::Connection<'_, I, S, E>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: Read + Write + Unpin + 'static,
    E: HttpServerConnExec<S::Future, B>,
{
    fn poll_serve(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        self.poll(cx).map_err(|e| e.to_string())
    }

    fn graceful_shutdown(self: Pin<&mut Self>) {
        auto::Connection::graceful_shutdown(self);
    }
}

/// The clock deadlines are measured on: tokio's, so paused time in tests moves it (in the
/// binary it is the monotonic clock, as `Instant::now`).
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What the timer said.
enum Step {
    /// Nothing to do until a wake-up.
    Pending,
    /// The timer was re-armed: look again.
    Again,
    /// Idle too long: close gracefully.
    CloseGracefully,
    /// A deadline that allows no more grace passed.
    Drop(Phase),
}

pin_project! {
    pub(super) struct Connection<'a, C> {
        #[pin]
        conn: C,
        #[pin]
        drain: WaitForCancellationFuture<'a>,
        #[pin]
        timer: Sleep,
        lifecycle: &'a Lifecycle,
        state: Arc<ConnState>,
        deadlines: Deadlines,
        // The deadline the timer is set to (None: a phase without one).
        armed: Option<Instant>,
        timer_fresh: bool,
        waker: Option<Waker>,
        closing: bool,
    }
}

impl<'a, C: Serve> Connection<'a, C> {
    pub(super) fn new(
        conn: C,
        lifecycle: &'a Lifecycle,
        state: Arc<ConnState>,
        timeouts: Timeouts,
        accepted: Instant,
    ) -> Self {
        let deadlines = Deadlines::new(timeouts, accepted, &state);
        let first = deadlines.initial();
        Self {
            conn,
            drain: lifecycle.drain_requested(),
            timer: tokio::time::sleep_until(first.into()),
            lifecycle,
            state,
            deadlines,
            armed: Some(first),
            timer_fresh: true,
            waker: None,
            closing: false,
        }
    }

    /// Keeps the task's waker; true when it changed (the timer and the token must then be
    /// polled again, to register it).
    fn remember_waker(self: Pin<&mut Self>, cx: &Context<'_>) -> bool {
        let waker = self.project().waker;
        let new = waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker()));
        if new {
            *waker = Some(cx.waker().clone());
        }
        new
    }

    /// True when the server asked every connection to close and this one has not begun to.
    fn poll_drain(self: Pin<&mut Self>, cx: &mut Context<'_>, new_waker: bool) -> bool {
        let this = self.project();
        !*this.closing
            && (this.lifecycle.is_draining() || (new_waker && this.drain.poll(cx).is_ready()))
    }

    /// Moves the timer earlier when what the last poll did starts a shorter deadline.
    fn rearm(self: Pin<&mut Self>) {
        let this = self.project();
        if let Some(Some(at)) = this.deadlines.observe(this.state, now)
            && this.armed.is_none_or(|armed| at < armed)
        {
            this.timer.reset(at.into());
            *this.armed = Some(at);
            *this.timer_fresh = true;
        }
    }

    /// Polls the timer when that can change something; when it fired, asks the deadlines
    /// what now and re-arms it.
    fn poll_timer(self: Pin<&mut Self>, cx: &mut Context<'_>, new_waker: bool) -> Step {
        let mut this = self.project();
        if !(*this.timer_fresh || new_waker || this.timer.is_elapsed()) {
            return Step::Pending;
        }
        *this.timer_fresh = false;
        if this.timer.as_mut().poll(cx).is_pending() {
            return Step::Pending;
        }
        let (next, step) = match this.deadlines.expired(this.state, now()) {
            Verdict::WaitUntil(at) => (Some(at), Step::Again),
            Verdict::NoDeadline => (None, Step::Again),
            Verdict::CloseGracefully => (None, Step::CloseGracefully),
            Verdict::Drop(phase) => return Step::Drop(phase),
        };
        *this.armed = next;
        this.timer
            .reset(next.unwrap_or_else(|| now() + NO_DEADLINE_RECHECK).into());
        *this.timer_fresh = true;
        step
    }

    /// The graceful close, whatever asked for it: the protocol finishes what is in flight and
    /// the close deadline bounds how long that may take.
    fn begin_close(self: Pin<&mut Self>) {
        let this = self.project();
        *this.closing = true;
        this.deadlines.begin_close();
        this.conn.graceful_shutdown();
    }
}

impl<C: Serve> Future for Connection<'_, C> {
    type Output = Result<(), String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            if let Poll::Ready(result) = self.as_mut().project().conn.poll_serve(cx) {
                return Poll::Ready(result);
            }
            let new_waker = self.as_mut().remember_waker(cx);
            if self.as_mut().poll_drain(cx, new_waker) {
                self.as_mut().begin_close();
                continue;
            }
            self.as_mut().rearm();
            match self.as_mut().poll_timer(cx, new_waker) {
                Step::Pending => return Poll::Pending,
                Step::Again => {}
                Step::CloseGracefully => {
                    tracing::debug!("connection idle too long: closing it");
                    self.as_mut().begin_close();
                }
                Step::Drop(phase) => {
                    return Poll::Ready(Err(format!("{phase:?} deadline passed: dropped")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::deadlines::test_timeouts;
    use crate::connection::state::{Protocol, RequestGuard};
    use std::pin::pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const S: Duration = Duration::from_secs(1);

    /// A protocol connection that serves until told it is done, counting close requests.
    #[derive(Default, Clone)]
    struct Fake {
        shutdowns: Arc<AtomicUsize>,
        done: Arc<AtomicBool>,
    }

    impl Serve for Fake {
        fn poll_serve(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), String>> {
            if self.done.load(Ordering::Relaxed) {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }

        fn graceful_shutdown(self: Pin<&mut Self>) {
            self.shutdowns.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn setup() -> (Fake, Arc<ConnState>, &'static Lifecycle) {
        (
            Fake::default(),
            Arc::new(ConnState::default()),
            Box::leak(Box::default()),
        )
    }

    /// A connection accepted now, under the deadlines' test timeouts (header 10 s, idle 60 s,
    /// write 20 s, close 5 s).
    fn open(
        fake: &Fake,
        lifecycle: &'static Lifecycle,
        state: &Arc<ConnState>,
    ) -> Connection<'static, Fake> {
        Connection::new(
            fake.clone(),
            lifecycle,
            state.clone(),
            test_timeouts(),
            now(),
        )
    }

    fn dropped(phase: &str) -> Poll<Result<(), String>> {
        Poll::Ready(Err(format!("{phase} deadline passed: dropped")))
    }

    fn poll<C: Serve>(c: Pin<&mut Connection<'_, C>>) -> Poll<Result<(), String>> {
        c.poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Moves paused time just past `d` (timers fire at their instant).
    async fn after(d: Duration) {
        tokio::time::advance(d + Duration::from_millis(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn timer_a_silent_connection_is_dropped_at_the_header_deadline() {
        let (fake, state, lifecycle) = setup();
        let mut c = pin!(open(&fake, lifecycle, &state));
        assert!(poll(c.as_mut()).is_pending());
        after(9 * S).await;
        assert!(poll(c.as_mut()).is_pending());
        after(S).await;
        assert_eq!(poll(c.as_mut()), dropped("Head"));
    }

    #[tokio::test(start_paused = true)]
    async fn close_an_idle_connection_closes_once_then_the_close_deadline_drops_it() {
        let (fake, state, lifecycle) = setup();
        state.on_read();
        state.set_protocol(Protocol::Http2);
        let mut c = pin!(open(&fake, lifecycle, &state));
        assert!(poll(c.as_mut()).is_pending());
        after(60 * S).await;
        assert!(poll(c.as_mut()).is_pending());
        assert_eq!(
            fake.shutdowns.load(Ordering::Relaxed),
            1,
            "graceful close begun"
        );
        after(S).await;
        assert!(poll(c.as_mut()).is_pending());
        assert_eq!(fake.shutdowns.load(Ordering::Relaxed), 1, "begun once");
        after(4 * S).await;
        assert_eq!(poll(c.as_mut()), dropped("Closing"));
    }

    #[tokio::test(start_paused = true)]
    async fn drain_a_drain_request_begins_one_graceful_close() {
        let (fake, state, lifecycle) = setup();
        state.set_protocol(Protocol::Http2);
        let mut c = pin!(open(&fake, lifecycle, &state));
        assert!(poll(c.as_mut()).is_pending());
        assert_eq!(fake.shutdowns.load(Ordering::Relaxed), 0);
        lifecycle.drain();
        assert!(poll(c.as_mut()).is_pending());
        assert!(poll(c.as_mut()).is_pending());
        assert_eq!(fake.shutdowns.load(Ordering::Relaxed), 1);
        // The protocol finishes: the future ends with it.
        fake.done.store(true, Ordering::Relaxed);
        assert_eq!(poll(c.as_mut()), Poll::Ready(Ok(())));
    }

    #[tokio::test(start_paused = true)]
    async fn rearm_a_handler_has_no_deadline_and_its_response_arms_the_write_deadline() {
        let (fake, state, lifecycle) = setup();
        state.set_protocol(Protocol::Http1);
        let mut c = pin!(open(&fake, lifecycle, &state));
        let mut guard = RequestGuard::begin(state.clone(), lifecycle);
        assert!(poll(c.as_mut()).is_pending());
        // The header deadline armed at accept fires, finds a handler running: no deadline.
        after(100 * S).await;
        assert!(poll(c.as_mut()).is_pending());
        // The handler returns; the response is not yet written: the write clock arms.
        guard.handler_done();
        assert!(poll(c.as_mut()).is_pending());
        after(19 * S).await;
        assert!(poll(c.as_mut()).is_pending());
        after(S).await;
        assert_eq!(poll(c.as_mut()), dropped("Sending"));
        drop(guard);
    }
}
