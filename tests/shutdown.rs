//! Graceful shutdown on SIGTERM/SIGINT, and the healthcheck subcommand's exit codes.
mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{Server, get, run_to_end};

/// A request that stays in flight for `secs` seconds: a trace capture.
fn slow_request(srv: &Server, secs: u64) -> thread::JoinHandle<Option<common::Reply>> {
    let addr = srv.addr;
    let h = thread::spawn(move || {
        std::panic::catch_unwind(|| get(addr, &format!("/debug/pprof/trace?seconds={secs}"))).ok()
    });
    srv.wait_for_log("trace capture started");
    h
}

#[test]
fn sigterm_lets_in_flight_requests_finish_and_readyz_turns_503() {
    let mut srv = Server::start(&["--drain-delay", "1500ms", "--shutdown-grace", "10s"]);
    let slow = slow_request(&srv, 3);
    srv.signal("TERM");
    srv.wait_for_log("shutting down");
    // During the drain delay new connections are still accepted and /readyz says 503.
    let r = get(srv.addr, "/readyz");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(get(srv.addr, "/healthz").status, 200);
    let reply = slow.join().unwrap().expect("in-flight request completed");
    assert_eq!(reply.status, 200);
    assert!(reply.text().contains("traceEvents"));
    let status = srv.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", srv.log());
}

#[test]
fn sigterm_without_drain_delay_stops_accepting_at_once() {
    let mut srv = Server::start(&["--shutdown-grace", "10s"]);
    let slow = slow_request(&srv, 2);
    srv.signal("TERM");
    srv.wait_for_log("shutting down");
    // Bounded retry: the accept loop stops within moments of the signal.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect_timeout(&srv.addr, Duration::from_secs(1)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        slow.join()
            .unwrap()
            .expect("in-flight request completed")
            .status,
        200
    );
    assert_eq!(srv.wait_exit(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn idle_server_exits_zero_on_sigint() {
    let mut srv = Server::start(&[]);
    let started = Instant::now();
    srv.signal("INT");
    assert_eq!(srv.wait_exit(Duration::from_secs(5)).code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn grace_period_end_cuts_off_and_exits_nonzero() {
    let mut srv = Server::start(&["--shutdown-grace", "1s"]);
    let slow = slow_request(&srv, 30);
    let t = Instant::now();
    srv.signal("TERM");
    let status = srv.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", srv.log());
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(srv.log().contains("requests_cut_off=1"), "{}", srv.log());
    // The cut-off client sees its connection end without a 200.
    assert!(slow.join().unwrap().is_none_or(|r| r.status != 200));
}

#[test]
fn second_signal_exits_at_once() {
    let mut srv = Server::start(&["--shutdown-grace", "60s"]);
    let _slow = slow_request(&srv, 30);
    srv.signal("TERM");
    srv.wait_for_log("shutting down");
    let t = Instant::now();
    srv.signal("INT");
    let status = srv.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", srv.log());
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn healthcheck_exit_codes() {
    let srv = Server::start(&["--debug-addr", "127.0.0.1:0"]);
    let port = srv.port().to_string();
    let (code, out, _) = run_to_end(
        &["healthcheck", "--listen", "127.0.0.1", "--port", &port],
        &[],
    );
    assert_eq!(code, Some(0));
    assert!(out.contains("healthy"), "{out}");
    // Same configuration source as the server: the env var.
    let (code, _, _) = run_to_end(&["healthcheck"], &[("MY_SERVICE_PORT", &port)]);
    assert_eq!(code, Some(0));

    // Something that answers, but not 200 ok: the debug-only listener 404s /healthz.
    let debug_port = srv.debug_addr.unwrap().port().to_string();
    let (code, _, err) = run_to_end(&["healthcheck", "--port", &debug_port], &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("404"), "{err}");

    // Nothing listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free_port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let (code, _, err) = run_to_end(&["healthcheck", "--port", &free_port], &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("unhealthy") && err.contains("cannot connect"),
        "{err}"
    );

    // A peer that accepts but never answers: the timeout applies.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port().to_string();
    let t = Instant::now();
    let (code, _, err) = run_to_end(
        &["healthcheck", "--port", &mute_port, "--timeout", "500ms"],
        &[],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("no answer within"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5));
}
