//! Verification results a [`ChainVerifier`](super::ChainVerifier) remembers, so that the same
//! chain is never verified twice while the answer cannot have changed.
//!
//! A result is kept per verifier (its trust anchors, intermediates, CRLs and options are
//! fixed; every `with_*` call on a verifier starts an empty cache), keyed by a SHA-256 digest
//! of the exact presented chain, with the window of time in which it holds: from the latest
//! notBefore to the earliest notAfter on the verified path, and before the earliest
//! nextUpdate of the CRLs when their expiry is enforced. A lookup outside that window is a
//! miss, and the full verification then reports the expiry itself.
//!
//! Failures are not kept: a failed chain is cheap for a client to vary, so keeping failures
//! would let anyone evict the good entries; and some failures (not yet valid) end by
//! themselves.
//!
//! The cache holds at most [`DEFAULT_CACHE_ENTRIES`] results (configurable); when full, the
//! oldest entry goes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rustls_pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};

use super::VerifiedChain;

/// The default bound on cached verification results.
pub const DEFAULT_CACHE_ENTRIES: usize = 4096;

/// A digest of a presented chain: each certificate's length and bytes.
pub(crate) type Key = [u8; 32];

pub(crate) fn key(chain: &[CertificateDer<'_>]) -> Key {
    let mut h = Sha256::new();
    for c in chain {
        h.update(u64::try_from(c.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(c.as_ref());
    }
    h.finalize().into()
}

/// When a verification result holds, in Unix seconds, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) from: i64,
    pub(crate) until: i64,
}

impl Window {
    pub(crate) fn holds_at(&self, now: i64) -> bool {
        self.from <= now && now <= self.until
    }
}

/// How often the cache answered: full verifications run, and results reused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct CacheStats {
    /// Chains verified in full (and so, on success, remembered).
    pub(crate) verifications: u64,
    /// Verifications answered from the cache or a connection's memo.
    pub(crate) hits: u64,
    /// Results held now.
    pub(crate) entries: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, (VerifiedChain, Window)>,
    order: VecDeque<Key>,
}

/// A bounded map from chain digests to verification results.
pub(crate) struct Cache {
    max: usize,
    entries: Mutex<Entries>,
    verifications: AtomicU64,
    hits: AtomicU64,
}

impl Cache {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            entries: Mutex::new(Entries::default()),
            verifications: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The result for `key` if it holds at `now`.
    pub(crate) fn get(&self, key: &Key, now: i64) -> Option<VerifiedChain> {
        let hit = self
            .lock()
            .map
            .get(key)
            .filter(|(_, w)| w.holds_at(now))
            .map(|(c, _)| c.reuse());
        if hit.is_some() {
            self.hit();
        }
        hit
    }

    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn verified(&self) {
        self.verifications.fetch_add(1, Ordering::Relaxed);
    }

    /// Remembers a result, evicting the oldest beyond the bound.
    pub(crate) fn insert(&self, key: Key, chain: VerifiedChain, window: Window) {
        if self.max == 0 {
            return;
        }
        let mut e = self.lock();
        if e.map.insert(key, (chain, window)).is_none() {
            e.order.push_back(key);
        }
        while e.map.len() > self.max {
            match e.order.pop_front() {
                Some(old) => {
                    e.map.remove(&old);
                }
                None => break,
            }
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            verifications: self.verifications.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            entries: self.lock().map.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientCertificate;

    fn chain() -> VerifiedChain {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        VerifiedChain {
            leaf: ClientCertificate::from_der(cert.der()).unwrap(),
            intermediates: Vec::new(),
            anchor: None,
            reused: false,
            crl_until: None,
        }
    }

    #[test]
    fn the_bound_holds_after_100_000_distinct_chains() {
        let cache = Cache::new(1000);
        let value = chain();
        let w = Window { from: 0, until: 10 };
        for i in 0u32..100_000 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            cache.insert(k, value.clone(), w);
        }
        let e = cache.lock();
        assert_eq!((e.map.len(), e.order.len()), (1000, 1000));
        drop(e);
        // The newest are kept, the oldest went.
        let key = |i: u32| {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            k
        };
        assert!(cache.get(&key(99_999), 5).unwrap().reused());
        assert!(cache.get(&key(99_000), 5).is_some());
        assert!(cache.get(&key(98_999), 5).is_none());
        assert!(cache.get(&key(0), 5).is_none());
        // Inside the window only, ends included.
        assert!(cache.get(&key(99_999), 0).is_some());
        assert!(cache.get(&key(99_999), 10).is_some());
        assert!(cache.get(&key(99_999), 11).is_none());
        assert!(cache.get(&key(99_999), -1).is_none());
        assert_eq!(cache.stats().hits, 4);
    }

    #[test]
    fn keys_tell_chains_apart_by_every_byte_and_boundary() {
        let a = CertificateDer::from(vec![1u8, 2, 3]);
        let b = CertificateDer::from(vec![1u8, 2]);
        let c = CertificateDer::from(vec![3u8]);
        assert_ne!(key(std::slice::from_ref(&a)), key(&[b.clone(), c.clone()]));
        assert_ne!(key(std::slice::from_ref(&a)), key(&[a.clone(), a.clone()]));
        assert_eq!(key(&[b.clone(), c.clone()]), key(&[b, c]));
    }
}
