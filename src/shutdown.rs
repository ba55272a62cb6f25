//! Graceful shutdown as PID 1. Signals become stop requests; the first turns /readyz to 503,
//! stops accepting (after the optional drain delay) and lets in-flight requests finish within
//! the grace period; a second request or the end of the grace period exits at once.

use std::process::ExitCode;
use std::time::Duration;

#[cfg(unix)]
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use crate::lifecycle::Lifecycle;

pub struct Plan {
    pub grace: Duration,
    pub drain_delay: Duration,
}

/// Where stop requests come from: `Signals::forward` in the binary, a test's sender in-process.
pub type StopRequests = mpsc::UnboundedReceiver<&'static str>;

/// SIGTERM and SIGINT handlers. Installed before serving: as PID 1 an unhandled SIGTERM is
/// ignored by the kernel, and elsewhere it would kill the process without draining.
#[cfg(unix)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

/// Windows has no SIGTERM: Ctrl-C (and Ctrl-Break) stop the service there.
#[cfg(windows)]
pub struct Signals;

#[cfg(windows)]
impl Signals {
    pub fn install() -> Result<Self, crate::Error> {
        Ok(Self)
    }

    pub fn forward(self) -> StopRequests {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if tx.send("Ctrl-C").is_err() {
                    break;
                }
            }
        });
        rx
    }
}

#[cfg(unix)]
impl Signals {
    pub fn install() -> Result<Self, crate::Error> {
        let watch = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|e| crate::Error::Signal {
                name,
                reason: e.to_string(),
            })
        };
        Ok(Self {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            int: watch(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// Turns every signal into a stop request, named after it.
    pub fn forward(mut self) -> StopRequests {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = self.term.recv() => "SIGTERM",
                    _ = self.int.recv() => "SIGINT",
                };
                if tx.send(name).is_err() {
                    break;
                }
            }
        });
        rx
    }
}

/// How the process ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every connection closed (or nothing was in flight when the wait was cut short).
    Clean,
    /// Requests were still in flight when the grace period ended or a second request came.
    CutOff { requests: usize },
}

impl Outcome {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::CutOff { .. } => ExitCode::FAILURE,
        }
    }
}

/// Waits for the first stop request, then runs the shutdown sequence.
pub async fn on_stop(lifecycle: &Lifecycle, plan: Plan, mut stop: StopRequests) -> Outcome {
    // A closed channel means nobody will ask: serve on.
    let Some(first) = stop.recv().await else {
        return std::future::pending().await;
    };
    let deadline = tokio::time::Instant::now() + plan.grace;
    lifecycle.begin_shutdown();
    tracing::info!(
        signal = first,
        grace = ?plan.grace,
        drain_delay = ?plan.drain_delay,
        in_flight = lifecycle.requests_in_flight(),
        "shutting down: /readyz now answers 503"
    );
    let drained = async {
        tokio::time::sleep(plan.drain_delay).await;
        lifecycle.stop_accepting();
        lifecycle.drain();
        lifecycle.connections_closed().await;
    };
    let second = async {
        match stop.recv().await {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    };
    let cut_short = tokio::select! {
        _ = drained => None,
        _ = tokio::time::sleep_until(deadline) => Some("grace period over"),
        signal = second => Some(signal),
    };
    let in_flight = lifecycle.requests_in_flight();
    match cut_short {
        None => {
            tracing::info!("all connections closed; exiting");
            Outcome::Clean
        }
        Some(why) if in_flight == 0 => {
            tracing::info!(reason = why, "exiting now; no request was in flight");
            Outcome::Clean
        }
        Some(why) => {
            tracing::warn!(
                reason = why,
                requests_cut_off = in_flight,
                "exiting now; requests cut off"
            );
            Outcome::CutOff {
                requests: in_flight,
            }
        }
    }
}
