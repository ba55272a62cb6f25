//! Bounds on captures that run at once. Each capture holds a slot for its length; with every
//! slot taken, the answer is 503 with `Retry-After` set to when the first running capture
//! ends, so a scraper that retries gets in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};

use crate::responses::{self, Body};

pub struct Slots {
    what: &'static str,
    flag: &'static str,
    max: usize,
    /// Each running capture: its id and when it ends.
    running: Mutex<(u64, Vec<(u64, Instant)>)>,
}

/// A taken slot, given back when dropped (the capture ended or its client went away).
pub struct Slot<'a> {
    slots: &'a Slots,
    id: u64,
}

impl Slots {
    pub fn new(what: &'static str, flag: &'static str, max: usize) -> Self {
        Self {
            what,
            flag,
            max,
            running: Mutex::new((0, Vec::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<(u64, Instant)>)> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a capture of `length`, or the 503 that says when to come back.
    pub fn take(&self, length: Duration) -> Result<Slot<'_>, Response<Body>> {
        let mut running = self.lock();
        let now = Instant::now();
        if running.1.len() >= self.max {
            let first_end = running.1.iter().map(|(_, end)| *end).min().unwrap_or(now);
            // Whole seconds, rounded up, at least 1.
            let wait = first_end
                .saturating_duration_since(now)
                .as_millis()
                .div_ceil(1000)
                .max(1);
            let mut resp = responses::error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "{} {} captures already run (the limit, {}); the first ends in {wait} s: retry then",
                    self.max, self.what, self.flag
                ),
            );
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait as u64));
            return Err(resp);
        }
        running.0 += 1;
        let id = running.0;
        running.1.push((id, now + length));
        Ok(Slot { slots: self, id })
    }

    /// Captures running now.
    pub fn in_use(&self) -> usize {
        self.lock().1.len()
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.slots.lock().1.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_bound_answers_503_with_retry_after() {
        let slots = Slots::new("CPU", "--max-cpu-profiles", 2);
        let a = slots.take(Duration::from_secs(9)).unwrap();
        let _b = slots.take(Duration::from_secs(3)).unwrap();
        let refused = slots.take(Duration::from_secs(1)).err().unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[RETRY_AFTER], "3");
        drop(a);
        assert_eq!(slots.in_use(), 1);
        assert!(slots.take(Duration::from_secs(1)).is_ok());
    }
}
