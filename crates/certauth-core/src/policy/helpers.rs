//! The helpers that mirror client-certificate-auth's (`allowCN` → [`allow_cn`], …).

use super::*;

/// Formats the values for a denial reason, briefly.
fn got<'a>(values: impl Iterator<Item = Cow<'a, str>>) -> String {
    let v: Vec<String> = values.take(8).map(|s| format!("{s:?}")).collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

/// Whether an attribute's values compare case-insensitively: O and OU do (as RFC 5280
/// compares names, and so that `not = { ou = ["contractors"] }` also refuses
/// `OU=Contractors`); CN and every other attribute compare exactly.
fn caseless(oid: &[u8]) -> bool {
    oid == crate::oid::known::O || oid == crate::oid::known::OU
}

/// A value as it is compared ([`caseless`]).
fn folded(caseless: bool, value: &str) -> Cow<'_, str> {
    if caseless {
        Cow::Owned(value.to_lowercase())
    } else {
        Cow::Borrowed(value)
    }
}

/// How the values of one attribute compare with a rule.
enum Judged {
    /// At least one value, and every value matches.
    All,
    /// No value matches (or there is none).
    None,
    /// Several values, some matching and some not: the certificate names more than one
    /// identity and the rule cannot say which one the application will read.
    Some,
}

fn judge<'a>(values: impl Iterator<Item = Cow<'a, str>>, matches: impl Fn(&str) -> bool) -> Judged {
    let (mut yes, mut no) = (false, false);
    for v in values {
        if matches(&v) {
            yes = true;
        } else {
            no = true;
        }
    }
    match (yes, no) {
        (true, false) => Judged::All,
        (false, _) => Judged::None,
        (true, true) => Judged::Some,
    }
}

/// Allows a client if every value of one subject attribute is in a set (and there is one).
///
/// A subject with several values of the attribute passes only if every one is allowed: the
/// application reads one of them (`common_name()` reads the first), and the policy must
/// have judged the one it reads. Several values of which only some are allowed are
/// ambiguous: denied as indeterminate, so `not` denies them too (a second CN does not
/// escape a ban).
#[derive(Clone, Debug)]
pub(crate) struct AllowAttribute {
    oid: Cow<'static, [u8]>,
    label: &'static str,
    caseless: bool,
    allowed: HashSet<String>,
}

impl AllowAttribute {
    fn new(
        oid: &'static [u8],
        label: &'static str,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let caseless = caseless(oid);
        Self {
            oid: Cow::Borrowed(oid),
            label,
            caseless,
            allowed: values
                .into_iter()
                .map(|v| folded(caseless, &v.into()).into_owned())
                .collect(),
        }
    }
}

impl Policy for AllowAttribute {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let subject = ctx.cert.subject();
        let values = || {
            subject
                .attributes()
                .filter(|a| a.oid().as_bytes() == &*self.oid)
                .map(|a| a.value())
        };
        match judge(values(), |v| {
            self.allowed.contains(&*folded(self.caseless, v))
        }) {
            Judged::All => Verdict::Allow,
            Judged::None => Verdict::deny(format!(
                "{} not allowed (certificate has {})",
                self.label,
                got(values())
            )),
            Judged::Some => Verdict::indeterminate(format!(
                "{} is ambiguous: only some of the certificate's {} are allowed ({})",
                self.label,
                self.label,
                got(values())
            )),
        }
    }
}

/// Allows a client whose subject's CNs are all in `names` (exact, case-sensitive). A
/// subject with several CNs passes only if every one is listed, so
/// [`ClientCertificate::common_name`] names a client the policy judged. An empty list
/// allows no one.
pub fn allow_cn(
    names: impl IntoIterator<Item = impl Into<String>>,
) -> impl Policy + Clone + fmt::Debug + 'static {
    AllowAttribute::new(crate::oid::known::CN, "CN", names)
}

/// Allows a client whose subject's OUs are all in `units` (case-insensitive; several OUs
/// pass only if every one is listed).
pub fn allow_ou(
    units: impl IntoIterator<Item = impl Into<String>>,
) -> impl Policy + Clone + fmt::Debug + 'static {
    AllowAttribute::new(crate::oid::known::OU, "OU", units)
}

/// Allows a client whose subject's Os are all in `organizations` (case-insensitive;
/// several Os pass only if every one is listed).
pub fn allow_organization(
    organizations: impl IntoIterator<Item = impl Into<String>>,
) -> impl Policy + Clone + fmt::Debug + 'static {
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
pub(crate) fn parse_sha256_pin(text: &str) -> Result<[u8; 32], SetupError> {
    let err = || SetupError::InvalidFingerprint {
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

/// Allows a client whose certificate's SHA-256 fingerprint (or signed fingerprint) is
/// pinned ([`allow_fingerprints`], [`allow_signed_fingerprints`]).
#[derive(Clone, Debug)]
pub(crate) struct AllowFingerprints {
    pins: HashSet<Sha256Pin>,
    signed: bool,
}

impl Policy for AllowFingerprints {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let (digest, what) = if self.signed {
            (
                ctx.cert.tbs_sha256(),
                "signed fingerprint not pinned (certificate's signed",
            )
        } else {
            (
                ctx.cert.fingerprint_sha256(),
                "fingerprint not pinned (certificate's",
            )
        };
        if self.pins.contains(&Sha256Pin(*digest)) {
            Verdict::Allow
        } else {
            Verdict::deny(format!(
                "{what} SHA-256 is {})",
                crate::cert::colon_hex(digest)
            ))
        }
    }
}

fn parse_pins(
    pins: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<HashSet<Sha256Pin>, SetupError> {
    pins.into_iter()
        .map(|p| parse_sha256_pin(p.as_ref()).map(Sha256Pin))
        .collect()
}

/// Allows clients by SHA-256 fingerprint of the certificate as presented (`SHA256:AB:CD:…`,
/// what `openssl x509 -fingerprint -sha256` and `certauth inspect` print; prefix, colons and
/// case optional). Fails on a pin that is not 64 hex digits, such as a SHA-1 fingerprint.
/// O(1) per lookup, constant-time comparison.
///
/// For allow-lists only: whoever holds a certificate can change its fingerprint without the
/// CA (an ECDSA signature's `s` replaced by `n − s` still verifies), which takes it off an
/// allow-list but also out of a ban. Ban with [`allow_signed_fingerprints`] under [`not`],
/// a serial and issuer, or a CRL.
pub fn allow_fingerprints(
    pins: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<impl Policy + Clone + fmt::Debug + 'static, SetupError> {
    Ok(AllowFingerprints {
        pins: parse_pins(pins)?,
        signed: false,
    })
}

/// Allows clients by signed fingerprint: SHA-256 of the part of the certificate the CA
/// signed (the TBSCertificate, [`ClientCertificate::tbs_sha256`]; `certauth inspect` prints
/// it as `Signed SHA-256`). Re-encoding the signature or the outer structure leaves it
/// unchanged, so it holds for bans (`not(allow_signed_fingerprints(..))`); it names one
/// issued certificate, not its key (a certificate re-issued for the same key differs).
pub fn allow_signed_fingerprints(
    pins: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<impl Policy + Clone + fmt::Debug + 'static, SetupError> {
    Ok(AllowFingerprints {
        pins: parse_pins(pins)?,
        signed: true,
    })
}

/// Which name `AllowName` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WhichName {
    Issuer,
    Subject,
}

/// Allows a client whose issuer (or subject) has every listed attribute value.
#[derive(Clone, Debug)]
pub(crate) struct AllowName {
    which: WhichName,
    fields: Vec<(String, Cow<'static, [u8]>, String)>,
}

impl AllowName {
    fn build(
        which: WhichName,
        fields: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Result<Self, SetupError> {
        let fields: Vec<_> = fields
            .into_iter()
            .map(|(k, v)| {
                let k = k.into();
                let oid = attribute_type(&k)
                    .ok_or_else(|| SetupError::UnknownAttribute { name: k.clone() })?;
                let v = folded(caseless(&oid), &v.into()).into_owned();
                Ok((k, oid, v))
            })
            .collect::<Result<_, SetupError>>()?;
        if fields.is_empty() {
            return Err(SetupError::EmptyRule {
                rule: match which {
                    WhichName::Issuer => "issuer",
                    WhichName::Subject => "subject",
                },
            });
        }
        Ok(Self { which, fields })
    }
}

impl Policy for AllowName {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let (name, which): (Name<'_>, _) = match self.which {
            WhichName::Issuer => (ctx.cert.issuer(), "issuer"),
            WhichName::Subject => (ctx.cert.subject(), "subject"),
        };
        let mut ambiguous = None;
        for (label, oid, expected) in &self.fields {
            let caseless = caseless(oid);
            let values = || {
                name.attributes()
                    .filter(|a| a.oid().as_bytes() == &**oid)
                    .map(|a| a.value())
            };
            match judge(values(), |v| *folded(caseless, v) == **expected) {
                Judged::All => {}
                Judged::None => {
                    return Verdict::deny(format!(
                        "{which} {label} is not {expected:?} (certificate has {})",
                        got(values())
                    ));
                }
                Judged::Some => {
                    ambiguous.get_or_insert_with(|| {
                        PolicyDenial::indeterminate(format!(
                            "{which} {label} is ambiguous: only some of its values are \
                             {expected:?} ({})",
                            got(values())
                        ))
                    });
                }
            }
        }
        ambiguous.map_or(Verdict::Allow, Verdict::Deny)
    }
}

/// Allows a client whose issuer has every listed `(attribute, value)`; attributes by short
/// name (`CN`, `O`, …) or dotted OID. Attributes not listed may hold anything; an attribute
/// listed that the name holds several times must hold the value every time. Only the
/// immediate issuer (the name in the client's certificate, which the verified chain links)
/// is checked, not the CAs above it. Values compare as in [`allow_cn`] and [`allow_ou`]:
/// exactly, except O and OU, case-insensitively. Fails on an empty list.
pub fn allow_issuer(
    fields: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
) -> Result<impl Policy + Clone + fmt::Debug + 'static, SetupError> {
    AllowName::build(WhichName::Issuer, fields)
}

/// Allows a client whose subject has every listed `(attribute, value)`, as
/// [`allow_issuer`] reads the issuer. Fails on an empty list.
pub fn allow_subject(
    fields: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
) -> Result<impl Policy + Clone + fmt::Debug + 'static, SetupError> {
    AllowName::build(WhichName::Subject, fields)
}

/// Normalizes a serial for comparison: a sign if negative, hex digits, upper case, no
/// leading zeros (`-01` and `-0x1` are `-1`; `-0` is `0`).
fn normalize_serial(text: &str) -> Option<String> {
    let t = text.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
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
    Some(match (trimmed.is_empty(), negative) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{trimmed}"),
        (false, false) => trimmed.to_owned(),
    })
}

/// The policy [`allow_serial`] returns.
#[derive(Clone, Debug)]
pub(crate) struct AllowSerial {
    serials: HashSet<String>,
}

impl Policy for AllowSerial {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let serial = ctx.cert.serial_hex();
        // serial_hex prints a sign, hex digits or `0`, which always normalize.
        if normalize_serial(&serial).is_some_and(|s| self.serials.contains(&s)) {
            Verdict::Allow
        } else {
            Verdict::deny(format!("serial {serial} not allowed"))
        }
    }
}

/// Allows clients whose serial number is listed: hex, always (`10` is sixteen, as OpenSSL
/// and Node print serials); colons, case, a `0x` and leading zeros ignored; a leading `-`
/// names a negative (non-conforming) serial. A serial is not tied to an issuer: combine
/// with [`allow_issuer`] when several CAs are trusted.
pub fn allow_serial(
    serials: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<impl Policy + Clone + fmt::Debug + 'static, SetupError> {
    let serials = serials
        .into_iter()
        .map(|s| {
            normalize_serial(s.as_ref()).ok_or_else(|| SetupError::InvalidSerial {
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
    fn parse(text: &str) -> Result<Self, SetupError> {
        let invalid = || SetupError::InvalidSan {
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
pub(crate) struct AllowSan {
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

/// Allows clients with a SAN matching one pattern (any of the certificate's SANs may match):
/// `DNS:name` and `email:addr` (case-insensitive), `URI:uri` (exact), `IP:addr` (v4 or v6,
/// compared as addresses), or a bare value, which matches a SAN of any of those types with
/// that text (a bare `alice@example.com` also matches a DNS SAN `alice@example.com`: write
/// the prefix to say which). Patterns are literal: `DNS:*.example.com` matches only a SAN
/// that is itself `*.example.com`, not the names it would cover.
pub fn allow_san(
    patterns: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<impl Policy + Clone + fmt::Debug + 'static, SetupError> {
    let patterns = patterns
        .into_iter()
        .map(|p| SanPattern::parse(p.as_ref()))
        .collect::<Result<_, _>>()?;
    Ok(AllowSan { patterns })
}

/// Allows clients by email address: an rfc822Name SAN or a subject `emailAddress`,
/// case-insensitive.
#[derive(Clone, Debug)]
pub(crate) struct AllowEmail {
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
pub fn allow_email(
    emails: impl IntoIterator<Item = impl AsRef<str>>,
) -> impl Policy + Clone + fmt::Debug + 'static {
    AllowEmail {
        emails: emails
            .into_iter()
            .map(|e| e.as_ref().to_ascii_lowercase())
            .collect(),
    }
}

// The helpers' unit tests (pins, serials, SANs, SPIFFE IDs).
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
