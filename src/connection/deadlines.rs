//! The one deadline a connection is under at any moment, from what its state shows:
//!
//! | phase    | when                                              | deadline                         |
//! |----------|---------------------------------------------------|----------------------------------|
//! | head     | a request head is awaited: from accept (protocol  | start + `--header-read-timeout`, |
//! |          | sniff, HTTP/2 preface, first head) or, on HTTP/1, | then the connection is dropped   |
//! |          | from the first byte of a later one                |                                  |
//! | handling | a handler runs                                    | none: the handler bounds itself  |
//! |          |                                                   | (captures by `--max-profile-seconds`, bodies by `--body-read-timeout`) |
//! | sending  | a response is not yet handed over, or the socket  | no write progress for            |
//! |          | refuses writes (the client stopped reading)       | `--write-timeout`: dropped        |
//! | idle     | nothing in flight                                 | `--idle-timeout`: graceful close |
//! | closing  | a graceful close began (GOAWAY / `connection:     | `--header-read-timeout`: dropped |
//! |          | close`) and nothing is in flight                  |                                  |
//!
//! The connection task calls `observe` after every poll of the connection: a few atomic loads,
//! and a clock read only when the phase changes or a request started. The timer is re-armed
//! only when the deadline moves earlier; a deadline that moved later is found when the timer
//! fires (`expired` re-arms it), so a busy keep-alive connection touches the timer about once
//! per timeout period, not once per request. Nothing polls: an idle or waiting connection
//! costs no CPU.

use std::time::{Duration, Instant};

use super::state::{ConnState, Protocol, Requests};

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
    pub write: Duration,
    pub close: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Head,
    Handling,
    Sending,
    Idle,
    Closing,
}

/// What to do when the timer fires.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not yet (or the deadline moved): wait until then.
    WaitUntil(Instant),
    /// No deadline in this phase.
    NoDeadline,
    /// Idle too long: begin a graceful close.
    CloseGracefully,
    /// A deadline that allows no more grace passed: drop the connection.
    Drop(Phase),
}

pub struct Deadlines {
    t: Timeouts,
    accepted: Instant,
    first_request_seen: bool,
    closing: bool,
    seen: Requests,
    seen_reads: u64,
    phase: Phase,
    since: Instant,
    writes_at: u64,
}

impl Deadlines {
    pub fn new(t: Timeouts, accepted: Instant, state: &ConnState) -> Self {
        Self {
            t,
            accepted,
            first_request_seen: false,
            closing: false,
            seen: state.requests(),
            seen_reads: state.reads(),
            phase: Phase::Head,
            since: accepted,
            writes_at: state.writes(),
        }
    }

    /// The first deadline: the head of the first request, counted from accept.
    pub fn initial(&self) -> Instant {
        self.accepted + self.t.header_read
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn begin_close(&mut self) {
        self.closing = true;
    }

    /// Looks at the state after a poll. Returns the new deadline when the phase's clock
    /// (re)started, `Some(None)` when the new phase has none, `None` when nothing changed.
    pub fn observe(
        &mut self,
        state: &ConnState,
        now: impl FnOnce() -> Instant,
    ) -> Option<Option<Instant>> {
        let requests = state.requests();
        let reads = state.reads();
        let activity = requests.started() != self.seen.started();
        if activity {
            self.first_request_seen = true;
        }
        // Bytes read while a request is in flight belong to it (its body, or a pipelined head).
        if activity || requests.in_flight() > 0 {
            self.seen_reads = reads;
        }
        self.seen = requests;
        let phase = self.phase_of(state, requests, reads);
        if phase == self.phase && !activity {
            return None;
        }
        self.phase = phase;
        self.since = if phase == Phase::Head && !self.first_request_seen {
            self.accepted
        } else {
            now()
        };
        self.writes_at = state.writes();
        Some(self.deadline())
    }

    fn phase_of(&self, state: &ConnState, requests: Requests, reads: u64) -> Phase {
        let protocol = state.protocol();
        let head_pending = if self.first_request_seen {
            protocol == Protocol::Http1 && reads != self.seen_reads
        } else {
            protocol != Protocol::Http2
        };
        if requests.handling() > 0 {
            Phase::Handling
        } else if requests.in_flight() > 0 || state.write_blocked() {
            Phase::Sending
        } else if self.closing {
            Phase::Closing
        } else if head_pending {
            Phase::Head
        } else {
            Phase::Idle
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let limit = match self.phase {
            Phase::Head => self.t.header_read,
            Phase::Handling => return None,
            Phase::Sending => self.t.write,
            Phase::Idle => self.t.idle,
            Phase::Closing => self.t.close,
        };
        Some(self.since + limit)
    }

    /// The timer fired at `now`.
    pub fn expired(&mut self, state: &ConnState, now: Instant) -> Verdict {
        self.observe(state, || now);
        if self.phase == Phase::Sending && state.writes() != self.writes_at {
            // The client took data since the clock started: restart it.
            self.writes_at = state.writes();
            self.since = now;
        }
        match self.deadline() {
            None => Verdict::NoDeadline,
            Some(at) if at > now => Verdict::WaitUntil(at),
            Some(_) if self.phase == Phase::Idle => Verdict::CloseGracefully,
            Some(_) => Verdict::Drop(self.phase),
        }
    }
}

/// Timeouts for the unit tests here and in `supervised`.
#[cfg(test)]
pub(super) fn test_timeouts() -> Timeouts {
    const S: Duration = Duration::from_secs(1);
    Timeouts {
        header_read: 10 * S,
        idle: 60 * S,
        write: 20 * S,
        close: 5 * S,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::state::RequestGuard;
    use crate::lifecycle::Lifecycle;
    use std::sync::Arc;

    const S: Duration = Duration::from_secs(1);

    fn setup() -> (Arc<ConnState>, Deadlines, Instant, &'static Lifecycle) {
        let state = Arc::new(ConnState::default());
        let t0 = Instant::now();
        let d = Deadlines::new(test_timeouts(), t0, &state);
        (state, d, t0, Box::leak(Box::default()))
    }

    #[test]
    fn a_silent_connection_is_dropped_at_the_header_deadline_from_accept() {
        let (state, mut d, t0, _) = setup();
        assert_eq!(d.initial(), t0 + 10 * S);
        assert_eq!(
            d.expired(&state, t0 + 3 * S),
            Verdict::WaitUntil(t0 + 10 * S)
        );
        // Half an HTTP/2 preface is still the head phase, counted from accept.
        state.on_read();
        assert_eq!(d.observe(&state, || t0 + 4 * S), None);
        assert_eq!(d.expired(&state, t0 + 10 * S), Verdict::Drop(Phase::Head));
    }

    #[test]
    fn after_the_preface_an_http2_connection_is_idle() {
        let (state, mut d, t0, _) = setup();
        state.on_read();
        state.set_protocol(Protocol::Http2);
        assert_eq!(d.observe(&state, || t0 + S), Some(Some(t0 + 61 * S)));
        assert_eq!(d.phase(), Phase::Idle);
        // Frames that are not requests (PING, SETTINGS) do not start a head phase.
        state.on_read();
        assert_eq!(d.observe(&state, || t0 + 2 * S), None);
        assert_eq!(d.expired(&state, t0 + 61 * S), Verdict::CloseGracefully);
    }

    #[test]
    fn a_request_moves_the_idle_deadline_and_a_long_handler_has_none() {
        let (state, mut d, t0, lifecycle) = setup();
        state.set_protocol(Protocol::Http1);
        let mut guard = RequestGuard::begin(state.clone(), lifecycle);
        assert_eq!(d.observe(&state, || t0 + S), Some(None));
        assert_eq!(d.phase(), Phase::Handling);
        // A capture outlives every timeout: no deadline, so nothing fires or spins.
        assert_eq!(d.expired(&state, t0 + 100 * S), Verdict::NoDeadline);
        guard.handler_done();
        drop(guard);
        assert_eq!(d.observe(&state, || t0 + 101 * S), Some(Some(t0 + 161 * S)));
        assert_eq!(d.phase(), Phase::Idle);
    }

    #[test]
    fn keep_alive_requests_within_one_poll_restart_the_idle_clock() {
        let (state, mut d, t0, lifecycle) = setup();
        state.set_protocol(Protocol::Http1);
        for i in 1..4 {
            state.on_read();
            drop(RequestGuard::begin(state.clone(), lifecycle));
            let now = t0 + i * S;
            assert_eq!(d.observe(&state, || now), Some(Some(now + 60 * S)));
            assert_eq!(d.phase(), Phase::Idle);
        }
        // The timer armed at the first deadline fires early and moves to the latest one.
        assert_eq!(
            d.expired(&state, t0 + 61 * S),
            Verdict::WaitUntil(t0 + 63 * S)
        );
    }

    #[test]
    fn the_first_byte_of_a_later_http1_head_starts_the_header_clock() {
        let (state, mut d, t0, lifecycle) = setup();
        state.set_protocol(Protocol::Http1);
        state.on_read();
        drop(RequestGuard::begin(state.clone(), lifecycle));
        d.observe(&state, || t0 + S);
        state.on_read();
        assert_eq!(d.observe(&state, || t0 + 5 * S), Some(Some(t0 + 15 * S)));
        assert_eq!(d.phase(), Phase::Head);
        assert_eq!(d.expired(&state, t0 + 15 * S), Verdict::Drop(Phase::Head));
    }

    #[test]
    fn a_stalled_writer_is_dropped_and_progress_restarts_its_clock() {
        let (state, mut d, t0, lifecycle) = setup();
        state.set_protocol(Protocol::Http1);
        let mut guard = RequestGuard::begin(state.clone(), lifecycle);
        guard.handler_done();
        assert_eq!(d.observe(&state, || t0 + S), Some(Some(t0 + 21 * S)));
        assert_eq!(d.phase(), Phase::Sending);
        state.on_write();
        assert_eq!(
            d.expired(&state, t0 + 21 * S),
            Verdict::WaitUntil(t0 + 41 * S)
        );
        state.on_write_blocked();
        assert_eq!(
            d.expired(&state, t0 + 41 * S),
            Verdict::Drop(Phase::Sending)
        );
        // The response handed over but the socket still refuses it: still sending.
        drop(guard);
        assert_eq!(d.observe(&state, || t0 + 42 * S), None);
        assert_eq!(d.phase(), Phase::Sending);
    }

    #[test]
    fn a_graceful_close_ends_at_the_close_deadline() {
        let (state, mut d, t0, _) = setup();
        state.set_protocol(Protocol::Http2);
        d.observe(&state, || t0);
        assert_eq!(d.expired(&state, t0 + 60 * S), Verdict::CloseGracefully);
        d.begin_close();
        assert_eq!(d.observe(&state, || t0 + 60 * S), Some(Some(t0 + 65 * S)));
        assert_eq!(
            d.expired(&state, t0 + 65 * S),
            Verdict::Drop(Phase::Closing)
        );
    }
}
