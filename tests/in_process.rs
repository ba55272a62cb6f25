//! `httpserver::run` in-process, where the process boundary adds nothing: both protocols on one
//! port, readiness through a stop request, and the drain's outcome. (Signals, exit codes and
//! PID 1 are tested on the binary: tests/shutdown.rs.)

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

use httpserver::config::Cli;
use httpserver::{Config, Listeners, Outcome, listener};

struct InProcess {
    addr: SocketAddr,
    stop: mpsc::UnboundedSender<&'static str>,
    done: tokio::task::JoinHandle<Result<Outcome, httpserver::Error>>,
}

fn start(args: &[&str]) -> InProcess {
    let mut argv = vec!["httpserver", "--listen", "127.0.0.1", "--port", "0"];
    argv.extend_from_slice(args);
    let settings = Cli::try_parse_from(argv).expect("flags").settings;
    let main = listener::bind(settings.main_addr(), "test").expect("bind");
    let addr = main.local_addr().unwrap();
    let (stop, requests) = mpsc::unbounded_channel();
    let listeners = Listeners { main, debug: None };
    let done = tokio::spawn(httpserver::run(Config::new(settings), listeners, requests));
    InProcess { addr, stop, done }
}

async fn get(addr: SocketAddr, path: &str, http2: bool) -> (u16, String) {
    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = if http2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_http1_and_http2_on_one_port() {
    let srv = start(&[]);
    assert_eq!(get(srv.addr, "/healthz", false).await, (200, "ok\n".into()));
    assert_eq!(get(srv.addr, "/healthz", true).await, (200, "ok\n".into()));
    assert_eq!(get(srv.addr, "/nope", true).await.0, 404);
    srv.stop.send("test").unwrap();
    assert_eq!(srv.done.await.unwrap(), Ok(Outcome::Clean));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_request_turns_readiness_off_then_drains() {
    // Keeps accepting for a while after the stop request, with /readyz at 503.
    let srv = start(&["--drain-delay", "1s"]);
    assert_eq!(get(srv.addr, "/readyz", false).await.0, 200);
    srv.stop.send("test").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(srv.addr, "/readyz", true).await.0, 503);
    assert_eq!(get(srv.addr, "/healthz", false).await.0, 200);
    let outcome = tokio::time::timeout(Duration::from_secs(10), srv.done).await;
    assert_eq!(
        outcome.expect("drained in time").unwrap(),
        Ok(Outcome::Clean)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stop_request_cuts_a_capture_off() {
    let srv = start(&[]);
    let addr = srv.addr;
    let capture =
        tokio::spawn(async move { get(addr, "/debug/pprof/profile?seconds=30", false).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    srv.stop.send("first").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    srv.stop.send("second").unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(5), srv.done).await;
    assert_eq!(
        outcome.expect("ended at once").unwrap(),
        Ok(Outcome::CutOff { requests: 1 })
    );
    capture.abort();
}
