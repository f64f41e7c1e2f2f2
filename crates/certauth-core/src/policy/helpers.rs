//! The helpers that mirror client-certificate-auth's (`allowCN` → [`allow_cn`], …), and
//! SPIFFE IDs.

use super::*;

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

// The helpers' unit tests (pins, serials, SANs, SPIFFE IDs).
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
