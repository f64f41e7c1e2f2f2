//! The answers of revocation fetches, shared by every connection: a bounded map from a key
//! to the last answer and until when it holds, with at most one fetch in flight per key
//! (single flight) and the fetch started before the answer runs out (refresh ahead). A
//! state machine over `now` (Unix seconds) with no clock, timer or runtime: a caller that
//! must wait registers its task's `Waker` and is woken when the fetch ends.
//!
//! Per key: absent → `Fetching` (the first caller leads the fetch; the others wait) →
//! `Ready` (hits until `refresh_at`) → at `refresh_at` the next caller leads a refresh
//! while everyone else keeps hitting the answer it replaces until that one's `expires_at`.
//! A leader that goes away without an answer (its connection closed) hands the key back:
//! its waiters wake and one of them leads.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// What the cache is keyed by: a SHA-256 digest.
pub(crate) type Key = [u8; 32];

/// Hashes a [`Key`] by its first eight bytes. The keys are SHA-256 outputs (of a
/// certificate, or of a URL and an issuer's key), already uniform, so hashing them again
/// (SipHash, a third of a cached decision's added cost) buys nothing, and finding keys
/// whose first bytes collide costs 2^32 work per pair for certificates a trusted CA issued.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // A key arrives as its length, then its bytes: the last write of eight or more
        // bytes is the digest.
        if let Some(head) = bytes.first_chunk::<8>() {
            self.0 = u64::from_le_bytes(*head);
        }
    }
}

/// A map keyed by digests.
pub(crate) type DigestMap<V> = HashMap<Key, V, std::hash::BuildHasherDefault<DigestHasher>>;

enum Slot<V> {
    Ready {
        value: V,
        refresh_at: i64,
        expires_at: i64,
    },
    Fetching {
        /// The answer being refreshed and its expiry, still served to others meanwhile.
        stale: Option<(V, i64)>,
        waiters: Vec<Waker>,
    },
}

/// What a caller is to do.
pub(crate) enum Lookup<V> {
    /// An answer that holds at `now`, and until when the same lookup would hit it again
    /// (`now` itself for an answer served while it is being refreshed).
    Hit(V, i64),
    /// Fetch, then [`Cache::finish`] (or [`Cache::abandon`]). `stale`: the answer being
    /// refreshed and its expiry, if it still holds.
    Lead { stale: Option<(V, i64)> },
    /// Another caller is fetching: [`Cache::poll_wait`], then look up again.
    Wait,
}

pub(crate) struct Cache<V> {
    max_entries: usize,
    slots: Mutex<DigestMap<Slot<V>>>,
}

impl<V: Clone> Cache<V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            slots: Mutex::new(DigestMap::default()),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, DigestMap<Slot<V>>> {
        // Every update below leaves the map whole, so a panic elsewhere poisons nothing real.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lookup(&self, key: &Key, now: i64) -> Lookup<V> {
        let mut slots = self.slots();
        match slots.get_mut(key) {
            Some(Slot::Ready {
                value, refresh_at, ..
            }) if now < *refresh_at => Lookup::Hit(value.clone(), *refresh_at),
            Some(slot @ Slot::Ready { .. }) => {
                let fetching = Slot::Fetching {
                    stale: None,
                    waiters: Vec::new(),
                };
                let Slot::Ready {
                    value, expires_at, ..
                } = std::mem::replace(slot, fetching)
                else {
                    return Lookup::Wait; // unreachable: matched Ready above
                };
                let stale = (now < expires_at).then_some((value, expires_at));
                if let Slot::Fetching { stale: s, .. } = slot {
                    s.clone_from(&stale);
                }
                Lookup::Lead { stale }
            }
            Some(Slot::Fetching {
                stale: Some((value, expires_at)),
                ..
            }) if now < *expires_at => Lookup::Hit(value.clone(), now),
            Some(Slot::Fetching { .. }) => Lookup::Wait,
            None => {
                if slots.len() >= self.max_entries {
                    evict(&mut slots);
                }
                // Full of fetches in flight: this one goes untracked (its waiters would
                // have nowhere to wait), and its answer is kept only if there is room.
                if slots.len() < self.max_entries {
                    slots.insert(
                        *key,
                        Slot::Fetching {
                            stale: None,
                            waiters: Vec::new(),
                        },
                    );
                }
                Lookup::Lead { stale: None }
            }
        }
    }

    /// The leader's answer: hits until `refresh_at`, served while refreshed until
    /// `expires_at`. Wakes the waiters.
    pub(crate) fn finish(&self, key: &Key, value: V, refresh_at: i64, expires_at: i64) {
        let ready = Slot::Ready {
            value,
            refresh_at: refresh_at.min(expires_at),
            expires_at,
        };
        let mut slots = self.slots();
        let previous = match slots.get_mut(key) {
            Some(slot) => Some(std::mem::replace(slot, ready)),
            None => {
                if slots.len() >= self.max_entries {
                    evict(&mut slots);
                }
                if slots.len() < self.max_entries {
                    slots.insert(*key, ready);
                }
                None
            }
        };
        drop(slots);
        wake(previous);
    }

    /// The leader went away without an answer: the answer it was refreshing stays (due
    /// for refresh), or the key is free again. Wakes the waiters, one of whom will lead.
    pub(crate) fn abandon(&self, key: &Key) {
        let mut slots = self.slots();
        let Some(Slot::Fetching { stale, .. }) = slots.get_mut(key) else {
            return;
        };
        let previous = match stale.take() {
            Some((value, expires_at)) => slots.insert(
                *key,
                Slot::Ready {
                    value,
                    refresh_at: i64::MIN,
                    expires_at,
                },
            ),
            None => slots.remove(key),
        };
        drop(slots);
        wake(previous);
    }

    /// Ready once the key is no longer being fetched; until then the task is woken when
    /// it is.
    pub(crate) fn poll_wait(&self, key: &Key, cx: &mut Context<'_>) -> Poll<()> {
        let mut slots = self.slots();
        match slots.get_mut(key) {
            Some(Slot::Fetching { waiters, .. }) => {
                if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    }

    /// How many keys are held (answers and fetches in flight).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots().len()
    }
}

/// Makes room for one: drops the answer that runs out first. Fetches in flight stay.
fn evict<V>(slots: &mut DigestMap<Slot<V>>) {
    let oldest = slots
        .iter()
        .filter_map(|(k, s)| match s {
            Slot::Ready { expires_at, .. } => Some((*expires_at, *k)),
            Slot::Fetching { .. } => None,
        })
        .min();
    if let Some((_, key)) = oldest {
        slots.remove(&key);
    }
}

fn wake<V>(previous: Option<Slot<V>>) {
    if let Some(Slot::Fetching { waiters, .. }) = previous {
        waiters.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn key(n: u8) -> Key {
        [n; 32]
    }

    /// A digest is hashed by its first eight bytes (as [u8; 32] hashes: its length, then
    /// its bytes), so keys spread over the map's buckets.
    #[test]
    fn digests_hash_by_their_first_bytes() {
        use std::hash::BuildHasher as _;
        let build = std::hash::BuildHasherDefault::<DigestHasher>::default();
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        k[8] = 0xFF;
        assert_eq!(build.hash_one(k), 0x0102_0304_0506_0708);
        assert_ne!(build.hash_one(key(1)), build.hash_one(key(2)));
    }

    #[test]
    fn one_leads_the_others_wait_then_hit() {
        let c: Cache<&str> = Cache::new(4);
        assert!(matches!(
            c.lookup(&key(1), 100),
            Lookup::Lead { stale: None }
        ));
        assert!(matches!(c.lookup(&key(1), 100), Lookup::Wait));
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&woken));
        let mut cx = Context::from_waker(&waker);
        assert!(c.poll_wait(&key(1), &mut cx).is_pending());
        assert!(c.poll_wait(&key(1), &mut cx).is_pending()); // registered once
        c.finish(&key(1), "good", 180, 200);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(c.poll_wait(&key(1), &mut cx).is_ready());
        assert!(matches!(c.lookup(&key(1), 179), Lookup::Hit("good", 180)));
        // Refresh ahead: one leads with the old answer in hand, the others keep hitting it.
        assert!(matches!(
            c.lookup(&key(1), 180),
            Lookup::Lead {
                stale: Some(("good", 200))
            }
        ));
        assert!(matches!(c.lookup(&key(1), 199), Lookup::Hit("good", 199)));
        assert!(matches!(c.lookup(&key(1), 200), Lookup::Wait));
        c.finish(&key(1), "newer", 380, 400);
        assert!(matches!(c.lookup(&key(1), 300), Lookup::Hit("newer", _)));
        // Past its expiry an answer is never served.
        assert!(matches!(
            c.lookup(&key(1), 400),
            Lookup::Lead { stale: None }
        ));
    }

    #[test]
    fn an_abandoned_fetch_hands_the_key_back() {
        let c: Cache<&str> = Cache::new(4);
        assert!(matches!(c.lookup(&key(1), 0), Lookup::Lead { .. }));
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&woken));
        assert!(
            c.poll_wait(&key(1), &mut Context::from_waker(&waker))
                .is_pending()
        );
        c.abandon(&key(1));
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(c.len(), 0);
        assert!(matches!(c.lookup(&key(1), 0), Lookup::Lead { stale: None }));
        // A refresh abandoned keeps the answer it was refreshing, due again at once.
        c.finish(&key(1), "good", 50, 100);
        assert!(matches!(
            c.lookup(&key(1), 60),
            Lookup::Lead { stale: Some(_) }
        ));
        c.abandon(&key(1));
        assert!(matches!(
            c.lookup(&key(1), 61),
            Lookup::Lead {
                stale: Some(("good", 100))
            }
        ));
        c.abandon(&key(2)); // nothing to abandon
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn it_is_bounded_and_drops_what_runs_out_first() {
        let c: Cache<u8> = Cache::new(2);
        for (k, expires) in [(1, 300), (2, 200)] {
            assert!(matches!(c.lookup(&key(k), 0), Lookup::Lead { .. }));
            c.finish(&key(k), k, expires, expires);
        }
        assert!(matches!(c.lookup(&key(3), 0), Lookup::Lead { .. }));
        assert_eq!(c.len(), 2);
        assert!(matches!(c.lookup(&key(1), 0), Lookup::Hit(1, _)));
        assert!(matches!(c.lookup(&key(2), 0), Lookup::Lead { .. }));
        // Two fetches in flight fill it: a third key is fetched untracked, and kept only
        // when there is room.
        assert!(matches!(c.lookup(&key(4), 0), Lookup::Lead { .. }));
        assert!(matches!(c.lookup(&key(4), 0), Lookup::Lead { .. }));
        c.finish(&key(4), 4, 10, 10);
        assert_eq!(c.len(), 2);
        c.finish(&key(3), 3, 10, 10);
        c.finish(&key(4), 4, 10, 10);
        assert!(matches!(c.lookup(&key(4), 0), Lookup::Hit(4, _)));
        assert_eq!(c.len(), 2);
        // refresh_at never exceeds expires_at.
        c.finish(&key(4), 4, 50, 10);
        assert!(matches!(
            c.lookup(&key(4), 10),
            Lookup::Lead { stale: None }
        ));
    }
}
