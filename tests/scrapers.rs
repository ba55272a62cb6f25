//! Conformance with the clients production points at /debug/pprof: Parca's and Grafana
//! Alloy's default scrape configurations at once, plus a person's `go tool pprof`, for 60 s
//! under keep-alive load (see common::scrapers). Every scrape must be a 200 that `go tool pprof
//! -raw` reads, throughput while scraping at least 90 % of without, a probe on a fresh
//! connection answered within 100 ms the whole time (no worker ever stops), and SIGTERM
//! afterwards must end the process within 1 s. On the release binary (`make static-test`;
//! ignored otherwise). `SCRAPE_SECONDS` lengthens the window (`make attack` runs 120 s).
mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::scrapers::{self, Plan};

#[test]
#[ignore = "needs the release binary: make static-test"]
fn parca_alloy_and_a_person_at_once_under_load() {
    let seconds: u64 = std::env::var("SCRAPE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut srv = Server::start(&[]);
    let plan = Plan {
        scraping: Duration::from_secs(seconds),
        baseline: Duration::from_secs(10),
        load_connections: 8,
        probe_limit: scrapers::PROBE_LIMIT,
        throughput_share: Some(scrapers::THROUGHPUT_SHARE),
    };
    let outcome = scrapers::run(srv.addr, &plan);
    println!("{}", outcome.table());
    srv.signal("TERM");
    let t = Instant::now();
    let status = srv.wait_exit(Duration::from_secs(15));
    let exit = t.elapsed();
    println!(
        "SIGTERM to exit: {:.0} ms ({status})",
        exit.as_secs_f64() * 1000.0
    );
    let mut problems = outcome.problems.clone();
    if exit > Duration::from_secs(1) || !status.success() {
        problems.push(format!(
            "SIGTERM with nothing in flight: {status} after {exit:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\n{}\nlog tail:\n{}",
        problems.join("\n"),
        outcome.table(),
        srv.log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
