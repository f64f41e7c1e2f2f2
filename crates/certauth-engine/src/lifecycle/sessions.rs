//! [`SessionOwners`]: which client certificate opened which Engine.IO session (Socket.IO's
//! transport), so that a session id is never a bearer token; and how Engine.IO requests
//! name their session, read as engineioxide reads them.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use certauth_core::Authenticated;

/// Why a request naming an Engine.IO session may not reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionRefusal {
    /// The request was not authenticated, and the session was not opened by a client
    /// that was not either (or does not exist).
    NotAuthenticated,
    /// No session with this id was opened over polling (it does not exist, or was opened
    /// over a WebSocket, which never names it).
    Unknown,
    /// Another certificate opened it.
    OtherCertificate,
    /// Its binding was forgotten: no request named it for longer than the idle timeout.
    Idle,
    /// A client without authentication may not open a session now: as many sessions
    /// opened without it are live as [`SessionOwners::unauthenticated`] allows.
    TooManyUnauthenticated,
}

impl fmt::Display for SessionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAuthenticated => "the request is not authenticated",
            Self::Unknown => "no session with this id was opened over polling",
            Self::OtherCertificate => "another certificate opened this session",
            Self::Idle => "the session's binding expired after its idle timeout",
            Self::TooManyUnauthenticated => {
                "the most sessions opened without a client certificate are live"
            }
        })
    }
}

/// The certificate (leaf SHA-256) that opened each Engine.IO session, or none, and when a
/// request last named it. A session opened by an authenticated client is reached only with
/// its certificate; one opened without authentication only by requests without it, so that
/// such a client still gets its connect error over polling (it can never join a namespace:
/// socketioxide's connect middleware reads the opening request). Bindings not used for the
/// idle timeout are forgotten, swept as the table grows (at most twice what the last sweep
/// left, and at least 1,024), so it holds about what the live sessions need.
///
/// Sessions opened without authentication are bounded in number and in time
/// ([`Self::unauthenticated`]): each is reachable for at most its lifetime from its
/// opening (a refused client reads its connect error within milliseconds), and at most
/// `max` are live or being opened at once; past that a client without authentication gets
/// [`SessionRefusal::TooManyUnauthenticated`] from [`Self::handshake`]. Each
/// such session costs the Socket.IO server a socket and a queue, and without the cap a
/// client with no certificate could open them as fast as it can send handshakes.
#[derive(Debug)]
pub struct SessionOwners {
    idle: Duration,
    by_sid: HashMap<Box<str>, (Option<[u8; 32]>, Instant)>,
    sweep_at: usize,
    open: Unauthenticated,
}

/// The sessions opened without authentication: reserved (a handshake under way) and opened
/// (oldest first, each with its opening time), under `max`, each for `lifetime`.
#[derive(Debug)]
struct Unauthenticated {
    max: usize,
    lifetime: Duration,
    reserved: usize,
    opened: VecDeque<(Instant, Box<str>)>,
}

/// A handshake under way ([`SessionOwners::handshake`]): who opens the session, and for a
/// client without authentication the room reserved for it. Taken back once, by
/// [`SessionOwners::opened_by`] or [`SessionOwners::abandoned`] (not `Clone`: the room
/// cannot be given back twice).
#[derive(Debug)]
#[must_use = "give it back: SessionOwners::opened_by or SessionOwners::abandoned"]
pub struct Handshake {
    owner: Option<[u8; 32]>,
}

/// Default most sessions opened without authentication, live at once.
pub const DEFAULT_MAX_UNAUTHENTICATED_SESSIONS: usize = 1024;

/// Default time a session opened without authentication stays reachable.
pub const DEFAULT_UNAUTHENTICATED_SESSION_LIFETIME: Duration = Duration::from_secs(10);

const FIRST_SWEEP: usize = 1024;

impl SessionOwners {
    /// An empty table forgetting a binding after `idle` without a request naming it.
    ///
    /// Sessions opened without authentication: at most
    /// [`DEFAULT_MAX_UNAUTHENTICATED_SESSIONS`] at once, each reachable for
    /// [`DEFAULT_UNAUTHENTICATED_SESSION_LIFETIME`] ([`Self::unauthenticated`]).
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            by_sid: HashMap::new(),
            sweep_at: FIRST_SWEEP,
            open: Unauthenticated {
                max: DEFAULT_MAX_UNAUTHENTICATED_SESSIONS,
                lifetime: DEFAULT_UNAUTHENTICATED_SESSION_LIFETIME,
                reserved: 0,
                opened: VecDeque::new(),
            },
        }
    }

    /// At most `max` sessions opened without authentication live (or being opened) at
    /// once, each reachable for `lifetime` from its opening (not renewed by use). `max` 0
    /// refuses them all: a client without a certificate then gets no connect error over
    /// polling, only the refusal of its handshake.
    pub fn unauthenticated(mut self, max: usize, lifetime: Duration) -> Self {
        self.open.max = max;
        self.open.lifetime = lifetime;
        self
    }

    /// Forgets a binding after `idle` without a request naming it.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// A handshake (a request naming no session) from `client` (`None`: not
    /// authenticated) at `now`: for a client without authentication, room for its session
    /// is reserved, or [`SessionRefusal::TooManyUnauthenticated`]. The [`Handshake`] goes
    /// to [`Self::opened_by`] (the session it opened) or to [`Self::abandoned`] (it opened
    /// none), once.
    pub fn handshake(
        &mut self,
        client: Option<&Authenticated>,
        now: Instant,
    ) -> Result<Handshake, SessionRefusal> {
        let owner = owner(client);
        if owner.is_none() {
            self.expire(now);
            let live = self.open.reserved.saturating_add(self.open.opened.len());
            if live >= self.open.max {
                return Err(SessionRefusal::TooManyUnauthenticated);
            }
            self.open.reserved = self.open.reserved.saturating_add(1);
        }
        Ok(Handshake { owner })
    }

    /// `handshake` opened no session (an error, a WebSocket, which never names it): the
    /// room it reserved is free.
    pub fn abandoned(&mut self, handshake: Handshake) {
        if handshake.owner.is_none() {
            self.open.reserved = self.open.reserved.saturating_sub(1);
        }
    }

    /// `handshake` opened session `sid` at `now` (in the room it reserved).
    pub fn opened_by(&mut self, sid: &str, handshake: Handshake, now: Instant) {
        let owner = handshake.owner;
        self.abandoned(handshake);
        self.bind(sid, owner, now);
    }

    /// `client` (`None`: not authenticated; counted under [`Self::unauthenticated`]'s cap,
    /// which a session opened without a [`Self::handshake`] may pass) opened session `sid`
    /// at `now`.
    pub fn opened(&mut self, sid: &str, client: Option<&Authenticated>, now: Instant) {
        self.bind(sid, owner(client), now);
    }

    fn bind(&mut self, sid: &str, owner: Option<[u8; 32]>, now: Instant) {
        self.expire(now);
        if self.by_sid.len() >= self.sweep_at {
            let idle = self.idle;
            self.by_sid
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < idle);
            self.sweep_at = self.by_sid.len().saturating_mul(2).max(FIRST_SWEEP);
        }
        if owner.is_none() {
            self.open.opened.push_back((now, sid.into()));
        }
        self.by_sid.insert(sid.into(), (owner, now));
    }

    /// Forgets the sessions opened without authentication whose lifetime is over.
    fn expire(&mut self, now: Instant) {
        let lifetime = self.open.lifetime;
        while let Some((at, sid)) = self.open.opened.front() {
            if now.saturating_duration_since(*at) < lifetime {
                break;
            }
            // Only if no client with a certificate has since opened a session of that id.
            if self
                .by_sid
                .get(sid)
                .is_some_and(|(owner, _)| owner.is_none())
            {
                self.by_sid.remove(sid);
            }
            self.open.opened.pop_front();
        }
    }

    /// Whether a request from `client` (`None`: not authenticated) naming session `sid` at
    /// `now` may reach it.
    pub fn check(
        &mut self,
        sid: &str,
        client: Option<&Authenticated>,
        now: Instant,
    ) -> Result<(), SessionRefusal> {
        self.expire(now);
        let mismatch = match client {
            None => SessionRefusal::NotAuthenticated,
            Some(_) => SessionRefusal::OtherCertificate,
        };
        let Some((bound, seen)) = self.by_sid.get_mut(sid) else {
            return Err(if client.is_none() {
                SessionRefusal::NotAuthenticated
            } else {
                SessionRefusal::Unknown
            });
        };
        if *bound != owner(client) {
            return Err(mismatch);
        }
        if now.saturating_duration_since(*seen) >= self.idle {
            return Err(SessionRefusal::Idle);
        }
        *seen = now;
        Ok(())
    }

    /// Sessions bound.
    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    /// Whether none is bound.
    pub fn is_empty(&self) -> bool {
        self.by_sid.is_empty()
    }
}

/// Who a client is to a session: its leaf's SHA-256, or nobody.
fn owner(client: Option<&Authenticated>) -> Option<[u8; 32]> {
    client.map(|c| *c.certificate().fingerprint_sha256())
}

/// Whether `path` is under Engine.IO's `req_path`, as engineioxide matches it (`/socket.io`
/// takes `/socket.io/` but not `/socket.io-admin`).
pub fn engine_io_path(path: &str, req_path: &str) -> bool {
    path.strip_prefix(req_path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || req_path.ends_with('/'))
}

/// The session a request's query names, read as engineioxide reads it (the first `sid=`,
/// as written): any difference would let a request name one session here and another there.
pub fn engine_io_sid(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|s| s.strip_prefix("sid="))
}

/// The session id an Engine.IO open packet carries (`0{"sid":"…",…}`, or with Engine.IO
/// 3's length prefix), if `data` starts with one.
pub fn engine_io_opened_sid(data: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(data).ok()?;
    let packet = match text.split_once(':') {
        Some((length, packet)) if length.bytes().all(|b| b.is_ascii_digit()) => packet,
        _ => text,
    };
    let rest = packet.strip_prefix("0{")?;
    let start = rest.find("\"sid\":\"")?.checked_add(7)?;
    let sid = rest.get(start..)?.split('"').next()?;
    let valid = (1..=64).contains(&sid.len())
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(sid)
}
