//! A lingering close for the connections hyper serves, as the raw gates' `reject` does it.
//!
//! hyper answers a head past its buffer (twice the core's head limit) with its own 431 and
//! closes; a plain close with the client's bytes still unread makes the kernel reset the
//! connection, and the reset can discard the 431 before the client reads it. So when hyper
//! (or an upgraded WebSocket) shuts the connection down, the write side is shut first and
//! what the client still sends is read and discarded, bounded by `Limits::linger_timeout`
//! and `Limits::max_linger_bytes`. A client that closes on the server's close costs one
//! round trip. This module only moves bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use certauth_core::Limits;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `io` with a lingering `poll_shutdown`.
pub(crate) struct Lingering<S> {
    io: S,
    timeout: Duration,
    max_bytes: usize,
    close: Close,
}

enum Close {
    Open,
    Draining {
        left: usize,
        until: Pin<Box<tokio::time::Sleep>>,
    },
    Done,
}

impl<S> Lingering<S> {
    pub(crate) fn new(io: S, limits: &Limits) -> Self {
        Self {
            io,
            timeout: limits.linger_timeout,
            max_bytes: limits.max_linger_bytes,
            close: Close::Open,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
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
        let this = &mut *self;
        loop {
            match &mut this.close {
                Close::Open => {
                    let shut = ready!(Pin::new(&mut this.io).poll_shutdown(cx));
                    if shut.is_err() {
                        this.close = Close::Done;
                        return Poll::Ready(shut);
                    }
                    this.close = Close::Draining {
                        left: this.max_bytes,
                        until: Box::pin(tokio::time::sleep(this.timeout)),
                    };
                }
                Close::Draining { left, until } => {
                    if *left == 0 || until.as_mut().poll(cx).is_ready() {
                        this.close = Close::Done;
                        continue;
                    }
                    let mut sink = [0u8; 4096];
                    let mut sink = ReadBuf::new(&mut sink);
                    match ready!(Pin::new(&mut this.io).poll_read(cx, &mut sink)) {
                        Ok(()) if !sink.filled().is_empty() => {
                            *left = left.saturating_sub(sink.filled().len());
                        }
                        // The client's close, or an error: nothing more to wait for.
                        _ => this.close = Close::Done,
                    }
                }
                Close::Done => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, duplex};

    /// A linger far longer than any test waits: each case must end for its own reason.
    fn lingering(
        io: tokio::io::DuplexStream,
        max_bytes: usize,
    ) -> Lingering<tokio::io::DuplexStream> {
        let limits = Limits::DEFAULT
            .with_linger_timeout(Duration::from_secs(600))
            .with_max_linger_bytes(max_bytes);
        Lingering::new(io, &limits)
    }

    async fn bounded<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("the close lingered on past its reason to stop")
    }

    /// The write side closes first (the client reads its EOF), what the client still sends
    /// is read and discarded, and the close ends when the client closes.
    #[tokio::test]
    async fn shuts_the_write_side_then_drains_until_the_client_closes() {
        let (mut client, server) = duplex(64 * 1024);
        let mut server = lingering(server, 1 << 20);
        client.write_all(&[b'x'; 10_000]).await.unwrap();
        let closing = tokio::spawn(async move { bounded(server.shutdown()).await });
        let mut rest = Vec::new();
        bounded(client.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
        client.write_all(&[b'y'; 10_000]).await.unwrap();
        drop(client);
        closing.await.unwrap().unwrap();
    }

    /// A client that never stops sending is cut off after `max_linger_bytes`.
    #[tokio::test]
    async fn stops_reading_after_max_linger_bytes() {
        let (mut client, server) = duplex(1024);
        let mut server = lingering(server, 8 * 1024);
        let sending = tokio::spawn(async move {
            let mut sent = 0usize;
            while client.write_all(&[b'x'; 512]).await.is_ok() && sent < 1 << 20 {
                sent += 512;
            }
            sent
        });
        bounded(server.shutdown()).await.unwrap();
        drop(server);
        let sent = bounded(sending).await.unwrap();
        assert!((8 * 1024..16 * 1024).contains(&sent), "{sent} bytes sent");
    }
}
