//! [`DrainingWebSocket`]: a WebSocket that says goodbye (close code 1001) when its server
//! drains, and tells a client whose message is over the limit why it is closed (1009)
//! (feature `websocket`).

use std::future::Future as _;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_sink::Sink;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Error, Message};

use super::{Drain, Draining};

/// The close reason sent on shutdown.
const GOING_AWAY: &str = "server shutting down";
/// The close reason sent for a message or frame over the configured size.
const TOO_BIG: &str = "message too big";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// Nothing sent.
    Open,
    /// Draining began (1001), or a message was too big (1009): send that close.
    Send(CloseCode),
    /// Sent: flush it.
    Flush,
    /// Flushed; the peer's close reply ends the stream.
    Done,
}

/// A WebSocket stream (`async_tungstenite::WebSocketStream` over any runtime) that, once its
/// server starts draining, delivers the messages that had already arrived (so they can be
/// answered), then sends the client a close frame with code 1001 (going away), yields the
/// client's close reply and ends, so a handler's `while let Some(msg) = ws.next().await`
/// loop returns. A handler that is not reading when
/// draining starts sees the close on its next read; one that never reads again is cancelled
/// when the grace period ends. Dereferences to the inner stream.
#[derive(Debug)]
pub struct DrainingWebSocket<W> {
    inner: W,
    draining: Draining,
    close: Close,
    /// The error to return once the close frame that explains it is out.
    failed: Option<Error>,
}

impl<W> DrainingWebSocket<W> {
    /// Wraps `inner`, watching `drain`.
    pub fn new(inner: W, drain: &Drain) -> Self {
        Self {
            inner,
            draining: drain.draining(),
            close: Close::Open,
            failed: None,
        }
    }

    /// The inner stream.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W> Deref for DrainingWebSocket<W> {
    type Target = W;

    fn deref(&self) -> &W {
        &self.inner
    }
}

impl<W> DerefMut for DrainingWebSocket<W> {
    fn deref_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W> Stream for DrainingWebSocket<W>
where
    W: Stream<Item = Result<Message, Error>> + Sink<Message, Error = Error> + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut inner = Pin::new(&mut this.inner);
        if this.close == Close::Open {
            // Messages that arrived before the drain are delivered (and can be answered)
            // first; the close goes out once nothing is waiting.
            match inner.as_mut().poll_next(cx) {
                // tungstenite refuses an oversized message or frame with an error and sends
                // nothing: the client would see the connection drop without a reason.
                Poll::Ready(Some(Err(e @ Error::Capacity(_)))) => {
                    this.failed = Some(e);
                    this.close = Close::Send(CloseCode::Size);
                }
                Poll::Ready(item) => return Poll::Ready(item),
                Poll::Pending => {
                    if Pin::new(&mut this.draining).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.close = Close::Send(CloseCode::Away);
                }
            }
        }
        if let Close::Send(code) = this.close {
            let reason = if code == CloseCode::Size {
                TOO_BIG
            } else {
                GOING_AWAY
            };
            let sent = ready!(inner.as_mut().poll_ready(cx)).and_then(|()| {
                inner.as_mut().start_send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
            });
            this.close = Close::Flush;
            if let Err(e) = sent {
                this.close = Close::Done;
                return Poll::Ready(Some(Err(this.failed.take().unwrap_or(e))));
            }
        }
        if this.close == Close::Flush {
            let flushed = ready!(inner.as_mut().poll_flush(cx));
            this.close = Close::Done;
            if let Some(e) = this.failed.take() {
                return Poll::Ready(Some(Err(e)));
            }
            if let Err(e) = flushed {
                return Poll::Ready(Some(Err(e)));
            }
        }
        inner.poll_next(cx)
    }
}

impl<W> Sink<Message> for DrainingWebSocket<W>
where
    W: Sink<Message, Error = Error> + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().inner).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Pin::new(&mut self.get_mut().inner).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
