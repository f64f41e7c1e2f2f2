//! [`Drain`]: the shutdown signal a serve helper broadcasts to its connections, in two
//! steps, without an async runtime (std's `Waker` only).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

const DRAINING: u8 = 1;
const CANCELLED: u8 = 2;
/// Not a level: what [`Drain::released`] waits for.
const RELEASED: u8 = u8::MAX;

#[derive(Default)]
struct Shared {
    /// 0 running, then DRAINING, then CANCELLED; only ever raised.
    level: AtomicU8,
    /// Work outside the serve loop's own tasks that it must wait for (upgraded WebSockets).
    held: AtomicUsize,
    wakers: Mutex<Wakers>,
}

#[derive(Default)]
struct Wakers {
    next: u64,
    waiting: HashMap<u64, Waker>,
}

/// A shutdown signal shared by a serve loop and its connections: first *draining* (finish
/// what is in flight; WebSockets are sent a 1001 close), then *cancelled* (the grace period
/// is over). Cheap to clone; a default `Drain` belongs to no server and never fires.
#[derive(Clone, Default)]
pub struct Drain {
    shared: Arc<Shared>,
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("draining", &self.is_draining())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Drain {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts draining.
    pub fn signal(&self) {
        self.raise(DRAINING);
    }

    /// Ends the grace period.
    pub fn cancel(&self) {
        self.raise(CANCELLED);
    }

    /// Whether draining has started (or the grace period is over).
    pub fn is_draining(&self) -> bool {
        self.level() >= DRAINING
    }

    /// Whether the grace period is over.
    pub fn is_cancelled(&self) -> bool {
        self.level() >= CANCELLED
    }

    /// Resolves when draining starts.
    pub fn draining(&self) -> Draining {
        Draining::new(self.clone(), DRAINING)
    }

    /// Resolves when the grace period is over: run a connection's work against it to stop
    /// it then.
    pub fn cancelled(&self) -> Draining {
        Draining::new(self.clone(), CANCELLED)
    }

    /// Marks work the serve loop does not run itself but must wait for when draining (a
    /// WebSocket hyper upgraded and handed to a task), until the [`Hold`] is dropped.
    pub fn hold(&self) -> Hold {
        self.shared.held.fetch_add(1, Ordering::AcqRel);
        Hold {
            drain: self.clone(),
        }
    }

    /// How many [`Hold`]s are alive.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::Acquire)
    }

    /// Resolves when no [`Hold`] is alive.
    pub fn released(&self) -> Draining {
        Draining::new(self.clone(), RELEASED)
    }

    fn level(&self) -> u8 {
        self.shared.level.load(Ordering::Acquire)
    }

    fn raise(&self, to: u8) {
        if self.shared.level.fetch_max(to, Ordering::AcqRel) >= to {
            return;
        }
        self.wake_all();
    }

    fn wake_all(&self) {
        let wakers = std::mem::take(&mut self.wakers().waiting);
        for (_, w) in wakers {
            w.wake();
        }
    }

    fn wakers(&self) -> std::sync::MutexGuard<'_, Wakers> {
        // A panic elsewhere while holding the lock leaves a plain map behind: keep using it.
        self.shared
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The future of [`Drain::draining`], [`Drain::cancelled`] or [`Drain::released`]. Polling it again with the
/// same waker costs one atomic load.
#[must_use = "futures do nothing unless polled"]
pub struct Draining {
    drain: Drain,
    level: u8,
    registered: Option<(u64, Waker)>,
}

impl fmt::Debug for Draining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Draining")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Draining {
    fn new(drain: Drain, level: u8) -> Self {
        Self {
            drain,
            level,
            registered: None,
        }
    }

    /// Whether the signal has fired (without registering a waker).
    pub fn fired(&self) -> bool {
        if self.level == RELEASED {
            return self.drain.held() == 0;
        }
        self.drain.level() >= self.level
    }
}

impl Future for Draining {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.fired() {
            return Poll::Ready(());
        }
        if this
            .registered
            .as_ref()
            .is_some_and(|(_, w)| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let mut wakers = this.drain.wakers();
        let key = match &this.registered {
            Some((key, _)) => *key,
            None => {
                wakers.next += 1;
                wakers.next
            }
        };
        wakers.waiting.insert(key, cx.waker().clone());
        drop(wakers);
        this.registered = Some((key, cx.waker().clone()));
        // The signal may have fired between the check and the registration.
        if this.fired() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// See [`Drain::hold`].
#[derive(Debug)]
#[must_use = "the hold ends when dropped"]
pub struct Hold {
    drain: Drain,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.drain.shared.held.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drain.wake_all();
        }
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        if let Some((key, _)) = self.registered.take() {
            self.drain.wakers().waiting.remove(&key);
        }
    }
}
