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
//! | `fingerprint` | list of SHA-256 pins | [`allow_fingerprints`] |
//! | `serial` | list of hex serials | [`allow_serial`] |
//! | `san` | list of `DNS:x`, `email:x`, `URI:x`, `IP:x` or bare values | [`allow_san`] |
//! | `email` | list of addresses | [`allow_email`] |
//! | `spiffe_id` | list of SPIFFE IDs | [`allow_spiffe_id`] |
//! | `spiffe_trust_domain` | `{ trust_domain, path_prefix }` | [`allow_spiffe_trust_domain`] |
//! | `issuer`, `subject` | table of attribute = value | [`allow_issuer`], [`allow_subject`] |
//! | `all_of`, `any_of` | list of rules | [`all_of`], [`any_of`] |
//! | `not` | one rule | [`not`] |
//! | `forbid` | one rule, whose denials become 403 | [`PolicyExt::deny_with`] |
//! | `allow_any` | `true` | [`allow_any`] |
//!
//! Rules nest at most [`DEFAULT_MAX_DEPTH`] deep (configurable). Every error names the line
//! and column it is about.
//!
//! [`allow_cn`]: super::allow_cn
//! [`allow_ou`]: super::allow_ou
//! [`allow_organization`]: super::allow_organization
//! [`allow_fingerprints`]: super::allow_fingerprints
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
//! [`PolicyExt::deny_with`]: super::PolicyExt::deny_with

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use super::{
    BoxPolicy, DenyStatus, Policy, PolicyContext, PolicyError, PolicyExt as _, Verdict, all_of,
    allow_any, allow_cn, allow_email, allow_fingerprints, allow_issuer, allow_organization,
    allow_ou, allow_san, allow_serial, allow_spiffe_id, allow_spiffe_trust_domain, allow_subject,
    any_of, not,
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
    Forbid(Box<Spanned<Self>>),
    AllowAny(bool),
}

/// A policy file that could not be loaded: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyFileError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy file line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for PolicyFileError {}

/// A loaded policy file. It is a [`Policy`].
pub struct PolicyFile {
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

impl PolicyFile {
    /// Parses a policy file with the default depth limit.
    pub fn from_toml(text: &str) -> Result<Self, PolicyFileError> {
        Self::from_toml_with_max_depth(text, DEFAULT_MAX_DEPTH)
    }

    /// Parses a policy file whose rules nest at most `max_depth` deep.
    pub fn from_toml_with_max_depth(text: &str, max_depth: usize) -> Result<Self, PolicyFileError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(PolicyFileError {
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
            PolicyFileError {
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let status = match &spec.status {
            None => DenyStatus::Unauthorized,
            Some(s) => DenyStatus::from_code(*s.get_ref()).ok_or_else(|| {
                let (line, column) = line_col(text, s.span().start);
                PolicyFileError {
                    line,
                    column,
                    message: format!("status {} is not 401 or 403", s.get_ref()),
                }
            })?,
        };
        let policy = build(&spec.allow, 1, max_depth, text)?;
        Ok(Self { policy, status })
    }

    /// The status denials carry.
    pub fn status(&self) -> DenyStatus {
        self.status
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

fn build(
    rule: &Spanned<RuleSpec>,
    depth: usize,
    max_depth: usize,
    text: &str,
) -> Result<BoxPolicy, PolicyFileError> {
    let at = |message: String| {
        let (line, column) = line_col(text, rule.span().start);
        PolicyFileError {
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
    let helper = |r: Result<BoxPolicy, PolicyError>| r.map_err(|e| at(e.to_string()));
    let children = |rules: &[Spanned<RuleSpec>]| {
        rules
            .iter()
            .map(|r| build(r, depth + 1, max_depth, text))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match rule.get_ref() {
        RuleSpec::Cn(v) => allow_cn(v.iter().cloned()).boxed(),
        RuleSpec::Ou(v) => allow_ou(v.iter().cloned()).boxed(),
        RuleSpec::Organization(v) => allow_organization(v.iter().cloned()).boxed(),
        RuleSpec::Email(v) => allow_email(v).boxed(),
        RuleSpec::Fingerprint(v) => helper(allow_fingerprints(v).map(|p| p.boxed()))?,
        RuleSpec::Serial(v) => helper(allow_serial(v).map(|p| p.boxed()))?,
        RuleSpec::San(v) => helper(allow_san(v).map(|p| p.boxed()))?,
        RuleSpec::SpiffeId(v) => helper(allow_spiffe_id(v).map(|p| p.boxed()))?,
        RuleSpec::SpiffeTrustDomain {
            trust_domain,
            path_prefix,
        } => helper(allow_spiffe_trust_domain(trust_domain, path_prefix).map(|p| p.boxed()))?,
        RuleSpec::Issuer(fields) => helper(allow_issuer(fields.clone()).map(|p| p.boxed()))?,
        RuleSpec::Subject(fields) => helper(allow_subject(fields.clone()).map(|p| p.boxed()))?,
        RuleSpec::AllOf(rules) => all_of(children(rules)?).boxed(),
        RuleSpec::AnyOf(rules) => any_of(children(rules)?).boxed(),
        RuleSpec::Not(inner) => not(build(inner, depth + 1, max_depth, text)?).boxed(),
        RuleSpec::Forbid(inner) => build(inner, depth + 1, max_depth, text)?
            .deny_with(DenyStatus::Forbidden)
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
