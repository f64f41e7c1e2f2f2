//! What a policy answers: [`Verdict`], and for a refusal its [`PolicyDenial`].

use super::*;
use crate::response::Status;

/// The HTTP status of a denial: 401 or 403, nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum DenyStatus {
    /// 401: the client is not authenticated as anyone allowed.
    #[default]
    Unauthorized,
    /// 403: the client is known but not allowed here.
    Forbidden,
}

impl DenyStatus {
    /// The numeric status.
    pub(crate) fn code(self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
        }
    }

    /// 401 or 403 (a policy file's `deny_status`).
    #[cfg(any(feature = "serde", test))]
    pub(crate) fn from_code(code: u16) -> Option<Self> {
        match code {
            401 => Some(Self::Unauthorized),
            403 => Some(Self::Forbidden),
            _ => None,
        }
    }
}

/// A policy's refusal.
///
/// A refusal is either an answer ("this certificate does not match") or *indeterminate*:
/// the rule could not evaluate the certificate (a malformed SPIFFE ID, a subject whose
/// several CNs are partly allowed). [`not`] turns an answer into an allow, but keeps an
/// indeterminate refusal a refusal: a rule that cannot read its input never lets a client in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDenial {
    pub(super) status: DenyStatus,
    pub(super) reason: Cow<'static, str>,
    pub(super) indeterminate: bool,
}

impl PolicyDenial {
    /// A 401 with a reason for the logs.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: DenyStatus::Unauthorized,
            reason: reason.into(),
            indeterminate: false,
        }
    }

    /// A 403 with a reason for the logs.
    pub fn forbidden(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: DenyStatus::Forbidden,
            reason: reason.into(),
            indeterminate: false,
        }
    }

    /// A 401 for a certificate the rule could not evaluate: it stays a denial under [`not`].
    pub fn indeterminate(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: DenyStatus::Unauthorized,
            reason: reason.into(),
            indeterminate: true,
        }
    }

    /// Whether the rule could not evaluate the certificate (rather than found it does not
    /// match).
    pub fn is_indeterminate(&self) -> bool {
        self.indeterminate
    }

    /// The same denial with another status.
    pub(crate) fn with_status(mut self, status: DenyStatus) -> Self {
        self.status = status;
        self
    }

    /// The status to answer with: [`Status::Unauthorized`] (401) or [`Status::Forbidden`]
    /// (403), nothing else.
    pub fn status(&self) -> Status {
        match self.status {
            DenyStatus::Unauthorized => Status::Unauthorized,
            DenyStatus::Forbidden => Status::Forbidden,
        }
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

    /// A 401 denial for a certificate the rule could not evaluate
    /// ([`PolicyDenial::indeterminate`]).
    pub fn indeterminate(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Deny(PolicyDenial::indeterminate(reason))
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
