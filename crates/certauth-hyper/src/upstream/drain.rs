//! A response whose client left before its end (`ProxyBody`'s drop) is read and dropped,
//! the request's places held, until it ends, until `Limits::max_drain_bytes` more have come
//! off the upstream connection's socket, or until the response timeout; then the upstream
//! connection closes. The bytes are counted on the socket ([`Metered`]), framing included:
//! counted as body data, a chunked body of one-byte chunks, or of chunk sizes padded with
//! thousands of zeros, pulled 12 to 210 MB per leaving client under a 1 MiB limit (attack
//! review s6, C4).
//!
//! Closing the connection tells an upstream nothing that works on without writing (a
//! thread-per-request handler), so a request *without* a client identity that stops short
//! keeps its places until the response timeout: clients without a certificate cannot free
//! their share by leaving and start more work past it (C2 with `--upstream-max-drain-bytes
//! 0`, C3 with an upstream that sends the limit before it works). An authenticated client's
//! places go with the connection: its cancelled downloads (a video's seeks) must not hold
//! the caps for a minute, and its certificate answers for it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::{Body as _, Incoming};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::limit::Held;

/// What an upstream connection may still read from its socket: unlimited while clients take
/// its responses, a drain's limit while one is drained. Only its connection's task reads.
#[derive(Debug)]
pub(super) struct Budget(AtomicUsize);

impl Budget {
    pub(super) fn unlimited() -> Arc<Self> {
        Arc::new(Self(AtomicUsize::new(usize::MAX)))
    }

    /// Unlimited again: the connection was taken for a new request (its last response
    /// ended, so no drain is under way on it).
    pub(super) fn reset(&self) {
        self.0.store(usize::MAX, Ordering::Relaxed);
    }
}

/// An upstream connection whose reads spend its [`Budget`]: once spent, a read fails and
/// hyper ends the connection.
pub(super) struct Metered<T> {
    pub(super) io: T,
    pub(super) budget: Arc<Budget>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Metered<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.budget.0.load(Ordering::Relaxed) == 0 {
            let spent = "the response's client left and its drain limit was read";
            return Poll::Ready(Err(std::io::Error::other(spent)));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        let spend = |left: usize| (left != usize::MAX).then(|| left.saturating_sub(n));
        let _ = self
            .budget
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, spend);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What a response's drop needs to drain it: the request's places, the response timeout,
/// the drain limit, its connection's budget, and whether the request had no identity.
#[derive(Debug)]
pub(super) struct Leftover {
    pub(super) held: Arc<Held>,
    pub(super) timeout: Duration,
    pub(super) max: usize,
    pub(super) budget: Arc<Budget>,
    pub(super) open: bool,
}

impl Leftover {
    /// Drains `body` in a task of its own (none outside a runtime, at shutdown).
    pub(super) fn drain(self, mut body: Incoming) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        self.budget.0.store(self.max, Ordering::Relaxed);
        runtime.spawn(async move {
            let started = tokio::time::Instant::now();
            let rest = async {
                // A limit of 0 reads nothing: the body is dropped, which closes the
                // connection at once (a read already waiting on the socket would meet the
                // spent budget only when the upstream sends).
                if self.max == 0 {
                    return false;
                }
                let mut frame = |cx: &mut Context<'_>| Pin::new(&mut body).poll_frame(cx);
                loop {
                    match std::future::poll_fn(&mut frame).await {
                        None => return true,
                        Some(Ok(_)) => {}
                        Some(Err(_)) => return false,
                    }
                }
            };
            let ended = tokio::time::timeout(self.timeout, rest).await == Ok(true);
            drop(body);
            if !ended && self.open {
                tokio::time::sleep_until(started + self.timeout).await;
            }
            drop(self.held);
        });
    }
}
