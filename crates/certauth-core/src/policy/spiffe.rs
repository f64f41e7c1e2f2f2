//! SPIFFE IDs, read as the X.509-SVID specification and go-spiffe read them, and the rules
//! on them ([`allow_spiffe_id`], [`allow_spiffe_trust_domain`]).
//!
//! A certificate is an X.509-SVID when it carries exactly one URI SAN and that URI is a
//! SPIFFE ID with a path (X.509-SVID §2, §3.1, §5.2): `spiffe://` in lower case, a lower-case
//! trust domain of `[a-z0-9.-_]`, path segments of `[A-Za-z0-9.-_]`, none empty, `.` or `..`,
//! no trailing `/`, no percent-encoding, no query or fragment. A certificate with a `spiffe`
//! URI that breaks any of these (or with more than one URI SAN beside it) cannot be
//! evaluated: SPIFFE rules deny it, inside `not` too.

use super::*;

/// A parsed SPIFFE ID: `spiffe://trust-domain/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SpiffeId {
    trust_domain: String,
    path: String,
}

impl SpiffeId {
    /// Parses a leaf SPIFFE ID per the SPIFFE ID spec, with the non-empty path X.509-SVID
    /// §3.1 requires of a leaf.
    pub(crate) fn parse(text: &str) -> Result<Self, &'static str> {
        let rest = match text.strip_prefix("spiffe://") {
            Some(rest) => rest,
            None if has_spiffe_scheme(text) => {
                return Err("the scheme must be `spiffe://` in lower case");
            }
            None => return Err("it must start with spiffe://"),
        };
        let (td, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        check_trust_domain(td)?;
        if path.is_empty() {
            return Err(
                "it has no path: `spiffe://trust-domain` names the trust domain, not a \
                 workload (X.509-SVID §3.1)",
            );
        }
        if path.ends_with('/') {
            return Err("the path must not end with /");
        }
        check_segments(path)?;
        Ok(Self {
            trust_domain: td.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// Whether `uri` has the `spiffe` scheme, in any case.
fn has_spiffe_scheme(uri: &str) -> bool {
    uri.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("spiffe:"))
}

/// A trust domain name: lower-case letters, digits, `-`, `.`, `_`.
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

/// The segments of a path that starts with `/`.
fn check_segments(path: &str) -> Result<(), &'static str> {
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
    Ok(())
}

/// What a certificate says about its SPIFFE ID.
pub(crate) enum Svid<'a> {
    /// No `spiffe` URI SAN: not an SVID.
    Absent,
    /// An X.509-SVID: its ID, parsed and as written.
    Id(SpiffeId, &'a str),
    /// A `spiffe` URI SAN that does not make an X.509-SVID: why.
    Invalid(&'static str),
}

/// Reads a certificate's SPIFFE ID as go-spiffe's `x509svid.IDFromCert` does: exactly one
/// URI SAN, which must be a valid SPIFFE ID (here also with a path, as a leaf's must be).
pub(crate) fn read(cert: &ClientCertificate) -> Svid<'_> {
    let mut uris = cert.subject_alt_names().filter_map(|g| match g {
        GeneralName::Uri(u) => Some(u),
        _ => None,
    });
    let Some(first) = uris.next() else {
        return Svid::Absent;
    };
    if let Some(second) = uris.next() {
        // Validators must reject an SVID with more than one URI SAN (X.509-SVID §5.2);
        // URIs none of which is SPIFFE's are not an SVID at all.
        return if has_spiffe_scheme(first)
            || has_spiffe_scheme(second)
            || uris.any(has_spiffe_scheme)
        {
            Svid::Invalid("the certificate has more than one URI SAN (an X.509-SVID has one)")
        } else {
            Svid::Absent
        };
    }
    if !has_spiffe_scheme(first) {
        return Svid::Absent;
    }
    match SpiffeId::parse(first) {
        Ok(id) => Svid::Id(id, first),
        Err(why) => Svid::Invalid(why),
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

impl SpiffeRule {
    fn matches(&self, id: &SpiffeId) -> bool {
        match self {
            Self::Exact(want) => want == id,
            Self::Prefix {
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
        }
    }
}

/// Allows clients by SPIFFE ID (an X.509-SVID's one URI SAN). A certificate without a
/// `spiffe` URI is denied; one whose SPIFFE ID cannot be read (see the module) is denied as
/// indeterminate, so `not` denies it too.
#[derive(Clone, Debug)]
pub(crate) struct AllowSpiffeId {
    rules: Vec<SpiffeRule>,
}

impl Policy for AllowSpiffeId {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let id = match read(ctx.cert) {
            Svid::Absent => return Verdict::deny("certificate has no SPIFFE ID"),
            Svid::Invalid(why) => {
                return Verdict::indeterminate(format!(
                    "certificate's SPIFFE ID cannot be evaluated: {why}"
                ));
            }
            Svid::Id(id, _) => id,
        };
        if self.rules.iter().any(|r| r.matches(&id)) {
            Verdict::Allow
        } else {
            // The ID parsed: only `[A-Za-z0-9.-_/:]`, safe to log.
            Verdict::deny(format!(
                "SPIFFE ID spiffe://{}{} not allowed",
                id.trust_domain, id.path
            ))
        }
    }
}

/// Allows clients whose SPIFFE ID is exactly one of these. Fails on an ID that is not a
/// leaf SPIFFE ID (upper-case scheme or trust domain, no path, a trailing `/`, `%`, …).
pub fn allow_spiffe_id(
    ids: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<impl Policy + Clone + fmt::Debug + 'static, SetupError> {
    let rules = ids
        .into_iter()
        .map(|i| {
            SpiffeId::parse(i.as_ref())
                .map(SpiffeRule::Exact)
                .map_err(|reason| SetupError::InvalidSpiffeId {
                    value: i.as_ref().to_owned(),
                    reason,
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(AllowSpiffeId { rules })
}

/// Allows clients whose SPIFFE ID is in `trust_domain` and whose path starts with
/// `path_prefix` on a segment boundary (`/ns/prod` admits `/ns/prod` and `/ns/prod/sa/x`,
/// not `/ns/production`). An empty prefix admits every workload of the trust domain, never
/// the trust domain's own ID (`spiffe://example.org`, which no leaf may carry). Fails on a
/// prefix that does not start with `/` or has an empty, `.` or `..` segment (it could never
/// match).
pub fn allow_spiffe_trust_domain(
    trust_domain: &str,
    path_prefix: &str,
) -> Result<impl Policy + Clone + fmt::Debug + 'static, SetupError> {
    let td = trust_domain
        .strip_prefix("spiffe://")
        .unwrap_or(trust_domain);
    check_trust_domain(td).map_err(|reason| SetupError::InvalidSpiffeId {
        value: trust_domain.to_owned(),
        reason,
    })?;
    let prefix_error = |reason| SetupError::InvalidSpiffeId {
        value: path_prefix.to_owned(),
        reason,
    };
    if !path_prefix.is_empty() {
        if !path_prefix.starts_with('/') {
            return Err(prefix_error("a path prefix must start with /"));
        }
        // A trailing `/` is allowed (`/ns/` admits what is under `/ns`).
        let segments = path_prefix.strip_suffix('/').unwrap_or(path_prefix);
        check_segments(segments).map_err(prefix_error)?;
    }
    Ok(AllowSpiffeId {
        rules: vec![SpiffeRule::Prefix {
            trust_domain: td.to_owned(),
            path_prefix: path_prefix.to_owned(),
        }],
    })
}
