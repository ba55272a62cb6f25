//! One request on a connection: counted from the handler's call until its response body is
//! handed over (so the connection's deadlines know what is in flight), routed, and logged when
//! the access log is on.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use tracing::Instrument;

use super::state::{ConnState, RequestGuard};
use crate::lifecycle::Lifecycle;
use crate::responses::Body;
use crate::routes::{self, App, Endpoints, Routed};
use crate::telemetry;

/// What every request of a connection shares.
#[derive(Clone, Copy)]
pub struct Shared {
    pub app: &'static App,
    pub lifecycle: &'static Lifecycle,
    pub endpoints: Endpoints,
}

/// The connection's service: hyper calls it once per request.
pub fn handle(ctx: Shared, conn: Arc<ConnState>, req: Request<Incoming>) -> Handling {
    let guard = RequestGuard::begin(conn, ctx.lifecycle);
    let response = if telemetry::access_log_enabled() {
        Routed::Later(Box::pin(logged(ctx.app, ctx.endpoints, req)))
    } else {
        routes::route(ctx.app, ctx.endpoints, req)
    };
    Handling {
        response,
        guard: Some(guard),
    }
}

/// A request's response, with the request counted as handled until it is ready. A future by
/// hand, like `Routed`, for the instructions an async fn's state machine would add to every
/// request.
pub struct Handling {
    response: Routed<'static>,
    guard: Option<RequestGuard>,
}

impl Future for Handling {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let resp = ready!(Pin::new(&mut self.response).poll(cx));
        let mut guard = self.guard.take().expect("polled after completion");
        guard.handler_done();
        Poll::Ready(Ok(resp.map(|inner| ResponseBody {
            inner,
            _guard: guard,
        })))
    }
}

async fn logged(app: &App, endpoints: Endpoints, req: Request<Incoming>) -> Response<Body> {
    let (method, path, start) = (
        req.method().clone(),
        req.uri().path().to_owned(),
        Instant::now(),
    );
    let span = tracing::debug_span!("request", method = %method, path = %path);
    let resp = routes::route(app, endpoints, req)
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    tracing::debug!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

/// A response body that keeps its request counted until hyper has taken all of it.
pub struct ResponseBody {
    inner: Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
