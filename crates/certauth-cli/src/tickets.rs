//! TLS session resumption that survives reloads and spans a fleet: `--session-ticket-key`.
//!
//! The key files are nginx's (`ssl_session_ticket_key`): 80 random bytes (`openssl rand 80`),
//! laid out as nginx reads them: a 16-byte key name, 32 bytes of HMAC key, then 32 of AES key;
//! or nginx's older 48 bytes (name, 16-byte HMAC key, 16-byte AES key). The first file's key
//! seals new tickets; every file's key opens them, so a rotation is "the new key first, the
//! old one second".
//!
//! Rotate the keys (daily, as nginx's documentation advises): each ticket is sealed under a
//! random 96-bit nonce, and AES-GCM with random nonces should seal at most 2^32 messages under
//! one key (NIST SP 800-38D, §8.3), about 50,000 tickets a second for a day; and a key that
//! never changes lets whoever copies it once forge tickets for as long as it is in use.
//!
//! The ticket format is certauth's, not nginx's (a ticket holds rustls' session state, which
//! nginx could not read anyway): `name (16) || nonce (12) || AES-GCM(issued_at (8) ||
//! state)`, the name as additional data, AES-256-GCM keyed by the AES key of an 80-byte file
//! (AES-128-GCM for a 48-byte one; GCM authenticates, so the HMAC half is not used). The
//! issue time is sealed inside and a ticket older than [`TICKET_LIFETIME_SECS`] is refused:
//! rustls enforces no lifetime on the server, and a key file may live for months.
//!
//! Whoever holds a key can forge a ticket naming any client chain. That does not let a
//! forger in: a resumed session is decided again like a new one (the restored chain is
//! verified, checked against the CRLs and the policy in force), but it does skip the proof
//! of possession of the client's key. Keep the files as secret as the server's key.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};

use crate::{Failure, read, shown};

/// How long a ticket opens a session: 6 hours (told to clients and checked when it comes
/// back).
pub(crate) const TICKET_LIFETIME_SECS: u32 = 6 * 60 * 60;

/// Sessions kept server-side when no ticket key is given (rustls' default size).
const SESSION_CACHE_ENTRIES: usize = 256;

const NAME_LEN: usize = 16;
const STAMP_LEN: usize = 8;

/// One key file, ready to seal and open tickets.
pub(crate) struct TicketKey {
    name: [u8; NAME_LEN],
    aead: LessSafeKey,
}

impl TicketKey {
    /// Reads nginx's format: 80 bytes (AES-256) or 48 bytes (AES-128).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let (algorithm, key) = match bytes.len() {
            // nginx's layout: name, HMAC key, AES key (the AES key is the file's last bytes).
            80 => (&AES_256_GCM, &bytes[NAME_LEN + 32..]),
            48 => (&AES_128_GCM, &bytes[NAME_LEN + 16..]),
            n => {
                return Err(format!(
                    "{n} bytes: a session ticket key is 80 random bytes (make one with \
                     `openssl rand 80 > ticket.key`) or nginx's older 48"
                ));
            }
        };
        let mut name = [0; NAME_LEN];
        name.copy_from_slice(&bytes[..NAME_LEN]);
        let aead = UnboundKey::new(algorithm, key)
            .map(LessSafeKey::new)
            .map_err(|_| "the AES key was refused".to_owned())?;
        Ok(Self { name, aead })
    }
}

/// Reads every `--session-ticket-key` file, in order.
pub(crate) fn read_keys(paths: &[std::path::PathBuf]) -> Result<Vec<TicketKey>, Failure> {
    paths
        .iter()
        .map(|p| {
            TicketKey::from_bytes(&read(p)?)
                .map_err(|e| Failure::Usage(format!("--session-ticket-key {}: {e}", shown(p))))
        })
        .collect()
}

/// Seals tickets with the first key, opens them with any. Its keys are replaced on reload;
/// the ticketer itself stays, so sessions outlive a reload that keeps the keys.
pub(crate) struct FileTicketer {
    keys: RwLock<Arc<Vec<TicketKey>>>,
    random: SystemRandom,
}

impl fmt::Debug for FileTicketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileTicketer").finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl FileTicketer {
    fn new(keys: Vec<TicketKey>) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            random: SystemRandom::new(),
        }
    }

    fn keys(&self) -> Arc<Vec<TicketKey>> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn replace(&self, keys: Vec<TicketKey>) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
    }

    fn seal(&self, plain: &[u8], issued_at: u64) -> Option<Vec<u8>> {
        let keys = self.keys();
        let key = keys.first()?;
        let mut nonce = [0; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        let mut sealed = Vec::with_capacity(STAMP_LEN + plain.len() + 16);
        sealed.extend_from_slice(&issued_at.to_be_bytes());
        sealed.extend_from_slice(plain);
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.name),
                &mut sealed,
            )
            .ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + sealed.len());
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn open(&self, ticket: &[u8], now: u64) -> Option<Vec<u8>> {
        let (name, rest) = ticket.split_first_chunk::<NAME_LEN>()?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
        let keys = self.keys();
        let key = keys.iter().find(|k| &k.name == name)?;
        let mut buf = sealed.to_vec();
        let plain = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(*name),
                &mut buf,
            )
            .ok()?;
        let (stamp, state) = plain.split_first_chunk::<STAMP_LEN>()?;
        let age = now.checked_sub(u64::from_be_bytes(*stamp))?;
        (age <= u64::from(TICKET_LIFETIME_SECS)).then(|| state.to_vec())
    }
}

impl ProducesTickets for FileTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(plain, now_secs())
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open(cipher, now_secs())
    }
}

/// What resumes sessions, made once at start and put into every configuration a reload
/// builds: without it each reload started an empty session cache (and, with tickets, new
/// random keys), so no client could resume past a reload.
#[derive(Clone)]
pub(crate) struct Resumption {
    storage: Arc<dyn StoresServerSessions>,
    ticketer: Option<Arc<FileTicketer>>,
}

impl Resumption {
    /// With ticket keys (`--session-ticket-key` given) or a server-side session cache.
    pub(crate) fn new(with_ticket_keys: bool) -> Self {
        Self {
            storage: ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES),
            ticketer: with_ticket_keys.then(|| Arc::new(FileTicketer::new(Vec::new()))),
        }
    }

    /// Puts the shared cache and ticketer into a configuration being built.
    pub(crate) fn apply(&self, config: &mut rustls::ServerConfig) {
        config.session_storage = Arc::clone(&self.storage);
        if let Some(t) = &self.ticketer {
            let ticketer: Arc<dyn ProducesTickets> = t.clone();
            config.ticketer = ticketer;
        }
    }

    /// Installs the keys a (re)load read; call once the whole configuration is good.
    pub(crate) fn install(&self, keys: Vec<TicketKey>) {
        if let Some(t) = &self.ticketer {
            t.replace(keys);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn key(fill: u8, len: usize) -> TicketKey {
        let mut bytes = vec![fill; len];
        bytes[0] = fill.wrapping_add(1);
        TicketKey::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn the_first_key_seals_every_key_opens_and_age_is_checked() {
        let old = FileTicketer::new(vec![key(1, 80)]);
        let ticket = old.seal(b"state", 1000).unwrap();
        assert_eq!(old.open(&ticket, 1000).as_deref(), Some(&b"state"[..]));
        // Rotated: the new key first, the old one second: old tickets still open.
        let rotated = FileTicketer::new(vec![key(2, 48), key(1, 80)]);
        assert_eq!(rotated.open(&ticket, 1001).as_deref(), Some(&b"state"[..]));
        let fresh = rotated.seal(b"new", 1000).unwrap();
        assert_eq!(&fresh[..NAME_LEN], &key(2, 48).name);
        assert!(old.open(&fresh, 1000).is_none(), "an unknown key name");
        // Past the lifetime, or issued in the future: refused.
        let limit = 1000 + u64::from(TICKET_LIFETIME_SECS);
        assert!(old.open(&ticket, limit).is_some());
        assert!(old.open(&ticket, limit + 1).is_none());
        assert!(old.open(&ticket, 999).is_none());
        // Same name, another key; any bit flipped; truncations: refused, no panic.
        let mut other = vec![9; 80];
        other[..NAME_LEN].copy_from_slice(&key(1, 80).name);
        let forger = FileTicketer::new(vec![TicketKey::from_bytes(&other).unwrap()]);
        assert!(forger.open(&ticket, 1000).is_none());
        for i in 0..ticket.len() {
            let mut t = ticket.clone();
            t[i] ^= 1;
            assert!(old.open(&t, 1000).is_none(), "bit flipped at {i}");
            assert!(old.open(&ticket[..i], 1000).is_none(), "cut at {i}");
        }
        assert!(TicketKey::from_bytes(&[0; 79]).is_err());
        assert!(FileTicketer::new(Vec::new()).seal(b"x", 0).is_none());
    }

    /// The AES key is where nginx reads it (the file's last 32 or 16 bytes); the HMAC half
    /// between the name and it is not used (GCM authenticates).
    #[test]
    fn the_aes_key_is_read_where_nginx_reads_it() {
        for (len, aes) in [(80, 32), (48, 16)] {
            let file: Vec<u8> = (0..=u8::MAX).cycle().take(len).collect();
            let ticket = FileTicketer::new(vec![TicketKey::from_bytes(&file).unwrap()])
                .seal(b"state", 1000)
                .unwrap();
            let opens_with = |edit: &dyn Fn(&mut Vec<u8>)| {
                let mut f = file.clone();
                edit(&mut f);
                FileTicketer::new(vec![TicketKey::from_bytes(&f).unwrap()])
                    .open(&ticket, 1000)
                    .is_some()
            };
            assert!(
                opens_with(&|f| f[NAME_LEN..len - aes].fill(0xEE)),
                "{len}: HMAC half unused"
            );
            assert!(
                !opens_with(&|f| f[len - 1] ^= 1),
                "{len}: AES key is the file's end"
            );
        }
    }
}
