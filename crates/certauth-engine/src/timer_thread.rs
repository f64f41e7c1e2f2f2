//! Deadlines kept on a thread of their own, so that the threads that serve connections wait
//! on their sockets without a timeout.
//!
//! Why: a runtime's own timer passes its nearest deadline to `epoll_wait`, and for each wait
//! that blocks with a timeout the kernel arms and cancels a high-resolution timer. On a
//! virtual machine that is about 0.6 µs a wait (a socket ping-pong, `epoll_wait` with an
//! hour's timeout against none, five alternated pairs: BENCHMARKS.md), and a proxied
//! keep-alive request blocks twice, with a deadline always pending (the connection's
//! keep-alive clock, the upstream's answer, the serve loop's phase deadlines). Here the
//! deadlines live in one map that a `certauth-timers` thread watches; the serving threads
//! register and remove theirs under a lock and never make a system call for it.
//!
//! The thread never sleeps longer than [`MAX_NAP`]: a deadline at least that far away is
//! registered without waking it (the requests' deadlines are seconds away), a nearer one
//! wakes it. With no deadline pending it sleeps until one is registered. A timer fires at
//! most [`SLACK`] after its deadline, never before.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The longest the timer thread sleeps while a deadline is pending: a deadline registered at
/// least this far ahead never wakes it.
pub const MAX_NAP: Duration = Duration::from_secs(1);

/// How late the thread may look, so that deadlines close together fire in one wake-up
/// (tokio's timer rounds up to the millisecond too): thousands of deadlines a second (short
/// idle timeouts over many requests) were a wake-up each (the sixteenth attack review, F2).
pub const SLACK: Duration = Duration::from_millis(1);

/// The process's timer thread and the deadlines it keeps.
#[derive(Debug)]
pub struct TimerThread {
    state: Mutex<State>,
    thread: OnceLock<Thread>,
}

#[derive(Debug, Default)]
struct State {
    /// Each pending deadline (with a number that tells two at the same instant apart) and
    /// the task to wake at it.
    timers: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    /// When the thread looks next (`None`: asleep until woken).
    looks_at: Option<Instant>,
}

impl TimerThread {
    /// The process's timer thread, started on first use; `None` if the thread cannot be
    /// started (a runtime falls back to its own timer).
    pub fn global() -> Option<&'static Self> {
        static THREAD: OnceLock<Option<&'static TimerThread>> = OnceLock::new();
        *THREAD.get_or_init(|| {
            let clock: &'static Self = Box::leak(Box::new(Self::unstarted()));
            let handle = std::thread::Builder::new()
                .name("certauth-timers".into())
                .spawn(move || clock.run());
            match handle {
                Ok(handle) => {
                    let _ = clock.thread.set(handle.thread().clone());
                    Some(clock)
                }
                Err(e) => {
                    tracing::warn!("no timer thread ({e}): deadlines use the runtime's timer");
                    None
                }
            }
        })
    }

    /// Its state, without the thread.
    fn unstarted() -> Self {
        Self {
            state: Mutex::default(),
            thread: OnceLock::new(),
        }
    }

    /// A timer that fires at `deadline` (see [`Timer`]).
    pub fn sleep_until(&'static self, deadline: Instant) -> Timer {
        Timer {
            clock: self,
            deadline,
            registered: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `waker` for `deadline`, waking the thread only if it would look later.
    fn register(&self, deadline: Instant, waker: Waker) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id = id.wrapping_add(1);
        state.timers.insert((deadline, id), waker);
        // Compared and kept as the thread would plan it (`tick`: SLACK after the deadline),
        // so that a deadline within the slack of the planned look wakes nobody (the
        // seventeenth attack review, N1).
        let look = deadline.checked_add(SLACK).unwrap_or(deadline);
        let sooner = state.looks_at.is_none_or(|at| look < at);
        if sooner {
            state.looks_at = Some(look);
        }
        drop(state);
        if sooner && let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        id
    }

    fn remove(&self, key: (Instant, u64)) {
        // Dropped once the lock is released: a waker's drop is code of its own, which could
        // drop a timer, which takes this lock.
        let removed = self.lock().timers.remove(&key);
        drop(removed);
    }

    /// Replaces the waker of a timer still pending; `false` if it is gone: the thread took it
    /// out as due (and woke the waker it had).
    fn rewake(&self, key: (Instant, u64), waker: &Waker) -> bool {
        let old = match self.lock().timers.get_mut(&key) {
            Some(kept) => std::mem::replace(kept, waker.clone()),
            None => return false,
        };
        drop(old);
        true
    }

    /// The thread: [`Self::tick`], then sleeps until it says, or until a nearer deadline is
    /// registered.
    fn run(&self) {
        loop {
            match self.tick(Instant::now()) {
                // From the time after the wakes, which took some.
                Some(at) => std::thread::park_timeout(at.saturating_duration_since(Instant::now())),
                None => std::thread::park(),
            }
        }
    }

    /// Wakes the tasks whose deadline is `now` or before, and returns when to look next:
    /// [`SLACK`] after the next deadline, at most [`MAX_NAP`] from `now` (`None`: none
    /// pending).
    fn tick(&self, now: Instant) -> Option<Instant> {
        let mut due = Vec::new();
        let mut state = self.lock();
        while let Some(entry) = state.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        let next = state.timers.first_key_value().map(|(k, _)| k.0);
        let look = next.map(|at| {
            let at = at.checked_add(SLACK).unwrap_or(at);
            now.checked_add(MAX_NAP).map_or(at, |cap| at.min(cap))
        });
        state.looks_at = look;
        drop(state);
        for waker in due {
            // A waker that panics must not end the thread: every later deadline would pass
            // unseen (a handshake, a head, an idle connection held for ever).
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
        }
        look
    }
}

/// A timer on the [`TimerThread`]: ready once its deadline has passed. Registered when first
/// polled, removed when dropped or reset; it is `Unpin`.
#[derive(Debug)]
pub struct Timer {
    clock: &'static TimerThread,
    deadline: Instant,
    /// The key it is registered under and the waker it gave.
    registered: Option<((Instant, u64), Waker)>,
}

impl Timer {
    /// When it fires.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves it to `deadline` (registered again when next polled).
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
    }

    fn unregister(&mut self) {
        if let Some((key, _)) = self.registered.take() {
            self.clock.remove(key);
        }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let clock = self.clock;
        match &mut self.registered {
            Some((_, kept)) if kept.will_wake(cx.waker()) => {}
            Some((key, kept)) => {
                kept.clone_from(cx.waker());
                // Gone between the clock's reading above and the lock: the thread fired it
                // (woke the waker it had, not this one), so it is due now (the sixteenth
                // attack review, F1).
                if !clock.rewake(*key, kept) {
                    self.registered = None;
                    return Poll::Ready(());
                }
            }
            None => {
                let id = clock.register(self.deadline, cx.waker().clone());
                self.registered = Some(((self.deadline, id), cx.waker().clone()));
            }
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.unregister();
    }
}

#[cfg(test)]
mod tests;
