//! Slow, oversized, malformed and excess clients: each is dealt with and everyone else is served.
mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Server, connect, get, read_until_closed};

#[test]
fn slowloris_is_cut_off_after_the_header_timeout() {
    let srv = Server::start(&["--header-read-timeout", "1s"]);
    let mut slow = connect(srv.addr);
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Others are served meanwhile.
    assert_eq!(get(srv.addr, "/healthz").status, 200);
    let (got, took) = read_until_closed(&mut slow, Duration::from_secs(8));
    assert!(
        took < Duration::from_secs(6),
        "slow client kept for {took:?}"
    );
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

#[test]
fn oversized_header_gets_431() {
    let srv = Server::start(&["--max-header-bytes", "8192"]);
    let mut s = connect(srv.addr);
    let big = "a".repeat(20_000);
    let req = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let _ = s.write_all(req.as_bytes());
    let (got, _) = read_until_closed(&mut s, Duration::from_secs(5));
    assert!(
        got.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

#[test]
fn malformed_requests_get_400_or_close() {
    let srv = Server::start(&[]);
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS ClientHello
    ] {
        let mut s = connect(srv.addr);
        s.write_all(junk).unwrap();
        let (got, _) = read_until_closed(&mut s, Duration::from_secs(5));
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 400"),
            "{junk:?} -> {:?}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(get(srv.addr, "/healthz").status, 200);
    }
}

#[test]
fn connections_beyond_the_limit_get_503_and_others_keep_working() {
    let srv = Server::start(&["--max-connections", "2"]);
    let held: Vec<_> = (0..2).map(|_| connect(srv.addr)).collect();
    // Give the server a moment to accept both (bounded).
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = connect(srv.addr);
    let (got, _) = read_until_closed(&mut extra, Duration::from_secs(5));
    assert!(
        got.starts_with(b"HTTP/1.1 503"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // A held connection still works.
    let mut first = held.into_iter().next().unwrap();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (got, _) = read_until_closed(&mut first, Duration::from_secs(5));
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // Once that one is closed, a new client is served again (retry: the slot frees asynchronously).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(srv.addr, "/healthz");
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed: {}", r.status);
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.wait_for_log("connection limit reached");
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let srv = Server::start(&["--idle-timeout", "1s", "--header-read-timeout", "30s"]);
    let mut s = connect(srv.addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let (rest, took) = read_until_closed(&mut s, Duration::from_secs(10));
    assert!(rest.is_empty());
    assert!(
        took < Duration::from_secs(5),
        "idle connection kept {took:?}"
    );
}
