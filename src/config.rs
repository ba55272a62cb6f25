//! Command line and environment: flags over environment over defaults.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const VERBOSITY_HELP: &str = "\
Verbosity, like glog's -v. 0: info and above (startup, warnings, errors); \
1-2: debug for httpserver (adds one access-log line per request); 3: trace for httpserver \
and debug for its libraries (hyper, h2); 4 and above: trace for everything. \
RUST_LOG, when set, overrides this with a tracing filter directive.";

#[derive(Debug, Parser)]
#[command(
    name = "httpserver",
    version,
    about = "Small HTTP service: health, readiness and pprof-style profiling"
)]
#[command(propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// GET /healthz on 127.0.0.1 at the configured port; exit 0 on "200 ok", 1 otherwise.
    /// For container HEALTHCHECKs in images without a shell.
    Healthcheck {
        /// How long to wait for the whole check.
        #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// TCP port to serve on (0 picks a free one).
    #[arg(
        long,
        short = 'p',
        env = "MY_SERVICE_PORT",
        default_value_t = 80,
        global = true
    )]
    pub port: u16,

    /// IP address to bind. The default, "::", is every interface, IPv4 and IPv6
    /// (falls back to 0.0.0.0 where the host has no IPv6).
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V6(Ipv6Addr::UNSPECIFIED), global = true)]
    pub listen: IpAddr,

    /// Serve /debug/pprof/* on this separate address (e.g. 127.0.0.1:6060) instead of the main port.
    #[arg(long, value_name = "ADDR", global = true, conflicts_with = "no_debug")]
    pub debug_addr: Option<SocketAddr>,

    /// Turn the /debug/pprof/* endpoints off (they answer 404).
    #[arg(long, global = true)]
    pub no_debug: bool,

    /// Longest CPU profile, flame graph or trace capture a client may ask for, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_profile_seconds: u64,

    /// CPU profiles and flame graphs that may be captured at once (each gets the samples of its
    /// own window); beyond it a capture gets 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 4, global = true,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub max_cpu_profiles: u16,

    /// Largest trace capture (/debug/pprof/trace), in bytes of JSON; events beyond it are
    /// counted as dropped.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024, global = true,
          value_parser = clap::value_parser!(u64).range(64 * 1024..=1024 * 1024 * 1024))]
    pub max_trace_bytes: u64,

    /// Heap profile sampling: on average one sampled allocation per this many bytes allocated,
    /// like Go's runtime.MemProfileRate (0 turns heap profiling off).
    #[arg(long, value_name = "BYTES", default_value_t = profiler::DEFAULT_HEAP_RATE as u64, global = true,
          value_parser = clap::value_parser!(u64).range(0..=1024 * 1024 * 1024))]
    pub heap_sample_rate: u64,

    #[arg(short = 'v', long = "verbosity", value_name = "N", default_value_t = 0, global = true,
          help = VERBOSITY_HELP)]
    pub verbosity: u8,

    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// After SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, global = true)]
    pub shutdown_grace: Duration,

    /// After SIGTERM/SIGINT, keep accepting connections this long while /readyz answers 503,
    /// so load balancers can stop sending traffic first (0s: stop accepting at once, as Go does).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, global = true)]
    pub drain_delay: Duration,

    /// Time a client has to send a complete request head, counted from accept (protocol sniff
    /// and HTTP/2 preface included) or, on a kept-alive HTTP/1 connection, from the first byte
    /// of the next head (slowloris guard). Also how long a graceful close may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_nonzero_duration, global = true)]
    pub header_read_timeout: Duration,

    /// A request body that makes no progress for this long is cut off (408).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_nonzero_duration, global = true)]
    pub body_read_timeout: Duration,

    /// A response the client takes no bytes of for this long (it stopped reading, or its
    /// HTTP/2 window stays shut) is abandoned and the connection dropped.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_nonzero_duration, global = true)]
    pub write_timeout: Duration,

    /// Close a connection that has had no request in flight for this long.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_nonzero_duration, global = true)]
    pub idle_timeout: Duration,

    /// Largest request head accepted, in bytes (HTTP/1 answers 431 beyond it).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024, global = true,
          value_parser = clap::value_parser!(u32).range(8192..=16 * 1024 * 1024))]
    pub max_header_bytes: u32,

    /// Connections served at once; beyond it new ones get 503 and are closed.
    #[arg(long, value_name = "N", default_value_t = 1024, global = true,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Runtime worker threads (default: the CPUs this process may run on).
    #[arg(long, value_name = "N", global = true,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Where the /debug/pprof endpoints live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugPlacement {
    MainPort,
    Separate(SocketAddr),
    Off,
}

impl Settings {
    pub fn main_addr(&self) -> SocketAddr {
        SocketAddr::new(self.listen, self.port)
    }

    pub fn debug_placement(&self) -> DebugPlacement {
        match (self.no_debug, self.debug_addr) {
            (true, _) => DebugPlacement::Off,
            (false, Some(addr)) => DebugPlacement::Separate(addr),
            (false, None) => DebugPlacement::MainPort,
        }
    }

    pub fn worker_threads(&self) -> usize {
        self.workers
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e} (use a number with a unit, e.g. 10s, 500ms, 1m)"))
}

fn parse_nonzero_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be greater than zero".to_owned()),
        d => Ok(d),
    }
}

/// Turns a clap error into the one line we print; says so when the bad value came from the environment.
pub fn describe_parse_error(err: &clap::Error) -> String {
    let rendered = err.to_string();
    // Keep the error and its hints (e.g. "[possible values: ...]") on one line; drop usage and tips.
    let joined = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let first = joined.strip_prefix("error: ").unwrap_or(&joined);
    let from_env = first.contains("--port")
        && std::env::var_os("MY_SERVICE_PORT").is_some()
        && !std::env::args().any(|a| a == "--port" || a == "-p" || a.starts_with("--port="));
    if from_env {
        format!("{first} (value taken from MY_SERVICE_PORT)")
    } else {
        first.to_owned()
    }
}
