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
    /// `io` after the head; `ready` the request's bytes already read.
    pub(crate) fn new(io: S, ready: Vec<u8>, held: Vec<u8>, request: FirstRequest) -> Self {
        Self {
            io,
            ready,
            held,
            request,
        }
    }

    /// Puts `bytes` (the request's head and first bytes, as sent) before what is left.
    pub(crate) fn prepend(&mut self, mut bytes: Vec<u8>) {
        bytes.append(&mut self.ready);
        self.ready = bytes;
    }

    /// The connection and the bytes read but not yet handed on, for the gate's own upgrade
    /// (which validated the request and writes the 101 itself).
    pub(crate) fn into_parts(self) -> (S, Vec<u8>) {
        let Self {
            io,
            mut ready,
            held,
            ..
        } = self;
        ready.extend(held);
        (io, ready)
    }

    /// The underlying connection (for its addresses or TLS state); reading from it directly
    /// would bypass the limit.
    pub fn get_ref(&self) -> &S {
        &self.io
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
