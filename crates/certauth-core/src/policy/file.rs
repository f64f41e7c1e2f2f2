//! The policy file: every helper and combinator, in TOML (feature `serde`).
//!
//! ```toml
//! # Optional: the status for denials, 401 (default) or 403.
//! status = 403
//!
//! # The rule: one table holding exactly one of the keys below.
//! [allow]
//! any_of = [
//!   { cn = ["trusted-client", "backup-client"] },
//!   { all_of = [
//!       { issuer = { CN = "Example Issuing CA", O = "Example" } },
//!       { ou = ["payments", "ops"] },
//!   ] },
//!   { fingerprint = ["SHA256:9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08"] },
//!   { spiffe_trust_domain = { trust_domain = "example.org", path_prefix = "/ns/prod" } },
//! ]
//! ```
//!
//! | key | value | helper |
//! |---|---|---|
//! | `cn`, `ou`, `organization` | list of names | [`allow_cn`], [`allow_ou`], [`allow_organization`] |
//! | `fingerprint` | list of SHA-256 pins (allow-lists only) | [`allow_fingerprints`] |
//! | `signed_fingerprint` | list of SHA-256 pins of what the CA signed | [`allow_signed_fingerprints`] |
//! | `serial` | list of hex serials | [`allow_serial`] |
//! | `san` | list of `DNS:x`, `email:x`, `URI:x`, `IP:x` or bare values | [`allow_san`] |
//! | `email` | list of addresses | [`allow_email`] |
//! | `spiffe_id` | list of SPIFFE IDs | [`allow_spiffe_id`] |
//! | `spiffe_trust_domain` | `{ trust_domain, path_prefix }` | [`allow_spiffe_trust_domain`] |
//! | `issuer`, `subject` | table of attribute = value | [`allow_issuer`], [`allow_subject`] |
//! | `all_of`, `any_of` | list of rules | [`all_of`], [`any_of`] |
//! | `not` | one rule | [`not`] |
//! | `forbid` | list of rules: a client any of them matches is refused with 403 | [`not`] of [`any_of`], with [`PolicyExt::deny_with_403`] |
//! | `forbid_unless` | one rule: a client it does not match is refused with 403 | [`PolicyExt::deny_with_403`] |
//! | `allow_any` | `true` | [`allow_any`] |
//!
//! `forbid` means deny: `{ forbid = [{ organization = ["Contractors"] }] }` refuses
//! contractors with 403 and lets everyone else past this rule. Before, `forbid` took one
//! rule and meant its opposite (the clients the rule matched were let in, the others
//! refused with 403); a file that still writes `forbid = { ... }` (a table, not a list) is
//! refused at load, saying so: write `forbid_unless` for that meaning.
//!
//! Refused at load, because they would not mean what they read as: an empty list or table
//! (`all_of = []` would let in everyone, `cn = []` no one); `allow_any = false`; a
//! `fingerprint` inside `not` or `forbid` (a ban on a fingerprint is escaped by re-encoding
//! the certificate's signature: ban by `signed_fingerprint`, `serial` with `issuer`, or a
//! CRL); a SPIFFE ID or path prefix that could never match.
//!
//! Rules nest at most [`DEFAULT_MAX_DEPTH`] deep (configurable). Every error names the line
//! and column it is about.
//!
//! [`allow_cn`]: super::allow_cn
//! [`allow_ou`]: super::allow_ou
//! [`allow_organization`]: super::allow_organization
//! [`allow_fingerprints`]: super::allow_fingerprints
//! [`allow_signed_fingerprints`]: super::allow_signed_fingerprints
//! [`allow_serial`]: super::allow_serial
//! [`allow_san`]: super::allow_san
//! [`allow_email`]: super::allow_email
//! [`allow_spiffe_id`]: super::allow_spiffe_id
//! [`allow_spiffe_trust_domain`]: super::allow_spiffe_trust_domain
//! [`allow_issuer`]: super::allow_issuer
//! [`allow_subject`]: super::allow_subject
//! [`all_of`]: super::all_of
//! [`any_of`]: super::any_of
//! [`not`]: super::not
//! [`allow_any`]: super::allow_any
//! [`PolicyExt::deny_with_403`]: super::PolicyExt::deny_with_403

use std::collections::BTreeMap;
use std::fmt;

use crate::error::SetupError;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::{
    BoxPolicy, DenyStatus, Policy, PolicyContext, PolicyExt as _, Verdict, all_of, allow_any,
    allow_cn, allow_email, allow_fingerprints, allow_issuer, allow_organization, allow_ou,
    allow_san, allow_serial, allow_signed_fingerprints, allow_spiffe_id, allow_spiffe_trust_domain,
    allow_subject, any_of, not,
};

/// How deep rules may nest by default (`allow` itself is depth 1).
pub const DEFAULT_MAX_DEPTH: usize = 16;

/// Largest accepted policy file, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    status: Option<Spanned<u16>>,
    allow: Spanned<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RuleSpec {
    Cn(Vec<String>),
    Ou(Vec<String>),
    Organization(Vec<String>),
    Fingerprint(Vec<String>),
    SignedFingerprint(Vec<String>),
    Serial(Vec<String>),
    San(Vec<String>),
    Email(Vec<String>),
    SpiffeId(Vec<String>),
    SpiffeTrustDomain {
        trust_domain: String,
        #[serde(default)]
        path_prefix: String,
    },
    Issuer(BTreeMap<String, String>),
    Subject(BTreeMap<String, String>),
    AllOf(Vec<Spanned<Self>>),
    AnyOf(Vec<Spanned<Self>>),
    Not(Box<Spanned<Self>>),
    Forbid(ForbidList),
    ForbidUnless(Box<Spanned<Self>>),
    AllowAny(bool),
}

/// What changed about `forbid`, for a file written before.
const FORBID_CHANGED: &str = "`forbid` takes a list of rules and refuses (403) the clients \
    they match: `forbid = [{ organization = [\"Contractors\"] }]`. A single rule here \
    (`forbid = { ... }`) is the old form, which meant the opposite: it let in the clients its \
    rule matched and refused the others with 403; to keep that meaning write \
    `forbid_unless = { ... }`";

/// `forbid`'s rules: a list. A table is the old form, refused with [`FORBID_CHANGED`] so a
/// file never silently flips from deny to allow.
struct ForbidList(Vec<Spanned<RuleSpec>>);

impl<'de> Deserialize<'de> for ForbidList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = ForbidList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of rules")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ForbidList, A::Error> {
                let mut rules = Vec::new();
                while let Some(rule) = seq.next_element()? {
                    rules.push(rule);
                }
                Ok(ForbidList(rules))
            }

            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<ForbidList, A::Error> {
                Err(de::Error::custom(FORBID_CHANGED))
            }
        }
        deserializer.deserialize_any(List)
    }
}

/// A loaded policy file ([`from_toml`]).
struct PolicyFile {
    policy: BoxPolicy,
    status: DenyStatus,
}

impl fmt::Debug for PolicyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyFile")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Parses a policy file with the default depth limit: the policy it describes, or where and
/// what is wrong ([`SetupError::PolicyFile`]).
pub fn from_toml(text: &str) -> Result<impl Policy + fmt::Debug + use<>, SetupError> {
    from_toml_with_max_depth(text, DEFAULT_MAX_DEPTH)
}

/// [`from_toml`], for a file whose rules nest at most `max_depth` deep.
pub fn from_toml_with_max_depth(
    text: &str,
    max_depth: usize,
) -> Result<impl Policy + fmt::Debug + use<>, SetupError> {
    PolicyFile::parse(text, max_depth)
}

impl PolicyFile {
    fn parse(text: &str, max_depth: usize) -> Result<Self, SetupError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(SetupError::PolicyFile {
                line: 1,
                column: 1,
                message: format!(
                    "file is {} bytes, over the limit of {MAX_FILE_BYTES}",
                    text.len()
                ),
            });
        }
        let spec: FileSpec = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            SetupError::PolicyFile {
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let status = match &spec.status {
            None => DenyStatus::Unauthorized,
            Some(s) => DenyStatus::from_code(*s.get_ref()).ok_or_else(|| {
                let (line, column) = line_col(text, s.span().start);
                SetupError::PolicyFile {
                    line,
                    column,
                    message: format!("status {} is not 401 or 403", s.get_ref()),
                }
            })?,
        };
        let policy = build(&spec.allow, 1, max_depth, Polarity::Allow, text)?;
        Ok(Self { policy, status })
    }
}

impl Policy for PolicyFile {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        match self.policy.evaluate(ctx) {
            Verdict::Deny(d) if self.status == DenyStatus::Forbidden => {
                Verdict::Deny(d.with_status(DenyStatus::Forbidden))
            }
            v => v,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where a rule sits: under an even (allow) or odd (ban) number of `not` and `forbid`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Polarity {
    Allow,
    Ban,
}

impl Polarity {
    fn flipped(self) -> Self {
        match self {
            Self::Allow => Self::Ban,
            Self::Ban => Self::Allow,
        }
    }
}

/// The rule's name in the file, for messages.
fn keyword(rule: &RuleSpec) -> &'static str {
    match rule {
        RuleSpec::Cn(_) => "cn",
        RuleSpec::Ou(_) => "ou",
        RuleSpec::Organization(_) => "organization",
        RuleSpec::Fingerprint(_) => "fingerprint",
        RuleSpec::SignedFingerprint(_) => "signed_fingerprint",
        RuleSpec::Serial(_) => "serial",
        RuleSpec::San(_) => "san",
        RuleSpec::Email(_) => "email",
        RuleSpec::SpiffeId(_) => "spiffe_id",
        RuleSpec::SpiffeTrustDomain { .. } => "spiffe_trust_domain",
        RuleSpec::Issuer(_) => "issuer",
        RuleSpec::Subject(_) => "subject",
        RuleSpec::AllOf(_) => "all_of",
        RuleSpec::AnyOf(_) => "any_of",
        RuleSpec::Not(_) => "not",
        RuleSpec::Forbid(_) => "forbid",
        RuleSpec::ForbidUnless(_) => "forbid_unless",
        RuleSpec::AllowAny(_) => "allow_any",
    }
}

/// Whether the rule's list or table is empty (what it would mean depends on the rule, and
/// an operator filling in a template reads neither meaning from `[]`).
fn is_empty(rule: &RuleSpec) -> bool {
    match rule {
        RuleSpec::Cn(v)
        | RuleSpec::Ou(v)
        | RuleSpec::Organization(v)
        | RuleSpec::Fingerprint(v)
        | RuleSpec::SignedFingerprint(v)
        | RuleSpec::Serial(v)
        | RuleSpec::San(v)
        | RuleSpec::Email(v)
        | RuleSpec::SpiffeId(v) => v.is_empty(),
        RuleSpec::Issuer(m) | RuleSpec::Subject(m) => m.is_empty(),
        RuleSpec::AllOf(v) | RuleSpec::AnyOf(v) | RuleSpec::Forbid(ForbidList(v)) => v.is_empty(),
        RuleSpec::SpiffeTrustDomain { .. }
        | RuleSpec::Not(_)
        | RuleSpec::ForbidUnless(_)
        | RuleSpec::AllowAny(_) => false,
    }
}

fn build(
    rule: &Spanned<RuleSpec>,
    depth: usize,
    max_depth: usize,
    polarity: Polarity,
    text: &str,
) -> Result<BoxPolicy, SetupError> {
    let at = |message: String| {
        let (line, column) = line_col(text, rule.span().start);
        SetupError::PolicyFile {
            line,
            column,
            message,
        }
    };
    if depth > max_depth {
        return Err(at(format!(
            "rules nest deeper than the limit of {max_depth}"
        )));
    }
    if is_empty(rule.get_ref()) {
        return Err(at(format!(
            "`{}` is empty: an empty rule is refused rather than read as allowing everyone \
             or no one; list what it should match, or remove it",
            keyword(rule.get_ref())
        )));
    }
    let helper = |r: Result<BoxPolicy, SetupError>| r.map_err(|e| at(e.to_string()));
    let children = |rules: &[Spanned<RuleSpec>], polarity: Polarity| {
        rules
            .iter()
            .map(|r| build(r, depth + 1, max_depth, polarity, text))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match rule.get_ref() {
        RuleSpec::Cn(v) => allow_cn(v.iter().cloned()).boxed(),
        RuleSpec::Ou(v) => allow_ou(v.iter().cloned()).boxed(),
        RuleSpec::Organization(v) => allow_organization(v.iter().cloned()).boxed(),
        RuleSpec::Email(v) => allow_email(v).boxed(),
        RuleSpec::Fingerprint(_) if polarity == Polarity::Ban => {
            return Err(at(
                "a `fingerprint` cannot ban a certificate: whoever holds it can change its \
                 fingerprint by re-encoding the signature, without the CA. Pins are for \
                 allow-lists; to ban, use `signed_fingerprint` (SHA-256 of what the CA \
                 signed, `certauth inspect` prints it), `serial` with `issuer`, or a CRL"
                    .into(),
            ));
        }
        RuleSpec::Fingerprint(v) => helper(allow_fingerprints(v).map(|p| p.boxed()))?,
        RuleSpec::SignedFingerprint(v) => helper(allow_signed_fingerprints(v).map(|p| p.boxed()))?,
        RuleSpec::Serial(v) => helper(allow_serial(v).map(|p| p.boxed()))?,
        RuleSpec::San(v) => helper(allow_san(v).map(|p| p.boxed()))?,
        RuleSpec::SpiffeId(v) => helper(allow_spiffe_id(v).map(|p| p.boxed()))?,
        RuleSpec::SpiffeTrustDomain {
            trust_domain,
            path_prefix,
        } => helper(allow_spiffe_trust_domain(trust_domain, path_prefix).map(|p| p.boxed()))?,
        RuleSpec::Issuer(fields) => helper(allow_issuer(fields.clone()).map(|p| p.boxed()))?,
        RuleSpec::Subject(fields) => helper(allow_subject(fields.clone()).map(|p| p.boxed()))?,
        RuleSpec::AllOf(rules) => all_of(children(rules, polarity)?).boxed(),
        RuleSpec::AnyOf(rules) => any_of(children(rules, polarity)?).boxed(),
        RuleSpec::Not(inner) => not(build(
            inner,
            depth + 1,
            max_depth,
            polarity.flipped(),
            text,
        )?)
        .boxed(),
        RuleSpec::Forbid(ForbidList(rules)) => not(any_of(children(rules, polarity.flipped())?))
            .deny_with_403()
            .boxed(),
        RuleSpec::ForbidUnless(inner) => build(inner, depth + 1, max_depth, polarity, text)?
            .deny_with_403()
            .boxed(),
        RuleSpec::AllowAny(true) => allow_any().boxed(),
        RuleSpec::AllowAny(false) => {
            return Err(at(
                "`allow_any = false` allows no one; remove the rule or write the rule you mean"
                    .into(),
            ));
        }
    })
}
