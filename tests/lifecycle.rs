//! The connection lifecycle against clients that stall, stay silent, ignore a GOAWAY, stop
//! reading or half-close: each connection ends within its deadline (or gets its answer), costs
//! no CPU while it waits, and everyone else is served. Each test is bounded in time and reads
//! the server's CPU time from /proc; none measures throughput.
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::h2_raw::{self, END_HEADERS, END_STREAM, HEADERS, RST_STREAM};
use common::{Server, connect, cpu_seconds, get, read_until_closed};

/// A waiting server spends next to nothing; a spinning one a whole core (1 s per s).
const IDLE_CPU_BOUND: f64 = 0.3;

/// CPU seconds the server spends while `f` runs.
fn cpu_during<T>(srv: &Server, f: impl FnOnce() -> T) -> (T, f64) {
    let before = cpu_seconds(srv.child.id());
    let out = f();
    (out, cpu_seconds(srv.child.id()) - before)
}

#[test]
fn a_request_that_outlives_the_idle_timeout_costs_no_cpu() {
    let srv = Server::start(&["--idle-timeout", "1s"]);
    let addr = srv.addr;
    let capture = thread::spawn(move || get(addr, "/debug/pprof/profile?seconds=4"));
    thread::sleep(Duration::from_millis(1500)); // past the idle timeout, capture running
    let ((), cpu) = cpu_during(&srv, || thread::sleep(Duration::from_secs(2)));
    assert!(
        cpu < IDLE_CPU_BOUND,
        "{cpu:.2} s of CPU in 2 s while a capture waits"
    );
    let reply = capture.join().unwrap();
    assert_eq!(reply.status, 200);
    assert!(!reply.body.is_empty());
}

#[test]
fn a_stalled_http1_body_gets_408_within_the_body_deadline_and_costs_no_cpu() {
    let srv = Server::start(&["--body-read-timeout", "2s"]);
    let mut s = connect(srv.addr);
    // Declares 100 bytes and sends none.
    s.write_all(b"POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let ((got, took), cpu) =
        cpu_during(&srv, || read_until_closed(&mut s, Duration::from_secs(10)));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(text.contains("body-read-timeout"), "{text:?}");
    assert!(
        took > Duration::from_millis(1500) && took < Duration::from_secs(5),
        "answered after {took:?}"
    );
    assert!(
        cpu < IDLE_CPU_BOUND,
        "{cpu:.2} s of CPU while the body stalled"
    );
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

#[test]
fn a_stalled_http2_body_is_answered_within_the_body_deadline() {
    let srv = Server::start(&["--body-read-timeout", "2s"]);
    let mut s = h2_raw::open(srv.addr, &[]);
    let block =
        h2_raw::request_headers("POST", "/debug/pprof/symbol", &[("content-length", "100")]);
    s.write_all(&h2_raw::frame(HEADERS, END_HEADERS, 1, &block))
        .unwrap();
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answered = None;
    while let Some((kind, _, stream, _)) = h2_raw::read_frame(&mut s) {
        if stream == 1 && (kind == HEADERS || kind == RST_STREAM) {
            answered = Some(start.elapsed());
            break;
        }
    }
    let took = answered.expect("no response or reset for the stalled stream within 10 s");
    assert!(
        took > Duration::from_millis(1500) && took < Duration::from_secs(5),
        "answered after {took:?}"
    );
}

#[test]
fn silent_and_half_preface_connections_are_cut_at_the_header_deadline() {
    // Four slots, all taken by clients that say nothing or half an HTTP/2 preface.
    let srv = Server::start(&["--header-read-timeout", "1s", "--max-connections", "4"]);
    let start = Instant::now();
    let mut clients: Vec<TcpStream> = (0..4).map(|_| connect(srv.addr)).collect();
    clients[2].write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    clients[3].write_all(&h2_raw::PREFACE[..20]).unwrap();
    for c in &mut clients {
        let (got, _) = read_until_closed(c, Duration::from_secs(10));
        assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(4),
            "a silent client kept {took:?}"
        );
    }
    // The slots are free again.
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

#[test]
fn an_http2_client_that_never_acks_the_goaway_is_dropped() {
    let srv = Server::start(&["--idle-timeout", "1s", "--header-read-timeout", "1s"]);
    // Preface and SETTINGS, then it reads but never answers: no SETTINGS ack, no PING ack.
    let mut s = h2_raw::open(srv.addr, &[]);
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut goaway = false;
    while let Some((kind, ..)) = h2_raw::read_frame(&mut s) {
        goaway |= kind == h2_raw::GOAWAY;
        if start.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let took = start.elapsed();
    assert!(goaway, "no GOAWAY was sent");
    // Idle (1 s), then the close deadline (1 s) for the GOAWAY/PING exchange.
    assert!(took < Duration::from_secs(5), "connection kept {took:?}");
}

#[test]
fn an_http2_client_whose_window_stays_shut_is_dropped_at_the_write_deadline() {
    let srv = Server::start(&["--write-timeout", "1s"]);
    // A zero window: the response's DATA can never be sent.
    let mut s = h2_raw::open(srv.addr, &[(h2_raw::INITIAL_WINDOW_SIZE, 0)]);
    let block = h2_raw::request_headers("GET", "/healthz", &[]);
    s.write_all(&h2_raw::frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
        .unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(10));
    assert!(took < Duration::from_secs(5), "connection kept {took:?}");
}

#[test]
fn an_http1_client_that_stops_reading_is_dropped_at_the_write_deadline() {
    let srv = Server::start(&["--write-timeout", "1s"]);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap(); // fills fast
    socket.connect(&srv.addr.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    // Pipelined requests, never reading a response: the server's writes stall.
    let writer = thread::spawn(move || {
        let start = Instant::now();
        let batch = b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
        while start.elapsed() < Duration::from_secs(15) {
            if s.write_all(&batch).is_err() {
                return Some(start.elapsed());
            }
        }
        None
    });
    let took = writer
        .join()
        .unwrap()
        .expect("the server never dropped the stalled client");
    // Filling the buffers takes a moment, then 1 s without progress.
    assert!(took < Duration::from_secs(8), "dropped only after {took:?}");
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

fn get_then_half_close(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    let mut s = connect(addr);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn every_request_followed_by_a_half_close_is_answered() {
    let srv = Server::start(&[]);
    let addr = srv.addr;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                (0..150)
                    .filter(|_| !get_then_half_close(addr, "/healthz").starts_with(b"HTTP/1.1 200"))
                    .count()
            })
        })
        .collect();
    let lost: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(lost, 0, "{lost} of 600 half-closed requests got no answer");
}

#[test]
fn a_capture_runs_to_its_end_after_the_clients_half_close() {
    let srv = Server::start(&[]);
    let start = Instant::now();
    let got = get_then_half_close(srv.addr, "/debug/pprof/profile?seconds=2");
    let reply = common::parse_reply(&got, false).expect("a reply");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(start.elapsed() >= Duration::from_millis(1900));
    common::decode(&reply.body);
}

#[test]
fn http11_requests_need_exactly_one_host() {
    let srv = Server::start(&[]);
    let status = |req: &str| {
        let mut s = connect(srv.addr);
        s.write_all(req.as_bytes()).unwrap();
        let (got, _) = read_until_closed(&mut s, Duration::from_secs(5));
        common::parse_reply(&got, false).map(|r| r.status)
    };
    let one = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let none = "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    let two = "GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n";
    let http10 = "GET /healthz HTTP/1.0\r\n\r\n";
    assert_eq!(status(one), Some(200));
    assert_eq!(status(none), Some(400));
    assert_eq!(status(two), Some(400));
    assert_eq!(status(http10), Some(200));
}

/// Starts the server with its open-files limit set to `soft`/`hard` (as `ulimit -n` would).
fn start_with_open_files(soft: u64, hard: u64, args: &[&str]) -> Server {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(common::binary());
    cmd.args(["--port", "0", "--listen", "127.0.0.1"])
        .args(args);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Server::from_command(cmd)
}

#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let srv = start_with_open_files(64, 4096, &[]);
    srv.wait_for_log("open files limit");
    let line = srv
        .log()
        .lines()
        .find(|l| l.contains("open files limit"))
        .unwrap()
        .to_owned();
    assert_eq!(common::field(&line, "soft"), "4096", "{line}");
    assert_eq!(common::field(&line, "was"), "64", "{line}");
    assert!(!srv.log().contains("below --max-connections"));
}

#[test]
fn under_a_low_open_files_limit_excess_clients_get_503_not_a_hang() {
    // Soft = hard = 64: nothing to raise; 1000 connections cannot fit.
    let srv = start_with_open_files(
        64,
        64,
        &["--max-connections", "1000", "--header-read-timeout", "60s"],
    );
    srv.wait_for_log("below --max-connections");
    let serving: u64 = common::field(
        srv.log()
            .lines()
            .find(|l| l.contains("below --max-connections"))
            .unwrap(),
        "serving_at_most",
    )
    .parse()
    .unwrap();
    // Fill every slot with a silent client, then some: each extra one is answered at once.
    let mut held = Vec::new();
    let mut answered_503 = 0;
    for _ in 0..serving + 10 {
        let mut s = connect(srv.addr);
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(n) if buf[..n].starts_with(b"HTTP/1.1 503") => answered_503 += 1,
            _ => held.push(s),
        }
    }
    assert_eq!(held.len() as u64, serving, "{answered_503} answered 503");
    assert_eq!(answered_503, 10);
    drop(held);
    // Slots free again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(srv.addr, "/healthz").status != 200 {
        assert!(Instant::now() < deadline, "slots never freed");
        thread::sleep(Duration::from_millis(50));
    }
}
