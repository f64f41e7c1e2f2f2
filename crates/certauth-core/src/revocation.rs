//! Revocation checked online, for the client's own certificate: OCSP (RFC 6960) at the
//! responder its authorityInfoAccess names, and the CRL at its `http:` CRL distribution
//! point (RFC 5280 4.2.1.13).
//!
//! Sans-IO like the rest of the core: it says what to fetch ([`FetchRequest`]: host, port,
//! the request's bytes, a size cap and a timeout) and judges what comes back with the
//! decision's `now`; a [`Fetch`] implementation (`certauth_tokio::Fetcher`) moves the
//! bytes. Give a [`Revocation`] to
//! [`AuthenticatorBuilder::revocation`](crate::AuthenticatorBuilder::revocation): a decision
//! whose answer is cached stays synchronous; one that needs a fetch is pending
//! ([`Evaluation::Pending`](crate::Evaluation)) and waits without holding up any other
//! connection, bounded by [`Revocation::with_timeout`] and by the adapter's deadline for
//! the request.
//!
//! Answers are shared by every connection: cached until the answer's nextUpdate (an OCSP
//! answer without one: 5 minutes after its thisUpdate, and not believed past that) (bounded
//! by [`Revocation::with_cache_entries`]), refreshed when four fifths of that time has
//! passed (one connection waits for the refresh, the others keep the answer it replaces),
//! and fetched once however many connections ask at the same time. A failed fetch is
//! remembered for [`Revocation::with_retry_after`] so that a responder that is down does
//! not cost every connection a timeout.
//!
//! What each outcome means:
//!
//! | outcome | OCSP | OCSP required | CRL fetch | CRL fetch, unknown denied |
//! |---|---|---|---|---|
//! | good / not listed | allow | allow | allow | allow |
//! | revoked / listed | `CERT_REVOKED` | `CERT_REVOKED` | `CERT_REVOKED` | `CERT_REVOKED` |
//! | responder says unknown | allow, soft fail | `OCSP_STATUS_UNKNOWN` | — | — |
//! | unreachable, invalid, forged, expired, too large | allow, soft fail | `OCSP_CHECK_FAILED` | allow, soft fail | `UNABLE_TO_GET_CRL` |
//! | no URL in the certificate | allow (not checked) | allow | allow | allow |
//!
//! A soft fail is reported to the authenticator's [`Observer`]
//! ([`AuthenticatorBuilder::observer`](crate::AuthenticatorBuilder::observer),
//! `revocation_soft_fail`) with the reason, so it can be logged and counted.

mod cache;
mod fetch;
mod ocsp;

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateRevocationListDer, UnixTime};
use sha2::{Digest as _, Sha256};

pub use fetch::{Fetch, FetchRequest};

use crate::asn1::{Reader, tag};
use crate::cert::ClientCertificate;
use crate::observe::Observer;
use crate::oid::known;
use crate::policy::BoxFuture;
use crate::verify::crl::{self, Crl};
use crate::verify::{SignatureAlgorithms, VerifiedChain, VerifyError};
use cache::{Cache, Key, Lookup};

/// The default for [`Revocation::with_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// The default for [`Revocation::with_max_ocsp_bytes`].
pub const DEFAULT_MAX_OCSP_BYTES: usize = 64 * 1024;
/// The default for [`Revocation::with_max_crl_bytes`].
pub const DEFAULT_MAX_CRL_BYTES: usize = 8 * 1024 * 1024;
/// The default for [`Revocation::with_cache_entries`].
pub const DEFAULT_CACHE_ENTRIES: usize = 4096;

/// How much a check may deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Off,
    /// Failures allow (soft fail).
    Soft,
    /// Failures deny.
    Required,
}

/// Online revocation checking: which checks, how strict, and the shared answers. Clones
/// share the answers.
#[derive(Clone)]
pub struct Revocation {
    inner: Arc<Inner>,
}

struct Inner {
    fetcher: Arc<dyn Fetch>,
    s: Settings,
    ocsp_answers: Cache<OcspOutcome>,
    crls: Cache<CrlOutcome>,
    /// Per leaf (by SHA-256): its CRL's cache key, and what the CRL last judged of it, so
    /// that a decision answered from the cache neither walks the certificate, hashes the
    /// URL nor searches the CRL again. Bounded by the cache size (emptied when full).
    crl_leaves: std::sync::Mutex<cache::DigestMap<LeafCrl>>,
}

struct LeafCrl {
    /// `None`: the certificate names no `http:` distribution point.
    key: Option<Key>,
    /// The CRL it was last judged by, the judgement, and until when the cache would
    /// answer with that CRL again (its refresh time): before then the judgement stands
    /// without a look at the cache.
    judged: Option<(Arc<Crl>, Judged, i64)>,
}

/// What a leaf's memo answers for its CRL.
enum Memo {
    NoUrl,
    Judged(Judged),
    Key(Key),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judged {
    Revoked,
    NotRevoked,
    NotCovered,
}

#[derive(Clone, Copy)]
struct Settings {
    algorithms: SignatureAlgorithms,
    ocsp: Mode,
    crl: Mode,
    timeout: Duration,
    max_ocsp_bytes: usize,
    max_crl_bytes: usize,
    cache_entries: usize,
    /// Seconds.
    skew: i64,
    retry_after: i64,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocation")
            .field("ocsp", &self.inner.s.ocsp)
            .field("crl", &self.inner.s.crl)
            .field("timeout", &self.inner.s.timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum OcspOutcome {
    Status(ocsp::CertStatus),
    /// The certificate names no responder certauth can ask.
    NoResponder,
    Failed(Arc<str>),
}

#[derive(Clone)]
enum CrlOutcome {
    Crl(Arc<Crl>),
    Failed(Arc<str>),
}

impl Revocation {
    /// No check enabled yet (see [`Self::ocsp`], [`Self::crl_fetch`]): fetches go through
    /// `fetcher`, signatures are checked with `algorithms` (the verifier's).
    pub fn new(fetcher: Arc<dyn Fetch>, algorithms: SignatureAlgorithms) -> Self {
        let s = Settings {
            algorithms,
            ocsp: Mode::Off,
            crl: Mode::Off,
            timeout: DEFAULT_TIMEOUT,
            max_ocsp_bytes: DEFAULT_MAX_OCSP_BYTES,
            max_crl_bytes: DEFAULT_MAX_CRL_BYTES,
            cache_entries: DEFAULT_CACHE_ENTRIES,
            skew: 300,
            retry_after: 30,
        };
        Self {
            inner: Arc::new(Inner::new(fetcher, s)),
        }
    }

    /// A copy with other settings and empty caches: answers judged under the old settings
    /// are not reused.
    fn with(self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut s = self.inner.s;
        f(&mut s);
        Self {
            inner: Arc::new(Inner::new(Arc::clone(&self.inner.fetcher), s)),
        }
    }

    /// Asks the OCSP responder of each client certificate that names one. `required`:
    /// an answer that cannot be had or believed denies (`OCSP_CHECK_FAILED`), and so does
    /// a responder's `unknown` (`OCSP_STATUS_UNKNOWN`); otherwise both allow, reported as
    /// soft fails.
    pub fn ocsp(self, required: bool) -> Self {
        self.with(|s| s.ocsp = if required { Mode::Required } else { Mode::Soft })
    }

    /// Fetches the CRL at each client certificate's `http:` distribution point. `deny_unknown`:
    /// a CRL that cannot be had or believed, or that does not cover the certificate, denies
    /// (`UNABLE_TO_GET_CRL`); otherwise it allows, reported as a soft fail.
    pub fn crl_fetch(self, deny_unknown: bool) -> Self {
        self.with(|s| {
            s.crl = if deny_unknown {
                Mode::Required
            } else {
                Mode::Soft
            }
        })
    }

    /// How long one fetch may take, connect included (default [`DEFAULT_TIMEOUT`]). Keep it
    /// under the head-read timeout ([`Limits`](crate::Limits)), which bounds the whole
    /// decision.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with(|s| s.timeout = timeout)
    }

    /// The largest OCSP response read, head included (default [`DEFAULT_MAX_OCSP_BYTES`]).
    pub fn with_max_ocsp_bytes(self, max: usize) -> Self {
        self.with(|s| s.max_ocsp_bytes = max)
    }

    /// The largest CRL response read, head included (default [`DEFAULT_MAX_CRL_BYTES`]).
    pub fn with_max_crl_bytes(self, max: usize) -> Self {
        self.with(|s| s.max_crl_bytes = max)
    }

    /// How many OCSP answers and how many CRLs are kept, each (default
    /// [`DEFAULT_CACHE_ENTRIES`]); past it the one that runs out first goes.
    pub fn with_cache_entries(self, max: usize) -> Self {
        self.with(|s| s.cache_entries = max)
    }

    /// How long a failed fetch is remembered before it is tried again (default 30 s).
    pub fn with_retry_after(self, after: Duration) -> Self {
        self.with(|s| s.retry_after = secs(after))
    }

    /// How far an OCSP answer's thisUpdate may be ahead of `now`, and its nextUpdate
    /// behind, for clock differences (default 5 minutes, as `openssl ocsp`).
    pub fn with_clock_skew(self, skew: Duration) -> Self {
        self.with(|s| s.skew = secs(skew))
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Inner {
    fn new(fetcher: Arc<dyn Fetch>, s: Settings) -> Self {
        Self {
            fetcher,
            s,
            ocsp_answers: Cache::new(s.cache_entries),
            crls: Cache::new(s.cache_entries),
            crl_leaves: std::sync::Mutex::default(),
        }
    }
}

/// The outcome of the checks of one decision.
pub(crate) enum Check {
    /// Decided without waiting.
    Done(Result<(), VerifyError>),
    /// Waiting on a fetch (or on another decision's fetch of the same answer).
    Wait(BoxFuture<Result<(), VerifyError>>),
}

/// One check's answer or wait.
enum Step {
    Done(Result<(), VerifyError>),
    Wait(BoxFuture<Result<(), VerifyError>>),
}

impl Revocation {
    /// Checks the leaf of a verified chain at `now`. Only the leaf: intermediates are
    /// checked by the configured CRLs ([`ChainVerifier::with_crls`](crate::ChainVerifier::with_crls)).
    /// Soft fails are reported to `observer`.
    pub(crate) fn check(
        &self,
        chain: &VerifiedChain,
        now: UnixTime,
        observer: Option<&Arc<dyn Observer>>,
    ) -> Check {
        let Some(issuer) = chain.issuer() else {
            return Check::Done(Ok(()));
        };
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let steps = [
            (self.inner.s.ocsp != Mode::Off)
                .then(|| self.ocsp_step(chain.leaf(), issuer, now, observer)),
            (self.inner.s.crl != Mode::Off)
                .then(|| self.crl_step(chain.leaf(), issuer, now, observer)),
        ];
        let mut waits = Vec::new();
        for step in steps.into_iter().flatten() {
            match step {
                Step::Done(Ok(())) => {}
                Step::Done(Err(e)) => return Check::Done(Err(e)),
                Step::Wait(w) => waits.push(w),
            }
        }
        if waits.is_empty() {
            return Check::Done(Ok(()));
        }
        // Both checks wait at once; the first denial ends the decision.
        let mut waits: Vec<Option<BoxFuture<Result<(), VerifyError>>>> =
            waits.into_iter().map(Some).collect();
        Check::Wait(Box::pin(std::future::poll_fn(move |cx| {
            let mut pending = false;
            for slot in &mut waits {
                if let Some(w) = slot {
                    match w.as_mut().poll(cx) {
                        Poll::Ready(Ok(())) => *slot = None,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        })))
    }

    fn ocsp_step(
        &self,
        leaf: &ClientCertificate,
        issuer: &ClientCertificate,
        now: i64,
        observer: Option<&Arc<dyn Observer>>,
    ) -> Step {
        // Keyed by the leaf's fingerprint, which the verified chain already holds: a hit
        // costs a map lookup.
        let key = *leaf.fingerprint_sha256();
        let lookup = self.inner.ocsp_answers.lookup(&key, now);
        if let Lookup::Hit(outcome, _) = lookup {
            return Step::Done(self.inner.apply_ocsp(&outcome, observer.map(|o| &**o)));
        }
        // Armed now: a decision dropped before it is ever polled hands the key back too.
        let lead = Leading::arm(&self.inner, &lookup, |i| &i.ocsp_answers, key);
        let inner = Arc::clone(&self.inner);
        let (leaf, issuer, observer) = (leaf.clone(), issuer.clone(), observer.cloned());
        Step::Wait(Box::pin(async move {
            let outcome = settle(
                &inner,
                |i| &i.ocsp_answers,
                key,
                lookup,
                lead,
                now,
                || inner.fetch_ocsp(leaf, issuer, now),
            )
            .await;
            inner.apply_ocsp(&outcome, observer.as_deref())
        }))
    }

    fn crl_step(
        &self,
        leaf: &ClientCertificate,
        issuer: &ClientCertificate,
        now: i64,
        observer: Option<&Arc<dyn Observer>>,
    ) -> Step {
        let key = match self.inner.crl_memo(leaf, issuer, now) {
            Memo::NoUrl => return Step::Done(Ok(())),
            Memo::Judged(judged) => {
                return Step::Done(self.inner.apply_judged(judged, observer.map(|o| &**o)));
            }
            Memo::Key(key) => key,
        };
        let lookup = self.inner.crls.lookup(&key, now);
        if let Lookup::Hit(outcome, until) = lookup {
            if let CrlOutcome::Crl(crl) = &outcome {
                let judged = self.inner.judge_crl(crl, leaf, issuer, until);
                return Step::Done(self.inner.apply_judged(judged, observer.map(|o| &**o)));
            }
            return Step::Done(self.inner.apply_crl(
                &outcome,
                leaf,
                issuer,
                observer.map(|o| &**o),
            ));
        }
        let Some(url) = crl_url(leaf) else {
            return Step::Done(Ok(())); // not reached: the key came from the URL
        };
        let lead = Leading::arm(&self.inner, &lookup, |i| &i.crls, key);
        let inner = Arc::clone(&self.inner);
        let (leaf, issuer, url) = (leaf.clone(), issuer.clone(), url.to_owned());
        let observer = observer.cloned();
        Step::Wait(Box::pin(async move {
            let outcome = settle(
                &inner,
                |i| &i.crls,
                key,
                lookup,
                lead,
                now,
                || inner.fetch_crl(url, issuer.clone(), now),
            )
            .await;
            inner.apply_crl(&outcome, &leaf, &issuer, observer.as_deref())
        }))
    }
}

/// A fetched answer and its times (Unix seconds).
struct Fetched<V> {
    value: V,
    /// `None`: the fetch failed (and `value` says why).
    expires_at: Option<i64>,
}

/// Which of an `Inner`'s caches.
type CacheOf<V> = fn(&Inner) -> &Cache<V>;

/// Waits for, or leads, the fetch of `key`: the answer that holds once it is settled.
/// `lead` is armed when `lookup` is a lead.
async fn settle<V, F>(
    inner: &Arc<Inner>,
    cache_of: CacheOf<V>,
    key: Key,
    mut lookup: Lookup<V>,
    mut lead: Option<Leading<V>>,
    now: i64,
    fetch: impl FnOnce() -> F,
) -> V
where
    V: Clone,
    F: Future<Output = (Fetched<V>, i64)>,
{
    let cache = cache_of(inner);
    let mut fetch = Some(fetch);
    loop {
        match lookup {
            Lookup::Hit(v, _) => return v,
            Lookup::Wait => {
                std::future::poll_fn(|cx| cache.poll_wait(&key, cx)).await;
                lookup = cache.lookup(&key, now);
                lead = Leading::arm(inner, &lookup, cache_of, key);
            }
            Lookup::Lead { stale } => {
                let (Some(fetch), Some(guard)) = (fetch.take(), lead.take()) else {
                    // Not reached: a leader returns below.
                    lookup = Lookup::Wait;
                    continue;
                };
                let (fetched, retry_after) = fetch().await;
                let (value, refresh_at, expires_at) = match (fetched.expires_at, stale) {
                    (Some(expires_at), _) => {
                        let expires_at = expires_at.max(now.saturating_add(1));
                        (fetched.value, refresh_point(now, expires_at), expires_at)
                    }
                    // A failed refresh keeps the answer it was refreshing, tried again later.
                    (None, Some((stale, expires_at))) => {
                        (stale, now.saturating_add(retry_after), expires_at)
                    }
                    (None, None) => {
                        let until = now.saturating_add(retry_after);
                        (fetched.value, until, until)
                    }
                };
                guard.finish(value.clone(), refresh_at, expires_at);
                return value;
            }
        }
    }
}

/// The lead of a fetch: hands the key back (waking its waiters) if dropped before it
/// finishes, as when the decision waiting on it is dropped with its connection.
struct Leading<V: Clone> {
    inner: Arc<Inner>,
    cache_of: CacheOf<V>,
    key: Key,
    done: bool,
}

impl<V: Clone> Leading<V> {
    fn arm(inner: &Arc<Inner>, lookup: &Lookup<V>, cache_of: CacheOf<V>, key: Key) -> Option<Self> {
        matches!(lookup, Lookup::Lead { .. }).then(|| Self {
            inner: Arc::clone(inner),
            cache_of,
            key,
            done: false,
        })
    }

    fn finish(mut self, value: V, refresh_at: i64, expires_at: i64) {
        self.done = true;
        (self.cache_of)(&self.inner).finish(&self.key, value, refresh_at, expires_at);
    }
}

impl<V: Clone> Drop for Leading<V> {
    fn drop(&mut self) {
        if !self.done {
            (self.cache_of)(&self.inner).abandon(&self.key);
        }
    }
}

/// The first `http:` URL of the certificate's CRL distribution points (a fullName, for the
/// whole CRL: no reasons, no cRLIssuer).
fn crl_url(cert: &ClientCertificate) -> Option<&str> {
    let ext = cert
        .raw_extensions()
        .find(|e| e.oid().as_bytes() == known::EXT_CRL_DISTRIBUTION_POINTS)?;
    let mut dps = Reader::new(ext.value()).read(tag::SEQUENCE).ok()?.reader();
    while let Ok(dp) = dps.read(tag::SEQUENCE) {
        let mut d = dp.reader();
        let Ok(Some(name)) = d.read_optional(tag::context_constructed(0)) else {
            continue;
        };
        if !d.is_empty() {
            continue;
        }
        let Ok(full) = name.reader().read(tag::context_constructed(0)) else {
            continue;
        };
        let mut names = full.reader();
        while let Ok(n) = names.read_any() {
            if n.tag == tag::context_primitive(6)
                && let Ok(url) = std::str::from_utf8(n.value)
                && fetch::is_http_url(url)
            {
                return Some(url);
            }
        }
    }
    None
}

/// A CRL is judged against its issuer's key, so one URL is fetched once per issuer.
fn crl_key(url: &str, issuer: &ClientCertificate) -> Key {
    let mut h = Sha256::new();
    h.update(u64::try_from(url.len()).unwrap_or(u64::MAX).to_be_bytes());
    h.update(url.as_bytes());
    h.update(issuer.subject_public_key_info());
    h.finalize().into()
}

fn soft_fail(observer: Option<&dyn Observer>, check: &'static str, detail: &str) {
    if let Some(o) = observer {
        o.revocation_soft_fail(check, detail);
    }
}

impl Inner {
    async fn fetch_ocsp(
        self: &Arc<Self>,
        leaf: ClientCertificate,
        issuer: ClientCertificate,
        now: i64,
    ) -> (Fetched<OcspOutcome>, i64) {
        let s = self.s;
        let hold = |outcome, until| {
            (
                Fetched {
                    value: outcome,
                    expires_at: Some(until),
                },
                s.retry_after,
            )
        };
        let failed = |why: String| {
            (
                Fetched {
                    value: OcspOutcome::Failed(why.into()),
                    expires_at: None,
                },
                s.retry_after,
            )
        };
        let Some(url) = ocsp::responder_url(&leaf) else {
            // Nothing to ask, for as long as the certificate is valid.
            return hold(OcspOutcome::NoResponder, leaf.not_after().unix_seconds());
        };
        let Some(id) = ocsp::CertId::new(&leaf, &issuer) else {
            return failed("the issuer's key cannot be read to ask about it".into());
        };
        let Some(request) =
            FetchRequest::post_ocsp(url, &id.request(), s.max_ocsp_bytes, s.timeout)
        else {
            return failed(format!(
                "the responder URL {url:?} is not one certauth fetches"
            ));
        };
        let response = match self.fetcher.fetch(request).await {
            Ok(r) => r,
            Err(e) => return failed(format!("the responder at {url:?} did not answer: {e}")),
        };
        let judged = fetch::response_body(&response, s.max_ocsp_bytes)
            .and_then(|body| ocsp::judge(body, &id, &issuer, now, s.skew, s.algorithms));
        match judged {
            Ok(answer) => hold(OcspOutcome::Status(answer.status), answer.next_update),
            Err(why) => failed(format!("the answer from {url:?} is not believed: {why}")),
        }
    }

    fn apply_ocsp(
        &self,
        outcome: &OcspOutcome,
        observer: Option<&dyn Observer>,
    ) -> Result<(), VerifyError> {
        let required = self.s.ocsp == Mode::Required;
        match outcome {
            OcspOutcome::Status(ocsp::CertStatus::Good) | OcspOutcome::NoResponder => Ok(()),
            OcspOutcome::Status(ocsp::CertStatus::Revoked) => Err(VerifyError::Revoked),
            OcspOutcome::Status(ocsp::CertStatus::Unknown) if required => {
                Err(VerifyError::OcspStatusUnknown)
            }
            OcspOutcome::Status(ocsp::CertStatus::Unknown) => {
                soft_fail(
                    observer,
                    "ocsp",
                    "the responder does not know the certificate",
                );
                Ok(())
            }
            OcspOutcome::Failed(why) if required => Err(VerifyError::OcspFailed {
                detail: why.to_string(),
            }),
            OcspOutcome::Failed(why) => {
                soft_fail(observer, "ocsp", why);
                Ok(())
            }
        }
    }

    async fn fetch_crl(
        self: &Arc<Self>,
        url: String,
        issuer: ClientCertificate,
        now: i64,
    ) -> (Fetched<CrlOutcome>, i64) {
        let s = self.s;
        let failed = |why: String| {
            (
                Fetched {
                    value: CrlOutcome::Failed(why.into()),
                    expires_at: None,
                },
                s.retry_after,
            )
        };
        let Some(request) = FetchRequest::get(&url, s.max_crl_bytes, s.timeout) else {
            return failed(format!("the CRL URL {url:?} is not one certauth fetches"));
        };
        let response = match self.fetcher.fetch(request).await {
            Ok(r) => r,
            Err(e) => return failed(format!("the CRL at {url:?} could not be fetched: {e}")),
        };
        let body = match fetch::response_body(&response, s.max_crl_bytes) {
            Ok(b) => b,
            Err(why) => return failed(format!("the CRL at {url:?} was not received: {why}")),
        };
        // RFC 5280 4.2.1.13: DER; PEM is accepted too, as servers publish both.
        let der = match body.first() {
            Some(0x30) => body.to_vec(),
            _ => match CertificateRevocationListDer::from_pem_slice(body) {
                Ok(d) => d.to_vec(),
                Err(_) => return failed(format!("the CRL at {url:?} is neither DER nor PEM")),
            },
        };
        let crl = match Crl::load(
            &CertificateRevocationListDer::from(der),
            &[&issuer],
            s.algorithms,
        ) {
            Ok(crl) if crl.has_configured_signer() => crl,
            Ok(_) => {
                return failed(format!(
                    "the CRL at {url:?} is not issued by {} (another CA's, or signed by another key)",
                    issuer.subject().to_rfc4514()
                ));
            }
            Err(crl::Refusal::Rule { code, rule }) => {
                return failed(format!(
                    "the CRL at {url:?} is not believed ({code}): {rule}"
                ));
            }
            Err(crl::Refusal::Webpki(e)) => {
                return failed(format!("the CRL at {url:?} is refused: {e:?}"));
            }
        };
        if crl.next_update <= now {
            return failed(format!(
                "the CRL at {url:?} expired at its nextUpdate {}",
                crate::Time::from_unix_seconds(crl.next_update)
            ));
        }
        let until = crl.next_update;
        (
            Fetched {
                value: CrlOutcome::Crl(Arc::new(crl)),
                expires_at: Some(until),
            },
            s.retry_after,
        )
    }

    fn crl_leaves(&self) -> std::sync::MutexGuard<'_, cache::DigestMap<LeafCrl>> {
        self.crl_leaves
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The leaf's CRL judgement while it stands, else its CRL's cache key (its first
    /// `http:` distribution point, judged against `issuer`'s key), worked out once per leaf.
    fn crl_memo(&self, leaf: &ClientCertificate, issuer: &ClientCertificate, now: i64) -> Memo {
        let fingerprint = leaf.fingerprint_sha256();
        if let Some(known) = self.crl_leaves().get(fingerprint) {
            return match (known.key, &known.judged) {
                (None, _) => Memo::NoUrl,
                (Some(_), Some((_, judged, until))) if now < *until => Memo::Judged(*judged),
                (Some(key), _) => Memo::Key(key),
            };
        }
        let key = crl_url(leaf).map(|url| crl_key(url, issuer));
        let mut leaves = self.crl_leaves();
        if leaves.len() >= self.s.cache_entries {
            leaves.clear();
        }
        leaves.insert(*fingerprint, LeafCrl { key, judged: None });
        key.map_or(Memo::NoUrl, Memo::Key)
    }

    /// What `crl` says of `leaf`, remembered for the leaf until `until` (while that CRL
    /// is the one).
    fn judge_crl(
        &self,
        crl: &Arc<Crl>,
        leaf: &ClientCertificate,
        issuer: &ClientCertificate,
        until: i64,
    ) -> Judged {
        let fingerprint = leaf.fingerprint_sha256();
        let known = match self.crl_leaves().get(fingerprint) {
            Some(LeafCrl {
                judged: Some((by, judged, _)),
                ..
            }) if Arc::ptr_eq(by, crl) => Some(*judged),
            _ => None,
        };
        let judged = known.unwrap_or_else(|| {
            match crl::status(
                std::slice::from_ref(&**crl),
                leaf,
                false,
                issuer,
                self.s.algorithms,
            ) {
                crl::Status::Listed { revoked: true, .. } => Judged::Revoked,
                crl::Status::Listed { revoked: false, .. } => Judged::NotRevoked,
                crl::Status::Unknown => Judged::NotCovered,
            }
        });
        if let Some(memo) = self.crl_leaves().get_mut(fingerprint) {
            memo.judged = Some((Arc::clone(crl), judged, until));
        }
        judged
    }

    fn crl_unknown(&self, why: &str, observer: Option<&dyn Observer>) -> Result<(), VerifyError> {
        if self.s.crl == Mode::Required {
            Err(VerifyError::CrlUnavailable {
                detail: why.to_owned(),
            })
        } else {
            soft_fail(observer, "crl", why);
            Ok(())
        }
    }

    fn apply_judged(
        &self,
        judged: Judged,
        observer: Option<&dyn Observer>,
    ) -> Result<(), VerifyError> {
        match judged {
            Judged::Revoked => Err(VerifyError::Revoked),
            Judged::NotRevoked => Ok(()),
            Judged::NotCovered => self.crl_unknown(
                "the CRL at the certificate's distribution point does not cover it",
                observer,
            ),
        }
    }

    /// What a settled fetch says of `leaf` (judged afresh: a fetch is rare).
    fn apply_crl(
        &self,
        outcome: &CrlOutcome,
        leaf: &ClientCertificate,
        issuer: &ClientCertificate,
        observer: Option<&dyn Observer>,
    ) -> Result<(), VerifyError> {
        match outcome {
            CrlOutcome::Failed(why) => self.crl_unknown(why, observer),
            CrlOutcome::Crl(crl) => {
                self.apply_judged(self.judge_crl(crl, leaf, issuer, i64::MIN), observer)
            }
        }
    }
}

/// When an answer fetched at `now` and good until `expires_at` (later than `now`) is fetched
/// again: once four fifths of its time has passed, and never before the next second.
fn refresh_point(now: i64, expires_at: i64) -> i64 {
    now.saturating_add((expires_at - now) / 5 * 4)
        .max(now.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_fetched_again_after_four_fifths_of_its_time() {
        assert_eq!(refresh_point(1_000, 1_500), 1_400);
        assert_eq!(refresh_point(0, 3_600), 2_880);
        // Never before the next second, however short the answer's time.
        assert_eq!(refresh_point(1_000, 1_001), 1_001);
        assert_eq!(refresh_point(1_000, 1_004), 1_001);
    }

    #[test]
    fn the_documented_defaults() {
        // README and `serve --help` name these sizes.
        assert_eq!(DEFAULT_MAX_OCSP_BYTES, 65_536);
        assert_eq!(DEFAULT_MAX_CRL_BYTES, 8_388_608);
        assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(3));
        assert_eq!(DEFAULT_CACHE_ENTRIES, 4096);
    }

    struct Never;
    impl Fetch for Never {
        fn fetch(&self, _: FetchRequest) -> BoxFuture<Result<Vec<u8>, std::io::Error>> {
            Box::pin(std::future::pending())
        }
    }

    #[test]
    fn debug_names_the_checks_and_the_timeout() {
        let r = Revocation::new(Arc::new(Never), &[]).ocsp(true);
        let shown = format!("{r:?}");
        assert!(shown.starts_with("Revocation {"), "{shown}");
        assert!(
            shown.contains("ocsp:") && shown.contains("timeout: 3s"),
            "{shown}"
        );
    }
}
