//! `httpserver healthcheck`: the container HEALTHCHECK for images without a shell or curl.
//! It checks the port the service actually listens on: a HEALTHCHECK runs as a process of its
//! own, which sees the container's environment (MY_SERVICE_PORT) but not the flags the
//! service got (`docker run IMAGE --port 8080`). So, unless its own command line names the
//! port or address, it reads them from the service's command line: PID 1 in a container,
//! when that is this same program.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use clap::Parser;

use crate::config::{Cli, Settings};

/// Exits 0 when GET /healthz answers `200 ok`, 1 otherwise, printing why.
pub fn run(settings: &Settings, timeout: Duration) -> ExitCode {
    let own_args: Vec<String> = std::env::args().collect();
    let service = service_settings(&own_args, read_pid1()).unwrap_or_else(|| settings.clone());
    let addr = target(&service);
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

/// PID 1's command line, when PID 1 runs this same executable.
fn read_pid1() -> Option<Vec<String>> {
    let ours = std::fs::read_link("/proc/self/exe").ok()?;
    let theirs = std::fs::read_link("/proc/1/exe").ok()?;
    if ours != theirs {
        return None;
    }
    let raw = std::fs::read("/proc/1/cmdline").ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The service's settings from its command line (`service_args`), unless the healthcheck's
/// own arguments set the port or the address (then those win, as given).
fn service_settings(own_args: &[String], service_args: Option<Vec<String>>) -> Option<Settings> {
    let explicit = own_args.iter().any(|a| {
        ["--port", "-p", "--listen"].contains(&a.as_str())
            || a.starts_with("--port=")
            || a.starts_with("--listen=")
            || (a.starts_with("-p") && a.len() > 2 && !a.starts_with("--"))
    });
    if explicit {
        return None;
    }
    let cli = Cli::try_parse_from(service_args?).ok()?;
    // The service itself, not another healthcheck.
    cli.command.is_none().then_some(cli.settings)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn follows_the_service_flags_unless_told_otherwise() {
        let service = Some(args(&[
            "/httpserver",
            "--port",
            "8080",
            "--listen",
            "127.0.0.2",
        ]));
        let s = service_settings(&args(&["/httpserver", "healthcheck"]), service.clone()).unwrap();
        assert_eq!(target(&s), "127.0.0.2:8080".parse().unwrap());
        assert!(
            service_settings(
                &args(&["/httpserver", "healthcheck", "-p", "9"]),
                service.clone()
            )
            .is_none()
        );
        assert!(
            service_settings(&args(&["/httpserver", "healthcheck", "--port=9"]), service).is_none()
        );
        // No service found, or it is another healthcheck: the healthcheck's own settings.
        assert!(service_settings(&args(&["/httpserver", "healthcheck"]), None).is_none());
        let other = Some(args(&["/httpserver", "healthcheck"]));
        assert!(service_settings(&args(&["/httpserver", "healthcheck"]), other).is_none());
    }
}
