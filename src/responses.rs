//! Response builders shared by the handlers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

pub type Body = Full<Bytes>;

pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    with_type(status, TEXT_PLAIN, body)
}

/// Plain-text error with a trailing newline, like Go's http.Error.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    text(status, format!("{message}\n"))
}

pub fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "404 page not found")
}

pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
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
