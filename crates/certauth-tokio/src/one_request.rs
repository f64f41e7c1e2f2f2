//! The stream an [`Accepted`](crate::Accepted) hands on: the decided request and nothing
//! after it. The core's [`FirstRequest`] says which bytes belong to the request; this only
//! moves them (and keeps what comes after, released only if the caller switches protocols).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use certauth_core::http::FirstRequest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much is read from the connection at a time; bytes read past the request's end (at
/// most this many) wait for a protocol switch that may never come.
const READ_CHUNK: usize = 8192;

/// The connection, limited to the request the gate decided: reads end (EOF) where its body
/// ends, so a second request on the connection never reaches your HTTP server undecided
/// (serve HTTP on it with hyper's `half_close(true)`, so the response is written before the
/// connection closes). A `101 Switching Protocols` written in answer to an upgrade request
/// lifts the limit (the WebSocket the decision admitted). Writes pass through.
#[derive(Debug)]
pub struct OneRequest<S> {
    io: S,
    /// Bytes that belong to the request, not yet read by the caller.
    ready: Vec<u8>,
    /// Bytes read past the request's end: another request's, or after a switch the new
    /// protocol's.
    held: Vec<u8>,
    request: FirstRequest,
}

impl<S> OneRequest<S> {
    /// `io` after the head; `leftover`, the bytes read after it, keeps those of the request
    /// and gives up the rest.
    pub(crate) fn new(io: S, leftover: &mut Vec<u8>, mut request: FirstRequest) -> Self {
        let held = leftover.split_off(request.take(leftover));
        Self {
            io,
            ready: Vec::new(),
            held,
            request,
        }
    }

    /// The connection, the bytes read but not yet handed on added to `leftover`: for the
    /// gate's own upgrade (which validated the request and writes the 101 itself).
    pub(crate) fn into_parts(mut self, leftover: &mut Vec<u8>) -> S {
        leftover.append(&mut self.ready);
        leftover.append(&mut self.held);
        self.io
    }

    /// The underlying connection (for its addresses or TLS state); reading from it directly
    /// would bypass the limit.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

impl<S> crate::Accepted<S> {
    /// The request as the client sent it (head, then body, then EOF) on the connection, for
    /// an HTTP server of your own: with hyper, `http1::Builder::new().half_close(true)
    /// .serve_connection(TokioIo::new(accepted.into_stream()), service)` answers this one
    /// request and closes.
    pub fn into_stream(self) -> OneRequest<S> {
        let mut io = self.io;
        io.ready = [self.head.raw(), &self.leftover, &io.ready].concat();
        io
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for OneRequest<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.request.switched() && !this.held.is_empty() {
                this.ready.append(&mut this.held);
            }
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.request.switched() {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            if this.request.is_complete() {
                return Poll::Ready(Ok(())); // the request's end: EOF
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            let bytes = read.filled();
            if bytes.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let n = this.request.take(bytes);
            this.ready.extend_from_slice(&bytes[..n]);
            this.held.extend_from_slice(&bytes[n..]);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for OneRequest<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let n = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.request.wrote(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
