//! Every endpoint and status, over real sockets.
mod common;

use std::io::{Read, Write};

use common::{Server, connect, get, parse_reply, request};

#[test]
fn healthz_get_and_head() {
    let srv = Server::start(&[]);
    let r = get(srv.addr, "/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    let r = request(srv.addr, "HEAD", "/healthz", b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("3"));
    assert!(
        r.body.is_empty(),
        "HEAD must not carry a body: {:?}",
        r.body
    );
}

#[test]
fn readyz_while_serving() {
    let srv = Server::start(&[]);
    let r = get(srv.addr, "/readyz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    assert_eq!(request(srv.addr, "HEAD", "/readyz", b"").status, 200);
}

#[test]
fn unknown_path_and_wrong_method() {
    let srv = Server::start(&[]);
    assert_eq!(get(srv.addr, "/nope").status, 404);
    assert_eq!(get(srv.addr, "/debug/pprof/nope").status, 404);
    for (method, path, allow) in [
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/readyz", "GET, HEAD"),
        ("POST", "/debug/pprof/profile", "GET, HEAD"),
        ("DELETE", "/debug/pprof/heap", "GET, HEAD"),
        ("PUT", "/debug/pprof/symbol", "GET, HEAD, POST"),
    ] {
        let r = request(srv.addr, method, path, b"");
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}

#[test]
fn pprof_index_lists_every_endpoint_with_a_command() {
    let srv = Server::start(&[]);
    let r = get(srv.addr, "/debug/pprof/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    for name in ["profile", "flamegraph", "symbol", "trace"] {
        assert!(
            html.contains(&format!("href=\"{name}\"")),
            "index lacks {name}: {html}"
        );
    }
    assert!(html.contains(&format!(
        "go tool pprof -top &#39;http://{}/debug/pprof/profile",
        srv.addr
    )));
    let r = get(srv.addr, "/debug/pprof");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/debug/pprof/"));
}

#[test]
fn index_escapes_the_host_header() {
    let srv = Server::start(&[]);
    let mut s = connect(srv.addr);
    s.write_all(b"GET /debug/pprof/ HTTP/1.1\r\nHost: a<b>\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let r = parse_reply(&raw, false).unwrap();
    if r.status == 200 {
        assert!(!r.text().contains("a<b>"));
    } else {
        assert_eq!(r.status, 400);
    }
}

#[test]
fn symbol_get_announces_symbols() {
    let srv = Server::start(&[]);
    let r = get(srv.addr, "/debug/pprof/symbol");
    assert_eq!((r.status, r.text().as_str()), (200, "num_symbols: 1\n"));
    let r = request(srv.addr, "POST", "/debug/pprof/symbol", b"0x0+nothex");
    assert_eq!((r.status, r.text().as_str()), (200, "num_symbols: 1\n"));
}

#[test]
fn symbol_body_over_limit_is_rejected() {
    let srv = Server::start(&[]);
    let big = vec![b'+'; 100 * 1024];
    let r = request(srv.addr, "POST", "/debug/pprof/symbol", &big);
    assert_eq!(r.status, 413);
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = Server::start(&[]);
    let mut s = connect(srv.addr);
    for _ in 0..3 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        let r = parse_reply(&buf[..n], false).expect("reply");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok\n"[..]));
    }
}

/// An HTTP/2 client connection (prior knowledge, as h2c clients speak it) to `addr`.
async fn h2_client(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

#[tokio::test]
async fn http2_prior_knowledge() {
    use http_body_util::{BodyExt, Empty};

    let srv = Server::start(&[]);
    let mut send = h2_client(srv.addr).await;
    for path in ["/healthz", "/readyz"] {
        let req = hyper::Request::get(format!("http://{}{path}", srv.addr))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.expect("h2 request");
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok\n");
    }
}

#[test]
fn no_debug_turns_pprof_off() {
    let srv = Server::start(&["--no-debug"]);
    assert_eq!(get(srv.addr, "/debug/pprof/").status, 404);
    assert_eq!(get(srv.addr, "/debug/pprof/profile?seconds=1").status, 404);
    assert_eq!(get(srv.addr, "/healthz").status, 200);
    assert!(srv.debug_addr.is_none());
}

#[test]
fn debug_addr_moves_pprof_to_its_own_listener() {
    let srv = Server::start(&["--debug-addr", "127.0.0.1:0"]);
    let debug = srv
        .debug_addr
        .expect("debug listener address in the startup line");
    assert_ne!(debug, srv.addr);
    assert_eq!(get(debug, "/debug/pprof/").status, 200);
    assert_eq!(get(debug, "/debug/pprof/symbol").status, 200);
    assert_eq!(get(debug, "/healthz").status, 404);
    assert_eq!(get(srv.addr, "/debug/pprof/").status, 404);
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

#[test]
fn startup_line_and_access_log() {
    let srv = Server::start(&["-v", "1"]);
    get(srv.addr, "/healthz");
    get(srv.addr, "/nope");
    srv.wait_for_log("path=/nope");
    let log = srv.log();
    let started = log
        .lines()
        .find(|l| l.contains("httpserver started"))
        .unwrap();
    assert!(
        started.contains(concat!("version=\"", env!("CARGO_PKG_VERSION"), "\"")),
        "{started}"
    );
    assert!(started.contains("shutdown_grace=10s"), "{started}");
    let access: Vec<_> = log.lines().filter(|l| l.contains(" DEBUG ")).collect();
    assert!(
        access.iter().any(|l| l.contains("method=GET")
            && l.contains("path=/healthz")
            && l.contains("status=200")
            && l.contains("latency_us=")),
        "{log}"
    );
    assert!(
        access
            .iter()
            .any(|l| l.contains("path=/nope") && l.contains("status=404")),
        "{log}"
    );
}

#[test]
fn default_verbosity_has_no_access_log() {
    let srv = Server::start(&[]);
    get(srv.addr, "/healthz");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!srv.log().contains("path=/healthz"), "{}", srv.log());
}

#[test]
fn json_log_format_is_one_object_per_line() {
    let srv = Server::start(&["--log-format", "json", "-v", "2"]);
    get(srv.addr, "/healthz");
    srv.wait_for_log("\"path\":\"/healthz\"");
    let log = srv.log();
    let mut saw_access = false;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        saw_access |= v["path"] == "/healthz" && v["status"] == 200;
    }
    assert!(saw_access, "{log}");
}

#[test]
fn default_listen_address_serves_ipv4_and_ipv6() {
    // The default "::" is dual-stack; on a host without IPv6 it falls back to 0.0.0.0.
    let srv = Server::start_exact(common::binary(), &["--port", "0"], &[]);
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], srv.port()));
    assert_eq!(get(v4, "/healthz").status, 200);
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        assert!(
            srv.addr.is_ipv6(),
            "expected the dual-stack [::] listener, got {}",
            srv.addr
        );
        let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, srv.port()));
        assert_eq!(get(v6, "/healthz").status, 200);
    }
}

/// Every answer, over both protocols: health and readiness, each debug endpoint, and the
/// errors (404, 405, 400, 301) say `Cache-Control: no-store`.
const EVERY_KIND: [(&str, &str, u16); 12] = [
    ("GET", "/healthz", 200),
    ("HEAD", "/readyz", 200),
    ("GET", "/debug/pprof/", 200),
    ("GET", "/debug/pprof/heap", 200),
    ("GET", "/debug/pprof/goroutine?debug=1", 200),
    ("GET", "/debug/pprof/cmdline", 200),
    ("GET", "/debug/pprof/profile?seconds=1", 200),
    ("POST", "/debug/pprof/symbol", 200),
    ("GET", "/nothing-here", 404),
    ("POST", "/healthz", 405),
    ("GET", "/debug/pprof/heap?debug=9", 400),
    ("GET", "/debug/pprof", 301),
];

#[test]
fn every_answer_says_no_store_over_http1() {
    let srv = Server::start(&[]);
    for (method, path, status) in EVERY_KIND {
        let r = common::request(srv.addr, method, path, b"");
        assert_eq!(r.status, status, "{method} {path}");
        assert_eq!(
            r.header("cache-control"),
            Some("no-store"),
            "{method} {path}"
        );
    }
    // A request with no Host header: 400 before routing.
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    let r = common::parse_reply(&buf[..n], false).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn every_answer_says_no_store_over_http2() {
    use http_body_util::{BodyExt, Empty};

    let srv = Server::start(&[]);
    let mut send = h2_client(srv.addr).await;
    for (method, path, status) in EVERY_KIND {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", srv.addr))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.expect("h2 request");
        assert_eq!(resp.status(), status, "{method} {path}");
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{method} {path}"
        );
        let _ = resp.into_body().collect().await;
    }
}

#[test]
fn the_connection_limits_503_says_no_store() {
    let srv = Server::start(&["--max-connections", "1"]);
    let _held = std::net::TcpStream::connect(srv.addr).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    use std::io::Read;
    let mut raw = Vec::new();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let _ = s.read_to_end(&mut raw);
    let r = common::parse_reply(&raw, false).expect("a 503");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}
