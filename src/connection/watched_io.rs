//! The connection's socket, telling `ConnState` what happens on it: reads, writes, a write that
//! cannot proceed (the client stopped reading), and which protocol the first bytes announce.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::state::{ConnState, Protocol};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub struct WatchedIo {
    stream: TcpStream,
    state: Arc<ConnState>,
    /// Bytes of the HTTP/2 preface matched so far, until the protocol is known.
    sniffed: usize,
}

impl WatchedIo {
    pub fn new(stream: TcpStream, state: Arc<ConnState>) -> Self {
        Self {
            stream,
            state,
            sniffed: 0,
        }
    }

    fn sniff(&mut self, bytes: &[u8]) {
        let want = &H2_PREFACE[self.sniffed..];
        let n = want.len().min(bytes.len());
        if bytes[..n] != want[..n] {
            self.state.set_protocol(Protocol::Http1);
            self.sniffed = usize::MAX;
        } else if self.sniffed + n == H2_PREFACE.len() {
            self.state.set_protocol(Protocol::Http2);
            self.sniffed = usize::MAX;
        } else {
            self.sniffed += n;
        }
    }

    fn wrote(&self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &result {
            Poll::Ready(Ok(n)) if *n > 0 => self.state.on_write(),
            Poll::Pending => self.state.on_write_blocked(),
            _ => {}
        }
        result
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.state.on_read();
            if this.sniffed != usize::MAX {
                this.sniff(&buf.filled()[before..]);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
