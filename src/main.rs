//! httpserver: health and readiness endpoints, pprof-compatible profiling, graceful shutdown.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use clap::error::ErrorKind;

use httpserver::config::{self, Cli, Command, DebugPlacement, Settings};
use httpserver::debug::trace_recorder::TraceRecorder;
use httpserver::debug::{Debug, Limits};
use httpserver::profiler::heap::Sampling;
use httpserver::routes::{App, Endpoints};
use httpserver::server::{ConnLimits, Server};
use httpserver::{healthcheck, listener, profiler, shutdown, telemetry};

/// The system allocator with Go-style heap sampling (see profiler::heap).
#[global_allocator]
static ALLOC: Sampling<std::alloc::System> = Sampling(std::alloc::System);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("httpserver: error: {}", config::describe_parse_error(&e));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Healthcheck { timeout }) => healthcheck::run(&cli.settings, timeout),
        None => match serve(cli.settings) {
            Ok(code) => code,
            Err(msg) => {
                eprintln!("httpserver: error: {msg}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(settings: Settings) -> Result<ExitCode, String> {
    let recorder = telemetry::init(settings.verbosity, settings.log_format)?;
    profiler::heap::set_rate(settings.heap_sample_rate as usize);
    let placement = settings.debug_placement();
    // Bind before starting the runtime so a bad address fails fast with the setting's name.
    let main_listener = listener::bind(settings.main_addr(), "--listen/--port/MY_SERVICE_PORT")?;
    let debug_listener = match placement {
        DebugPlacement::Separate(addr) => Some(listener::bind(addr, "--debug-addr")?),
        _ => None,
    };
    // One worker (a container limited to one CPU, or --workers 1): the current-thread
    // scheduler skips work-stealing bookkeeping and cross-thread wake-ups on every request.
    let workers = settings.worker_threads();
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    let runtime = builder
        .thread_name("httpserver-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(run(settings, recorder, main_listener, debug_listener))
}

async fn run(
    settings: Settings,
    recorder: TraceRecorder,
    main_listener: std::net::TcpListener,
    debug_listener: Option<std::net::TcpListener>,
) -> Result<ExitCode, String> {
    let signals = shutdown::Signals::install()?;
    let app = Arc::new(App {
        ready: AtomicBool::new(true),
        debug: Debug::new(
            Limits {
                max_seconds: settings.max_profile_seconds,
                max_trace_bytes: settings.max_trace_bytes as usize,
            },
            recorder,
        ),
    });
    let server = Server::new(
        app,
        ConnLimits {
            header_read_timeout: settings.header_read_timeout,
            idle_timeout: settings.idle_timeout,
            max_header_bytes: settings.max_header_bytes,
            max_connections: settings.max_connections,
        },
    );
    let to_tokio = |l: std::net::TcpListener| {
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        let l = tokio::net::TcpListener::from_std(l).map_err(|e| e.to_string())?;
        Ok::<_, String>((l, addr))
    };
    let (main_listener, main_addr) = to_tokio(main_listener)?;
    let debug = match debug_listener {
        Some(l) => Some(to_tokio(l)?),
        None => None,
    };
    let placement = settings.debug_placement();
    let debug_desc = match (&debug, placement) {
        (Some((_, addr)), _) => addr.to_string(),
        (None, DebugPlacement::Off) => "off".to_owned(),
        (None, _) => "main port".to_owned(),
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        listen = %main_addr,
        debug = %debug_desc,
        workers = settings.worker_threads(),
        shutdown_grace = %humantime::format_duration(settings.shutdown_grace),
        drain_delay = %humantime::format_duration(settings.drain_delay),
        header_read_timeout = %humantime::format_duration(settings.header_read_timeout),
        idle_timeout = %humantime::format_duration(settings.idle_timeout),
        max_header_bytes = settings.max_header_bytes,
        max_connections = settings.max_connections,
        max_profile_seconds = settings.max_profile_seconds,
        max_trace_bytes = settings.max_trace_bytes,
        heap_sample_rate = settings.heap_sample_rate,
        log_format = %settings.log_format,
        verbosity = settings.verbosity,
        "httpserver started"
    );
    let main_endpoints = Endpoints::Main {
        debug: placement == DebugPlacement::MainPort,
    };
    tokio::spawn(server.clone().accept_loop(main_listener, main_endpoints));
    if let Some((l, _)) = debug {
        tokio::spawn(server.clone().accept_loop(l, Endpoints::DebugOnly));
    }
    let plan = shutdown::Plan {
        grace: settings.shutdown_grace,
        drain_delay: settings.drain_delay,
    };
    Ok(shutdown::on_signal(&server, plan, signals).await)
}
