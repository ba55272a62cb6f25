//! Response builders shared by the handlers. Each can fill a header map it is given: the routes
//! hand in the request's own (cleared), which hyper then keeps for the connection's next
//! request, so a response costs no allocation for its headers.
//!
//! Every answer says `Cache-Control: no-store`: health and readiness change from one moment to
//! the next (a cache in front must never answer /readyz with a stored 200 while the pod
//! drains), profiles and command lines are the process's internals, which no shared cache
//! should keep, and errors are about one request.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

pub type Body = Full<Bytes>;

pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// `body` with its content type, in `headers` (cleared first); never to be stored by a cache.
pub fn in_headers(
    mut headers: HeaderMap,
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    headers.clear();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    // The map Response::new made is empty, and an empty HeaderMap owns no allocation (it
    // "will not allocate"): forgotten rather than dropped, as dropping one costs /healthz
    // more than a tenth of what the cache-control header does.
    std::mem::forget(std::mem::replace(resp.headers_mut(), headers));
    resp
}

pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    nosniff(in_headers(HeaderMap::new(), status, content_type, body))
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    with_type(status, TEXT_PLAIN, body)
}

/// Browsers must not guess another type (HTML) for what we answer.
fn nosniff(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Plain-text error with a trailing newline, like Go's http.Error, in `headers`.
pub fn error_in(headers: HeaderMap, status: StatusCode, message: &str) -> Response<Body> {
    nosniff(in_headers(
        headers,
        status,
        TEXT_PLAIN,
        format!("{message}\n"),
    ))
}

pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    error_in(HeaderMap::new(), status, message)
}

pub fn not_found_in(headers: HeaderMap) -> Response<Body> {
    nosniff(in_headers(
        headers,
        StatusCode::NOT_FOUND,
        TEXT_PLAIN,
        Bytes::from_static(b"404 page not found\n"),
    ))
}

pub fn not_found() -> Response<Body> {
    not_found_in(HeaderMap::new())
}

pub fn method_not_allowed_in(headers: HeaderMap, allow: &'static str) -> Response<Body> {
    let mut resp = error_in(
        headers,
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    method_not_allowed_in(HeaderMap::new(), allow)
}

pub fn redirect(location: &'static str) -> Response<Body> {
    let mut resp = error(StatusCode::MOVED_PERMANENTLY, "moved permanently");
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    resp
}

/// A binary download, as Go's pprof handlers send profiles.
pub fn attachment(
    body: Vec<u8>,
    content_type: &'static str,
    disposition: &'static str,
) -> Response<Body> {
    let mut resp = with_type(StatusCode::OK, content_type, body);
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(disposition),
    );
    resp
}
