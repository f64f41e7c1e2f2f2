//! Once a connection is upgraded (a WebSocket after its 101), reads wait while a write is
//! blocked: a peer that does not read what it is sent is not read either.
//!
//! tungstenite answers each Ping with a Pong queued in a write buffer that only its
//! `max_write_buffer_size` bounds, and servers that build their own WebSocket from hyper's
//! upgrade (engineioxide, under Socket.IO) leave it unbounded: a client that sends pings
//! and never reads grows the server by a Pong per Ping. With reads held while the socket
//! cannot take more, at most the pings already read get answers queued. hyper's own
//! HTTP/1.1 and HTTP/2 bound their buffers, so this applies only after an upgrade. This
//! module only moves bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `io` whose reads wait for blocked writes once `upgraded` is set.
pub(crate) struct Backpressure<S> {
    io: S,
    upgraded: Arc<AtomicBool>,
    write_blocked: bool,
    reader: Option<Waker>,
}

impl<S> Backpressure<S> {
    pub(crate) fn new(io: S, upgraded: Arc<AtomicBool>) -> Self {
        Self {
            io,
            upgraded,
            write_blocked: false,
            reader: None,
        }
    }

    /// Records whether a write went through, and wakes a read held behind it.
    fn wrote<T>(&mut self, result: Poll<T>) -> Poll<T> {
        if result.is_pending() {
            self.write_blocked = true;
        } else if std::mem::take(&mut self.write_blocked)
            && let Some(reader) = self.reader.take()
        {
            reader.wake();
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Backpressure<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.write_blocked && self.upgraded.load(Ordering::Acquire) {
            // Woken when a write goes through (the writer is woken by the socket).
            self.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Backpressure<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.wrote(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
