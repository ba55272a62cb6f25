//! Request routing: the Host check, health, readiness, and (where this listener carries them)
//! the debug endpoints. Everything but /debug/pprof is answered without awaiting anything.

use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};

use crate::debug::Debug;
use crate::lifecycle::Lifecycle;
use crate::request_body::RequestBody;
use crate::responses::{self, Body, TEXT_PLAIN};

const OK_BODY: Bytes = Bytes::from_static(b"ok\n");

/// State shared by every connection.
pub struct App {
    /// Readiness: /readyz answers 503 once shutdown has begun.
    pub lifecycle: &'static Lifecycle,
    pub debug: Debug,
    /// The body-read deadline every request body is put under (`--body-read-timeout`).
    pub body_read_timeout: Duration,
}

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// Health and readiness, plus /debug/pprof when `debug` is true.
    Main { debug: bool },
    /// Only /debug/pprof (the separate --debug-addr listener).
    DebugOnly,
}

/// Where a request goes: answered at once, or to a debug endpoint (which may take a while).
enum Routed {
    Done(Response<Body>),
    Debug(Request<RequestBody>),
}

/// The one place a `Routed` is matched: every request, logged or not, comes through here.
pub async fn route(app: &App, endpoints: Endpoints, req: Request<Incoming>) -> Response<Body> {
    match route_now(app, endpoints, req) {
        Routed::Done(resp) => resp,
        Routed::Debug(req) => app.debug.handle(req).await,
    }
}

/// Routes without awaiting: health, readiness and errors are answered at once.
fn route_now(app: &App, endpoints: Endpoints, mut req: Request<Incoming>) -> Routed {
    // The request's header map becomes the response's (see responses).
    let headers = std::mem::take(req.headers_mut());
    if let Err(why) = check_host(req.version(), &headers) {
        let mut resp = responses::error_in(headers, StatusCode::BAD_REQUEST, why);
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Routed::Done(resp);
    }
    let path = req.uri().path();
    let serves_debug = matches!(
        endpoints,
        Endpoints::Main { debug: true } | Endpoints::DebugOnly
    );
    if serves_debug && (path == "/debug/pprof" || path.starts_with("/debug/pprof/")) {
        *req.headers_mut() = headers;
        return Routed::Debug(req.map(|body| RequestBody::new(body, app.body_read_timeout)));
    }
    Routed::Done(match (endpoints, path) {
        (Endpoints::Main { .. }, "/healthz") => health(headers, req.method(), true),
        (Endpoints::Main { .. }, "/readyz") => {
            health(headers, req.method(), app.lifecycle.is_ready())
        }
        _ => responses::not_found_in(headers),
    })
}

/// RFC 9112 §3.2: an HTTP/1.1 request needs a Host header; no request may carry two, or one
/// whose value is not a host[:port]. (HTTP/2 names the authority in `:authority`.)
fn check_host(version: Version, headers: &HeaderMap) -> Result<(), &'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => {
            Err("400 Bad Request: missing required Host header")
        }
        (Some(_), Some(_)) => Err("400 Bad Request: too many Host headers"),
        (Some(host), None) if !host.as_bytes().iter().all(|b| valid_host_byte(*b)) => {
            Err("400 Bad Request: malformed Host header")
        }
        _ => Ok(()),
    }
}

/// The bytes of a reg-name, IPv4, [IPv6] literal and :port (what Go's net/http accepts).
fn valid_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!$%&'()*+,-.:;=[]_~".contains(&b)
}

/// Like Go's handler writing "ok\n": content type and length, nothing else.
fn health(headers: HeaderMap, method: &Method, ok: bool) -> Response<Body> {
    match (method, ok) {
        (&Method::GET | &Method::HEAD, true) => {
            responses::in_headers(headers, StatusCode::OK, TEXT_PLAIN, OK_BODY)
        }
        (&Method::GET | &Method::HEAD, false) => {
            responses::error_in(headers, StatusCode::SERVICE_UNAVAILABLE, "shutting down")
        }
        _ => responses::method_not_allowed_in(headers, "GET, HEAD"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_check(version: Version, hosts: &[&str]) -> Result<(), &'static str> {
        let mut headers = HeaderMap::new();
        for h in hosts {
            headers.append(header::HOST, HeaderValue::from_str(h).unwrap());
        }
        check_host(version, &headers)
    }

    #[test]
    fn http11_needs_exactly_one_well_formed_host() {
        assert!(host_check(Version::HTTP_11, &["example.com:8080"]).is_ok());
        assert!(host_check(Version::HTTP_11, &["[::1]:80"]).is_ok());
        assert!(host_check(Version::HTTP_11, &[]).is_err());
        assert!(host_check(Version::HTTP_11, &["a", "b"]).is_err());
        assert!(host_check(Version::HTTP_11, &["a b"]).is_err());
        assert!(host_check(Version::HTTP_10, &[]).is_ok());
        assert!(host_check(Version::HTTP_10, &["a", "a"]).is_err());
        assert!(host_check(Version::HTTP_2, &[]).is_ok());
    }
}
