//! [`Liveness`]: when an open WebSocket is idle or its client gone, as sans-IO state; and
//! [`Clock`], the runtime's time that [`DrainingWebSocket`](crate::DrainingWebSocket) reads
//! it with.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use certauth_core::Limits;

/// A runtime's timer future, as [`Clock::sleep_until`] returns it.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A runtime's clock and timer, handed to the core's waiting state (the core reads no clock
/// and has no timer of its own): two plain functions, so an adapter's clock is a constant.
///
/// ```
/// # use certauth_engine::Clock;
/// # use std::time::Instant;
/// // With tokio: Clock::new(Instant::now, |at| Box::pin(tokio::time::sleep_until(at.into())))
/// const NEVER: Clock = Clock::new(Instant::now, |_| Box::pin(std::future::pending()));
/// ```
#[derive(Clone, Copy)]
pub struct Clock {
    now: fn() -> Instant,
    sleep_until: fn(Instant) -> Sleep,
}

impl Clock {
    /// The clock reading `now` and sleeping with `sleep_until`.
    pub const fn new(now: fn() -> Instant, sleep_until: fn(Instant) -> Sleep) -> Self {
        Self { now, sleep_until }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        (self.now)()
    }

    /// A future that resolves at `deadline`.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        (self.sleep_until)(deadline)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// What [`Liveness::poll`] asks of the WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing before this time (`None`: nothing ever).
    Wait(Option<Instant>),
    /// Send a ping with this payload.
    Ping([u8; 8]),
    /// No message for [`Limits::websocket_idle_timeout`]: send a close (1000).
    Idle,
    /// The client did not answer a ping, or the close, in time: drop the connection.
    Gone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ping {
    /// The next ping goes out at this time.
    NextAt(Instant),
    /// This ping went out at this time and is not answered yet.
    Sent([u8; 8], Instant),
}

/// The idle clock and the ping/pong check of one open WebSocket ([`Limits`]'
/// `websocket_idle_timeout` and `websocket_ping_interval`), given the time at each event.
#[derive(Clone, Debug)]
pub(crate) struct Liveness {
    idle_timeout: Duration,
    ping_interval: Duration,
    last_message: Instant,
    ping: Ping,
    pings: u64,
    closing_since: Option<Instant>,
}

/// `at + d`, `None` past what an `Instant` holds (`Duration::MAX`: never).
fn after(at: Instant, d: Duration) -> Option<Instant> {
    at.checked_add(d)
}

impl Liveness {
    /// A WebSocket that opened at `now`.
    pub(crate) fn new(limits: &Limits, now: Instant) -> Self {
        Self {
            idle_timeout: limits.websocket_idle_timeout,
            ping_interval: limits.websocket_ping_interval,
            last_message: now,
            ping: Ping::NextAt(now),
            pings: 0,
            closing_since: None,
        }
        .with_next_ping(now)
    }

    fn with_next_ping(mut self, now: Instant) -> Self {
        self.ping = match after(now, self.ping_interval) {
            Some(at) => Ping::NextAt(at),
            // Never: a ping that would go out after every other deadline.
            None => Ping::Sent([0; 8], now),
        };
        self
    }

    /// A text or binary message went either way at `now`.
    pub(crate) fn message(&mut self, now: Instant) {
        self.last_message = now;
    }

    /// A pong with `payload` arrived at `now`: if it answers the ping out (true), the next
    /// goes out one interval later.
    pub(crate) fn pong(&mut self, payload: &[u8], now: Instant) -> bool {
        let answers = matches!(self.ping, Ping::Sent(sent, _) if payload == sent)
            && after(now, self.ping_interval).is_some();
        if answers {
            *self = self.clone().with_next_ping(now);
        }
        answers
    }

    /// What is due at `now`. A ping it asks for counts as sent at `now`.
    pub(crate) fn poll(&mut self, now: Instant) -> Due {
        let gone_at = match (self.closing_since, self.ping) {
            (Some(since), _) => after(since, self.ping_interval),
            (None, Ping::Sent(_, at)) => after(at, self.ping_interval),
            (None, Ping::NextAt(_)) => None,
        };
        if gone_at.is_some_and(|t| t <= now) {
            return Due::Gone;
        }
        if self.closing_since.is_some() {
            return Due::Wait(gone_at);
        }
        let idle_at = after(self.last_message, self.idle_timeout);
        if idle_at.is_some_and(|t| t <= now) {
            self.closing_since = Some(now);
            return Due::Idle;
        }
        if let Ping::NextAt(at) = self.ping
            && at <= now
        {
            self.pings += 1;
            let payload = self.pings.to_be_bytes();
            self.ping = Ping::Sent(payload, now);
            return Due::Ping(payload);
        }
        let next_ping = match self.ping {
            Ping::NextAt(at) => Some(at),
            Ping::Sent(..) => None,
        };
        Due::Wait([idle_at, next_ping, gone_at].into_iter().flatten().min())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(
        clippy::disallowed_methods,
        reason = "a base for fixed offsets in tests"
    )]
    fn t0() -> Instant {
        Instant::now()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn limits(idle: Duration, ping: Duration) -> Limits {
        Limits::DEFAULT
            .with_websocket_idle_timeout(idle)
            .with_websocket_ping_interval(ping)
    }

    #[test]
    fn pings_each_interval_while_answered() {
        let t = t0();
        let mut l = Liveness::new(&limits(secs(300), secs(30)), t);
        assert_eq!(l.poll(t), Due::Wait(Some(t + secs(30))));
        let Due::Ping(p) = l.poll(t + secs(30)) else {
            panic!("no ping")
        };
        assert_eq!(l.poll(t + secs(31)), Due::Wait(Some(t + secs(60))));
        assert!(l.pong(&p, t + secs(32)));
        assert!(!l.pong(&p, t + secs(32)), "answered once");
        assert_eq!(l.poll(t + secs(33)), Due::Wait(Some(t + secs(62))));
        let Due::Ping(q) = l.poll(t + secs(62)) else {
            panic!("no second ping")
        };
        assert_ne!(p, q, "each ping has its own payload");
    }

    #[test]
    fn an_unanswered_ping_means_gone() {
        let t = t0();
        let mut l = Liveness::new(&limits(secs(300), secs(30)), t);
        let Due::Ping(p) = l.poll(t + secs(30)) else {
            panic!("no ping")
        };
        // A pong that does not carry the ping's payload (sent without reading) is no answer.
        assert!(!l.pong(b"guessed", t + secs(40)));
        assert!(!l.pong(&[0; 8], t + secs(41)));
        assert_eq!(l.poll(t + secs(59)), Due::Wait(Some(t + secs(60))));
        assert_eq!(l.poll(t + secs(60)), Due::Gone);
        let _ = p;
    }

    #[test]
    fn idle_without_messages_then_gone_without_the_close_reply() {
        let t = t0();
        let mut l = Liveness::new(&limits(secs(10), secs(4)), t);
        l.message(t + secs(3));
        let Due::Ping(p) = l.poll(t + secs(4)) else {
            panic!("no ping")
        };
        l.pong(&p, t + secs(5));
        assert_eq!(l.poll(t + secs(6)), Due::Wait(Some(t + secs(9))));
        let Due::Ping(p) = l.poll(t + secs(9)) else {
            panic!("no ping")
        };
        l.pong(&p, t + secs(9));
        assert_eq!(l.poll(t + secs(12)), Due::Wait(Some(t + secs(13))));
        assert_eq!(l.poll(t + secs(13)), Due::Idle);
        assert_eq!(l.poll(t + secs(14)), Due::Wait(Some(t + secs(17))));
        assert_eq!(l.poll(t + secs(17)), Due::Gone);
    }

    #[test]
    fn a_clock_debugs_as_its_name() {
        let clock = Clock::new(t0, |_| Box::pin(std::future::pending()));
        assert_eq!(format!("{clock:?}"), "Clock");
    }

    #[test]
    fn duration_max_never_pings_nor_idles() {
        let t = t0();
        let mut l = Liveness::new(&limits(Duration::MAX, Duration::MAX), t);
        assert_eq!(l.poll(t + secs(1_000_000)), Due::Wait(None));
        l.pong(&[0; 8], t + secs(1));
        assert_eq!(l.poll(t + secs(2_000_000)), Due::Wait(None));
    }
}
