//! Request routing: the Host check, health, readiness, and (where this listener carries them)
//! the debug endpoints. Everything but /debug/pprof is answered without awaiting anything.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
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

/// A request's response, as a future: ready at once (health, readiness, errors), or later (a
/// debug endpoint's handler, which may take a while). Not an `async fn`: hyper moves each
/// request's future into place and the debug handlers' future is large (1.5 KB), boxed here so
/// /healthz does not carry it; and this enum polls in fewer instructions than an async fn.
pub enum Routed<'a> {
    Ready(Option<Response<Body>>),
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>),
}

impl Future for Routed<'_> {
    type Output = Response<Body>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        match &mut *self {
            Routed::Ready(resp) => Poll::Ready(resp.take().expect("polled after completion")),
            Routed::Later(handler) => handler.as_mut().poll(cx),
        }
    }
}

/// Every request, logged or not, comes through here. Health, readiness and errors are
/// answered at once; a debug request goes to its handler, its body under the read deadline.
pub fn route(app: &App, endpoints: Endpoints, req: Request<Incoming>) -> Routed<'_> {
    let (mut parts, body) = req.into_parts();
    // The request's header map becomes the response's (see responses); moved out, not taken,
    // so no empty map is made in its place only to be dropped.
    let headers = parts.headers;
    if let Err(why) = check_host(parts.version, &headers) {
        let mut resp = responses::error_in(headers, StatusCode::BAD_REQUEST, why);
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Routed::Ready(Some(resp));
    }
    let path = parts.uri.path();
    let serves_debug = matches!(
        endpoints,
        Endpoints::Main { debug: true } | Endpoints::DebugOnly
    );
    if serves_debug && (path == "/debug/pprof" || path.starts_with("/debug/pprof/")) {
        parts.headers = headers;
        let body = RequestBody::new(body, app.body_read_timeout);
        return Routed::Later(Box::pin(app.debug.handle(Request::from_parts(parts, body))));
    }
    Routed::Ready(Some(match (endpoints, path) {
        (Endpoints::Main { .. }, "/healthz") => health(headers, &parts.method, true),
        (Endpoints::Main { .. }, "/readyz") => {
            health(headers, &parts.method, app.lifecycle.is_ready())
        }
        _ => responses::not_found_in(headers),
    }))
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

/// The bytes of a reg-name, IPv4, [IPv6] literal and :port (what Go's net/http accepts):
/// letters, digits and these, as a table: one load per byte of every request's Host.
const HOST_PUNCTUATION: &[u8] = b"!$%&'()*+,-.:;=[]_~";
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < HOST_PUNCTUATION.len() {
        table[HOST_PUNCTUATION[i] as usize] = true;
        i += 1;
    }
    table
};

fn valid_host_byte(b: u8) -> bool {
    HOST_BYTES[b as usize]
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

    #[test]
    fn the_host_byte_table_holds_letters_digits_and_rfc_3986_punctuation() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || HOST_PUNCTUATION.contains(&b);
            assert_eq!(valid_host_byte(b), expected, "byte {b:#04x}");
        }
    }
}
