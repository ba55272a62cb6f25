//! Request routing: health, readiness, and (where this listener carries them) the debug endpoints.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::debug::Debug;
use crate::responses::{self, Body};

const OK_BODY: Bytes = Bytes::from_static(b"ok\n");

/// State shared by every connection.
pub struct App {
    /// False once shutdown has begun: /readyz answers 503 from then on.
    pub ready: AtomicBool,
    pub debug: Debug,
}

/// Which endpoints a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// Health and readiness, plus /debug/pprof when `debug` is true.
    Main { debug: bool },
    /// Only /debug/pprof (the separate --debug-addr listener).
    DebugOnly,
}

pub async fn route(app: &App, endpoints: Endpoints, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let serves_debug = matches!(
        endpoints,
        Endpoints::Main { debug: true } | Endpoints::DebugOnly
    );
    if serves_debug && (path == "/debug/pprof" || path.starts_with("/debug/pprof/")) {
        return app.debug.handle(req).await;
    }
    if endpoints == Endpoints::DebugOnly {
        return responses::not_found();
    }
    match path {
        "/healthz" => health(req.method(), true),
        "/readyz" => health(req.method(), app.ready.load(Ordering::Acquire)),
        _ => responses::not_found(),
    }
}

fn health(method: &Method, ok: bool) -> Response<Body> {
    match (method, ok) {
        (&Method::GET | &Method::HEAD, true) => responses::text(StatusCode::OK, OK_BODY),
        (&Method::GET | &Method::HEAD, false) => {
            responses::error(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
        }
        _ => responses::method_not_allowed("GET, HEAD"),
    }
}
