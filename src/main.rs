//! httpserver: health and readiness endpoints, pprof-compatible profiling, graceful shutdown.
//! This file parses the command line, sets up telemetry and the process (open-files limit,
//! runtime, signals) and binds; `httpserver::run` does the rest.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use httpserver::config::{self, Cli, Command, DebugPlacement, Settings};
use httpserver::{Config, Error, Listeners, Signals, fd_limit, healthcheck, listener, telemetry};
#[cfg(target_os = "linux")]
use profiler::heap::Sampling;

/// The system allocator (musl's, in the images) with Go-style heap sampling (see
/// the profiler crate's heap module).
#[cfg(all(target_os = "linux", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOC: Sampling<std::alloc::System> = Sampling(std::alloc::System);

/// mimalloc instead, for `make bench`'s allocator A/B only: it compiles C, which the images'
/// cross builds do without.
#[cfg(all(target_os = "linux", feature = "mimalloc"))]
#[global_allocator]
static ALLOC: Sampling<mimalloc::MiMalloc> = Sampling(mimalloc::MiMalloc);

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

fn serve(settings: Settings) -> Result<ExitCode, Error> {
    let trace_recorder = telemetry::init(settings.verbosity, settings.log_format)?;
    #[cfg(target_os = "linux")]
    profiler::heap::set_rate(settings.heap_sample_rate as usize);
    // Bind before starting the runtime so a bad address fails fast with the setting's name.
    let listeners = Listeners {
        main: listener::bind(settings.main_addr(), "--listen/--port/MY_SERVICE_PORT")?,
        debug: match settings.debug_placement() {
            DebugPlacement::Separate(addr) => Some(listener::bind(addr, "--debug-addr")?),
            _ => None,
        },
    };
    let max_connections = open_files(settings.max_connections)?;
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
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let config = Config {
        settings,
        trace_recorder,
        max_connections,
    };
    runtime.block_on(async {
        let stop = Signals::install()?.forward();
        let outcome = httpserver::run(config, listeners, stop).await?;
        Ok(outcome.exit_code())
    })
}

/// Raises the open-files limit and returns the connection limit that fits under it.
fn open_files(max_connections: u32) -> Result<u32, Error> {
    let files = fd_limit::raise()?;
    let fits = fd_limit::connections_that_fit(max_connections, files.soft);
    tracing::info!(
        soft = files.soft,
        hard = files.hard,
        was = files.was,
        "open files limit"
    );
    if fits < max_connections {
        tracing::warn!(
            open_files = files.soft,
            max_connections,
            serving_at_most = fits,
            "the open-files limit is below --max-connections plus {}: at most {fits} connections \
             are served at once and the next ones get 503 (raise `ulimit -n` or the container's \
             nofile limit to serve more)",
            fd_limit::RESERVED
        );
    }
    Ok(fits)
}
