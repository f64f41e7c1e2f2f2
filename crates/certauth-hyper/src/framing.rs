//! The client's bytes, shown to the core's [`RequestFraming`] as hyper reads them, so that a
//! request framed ambiguously (`Content-Length` with `Transfer-Encoding`, which hyper
//! accepts as chunked and then hides) is answered 400 instead of served (`Tracked`). This
//! module only moves bytes: the core decides.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use certauth_core::http::RequestFraming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's watch, shared by its reads and its requests.
pub(crate) type Watch = Arc<Mutex<RequestFraming>>;

/// Locks the watch (a panic elsewhere leaves it usable).
pub(crate) fn lock(watch: &Watch) -> std::sync::MutexGuard<'_, RequestFraming> {
    watch.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `io` whose reads are shown to `watch` until the connection is `upgraded`.
pub(crate) struct Watched<S> {
    io: S,
    watch: Watch,
    upgraded: Arc<AtomicBool>,
    /// Once upgraded, reads pass untouched.
    done: bool,
}

impl<S> Watched<S> {
    pub(crate) fn new(io: S, watch: Watch, upgraded: Arc<AtomicBool>) -> Self {
        Self {
            io,
            watch,
            upgraded,
            done: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let start = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if !self.done && polled.is_ready() && buf.filled().len() > start {
            self.done = self.upgraded.load(Ordering::Acquire);
            let mut watch = lock(&self.watch);
            if self.done {
                watch.stop();
            } else {
                watch.read(&buf.filled()[start..]);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
