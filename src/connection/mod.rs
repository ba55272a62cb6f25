//! One connection, from accept to close: HTTP/1.1 or HTTP/2 (cleartext, prior knowledge)
//! served by hyper, always under exactly one deadline (see `deadlines`), closed gracefully when
//! it has idled too long or the server drains, and dropped when a hard deadline passes (the
//! `Connection` future in `supervised`).

mod deadlines;
mod request;
mod state;
mod supervised;
mod watched_io;

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;

pub use deadlines::Timeouts;
pub use request::Shared;
use state::ConnState;
use supervised::Connection;
use watched_io::WatchedIo;

/// hyper's settings for every connection. hyper's own HTTP/1 header timer is off: ours starts
/// at accept (covering the protocol sniff) and is not re-created for every request.
pub fn builder(max_header_bytes: u32, t: &Timeouts) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        // A client that sends its request and then shuts its side (`nc -N`) still gets the answer.
        .half_close(true)
        .max_buf_size(max_header_bytes as usize);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(max_header_bytes)
        // A peer that vanished without a FIN is found by a PING it never answers.
        .keep_alive_interval(Some(t.header_read))
        .keep_alive_timeout(t.header_read);
    builder
}

/// Serves `stream` until the client closes, a deadline passes, or the server drains.
pub async fn serve(
    stream: TcpStream,
    builder: &auto::Builder<TokioExecutor>,
    shared: Shared,
    timeouts: Timeouts,
) {
    let accepted = supervised::now();
    let _ = stream.set_nodelay(true);
    let state = Arc::new(ConnState::default());
    let _task = crate::tasks::register("httpserver::connection::serve", state.clone());
    let io = TokioIo::new(WatchedIo::new(stream, state.clone()));
    let service = {
        let state = state.clone();
        service_fn(move |req| request::handle(shared, state.clone(), req))
    };
    let conn = builder.serve_connection(io, service);
    let connection = Connection::new(conn, shared.lifecycle, state, timeouts, accepted);
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "connection ended");
    }
}
