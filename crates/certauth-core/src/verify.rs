//! Chain verification for client authentication (rustls-webpki), with stable error codes.
//!
//! The codes are the names Node.js users already log and match on
//! (`socket.authorizationError`: OpenSSL's `X509_V_ERR_*` without the prefix), so a port from
//! client-certificate-auth keeps its alerting. Where OpenSSL has no name for a failure,
//! certauth adds one (`NO_CERTIFICATE`, `CHAIN_TOO_LONG`, `MALFORMED_CERTIFICATE`, …).
//!
//! certauth is stricter than Node where RFC 5280 and webpki are: a leaf with `cA` set, a v1
//! certificate, a signature algorithm the provider does not offer, and an unknown critical
//! extension are all refused. A SHA-1 or MD5 signature is refused as OpenSSL refuses it at
//! security level 1 (Node's default), `CA_MD_TOO_WEAK`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, SignatureVerificationAlgorithm, TrustAnchor,
    UnixTime,
};
use webpki::{EndEntityCert, KeyUsage};

use crate::cert::{CertLimits, ClientCertificate, X509Error};
use crate::error::SetupError;
use crate::keys::MIN_RSA_BITS;
use crate::limits::Limits;
use crate::time::Time;

mod anchors;
mod cache;
mod constraints;
pub(crate) mod crl;
mod epoch;

pub use anchors::TrustAnchors;
pub use cache::DEFAULT_CACHE_ENTRIES;
use cache::{Cache, Window};
pub(crate) use constraints::same_name;
use crl::Crl;

/// The signature algorithms verification may use: a crypto provider's
/// `signature_verification_algorithms.all` (rustls), or webpki's own constants.
pub type SignatureAlgorithms = &'static [&'static dyn SignatureVerificationAlgorithm];

/// rustls-webpki's reason for a refusal, as text: webpki's name for it
/// (`UnsupportedCriticalExtension`, `BadDer`, …). Text rather than webpki's type, so that a
/// webpki upgrade does not change certauth's API.
pub(crate) fn webpki_reason(e: &webpki::Error) -> String {
    format!("{e:?}")
}

/// Reads certificates from PEM (any number of certificate blocks, read as OpenSSL reads
/// them: `CERTIFICATE`, `X509 CERTIFICATE` and `TRUSTED CERTIFICATE` blocks, the end line
/// exactly `-----END <label>-----`, no blank line inside the base64; other blocks and text
/// around them are skipped: see [`crate::pem`]) or, if the input is not PEM, one DER certificate. Any unreadable
/// certificate block is an error ([`SetupError::Pem`]): a bundle is taken whole.
pub fn certificates_from_pem_or_der(
    input: &[u8],
) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    if input.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(input.to_vec())]);
    }
    let certs = crate::pem::blocks(input)
        .into_iter()
        .map(|c| c.map(CertificateDer::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(SetupError::from)?;
    if certs.is_empty() {
        return Err(SetupError::NoCertificates);
    }
    Ok(certs)
}

/// Which purpose the leaf must be valid for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Purpose {
    /// TLS client authentication (what certauth does): an extended key usage, if present,
    /// must include clientAuth, and a key usage, if present, digitalSignature.
    #[default]
    ClientAuth,
    /// TLS server authentication: for tools (and path-validation test suites) that check
    /// server certificates with the same rules.
    ServerAuth,
}

/// Which certificates CRLs are checked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum RevocationDepth {
    /// Only the client's own certificate.
    EndEntity,
    /// Every certificate in the chain (intermediates too).
    #[default]
    Chain,
}

/// What to do when no configured CRL covers a certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum UnknownRevocation {
    /// Accept it (as OpenSSL does without `X509_V_FLAG_CRL_CHECK`).
    #[default]
    Allow,
    /// Refuse it with `UNABLE_TO_GET_CRL`.
    Deny,
}

/// Verifies client chains. Built once, shared (`Send + Sync`), cheap per call.
///
/// A verifier remembers the chains it verified (see [`Self::with_cache_entries`]): the same
/// chain is verified once and reused while its result holds, across connections and
/// requests. Clones share that memory; every `with_*` call starts a new, empty one, so a
/// result is never reused with other anchors, intermediates, CRLs or options.
#[derive(Clone)]
pub struct ChainVerifier {
    anchors: Arc<TrustAnchors>,
    intermediates: Vec<ClientCertificate>,
    crls: Arc<Vec<Crl>>,
    /// What loading the CRLs found worth an operator's attention.
    crl_warnings: Arc<Vec<String>>,
    revocation_depth: RevocationDepth,
    unknown_revocation: UnknownRevocation,
    enforce_crl_expiry: bool,
    max_chain_len: usize,
    purpose: Purpose,
    algorithms: SignatureAlgorithms,
    cert_limits: CertLimits,
    cache_entries: usize,
    cache: Arc<Cache>,
    /// Which configuration the cache and connection memos belong to.
    id: u64,
}

/// A fresh identity for a verifier configuration.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What one connection remembers about its TLS peer's verified chain, so that its later
/// requests (keep-alive, HTTP/2 streams) are not verified again while the result holds
/// (same verifier, `now` inside every certificate's validity window and before the CRLs'
/// nextUpdate). `tls::TlsPeer` holds one per connection, never shared between connections.
#[derive(Debug, Default)]
pub(crate) struct PeerMemo {
    slot: OnceLock<(u64, VerifiedChain, Window)>,
}

impl fmt::Debug for ChainVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainVerifier")
            .field("anchors", &self.anchors.len())
            .field("intermediates", &self.intermediates.len())
            .field("crls", &self.crls.len())
            .field("revocation_depth", &self.revocation_depth)
            .field("unknown_revocation", &self.unknown_revocation)
            .field("max_chain_len", &self.max_chain_len)
            .field("cache", &self.cache.stats())
            .finish_non_exhaustive()
    }
}

/// The default cap on the number of certificates a client may present (leaf included).
pub const DEFAULT_MAX_CHAIN_LEN: usize = 8;

impl ChainVerifier {
    /// A verifier for these anchors using these signature algorithms (for example
    /// an adapter's `default_provider().signature_verification_algorithms.all`).
    pub fn new(anchors: TrustAnchors, algorithms: SignatureAlgorithms) -> Self {
        Self {
            anchors: Arc::new(anchors),
            intermediates: Vec::new(),
            crls: Arc::new(Vec::new()),
            crl_warnings: Arc::new(Vec::new()),
            revocation_depth: RevocationDepth::default(),
            unknown_revocation: UnknownRevocation::default(),
            enforce_crl_expiry: true,
            max_chain_len: DEFAULT_MAX_CHAIN_LEN,
            purpose: Purpose::ClientAuth,
            algorithms,
            cert_limits: CertLimits::DEFAULT,
            cache_entries: DEFAULT_CACHE_ENTRIES,
            cache: Arc::new(Cache::new(DEFAULT_CACHE_ENTRIES)),
            id: next_id(),
        }
    }

    /// A new, empty result cache and identity: the configuration changed.
    fn reconfigured(mut self) -> Self {
        self.cache = Arc::new(Cache::new(self.cache_entries));
        self.id = next_id();
        self
    }

    /// How many verification results to remember at most (default
    /// [`DEFAULT_CACHE_ENTRIES`]; 0 verifies every chain every time). Each holds the parsed
    /// certificates of one verified path.
    pub fn with_cache_entries(mut self, max: usize) -> Self {
        self.cache_entries = max;
        self.reconfigured()
    }

    /// Chains verified in full so far (and so, on success, remembered), by this verifier
    /// and its clones.
    pub fn verifications(&self) -> u64 {
        self.cache.stats().verifications
    }

    /// Verifications answered so far from what was remembered (the verifier's cache or a
    /// connection's), by this verifier and its clones.
    pub fn cache_hits(&self) -> u64 {
        self.cache.stats().hits
    }

    /// Verification results remembered now.
    pub fn cached_results(&self) -> usize {
        self.cache.stats().entries
    }

    /// Verifies server certificates instead of client certificates: an extended key usage,
    /// if present, must include serverAuth (default: clientAuth, what certauth does). For
    /// tools and path-validation test suites that check server certificates with the same
    /// rules.
    pub fn for_server_certificates(mut self) -> Self {
        self.purpose = Purpose::ServerAuth;
        self.reconfigured()
    }

    /// Intermediates to use besides the ones the client presents (for clients that send
    /// only their leaf).
    pub fn with_intermediates(
        mut self,
        certs: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, SetupError> {
        for (index, der) in certs.into_iter().enumerate() {
            let cert = ClientCertificate::from_der(&der)
                .map_err(|source| SetupError::Malformed { index, source })?;
            self.intermediates.push(cert);
        }
        Ok(self.reconfigured())
    }

    /// CRLs (DER), replacing any set before. Load the CAs and intermediates first: each CRL
    /// is judged against them. A CRL is refused (as OpenSSL refuses it) for an unhandled
    /// critical extension, an issuer whose key usage lacks cRLSign, a revoked serial that is
    /// not DER, or a signature that no configured CA of its issuer's name verifies. A CRL
    /// whose issuer is no configured CA is loaded (it may cover intermediates clients
    /// present) with a warning ([`Self::crl_warnings`]).
    ///
    /// Of the CRLs that cover a certificate (its issuer's name as RFC 5280 7.1 compares
    /// names, a scope that includes it, signed by its issuer on the verified path), the
    /// newest (cRLNumber, then thisUpdate) decides, whatever the order given here.
    pub fn with_crls(
        mut self,
        crls: impl IntoIterator<Item = CertificateRevocationListDer<'static>>,
    ) -> Result<Self, SetupError> {
        let cas: Vec<&ClientCertificate> = self
            .anchors
            .certs
            .iter()
            .chain(&self.intermediates)
            .collect();
        let mut list = Vec::new();
        let mut warnings = Vec::new();
        for (i, der) in crls.into_iter().enumerate() {
            let crl = Crl::load(&der, &cas, self.algorithms).map_err(|r| match r {
                crl::Refusal::Rule { code, rule } => SetupError::BadCrl {
                    index: i,
                    code,
                    rule,
                },
                crl::Refusal::Webpki(e) => SetupError::Rejected {
                    what: format!("CRL {i}"),
                    reason: webpki_reason(&e),
                },
            })?;
            if !crl.has_configured_signer() {
                warnings.push(format!(
                    "CRL {i} (issuer {}) names no configured CA: it covers only intermediates \
                     clients present under that name",
                    crl.issuer_name()
                ));
            }
            list.push(crl);
        }
        self.crls = Arc::new(list);
        self.crl_warnings = Arc::new(warnings);
        Ok(self.reconfigured())
    }

    /// What loading the CRLs found worth an operator's attention (one line each), such as a
    /// CRL whose issuer is none of the configured CAs: it then revokes nothing unless
    /// clients present an intermediate of that name. Empty when all is well.
    pub fn crl_warnings(&self) -> &[String] {
        &self.crl_warnings
    }

    /// CRLs from PEM (`X509 CRL` blocks).
    pub fn with_crls_pem(self, pem: &[u8]) -> Result<Self, SetupError> {
        let crls = CertificateRevocationListDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(SetupError::CrlPem)?;
        if crls.is_empty() {
            return Err(SetupError::NoCrls);
        }
        self.with_crls(crls)
    }

    /// Checks CRLs for the client's own certificate only (default: every certificate of the
    /// chain, intermediates too).
    pub fn with_leaf_revocation_only(mut self) -> Self {
        self.revocation_depth = RevocationDepth::EndEntity;
        self.reconfigured()
    }

    /// Refuses a certificate no configured CRL covers, with `UNABLE_TO_GET_CRL` (default:
    /// accept it, as OpenSSL without `-crl_check_all`; Node denies as soon as a CRL is
    /// configured).
    pub fn deny_unknown_revocation(mut self) -> Self {
        self.unknown_revocation = UnknownRevocation::Deny;
        self.reconfigured()
    }

    /// Whether a CRL past its nextUpdate fails verification with `CRL_HAS_EXPIRED`
    /// (default: yes, as OpenSSL does).
    pub fn with_crl_expiry_enforced(mut self, enforce: bool) -> Self {
        self.enforce_crl_expiry = enforce;
        self.reconfigured()
    }

    /// The most certificates a client may present, leaf included (default
    /// [`DEFAULT_MAX_CHAIN_LEN`]). Longer chains fail with `CHAIN_TOO_LONG` before any
    /// signature is checked.
    pub fn with_max_chain_len(mut self, max: usize) -> Self {
        self.max_chain_len = max;
        self.reconfigured()
    }

    /// Parses presented certificates with `limits`' certificate caps
    /// ([`Limits::max_cert_bytes`], …; the others do not apply here).
    pub fn with_cert_limits(mut self, limits: &Limits) -> Self {
        self.cert_limits = limits.cert_limits();
        self.reconfigured()
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    /// The chain-length cap.
    pub fn max_chain_len(&self) -> usize {
        self.max_chain_len
    }

    /// Verifies a presented chain (leaf first) for client authentication at `now`, or
    /// reuses the result of an earlier verification of the same chain that still holds.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<VerifiedChain, VerifyError> {
        let Some(leaf_der) = chain.first() else {
            return Err(VerifyError::NoCertificate);
        };
        let key = self.check_len(chain)?;
        if let Some(hit) = self.cache.get(&key, seconds(now)) {
            return Ok(hit);
        }
        let leaf = ClientCertificate::from_shared(Arc::from(leaf_der.as_ref()), self.cert_limits)
            .map_err(|source| VerifyError::Malformed { index: 0, source })?;
        self.verify_fully(leaf, chain, now, key)
    }

    /// As [`Self::verify`], for a caller that has already parsed the leaf (`chain[0]`). A
    /// `leaf` that is not `chain[0]`, or was parsed with other certificate limits than this
    /// verifier's, is not trusted to stand for it: the chain is then verified from its own
    /// bytes (the result is cached under the chain's bytes, so it must be the chain's, and
    /// hold under this verifier's limits).
    pub fn verify_parsed(
        &self,
        leaf: ClientCertificate,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<VerifiedChain, VerifyError> {
        let Some(first) = chain.first() else {
            return Err(VerifyError::NoCertificate);
        };
        // Parsed under other limits than this verifier's, the leaf is parsed again here: the
        // result is cached for `verify` too, which must not accept what its limits refuse.
        if leaf.der() != first.as_ref() || leaf.limits() != self.cert_limits {
            return self.verify(chain, now);
        }
        let key = self.check_len(chain)?;
        if let Some(hit) = self.cache.get(&key, seconds(now)) {
            return Ok(hit);
        }
        self.verify_fully(leaf, chain, now, key)
    }

    /// [`Self::verify`] for a connection's TLS peer: first what the connection remembers.
    pub(crate) fn verify_for(
        &self,
        memo: &PeerMemo,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<VerifiedChain, VerifyError> {
        // The memo speaks for the leaf it was filled with, and no other: a memo handed
        // another chain (shared by mistake) verifies that chain afresh.
        let remembered = memo.slot.get().filter(|(id, v, w)| {
            *id == self.id
                && w.holds_at(seconds(now))
                && chain.first().is_some_and(|l| l.as_ref() == v.leaf().der())
        });
        if let Some((_, chain, _)) = remembered {
            self.cache.hit();
            return Ok(chain.reuse());
        }
        let verified = self.verify(chain, now)?;
        let _ = memo
            .slot
            .set((self.id, verified.clone(), self.window(&verified)));
        Ok(verified)
    }

    fn check_len(&self, chain: &[CertificateDer<'_>]) -> Result<cache::Key, VerifyError> {
        if chain.len() > self.max_chain_len {
            return Err(VerifyError::ChainTooLong {
                len: chain.len(),
                max: self.max_chain_len,
            });
        }
        Ok(cache::key(chain))
    }

    /// When a verified path's result holds: within every certificate's validity on it, and
    /// before the CRLs' nextUpdate when their expiry is enforced.
    fn window(&self, chain: &VerifiedChain) -> Window {
        let on_path = std::iter::once(&chain.leaf)
            .chain(&chain.intermediates)
            .chain(&chain.anchor);
        let mut w = Window {
            from: i64::MIN,
            until: i64::MAX,
        };
        for c in on_path {
            w.from = w.from.max(c.not_before().unix_seconds());
            w.until = w.until.min(c.not_after().unix_seconds());
        }
        if self.enforce_crl_expiry
            && let Some(next) = chain.crl_until
        {
            // webpki refuses a CRL at or after its nextUpdate.
            w.until = w.until.min(next.saturating_sub(1));
        }
        w
    }

    fn verify_fully(
        &self,
        leaf: ClientCertificate,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
        key: cache::Key,
    ) -> Result<VerifiedChain, VerifyError> {
        self.cache.verified();
        if let Some(oid) = leaf.invalid_extension() {
            return Err(VerifyError::InvalidExtension {
                index: 0,
                oid: oid.to_string(),
            });
        }
        // One key table in every mode (crate::keys): here only the algorithm and strength
        // count, as possession is the TLS layer's (or a proxy's) to check. The verdict stays
        // with `leaf`, which the result keeps: the decision asks it again, not the table.
        crate::keys::check(&leaf, crate::keys::KeySupport::ALL)?;
        // A TLS client certificate signs the handshake (RFC 8446 4.4.2.2, RFC 5246 7.4.8),
        // so a key usage without digitalSignature does not allow it (RFC 5280 4.2.1.3).
        // OpenSSL also lets keyAgreement alone pass, for static-DH client certificates no
        // TLS stack we run on supports; certauth does not.
        if self.purpose == Purpose::ClientAuth
            && leaf
                .key_usage_flags()
                .is_some_and(|ku| !ku.contains(crate::cert::KeyUsage::DIGITAL_SIGNATURE))
        {
            return Err(VerifyError::InvalidPurpose);
        }
        let presented: Vec<ClientCertificate> = chain[1..]
            .iter()
            .enumerate()
            .map(|(i, der)| {
                ClientCertificate::from_shared(Arc::from(der.as_ref()), self.cert_limits).map_err(
                    |source| VerifyError::Malformed {
                        index: i + 1,
                        source,
                    },
                )
            })
            .collect::<Result<_, _>>()?;
        // rustls-webpki cannot represent a date before 1970: it is shown a notBefore of 1970
        // instead, with signatures checked over the original bytes (epoch.rs).
        let mut rewrites = epoch::Rewrites::default();
        let leaf_der = webpki_der(&leaf, &mut rewrites, now)?;
        let known: Vec<&ClientCertificate> = presented.iter().chain(&self.intermediates).collect();
        let intermediates = known
            .iter()
            .map(|c| webpki_der(c, &mut rewrites, now))
            .collect::<Result<Vec<_>, _>>()?;
        // A rewritten certificate's copy presented (or configured) as a certificate of its
        // own is refused: its signature is the original's, over other bytes. (A rewritten
        // certificate's own TBSCertificate, from before 1970, is never a copy's.)
        if !rewrites.is_empty()
            && std::iter::once(&leaf)
                .chain(known.iter().copied())
                .any(|c| rewrites.shadowed_by(c.der()))
        {
            return Err(VerifyError::BadSignature);
        }
        // Which certificate webpki's bytes stand for.
        let original = |der: &[u8]| -> Option<&ClientCertificate> {
            let i = intermediates.iter().position(|d| d.as_ref() == der)?;
            known.get(i).copied()
        };
        let substituting: Vec<epoch::Substituting<'_>> = if rewrites.is_empty() {
            Vec::new()
        } else {
            self.algorithms
                .iter()
                .map(|inner| epoch::Substituting {
                    inner: *inner,
                    rewrites: &rewrites,
                })
                .collect()
        };
        let algorithms: Vec<&dyn SignatureVerificationAlgorithm> = substituting
            .iter()
            .map(|a| -> &dyn SignatureVerificationAlgorithm { a })
            .collect();
        let algorithms: &[&dyn SignatureVerificationAlgorithm] = if rewrites.is_empty() {
            self.algorithms
        } else {
            &algorithms
        };

        let ee = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| self.map_error(e, &leaf, &presented, now))?;

        // webpki trusts an anchor without looking at its validity or at the name constraints
        // it does not implement; OpenSSL does not. A path ending at an anchor outside its
        // validity, or holding a name outside the anchor's constraints, is refused here, so
        // that webpki goes on to another path (another anchor of the same name and key, say),
        // and the refusal names the anchor if none is left.
        //
        // Revocation is judged here too, over the whole path (crl.rs says why not by webpki).
        let anchor_problem = std::cell::RefCell::new(None);
        let crl_until = std::cell::Cell::new(None);
        let judge_anchor = |path: &webpki::VerifiedPath<'_>| {
            let path_intermediates: Vec<&ClientCertificate> = path
                .intermediate_certificates()
                .filter_map(|der| original(der.der().as_ref()))
                .collect();
            let refusal = self
                .anchor_refusal(path.anchor(), &leaf, &path_intermediates, now)
                .map_or_else(
                    || {
                        self.revocation_refusal(path.anchor(), &leaf, &path_intermediates, now)
                            .map(|until| crl_until.set(until))
                            .err()
                    },
                    Some,
                );
            match refusal {
                None => Ok(()),
                Some(problem) => {
                    anchor_problem.replace(Some(problem));
                    Err(webpki::Error::CertExpired {
                        time: now,
                        not_after: now,
                    })
                }
            }
        };
        let path = ee
            .verify_for_usage(
                algorithms,
                &self.anchors.anchors,
                &intermediates,
                now,
                match self.purpose {
                    Purpose::ClientAuth => KeyUsage::client_auth(),
                    Purpose::ServerAuth => KeyUsage::server_auth(),
                },
                None,
                Some(&judge_anchor),
            )
            .map_err(|e| match anchor_problem.take() {
                Some(problem) => problem,
                None => self.map_error(e, &leaf, &presented, now),
            })?;

        let mut verified = Vec::new();
        for der in path.intermediate_certificates() {
            // Every intermediate webpki used came from the presented or configured ones.
            if let Some(c) = original(der.der().as_ref()) {
                verified.push(c.clone());
            }
        }
        // As OpenSSL's check_extensions: every certificate on the built path, presented or
        // configured, must not hold an extension OpenSSL caches as invalid.
        for (i, c) in verified.iter().enumerate() {
            if let Some(oid) = c.invalid_extension() {
                return Err(VerifyError::InvalidExtension {
                    index: i + 1,
                    oid: oid.to_string(),
                });
            }
        }
        let anchor_cert = self.anchors.certificate_of(path.anchor()).cloned();
        let verified = VerifiedChain {
            leaf,
            intermediates: verified,
            anchor: anchor_cert,
            reused: false,
            crl_until: crl_until.get(),
        };
        self.cache
            .insert(key, verified.clone(), self.window(&verified));
        Ok(verified)
    }

    /// Why the path webpki built through `anchor` is refused, if it is: the anchor is outside
    /// its validity, or the leaf or an intermediate that is not self-issued holds a name
    /// outside the anchor's constraints that certauth enforces (constraints.rs).
    fn anchor_refusal(
        &self,
        anchor: &TrustAnchor<'_>,
        leaf: &ClientCertificate,
        intermediates: &[&ClientCertificate],
        now: UnixTime,
    ) -> Option<VerifyError> {
        let cert = self.anchors.certificate_of(anchor)?;
        let t = Time::from(now);
        let (from, until) = (cert.not_before(), cert.not_after());
        if t.unix_seconds() > until.unix_seconds() {
            return Some(VerifyError::AnchorExpired {
                subject: cert.subject().to_rfc4514(),
                now: t,
                not_after: until,
            });
        }
        if t.unix_seconds() < from.unix_seconds() {
            return Some(VerifyError::AnchorNotYetValid {
                subject: cert.subject().to_rfc4514(),
                now: t,
                not_before: from,
            });
        }
        let constraints = self.anchors.constraints_of(anchor)?;
        let held = std::iter::once(leaf).chain(
            intermediates
                .iter()
                .copied()
                .filter(|i| i.subject() != i.issuer()),
        );
        for c in held {
            if let Some(violation) = constraints.violation(c) {
                return Some(VerifyError::AnchorNameConstraint {
                    anchor: cert.subject().to_rfc4514(),
                    violation,
                });
            }
        }
        None
    }

    /// Why the path from `leaf` through `intermediates` to `anchor` is refused by the CRLs,
    /// or the earliest nextUpdate of the CRLs it was judged by. With the default depth (the whole chain)
    /// every certificate on the path is judged, and so is the anchor when it is an
    /// intermediate itself: not self-issued, and issued by another CA of the trust set
    /// (OpenSSL then builds on to that CA and checks the anchor's revocation; webpki ends the
    /// path at the first anchor). Such an anchor is judged here rather than moved among the
    /// intermediates so that paths stay what they were: its validity and the name
    /// constraints certauth enforces for it keep applying, and a path through it does not
    /// start to need its issuer's validity.
    fn revocation_refusal(
        &self,
        anchor: &TrustAnchor<'_>,
        leaf: &ClientCertificate,
        intermediates: &[&ClientCertificate],
        now: UnixTime,
    ) -> Result<Option<i64>, VerifyError> {
        let Some(anchor) = self.anchors.certificate_of(anchor) else {
            return Ok(None);
        };
        if self.crls.is_empty() {
            return Ok(None);
        }
        let mut path: Vec<&ClientCertificate> = std::iter::once(leaf)
            .chain(intermediates.iter().copied())
            .chain(std::iter::once(anchor))
            .collect();
        if self.revocation_depth == RevocationDepth::Chain {
            // The anchor's issuers in the trust set, up to a self-issued CA; each step
            // verified by signature, and bounded by the size of the set.
            let mut top = anchor;
            for _ in 0..self.anchors.certs.len() {
                if crl::self_issued(top) {
                    break;
                }
                let Some(issuer) = self.anchors.certs.iter().find(|ca| {
                    !std::ptr::eq(*ca, top)
                        && same_name(&ca.subject(), &top.issuer())
                        && crl::signed_by(top.der(), ca.subject_public_key_info(), self.algorithms)
                }) else {
                    break;
                };
                path.push(issuer);
                top = issuer;
            }
        }
        let judged = match self.revocation_depth {
            RevocationDepth::EndEntity => 1,
            RevocationDepth::Chain => usize::MAX,
        };
        let mut until: Option<i64> = None;
        for (i, pair) in path.windows(2).take(judged).enumerate() {
            let (cert, issuer) = (pair[0], pair[1]);
            match crl::status(&self.crls, cert, i > 0, issuer, self.algorithms) {
                crl::Status::Unknown => {
                    if self.unknown_revocation == UnknownRevocation::Deny {
                        return Err(VerifyError::RevocationUnknown);
                    }
                }
                crl::Status::Listed {
                    revoked,
                    next_update,
                } => {
                    if self.enforce_crl_expiry && seconds(now) >= next_update {
                        return Err(VerifyError::CrlExpired {
                            next_update: Time::from_unix_seconds(next_update),
                        });
                    }
                    if issuer
                        .key_usage_flags()
                        .is_some_and(|ku| !ku.contains(crate::cert::KeyUsage::CRL_SIGN))
                    {
                        return Err(VerifyError::CrlIssuerKeyUsage);
                    }
                    if revoked {
                        return Err(VerifyError::Revoked);
                    }
                    until = Some(until.map_or(next_update, |u| u.min(next_update)));
                }
            }
        }
        Ok(until)
    }

    /// Turns webpki's error into ours, naming the chain shape as OpenSSL would.
    fn map_error(
        &self,
        e: webpki::Error,
        leaf: &ClientCertificate,
        presented: &[ClientCertificate],
        now: UnixTime,
    ) -> VerifyError {
        use webpki::Error as W;
        let now_t = Time::from(now);
        // A self-issued intermediate (a CA's key rollover: the same name, a new key) is
        // valid under RFC 5280, but webpki cannot build a path through it; whatever error it
        // reports then, the real cause is that one.
        if !matches!(
            e,
            W::CertExpired { .. } | W::CertNotValidYet { .. } | W::CertRevoked
        ) && let Some(subject) = self.self_issued_intermediate(presented)
        {
            return VerifyError::SelfIssuedIntermediate { subject };
        }
        match e {
            W::CertExpired { not_after, .. } => VerifyError::Expired {
                now: now_t,
                not_after: Time::from(not_after),
            },
            W::CertNotValidYet { not_before, .. } => VerifyError::NotYetValid {
                now: now_t,
                not_before: Time::from(not_before),
            },
            W::UnknownIssuer => self.unknown_issuer(leaf, presented),
            // OpenSSL only considers an issuer whose subject key identifier matches the
            // leaf's authority key identifier; without such a candidate the issuer is
            // "unknown", not the signature "bad".
            W::InvalidSignatureForPublicKey if !self.has_matching_issuer(leaf, presented) => {
                self.unknown_issuer(leaf, presented)
            }
            W::InvalidSignatureForPublicKey
            | W::SignatureAlgorithmMismatch
            | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => VerifyError::BadSignature,
            W::UnsupportedSignatureAlgorithmContext(cx)
                if weak_digest(&cx.signature_algorithm_id) =>
            {
                VerifyError::WeakSignatureDigest
            }
            W::UnsupportedSignatureAlgorithmContext(_) => {
                VerifyError::UnsupportedSignatureAlgorithm
            }
            W::RequiredEkuNotFoundContext(_) | W::EmptyEkuExtension => VerifyError::InvalidPurpose,
            // webpki 0.103 still returns the deprecated unit variants in places.
            #[allow(deprecated)]
            W::UnsupportedSignatureAlgorithmForPublicKey => VerifyError::BadSignature,
            #[allow(deprecated)]
            W::UnsupportedSignatureAlgorithm => VerifyError::UnsupportedSignatureAlgorithm,
            #[allow(deprecated)]
            W::RequiredEkuNotFound => VerifyError::InvalidPurpose,
            W::CertRevoked => VerifyError::Revoked,
            W::IssuerNotCrlSigner => VerifyError::CrlIssuerKeyUsage,
            W::UnknownRevocationStatus => VerifyError::RevocationUnknown,
            W::CrlExpired { next_update, .. } => VerifyError::CrlExpired {
                next_update: Time::from(next_update),
            },
            W::CaUsedAsEndEntity => VerifyError::CaUsedAsEndEntity,
            W::EndEntityUsedAsCa => VerifyError::InvalidCa,
            W::UnsupportedCertVersion => VerifyError::UnsupportedVersion,
            W::UnsupportedCriticalExtension => VerifyError::UnhandledCriticalExtension,
            W::PathLenConstraintViolated => VerifyError::PathLengthExceeded,
            W::MaximumPathDepthExceeded => VerifyError::ChainTooLong {
                len: presented.len() + 1,
                max: self.max_chain_len,
            },
            // webpki refuses rfc822Name, URI and directoryName constraints wherever they sit;
            // in an intermediate certauth cannot take them over, and says so.
            W::NameConstraintViolation => {
                match presented.iter().chain(&self.intermediates).find(|c| {
                    anchors::name_constraints(c).is_some_and(constraints::has_forms_webpki_lacks)
                }) {
                    Some(ca) => VerifyError::UnsupportedNameConstraint {
                        ca: ca.subject().to_rfc4514(),
                    },
                    None => VerifyError::NameConstraintViolation,
                }
            }
            W::BadDer | W::BadDerTime | W::TrailingData(_) | W::MalformedExtensions => {
                VerifyError::BadEncoding(webpki_reason(&e))
            }
            other => VerifyError::Rejected(webpki_reason(&other)),
        }
    }

    /// A self-issued intermediate among the presented and configured ones: its issuer is its
    /// own subject, and another known certificate (an anchor or intermediate) bears the same
    /// name with another key. (A lone self-signed root in the chain has no such twin.)
    fn self_issued_intermediate(&self, presented: &[ClientCertificate]) -> Option<String> {
        let known: Vec<&ClientCertificate> = self
            .anchors
            .certs
            .iter()
            .chain(presented)
            .chain(&self.intermediates)
            .collect();
        presented
            .iter()
            .chain(&self.intermediates)
            .filter(|c| c.subject() == c.issuer())
            .find(|c| {
                known.iter().any(|other| {
                    other.subject() == c.subject()
                        && other.subject_public_key_info() != c.subject_public_key_info()
                })
            })
            .map(|c| c.subject().to_rfc4514())
    }

    /// Whether some known certificate could have issued `leaf`: same name, and (if the
    /// leaf names one) the same key identifier.
    fn has_matching_issuer(
        &self,
        leaf: &ClientCertificate,
        presented: &[ClientCertificate],
    ) -> bool {
        let akid = leaf.authority_key_id();
        self.anchors
            .certs
            .iter()
            .chain(presented)
            .chain(&self.intermediates)
            .any(|c| {
                c.subject() == leaf.issuer()
                    && match (akid, c.subject_key_id()) {
                        (Some(a), Some(s)) => a == s,
                        _ => true,
                    }
            })
    }

    /// OpenSSL's classification of a chain that does not reach a trust anchor: follow the
    /// presented certificates by name from the leaf; if the last one is self-issued the
    /// client sent its own root, otherwise an issuer is missing.
    fn unknown_issuer(
        &self,
        leaf: &ClientCertificate,
        presented: &[ClientCertificate],
    ) -> VerifyError {
        // The presented certificates first, then the configured intermediates (`--chain`):
        // OpenSSL builds from both.
        let known: Vec<&ClientCertificate> = presented.iter().chain(&self.intermediates).collect();
        let mut current = leaf;
        let mut depth = 0usize;
        let mut used = vec![false; known.len()];
        loop {
            if current.subject() == current.issuer() {
                return if depth == 0 {
                    VerifyError::DepthZeroSelfSigned
                } else {
                    VerifyError::SelfSignedInChain
                };
            }
            let next = known
                .iter()
                .enumerate()
                .find(|(i, c)| !used[*i] && c.subject() == current.issuer());
            match next {
                Some((i, c)) => {
                    used[i] = true;
                    current = c;
                    depth += 1;
                }
                None if depth == 0 => return VerifyError::LeafIssuerUnknown,
                None => return VerifyError::IssuerUnknown,
            }
        }
    }
}

/// Signature algorithms over a digest OpenSSL refuses from security level 1 on
/// (`CA_MD_TOO_WEAK`): RSA with MD2, MD4, MD5, SHA-1 (and OIW's SHA-1), ECDSA and DSA with
/// SHA-1. No provider certauth runs on verifies them.
const WEAK_DIGEST_SIGNATURES: [&[u8]; 7] = [
    &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x02],
    &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x03],
    &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x04],
    &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x05],
    &[0x2B, 0x0E, 0x03, 0x02, 0x1D],
    &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x01],
    &[0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x03],
];

/// Whether an AlgorithmIdentifier's contents (as webpki reports an unsupported one) name a
/// signature over a weak digest.
fn weak_digest(algorithm: &[u8]) -> bool {
    crate::asn1::Reader::new(algorithm)
        .read(crate::asn1::tag::OID)
        .is_ok_and(|oid| WEAK_DIGEST_SIGNATURES.contains(&oid.value))
}

/// The bytes webpki is shown for `cert` (epoch.rs), recording a rewrite in `rewrites`. A
/// notAfter before 1970 is an expiry at any time certauth is asked about.
fn webpki_der<'c>(
    cert: &'c ClientCertificate,
    rewrites: &mut epoch::Rewrites,
    now: UnixTime,
) -> Result<CertificateDer<'c>, VerifyError> {
    match epoch::webpki_view(cert) {
        Some(std::borrow::Cow::Borrowed(der)) => Ok(CertificateDer::from(der)),
        Some(std::borrow::Cow::Owned(der)) => {
            rewrites.record(cert.der(), &der);
            Ok(CertificateDer::from(der))
        }
        None => Err(VerifyError::Expired {
            now: Time::from(now),
            not_after: cert.not_after(),
        }),
    }
}

fn seconds(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// A chain that verified: the client's certificate, the intermediates used, and the trust
/// anchor it leads to.
#[derive(Clone, Debug)]
pub struct VerifiedChain {
    leaf: ClientCertificate,
    intermediates: Vec<ClientCertificate>,
    anchor: Option<ClientCertificate>,
    reused: bool,
    /// The earliest nextUpdate of the CRLs the path was judged by (Unix seconds).
    crl_until: Option<i64>,
}

impl VerifiedChain {
    /// The client's certificate.
    pub fn leaf(&self) -> &ClientCertificate {
        &self.leaf
    }

    /// The intermediates on the verified path, from the leaf's issuer upwards.
    pub fn intermediates(&self) -> &[ClientCertificate] {
        &self.intermediates
    }

    /// Whether this result was reused from an earlier verification of the same chain (the
    /// connection's memo or the verifier's cache) rather than verified now: for logs and
    /// counters.
    pub fn reused(&self) -> bool {
        self.reused
    }

    fn reuse(&self) -> Self {
        Self {
            reused: true,
            ..self.clone()
        }
    }

    /// The trust anchor's certificate.
    pub fn anchor(&self) -> Option<&ClientCertificate> {
        self.anchor.as_ref()
    }

    /// The certificate that issued the leaf: the first intermediate, or the anchor.
    pub fn issuer(&self) -> Option<&ClientCertificate> {
        self.intermediates.first().or(self.anchor.as_ref())
    }

    /// Leaf, intermediates, anchor: the whole path in order.
    pub fn iter(&self) -> impl Iterator<Item = &ClientCertificate> {
        std::iter::once(&self.leaf)
            .chain(self.intermediates.iter())
            .chain(self.anchor.iter())
    }
}

/// Why a client chain did not verify. [`VerifyError::code`] is stable and documented;
/// `Display` is for people and may change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The client presented no certificate. `NO_CERTIFICATE`.
    NoCertificate,
    /// More certificates than allowed. `CHAIN_TOO_LONG`.
    ChainTooLong {
        /// How many were presented.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A presented certificate could not be parsed: `MALFORMED_CERTIFICATE`, or
    /// `CERT_TOO_LARGE` over a certificate cap of [`Limits`] ([`X509Error::code`]).
    Malformed {
        /// Its position in the presented chain (0 = leaf).
        index: usize,
        /// What is wrong with it.
        source: X509Error,
    },
    /// A certificate on the path has a key identifier, name constraints or CRL distribution
    /// points extension that does not decode, or a negative path length (see
    /// [`ClientCertificate::invalid_extension`]). `INVALID_EXTENSION`, as OpenSSL names it.
    InvalidExtension {
        /// Its position on the path (0 = leaf, 1 = its issuer, …).
        index: usize,
        /// The extension's OID.
        oid: String,
    },
    /// webpki found the DER of a certificate on the path malformed (it is stricter than
    /// the parser behind [`ClientCertificate`]). `MALFORMED_CERTIFICATE`.
    BadEncoding(String),
    /// A certificate on the path has expired. `CERT_HAS_EXPIRED`.
    Expired {
        /// The verification time.
        now: Time,
        /// The certificate's notAfter.
        not_after: Time,
    },
    /// A certificate on the path is not valid yet. `CERT_NOT_YET_VALID`.
    NotYetValid {
        /// The verification time.
        now: Time,
        /// The certificate's notBefore.
        not_before: Time,
    },
    /// The trust anchor the path leads to has expired. `CERT_HAS_EXPIRED`, as OpenSSL names
    /// it for any certificate on the path.
    AnchorExpired {
        /// The anchor's subject (RFC 4514).
        subject: String,
        /// The verification time.
        now: Time,
        /// The anchor's notAfter.
        not_after: Time,
    },
    /// The trust anchor the path leads to is not valid yet. `CERT_NOT_YET_VALID`.
    AnchorNotYetValid {
        /// The anchor's subject (RFC 4514).
        subject: String,
        /// The verification time.
        now: Time,
        /// The anchor's notBefore.
        not_before: Time,
    },
    /// A lone self-signed certificate that is not a trust anchor.
    /// `DEPTH_ZERO_SELF_SIGNED_CERT`.
    DepthZeroSelfSigned,
    /// The presented chain ends in a self-signed certificate that is not a trust anchor.
    /// `SELF_SIGNED_CERT_IN_CHAIN`.
    SelfSignedInChain,
    /// A lone leaf whose issuer is unknown. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`.
    LeafIssuerUnknown,
    /// The chain does not lead to a trust anchor. `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`.
    IssuerUnknown,
    /// A signature on the path does not verify. `CERT_SIGNATURE_FAILURE`.
    BadSignature,
    /// A signature algorithm the configured provider does not offer (such as RSA-PSS with
    /// another digest). `UNSUPPORTED_SIGNATURE_ALGORITHM`.
    UnsupportedSignatureAlgorithm,
    /// A certificate on the path is signed with a digest too weak to trust (SHA-1, MD5,
    /// MD4, MD2). `CA_MD_TOO_WEAK`, as OpenSSL (so Node) names it at security level 1.
    WeakSignatureDigest,
    /// The certificate is not for client authentication: an EKU without clientAuth, or a
    /// key usage without digitalSignature. `INVALID_PURPOSE`.
    InvalidPurpose,
    /// Revoked by a configured CRL, a fetched one or an OCSP answer. `CERT_REVOKED`.
    Revoked,
    /// OCSP is required and no believable answer was had: the responder did not answer,
    /// or its answer is malformed, forged, expired or too large. `OCSP_CHECK_FAILED`.
    OcspFailed {
        /// What went wrong, naming the responder.
        detail: String,
    },
    /// OCSP is required and the responder does not know the certificate.
    /// `OCSP_STATUS_UNKNOWN`.
    OcspStatusUnknown,
    /// Unknown revocation is denied and the CRL at the certificate's distribution point
    /// could not be had or believed, or does not cover it. `UNABLE_TO_GET_CRL`.
    CrlUnavailable {
        /// What went wrong, naming the URL.
        detail: String,
    },
    /// A CRL's issuer on the path has a key usage without cRLSign. `KEYUSAGE_NO_CRL_SIGN`.
    CrlIssuerKeyUsage,
    /// No configured CRL covers a certificate and unknown status is denied.
    /// `UNABLE_TO_GET_CRL`.
    RevocationUnknown,
    /// A configured CRL is past its nextUpdate. `CRL_HAS_EXPIRED`.
    CrlExpired {
        /// The CRL's nextUpdate.
        next_update: Time,
    },
    /// The client's certificate is a CA certificate. `CA_USED_AS_END_ENTITY`.
    CaUsedAsEndEntity,
    /// A certificate that is not a CA (basicConstraints absent or `cA` false) issued
    /// another on the path. `INVALID_CA`, as OpenSSL names it.
    InvalidCa,
    /// A v1 or v2 certificate. `UNSUPPORTED_CERT_VERSION`.
    UnsupportedVersion,
    /// A critical extension that is not understood. `UNHANDLED_CRITICAL_EXTENSION`.
    UnhandledCriticalExtension,
    /// The chain holds a self-issued intermediate (a CA key rollover), valid under RFC 5280
    /// but not a path rustls-webpki can build. `SELF_ISSUED_INTERMEDIATE`.
    SelfIssuedIntermediate {
        /// Its subject (RFC 4514).
        subject: String,
    },
    /// An intermediate's pathLenConstraint is exceeded. `PATH_LENGTH_EXCEEDED`.
    PathLengthExceeded,
    /// A name constraint on the path is violated. `NAME_CONSTRAINTS_VIOLATION`.
    NameConstraintViolation,
    /// A name of the chain is outside a trust anchor's rfc822Name, URI or directoryName
    /// constraint (enforced by certauth). `NAME_CONSTRAINTS_VIOLATION`.
    AnchorNameConstraint {
        /// The anchor's subject (RFC 4514).
        anchor: String,
        /// Which name, and how.
        violation: String,
    },
    /// An intermediate carries an rfc822Name, URI or directoryName constraint, which
    /// rustls-webpki does not implement and refuses. `UNSUPPORTED_NAME_CONSTRAINT`.
    UnsupportedNameConstraint {
        /// The intermediate's subject (RFC 4514).
        ca: String,
    },
    /// The client's key is too small to trust: RSA under 2048 bits. `WEAK_KEY`.
    WeakKey {
        /// The key, e.g. `RSA 1024 bits`.
        key: String,
    },
    /// The client's key is of a type certauth does not authenticate (it accepts RSA of
    /// 2048-8192 bits, ECDSA P-256, P-384 and P-521, Ed25519 and Ed448), or, over TLS, one
    /// whose handshake signature the provider could not verify (ring: RSA, P-256, P-384,
    /// Ed25519; aws-lc-rs adds P-521). `UNSUPPORTED_KEY_TYPE`.
    UnsupportedKey {
        /// The key, e.g. `ECDSA P-521`.
        key: String,
    },
    /// Any other refusal by webpki, with its reason. `CERT_REJECTED`.
    Rejected(String),
}

impl VerifyError {
    /// The stable code, e.g. `CERT_HAS_EXPIRED`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoCertificate => "NO_CERTIFICATE",
            Self::ChainTooLong { .. } => "CHAIN_TOO_LONG",
            Self::Malformed { source, .. } => source.code(),
            Self::BadEncoding(_) => "MALFORMED_CERTIFICATE",
            Self::InvalidExtension { .. } => "INVALID_EXTENSION",
            Self::Expired { .. } | Self::AnchorExpired { .. } => "CERT_HAS_EXPIRED",
            Self::NotYetValid { .. } | Self::AnchorNotYetValid { .. } => "CERT_NOT_YET_VALID",
            Self::DepthZeroSelfSigned => "DEPTH_ZERO_SELF_SIGNED_CERT",
            Self::SelfSignedInChain => "SELF_SIGNED_CERT_IN_CHAIN",
            Self::LeafIssuerUnknown => "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            Self::IssuerUnknown => "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            Self::BadSignature => "CERT_SIGNATURE_FAILURE",
            Self::UnsupportedSignatureAlgorithm => "UNSUPPORTED_SIGNATURE_ALGORITHM",
            Self::WeakSignatureDigest => "CA_MD_TOO_WEAK",
            Self::InvalidPurpose => "INVALID_PURPOSE",
            Self::Revoked => "CERT_REVOKED",
            Self::OcspFailed { .. } => "OCSP_CHECK_FAILED",
            Self::OcspStatusUnknown => "OCSP_STATUS_UNKNOWN",
            Self::CrlUnavailable { .. } => "UNABLE_TO_GET_CRL",
            Self::CrlIssuerKeyUsage => "KEYUSAGE_NO_CRL_SIGN",
            Self::RevocationUnknown => "UNABLE_TO_GET_CRL",
            Self::CrlExpired { .. } => "CRL_HAS_EXPIRED",
            Self::CaUsedAsEndEntity => "CA_USED_AS_END_ENTITY",
            Self::InvalidCa => "INVALID_CA",
            Self::SelfIssuedIntermediate { .. } => "SELF_ISSUED_INTERMEDIATE",
            Self::WeakKey { .. } => "WEAK_KEY",
            Self::UnsupportedKey { .. } => "UNSUPPORTED_KEY_TYPE",
            Self::UnsupportedVersion => "UNSUPPORTED_CERT_VERSION",
            Self::UnhandledCriticalExtension => "UNHANDLED_CRITICAL_EXTENSION",
            Self::PathLengthExceeded => "PATH_LENGTH_EXCEEDED",
            Self::NameConstraintViolation | Self::AnchorNameConstraint { .. } => {
                "NAME_CONSTRAINTS_VIOLATION"
            }
            Self::UnsupportedNameConstraint { .. } => "UNSUPPORTED_NAME_CONSTRAINT",
            Self::Rejected { .. } => "CERT_REJECTED",
        }
    }
}

/// Names and SANs a certificate holds are quoted with their control and bidi characters
/// escaped (`\u{..}`): `certauth verify` prints this to a terminal, adapters log it.
impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let f = &mut crate::escape::Escaping(f);
        match self {
            Self::NoCertificate => f.write_str("no client certificate presented"),
            Self::ChainTooLong { len, max } => {
                write!(
                    f,
                    "client presented {len} certificates, more than the limit of {max}"
                )
            }
            Self::Malformed { index, source } => {
                write!(f, "presented certificate {index} is malformed: {source}")
            }
            Self::InvalidExtension { index, oid } => write!(
                f,
                "certificate {index} on the path has an invalid extension {oid} (OpenSSL \
                 cannot decode it)"
            ),
            Self::BadEncoding(reason) => {
                write!(f, "malformed certificate on the path ({reason})")
            }
            Self::Expired { now, not_after } => {
                write!(f, "certificate expired at {not_after} (now {now})")
            }
            Self::NotYetValid { now, not_before } => {
                write!(f, "certificate not valid before {not_before} (now {now})")
            }
            Self::AnchorExpired {
                subject,
                now,
                not_after,
            } => write!(
                f,
                "the trust anchor {subject} expired at {not_after} (now {now}); replace it in \
                 the CA bundle"
            ),
            Self::AnchorNotYetValid {
                subject,
                now,
                not_before,
            } => write!(
                f,
                "the trust anchor {subject} is not valid before {not_before} (now {now})"
            ),
            Self::DepthZeroSelfSigned => f.write_str("self-signed certificate is not trusted"),
            Self::SelfSignedInChain => {
                f.write_str("chain ends in a self-signed certificate that is not trusted")
            }
            Self::LeafIssuerUnknown => {
                f.write_str("certificate's issuer is not a trusted CA and no intermediate was sent")
            }
            Self::IssuerUnknown => f.write_str("chain does not lead to a trusted CA"),
            Self::BadSignature => f.write_str("a certificate signature does not verify"),
            Self::UnsupportedSignatureAlgorithm => {
                f.write_str("a certificate uses a signature algorithm that is not accepted")
            }
            Self::WeakSignatureDigest => f.write_str(
                "a certificate on the path is signed with a weak digest (SHA-1 or MD5); have \
                 the CA reissue it with SHA-256",
            ),
            Self::InvalidPurpose => f.write_str(
                "certificate is not valid for client authentication (its extended key usage \
                 lacks clientAuth, or its key usage lacks digitalSignature)",
            ),
            Self::Revoked => f.write_str("certificate is revoked"),
            Self::OcspFailed { detail } => write!(
                f,
                "OCSP is required and no answer could be believed: {detail}"
            ),
            Self::OcspStatusUnknown => {
                f.write_str("OCSP is required and the responder does not know the certificate")
            }
            Self::CrlUnavailable { detail } => {
                write!(f, "revocation status unknown, which is denied: {detail}")
            }
            Self::CrlIssuerKeyUsage => f.write_str(
                "a CRL was signed by a CA whose key usage does not allow CRL signing (cRLSign)",
            ),
            Self::RevocationUnknown => {
                f.write_str("no configured CRL covers a certificate and unknown status is denied")
            }
            Self::CrlExpired { next_update } => {
                write!(
                    f,
                    "a configured CRL expired at {next_update}; publish a fresh one"
                )
            }
            Self::CaUsedAsEndEntity => {
                f.write_str("a CA certificate was used as a client certificate")
            }
            Self::InvalidCa => f.write_str(
                "a certificate on the path that is not a CA (no basicConstraints cA) issued \
                 another; issue client certificates from a CA certificate",
            ),
            Self::UnsupportedVersion => f.write_str("certificate is not X.509 v3"),
            Self::UnhandledCriticalExtension => {
                f.write_str("certificate has an unknown critical extension")
            }
            Self::PathLengthExceeded => {
                f.write_str("an intermediate's path length limit is exceeded")
            }
            Self::NameConstraintViolation => f.write_str("a name constraint is violated"),
            Self::AnchorNameConstraint { anchor, violation } => write!(
                f,
                "{violation} of the name constraints of the trust anchor {anchor}"
            ),
            Self::UnsupportedNameConstraint { ca } => write!(
                f,
                "the intermediate {ca} has an rfc822Name, URI or directoryName constraint, \
                 which rustls-webpki does not implement; put the constraint in the root \
                 instead (certauth enforces it there)"
            ),
            Self::WeakKey { key } => write!(
                f,
                "client key is {key}, under the {MIN_RSA_BITS}-bit minimum; issue a key of \
                 {MIN_RSA_BITS} bits or more, or an ECDSA or Ed25519 key"
            ),
            Self::UnsupportedKey { key } => write!(
                f,
                "client key is {key}, which certauth does not authenticate here: it accepts \
                 RSA (2048-8192 bits), ECDSA P-256, P-384 and P-521, Ed25519 and Ed448, and \
                 over TLS only the keys the provider verifies (ring: RSA, P-256, P-384, \
                 Ed25519; aws-lc-rs adds P-521)"
            ),
            Self::SelfIssuedIntermediate { subject } => write!(
                f,
                "the chain holds a self-issued intermediate {subject} (a CA key rollover), \
                 which rustls-webpki cannot build a path through; send the chain without it, \
                 or issue client certificates from an intermediate under the new key"
            ),
            Self::Rejected(reason) => write!(f, "certificate rejected: {reason}"),
        }
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChainVerifier, PeerMemo, SetupError, TrustAnchors, VerifyError, webpki_reason};

    /// Attack review of finding 11's class: a connection's memo speaks for the chain it was
    /// filled with. Handed another chain (a memo shared by mistake; `tls::TlsPeer` keeps one
    /// per chain), it must not pass that chain as the first client.
    #[test]
    fn a_memo_never_stands_for_another_chain() {
        use certauth_testkit::{Authority, Leaf, now};
        let root = Authority::root("Memo Root");
        let other = Authority::root("Memo Other Root");
        let trusted = [root.issue(&Leaf::client("trusted")).der];
        let stranger = [other.issue(&Leaf::client("trusted")).der];
        let verifier = ChainVerifier::new(
            TrustAnchors::from_der([root.cert.der.clone()]).unwrap(),
            webpki::ALL_VERIFICATION_ALGS,
        );
        let memo = PeerMemo::default();
        assert!(verifier.verify_for(&memo, &trusted, now()).is_ok());
        assert_eq!(
            verifier
                .verify_for(&memo, &stranger, now())
                .map(|_| ())
                .unwrap_err()
                .code(),
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            "the memo of another chain passed a stranger"
        );
    }

    /// webpki hands back a reference into the anchors; any other reference is matched by
    /// subject and key (the first such anchor), and one with another key by none.
    #[test]
    fn anchors_are_found_by_identity_then_by_subject_and_key() {
        let a = certauth_testkit::Authority::root("Anchor A");
        let b = certauth_testkit::Authority::root("Anchor B");
        let other_key_a = certauth_testkit::Authority::root("Anchor A");
        let anchors = TrustAnchors::from_der([a.cert.der.clone(), b.cert.der.clone()]).unwrap();
        let subject = |i: usize| {
            anchors
                .certificate_of(&anchors.anchors[i])
                .map(|c| c.subject().to_rfc4514())
        };
        assert_eq!(subject(0).as_deref(), Some("O=certauth tests,CN=Anchor A"));
        assert_eq!(subject(1).as_deref(), Some("O=certauth tests,CN=Anchor B"));
        let foreign = anchors.anchors[1].clone();
        assert!(!std::ptr::eq(&foreign, &anchors.anchors[1]));
        let found = anchors.certificate_of(&foreign).map(|c| c.der().to_vec());
        assert_eq!(found.as_deref(), Some(&b.cert.der[..]));
        let same_name_other_key = TrustAnchors::from_der([other_key_a.cert.der.clone()]).unwrap();
        let stranger = same_name_other_key.anchors[0].clone();
        assert!(anchors.certificate_of(&stranger).is_none());
        let mut other_name_same_key = anchors.anchors[0].clone();
        other_name_same_key.subject = anchors.anchors[1].subject.clone();
        assert!(anchors.certificate_of(&other_name_same_key).is_none());
    }

    /// webpki's reason reaches the message, typed in the variant.
    #[test]
    fn webpki_reasons_are_named_in_messages() {
        let reason = webpki_reason(&webpki::Error::UnsupportedCrlVersion);
        assert_eq!(reason.to_string(), "UnsupportedCrlVersion");
        let e = VerifyError::Rejected(reason.clone());
        assert_eq!(e.code(), "CERT_REJECTED");
        assert_eq!(e.to_string(), "certificate rejected: UnsupportedCrlVersion");
        let e = SetupError::Rejected {
            what: "CRL 0".into(),
            reason,
        };
        assert_eq!(e.to_string(), "CRL 0 refused: UnsupportedCrlVersion");
        assert_eq!(VerifyError::WeakSignatureDigest.code(), "CA_MD_TOO_WEAK");
    }
}
