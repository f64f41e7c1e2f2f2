//! The connection lifecycle every serve helper runs, as sans-IO state: admission, shedding,
//! deadlines and draining. No lock, no waker, no I/O error: each call takes the time and
//! returns what to do.
//!
//! The serve loop of `certauth-engine` (which `certauth-tokio`, `certauth-smol` and
//! `certauth-hyper`, and so the `certauth` CLI, run on) keeps no policy of its own: it asks
//! [`Connections`] what to do, passing the current time, as quinn drives quinn-proto's
//! endpoint with its timers. The engine only accepts, spawns, sleeps until
//! [`Connections::poll_timeout`], cancels the connections the table names, and backs off
//! when accepting fails (shedding the stalest pending connection,
//! [`Connections::shed_stalest`], to free a descriptor).
//!
//! ```text
//!  accept loop ──poll_accept(now)──► Now | Wait{until}        (never stop accepting for good:
//!      │                                                        stalled connections are shed)
//!      ├─accept ok──admit(remote, now)──► Admitted{id, shed} | Refused(reason)
//!      ├─accept err─shed_stalest(now)──► shed                     (EMFILE: free a descriptor)
//!      ├─timer──────expired(now)──► connections past their phase deadline: cancel them
//!      └─shutdown───drain()──► pre-authentication connections to cancel; the engine's drain signal
//!  connection task ──advance(id, Head | Open, now)── close(id)
//! ```
//!
//! A connection is *pending* (pre-authentication) from its accept until it is authenticated
//! (the raw gates' Allow; on hyper, the first request the layer allows): first the TLS
//! handshake, bounded by [`Limits::handshake_timeout`](certauth_core::Limits::handshake_timeout),
//! then the request head, bounded by
//! [`Limits::head_read_timeout`](certauth_core::Limits::head_read_timeout) as one total deadline. On
//! hyper, requests served before any is allowed (open routes, refusals in `annotate_only`
//! mode) keep it pending, each step bounded by the head deadline ([`Phase::Request`]). Pending connections are capped ([`ServeOptions::max_pending`], and per address
//! with [`ServeOptions::max_pending_per_address`]); when the cap is reached the loop keeps
//! accepting and closes the pending connection that made the least progress (still in the
//! handshake before one waiting for its head; the longest-stalled first), once it has been
//! stalled for [`ServeOptions::shed_after`]. So idle and trickling clients cannot keep a
//! trusted client waiting for more than a few times `shed_after`. All connections together are
//! capped by [`ServeOptions::max_connections`].
//!
//! On shutdown ([`Connections::drain`]) the listener is closed at once, pending connections
//! are closed, authenticated ones get [`ServeOptions::grace`] to finish (WebSockets are sent
//! a 1001 close through the engine's drain signal, hyper finishes requests in flight), and what is left is
//! cancelled.

mod connections;
mod keepalive;
mod sessions;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use certauth_core::observe::Observer;
use certauth_core::proxy::protocol::ProxyProtocol;

pub use connections::{
    Accept, Admission, ConnId, Connections, Identity, Notice, Phase, Poll, Refusal, Shed,
};
pub use keepalive::{KeepAlive, LOOK_AGAIN_AT_LEAST, LOOK_AGAIN_AT_MOST};
pub use sessions::{
    DEFAULT_MAX_UNAUTHENTICATED_SESSIONS, DEFAULT_UNAUTHENTICATED_SESSION_LIFETIME, Handshake,
    SessionOwners, SessionRefusal, engine_io_opened_sid, engine_io_path, engine_io_sid,
};

/// What a serve helper may hold and for how long: connection caps, shedding and the
/// shutdown grace period, and whom it reports its connections to. Per-phase time limits are
/// in [`Limits`](certauth_core::Limits).
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Most connections open at once, authenticated or not. Default 10,000. At the cap the
    /// loop sheds a stalled pending connection for a new one, or, if every connection is
    /// authenticated, stops accepting (new clients wait in the listen backlog) until one
    /// closes.
    pub max_connections: usize,
    /// Most connections in the pre-authentication phase (TLS handshake and request head).
    /// Default 256. At the cap the loop keeps accepting and sheds the stalest.
    pub max_pending: usize,
    /// Most pre-authentication connections from one address; further ones from it are
    /// closed at once. Default: no cap (clients behind one NAT share an address).
    pub max_pending_per_address: Option<usize>,
    /// How [`Self::max_pending_per_address`] groups IPv6 clients: by their first this many
    /// bits (default 64, the prefix one subscriber or host usually holds, as nginx users key
    /// `limit_conn` by; 128 counts each address apart). An IPv4 address (or an IPv4-mapped
    /// IPv6 one) is always its own group.
    pub ipv6_prefix_len: u8,
    /// How long a pending connection must have made no progress before it may be shed for
    /// a new one. Default 250 ms: longer than a TLS handshake takes on a loaded server, short
    /// enough that a flood of idle connections filling [`Self::max_pending`] several times
    /// over (clients queue in the listen backlog meanwhile) delays a trusted client by about
    /// a second at most. Raise it if clients on slow links are shed under load.
    pub shed_after: Duration,
    /// After shutdown begins, how long authenticated connections may finish before they are
    /// cancelled. Default 5 s.
    pub grace: Duration,
    /// Most connections one client certificate (its [`Identity`]: the SHA-256 of the leaf)
    /// may hold open at once, WebSockets included; past it a new connection of that client
    /// is answered 429 (`TOO_MANY_CONNECTIONS`) and closed, so one client, however
    /// authenticated, cannot take every slot of [`Self::max_connections`]. Default: no cap.
    pub max_connections_per_identity: Option<usize>,
    /// Whom this loop reports its connections to (opened, dropped, closed, failed
    /// handshakes): see [`certauth_core::observe`]. Default: nobody (an operations listener that
    /// should not count itself is given none).
    pub observer: Option<Arc<dyn Observer>>,
    /// Connections arrive through a proxy that names each client with a PROXY-protocol
    /// header ([`certauth_core::proxy::protocol`]), accepted only from these proxies: the
    /// serve helpers read it before the TLS handshake
    /// ([`proxied_client`](crate::proxied_client); the engine's from their gate,
    /// `Gate::proxy_protocol`; certauth-hyper's from here), and admission does not count the
    /// peer (the proxy) under [`Self::max_pending_per_address`]; the connection counts under
    /// the client's address once its header is read ([`Connections::readdress`]). Default:
    /// none.
    pub proxy_protocol: Option<Arc<ProxyProtocol>>,
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("max_connections", &self.max_connections)
            .field("max_pending", &self.max_pending)
            .field("max_pending_per_address", &self.max_pending_per_address)
            .field("ipv6_prefix_len", &self.ipv6_prefix_len)
            .field("shed_after", &self.shed_after)
            .field("grace", &self.grace)
            .field(
                "max_connections_per_identity",
                &self.max_connections_per_identity,
            )
            .field("observed", &self.observer.is_some())
            .field("proxy_protocol", &self.proxy_protocol.is_some())
            .finish()
    }
}

/// Options are equal when their caps and times are, and they report to the same observer
/// and read PROXY headers from the same proxies.
impl PartialEq for ServeOptions {
    fn eq(&self, other: &Self) -> bool {
        let observer = |o: &Self| o.observer.as_ref().map(|o| Arc::as_ptr(o).cast::<()>());
        let proxies = |o: &Self| o.proxy_protocol.as_ref().map(Arc::as_ptr);
        (
            self.max_connections,
            self.max_pending,
            self.max_pending_per_address,
            self.ipv6_prefix_len,
            self.shed_after,
            self.grace,
            self.max_connections_per_identity,
            proxies(self),
        ) == (
            other.max_connections,
            other.max_pending,
            other.max_pending_per_address,
            other.ipv6_prefix_len,
            other.shed_after,
            other.grace,
            other.max_connections_per_identity,
            proxies(other),
        ) && observer(self) == observer(other)
    }
}

impl Eq for ServeOptions {}

impl ServeOptions {
    /// The defaults documented on each field.
    pub const DEFAULT: Self = Self {
        max_connections: 10_000,
        max_pending: 256,
        max_pending_per_address: None,
        ipv6_prefix_len: 64,
        shed_after: Duration::from_millis(250),
        grace: Duration::from_secs(5),
        max_connections_per_identity: None,
        observer: None,
        proxy_protocol: None,
    };

    /// With another [`Self::max_connections`] (at least 1).
    pub const fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = if n == 0 { 1 } else { n };
        self
    }

    /// With another [`Self::max_pending`] (at least 1).
    pub const fn with_max_pending(mut self, n: usize) -> Self {
        self.max_pending = if n == 0 { 1 } else { n };
        self
    }

    /// With a cap per address on pending connections (`None`: no cap; at least 1).
    pub const fn with_max_pending_per_address(mut self, n: Option<usize>) -> Self {
        self.max_pending_per_address = match n {
            Some(0) => Some(1),
            other => other,
        };
        self
    }

    /// With another [`Self::ipv6_prefix_len`] (at most 128).
    pub const fn with_ipv6_prefix_len(mut self, bits: u8) -> Self {
        self.ipv6_prefix_len = if bits > 128 { 128 } else { bits };
        self
    }

    /// The group `address` counts in for [`Self::max_pending_per_address`]: an IPv6
    /// address's first [`Self::ipv6_prefix_len`] bits (the rest zero), an IPv4 address
    /// itself.
    pub fn address_group(&self, address: IpAddr) -> IpAddr {
        match address {
            IpAddr::V4(_) => address,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let bits = u32::from(self.ipv6_prefix_len.min(128));
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
                }
            },
        }
    }

    /// With another [`Self::shed_after`].
    pub const fn with_shed_after(mut self, d: Duration) -> Self {
        self.shed_after = d;
        self
    }

    /// With a cap per client certificate on open connections (`None`: no cap; at least 1).
    pub const fn with_max_connections_per_identity(mut self, n: Option<usize>) -> Self {
        self.max_connections_per_identity = match n {
            Some(0) => Some(1),
            other => other,
        };
        self
    }

    /// Reporting its connections to `observer` ([`Self::observer`]).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Reading a PROXY-protocol header from `proxies` first ([`Self::proxy_protocol`]).
    pub fn with_proxy_protocol(mut self, proxies: ProxyProtocol) -> Self {
        self.proxy_protocol = Some(Arc::new(proxies));
        self
    }

    /// With another [`Self::grace`].
    pub const fn with_grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests;
