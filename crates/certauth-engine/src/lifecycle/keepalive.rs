//! [`KeepAlive`]: how long an HTTP connection may sit idle between requests.

use std::time::{Duration, Instant};

use super::Phase;
use certauth_core::Limits;

/// How long a connection's task waits before it looks at its clock again while a request
/// is in flight, at most (`Duration::MAX` would overflow an `Instant`).
pub const LOOK_AGAIN_AT_MOST: Duration = Duration::from_secs(24 * 60 * 60);

/// And at least: with an idle timeout of zero (no keep-alive) a look due at once would wake
/// the task at every tick of the timer for as long as the request runs (the twelfth attack
/// review). A connection idle after it is closed within this.
pub const LOOK_AGAIN_AT_LEAST: Duration = Duration::from_millis(100);

/// The keep-alive clock of one HTTP/1.1 or HTTP/2 connection (certauth-hyper's serve): idle
/// from its last response (or its handshake) until a request starts; when it has been idle
/// for [`Limits::idle_timeout`] it is shut down gracefully. A request in flight (HTTP/2:
/// any stream) stops the clock, however long it runs. A client that trickles the head of
/// its next request is still idle, so the idle timeout also bounds every head after the
/// first (the first is bounded by [`Limits::head_read_timeout`] in
/// [`Connections`](super::Connections)).
///
/// It also knows whether the connection is authenticated: only once the layer has allowed
/// one of its requests ([`Self::authenticated`]). Until then each start and end of a request
/// names the pending phase to report ([`Phase::Request`] while one is in flight, else
/// [`Phase::Head`]), so that open routes and refused requests never make a connection
/// `Open`, and each of their steps is bounded by the head deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    idle_timeout: Duration,
    in_flight: usize,
    idle_since: Instant,
    authenticated: bool,
}

impl KeepAlive {
    /// A connection idle since `now`, not authenticated.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Self {
            idle_timeout: limits.idle_timeout,
            in_flight: 0,
            idle_since: now,
            authenticated: false,
        }
    }

    /// A request started. The phase to report for the connection, until it is
    /// authenticated.
    pub fn request_started(&mut self) -> Option<Phase> {
        self.in_flight += 1;
        self.pending_phase()
    }

    /// A request's response is ready, or the request was dropped (a reset stream, a client
    /// gone): its body may still stream, and a graceful shutdown lets it finish. The phase to
    /// report for the connection, until it is authenticated.
    pub fn request_finished(&mut self, now: Instant) -> Option<Phase> {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.idle_since = now;
        }
        self.pending_phase()
    }

    /// The layer allowed a request: [`Phase::Open`] to report the first time, `None` after.
    pub fn authenticated(&mut self) -> Option<Phase> {
        (!std::mem::replace(&mut self.authenticated, true)).then_some(Phase::Open)
    }

    /// Whether the layer has allowed one of its requests ([`Self::authenticated`]).
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    fn pending_phase(&self) -> Option<Phase> {
        let serving = self.in_flight > 0;
        (!self.authenticated).then_some(if serving { Phase::Request } else { Phase::Head })
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// When the connection will have been idle too long, `None` while a request is in flight
    /// (or never: `Duration::MAX`).
    pub fn deadline(&self) -> Option<Instant> {
        (self.in_flight == 0)
            .then(|| self.idle_since.checked_add(self.idle_timeout))
            .flatten()
    }

    /// When the connection's task is to look at this clock next, its timer being `set` to
    /// fire then: at the deadline; with a request in flight (or no idle timeout), later:
    /// the look already set while it is ahead (the timer is not moved at each turn of the
    /// task), else [`Limits::idle_timeout`] on, within [`LOOK_AGAIN_AT_LEAST`] and
    /// [`LOOK_AGAIN_AT_MOST`].
    pub fn next_look(&self, set: Instant, now: Instant) -> Instant {
        match self.deadline() {
            Some(deadline) => deadline,
            None if set > now => set,
            None => {
                now + self
                    .idle_timeout
                    .clamp(LOOK_AGAIN_AT_LEAST, LOOK_AGAIN_AT_MOST)
            }
        }
    }

    /// Whether the connection has been idle too long at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| d <= now)
    }
}
