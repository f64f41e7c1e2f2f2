//! [`Connections`]: which connections a serve loop accepts, sheds and times out.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::ServeOptions;
use certauth_core::observe::{self, Event};
use certauth_core::{Authenticated, CertificateDer, Limits, ResponseHead, Status};

/// A connection's number in its [`Connections`] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How far a connection has got. Ordered by progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Phase {
    /// The TLS handshake. Deadline: [`Limits::handshake_timeout`].
    Handshake,
    /// Waiting for the (first) request head. Deadline: [`Limits::head_read_timeout`],
    /// counted from the start of this phase, however the bytes trickle in. On hyper, also
    /// between the requests of a connection no request of which has been allowed yet.
    Head,
    /// Serving a request on a connection no request of which has been allowed yet (hyper:
    /// an open route, a request refused in `annotate_only` mode, or one being decided).
    /// Still pending: shed after the connections waiting for a head, and bounded by
    /// [`Limits::head_read_timeout`] from the start of this phase; but on
    /// [`Connections::drain`] it is not closed at once: its request gets the grace period.
    Request,
    /// Authenticated: the raw gates' Allow, or the first request hyper's layer allowed
    /// (after which hyper's keep-alive idle time, [`KeepAlive`](super::KeepAlive), bounds
    /// it). No longer pre-authentication: never shed, no phase deadline.
    Open,
}

impl Phase {
    fn pending(self) -> bool {
        self != Self::Open
    }

    fn name(self) -> &'static str {
        match self {
            Self::Handshake => "TLS handshake",
            Self::Head => "request head",
            Self::Request => "unauthenticated request",
            Self::Open => "open",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the serve loop may accept now.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accept {
    /// Accept the next connection.
    Now,
    /// Every slot is taken by connections that may not be shed yet: leave new clients in
    /// the listen backlog until `until` (when the stalest pending connection may be shed),
    /// or until a connection advances or closes (`None`: only then).
    Wait {
        /// When to ask again at the latest.
        until: Option<Instant>,
    },
}

/// A pending connection closed to make room, or because its phase ran out of time.
#[must_use]
#[derive(Debug)]
#[non_exhaustive]
pub struct Shed<H> {
    /// Which.
    pub id: ConnId,
    /// The handle the adapter registered ([`Connections::set_handle`]): cancel it.
    pub handle: Option<H>,
    /// The phase it was in.
    pub phase: Phase,
    /// How long it had been in that phase.
    pub stalled: Duration,
    /// Its address.
    pub remote: Option<IpAddr>,
    /// Why it was closed.
    pub event: Event,
    /// The log line, when one is due.
    pub log: Option<Notice>,
}

impl<H> fmt::Display for Shed<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.event {
            Event::Expired => "its phase ran out of time",
            Event::AcceptFailed => "out of descriptors, it stalled longest",
            _ => "it stalled and the pre-authentication slots are full",
        };
        let from = self
            .remote
            .map(|a| format!(" from {a}"))
            .unwrap_or_default();
        write!(
            f,
            "closing connection {}{from} before authentication ({} for {:?}): {why}",
            self.id, self.phase, self.stalled
        )
    }
}

/// What the loop must do now: see [`Connections::poll`].
#[must_use]
#[derive(Debug)]
#[non_exhaustive]
pub struct Poll<H> {
    /// Connections whose phase ran out of time, removed: cancel them.
    pub expired: Vec<Shed<H>>,
    /// Whether to accept.
    pub accept: Accept,
    /// When to poll again at the latest (besides an accept or a wake-up).
    pub timeout: Option<Instant>,
    /// The loop stopped accepting because every slot is held: the log line, when one is due.
    pub full: Option<Notice>,
}

/// A log line the table decided is due (at most one per [`Event`] kind a second), with how
/// many like it were held back since the last one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notice {
    /// What happened.
    pub event: Event,
    /// How many more of the kind since the last line.
    pub suppressed: u64,
    text: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        match self.suppressed {
            0 => Ok(()),
            n => write!(f, " ({n} more like it since the last line)"),
        }
    }
}

/// Why a new connection is closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The server is shutting down.
    Draining,
    /// Its address (or its IPv6 prefix, [`ServeOptions::ipv6_prefix_len`]) already has
    /// [`ServeOptions::max_pending_per_address`] pending connections.
    PerAddress {
        /// The address, or the IPv6 prefix's network address.
        address: IpAddr,
        /// The cap.
        limit: usize,
    },
    /// [`ServeOptions::max_connections`] are open and none may be shed.
    TooMany {
        /// The cap.
        limit: usize,
    },
    /// The client's certificate already holds [`ServeOptions::max_connections_per_identity`]
    /// open connections (an authenticated connection: answered 429, then closed).
    PerIdentity {
        /// The cap.
        limit: usize,
    },
}

impl Refusal {
    /// The stable code: `TOO_MANY_CONNECTIONS` for [`Self::PerIdentity`] and
    /// [`Self::TooMany`], `SHUTTING_DOWN`, `TOO_MANY_PENDING`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Draining => "SHUTTING_DOWN",
            Self::PerAddress { .. } => "TOO_MANY_PENDING",
            Self::TooMany { .. } | Self::PerIdentity { .. } => "TOO_MANY_CONNECTIONS",
        }
    }

    /// The response for an authenticated connection refused: 429 with the code in the body
    /// (`Too Many Requests: TOO_MANY_CONNECTIONS`). (Refused new connections are closed
    /// before a byte is read: they get none.)
    pub fn response(&self) -> ResponseHead {
        let status = Status::TooManyRequests;
        ResponseHead::error(status, format!("{}: {}", status.reason(), self.code()))
    }
}

/// A client's identity for [`ServeOptions::max_connections_per_identity`]: the SHA-256 of
/// its leaf certificate's DER (its `fingerprint256`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity([u8; 32]);

impl Identity {
    /// The authenticated client's.
    pub fn of(client: &Authenticated) -> Self {
        Self(*client.certificate().fingerprint_sha256())
    }

    /// The leaf of the chain a TLS peer presented (its possession of the key proven by the
    /// handshake; the chain may still be refused), if it presented one.
    pub fn of_chain(chain: &[CertificateDer<'_>]) -> Option<Self> {
        chain.first().map(|leaf| Self(Sha256::digest(leaf).into()))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Draining => f.write_str("the server is shutting down"),
            Self::PerAddress { address, limit } => write!(
                f,
                "{address} already has {limit} connections before authentication \
                 (max_pending_per_address)"
            ),
            Self::TooMany { limit } => write!(
                f,
                "{limit} connections are open, all authenticated (max_connections)"
            ),
            Self::PerIdentity { limit } => write!(
                f,
                "this client certificate already holds {limit} open connections \
                 (max_connections_per_identity)"
            ),
        }
    }
}

/// What [`Connections::admit`] decided.
#[must_use]
#[derive(Debug)]
#[non_exhaustive]
pub enum Admission<H> {
    /// Serve it as `id`; first cancel `shed`, if any, which made room for it.
    Admitted {
        /// The new connection's number.
        id: ConnId,
        /// The pending connection closed to make room.
        shed: Option<Shed<H>>,
    },
    /// Close it at once.
    Refused {
        /// Why.
        reason: Refusal,
        /// The log line, when one is due.
        log: Option<Notice>,
    },
}

struct Entry<H> {
    handle: Option<H>,
    remote: Option<IpAddr>,
    /// Whom it counts for under `max_connections_per_identity`.
    identity: Option<Identity>,
    phase: Phase,
    since: Instant,
    deadline: Option<Instant>,
    /// A request ended without authenticating the connection (hyper: an open route, an
    /// `annotate_only` refusal): its later requests are no progress (see `advance`).
    served_unauthenticated: bool,
    /// Its task has finished while the connection lives on elsewhere (`task_finished`).
    task_finished: bool,
}

/// Reports to the loop's observer ([`ServeOptions::observer`]), if it has one.
fn report(observer: Option<Arc<dyn observe::Observer>>, f: impl FnOnce(&dyn observe::Observer)) {
    if let Some(o) = observer {
        f(&*o);
    }
}

/// How many log lines of one kind per second at most.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Every connection a serve loop holds, and the decisions about them. `H` is the adapter's
/// handle for cancelling a connection's task (tokio's `AbortHandle`, smol's `Task`).
pub struct Connections<H> {
    options: ServeOptions,
    handshake_timeout: Duration,
    head_timeout: Duration,
    next: u64,
    entries: HashMap<ConnId, Entry<H>>,
    /// The pending (pre-authentication) connections: at most `max_pending` (plus one while
    /// a shed is under way), so scanning them is cheap.
    pending: Vec<ConnId>,
    per_address: HashMap<IpAddr, usize>,
    per_identity: HashMap<Identity, usize>,
    draining: bool,
    /// The loop is waiting for a slot: any close or advance must wake it.
    waiting: bool,
    /// The earliest time the loop is asleep until.
    armed: Option<Instant>,
    logged: HashMap<Event, (Instant, u64)>,
}

impl<H> fmt::Debug for Connections<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.entries.len())
            .field("pending", &self.pending.len())
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

impl<H> Connections<H> {
    /// An empty table with these caps and `limits`' phase timeouts.
    pub fn new(options: ServeOptions, limits: &Limits) -> Self {
        Self {
            options,
            handshake_timeout: limits.handshake_timeout,
            head_timeout: limits.head_read_timeout,
            next: 0,
            entries: HashMap::new(),
            pending: Vec::new(),
            per_address: HashMap::new(),
            per_identity: HashMap::new(),
            draining: false,
            waiting: false,
            armed: None,
            logged: HashMap::new(),
        }
    }

    /// The options.
    pub fn options(&self) -> &ServeOptions {
        &self.options
    }

    /// Connections held, pending ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Connections in the pre-authentication phase.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether [`Self::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Everything the loop must know before it waits: what timed out (removed from the
    /// table, to cancel), whether to accept, until when to sleep. Call it at the top of each
    /// turn of the loop.
    pub fn poll(&mut self, now: Instant) -> Poll<H> {
        let expired = self.expired(now);
        let accept = self.poll_accept(now);
        let full = match accept {
            Accept::Wait { .. } if !self.draining => self.notice(Event::Full, now, || {
                "every connection slot is taken: new clients wait in the listen backlog".into()
            }),
            _ => None,
        };
        Poll {
            expired,
            accept,
            timeout: self.poll_timeout(),
            full,
        }
    }

    /// Whether the loop may accept now. Ask before each accept.
    pub fn poll_accept(&mut self, now: Instant) -> Accept {
        let full = self.entries.len() >= self.options.max_connections
            || self.pending.len() >= self.options.max_pending;
        if self.draining {
            self.waiting = true;
            return Accept::Wait { until: None };
        }
        if !full {
            self.waiting = false;
            return Accept::Now;
        }
        self.waiting = true;
        match self.stalest() {
            None => Accept::Wait { until: None },
            Some(id) => {
                let Some(eligible) = self.shed_time(id) else {
                    return Accept::Wait { until: None };
                };
                if eligible <= now {
                    self.waiting = false;
                    Accept::Now
                } else {
                    Accept::Wait {
                        until: Some(eligible),
                    }
                }
            }
        }
    }

    /// A connection from `remote` was accepted at `now`, starting in `phase`
    /// ([`Phase::Handshake`] with TLS, [`Phase::Head`] on a plain listener).
    pub fn admit(&mut self, remote: Option<IpAddr>, phase: Phase, now: Instant) -> Admission<H> {
        let observed = self.options.observer.clone();
        // Behind a PROXY-protocol proxy the peer is the proxy: the client's address comes
        // with its header (`readdress`).
        let remote = remote.filter(|_| self.options.proxy_protocol.is_none());
        if self.draining {
            return self.refuse(Refusal::Draining, now);
        }
        let group = remote.map(|a| self.options.address_group(a));
        if let (Some(limit), Some(address)) = (self.options.max_pending_per_address, group)
            && phase.pending()
            && self.per_address.get(&address).copied().unwrap_or(0) >= limit
        {
            return self.refuse(Refusal::PerAddress { address, limit }, now);
        }
        let full = self.entries.len() >= self.options.max_connections
            || self.pending.len() >= self.options.max_pending;
        let shed = if full {
            match self.stalest() {
                Some(victim) => self.remove(victim, Event::Shed, now),
                None => {
                    let limit = self.options.max_connections;
                    return self.refuse(Refusal::TooMany { limit }, now);
                }
            }
        } else {
            None
        };
        let id = ConnId(self.next);
        self.next += 1;
        let deadline = self.deadline(phase, now);
        self.entries.insert(
            id,
            Entry {
                handle: None,
                task_finished: false,
                remote,
                identity: None,
                phase,
                since: now,
                deadline,
                served_unauthenticated: false,
            },
        );
        if phase.pending() {
            self.add_pending(id, remote);
        }
        report(observed, |o| o.connection_opened());
        Admission::Admitted { id, shed }
    }

    fn refuse(&mut self, reason: Refusal, now: Instant) -> Admission<H> {
        let observed = self.options.observer.clone();
        report(observed, |o| o.connection_dropped(Event::Refused));
        let log = self.notice(Event::Refused, now, || {
            format!("connection refused: {reason}")
        });
        Admission::Refused { reason, log }
    }

    /// Registers the handle that cancels `id`'s task. Hands it back if the connection has
    /// already ended (its task may finish before the loop gets here): detach or drop it.
    pub fn set_handle(&mut self, id: ConnId, handle: H) -> Option<H> {
        match self.entries.get_mut(&id) {
            Some(e) if !e.task_finished => {
                e.handle = Some(handle);
                None
            }
            _ => Some(handle),
        }
    }

    /// `id`'s task has finished but the connection lives on in another task (hyper's
    /// upgraded WebSocket holds its slot): hands back its handle, if registered, to detach.
    /// Kept, a handle keeps the finished task's memory (tokio frees a task once its last
    /// handle is gone) for as long as the connection is open, and has nothing left to cancel.
    pub fn task_finished(&mut self, id: ConnId) -> Option<H> {
        let e = self.entries.get_mut(&id)?;
        e.task_finished = true;
        e.handle.take()
    }

    /// `id` moved on to `phase` at `now`. True if the loop must be woken (its timer is now
    /// too late, or it waits for a slot that this frees).
    pub fn advance(&mut self, id: ConnId, phase: Phase, now: Instant) -> bool {
        let deadline = self.deadline(phase, now);
        let Some(e) = self.entries.get_mut(&id) else {
            return false;
        };
        let was_pending = e.phase.pending();
        let remote = e.remote;
        // Requests that do not authenticate the connection are no progress towards it: once
        // one has ended, the connection's stall clock and deadline run on from its first
        // request, so however busy an unauthenticated client keeps it (open routes, refusals
        // in `annotate_only` mode), it may be shed after `shed_after` and is closed
        // `head_read_timeout` after its first request. Authenticating ends that.
        e.served_unauthenticated |= e.phase == Phase::Request && phase == Phase::Head;
        let no_progress = e.served_unauthenticated && matches!(phase, Phase::Head | Phase::Request);
        e.phase = phase;
        if !no_progress {
            e.since = now;
            e.deadline = deadline;
        }
        if was_pending && !phase.pending() {
            self.remove_pending(id, remote);
        }
        self.waiting || deadline.is_some_and(|d| self.armed.is_none_or(|a| d < a))
    }

    /// `id`'s client is at `remote` (a PROXY-protocol header named it): a pending
    /// connection counts under that address from now on, or is refused if the address
    /// already has [`ServeOptions::max_pending_per_address`] pending connections (close it;
    /// it still holds its slot until it closes).
    pub fn readdress(&mut self, id: ConnId, remote: IpAddr) -> Result<(), Refusal> {
        let observed = self.options.observer.clone();
        let Some(e) = self.entries.get(&id) else {
            return Ok(());
        };
        let (old, pending) = (e.remote, e.phase.pending());
        let group = self.options.address_group(remote);
        if let Some(limit) = self.options.max_pending_per_address
            && pending
            && old.map(|a| self.options.address_group(a)) != Some(group)
            && self.per_address.get(&group).copied().unwrap_or(0) >= limit
        {
            report(observed, |o| o.connection_dropped(Event::Refused));
            return Err(Refusal::PerAddress {
                address: group,
                limit,
            });
        }
        if pending {
            self.uncount_address(old);
            self.count_address(Some(remote));
        }
        if let Some(e) = self.entries.get_mut(&id) {
            e.remote = Some(remote);
        }
        Ok(())
    }

    /// `id` ended (idempotent). Returns its handle, and whether the loop must be woken (it
    /// waits for a slot, or for the last connection while draining).
    pub fn close(&mut self, id: ConnId) -> (Option<H>, bool) {
        let observed = self.options.observer.clone();
        let Some(e) = self.entries.remove(&id) else {
            return (None, false);
        };
        if e.phase.pending() {
            self.remove_pending(id, e.remote);
        }
        self.forget_identity(e.identity);
        report(observed, |o| {
            if e.phase == Phase::Handshake {
                o.handshake_failed();
            }
            o.connection_closed();
        });
        (e.handle, self.waiting || self.draining)
    }

    /// `id` was authenticated as `identity`: it counts for that identity under
    /// [`ServeOptions::max_connections_per_identity`], or, if the identity already holds
    /// that many, it is refused (answer [`Refusal::response`] and close; it still holds its
    /// slot until it closes). Counted once per connection: asking again for the same
    /// identity is `Ok`, for another one (a proxy's connection carrying several clients)
    /// changes nothing.
    pub fn identify(&mut self, id: ConnId, identity: Identity) -> Result<(), Refusal> {
        let observed = self.options.observer.clone();
        let Some(limit) = self.options.max_connections_per_identity else {
            return Ok(());
        };
        let Some(e) = self.entries.get(&id) else {
            return Ok(());
        };
        if e.identity.is_some() {
            return Ok(());
        }
        let held = self.per_identity.get(&identity).copied().unwrap_or(0);
        if held >= limit {
            report(observed, |o| o.connection_dropped(Event::Refused));
            return Err(Refusal::PerIdentity { limit });
        }
        *self.per_identity.entry(identity).or_insert(0) += 1;
        if let Some(e) = self.entries.get_mut(&id) {
            e.identity = Some(identity);
        }
        Ok(())
    }

    fn forget_identity(&mut self, identity: Option<Identity>) {
        if let Some(i) = identity
            && let Some(n) = self.per_identity.get_mut(&i)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_identity.remove(&i);
            }
        }
    }

    /// When the loop must look again at the latest: the earliest phase deadline, or when a
    /// stalled connection becomes sheddable while the loop waits for a slot.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let deadlines = self
            .pending
            .iter()
            .filter_map(|id| self.entries.get(id)?.deadline);
        let sheddable = self
            .waiting
            .then(|| self.stalest())
            .flatten()
            .and_then(|id| self.shed_time(id));
        self.armed = deadlines.chain(sheddable).min();
        self.armed
    }

    /// The pending connections whose phase deadline has passed at `now`, removed from the
    /// table: cancel them (a connection out of time is closed without a response).
    pub fn expired(&mut self, now: Instant) -> Vec<Shed<H>> {
        let due: Vec<ConnId> = self
            .pending
            .iter()
            .copied()
            .filter(|id| {
                self.entries
                    .get(id)
                    .and_then(|e| e.deadline)
                    .is_some_and(|d| d <= now)
            })
            .collect();
        due.into_iter()
            .filter_map(|id| self.remove(id, Event::Expired, now))
            .collect()
    }

    /// Accepting failed at `now` for want of a resource (descriptors, buffers, memory): the
    /// stalest pending connection, removed from the table to free a descriptor (cancel it).
    /// The engine backs off before it accepts again.
    pub fn shed_stalest(&mut self, now: Instant) -> Option<Shed<H>> {
        self.stalest()
            .and_then(|id| self.remove(id, Event::AcceptFailed, now))
    }

    /// Starts draining: no more admissions. Returns the pending connections, removed from
    /// the table, to close at once; open ones, and pending ones serving a request
    /// ([`Phase::Request`]), stay until they end or [`Self::cancel_all`].
    pub fn drain(&mut self) -> Vec<H> {
        let observed = self.options.observer.clone();
        self.draining = true;
        let (serving, idle): (Vec<ConnId>, Vec<ConnId>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|id| {
                self.entries
                    .get(id)
                    .is_some_and(|e| e.phase == Phase::Request)
            });
        self.pending = serving;
        self.per_address.clear();
        idle.into_iter()
            .filter_map(|id| {
                let e = self.entries.remove(&id)?;
                self.forget_identity(e.identity);
                report(observed.clone(), |o| o.connection_closed());
                e.handle
            })
            .collect()
    }

    /// Empties the table, returning every handle: the grace period is over.
    pub fn cancel_all(&mut self) -> Vec<H> {
        let observed = self.options.observer.clone();
        self.pending.clear();
        self.per_address.clear();
        self.per_identity.clear();
        let open = self.entries.len();
        report(observed, |o| (0..open).for_each(|_| o.connection_closed()));
        self.entries.drain().filter_map(|(_, e)| e.handle).collect()
    }

    /// The log line for an `event` at `now` reading `text`, if one is due
    /// ([`Self::should_log`]).
    pub fn notice(
        &mut self,
        event: Event,
        now: Instant,
        text: impl FnOnce() -> String,
    ) -> Option<Notice> {
        let suppressed = self.should_log(event, now)?;
        Some(Notice {
            event,
            suppressed,
            text: text(),
        })
    }

    /// Whether an `event` at `now` deserves a log line: at most one per kind per second.
    /// `Some(n)`: log it, noting `n` more of the same kind since the last line.
    pub fn should_log(&mut self, event: Event, now: Instant) -> Option<u64> {
        match self.logged.get_mut(&event) {
            Some((last, suppressed)) if now.saturating_duration_since(*last) < LOG_EVERY => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                *last = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                self.logged.insert(event, (now, 0));
                Some(0)
            }
        }
    }

    /// `phase`'s deadline from `now`: none for an open connection, or past what an
    /// `Instant` holds (`Duration::MAX`: no timeout).
    fn deadline(&self, phase: Phase, now: Instant) -> Option<Instant> {
        match phase {
            Phase::Handshake => now.checked_add(self.handshake_timeout),
            Phase::Head | Phase::Request => now.checked_add(self.head_timeout),
            Phase::Open => None,
        }
    }

    /// When `id` may be shed for a new connection (`None`: never, past what an `Instant`
    /// holds).
    fn shed_time(&self, id: ConnId) -> Option<Instant> {
        self.entries
            .get(&id)?
            .since
            .checked_add(self.options.shed_after)
    }

    /// The pending connection that made the least progress: the earliest phase first, then
    /// the longest in it.
    fn stalest(&self) -> Option<ConnId> {
        self.pending
            .iter()
            .filter_map(|id| Some((*id, self.entries.get(id)?)))
            .min_by_key(|(_, e)| (e.phase, e.since))
            .map(|(id, _)| id)
    }

    fn remove(&mut self, id: ConnId, event: Event, now: Instant) -> Option<Shed<H>> {
        let observed = self.options.observer.clone();
        let e = self.entries.remove(&id)?;
        if e.phase.pending() {
            self.remove_pending(id, e.remote);
        }
        self.forget_identity(e.identity);
        report(observed, |o| {
            if event == Event::Expired && e.phase == Phase::Handshake {
                o.handshake_failed();
            }
            o.connection_dropped(event);
            o.connection_closed();
        });
        let mut shed = Shed {
            id,
            handle: e.handle,
            phase: e.phase,
            stalled: now.saturating_duration_since(e.since),
            remote: e.remote,
            event,
            log: None,
        };
        shed.log = self.notice(event, now, || shed.to_string());
        Some(shed)
    }

    fn add_pending(&mut self, id: ConnId, remote: Option<IpAddr>) {
        self.pending.push(id);
        self.count_address(remote);
    }

    fn remove_pending(&mut self, id: ConnId, remote: Option<IpAddr>) {
        if let Some(i) = self.pending.iter().position(|p| *p == id) {
            self.pending.swap_remove(i);
        }
        self.uncount_address(remote);
    }

    fn count_address(&mut self, remote: Option<IpAddr>) {
        let remote = remote.map(|a| self.options.address_group(a));
        if let (Some(_), Some(a)) = (self.options.max_pending_per_address, remote) {
            *self.per_address.entry(a).or_insert(0) += 1;
        }
    }

    fn uncount_address(&mut self, remote: Option<IpAddr>) {
        if let Some(a) = remote.map(|a| self.options.address_group(a))
            && let Some(n) = self.per_address.get_mut(&a)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_address.remove(&a);
            }
        }
    }
}
