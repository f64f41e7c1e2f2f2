//! How much upstream work clients can cause. Each proxied request holds an upstream
//! connection from the moment it is sent until its response body ends (or its tunnel
//! closes), so requests in flight are upstream connections in use. Three caps bound them:
//!
//! - **per client connection**: at most [`Caps::per_connection`] requests in flight (HTTP/2
//!   streams; an HTTP/1.1 connection has one at a time anyway), of which at most
//!   [`Caps::open_per_connection`] without a client identity (an open path): one TLS
//!   connection without a certificate cannot turn a hundred streams into a hundred
//!   upstream connections;
//! - **for the whole upstream**: at most [`Caps::max_connections`] requests in flight,
//!   whatever the number of clients (upstream connections: those plus the idle ones kept for
//!   reuse, which are only opened when none is ready);
//! - of those, requests without an identity take at most half, rounded down: clients
//!   without a certificate can never take every upstream connection from trusted ones
//!   (with a cap of 1 they get none; `certauth serve` refuses that with `--open`).
//!
//! **Held until the upstream answers** (attack review s4, finding 3). A place is the
//! upstream's work, not the client's wait: it stays held until the response head arrives
//! (then until the body ends, or the tunnel closes), or the response timeout passes, even
//! when the client is gone before that (a reset HTTP/2 stream, a closed connection, a body
//! cut mid-upload). The exchange runs in a task of its own that owns the places and the
//! upstream connection; a client that left makes it drop the response once its head is in,
//! which closes that connection and frees the places. Freed when the client left instead,
//! one connection without a certificate resetting its streams had ~450 requests at a slow
//! upstream (one that does not stop working when its connection closes: thread-per-request
//! servers) under a cap of 1. A body the client cut is not cut for the upstream: it waits
//! for the rest (the client is answered 400 at once) until the response timeout, so an
//! upstream that answers without reading it frees the place as soon as it answers. Bounded
//! either way by the response timeout, a place a client gives up costs what a slow
//! request costs, and is counted as one. The exchange runs in the request's own task and
//! moves to a task of its own only if the client leaves first (`Finish`): a request pays
//! for no spawn.
//!
//! **Held while the request body is still going** (attack review s5, finding 3). An
//! upstream may answer before it has read the body (a 404 to an unrouted POST); its
//! connection is busy until the body is sent, so the request body holds the places too,
//! with the response body: freed with the response, one connection without a certificate
//! kept 17 upstream connections busy under an open share of 8, and six held 252 under a
//! cap of 64 (the upstream ran out of descriptors).
//!
//! **Held until the response body ends** (attack review s5, finding 1). A client that
//! leaves once the response head is in, or before it (the exchange then finishes in its
//! own task, and its response is a `ProxyBody` from the start: the fourth review found the
//! raw response dropped there), does not close the upstream connection: the rest of the
//! body is read and dropped, for at most the response timeout and 1 MiB (`Limits::max_drain_bytes`: past
//! it the connection is closed, so a download nobody receives is not pulled whole), with
//! the places held (`ProxyBody`'s drop). Closing it freed them while an upstream that goes on working for a
//! closed connection (a handler that sends its head and then works, in a thread-per-request
//! server) still worked: one connection without a certificate, resetting after each head,
//! kept 16 of an upstream's workers busy under an open share of 8. (nginx closes the
//! upstream connection there, `proxy_ignore_client_abort off`.)
//!
//! At a cap a request waits (backpressure: the client's stream stays open, nothing is read
//! from it) until a request ahead of it finishes, first come first served, for at most the
//! upstream's response timeout; then it is answered `503 Service Unavailable` with a body
//! naming the cap and a log line.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The caps on an [`Upstream`](super::Upstream)'s work ([`Upstream::caps`](super::Upstream::caps)),
/// each at least 1 (0 is read as 1). Start from [`Caps::DEFAULT`] and change what you need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caps {
    /// Requests in flight to the upstream at once, all client connections together (1024):
    /// each holds an upstream connection until its response body ends or its WebSocket
    /// closes. Requests without a client identity take at most half, rounded down.
    pub max_connections: usize,
    /// Requests one client connection may have in flight at once (HTTP/2 streams; an
    /// HTTP/1.1 connection has one at a time): 100, RFC 9113 §6.5.2's recommended minimum
    /// of concurrent streams, which browsers count on. Counted under
    /// [`serve`](crate::serve) only: elsewhere there is no connection to count by.
    pub per_connection: usize,
    /// Of those, requests without a client identity (open paths): 1, as many as an
    /// HTTP/1.1 connection has, so that one TLS connection without a certificate cannot
    /// open an upstream connection per HTTP/2 stream.
    pub open_per_connection: usize,
}

impl Caps {
    /// 1024 in all, 100 per client connection, 1 per client connection without identity.
    pub const DEFAULT: Self = Self {
        max_connections: 1024,
        per_connection: 100,
        open_per_connection: 1,
    };
}

impl Default for Caps {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An upstream's places under its [`Caps`], shared by its clones.
#[derive(Debug)]
pub(crate) struct Places {
    caps: Caps,
    all: Arc<Semaphore>,
    open: Arc<Semaphore>,
}

impl Default for Places {
    fn default() -> Self {
        Self::new(Caps::DEFAULT)
    }
}

/// Which cap a request waited at past its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// Its client connection's (`open`: the cap for requests without identity).
    Connection { cap: usize, open: bool },
    /// The upstream's (`open`: the share of requests without identity).
    Upstream { cap: usize, open: bool },
}

impl Full {
    /// The 503's body: which cap, and for how long nothing freed a place.
    pub(crate) fn body(self, waited: Duration) -> String {
        let secs = waited.as_secs_f64();
        let what = match self {
            Self::Connection { cap, open: false } => {
                format!("this connection has its most requests at the upstream at once ({cap})")
            }
            Self::Connection { cap, open: true } => format!(
                "this connection has its most requests without a client certificate at the upstream at once ({cap})"
            ),
            Self::Upstream { cap, open: false } => {
                format!("the upstream has its most requests in flight ({cap})")
            }
            Self::Upstream { cap, open: true } => format!(
                "the upstream has its most requests without a client certificate in flight ({cap})"
            ),
        };
        format!("Service Unavailable: {what}, and none finished within {secs}s; retry later\n")
    }

    /// What an operator can change (for the log line).
    pub(crate) fn setting(self) -> &'static str {
        match self {
            Self::Connection { open: false, .. } => {
                "Caps::per_connection (certauth serve --upstream-max-per-connection)"
            }
            Self::Connection { open: true, .. } => {
                "Caps::open_per_connection (certauth serve --upstream-open-per-connection)"
            }
            Self::Upstream { .. } => {
                "Caps::max_connections (certauth serve --upstream-max-connections)"
            }
        }
    }
}

impl Places {
    pub(crate) fn new(caps: Caps) -> Self {
        let caps = Caps {
            max_connections: caps.max_connections.clamp(1, Semaphore::MAX_PERMITS),
            per_connection: caps.per_connection.max(1),
            open_per_connection: caps.open_per_connection.max(1),
        };
        Self {
            caps,
            all: Arc::new(Semaphore::new(caps.max_connections)),
            open: Arc::new(Semaphore::new(Self::open_share(caps.max_connections))),
        }
    }

    /// The requests without identity the upstream takes at once: half of `max`, rounded down
    /// (attack review s4: rounded up, a cap of 1 gave them the only place). With a cap of 1
    /// they get none: each waits for the response timeout, then 503 (`certauth serve`
    /// refuses `--upstream-max-connections 1` with `--open`).
    fn open_share(max: usize) -> usize {
        max / 2
    }

    /// A place for `req` (`open`: without a client identity) on its client connection and
    /// at the upstream, waited for within `timeout`; past it, the 503's body (and a log line).
    pub(crate) async fn admit<B>(
        &self,
        req: &http::Request<B>,
        open: bool,
        timeout: Duration,
    ) -> Result<Held, String> {
        let conn = crate::ConnState::of(req).map(|c| &c.proxied);
        let deadline = Instant::now().checked_add(timeout);
        self.enter(conn, open, deadline).await.map_err(|full| {
            let body = full.body(timeout);
            let remote = req
                .extensions()
                .get::<crate::ConnectionInfo>()
                .and_then(crate::ConnectionInfo::remote_addr);
            tracing::warn!(remote = ?remote, "request refused (503): {}; see {}", body.trim_end(), full.setting());
            body
        })
    }

    /// [`Self::admit`] when every place is free now (the usual case): taken without waiting,
    /// in the same order, or none taken (`None`: then wait in `admit`). A request pays for
    /// no timer and no future to wait in until it has to.
    pub(crate) fn try_admit<B>(&self, req: &http::Request<B>, open: bool) -> Option<Held> {
        let conn = crate::ConnState::of(req).map(|c| &c.proxied);
        self.try_enter(conn, open)
    }

    fn try_enter(&self, conn: Option<&Arc<PerConnection>>, open: bool) -> Option<Held> {
        let connection = match conn {
            Some(c) => Some(c.try_enter(
                open,
                self.caps.per_connection,
                self.caps.open_per_connection,
            )?),
            None => None,
        };
        let open_permit = if open {
            Some(Arc::clone(&self.open).try_acquire_owned().ok()?)
        } else {
            None
        };
        let all = Arc::clone(&self.all).try_acquire_owned().ok()?;
        Some(Held {
            _connection: connection,
            _open: open_permit,
            _all: all,
        })
    }

    /// A place for one request (`open`: without a client identity) on `conn` (none outside
    /// certauth-hyper's serve loop: no per-connection cap then) and at the upstream, waiting
    /// for one until `deadline` (none: for as long as it takes). Places are taken in that
    /// order, so a request waiting for its connection holds none of the upstream's.
    async fn enter(
        &self,
        conn: Option<&Arc<PerConnection>>,
        open: bool,
        deadline: Option<Instant>,
    ) -> Result<Held, Full> {
        let connection = match conn {
            Some(c) => {
                let (cap, open_cap) = (self.caps.per_connection, self.caps.open_per_connection);
                let entered = until(deadline, c.enter(open, cap, open_cap)).await;
                // Which of the two caps held it: the one for requests without identity
                // only if that one is full.
                let full = || {
                    let open_full = open && c.counts().open >= open_cap;
                    Full::Connection {
                        cap: if open_full { open_cap } else { cap },
                        open: open_full,
                    }
                };
                Some(entered.ok_or_else(full)?)
            }
            None => None,
        };
        let open_permit = if open {
            let cap = Self::open_share(self.caps.max_connections);
            let acquire = Arc::clone(&self.open).acquire_owned();
            let permit = until(deadline, acquire).await.and_then(Result::ok);
            Some(permit.ok_or(Full::Upstream { cap, open })?)
        } else {
            None
        };
        let acquire = Arc::clone(&self.all).acquire_owned();
        let all = until(deadline, acquire).await.and_then(Result::ok);
        let all = all.ok_or(Full::Upstream {
            cap: self.caps.max_connections,
            open: false,
        })?;
        Ok(Held {
            _connection: connection,
            _open: open_permit,
            _all: all,
        })
    }
}

/// `future`'s output, unless `deadline` passes first.
async fn until<T>(deadline: Option<Instant>, future: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, future).await.ok(),
        None => Some(future.await),
    }
}

/// A request's places at its caps, given back when it is dropped: with the last of the
/// response body and the request body (the upstream connection is free again only when
/// both are done: an upstream may answer before it has read the request) or when its
/// tunnel closes.
#[derive(Debug)]
pub(crate) struct Held {
    _connection: Option<Slot>,
    _open: Option<OwnedSemaphorePermit>,
    _all: OwnedSemaphorePermit,
}

/// One client connection's requests in flight to the upstream.
#[derive(Debug, Default)]
pub(crate) struct PerConnection {
    counts: Mutex<Counts>,
    freed: Notify,
}

#[derive(Debug, Default)]
struct Counts {
    all: usize,
    open: usize,
}

impl PerConnection {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the connection has fewer than `cap` requests in flight (and, for an
    /// `open` one, fewer than `open_cap` without identity), then counts this one.
    async fn enter(self: &Arc<Self>, open: bool, cap: usize, open_cap: usize) -> Slot {
        loop {
            // Registered before looking, so a place freed in between is not missed.
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_enter(open, cap, open_cap) {
                return slot;
            }
            freed.await;
        }
    }

    /// [`Self::enter`] if there is room now.
    fn try_enter(self: &Arc<Self>, open: bool, cap: usize, open_cap: usize) -> Option<Slot> {
        let mut counts = self.counts();
        if counts.all < cap && (!open || counts.open < open_cap) {
            counts.all += 1;
            counts.open += usize::from(open);
            return Some(Slot {
                conn: Arc::clone(self),
                open,
            });
        }
        None
    }
}

/// A request's place on its client connection.
#[derive(Debug)]
struct Slot {
    conn: Arc<PerConnection>,
    open: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut counts = self.conn.counts();
            counts.all = counts.all.saturating_sub(1);
            if self.open {
                counts.open = counts.open.saturating_sub(1);
            }
        }
        self.conn.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(max_connections: usize, per_connection: usize, open_per_connection: usize) -> Places {
        Places::new(Caps {
            max_connections,
            per_connection,
            open_per_connection,
        })
    }

    /// A deadline for a wait that must succeed: a test fails rather than hangs when it
    /// does not.
    fn soon() -> Option<Instant> {
        now_plus(2000)
    }

    fn now_plus(ms: u64) -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(ms))
    }

    #[tokio::test]
    async fn an_open_request_waits_for_its_connection_then_gets_503() {
        let caps = places(8, 2, 1);
        let conn = Arc::new(PerConnection::default());
        let first = caps.enter(Some(&conn), true, soon()).await.unwrap();
        let full = caps.enter(Some(&conn), true, now_plus(100)).await;
        assert_eq!(full.unwrap_err(), Full::Connection { cap: 1, open: true });
        // An identified request on the same connection still goes.
        let trusted = caps.enter(Some(&conn), false, now_plus(100)).await.unwrap();
        drop(first);
        let again = caps.enter(Some(&conn), true, now_plus(100)).await.unwrap();
        let full = caps.enter(Some(&conn), true, now_plus(100)).await;
        assert_eq!(full.unwrap_err(), Full::Connection { cap: 1, open: true });
        drop(again);
        let again = caps.enter(Some(&conn), false, now_plus(100)).await.unwrap();
        // Two in flight: the connection's cap, whoever asks (and so named to an open one).
        let full = caps.enter(Some(&conn), true, now_plus(100)).await;
        assert_eq!(
            full.unwrap_err(),
            Full::Connection {
                cap: 2,
                open: false
            }
        );
        let full = caps.enter(Some(&conn), false, now_plus(100)).await;
        assert_eq!(
            full.unwrap_err(),
            Full::Connection {
                cap: 2,
                open: false
            }
        );
        drop((trusted, again));
    }

    #[tokio::test]
    async fn a_waiting_request_goes_when_a_place_is_freed() {
        let caps = Arc::new(places(8, 1, 1));
        let conn = Arc::new(PerConnection::default());
        let first = caps.enter(Some(&conn), false, soon()).await.unwrap();
        let waiting = {
            let (caps, conn) = (Arc::clone(&caps), Arc::clone(&conn));
            tokio::spawn(async move { caps.enter(Some(&conn), false, soon()).await.is_ok() })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn the_upstream_cap_holds_across_connections_and_keeps_half_for_identified() {
        let caps = places(4, 100, 1);
        let conns: Vec<_> = (0..5).map(|_| Arc::new(PerConnection::default())).collect();
        let a = caps.enter(Some(&conns[0]), true, soon()).await.unwrap();
        let b = caps.enter(Some(&conns[1]), true, soon()).await.unwrap();
        // Open requests have their half (2 of 4).
        let full = caps.enter(Some(&conns[2]), true, now_plus(100)).await;
        assert_eq!(full.unwrap_err(), Full::Upstream { cap: 2, open: true });
        // The identified ones the rest.
        let c = caps.enter(Some(&conns[3]), false, soon()).await.unwrap();
        let d = caps.enter(None, false, soon()).await.unwrap();
        let full = caps.enter(Some(&conns[4]), false, now_plus(100)).await;
        assert_eq!(
            full.unwrap_err(),
            Full::Upstream {
                cap: 4,
                open: false
            }
        );
        drop((a, b, c, d));
        assert!(caps.enter(Some(&conns[4]), false, soon()).await.is_ok());
    }

    /// The fast path takes exactly the places `enter` would, under every cap, and none
    /// when one is full (what it took on the way given back), so a request then waits in
    /// `admit` holding nothing.
    #[tokio::test]
    async fn try_enter_takes_what_enter_would_or_nothing() {
        let caps = places(4, 2, 1);
        let conn = Arc::new(PerConnection::default());
        let counts = |c: &Arc<PerConnection>| {
            let n = c.counts();
            (n.all, n.open)
        };
        // Open: the connection's open cap (1).
        let open = caps.try_enter(Some(&conn), true).unwrap();
        assert_eq!(counts(&conn), (1, 1));
        assert!(caps.try_enter(Some(&conn), true).is_none());
        assert_eq!(counts(&conn), (1, 1), "nothing kept by a refused try");
        // Identified: the connection's cap (2).
        let identified = caps.try_enter(Some(&conn), false).unwrap();
        assert_eq!(counts(&conn), (2, 1));
        assert!(caps.try_enter(Some(&conn), false).is_none());
        assert_eq!(
            (caps.all.available_permits(), caps.open.available_permits()),
            (2, 1)
        );
        // The upstream's open share (2 of 4), across connections; the connection's slot a
        // refused try took on the way is given back.
        let other = Arc::new(PerConnection::default());
        let second_open = caps.try_enter(Some(&other), true).unwrap();
        let third = Arc::new(PerConnection::default());
        assert!(caps.try_enter(Some(&third), true).is_none());
        assert_eq!(counts(&third), (0, 0));
        // The upstream's cap (4): one place left, then none; outside a connection too.
        let last = caps.try_enter(None, false).unwrap();
        assert!(caps.try_enter(Some(&third), false).is_none());
        assert!(caps.try_enter(None, false).is_none());
        assert_eq!(counts(&third), (0, 0));
        drop((open, identified, second_open, last));
        assert_eq!(counts(&conn), (0, 0));
        assert_eq!(
            (caps.all.available_permits(), caps.open.available_permits()),
            (4, 2)
        );
        // What was freed, a try takes again; and `enter` finds what a try left.
        let again = caps.try_enter(Some(&conn), true).unwrap();
        assert!(caps.enter(Some(&conn), false, soon()).await.is_ok());
        drop(again);
    }

    #[test]
    fn caps_are_at_least_one_and_the_body_names_the_cap() {
        let caps = places(0, 0, 0).caps;
        assert_eq!(
            (
                caps.max_connections,
                caps.per_connection,
                caps.open_per_connection
            ),
            (1, 1, 1)
        );
        assert_eq!(Places::open_share(1), 0);
        assert_eq!(Places::open_share(3), 1);
        assert_eq!(Places::open_share(1024), 512);
        let body = Full::Connection { cap: 1, open: true }.body(Duration::from_secs(2));
        assert!(
            body.contains("requests without a client certificate at the upstream at once (1)"),
            "{body}"
        );
        assert!(body.contains("within 2s"), "{body}");
        // The log line names what to change.
        let open = Full::Connection { cap: 1, open: true };
        assert!(open.setting().contains("--upstream-open-per-connection"));
        let all = Full::Connection {
            cap: 1,
            open: false,
        };
        assert!(all.setting().contains("--upstream-max-per-connection"));
        let upstream = Full::Upstream { cap: 1, open: true };
        assert!(upstream.setting().contains("--upstream-max-connections"));
    }
}
