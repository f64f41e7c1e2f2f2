//! [`SessionOwners`]: which client certificate opened which Engine.IO session (Socket.IO's
//! transport), so that a session id is never a bearer token; and how Engine.IO requests
//! name their session, read as engineioxide reads them.

use std::collections::HashMap;
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
}

impl fmt::Display for SessionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAuthenticated => "the request is not authenticated",
            Self::Unknown => "no session with this id was opened over polling",
            Self::OtherCertificate => "another certificate opened this session",
            Self::Idle => "the session's binding expired after its idle timeout",
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
#[derive(Debug)]
pub struct SessionOwners {
    idle: Duration,
    by_sid: HashMap<Box<str>, (Option<[u8; 32]>, Instant)>,
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 1024;

impl SessionOwners {
    /// An empty table forgetting a binding after `idle` without a request naming it.
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            by_sid: HashMap::new(),
            sweep_at: FIRST_SWEEP,
        }
    }

    /// `client` (`None`: not authenticated) opened session `sid` at `now`.
    pub fn opened(&mut self, sid: &str, client: Option<&Authenticated>, now: Instant) {
        if self.by_sid.len() >= self.sweep_at {
            let idle = self.idle;
            self.by_sid
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < idle);
            self.sweep_at = self.by_sid.len().saturating_mul(2).max(FIRST_SWEEP);
        }
        self.by_sid.insert(sid.into(), (owner(client), now));
    }

    /// Whether a request from `client` (`None`: not authenticated) naming session `sid` at
    /// `now` may reach it.
    pub fn check(
        &mut self,
        sid: &str,
        client: Option<&Authenticated>,
        now: Instant,
    ) -> Result<(), SessionRefusal> {
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
