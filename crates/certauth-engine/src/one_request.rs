//! The stream an [`Accepted`](crate::Accepted) hands on: the decided request and nothing
//! after it. The core's [`FirstRequest`] says which bytes belong to the request; this only
//! moves them (and keeps what comes after, released only if the caller switches protocols).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use certauth_core::http::FirstRequest;
use futures_io::{AsyncRead, AsyncWrite};

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

impl<S> OneRequest<S> {
    /// The same limit over another view of the connection.
    pub(crate) fn map<T>(self, f: impl FnOnce(S) -> T) -> OneRequest<T> {
        OneRequest {
            io: f(self.io),
            ready: self.ready,
            held: self.held,
            request: self.request,
        }
    }

    /// Whether reads go straight to the connection: a protocol switch, nothing kept back
    /// (tokio's `ReadBuf` reads then skip the copy).
    #[cfg(feature = "tokio")]
    fn passthrough(&self) -> bool {
        self.request.switched() && self.ready.is_empty() && self.held.is_empty()
    }

    /// Reads into `out` with `read` (the connection's read, in its runtime's terms): the
    /// request's bytes, then EOF, or after a switch everything.
    fn poll_read_with(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut [u8],
        mut read: impl FnMut(Pin<&mut S>, &mut Context<'_>, &mut [u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>>
    where
        S: Unpin,
    {
        loop {
            if self.request.switched() && !self.held.is_empty() {
                self.ready.append(&mut self.held);
            }
            if !self.ready.is_empty() {
                let n = self.ready.len().min(out.len());
                out[..n].copy_from_slice(&self.ready[..n]);
                self.ready.drain(..n);
                return Poll::Ready(Ok(n));
            }
            if self.request.switched() {
                return read(Pin::new(&mut self.io), cx, out);
            }
            if self.request.is_complete() {
                return Poll::Ready(Ok(0)); // the request's end: EOF
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = ready!(read(Pin::new(&mut self.io), cx, &mut chunk))?;
            if n == 0 {
                return Poll::Ready(Ok(0));
            }
            let bytes = &chunk[..n];
            let taken = self.request.take(bytes);
            self.ready.extend_from_slice(&bytes[..taken]);
            self.held.extend_from_slice(&bytes[taken..]);
        }
    }

    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
        write: impl FnOnce(Pin<&mut S>, &mut Context<'_>, &[u8]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>>
    where
        S: Unpin,
    {
        let n = ready!(write(Pin::new(&mut self.io), cx, buf))?;
        self.request.wrote(&buf[..n]);
        Poll::Ready(Ok(n))
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
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_read_with(cx, buf, |io, cx, b| io.poll_read(cx, b))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for OneRequest<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, buf, |io, cx, b| io.poll_write(cx, b))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// The same stream on tokio's I/O traits (what certauth-tokio hands on).
#[cfg(feature = "tokio")]
mod tokio_io {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll, ready};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::OneRequest;

    impl<S: AsyncRead + Unpin> AsyncRead for OneRequest<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if this.passthrough() {
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            let n = ready!(
                this.poll_read_with(cx, buf.initialize_unfilled(), |io, cx, b| {
                    let mut read = ReadBuf::new(b);
                    ready!(io.poll_read(cx, &mut read))?;
                    Poll::Ready(Ok(read.filled().len()))
                })
            )?;
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for OneRequest<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut()
                .poll_write_with(cx, buf, |io, cx, b| io.poll_write(cx, b))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.io).poll_shutdown(cx)
        }
    }
}
