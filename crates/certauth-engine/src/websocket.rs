//! [`DrainingWebSocket`]: a WebSocket that says goodbye (close code 1001) when its server
//! drains, tells a client whose message is over the limit why it is closed (1009), and,
//! given a [`Clock`], closes an idle WebSocket (1000) and drops a client that stops
//! answering pings (feature `websocket`).

use std::future::Future as _;
use std::io;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error, Message};
use certauth_core::Limits;
use futures_util::{Sink, Stream};

use crate::liveness::{Clock, Due, Liveness, Sleep};
use crate::{Drain, Draining};

/// The close reason sent on shutdown.
const GOING_AWAY: &str = "server shutting down";
/// The close reason sent for a message or frame over the configured size.
const TOO_BIG: &str = "message too big";
/// The close reason sent after `Limits::websocket_idle_timeout` without a message.
const IDLE: &str = "idle timeout";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// Nothing sent.
    Open,
    /// Draining began (1001), a message was too big (1009), or the socket was idle (1000):
    /// send that close.
    Send(CloseCode),
    /// Sent: flush it.
    Flush,
    /// Flushed; the peer's close reply ends the stream.
    Done,
}

/// The deadlines of a WebSocket with a [`Clock`]: the idle timeout and the ping/pong check.
struct Watch {
    clock: Clock,
    live: Liveness,
    /// The timer armed for this instant.
    sleep: Option<(Instant, Sleep)>,
    /// A ping to send when the sink takes it.
    ping: Option<[u8; 8]>,
    /// A ping was sent and is not flushed yet.
    flush: bool,
    /// The client is gone: 0 not, 1 the error is to be returned, 2 returned (the stream
    /// has ended).
    gone: u8,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("live", &self.live)
            .field("gone", &self.gone)
            .finish_non_exhaustive()
    }
}

/// What the watch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watched {
    Nothing,
    Idle,
    Gone,
}

/// The error a stream whose client is gone ends with.
fn gone() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "the client did not answer a ping (or the close) within websocket_ping_interval",
    ))
}

/// A WebSocket stream (`async_tungstenite::WebSocketStream` over any runtime) that, once its
/// server starts draining, delivers the messages that had already arrived (so they can be
/// answered), then sends the client a close frame with code 1001 (going away), yields the
/// client's close reply and ends, so a handler's `while let Some(msg) = ws.next().await`
/// loop returns. A handler that is not reading when
/// draining starts sees the close on its next read; one that never reads again is cancelled
/// when the grace period ends. Dereferences to the inner stream.
///
/// With a [`Clock`] ([`Self::with_deadlines`], which the serve helpers use) it also keeps
/// [`Limits::websocket_idle_timeout`] (no text or binary message either way: close 1000,
/// `idle timeout`) and [`Limits::websocket_ping_interval`] (it pings the client, and keeps
/// the pong that answers from the handler; a client that has not answered a ping one
/// interval later, or the idle close, is gone: the stream ends with an `Io(TimedOut)`
/// error, and a send fails with it). A client that floods pings
/// without reading the pongs is cut off that way, its pongs held to tungstenite's write
/// buffer ([`certauth_core::ws::default_websocket_config`]). The deadlines are checked whenever the
/// handler reads or sends.
#[derive(Debug)]
pub struct DrainingWebSocket<W> {
    inner: W,
    draining: Draining,
    close: Close,
    /// The error to return once the close frame that explains it is out.
    failed: Option<Error>,
    watch: Option<Watch>,
}

impl<W> DrainingWebSocket<W> {
    /// Wraps `inner`, watching `drain`.
    pub fn new(inner: W, drain: &Drain) -> Self {
        Self {
            inner,
            draining: drain.draining(),
            close: Close::Open,
            failed: None,
            watch: None,
        }
    }

    /// With `limits`' WebSocket deadlines, timed by `clock` (the runtime's).
    pub fn with_deadlines(mut self, limits: &Limits, clock: Clock) -> Self {
        self.watch = Some(Watch {
            clock,
            live: Liveness::new(limits, clock.now()),
            sleep: None,
            ping: None,
            flush: false,
            gone: 0,
        });
        self
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
        match this.poll_watch(cx) {
            Watched::Gone => return Poll::Ready(this.end_gone()),
            Watched::Idle if this.close == Close::Open => {
                this.close = Close::Send(CloseCode::Normal);
            }
            _ => {}
        }
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
                Poll::Ready(Some(Ok(msg))) if this.watch.as_mut().is_some_and(|w| w.ours(&msg)) => {
                    // The pong to the wrapper's own ping: not the handler's; read on.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
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
            let reason = match code {
                CloseCode::Size => TOO_BIG,
                CloseCode::Normal => IDLE,
                _ => GOING_AWAY,
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
        loop {
            match ready!(inner.as_mut().poll_next(cx)) {
                Some(Ok(msg)) if this.watch.as_mut().is_some_and(|w| w.ours(&msg)) => {}
                item => return Poll::Ready(item),
            }
        }
    }
}

impl Watch {
    /// A message from the client: data resets the idle clock; a pong that answers the
    /// wrapper's ping is the wrapper's (true), kept from the handler.
    fn ours(&mut self, msg: &Message) -> bool {
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                self.live.message(self.clock.now());
                false
            }
            Message::Pong(payload) => self.live.pong(payload, self.clock.now()),
            _ => false,
        }
    }
}

impl<W> DrainingWebSocket<W>
where
    W: Sink<Message, Error = Error> + Unpin,
{
    /// Checks the deadlines, arms the timer for the next, and sends a due ping when the
    /// sink takes it (a ping that cannot go out is not answered either: the client is gone
    /// one interval later).
    fn poll_watch(&mut self, cx: &mut Context<'_>) -> Watched {
        let Self {
            inner,
            watch,
            close,
            ..
        } = self;
        let Some(w) = watch else {
            return Watched::Nothing;
        };
        if w.gone > 0 {
            return Watched::Gone;
        }
        let (mut idle, mut waiting) = (false, false);
        // Bounded: a timer that fires a little early is re-armed, not spun on (the task is
        // woken to look again).
        for _ in 0..4 {
            match w.live.poll(w.clock.now()) {
                Due::Gone => {
                    w.gone = 1;
                    return Watched::Gone;
                }
                Due::Idle => idle = true,
                Due::Ping(payload) => w.ping = Some(payload),
                Due::Wait(None) => {
                    w.sleep = None;
                    waiting = true;
                    break;
                }
                Due::Wait(Some(at)) => {
                    if w.sleep.as_ref().is_none_or(|(armed, _)| *armed != at) {
                        w.sleep = Some((at, w.clock.sleep_until(at)));
                    }
                    match w.sleep.as_mut().map(|(_, s)| s.as_mut().poll(cx)) {
                        Some(Poll::Ready(())) => w.sleep = None,
                        _ => {
                            waiting = true;
                            break;
                        }
                    }
                }
            }
        }
        if !waiting {
            cx.waker().wake_by_ref();
        }
        let mut inner = Pin::new(inner);
        if *close != Close::Open {
            w.ping = None;
        }
        if let Some(payload) = w.ping
            && let Poll::Ready(ready) = inner.as_mut().poll_ready(cx)
        {
            w.ping = None;
            // An error (the write buffer is full: the client does not read) is not
            // retried: the ping stays unanswered and the client is gone at its deadline.
            let sent = ready.and_then(|()| {
                inner
                    .as_mut()
                    .start_send(Message::Ping(payload.to_vec().into()))
            });
            w.flush = sent.is_ok();
        }
        if w.flush && inner.poll_flush(cx).is_ready() {
            w.flush = false;
        }
        if idle {
            Watched::Idle
        } else {
            Watched::Nothing
        }
    }

    /// The stream's end for a client that is gone: the error once, then `None`.
    fn end_gone(&mut self) -> Option<Result<Message, Error>> {
        self.close = Close::Done;
        let w = self.watch.as_mut()?;
        if w.gone == 2 {
            return None;
        }
        w.gone = 2;
        Some(Err(gone()))
    }

    /// `Err` if the client is gone (checked before the sink waits or flushes).
    fn check_gone(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        match self.poll_watch(cx) {
            Watched::Gone => Err(gone()),
            Watched::Idle if self.close == Close::Open => {
                self.close = Close::Send(CloseCode::Normal);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl<W> Sink<Message> for DrainingWebSocket<W>
where
    W: Sink<Message, Error = Error> + Unpin,
{
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.check_gone(cx)?;
        Pin::new(&mut this.inner).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        let this = self.get_mut();
        if let (Message::Text(_) | Message::Binary(_), Some(w)) = (&item, &mut this.watch) {
            w.live.message(w.clock.now());
        }
        Pin::new(&mut this.inner).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.check_gone(cx)?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
