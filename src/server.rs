//! `run`: the server from bound listeners to its end. Starts the accept loops, serves until a
//! stop request, then runs the shutdown sequence and says how the process should end. The
//! binary feeds it signals; tests can run it in-process with a channel of their own.

use std::net::SocketAddr;

use crate::Error;
use crate::accept::Acceptor;
use crate::config::{DebugPlacement, Settings};
use crate::connection::{Shared, Timeouts};
use crate::debug::trace_recorder::TraceRecorder;
use crate::debug::{Debug, Limits};
use crate::lifecycle::Lifecycle;
use crate::routes::{App, Endpoints};
use crate::shutdown::{self, Outcome, Plan, StopRequests};

pub struct Config {
    pub settings: Settings,
    /// Where `/debug/pprof/trace` reads events from (telemetry installs it as a layer).
    pub trace_recorder: TraceRecorder,
    /// The connection limit in force (`--max-connections`, lowered to fit the open-files limit).
    pub max_connections: u32,
}

impl Config {
    pub fn new(settings: Settings) -> Self {
        let max_connections = settings.max_connections;
        Self {
            settings,
            trace_recorder: TraceRecorder::default(),
            max_connections,
        }
    }
}

/// The bound listening sockets (see `listener::bind`).
pub struct Listeners {
    pub main: std::net::TcpListener,
    pub debug: Option<std::net::TcpListener>,
}

/// Serves until the first stop request, then drains; returns how the process should end.
pub async fn run(
    config: Config,
    listeners: Listeners,
    stop: StopRequests,
) -> Result<Outcome, Error> {
    let s = &config.settings;
    // One of each per process, alive until it exits: leaked so every request can borrow them
    // without counting references.
    let lifecycle: &'static Lifecycle = Box::leak(Box::default());
    let app: &'static App = Box::leak(Box::new(App {
        lifecycle,
        debug: Debug::new(
            Limits {
                max_seconds: s.max_profile_seconds,
                max_trace_bytes: s.max_trace_bytes as usize,
                max_cpu_profiles: usize::from(s.max_cpu_profiles),
            },
            config.trace_recorder.clone(),
        ),
        body_read_timeout: s.body_read_timeout,
    }));
    let timeouts = Timeouts {
        header_read: s.header_read_timeout,
        idle: s.idle_timeout,
        write: s.write_timeout,
        close: s.header_read_timeout,
    };
    let acceptor = Acceptor::new(
        config.max_connections as usize,
        s.max_header_bytes,
        timeouts,
    );
    // Listed before the log line and the first accepted connection: a goroutine profile taken
    // at once (a delta's baseline included) already sees this task.
    let _main = crate::tasks::register_fixed(
        "httpserver::server::run",
        "serving, waiting for SIGTERM or SIGINT",
    );
    let (main, main_addr) = to_tokio(listeners.main)?;
    let debug = listeners.debug.map(to_tokio).transpose()?;
    log_start(&config, main_addr, debug.as_ref().map(|(_, addr)| *addr));
    let shared = |endpoints| Shared {
        app,
        lifecycle,
        endpoints,
    };
    let main_endpoints = Endpoints::Main {
        debug: s.debug_placement() == DebugPlacement::MainPort,
    };
    tokio::spawn(acceptor.clone().run(main, shared(main_endpoints)));
    if let Some((listener, _)) = debug {
        tokio::spawn(acceptor.run(listener, shared(Endpoints::DebugOnly)));
    }
    let plan = Plan {
        grace: s.shutdown_grace,
        drain_delay: s.drain_delay,
    };
    Ok(shutdown::on_stop(lifecycle, plan, stop).await)
}

fn to_tokio(l: std::net::TcpListener) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
    let addr = l.local_addr().map_err(|e| Error::Listener(e.to_string()))?;
    let l = tokio::net::TcpListener::from_std(l).map_err(|e| Error::Listener(e.to_string()))?;
    Ok((l, addr))
}

fn log_start(config: &Config, main: SocketAddr, debug: Option<SocketAddr>) {
    let s = &config.settings;
    let debug_at = match (debug, s.debug_placement()) {
        (Some(addr), _) => addr.to_string(),
        (None, DebugPlacement::Off) => "off".to_owned(),
        (None, _) => "main port".to_owned(),
    };
    let d = |d| humantime::format_duration(d).to_string();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %main,
        debug = %debug_at,
        workers = s.worker_threads(),
        shutdown_grace = %d(s.shutdown_grace),
        drain_delay = %d(s.drain_delay),
        header_read_timeout = %d(s.header_read_timeout),
        body_read_timeout = %d(s.body_read_timeout),
        write_timeout = %d(s.write_timeout),
        idle_timeout = %d(s.idle_timeout),
        max_header_bytes = s.max_header_bytes,
        max_connections = config.max_connections,
        max_profile_seconds = s.max_profile_seconds,
        max_cpu_profiles = s.max_cpu_profiles,
        max_trace_bytes = s.max_trace_bytes,
        heap_sample_rate = s.heap_sample_rate,
        log_format = %s.log_format,
        verbosity = s.verbosity,
        "httpserver started"
    );
}
