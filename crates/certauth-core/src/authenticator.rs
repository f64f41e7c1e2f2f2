//! [`Authenticator`]: configuration in, one [`Decision`] per request out.
//!
//! Built once, shared (`Clone` is a reference count; `Send + Sync`), cheap per call. Adapters
//! hand it the peer ([`PeerInfo`]: the chain the TLS peer presented and its address), the
//! parsed request head and `now`, and write the bytes it answers.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::cert::{ClientCertificate, X509Error};
use crate::error::SetupError;
use crate::http::Head;
use crate::keys::{self, KeySupport};
use crate::limits::Limits;
use crate::observe::Observer;
use crate::policy::{
    AsyncPolicy, BoxFuture, OwnedHeaders, OwnedPolicyContext, Policy, PolicyContext, PolicyDenial,
    RequestInfo, Verdict, allow_any,
};
use crate::proxy::{ProxyHeaderConfig, ProxyHeaderError};
use crate::response::{ResponseHead, Status};
use crate::revocation::{Check, Revocation};
use crate::verify::{ChainVerifier, PeerMemo, VerifiedChain, VerifyError};

/// What the adapter knows about the peer.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct PeerInfo<'a> {
    /// The chain the TLS peer presented (leaf first), empty if none. Its key possession
    /// was proven by the TLS handshake; its trust is decided here.
    pub tls_chain: &'a [CertificateDer<'a>],
    /// The TCP peer's address.
    pub remote_addr: Option<IpAddr>,
    /// What the connection remembers about `tls_chain` between its requests.
    pub(crate) memo: Option<&'a PeerMemo>,
    /// The key types whose handshake signatures the TLS provider verified
    /// (`crate::keys`); a client key outside them is refused. Default
    /// `KeySupport::COMMON`; `tls::TlsPeer::info` gives the handshake's.
    pub(crate) key_support: KeySupport,
    /// The peer connected over a Unix-domain socket (header mode behind a same-host proxy;
    /// see [`ProxyHeaderConfig::trust_unix_socket`]).
    pub unix_socket: bool,
}

impl<'a> PeerInfo<'a> {
    /// A peer that presented `tls_chain` from `remote_addr`.
    pub fn new(tls_chain: &'a [CertificateDer<'a>], remote_addr: Option<IpAddr>) -> Self {
        Self {
            tls_chain,
            remote_addr,
            memo: None,
            key_support: KeySupport::COMMON,
            unix_socket: false,
        }
    }

    /// A peer on a Unix-domain socket: no TLS chain, no address. Its certificate headers
    /// are honoured only if the proxy configuration trusts the socket.
    pub fn unix_socket() -> Self {
        Self {
            unix_socket: true,
            ..Self::new(&[], None)
        }
    }

    /// With the key types the handshake's provider verified. Only widen this to what the
    /// TLS verifier really checked: a key outside it may not have proven possession.
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    pub(crate) fn with_key_support(mut self, support: KeySupport) -> Self {
        self.key_support = support;
        self
    }

    /// With the connection's memo: a connection serving several requests (keep-alive,
    /// HTTP/2) verifies its TLS peer's chain once, and later requests only check that the
    /// result still holds at their `now`. One memo per connection.
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    pub(crate) fn with_memo(mut self, memo: &'a PeerMemo) -> Self {
        self.memo = Some(memo);
        self
    }
}

/// Where the client certificate comes from.
#[derive(Clone, Debug, Default)]
enum CertificateSource {
    /// The TLS peer (this server terminates TLS).
    #[default]
    TlsPeer,
    /// A header set by a TLS-terminating proxy.
    ProxyHeader(Box<ProxyHeaderConfig>),
}

/// Where an authenticated client's certificate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The TLS peer.
    TlsPeer,
    /// A trusted proxy's header.
    ProxyHeader,
}

/// An authenticated client. Only the core can make one: an adapter holding it knows the
/// decision was `Allow`.
#[derive(Clone, Debug)]
pub struct Authenticated {
    certificate: ClientCertificate,
    chain: Option<VerifiedChain>,
    origin: Origin,
}

impl Authenticated {
    /// The client's certificate (Node's `req.clientCertificate`).
    pub fn certificate(&self) -> &ClientCertificate {
        &self.certificate
    }

    /// The verified chain, leaf to anchor. Absent when a proxy's header was trusted
    /// without verifying it again.
    pub fn chain(&self) -> Option<&VerifiedChain> {
        self.chain.as_ref()
    }

    /// Whether the certificate came from a trusted proxy's header (header mode) rather than
    /// from the TLS peer.
    pub fn from_proxy_header(&self) -> bool {
        self.origin == Origin::ProxyHeader
    }

    /// Whether its chain's verification was reused (see [`VerifiedChain::reused`]).
    pub fn reused(&self) -> bool {
        self.chain.as_ref().is_some_and(VerifiedChain::reused)
    }
}

/// The client's subject (RFC 4514), for logs, control characters escaped.
impl fmt::Display for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::escape::escape(
            &self.certificate.subject().to_rfc4514(),
        ))
    }
}

/// Why a request was denied. `code()` is stable, for logs and alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// No client certificate: none presented, or the proxy header is absent.
    /// `NO_CERTIFICATE`, 401.
    NoCertificate {
        /// Which: `tls peer presented none` or `header … absent`.
        detail: String,
    },
    /// The client certificate could not be parsed: `MALFORMED_CERTIFICATE`, or
    /// `CERT_TOO_LARGE` when it is over one of the certificate caps of [`Limits`]
    /// ([`X509Error::code`]). 401.
    MalformedCertificate(X509Error),
    /// The chain did not verify, or the client's key is not one certauth authenticates
    /// ([`VerifyError::WeakKey`], [`VerifyError::UnsupportedKey`]). Its code
    /// (`CERT_HAS_EXPIRED`, `UNSUPPORTED_KEY_TYPE`, …), 401.
    Verify(VerifyError),
    /// The policy said no. `POLICY_DENIED`, 401 or the policy's 403.
    Policy(PolicyDenial),
    /// A certificate header from a peer that is not a trusted proxy.
    /// `UNTRUSTED_PROXY_HEADER`, 401.
    UntrustedProxyHeader {
        /// The header.
        header: String,
        /// Who sent it.
        remote_addr: Option<IpAddr>,
    },
    /// The certificate header (or the verify header) appears more than once.
    /// `REPEATED_CERTIFICATE_HEADER`, 400.
    RepeatedCertificateHeader {
        /// The header.
        header: String,
    },
    /// The verify header is missing or has another value. `PROXY_VERIFICATION_FAILED`, 401.
    ProxyVerificationFailed {
        /// The value received, `None` if absent.
        value: Option<String>,
    },
    /// The certificate header could not be decoded. Its code, 401.
    ProxyHeader(ProxyHeaderError),
    /// certauth could not decide (a misuse, such as polling a finished decision again).
    /// `INTERNAL_ERROR`, 500.
    Internal {
        /// What happened.
        detail: &'static str,
    },
}

impl DenyReason {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoCertificate { .. } => "NO_CERTIFICATE",
            Self::MalformedCertificate(e) => e.code(),
            Self::Verify(e) => e.code(),
            Self::Policy(_) => "POLICY_DENIED",
            Self::UntrustedProxyHeader { .. } => "UNTRUSTED_PROXY_HEADER",
            Self::RepeatedCertificateHeader { .. } => "REPEATED_CERTIFICATE_HEADER",
            Self::ProxyVerificationFailed { .. } => "PROXY_VERIFICATION_FAILED",
            Self::ProxyHeader(e) => e.code(),
            Self::Internal { .. } => "INTERNAL_ERROR",
        }
    }

    /// The status to answer with.
    pub fn status(&self) -> Status {
        match self {
            Self::RepeatedCertificateHeader { .. } => Status::BadRequest,
            Self::Policy(d) if d.status() == Status::Forbidden => Status::Forbidden,
            Self::Internal { .. } => Status::InternalServerError,
            _ => Status::Unauthorized,
        }
    }

    /// The body client-certificate-auth would send, for servers that opt in to exposing
    /// reasons.
    fn node_style_body(&self) -> String {
        crate::escape::escape(&self.unescaped_body()).into_owned()
    }

    fn unescaped_body(&self) -> String {
        match self {
            Self::ProxyVerificationFailed { value } => format!(
                "Certificate verification failed ({})",
                value.as_deref().unwrap_or("header missing")
            ),
            Self::Policy(d) => format!(
                "{}: {} ({})",
                self.status().reason(),
                d.reason(),
                self.code()
            ),
            Self::Internal { detail } => format!("Internal Server Error: {detail}"),
            // Node's wording when there is no certificate; a presented one is "rejected"
            // (Node says "required" for both, which misleads a client that sent one).
            Self::NoCertificate { .. } => format!(
                "{}: Client certificate required ({})",
                self.status().reason(),
                self.code()
            ),
            other => format!(
                "{}: Client certificate rejected ({})",
                other.status().reason(),
                other.code()
            ),
        }
    }
}

/// Control characters in what the client sent (names, SANs, header values, a policy's
/// message quoting them) are escaped (`\u{..}`): adapters log this text.
impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        let f = &mut crate::escape::Escaping(f);
        match self {
            Self::NoCertificate { detail } => write!(f, "no client certificate ({detail})"),
            // The detail is in the text (not only in `source()`): adapters log one line.
            Self::MalformedCertificate(e) => write!(f, "client certificate is malformed: {e}"),
            Self::Verify(e) => write!(f, "client certificate chain did not verify: {e}"),
            Self::Policy(d) => write!(f, "{d}"),
            Self::UntrustedProxyHeader {
                header,
                remote_addr,
            } => match remote_addr {
                Some(a) => write!(f, "{header} header from {a}, which is not a trusted proxy"),
                None => write!(
                    f,
                    "{header} header from a peer of unknown address (or on a Unix socket the \
                     configuration does not trust)"
                ),
            },
            Self::RepeatedCertificateHeader { header } => {
                write!(f, "{header} header appears more than once")
            }
            Self::ProxyVerificationFailed { value: Some(v) } => {
                write!(f, "proxy verify header says {v:?}")
            }
            Self::ProxyVerificationFailed { value: None } => {
                f.write_str("proxy verify header is missing")
            }
            Self::ProxyHeader(e) => write!(f, "certificate header could not be decoded: {e}"),
            Self::Internal { detail } => write!(f, "internal error: {detail}"),
        }
    }
}

/// No `source()`: the message already prints the cause (an error's text is its whole
/// one-line message; a chain would print it twice). The typed cause is the variant's value.
impl std::error::Error for DenyReason {}

/// A refusal: the reason (for logs), the certificate if one was read (for logs, as the
/// Node package attaches it before deciding), and the response to write.
#[derive(Clone, Debug)]
pub struct Denial {
    reason: DenyReason,
    certificate: Option<ClientCertificate>,
    response: ResponseHead,
}

impl Denial {
    fn new(reason: DenyReason, certificate: Option<ClientCertificate>, expose: bool) -> Self {
        let status = reason.status();
        let response = if expose {
            ResponseHead::error(status, reason.node_style_body())
        } else {
            ResponseHead::generic(status)
        };
        Self {
            reason,
            certificate,
            response,
        }
    }

    /// Why.
    pub fn reason(&self) -> &DenyReason {
        &self.reason
    }

    /// The stable code (`CERT_HAS_EXPIRED`, `POLICY_DENIED`, …).
    pub fn code(&self) -> &'static str {
        self.reason.code()
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.response.status()
    }

    /// The client's certificate, when one could be read.
    pub fn certificate(&self) -> Option<&ClientCertificate> {
        self.certificate.as_ref()
    }

    /// The certificate's subject (RFC 4514) for a log line, control and bidi characters
    /// escaped as in the denial's text (the certificate's holder chose them).
    pub fn subject(&self) -> Option<String> {
        self.certificate
            .as_ref()
            .map(|c| crate::escape::escape(&c.subject().to_rfc4514()).into_owned())
    }

    /// The response to write before closing.
    pub fn response(&self) -> &ResponseHead {
        &self.response
    }

    /// This denial with [`AuthenticatorBuilder::deny_body`]'s body, if it gives one.
    fn dressed(mut self, hook: Option<&DenyBody>, request: &RequestInfo<'_>) -> Self {
        if let Some((content_type, body)) = hook.and_then(|h| h(&self, request)) {
            self.response = self.response.with_body(content_type, body);
        }
        self
    }
}

/// [`AuthenticatorBuilder::deny_body`]'s hook.
type DenyBody =
    Arc<dyn Fn(&Denial, &RequestInfo<'_>) -> Option<(&'static str, String)> + Send + Sync>;

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.code())
    }
}

/// No `source()`: the message is the reason's (see [`Denial::reason`] for the typed value).
impl std::error::Error for Denial {}

/// The decision about one request.
#[must_use]
#[derive(Clone, Debug)]
#[expect(
    clippy::exhaustive_enums,
    reason = "a decision is allow or deny; matches on it must stay total"
)]
pub enum Decision {
    /// Let the client in.
    Allow(Authenticated),
    /// Answer with the denial's response and close.
    Deny(Denial),
}

/// [`Authenticator::decide`]'s answer: ready at once (synchronous policies, every denial
/// before the policy), or pending on an async policy. `.await` it either way (it is a
/// `Future`); the synchronous path allocates nothing and never waits.
#[must_use]
pub struct Evaluation(Inner);

enum Inner {
    Ready(Option<Decision>),
    Pending(Box<PendingDecision>), // boxed: the async path is the rare one
}

impl fmt::Debug for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Ready(Some(d)) => f.debug_tuple("Ready").field(d).finish(),
            Inner::Ready(None) => f.write_str("Taken"),
            Inner::Pending(_) => f.write_str("Pending"),
        }
    }
}

impl Evaluation {
    /// The decision if it is ready (always, without an async policy).
    pub fn ready(self) -> Option<Decision> {
        match self.0 {
            Inner::Ready(d) => d,
            Inner::Pending(_) => None,
        }
    }

    /// Whether it waits on an async policy (`ready` would answer `None`).
    pub fn is_pending(&self) -> bool {
        matches!(self.0, Inner::Pending(_))
    }

    fn pending(p: PendingDecision) -> Self {
        Self(Inner::Pending(Box::new(p)))
    }
}

/// An evaluation that is already decided (for adapters that answer before deciding, such
/// as [`Authenticator::misconfigured`]).
impl Decision {
    /// `ALLOWED`, or the denial's stable code (`CERT_HAS_EXPIRED`, …): for logs and
    /// metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Allow(_) => "ALLOWED",
            Self::Deny(d) => d.code(),
        }
    }
}

impl From<Decision> for Evaluation {
    fn from(d: Decision) -> Self {
        Self(Inner::Ready(Some(d)))
    }
}

impl Future for Evaluation {
    type Output = Decision;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Decision> {
        match &mut self.get_mut().0 {
            Inner::Ready(d) => match d.take() {
                Some(d) => Poll::Ready(d),
                None => Poll::Ready(Decision::Deny(Denial::new(
                    DenyReason::Internal {
                        detail: "decision polled after completion",
                    },
                    None,
                    false,
                ))),
            },
            Inner::Pending(p) => Pin::new(p).poll(cx),
        }
    }
}

/// A decision waiting on an async policy or an online revocation check.
struct PendingDecision {
    /// The policy's verdict, or a denial before it (revocation).
    future: BoxFuture<Result<Verdict, DenyReason>>,
    certificate: ClientCertificate,
    chain: Option<VerifiedChain>,
    origin: Origin,
    expose: bool,
    /// The observer and its stamp, to report the decision when it is made.
    observed: Option<(Arc<dyn Observer>, u64)>,
    /// The body hook and the request it is shown.
    deny_body: Option<(DenyBody, OwnedPolicyContext)>,
}

/// Reports a decision to the authenticator's observer.
fn report(observer: &dyn Observer, started: u64, decision: &Decision) {
    observer.decided(started, decision);
}

impl Future for PendingDecision {
    type Output = Decision;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Decision> {
        let verdict = match self.future.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(v) => v,
        };
        let this = &*self;
        let decision = match verdict {
            Err(reason) => {
                let denial = Denial::new(reason, Some(this.certificate.clone()), this.expose);
                Decision::Deny(match &this.deny_body {
                    Some((hook, ctx)) => denial.dressed(Some(hook), &ctx.request()),
                    None => denial,
                })
            }
            Ok(Verdict::Allow) => Decision::Allow(Authenticated {
                certificate: this.certificate.clone(),
                chain: this.chain.clone(),
                origin: this.origin,
            }),
            Ok(Verdict::Deny(d)) => {
                let denial = Denial::new(
                    DenyReason::Policy(d),
                    Some(this.certificate.clone()),
                    this.expose,
                );
                Decision::Deny(match &this.deny_body {
                    Some((hook, ctx)) => denial.dressed(Some(hook), &ctx.request()),
                    None => denial,
                })
            }
        };
        if let Some((observer, started)) = &this.observed {
            report(&**observer, *started, &decision);
        }
        Poll::Ready(decision)
    }
}

enum PolicySlot {
    Sync(Box<dyn Policy>),
    Async(Box<dyn AsyncPolicy>),
}

/// Builds an [`Authenticator`].
pub struct AuthenticatorBuilder {
    verifier: Option<ChainVerifier>,
    source: CertificateSource,
    policy: PolicySlot,
    /// How many times a policy was set: a second is a build error.
    policies_set: u8,
    /// The settings below are `None` until set: `build` then takes the default, and
    /// [`Authenticator::reload`] keeps the value in force, so a reload that only swaps the
    /// anchors or the policy cannot drop how refusals are presented.
    limits: Option<Limits>,
    expose_reasons: Option<bool>,
    deny_body: Option<Option<DenyBody>>,
    revocation: Option<Revocation>,
    observer: Option<Arc<dyn Observer>>,
}

impl AuthenticatorBuilder {
    /// Trust anchors and verification options. Required for the TLS-peer source; in
    /// header mode, the forwarded chain is verified again with it.
    pub fn verifier(mut self, verifier: ChainVerifier) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Certificates from a proxy header (default: from the TLS peer).
    pub fn proxy_header(mut self, config: ProxyHeaderConfig) -> Self {
        self.source = CertificateSource::ProxyHeader(Box::new(config));
        self
    }

    /// The policy (default: allow every client whose chain verified). Set it once: a
    /// second call (or an [`Self::async_policy`] call besides) makes `build` fail with
    /// [`SetupError::PolicySetTwice`]; combine policies with `all_of` or `.and()`.
    pub fn policy(mut self, policy: impl Policy + 'static) -> Self {
        self.policy = PolicySlot::Sync(Box::new(policy));
        self.policies_set = self.policies_set.saturating_add(1);
        self
    }

    /// An async policy instead (a database lookup): `decide` then returns a pending
    /// evaluation for clients that get as far as the policy. Set once, like [`Self::policy`].
    pub fn async_policy(mut self, policy: impl AsyncPolicy + 'static) -> Self {
        self.policy = PolicySlot::Async(Box::new(policy));
        self.policies_set = self.policies_set.saturating_add(1);
        self
    }

    /// Limits (default [`Limits::DEFAULT`]; on a reload, the limits in force, which a
    /// reload cannot change).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Put the detailed reason in response bodies, as client-certificate-auth does
    /// (`Unauthorized: Client certificate rejected (CERT_HAS_EXPIRED)`; without a
    /// certificate, Node's `Client certificate required (NO_CERTIFICATE)`). Default: no; the
    /// body is the bare reason phrase and the detail goes to the caller and the logs. On a
    /// reload ([`Authenticator::reload`]) a builder that does not call it keeps the setting
    /// in force.
    pub fn expose_reasons(mut self, on: bool) -> Self {
        self.expose_reasons = Some(on);
        self
    }

    /// Writes refusals' bodies yourself: an HTML page for browsers, JSON for an API client.
    /// `body` sees each denial (its code, reason and certificate) and the request;
    /// `Some((content_type, body))` replaces
    /// the body, `None` keeps certauth's. The status and the connection's close stay the
    /// core's. Whether the body reveals the reason is up to you ([`Self::expose_reasons`]
    /// only governs certauth's own bodies). On a reload ([`Authenticator::reload`]) a
    /// builder that does not call it (or [`Self::default_deny_body`]) keeps the hook in
    /// force.
    pub fn deny_body(
        mut self,
        body: impl Fn(&Denial, &RequestInfo<'_>) -> Option<(&'static str, String)>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.deny_body = Some(Some(Arc::new(body)));
        self
    }

    /// certauth's own bodies again (no [`Self::deny_body`] hook): for a reload that removes
    /// the hook in force.
    pub fn default_deny_body(mut self) -> Self {
        self.deny_body = Some(None);
        self
    }

    /// Online revocation checks of the client's certificate (OCSP, CRLs from distribution
    /// points), after its chain verifies and before the policy: see
    /// [`crate::revocation`]. A decision that must fetch is pending until the fetch ends.
    pub fn revocation(mut self, revocation: Revocation) -> Self {
        self.revocation = Some(revocation);
        self
    }

    /// Reports every decision to `observer` (a value, as rustls takes its provider: the
    /// CLI's `--metrics` counts them). It is the authenticator's for life: a
    /// [`Authenticator::reload`] keeps it. Connections are reported by the serve loops that
    /// are given it (`ServeOptions::with_observer`).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<Authenticator, SetupError> {
        let limits = self.limits.unwrap_or(Limits::DEFAULT);
        let observer = self.observer.clone();
        Ok(Authenticator {
            inner: Arc::new(Shared {
                limits,
                observer,
                current: RwLock::new(Arc::new(self.config(limits, false, None)?)),
            }),
        })
    }

    /// The configuration, with `limits` and, where the builder did not set them, the
    /// presentation settings given (the defaults on `build`, the ones in force on a reload).
    fn config(
        self,
        limits: Limits,
        expose_reasons: bool,
        deny_body: Option<DenyBody>,
    ) -> Result<Config, SetupError> {
        let needs_anchors = match &self.source {
            CertificateSource::TlsPeer => true,
            CertificateSource::ProxyHeader(c) => {
                if c.trusted_proxies().is_empty() {
                    return Err(SetupError::NoTrustedProxies);
                }
                c.falls_back_to_tls_peer()
            }
        };
        if needs_anchors && self.verifier.is_none() {
            return Err(SetupError::MissingTrustAnchors);
        }
        if self.policies_set > 1 {
            return Err(SetupError::PolicySetTwice);
        }
        let verifier = self.verifier.map(|v| v.with_cert_limits(&limits));
        Ok(Config {
            verifier,
            source: self.source,
            policy: self.policy,
            limits,
            expose_reasons: self.expose_reasons.unwrap_or(expose_reasons),
            deny_body: self.deny_body.unwrap_or(deny_body),
            revocation: self.revocation,
        })
    }
}

/// What every clone of an [`Authenticator`] shares: the limits, fixed when built, and the
/// configuration in force, which [`Authenticator::reload`] replaces.
struct Shared {
    limits: Limits,
    observer: Option<Arc<dyn Observer>>,
    current: RwLock<Arc<Config>>,
}

struct Config {
    verifier: Option<ChainVerifier>,
    source: CertificateSource,
    policy: PolicySlot,
    limits: Limits,
    expose_reasons: bool,
    deny_body: Option<DenyBody>,
    revocation: Option<Revocation>,
}

/// Decides, per request, whether a client is let in. See the crate docs for the table of
/// outcomes.
///
/// Clones share one configuration, which [`Self::reload`] replaces for all of them at once:
/// a decision under way keeps the configuration it started with; the next one uses the new.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Shared>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cfg = self.config();
        f.debug_struct("Authenticator")
            .field("verifier", &cfg.verifier)
            .field("source", &cfg.source)
            .field("limits", &self.inner.limits)
            .field("expose_reasons", &cfg.expose_reasons)
            .finish_non_exhaustive()
    }
}

/// A certificate and how it was established, before the policy.
struct Identified {
    certificate: ClientCertificate,
    chain: Option<VerifiedChain>,
    origin: Origin,
}

impl Authenticator {
    /// A builder with the TLS peer as the source, no verifier yet, and the default policy.
    pub fn builder() -> AuthenticatorBuilder {
        AuthenticatorBuilder {
            verifier: None,
            source: CertificateSource::TlsPeer,
            policy: PolicySlot::Sync(Box::new(allow_any())),
            policies_set: 0,
            limits: None,
            expose_reasons: None,
            deny_body: None,
            revocation: None,
            observer: None,
        }
    }

    /// The configuration in force.
    fn config(&self) -> Arc<Config> {
        // A panic while swapping leaves the old or the new configuration, both whole.
        Arc::clone(
            &self
                .inner
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Replaces the trust anchors, CRLs, policy, source and options of this authenticator
    /// and every clone of it, atomically: decisions under way finish with the old
    /// configuration, the next ones use `next`. Verification results remembered under the
    /// old configuration are never reused (the new verifier starts its own). On an error
    /// the old configuration stays. The limits cannot change ([`SetupError::LimitsChanged`]):
    /// connections in progress are bounded by them.
    ///
    /// What `next` does not set of [`AuthenticatorBuilder::expose_reasons`],
    /// [`AuthenticatorBuilder::deny_body`] and [`AuthenticatorBuilder::limits`] stays as it
    /// is, so `Authenticator::builder().verifier(..).policy(..)` swaps the anchors and the
    /// policy and keeps how refusals are written. The verifier, the source and the policy
    /// are always `next`'s (unset: none, the TLS peer, allow every verified client).
    pub fn reload(&self, next: AuthenticatorBuilder) -> Result<(), SetupError> {
        if next.limits.is_some_and(|l| l != self.inner.limits) {
            return Err(SetupError::LimitsChanged);
        }
        let current = self.config();
        let config = Arc::new(next.config(
            self.inner.limits,
            current.expose_reasons,
            current.deny_body.clone(),
        )?);
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The limits adapters apply while reading.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The verifier in force, if configured (a clone: it shares the original's cache).
    pub fn verifier(&self) -> Option<ChainVerifier> {
        self.config().verifier.clone()
    }

    /// A 500 `INTERNAL_ERROR` for a request the adapter cannot decide about because it is
    /// missing something it needs (`detail` says what, in the logs; in the body too when
    /// reasons are exposed): a misconfiguration, never a client's fault.
    pub fn misconfigured(&self, detail: &'static str) -> Denial {
        let expose = self.config().expose_reasons;
        Denial::new(DenyReason::Internal { detail }, None, expose)
    }

    /// What is risky about this configuration, for a serve helper to log at startup: header
    /// mode that believes a forwarded certificate with neither a verifier to check it again
    /// nor the proxy's verify header (a proxy that passes unverified clients on, as nginx's
    /// `optional_no_ca` does, would then let any self-signed certificate in).
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let config = self.config();
        if let CertificateSource::ProxyHeader(cfg) = &config.source
            && !(cfg.reverifies() && config.verifier.is_some())
            && cfg.verify_header().is_none()
        {
            out.push(
                "header mode trusts forwarded certificates without verifying them: give the \
                 authenticator a ChainVerifier (the client CA) or require the proxy's verify \
                 header, unless the proxy itself refuses unverified clients",
            );
        }
        if let CertificateSource::ProxyHeader(cfg) = &config.source
            && [
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ]
            .into_iter()
            .any(|a| cfg.trusted_proxies().contains(Some(a)))
        {
            out.push(
                "a loopback address is a trusted proxy: every process on this host can then \
                 send a certificate header; let only the proxy reach this port (a firewall \
                 rule, or a private network namespace), or serve header mode on a Unix socket \
                 (serve_plain on a Unix listener, trust_unix_socket)",
            );
        }
        out
    }

    /// Decides about one request. `.await` the answer (it is ready at once unless an async
    /// policy is configured), or call [`Evaluation::ready`].
    pub fn decide<H: Head>(&self, peer: &PeerInfo<'_>, head: &H, now: UnixTime) -> Evaluation {
        let Some(observer) = &self.inner.observer else {
            return self.config().decide(peer, head, now, None);
        };
        let started = observer.decision_started();
        let mut evaluation = self.config().decide(peer, head, now, Some(observer));
        match &mut evaluation.0 {
            Inner::Ready(Some(d)) => report(&**observer, started, d),
            Inner::Ready(None) => {}
            Inner::Pending(p) => p.observed = Some((Arc::clone(observer), started)),
        }
        evaluation
    }
}

impl Config {
    fn decide<H: Head>(
        self: &Arc<Self>,
        peer: &PeerInfo<'_>,
        head: &H,
        now: UnixTime,
        observer: Option<&Arc<dyn Observer>>,
    ) -> Evaluation {
        let expose = self.expose_reasons;
        let request = RequestInfo {
            method: head.method(),
            target: head.target(),
            headers: head,
            remote_addr: peer.remote_addr,
            authority: head.authority(),
        };
        let hook = self.deny_body.as_ref();
        let id = match self.identify(peer, head, now) {
            Ok(id) => id,
            Err((reason, cert)) => {
                let denial = Denial::new(reason, cert, expose).dressed(hook, &request);
                return Evaluation::from(Decision::Deny(denial));
            }
        };
        if let (Some(revocation), Some(chain)) = (&self.revocation, &id.chain) {
            match revocation.check(chain, now, observer) {
                Check::Done(Ok(())) => {}
                Check::Done(Err(e)) => {
                    let denial = Denial::new(DenyReason::Verify(e), Some(id.certificate), expose)
                        .dressed(hook, &request);
                    return Evaluation::from(Decision::Deny(denial));
                }
                Check::Wait(wait) => return self.after_revocation(wait, id, peer, head),
            }
        }
        match &self.policy {
            PolicySlot::Sync(policy) => {
                let ctx = PolicyContext::new(&id.certificate, id.chain.as_ref(), request);
                Evaluation::from(match policy.evaluate(&ctx) {
                    Verdict::Allow => Decision::Allow(Authenticated {
                        certificate: id.certificate,
                        chain: id.chain,
                        origin: id.origin,
                    }),
                    Verdict::Deny(d) => Decision::Deny(
                        Denial::new(DenyReason::Policy(d), Some(id.certificate), expose)
                            .dressed(hook, &request),
                    ),
                })
            }
            PolicySlot::Async(policy) => {
                let owned = OwnedPolicyContext {
                    cert: id.certificate.clone(),
                    chain: id.chain.clone(),
                    method: head.method().to_owned(),
                    target: head.target().to_owned(),
                    headers: OwnedHeaders::copy_of(head),
                    remote_addr: peer.remote_addr,
                    authority: head.authority().map(str::to_owned),
                };
                // A second copy only when a body hook may need the request later.
                let deny_body = self.deny_body.clone().map(|h| (h, owned.clone()));
                let verdict = policy.evaluate(owned);
                Evaluation::pending(PendingDecision {
                    future: Box::pin(async move { Ok(verdict.await) }),
                    certificate: id.certificate,
                    chain: id.chain,
                    origin: id.origin,
                    expose,
                    observed: None,
                    deny_body,
                })
            }
        }
    }

    /// The decision once the revocation checks `wait` ends: a denial of its own, or the
    /// policy's verdict.
    fn after_revocation<H: Head>(
        self: &Arc<Self>,
        wait: BoxFuture<Result<(), VerifyError>>,
        id: Identified,
        peer: &PeerInfo<'_>,
        head: &H,
    ) -> Evaluation {
        let owned = OwnedPolicyContext {
            cert: id.certificate.clone(),
            chain: id.chain.clone(),
            method: head.method().to_owned(),
            target: head.target().to_owned(),
            headers: OwnedHeaders::copy_of(head),
            remote_addr: peer.remote_addr,
            authority: head.authority().map(str::to_owned),
        };
        let deny_body = self.deny_body.clone().map(|h| (h, owned.clone()));
        let config = Arc::clone(self);
        let future = Box::pin(async move {
            wait.await.map_err(DenyReason::Verify)?;
            Ok(match &config.policy {
                PolicySlot::Sync(policy) => policy.evaluate(&PolicyContext::new(
                    &owned.cert,
                    owned.chain.as_ref(),
                    owned.request(),
                )),
                PolicySlot::Async(policy) => policy.evaluate(owned).await,
            })
        });
        Evaluation::pending(PendingDecision {
            future,
            certificate: id.certificate,
            chain: id.chain,
            origin: id.origin,
            expose: self.expose_reasons,
            observed: None,
            deny_body,
        })
    }

    fn identify(
        &self,
        peer: &PeerInfo<'_>,
        head: &impl Head,
        now: UnixTime,
    ) -> Result<Identified, (DenyReason, Option<ClientCertificate>)> {
        let id = match &self.source {
            CertificateSource::TlsPeer => self.tls_peer_identity(peer, now),
            CertificateSource::ProxyHeader(cfg) => self.header_identity(cfg, peer, head, now),
        }?;
        // The key last: a TLS peer whose key type the provider could not verify finished
        // the handshake without proving possession, and is refused here whatever else
        // holds. A proxy checked possession itself; only the algorithm and strength count.
        // Both read the verdict the certificate keeps (chain verification judged it).
        let checked = match id.origin {
            Origin::TlsPeer => keys::check(&id.certificate, peer.key_support),
            Origin::ProxyHeader => keys::check(&id.certificate, KeySupport::ALL),
        };
        match checked {
            Ok(()) => Ok(id),
            Err(problem) => Err((DenyReason::Verify(problem), Some(id.certificate))),
        }
    }

    fn tls_peer_identity(
        &self,
        peer: &PeerInfo<'_>,
        now: UnixTime,
    ) -> Result<Identified, (DenyReason, Option<ClientCertificate>)> {
        let Some(leaf) = peer.tls_chain.first() else {
            return Err((
                DenyReason::NoCertificate {
                    detail: "the TLS peer presented none".into(),
                },
                None,
            ));
        };
        let chain = self.verify(leaf, peer.tls_chain, peer.memo, now)?;
        Ok(Identified {
            certificate: chain.leaf().clone(),
            chain: Some(chain),
            origin: Origin::TlsPeer,
        })
    }

    /// Verifies `chain` (whose first certificate is `leaf`), reusing an earlier result that
    /// still holds (the connection's memo, then the verifier's cache).
    fn verify(
        &self,
        leaf: &CertificateDer<'_>,
        chain: &[CertificateDer<'_>],
        memo: Option<&PeerMemo>,
        now: UnixTime,
    ) -> Result<VerifiedChain, (DenyReason, Option<ClientCertificate>)> {
        let Some(verifier) = &self.verifier else {
            // build() guarantees a verifier wherever this is reached.
            return Err((
                DenyReason::Internal {
                    detail: "no verifier configured",
                },
                ClientCertificate::from_der_with_limits(leaf, &self.limits).ok(),
            ));
        };
        let verified = match memo {
            Some(memo) => verifier.verify_for(memo, chain, now),
            None => verifier.verify(chain, now),
        };
        verified.map_err(|e| match e {
            VerifyError::Malformed { index: 0, source } => {
                (DenyReason::MalformedCertificate(source), None)
            }
            // The certificate is attached to the denial for the logs, as the Node package
            // attaches it before deciding.
            e => (
                DenyReason::Verify(e),
                ClientCertificate::from_der_with_limits(leaf, &self.limits).ok(),
            ),
        })
    }

    fn header_identity(
        &self,
        cfg: &ProxyHeaderConfig,
        peer: &PeerInfo<'_>,
        head: &impl Head,
        now: UnixTime,
    ) -> Result<Identified, (DenyReason, Option<ClientCertificate>)> {
        let mut values = head.header_all(cfg.header());
        let value = values.next();
        if values.next().is_some() {
            return Err((
                DenyReason::RepeatedCertificateHeader {
                    header: cfg.header().to_owned(),
                },
                None,
            ));
        }
        let trusted = if peer.unix_socket {
            cfg.trusted_proxies().trusts_unix_socket()
        } else {
            cfg.trusted_proxies().contains(peer.remote_addr)
        };
        let Some(value) = value else {
            // The fallback is for clients that reach certauth directly, past the proxy. A
            // trusted proxy's request always speaks for its client: without a certificate
            // header its client has none (nginx `optional_no_ca`), and the proxy's own TLS
            // identity must not stand in for it.
            let reason = DenyReason::NoCertificate {
                detail: format!("header {} absent", cfg.header()),
            };
            // Direct means known to be: a peer whose address is unknown may be the proxy.
            let direct = !trusted && !peer.unix_socket && peer.remote_addr.is_some();
            return if cfg.falls_back_to_tls_peer() && direct {
                self.tls_peer_identity(peer, now)
            } else {
                Err((reason, None))
            };
        };
        if !trusted {
            return Err((
                DenyReason::UntrustedProxyHeader {
                    header: cfg.header().to_owned(),
                    remote_addr: peer.remote_addr,
                },
                None,
            ));
        }
        if let Some((name, expected)) = cfg.verify_header() {
            // Once, like the certificate header: a proxy that appends instead of replacing
            // would otherwise let a client's own `SUCCESS` stand first.
            let mut values = head.header_all(name);
            let got = values.next();
            if values.next().is_some() {
                return Err((
                    DenyReason::RepeatedCertificateHeader {
                        header: name.to_owned(),
                    },
                    None,
                ));
            }
            if got != Some(expected.as_bytes()) {
                return Err((
                    DenyReason::ProxyVerificationFailed {
                        value: got.map(|v| String::from_utf8_lossy(v).into_owned()),
                    },
                    None,
                ));
            }
        }
        // RFC 9440's chain is a structured-field List, which a proxy may split over several
        // field lines; RFC 8941 combines them with commas.
        let chain_value: Option<Vec<u8>> = cfg.chain_header_name().and_then(|n| {
            let lines: Vec<&[u8]> = head.header_all(n).collect();
            (!lines.is_empty()).then(|| lines.join(&b", "[..]))
        });
        let chain = match cfg.decode(value, chain_value.as_deref()) {
            Ok(chain) => chain,
            Err(e) => return Err((DenyReason::ProxyHeader(e), None)),
        };
        let Some(leaf) = chain.first() else {
            return Err((DenyReason::ProxyHeader(ProxyHeaderError::Empty), None));
        };
        if cfg.reverifies() && self.verifier.is_some() {
            let verified = self.verify(leaf, &chain, None, now)?;
            return Ok(Identified {
                certificate: verified.leaf().clone(),
                chain: Some(verified),
                origin: Origin::ProxyHeader,
            });
        }
        match ClientCertificate::from_der_with_limits(leaf, &self.limits) {
            Ok(certificate) => Ok(Identified {
                certificate,
                chain: None,
                origin: Origin::ProxyHeader,
            }),
            Err(e) => Err((DenyReason::MalformedCertificate(e), None)),
        }
    }
}
