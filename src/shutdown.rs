//! Graceful shutdown as PID 1: the first SIGTERM/SIGINT turns /readyz to 503, stops accepting
//! (after the optional drain delay) and lets in-flight requests finish within the grace period;
//! a second signal or the end of the grace period exits at once.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::server::Server;

pub struct Plan {
    pub grace: Duration,
    pub drain_delay: Duration,
}

/// SIGTERM and SIGINT handlers. Installed before serving: as PID 1 an unhandled SIGTERM is
/// ignored by the kernel, and elsewhere it would kill the process without draining.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn install() -> Result<Self, String> {
        let watch = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| format!("cannot install the {name} handler: {e}"))
        };
        Ok(Self {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            int: watch(SignalKind::interrupt(), "SIGINT")?,
        })
    }
}

/// Waits for the first signal, then runs the shutdown sequence and says how the process should exit.
pub async fn on_signal(server: &Server, plan: Plan, signals: Signals) -> ExitCode {
    let Signals { mut term, mut int } = signals;
    let first = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    let deadline = tokio::time::Instant::now() + plan.grace;
    server.app().ready.store(false, Ordering::Release);
    tracing::info!(
        signal = first,
        grace = ?plan.grace,
        drain_delay = ?plan.drain_delay,
        in_flight = server.requests_in_flight(),
        "shutting down: /readyz now answers 503"
    );
    let second = async {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    let drained = async {
        tokio::time::sleep(plan.drain_delay).await;
        server.stop_accepting();
        server.drain_connections();
        server.all_connections_closed().await;
    };
    let outcome = tokio::select! {
        _ = drained => None,
        _ = tokio::time::sleep_until(deadline) => Some("grace period over"),
        signal = second => Some(signal),
    };
    let cut_off = server.requests_in_flight();
    match outcome {
        None => {
            tracing::info!("all connections closed; exiting");
            ExitCode::SUCCESS
        }
        Some(why) if cut_off == 0 => {
            tracing::info!(reason = why, "exiting now; no request was in flight");
            ExitCode::SUCCESS
        }
        Some(why) => {
            tracing::warn!(
                reason = why,
                requests_cut_off = cut_off,
                "exiting now; requests cut off"
            );
            ExitCode::FAILURE
        }
    }
}
