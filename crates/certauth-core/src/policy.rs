//! Policies: who, among clients whose chain verified, is let in.
//!
//! A [`Policy`] sees the certificate, the verified chain (when there is one) and the request
//! ([`PolicyContext`]) and answers a [`Verdict`]: allow, or deny with a status (401 by
//! default; a policy may choose 403) and a reason for the logs. Closures are policies:
//!
//! ```
//! use certauth_core::policy::{Policy, PolicyContext};
//!
//! let p = |ctx: &PolicyContext<'_>| ctx.cert.subject().common_names().any(|cn| cn == "svc");
//! # fn takes(_: impl Policy) {}
//! # takes(p);
//! ```
//!
//! Helpers mirror client-certificate-auth's (`allowCN` → [`allow_cn`], …), but match any
//! value of a repeated attribute, pin SHA-256 fingerprints (not SHA-1), and compare pins in
//! constant time. Combine them with [`all_of`], [`any_of`], [`not`] or [`PolicyExt`].
//! A TOML policy file expresses every helper and combinator: see the `file` module (feature
//! `serde`).
//!
//! For lookups that wait (a database), implement [`AsyncPolicy`]: it returns a plain boxed
//! `Future`, so it runs on any executor.

#[cfg(feature = "serde")]
pub mod file;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::pin::Pin;

use subtle::ConstantTimeEq as _;

use crate::cert::{ClientCertificate, GeneralName};
use crate::name::{Name, attribute_type};
use crate::verify::VerifiedChain;

pub use crate::http::{HeaderMap, NoHeaders};

/// The parts of a request a policy may look at.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct RequestInfo<'a> {
    /// The method (`GET`).
    pub method: &'a str,
    /// The request target: the path and its query (`/path?query`); [`Self::path`] is the
    /// path alone.
    pub target: &'a str,
    /// The headers.
    pub headers: &'a dyn HeaderMap,
    /// The peer's address (the TCP peer, not a forwarded one).
    pub remote_addr: Option<IpAddr>,
}

impl fmt::Debug for RequestInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

impl<'a> RequestInfo<'a> {
    /// A request with the given method and target, no headers and no address.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        Self {
            method,
            target,
            headers: &NoHeaders,
            remote_addr: None,
        }
    }

    /// The path of the target, without the query.
    pub fn path(&self) -> &'a str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// With headers.
    pub fn with_headers(mut self, headers: &'a dyn HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// With the peer's address.
    pub fn with_remote_addr(mut self, addr: IpAddr) -> Self {
        self.remote_addr = Some(addr);
        self
    }
}

/// What a policy sees.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PolicyContext<'a> {
    /// The client's certificate.
    pub cert: &'a ClientCertificate,
    /// The verified chain, when the certificate was verified here (absent when a proxy
    /// header is trusted without re-verification).
    pub chain: Option<&'a VerifiedChain>,
    /// The request.
    pub request: RequestInfo<'a>,
}

impl<'a> PolicyContext<'a> {
    /// A context.
    pub fn new(
        cert: &'a ClientCertificate,
        chain: Option<&'a VerifiedChain>,
        request: RequestInfo<'a>,
    ) -> Self {
        Self {
            cert,
            chain,
            request,
        }
    }
}

/// The HTTP status of a denial: 401 or 403, nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyStatus {
    /// 401: the client is not authenticated as anyone allowed.
    #[default]
    Unauthorized,
    /// 403: the client is known but not allowed here.
    Forbidden,
}

impl DenyStatus {
    /// The numeric status.
    pub fn code(self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
        }
    }

    /// 401 or 403.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            401 => Some(Self::Unauthorized),
            403 => Some(Self::Forbidden),
            _ => None,
        }
    }
}

/// A policy's refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDenial {
    status: DenyStatus,
    reason: Cow<'static, str>,
}

impl PolicyDenial {
    /// A 401 with a reason for the logs.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: DenyStatus::Unauthorized,
            reason: reason.into(),
        }
    }

    /// A 403 with a reason for the logs.
    pub fn forbidden(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: DenyStatus::Forbidden,
            reason: reason.into(),
        }
    }

    /// The same denial with another status.
    pub fn with_status(mut self, status: DenyStatus) -> Self {
        self.status = status;
        self
    }

    /// The status to answer with.
    pub fn status(&self) -> DenyStatus {
        self.status
    }

    /// Why, for the logs.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for PolicyDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "denied by policy ({}): {}",
            self.status.code(),
            self.reason
        )
    }
}

/// A policy's answer.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
#[expect(
    clippy::exhaustive_enums,
    reason = "a verdict is allow or deny, and matches on it should stay total"
)]
pub enum Verdict {
    /// Let the client in.
    Allow,
    /// Refuse it.
    Deny(PolicyDenial),
}

impl Verdict {
    /// A 401 denial with this reason.
    pub fn deny(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Deny(PolicyDenial::new(reason))
    }

    /// A 403 denial with this reason.
    pub fn forbid(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Deny(PolicyDenial::forbidden(reason))
    }

    /// Whether it allows.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

impl From<bool> for Verdict {
    /// `true` allows; `false` denies with 401 (as the Node package's callback does).
    fn from(ok: bool) -> Self {
        if ok {
            Self::Allow
        } else {
            Self::deny("the policy returned false")
        }
    }
}

impl From<Result<(), PolicyDenial>> for Verdict {
    fn from(r: Result<(), PolicyDenial>) -> Self {
        match r {
            Ok(()) => Self::Allow,
            Err(d) => Self::Deny(d),
        }
    }
}

/// Decides whether a verified client is let in. Evaluation must not block.
pub trait Policy: Send + Sync {
    /// The verdict for this client and request.
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict;
}

impl<F, R> Policy for F
where
    F: Fn(&PolicyContext<'_>) -> R + Send + Sync,
    R: Into<Verdict>,
{
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        self(ctx).into()
    }
}

impl Policy for Box<dyn Policy> {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        (**self).evaluate(ctx)
    }
}

impl Policy for std::sync::Arc<dyn Policy> {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        (**self).evaluate(ctx)
    }
}

/// A boxed policy, for combinators and configuration.
pub type BoxPolicy = Box<dyn Policy>;

/// Combinator methods for every policy.
pub trait PolicyExt: Policy + Sized + 'static {
    /// Boxes it.
    fn boxed(self) -> BoxPolicy {
        Box::new(self)
    }

    /// Both must allow.
    fn and(self, other: impl Policy + 'static) -> AllOf {
        all_of([self.boxed(), other.boxed()])
    }

    /// Either may allow.
    fn or(self, other: impl Policy + 'static) -> AnyOf {
        any_of([self.boxed(), other.boxed()])
    }

    /// Denials carry this status instead (e.g. 403 for a known client that is not allowed).
    fn deny_with(self, status: DenyStatus) -> WithStatus {
        WithStatus {
            inner: self.boxed(),
            status,
        }
    }
}

impl<P: Policy + Sized + 'static> PolicyExt for P {}

/// A future returned by an [`AsyncPolicy`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An owned copy of what a policy sees, for policies that wait.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OwnedPolicyContext {
    /// The client's certificate (cheap to clone).
    pub cert: ClientCertificate,
    /// The verified chain, when verified here.
    pub chain: Option<VerifiedChain>,
    /// The method.
    pub method: String,
    /// The request target (`/path?query`).
    pub target: String,
    /// The request's headers, copied (an async policy outlives the request head).
    pub headers: OwnedHeaders,
    /// The peer's address.
    pub remote_addr: Option<IpAddr>,
}

impl OwnedPolicyContext {
    /// The path of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The request as a sync policy sees it (for sharing code between the two kinds).
    pub fn request(&self) -> RequestInfo<'_> {
        RequestInfo {
            method: &self.method,
            target: &self.target,
            headers: &self.headers,
            remote_addr: self.remote_addr,
        }
    }
}

/// Headers copied out of a request: name and value pairs, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedHeaders(Vec<(String, Vec<u8>)>);

impl OwnedHeaders {
    /// Copies `pairs`.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_vec()))
                .collect(),
        )
    }

    /// Copies every header `map` lists ([`HeaderMap::for_each`]).
    pub fn copy_of(map: &dyn HeaderMap) -> Self {
        let mut out = Vec::new();
        map.for_each(&mut |n, v| out.push((n.to_owned(), v.to_vec())));
        Self(out)
    }

    /// The first value of a header (name case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

impl HeaderMap for OwnedHeaders {
    fn get(&self, name: &str) -> Option<&[u8]> {
        Self::get(self, name)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &[u8])) {
        self.iter().for_each(|(n, v)| each(n, v));
    }
}

impl OwnedPolicyContext {
    /// Copies a context (the certificate and chain by reference count).
    pub fn from_context(ctx: &PolicyContext<'_>) -> Self {
        Self {
            cert: ctx.cert.clone(),
            chain: ctx.chain.cloned(),
            method: ctx.request.method.to_owned(),
            target: ctx.request.target.to_owned(),
            headers: OwnedHeaders::copy_of(ctx.request.headers),
            remote_addr: ctx.request.remote_addr,
        }
    }
}

/// A policy that waits (a database, a directory). The future is a plain `Future`: it runs
/// on whatever executor the adapter uses. Only async policies pay for the owned context and
/// the box; synchronous policies allocate nothing.
pub trait AsyncPolicy: Send + Sync {
    /// The verdict, eventually.
    fn evaluate(&self, ctx: OwnedPolicyContext) -> BoxFuture<Verdict>;
}

impl<F, Fut, R> AsyncPolicy for F
where
    F: Fn(OwnedPolicyContext) -> Fut + Send + Sync,
    Fut: Future<Output = R> + Send + 'static,
    R: Into<Verdict>,
{
    fn evaluate(&self, ctx: OwnedPolicyContext) -> BoxFuture<Verdict> {
        let fut = self(ctx);
        Box::pin(async move { fut.await.into() })
    }
}

/// Why a helper could not be built from its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// A fingerprint pin is not a SHA-256 fingerprint.
    InvalidFingerprint {
        /// The pin as given.
        value: String,
    },
    /// An attribute name is neither a known short name nor a dotted OID.
    UnknownAttribute {
        /// The name as given.
        name: String,
    },
    /// A serial number is not hex.
    InvalidSerial {
        /// The value as given.
        value: String,
    },
    /// A SAN pattern is malformed (e.g. `IP:` with an invalid address).
    InvalidSan {
        /// The value as given.
        value: String,
    },
    /// A SPIFFE ID or trust domain is malformed.
    InvalidSpiffeId {
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidFingerprint { value } => write!(
                f,
                "`{value}` is not a SHA-256 fingerprint: expected 64 hex digits, colons and a \
                 `SHA256:` prefix optional (SHA-1 fingerprints are not accepted as pins)"
            ),
            Self::UnknownAttribute { name } => write!(
                f,
                "unknown attribute `{name}`: use a short name (CN, O, OU, C, ST, L, \
                 emailAddress, …) or a dotted OID"
            ),
            Self::InvalidSerial { value } => {
                write!(
                    f,
                    "`{value}` is not a serial number: expected hex digits, colons optional"
                )
            }
            Self::InvalidSan { value } => write!(
                f,
                "`{value}` is not a SAN pattern: expected `DNS:name`, `email:addr`, `URI:uri`, \
                 `IP:addr` or a bare value"
            ),
            Self::InvalidSpiffeId { value, reason } => {
                write!(f, "`{value}` is not a valid SPIFFE ID: {reason}")
            }
        }
    }
}

impl std::error::Error for PolicyError {}

/// Formats the values for a denial reason, briefly.
fn got<'a>(values: impl Iterator<Item = Cow<'a, str>>) -> String {
    let v: Vec<String> = values.take(8).map(|s| format!("{s:?}")).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// Allows a client if any value of one subject attribute is in a set (exact match).
#[derive(Clone, Debug)]
pub struct AllowAttribute {
    oid: Cow<'static, [u8]>,
    label: &'static str,
    allowed: HashSet<String>,
}

impl AllowAttribute {
    fn new(
        oid: &'static [u8],
        label: &'static str,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            oid: Cow::Borrowed(oid),
            label,
            allowed: values.into_iter().map(Into::into).collect(),
        }
    }
}

impl Policy for AllowAttribute {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let subject = ctx.cert.subject();
        let mut values = subject
            .attributes()
            .filter(|a| a.oid().as_bytes() == &*self.oid)
            .map(|a| a.value().as_str());
        if values.any(|v| self.allowed.contains(&*v)) {
            return Verdict::Allow;
        }
        let values = subject
            .attributes()
            .filter(|a| a.oid().as_bytes() == &*self.oid)
            .map(|a| a.value().as_str());
        Verdict::deny(format!(
            "{} not allowed (certificate has {})",
            self.label,
            got(values)
        ))
    }
}

/// Allows a client whose subject has a CN in `names` (any of its CNs; exact, case-sensitive).
/// An empty list allows no one.
pub fn allow_cn(names: impl IntoIterator<Item = impl Into<String>>) -> AllowAttribute {
    AllowAttribute::new(crate::oid::known::CN, "CN", names)
}

/// Allows a client whose subject has an OU in `units` (any of its OUs).
pub fn allow_ou(units: impl IntoIterator<Item = impl Into<String>>) -> AllowAttribute {
    AllowAttribute::new(crate::oid::known::OU, "OU", units)
}

/// Allows a client whose subject has an O in `organizations` (any of its Os).
pub fn allow_organization(
    organizations: impl IntoIterator<Item = impl Into<String>>,
) -> AllowAttribute {
    AllowAttribute::new(crate::oid::known::O, "O", organizations)
}

/// A SHA-256 fingerprint whose equality is constant-time.
///
/// How the lookup stays constant-time where it matters: the set is a `HashSet` with std's
/// `RandomState` (SipHash keyed per process with random keys), so which bucket a lookup
/// probes, and how many pins it compares, tells an attacker nothing they can steer towards a
/// pin; each comparison inside the bucket is `subtle::ConstantTimeEq` over all 32 bytes, so
/// its time does not depend on how many leading bytes match.
#[derive(Clone, Copy, Debug, Eq)]
struct Sha256Pin([u8; 32]);

impl PartialEq for Sha256Pin {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Hash for Sha256Pin {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Parses a SHA-256 pin: 64 hex digits; `SHA256:` / `sha256/` prefix, colons, spaces and
/// case optional.
pub(crate) fn parse_sha256_pin(text: &str) -> Result<[u8; 32], PolicyError> {
    let err = || PolicyError::InvalidFingerprint {
        value: text.to_owned(),
    };
    let t = text.trim();
    let t = ["sha256:", "sha256/", "sha-256:"]
        .iter()
        .find_map(|p| {
            t.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| &t[p.len()..])
        })
        .unwrap_or(t);
    let digits: Vec<u8> = t
        .bytes()
        .filter(|b| *b != b':' && *b != b' ')
        .map(|b| {
            char::from(b)
                .to_digit(16)
                .and_then(|d| u8::try_from(d).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(err)?;
    if digits.len() != 64 {
        return Err(err());
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = pair[0] << 4 | pair[1];
    }
    Ok(out)
}

/// Allows a client whose certificate's SHA-256 fingerprint is pinned. O(1) per lookup,
/// constant-time comparison.
#[derive(Clone, Debug)]
pub struct AllowFingerprints {
    pins: HashSet<Sha256Pin>,
}

impl Policy for AllowFingerprints {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        if self
            .pins
            .contains(&Sha256Pin(*ctx.cert.fingerprint_sha256()))
        {
            Verdict::Allow
        } else {
            Verdict::deny(format!(
                "fingerprint not pinned (certificate's SHA-256 is {})",
                ctx.cert.fingerprint_sha256_hex()
            ))
        }
    }
}

/// Allows clients by SHA-256 fingerprint (`SHA256:AB:CD:…`; prefix, colons and case
/// optional). Fails on a pin that is not 64 hex digits, such as a SHA-1 fingerprint.
pub fn allow_fingerprints(
    pins: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<AllowFingerprints, PolicyError> {
    let pins = pins
        .into_iter()
        .map(|p| parse_sha256_pin(p.as_ref()).map(Sha256Pin))
        .collect::<Result<_, _>>()?;
    Ok(AllowFingerprints { pins })
}

/// Which name [`AllowName`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WhichName {
    Issuer,
    Subject,
}

/// Allows a client whose issuer (or subject) has every listed attribute value.
#[derive(Clone, Debug)]
pub struct AllowName {
    which: WhichName,
    fields: Vec<(String, Cow<'static, [u8]>, String)>,
}

impl AllowName {
    fn build(
        which: WhichName,
        fields: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Result<Self, PolicyError> {
        let fields = fields
            .into_iter()
            .map(|(k, v)| {
                let k = k.into();
                let oid = attribute_type(&k)
                    .ok_or_else(|| PolicyError::UnknownAttribute { name: k.clone() })?;
                Ok((k, oid, v.into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { which, fields })
    }
}

impl Policy for AllowName {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let name: Name<'_> = match self.which {
            WhichName::Issuer => ctx.cert.issuer(),
            WhichName::Subject => ctx.cert.subject(),
        };
        for (label, oid, expected) in &self.fields {
            let matches = name
                .attributes()
                .filter(|a| a.oid().as_bytes() == &**oid)
                .any(|a| a.value().as_str() == expected.as_str());
            if !matches {
                let which = match self.which {
                    WhichName::Issuer => "issuer",
                    WhichName::Subject => "subject",
                };
                return Verdict::deny(format!(
                    "{which} {label} is not {expected:?} (certificate has {})",
                    got(name
                        .attributes()
                        .filter(|a| a.oid().as_bytes() == &**oid)
                        .map(|a| a.value().as_str()))
                ));
            }
        }
        Verdict::Allow
    }
}

/// Allows a client whose issuer has every listed `(attribute, value)`; attributes by short
/// name (`CN`, `O`, …) or dotted OID. The issuer name is the one the verified chain links.
pub fn allow_issuer(
    fields: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
) -> Result<AllowName, PolicyError> {
    AllowName::build(WhichName::Issuer, fields)
}

/// Allows a client whose subject has every listed `(attribute, value)`.
pub fn allow_subject(
    fields: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
) -> Result<AllowName, PolicyError> {
    AllowName::build(WhichName::Subject, fields)
}

/// Normalizes a serial for comparison: hex digits only, upper case, no leading zeros.
fn normalize_serial(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: String = t
        .chars()
        .filter(|c| *c != ':' && *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    Some(if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    })
}

/// Allows clients by serial number (hex; colons, case and leading zeros ignored).
#[derive(Clone, Debug)]
pub struct AllowSerial {
    serials: HashSet<String>,
}

impl Policy for AllowSerial {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let serial = ctx.cert.serial_hex();
        match normalize_serial(&serial) {
            Some(s) if self.serials.contains(&s) => Verdict::Allow,
            _ => Verdict::deny(format!("serial {serial} not allowed")),
        }
    }
}

/// Allows clients whose serial number is listed.
pub fn allow_serial(
    serials: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<AllowSerial, PolicyError> {
    let serials = serials
        .into_iter()
        .map(|s| {
            normalize_serial(s.as_ref()).ok_or_else(|| PolicyError::InvalidSerial {
                value: s.as_ref().to_owned(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(AllowSerial { serials })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SanPattern {
    Dns(String),
    Email(String),
    Uri(String),
    Ip(IpAddr),
    Any(String),
}

impl SanPattern {
    fn parse(text: &str) -> Result<Self, PolicyError> {
        let invalid = || PolicyError::InvalidSan {
            value: text.to_owned(),
        };
        let prefixed = |p: &str| {
            text.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| &text[p.len()..])
        };
        let pattern = if let Some(v) = prefixed("DNS:") {
            Self::Dns(v.to_owned())
        } else if let Some(v) = prefixed("email:") {
            Self::Email(v.to_owned())
        } else if let Some(v) = prefixed("URI:") {
            Self::Uri(v.to_owned())
        } else if let Some(v) = prefixed("IP Address:").or_else(|| prefixed("IP:")) {
            Self::Ip(v.trim().parse().map_err(|_| invalid())?)
        } else {
            Self::Any(text.to_owned())
        };
        match &pattern {
            Self::Dns(v) | Self::Email(v) | Self::Uri(v) | Self::Any(v) if v.is_empty() => {
                Err(invalid())
            }
            _ => Ok(pattern),
        }
    }

    fn matches(&self, san: &GeneralName<'_>) -> bool {
        match (self, san) {
            (Self::Dns(p), GeneralName::Dns(v)) => p.eq_ignore_ascii_case(v),
            (Self::Email(p), GeneralName::Email(v)) => p.eq_ignore_ascii_case(v),
            (Self::Uri(p), GeneralName::Uri(v)) => p == v,
            (Self::Ip(p), GeneralName::Ip(v)) => p == v,
            (Self::Any(p), GeneralName::Dns(v) | GeneralName::Email(v)) => {
                p.eq_ignore_ascii_case(v)
            }
            (Self::Any(p), GeneralName::Uri(v)) => p == v,
            (Self::Any(p), GeneralName::Ip(v)) => p.parse::<IpAddr>().is_ok_and(|ip| ip == *v),
            _ => false,
        }
    }
}

/// Allows clients with a matching subject alternative name.
#[derive(Clone, Debug)]
pub struct AllowSan {
    patterns: Vec<SanPattern>,
}

impl Policy for AllowSan {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let hit = ctx
            .cert
            .subject_alt_names()
            .any(|san| self.patterns.iter().any(|p| p.matches(&san)));
        if hit {
            Verdict::Allow
        } else {
            Verdict::deny("no subject alternative name is allowed")
        }
    }
}

/// Allows clients with a SAN matching one pattern: `DNS:name` and `email:addr` (case-
/// insensitive), `URI:uri` (exact), `IP:addr` (v4 or v6, compared as addresses), or a bare
/// value matching any of them.
pub fn allow_san(
    patterns: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<AllowSan, PolicyError> {
    let patterns = patterns
        .into_iter()
        .map(|p| SanPattern::parse(p.as_ref()))
        .collect::<Result<_, _>>()?;
    Ok(AllowSan { patterns })
}

/// Allows clients by email address: an rfc822Name SAN or a subject `emailAddress`,
/// case-insensitive.
#[derive(Clone, Debug)]
pub struct AllowEmail {
    emails: HashSet<String>,
}

impl Policy for AllowEmail {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        if ctx
            .cert
            .email_addresses()
            .any(|e| self.emails.contains(&e.to_ascii_lowercase()))
        {
            Verdict::Allow
        } else {
            Verdict::deny(format!(
                "email not allowed (certificate has {})",
                got(ctx.cert.email_addresses())
            ))
        }
    }
}

/// Allows clients with one of these email addresses.
pub fn allow_email(emails: impl IntoIterator<Item = impl AsRef<str>>) -> AllowEmail {
    AllowEmail {
        emails: emails
            .into_iter()
            .map(|e| e.as_ref().to_ascii_lowercase())
            .collect(),
    }
}

/// A parsed SPIFFE ID: `spiffe://trust-domain/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SpiffeId {
    trust_domain: String,
    path: String,
}

impl SpiffeId {
    /// Parses per the SPIFFE ID spec: lower-case trust domain of `[a-z0-9.-_]`, path
    /// segments of `[A-Za-z0-9.-_]`, none empty, `.` or `..`.
    fn parse(text: &str) -> Result<Self, &'static str> {
        let rest = text
            .get(..9)
            .filter(|s| s.eq_ignore_ascii_case("spiffe://"))
            .map(|_| &text[9..])
            .ok_or("it must start with spiffe://")?;
        let (td, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        Self::check_trust_domain(td)?;
        if path == "/" || path.ends_with('/') {
            return Err("the path must not end with /");
        }
        for seg in path.split('/').skip(1) {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err("path segments must not be empty, . or ..");
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            {
                return Err("path segments may hold only letters, digits, - . _");
            }
        }
        Ok(Self {
            trust_domain: td.to_owned(),
            path: path.to_owned(),
        })
    }

    fn check_trust_domain(td: &str) -> Result<(), &'static str> {
        if td.is_empty() {
            return Err("the trust domain is empty");
        }
        if !td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err("the trust domain may hold only lower-case letters, digits, - . _");
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum SpiffeRule {
    Exact(SpiffeId),
    Prefix {
        trust_domain: String,
        path_prefix: String,
    },
}

/// Allows clients by SPIFFE ID (the certificate's single `spiffe://` URI SAN).
#[derive(Clone, Debug)]
pub struct AllowSpiffeId {
    rules: Vec<SpiffeRule>,
}

impl Policy for AllowSpiffeId {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let Some(id) = ctx.cert.spiffe_id() else {
            return Verdict::deny("certificate has no single SPIFFE ID");
        };
        let Ok(id) = SpiffeId::parse(id) else {
            return Verdict::deny(format!("certificate's SPIFFE ID {id:?} is malformed"));
        };
        let hit = self.rules.iter().any(|r| match r {
            SpiffeRule::Exact(want) => *want == id,
            SpiffeRule::Prefix {
                trust_domain,
                path_prefix,
            } => {
                *trust_domain == id.trust_domain
                    && id
                        .path
                        .strip_prefix(path_prefix.as_str())
                        .is_some_and(|rest| {
                            rest.is_empty() || rest.starts_with('/') || path_prefix.ends_with('/')
                        })
            }
        });
        if hit {
            Verdict::Allow
        } else {
            Verdict::deny(format!(
                "SPIFFE ID spiffe://{}{} not allowed",
                id.trust_domain, id.path
            ))
        }
    }
}

/// Allows clients whose SPIFFE ID is exactly one of these.
pub fn allow_spiffe_id(
    ids: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<AllowSpiffeId, PolicyError> {
    let rules = ids
        .into_iter()
        .map(|i| {
            SpiffeId::parse(i.as_ref())
                .map(SpiffeRule::Exact)
                .map_err(|reason| PolicyError::InvalidSpiffeId {
                    value: i.as_ref().to_owned(),
                    reason,
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(AllowSpiffeId { rules })
}

/// Allows clients whose SPIFFE ID is in `trust_domain` and whose path starts with
/// `path_prefix` on a segment boundary (`/ns/prod` admits `/ns/prod` and `/ns/prod/sa/x`,
/// not `/ns/production`). An empty prefix admits the whole trust domain.
pub fn allow_spiffe_trust_domain(
    trust_domain: &str,
    path_prefix: &str,
) -> Result<AllowSpiffeId, PolicyError> {
    let td = trust_domain
        .strip_prefix("spiffe://")
        .unwrap_or(trust_domain);
    SpiffeId::check_trust_domain(td).map_err(|reason| PolicyError::InvalidSpiffeId {
        value: trust_domain.to_owned(),
        reason,
    })?;
    if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
        return Err(PolicyError::InvalidSpiffeId {
            value: path_prefix.to_owned(),
            reason: "a path prefix must start with /",
        });
    }
    Ok(AllowSpiffeId {
        rules: vec![SpiffeRule::Prefix {
            trust_domain: td.to_owned(),
            path_prefix: path_prefix.to_owned(),
        }],
    })
}

/// Every policy must allow; the first denial is the answer.
pub struct AllOf {
    policies: Vec<BoxPolicy>,
}

impl Policy for AllOf {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        for p in &self.policies {
            if let Verdict::Deny(d) = p.evaluate(ctx) {
                return Verdict::Deny(d);
            }
        }
        Verdict::Allow
    }
}

/// All must allow (an empty list allows).
pub fn all_of(policies: impl IntoIterator<Item = BoxPolicy>) -> AllOf {
    AllOf {
        policies: policies.into_iter().collect(),
    }
}

/// One policy must allow; if none does, the denial lists each reason and is a 403 if any
/// alternative said 403.
pub struct AnyOf {
    policies: Vec<BoxPolicy>,
}

impl Policy for AnyOf {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let mut reasons = Vec::new();
        let mut status = DenyStatus::Unauthorized;
        for p in &self.policies {
            match p.evaluate(ctx) {
                Verdict::Allow => return Verdict::Allow,
                Verdict::Deny(d) => {
                    if d.status == DenyStatus::Forbidden {
                        status = DenyStatus::Forbidden;
                    }
                    reasons.push(d.reason);
                }
            }
        }
        if reasons.is_empty() {
            return Verdict::deny("no alternative is configured");
        }
        Verdict::Deny(PolicyDenial::new(reasons.join("; ")).with_status(status))
    }
}

/// One must allow (an empty list denies).
pub fn any_of(policies: impl IntoIterator<Item = BoxPolicy>) -> AnyOf {
    AnyOf {
        policies: policies.into_iter().collect(),
    }
}

/// Allows exactly when the inner policy denies.
pub struct Not {
    inner: BoxPolicy,
}

impl Policy for Not {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        match self.inner.evaluate(ctx) {
            Verdict::Allow => Verdict::deny("certificate matches a rule it must not match"),
            Verdict::Deny(_) => Verdict::Allow,
        }
    }
}

/// Inverts a policy.
pub fn not(policy: impl Policy + 'static) -> Not {
    Not {
        inner: Box::new(policy),
    }
}

/// Gives the inner policy's denials another status.
pub struct WithStatus {
    inner: BoxPolicy,
    status: DenyStatus,
}

impl Policy for WithStatus {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        match self.inner.evaluate(ctx) {
            Verdict::Deny(d) => Verdict::Deny(d.with_status(self.status)),
            Verdict::Allow => Verdict::Allow,
        }
    }
}

/// Allows everyone whose chain verified. For servers whose only check is the CA.
pub fn allow_any() -> impl Policy + Clone {
    |_: &PolicyContext<'_>| Verdict::Allow
}

#[cfg(test)]
mod tests;
