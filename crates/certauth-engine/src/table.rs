//! [`Table`] and [`Slot`]: the core's [`Connections`] shared between a serve loop and the
//! tasks of its connections, behind a lock, with a wake-up for the loop (std's `Waker`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::lifecycle::{ConnId, Connections, Identity, Phase, Refusal, ServeOptions};
use certauth_core::Limits;

use crate::Drain;

struct Shared<H> {
    connections: Mutex<Connections<H>>,
    woken: AtomicBool,
    waker: Mutex<Option<Waker>>,
    drain: Drain,
}

/// The serve loop's [`Connections`], shared with its connections' [`Slot`]s, and the
/// server's [`Drain`]. Cheap to clone.
pub struct Table<H> {
    shared: Arc<Shared<H>>,
}

impl<H> Clone for Table<H> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<H> fmt::Debug for Table<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Table").field(&*self.lock()).finish()
    }
}

impl<H> Table<H> {
    /// An empty table.
    pub fn new(options: ServeOptions, limits: &Limits) -> Self {
        Self {
            shared: Arc::new(Shared {
                connections: Mutex::new(Connections::new(options, limits)),
                woken: AtomicBool::new(false),
                waker: Mutex::new(None),
                drain: Drain::new(),
            }),
        }
    }

    /// The connections, locked. Hold the guard briefly: every connection's progress takes
    /// the same lock.
    pub fn lock(&self) -> MutexGuard<'_, Connections<H>> {
        // The table stays consistent across a panic elsewhere: keep using it.
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's shutdown signal.
    pub fn drain(&self) -> &Drain {
        &self.shared.drain
    }

    /// The slot of an admitted connection, to move into its task.
    pub fn slot(&self, id: ConnId) -> Slot<H> {
        Slot {
            id,
            table: self.clone(),
            refused: OnceLock::new(),
        }
    }

    /// Resolves once a slot has asked to wake the loop since the last time it resolved (a
    /// deadline moved earlier, a slot freed up while the loop waits for one, or the last
    /// connection ended while draining). One loop waits on it.
    pub fn woken(&self) -> Woken<'_, H> {
        Woken { table: self }
    }

    fn wake(&self) {
        self.shared.woken.store(true, Ordering::Release);
        let waker = self
            .shared
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The future of [`Table::woken`].
#[must_use = "futures do nothing unless polled"]
pub struct Woken<'a, H> {
    table: &'a Table<H>,
}

impl<H> fmt::Debug for Woken<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Woken")
    }
}

impl<H> Future for Woken<'_, H> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shared = &self.table.shared;
        if shared.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        *shared.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        // A wake between the check and the registration found no waker: look again.
        if shared.woken.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// An admitted connection's place in its [`Table`]: its task reports progress with
/// [`Self::advance`]; dropping it (the task ending, or being cancelled) frees the place and
/// drops the task's handle.
pub struct Slot<H> {
    id: ConnId,
    table: Table<H>,
    refused: OnceLock<Refusal>,
}

impl<H> fmt::Debug for Slot<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").field("id", &self.id).finish()
    }
}

impl<H> Slot<H> {
    /// The connection's number.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The connection reached `phase` at `now` (the handshake is done: [`Phase::Head`]; the
    /// client is authenticated: [`Phase::Open`], after which it is never shed or timed out).
    pub fn advance(&self, phase: Phase, now: Instant) {
        if self.table.lock().advance(self.id, phase, now) {
            self.table.wake();
        }
    }

    /// The server's shutdown signal.
    pub fn drain(&self) -> &Drain {
        self.table.drain()
    }

    /// The client is at `remote`, as a PROXY-protocol header says (see
    /// [`Connections::readdress`]): `Err` if that address is at its cap of pending
    /// connections (close the connection).
    pub fn readdress(&self, remote: std::net::IpAddr) -> Result<(), Refusal> {
        self.table.lock().readdress(self.id, remote)
    }

    /// Whether a refusal the adapter makes itself (a PROXY header refused) should be logged
    /// at `now`, rate-limited with the loop's own refusals ([`Connections::should_log`]):
    /// `Some(how many were not logged since)`.
    pub fn should_log_refusal(&self, now: Instant) -> Option<u64> {
        self.table
            .lock()
            .should_log(certauth_core::observe::Event::Refused, now)
    }

    /// The client is authenticated at `now` ([`Phase::Open`]) as `identity` (none in
    /// header mode on a connection that may carry several clients): `Err` if the identity
    /// already holds `ServeOptions::max_connections_per_identity` connections (see
    /// [`Connections::identify`]); the refusal is kept, for [`Self::refused`].
    pub fn open(&self, identity: Option<Identity>, now: Instant) -> Result<(), Refusal> {
        self.advance(Phase::Open, now);
        let Some(identity) = identity else {
            return Ok(());
        };
        let result = self.table.lock().identify(self.id, identity);
        if let Err(refusal) = result {
            let _ = self.refused.set(refusal);
        }
        result
    }

    /// The refusal [`Self::open`] returned, if it did.
    pub fn refused(&self) -> Option<&Refusal> {
        self.refused.get()
    }
}

impl<H> Drop for Slot<H> {
    fn drop(&mut self) {
        let (handle, wake) = self.table.lock().close(self.id);
        drop(handle);
        if wake {
            self.table.wake();
        }
    }
}
