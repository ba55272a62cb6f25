//! Accept loops, one per listener: every connection gets a slot under `--max-connections` and a
//! task of its own (tracked by the lifecycle); beyond the limit, a 503 and close.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::connection::{self, Shared, Timeouts};

/// Over the limit, before any request is read: written as is (not stored by caches either).
const TOO_MANY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
cache-control: no-store\r\ncontent-length: 21\r\nretry-after: 1\r\nconnection: close\r\n\r\n\
too many connections\n";

/// What every accept loop shares: the connection slots and hyper's settings.
pub struct Acceptor {
    builder: auto::Builder<TokioExecutor>,
    slots: Arc<Semaphore>,
    max_connections: usize,
    timeouts: Timeouts,
    rejected: AtomicU64,
}

impl Acceptor {
    pub fn new(max_connections: usize, max_header_bytes: u32, timeouts: Timeouts) -> Arc<Self> {
        Arc::new(Self {
            builder: connection::builder(max_header_bytes, &timeouts),
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            timeouts,
            rejected: AtomicU64::new(0),
        })
    }

    /// Accepts on `listener` until the lifecycle stops accepting.
    pub async fn run(self: Arc<Self>, listener: TcpListener, shared: Shared) {
        let lifecycle = shared.lifecycle;
        let _task = crate::tasks::register_fixed(
            "httpserver::accept::Acceptor::run",
            "accepting connections",
        );
        let mut stopped = std::pin::pin!(lifecycle.accepting_stopped());
        loop {
            let accepted = tokio::select! {
                biased;
                _ = &mut stopped => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning (fd_limit keeps the
                    // connection limit below the open-files limit, so this is rare).
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let this = self.clone();
                    lifecycle.connections().spawn(async move {
                        connection::serve(stream, &this.builder, shared, this.timeouts).await;
                        drop(slot);
                    });
                }
                Err(_) => self.reject(stream),
            }
        }
    }

    /// Over the connection limit: answer 503 and close, without holding up the accept loop.
    fn reject(&self, mut stream: TcpStream) {
        let n = self.rejected.fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() || n == 0 {
            tracing::warn!(
                max_connections = self.max_connections,
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
}
