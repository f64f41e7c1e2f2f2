//! The engine's runtime-free parts, polled by hand: the drain signal and the WebSocket
//! wrapper (moved here from the core with them).

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use certauth_core::Limits;

use crate::{Clock, Drain, DrainingWebSocket};

/// One instant to count from; every other time in these tests is an offset.
#[allow(
    clippy::disallowed_methods,
    reason = "a base for fixed offsets in tests"
)]
fn t0() -> Instant {
    Instant::now()
}

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn drain_signals_wake_their_waiters_once_each_step() {
    let drain = Drain::new();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    let mut cx = Context::from_waker(&waker);
    let mut draining = pin!(drain.draining());
    let mut cancelled = pin!(drain.cancelled());
    assert!(draining.as_mut().poll(&mut cx).is_pending());
    assert!(draining.as_mut().poll(&mut cx).is_pending(), "polled again");
    assert!(cancelled.as_mut().poll(&mut cx).is_pending());
    assert!(!drain.is_draining());
    drain.signal();
    assert_eq!(count.0.load(Ordering::SeqCst), 2, "one wake per waiter");
    assert!(drain.is_draining() && !drain.is_cancelled());
    assert!(draining.as_mut().poll(&mut cx).is_ready());
    assert!(cancelled.as_mut().poll(&mut cx).is_pending());
    drain.signal();
    drain.cancel();
    assert!(drain.is_cancelled());
    assert!(cancelled.as_mut().poll(&mut cx).is_ready());
    // A future made after the signal is ready at once; a default Drain never fires.
    assert!(drain.draining().fired());
    assert!(!Drain::default().draining().fired());
}

#[test]
fn holds_are_counted_and_released_wakes_the_waiter() {
    let drain = Drain::new();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    let mut cx = Context::from_waker(&waker);
    assert!(drain.released().fired(), "nothing held");
    let a = drain.hold();
    let b = drain.clone().hold();
    assert_eq!(drain.held(), 2);
    let mut released = pin!(drain.released());
    assert!(released.as_mut().poll(&mut cx).is_pending());
    drop(a);
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    drop(b);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert!(released.as_mut().poll(&mut cx).is_ready());
}

mod websocket {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::Poll;

    use async_tungstenite::tungstenite;
    use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use async_tungstenite::tungstenite::{Error, Message};
    use futures_util::{Sink, Stream};

    use super::*;

    /// A WebSocket stand-in: yields `incoming`, records what is sent.
    #[derive(Default)]
    struct Fake {
        incoming: VecDeque<Message>,
        sent: Vec<Message>,
        /// Yielded once `incoming` is empty (tungstenite's refusal of a message).
        fail: Option<Error>,
    }

    impl Stream for Fake {
        type Item = Result<Message, Error>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let this = self.get_mut();
            if this.incoming.is_empty()
                && let Some(e) = this.fail.take()
            {
                return Poll::Ready(Some(Err(e)));
            }
            match this.incoming.pop_front() {
                Some(m) => Poll::Ready(Some(Ok(m))),
                // The peer's close reply to ours ends the stream.
                None if this.sent.iter().any(Message::is_close) => Poll::Ready(None),
                None => Poll::Pending,
            }
        }
    }

    impl Sink<Message> for Fake {
        type Error = Error;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, m: Message) -> Result<(), Error> {
            self.get_mut().sent.push(m);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
            Poll::Ready(Ok(()))
        }
    }

    /// tungstenite refuses an oversized message with an error and sends nothing; the wrapper
    /// tells the client why (1009) before handing the error on.
    #[test]
    fn an_oversized_message_gets_close_1009_then_the_error() {
        use tungstenite::error::CapacityError;
        let drain = Drain::new();
        let fake = Fake {
            incoming: VecDeque::from([Message::text("fits")]),
            fail: Some(Error::Capacity(CapacityError::MessageTooLong {
                size: 2 << 20,
                max_size: 1 << 20,
            })),
            ..Fake::default()
        };
        let mut ws = DrainingWebSocket::new(fake, &drain);
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let mut next = |ws: &mut DrainingWebSocket<Fake>| Pin::new(ws).poll_next(&mut cx);
        assert!(matches!(next(&mut ws), Poll::Ready(Some(Ok(m))) if m == Message::text("fits")));
        assert!(ws.sent.is_empty());
        assert!(matches!(
            next(&mut ws),
            Poll::Ready(Some(Err(Error::Capacity(_))))
        ));
        let [Message::Close(Some(frame))] = &ws.sent[..] else {
            panic!("{:?}", ws.sent)
        };
        assert_eq!(frame.code, CloseCode::Size);
        assert_eq!(u16::from(frame.code), 1009);
        assert_eq!(frame.reason.as_str(), "message too big");
        // Other errors pass through without a close.
        let fake = Fake {
            fail: Some(Error::ConnectionClosed),
            ..Fake::default()
        };
        let mut ws = DrainingWebSocket::new(fake, &drain);
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(Some(Err(Error::ConnectionClosed)))
        ));
        assert!(ws.sent.is_empty());
    }

    thread_local! {
        static BASE: Instant = t0();
        static OFFSET: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
    }

    /// A clock the test moves by hand (per test thread), whose timers never fire: every
    /// deadline is checked when the socket is polled.
    const FAKE: Clock = Clock::new(
        || BASE.with(|b| *b) + OFFSET.with(std::cell::Cell::get),
        |_| Box::pin(std::future::pending()),
    );

    fn at(secs: f64) {
        OFFSET.with(|o| o.set(Duration::from_secs_f64(secs)));
    }

    fn deadlines(idle: u64, ping: u64) -> Limits {
        Limits::DEFAULT
            .with_websocket_idle_timeout(Duration::from_secs(idle))
            .with_websocket_ping_interval(Duration::from_secs(ping))
    }

    /// The ping goes out on time; its pong keeps the socket open; a ping left unanswered
    /// ends the stream with `TimedOut`, then `None`, and sends fail.
    #[test]
    fn an_unanswered_ping_ends_the_stream() {
        at(0.0);
        let drain = Drain::new();
        let mut ws = DrainingWebSocket::new(Fake::default(), &drain)
            .with_deadlines(&deadlines(300, 4), FAKE);
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        assert!(ws.sent.is_empty());
        at(4.0);
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        let [Message::Ping(payload)] = &ws.sent[..] else {
            panic!("{:?}", ws.sent)
        };
        // The answer is the wrapper's, kept from the handler; a pong it did not ask for is not.
        let pong = Message::Pong(payload.clone());
        ws.incoming.push_back(pong.clone());
        ws.incoming.push_back(pong);
        at(5.0);
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(Some(Ok(Message::Pong(_))))
        ));
        at(8.9);
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        assert_eq!(
            ws.sent.len(),
            1,
            "the next ping one interval after the pong"
        );
        at(9.0);
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        assert_eq!(ws.sent.len(), 2);
        at(13.0);
        match Pin::new(&mut ws).poll_next(&mut cx) {
            Poll::Ready(Some(Err(Error::Io(e)))) => {
                assert_eq!(e.kind(), io::ErrorKind::TimedOut);
                assert!(e.to_string().contains("did not answer a ping"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(None)
        ));
        assert!(matches!(
            Pin::new(&mut ws).poll_ready(&mut cx),
            Poll::Ready(Err(_))
        ));
    }

    /// Messages either way keep it open; none for the idle timeout: close 1000 `idle
    /// timeout`, and the client's reply ends the stream.
    #[test]
    fn an_idle_websocket_is_closed_with_1000() {
        at(0.0);
        let drain = Drain::new();
        let mut ws = DrainingWebSocket::new(Fake::default(), &drain)
            .with_deadlines(&deadlines(10, 300), FAKE);
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        at(6.0);
        ws.incoming.push_back(Message::text("in"));
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        at(12.0);
        Pin::new(&mut ws).start_send(Message::text("out")).unwrap();
        at(21.9);
        assert!(Pin::new(&mut ws).poll_next(&mut cx).is_pending());
        assert_eq!(ws.sent.len(), 1);
        at(22.0);
        assert!(matches!(
            Pin::new(&mut ws).poll_next(&mut cx),
            Poll::Ready(None)
        ));
        let Message::Close(Some(frame)) = &ws.sent[1] else {
            panic!("{:?}", ws.sent)
        };
        assert_eq!(frame.code, CloseCode::Normal);
        assert_eq!(frame.reason.as_str(), "idle timeout");
    }

    #[test]
    fn a_draining_server_sends_1001_then_the_stream_ends() {
        let drain = Drain::new();
        let mut fake = Fake::default();
        fake.incoming.push_back(Message::text("before"));
        let mut ws = DrainingWebSocket::new(fake, &drain);
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let mut next = |ws: &mut DrainingWebSocket<Fake>| Pin::new(ws).poll_next(&mut cx);
        assert!(matches!(next(&mut ws), Poll::Ready(Some(Ok(m))) if m == Message::text("before")));
        assert!(next(&mut ws).is_pending());
        assert!(ws.sent.is_empty());
        // A message that arrived before the drain is delivered before the close goes out.
        ws.incoming.push_back(Message::text("in flight"));
        drain.signal();
        assert!(
            matches!(next(&mut ws), Poll::Ready(Some(Ok(m))) if m == Message::text("in flight"))
        );
        assert!(ws.sent.is_empty());
        assert!(matches!(next(&mut ws), Poll::Ready(None)));
        let Message::Close(Some(frame)) = &ws.sent[0] else {
            panic!("{:?}", ws.sent)
        };
        assert_eq!(frame.code, CloseCode::Away);
        assert_eq!(frame.reason.as_str(), "server shutting down");
        assert_eq!(ws.sent.len(), 1, "one close");
        // Sends pass through.
        Pin::new(&mut ws).start_send(Message::text("x")).unwrap();
        assert_eq!(ws.into_inner().sent.len(), 2);
    }
}
