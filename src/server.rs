//! The server loop: accept with a connection limit, serve HTTP/1.1 and HTTP/2 (cleartext,
//! prior knowledge) per connection, close idle connections, drain gracefully on request.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument;

use crate::responses::Body;
use crate::routes::{self, App, Endpoints};

/// Per-connection limits, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: u32,
    pub max_connections: u32,
}

const TOO_MANY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
content-length: 21\r\nretry-after: 1\r\nconnection: close\r\n\r\ntoo many connections\n";

/// Connections, requests in flight, and the signals that drain them.
pub struct Server {
    app: Arc<App>,
    limits: ConnLimits,
    permits: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    stop_accepting: watch::Sender<bool>,
    drain: watch::Sender<bool>,
    rejected: AtomicU64,
}

impl Server {
    pub fn new(app: Arc<App>, limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            app,
            limits,
            permits: Arc::new(Semaphore::new(limits.max_connections as usize)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            stop_accepting: watch::channel(false).0,
            drain: watch::channel(false).0,
            rejected: AtomicU64::new(0),
        })
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Accepts on `listener` until `stop_accepting` is called.
    pub async fn accept_loop(self: Arc<Self>, listener: TcpListener, endpoints: Endpoints) {
        let builder = Arc::new(self.connection_builder());
        let mut stop = self.stop_accepting.subscribe();
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let server = self.clone();
                    let builder = builder.clone();
                    tokio::spawn(async move {
                        server
                            .serve_connection(&builder, stream, endpoints, permit)
                            .await
                    });
                }
                Err(_) => self.reject(stream),
            }
        }
    }

    fn connection_builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_buf_size(self.limits.max_header_bytes as usize);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(self.limits.max_header_bytes);
        builder
    }

    /// Over the connection limit: answer 503 and close, without holding up the accept loop.
    fn reject(&self, mut stream: TcpStream) {
        let n = self.rejected.fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() || n == 0 {
            tracing::warn!(
                max_connections = self.limits.max_connections,
                rejected_so_far = n + 1,
                "connection limit reached; answering 503"
            );
        }
        tokio::spawn(async move {
            let write = async {
                stream.write_all(TOO_MANY).await?;
                stream.shutdown().await
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
        });
    }

    async fn serve_connection(
        self: Arc<Self>,
        builder: &auto::Builder<TokioExecutor>,
        stream: TcpStream,
        endpoints: Endpoints,
        _permit: OwnedSemaphorePermit,
    ) {
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new(self.in_flight.clone()));
        let service = {
            let server = self.clone();
            let activity = activity.clone();
            service_fn(move |req| {
                let server = server.clone();
                let guard = InFlight::begin(&activity);
                async move {
                    let resp = handle(&server.app, endpoints, req).await;
                    drop(guard);
                    Ok::<_, Infallible>(resp)
                }
            })
        };
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let mut drain = self.drain.subscribe();
        let mut draining = *drain.borrow_and_update();
        if draining {
            conn.as_mut().graceful_shutdown();
        }
        let idle = self.limits.idle_timeout;
        loop {
            let idle_check = tokio::time::sleep_until(activity.idle_deadline(idle).into());
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = drain.changed(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = idle_check, if !draining => {
                    if activity.is_idle_for(idle) {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }

    /// Stops every accept loop; connections already open keep being served.
    pub fn stop_accepting(&self) {
        self.stop_accepting.send_replace(true);
    }

    /// Asks every connection to finish its in-flight requests and close.
    pub fn drain_connections(&self) {
        self.drain.send_replace(true);
    }

    /// Resolves once every connection has closed.
    pub async fn all_connections_closed(&self) {
        let _ = self.permits.acquire_many(self.limits.max_connections).await;
    }
}

async fn handle(app: &App, endpoints: Endpoints, req: Request<Incoming>) -> Response<Body> {
    // Only pay for the access log (clones, span, clock) when debug logging or a trace wants it.
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return routes::route(app, endpoints, req).await;
    }
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

/// When a connection last finished a request, and how many it has in flight; `total`
/// counts requests in flight across the process.
struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    last_done_ms: AtomicU64,
    total: Arc<AtomicUsize>,
}

impl Activity {
    fn new(total: Arc<AtomicUsize>) -> Self {
        Self {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
            total,
        }
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.born + Duration::from_millis(self.last_done_ms.load(Ordering::Relaxed)) + idle
    }

    fn is_idle_for(&self, idle: Duration) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.idle_deadline(idle)
    }
}

/// Counts a request in flight on its connection and process-wide; dropped when the
/// handler finishes or is cancelled.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.total.fetch_add(1, Ordering::AcqRel);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_done_ms
            .store(a.born.elapsed().as_millis() as u64, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
        a.total.fetch_sub(1, Ordering::AcqRel);
    }
}
