//! An upgraded connection that was never authenticated keeps its slot until it closes, and is
//! closed when the slot is shed or its deadline passes.
//!
//! hyper hands an upgraded stream to whoever asked for it (socketioxide, which upgrades a
//! client it refuses in order to send its connect error; an open route's WebSocket), and the
//! connection's task ends. The lifecycle sheds a pending connection, or ends it at its
//! deadline, by cancelling that task: the stream lived on, uncounted, until its owner's own
//! timeout. So the task of a pending connection that upgraded waits for the stream to close
//! ([`Line::held`]); cancelled first, it cuts the stream: reads end, writes fail, and the
//! owner closes it. This module only moves bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// `io`, which its [`Line`] can cut; dropping it (the stream closed) ends the line's wait.
#[expect(
    dead_code,
    reason = "the sender is held for its drop, which ends the line's wait"
)]
pub(crate) struct Severable<S>(S, Arc<Shared>, oneshot::Sender<()>);

/// The connection task's end of a [`Severable`] stream.
pub(crate) struct Line(Arc<Shared>, oneshot::Receiver<()>);

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    /// The reader's and the writer's wakers (0 and 1), woken when the stream is cut.
    wakers: [AtomicWaker; 2],
}

impl<S: Unpin> Severable<S> {
    pub(crate) fn new(io: S) -> (Self, Line) {
        let (shared, (open, closed)) = (Arc::new(Shared::default()), oneshot::channel());
        (Self(io, Arc::clone(&shared), open), Line(shared, closed))
    }

    /// `poll` on the stream, unless it is cut (before, or while `poll` waits): then `ended`.
    fn unless_cut<T>(
        &mut self,
        cx: &mut Context<'_>,
        side: usize,
        ended: fn() -> io::Result<T>,
        poll: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.1.cut.load(Ordering::Acquire) {
            return Poll::Ready(ended());
        }
        let polled = poll(Pin::new(&mut self.0), cx);
        if polled.is_pending() {
            self.1.wakers[side].register(cx.waker());
            // Registered before the cut is looked at again: a cut wakes it or is seen here.
            if self.1.cut.load(Ordering::Acquire) {
                return Poll::Ready(ended());
            }
        }
        polled
    }
}

impl Line {
    /// With `hold` (an upgraded connection never authenticated), waits until the stream is
    /// closed; cancelled first (the slot shed, its deadline past, the server draining), cuts
    /// it: its reads end, its writes fail, and its shutdown is done at once (dropping it
    /// closes the socket, without lingering). Either way it forgets the wakers it keeps
    /// (the connection task's would keep that finished task's memory while the stream lives).
    pub(crate) async fn held(self, hold: bool) {
        let _cut = Cut(self.0, hold);
        if hold {
            let _ = self.1.await;
        }
    }
}

/// When dropped, forgets the stream's wakers, and if `.1`, cuts it (waking them).
struct Cut(Arc<Shared>, bool);

impl Drop for Cut {
    fn drop(&mut self) {
        self.0.cut.store(self.1, Ordering::Release);
        for waker in self.0.wakers.iter().filter_map(AtomicWaker::take) {
            if self.1 {
                waker.wake();
            }
        }
    }
}

fn aborted<T>() -> io::Result<T> {
    Err(io::ErrorKind::ConnectionAborted.into())
}

impl<S: AsyncRead + Unpin> AsyncRead for Severable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.unless_cut(cx, 0, || Ok(()), |io, cx| io.poll_read(cx, buf))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Severable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.unless_cut(cx, 1, aborted, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.unless_cut(cx, 1, aborted, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.unless_cut(cx, 1, aborted, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.unless_cut(cx, 1, || Ok(()), |io, cx| io.poll_shutdown(cx))
    }
}
