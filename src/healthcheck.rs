//! `httpserver healthcheck`: the container HEALTHCHECK for images without a shell or curl.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::config::Settings;

/// Exits 0 when GET /healthz answers `200 ok`, 1 otherwise, printing why.
pub fn run(settings: &Settings, timeout: Duration) -> ExitCode {
    let addr = target(settings);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("unhealthy: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match tokio::time::timeout(timeout, check(addr)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    });
    match result {
        Ok(()) => {
            println!("healthy: http://{addr}/healthz answered 200 ok");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("unhealthy: http://{addr}/healthz: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Loopback unless the server is bound to one specific address.
fn target(settings: &Settings) -> SocketAddr {
    let ip = if settings.listen.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        settings.listen
    };
    SocketAddr::new(ip, settings.port)
}

async fn check(addr: SocketAddr) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake failed: {e}"))?;
    tokio::spawn(conn);
    let req = Request::get("/healthz")
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), 1024)
        .collect()
        .await
        .map_err(|e| format!("reading the body failed: {e}"))?
        .to_bytes();
    if status == hyper::StatusCode::OK && body.as_ref() == b"ok\n" {
        Ok(())
    } else {
        Err(format!(
            "answered {status} {:?}",
            String::from_utf8_lossy(&body)
        ))
    }
}
