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
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::{Body as _, Incoming};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::limit::Held;

/// What an upstream connection may still read from its socket: unlimited while clients take
/// its responses, a drain's limit while one is drained. Each request on the connection
/// has its turn: a drain limits the connection only while it still carries the drained
/// request. hyper hands a connection out again once it has read a response's last bytes,
/// which may still wait for their client; that client leaving then limited the next
/// request's response, and cut another client's download (attack review s7, N1).
#[derive(Debug)]
pub(super) struct Budget(Mutex<(u64, usize)>);

impl Budget {
    pub(super) fn unlimited() -> Arc<Self> {
        Arc::new(Self(Mutex::new((0, usize::MAX))))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (u64, usize)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new request's turn on the connection, unlimited: its number, for [`Leftover`].
    pub(super) fn next_turn(&self) -> u64 {
        let mut state = self.state();
        *state = (state.0.wrapping_add(1), usize::MAX);
        state.0
    }

    /// Limits the connection to `max` more bytes if it still carries request `turn`.
    fn limit(&self, turn: u64, max: usize) {
        let mut state = self.state();
        if state.0 == turn {
            state.1 = max;
        }
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
        if self.budget.state().1 == 0 {
            let spent = "the response's client left and its drain limit was read";
            return Poll::Ready(Err(std::io::Error::other(spent)));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        let mut state = self.budget.state();
        if state.1 != usize::MAX {
            state.1 = state.1.saturating_sub(n);
        }
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
/// the drain limit, its connection's budget and its turn on it, and whether the request
/// had no identity.
#[derive(Debug)]
pub(super) struct Leftover {
    pub(super) held: Arc<Held>,
    pub(super) timeout: Duration,
    pub(super) max: usize,
    pub(super) budget: (Arc<Budget>, u64),
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
        self.budget.0.limit(self.budget.1, self.max);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn a_drain_limits_only_its_own_turn_and_a_spent_budget_fails_reads() {
        let budget = Budget::unlimited();
        let first = budget.next_turn();
        let second = budget.next_turn();
        // The first request's drain comes after the connection went on to the second
        // (attack review s7, N1): it limits nothing.
        budget.limit(first, 0);
        assert_eq!(budget.state().1, usize::MAX);
        budget.limit(second, 5);
        let (mut upstream, io) = tokio::io::duplex(64);
        let mut metered = Metered {
            io,
            budget: Arc::clone(&budget),
        };
        tokio::io::AsyncWriteExt::write_all(&mut upstream, b"abcdefgh")
            .await
            .unwrap();
        let mut buf = [0u8; 3];
        assert_eq!(metered.read(&mut buf).await.unwrap(), 3);
        assert_eq!(budget.state().1, 2);
        assert_eq!(metered.read(&mut buf).await.unwrap(), 3);
        assert_eq!(budget.state().1, 0);
        assert!(
            metered.read(&mut buf).await.is_err(),
            "read past the budget"
        );
        // The next request's turn reads again.
        budget.next_turn();
        assert_eq!(metered.read(&mut buf).await.unwrap(), 2);
    }
}
