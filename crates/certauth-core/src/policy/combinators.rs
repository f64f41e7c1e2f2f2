//! [`all_of`], [`any_of`], [`not`]: policies of policies.

use super::*;

/// Every policy must allow; the first denial that answers is the answer.
///
/// An indeterminate denial (a rule that could not evaluate the certificate) is the answer
/// only when no other rule answers no: "unknown and no" is no, "unknown and yes" is unknown.
pub(crate) struct AllOf {
    policies: Vec<BoxPolicy>,
}

impl Policy for AllOf {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let mut unknown = None;
        for p in &self.policies {
            match p.evaluate(ctx) {
                Verdict::Allow => {}
                Verdict::Deny(d) if d.indeterminate => {
                    unknown.get_or_insert(d);
                }
                Verdict::Deny(d) => return Verdict::Deny(d),
            }
        }
        unknown.map_or(Verdict::Allow, Verdict::Deny)
    }
}

/// All must allow (an empty list allows; the policy file refuses an empty `all_of`); the
/// first denial that answers is the answer.
///
/// An indeterminate denial (a rule that could not evaluate the certificate) is the answer
/// only when no other rule answers no: "unknown and no" is no, "unknown and yes" is unknown.
pub fn all_of(policies: impl IntoIterator<Item = BoxPolicy>) -> impl Policy + 'static {
    AllOf {
        policies: policies.into_iter().collect(),
    }
}

/// One policy must allow; if none does, the denial lists each reason and is a 403 if any
/// alternative said 403.
pub(crate) struct AnyOf {
    policies: Vec<BoxPolicy>,
}

impl Policy for AnyOf {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        let mut reasons = Vec::new();
        let mut status = DenyStatus::Unauthorized;
        let mut indeterminate = false;
        for p in &self.policies {
            match p.evaluate(ctx) {
                Verdict::Allow => return Verdict::Allow,
                Verdict::Deny(d) => {
                    if d.status == DenyStatus::Forbidden {
                        status = DenyStatus::Forbidden;
                    }
                    // "unknown or no" is unknown: `not` must not turn it into an allow.
                    indeterminate |= d.indeterminate;
                    reasons.push(d.reason);
                }
            }
        }
        if reasons.is_empty() {
            return Verdict::deny("no alternative is configured");
        }
        Verdict::Deny(PolicyDenial {
            status,
            reason: reasons.join("; ").into(),
            indeterminate,
        })
    }
}

/// One must allow (an empty list denies); if none does, the denial lists each reason and
/// is a 403 if any alternative said 403.
pub fn any_of(policies: impl IntoIterator<Item = BoxPolicy>) -> impl Policy + 'static {
    AnyOf {
        policies: policies.into_iter().collect(),
    }
}

/// Allows exactly when the inner policy denies because the certificate does not match; a
/// denial because the inner policy could not evaluate the certificate stays a denial.
pub(crate) struct Not {
    inner: BoxPolicy,
}

impl Policy for Not {
    fn evaluate(&self, ctx: &PolicyContext<'_>) -> Verdict {
        match self.inner.evaluate(ctx) {
            Verdict::Allow => Verdict::deny("certificate matches a rule it must not match"),
            Verdict::Deny(d) if d.indeterminate => Verdict::Deny(d),
            Verdict::Deny(_) => Verdict::Allow,
        }
    }
}

/// Inverts a policy: allows the certificates it does not match (exactly when the inner
/// policy denies because the certificate does not match), and denies the ones it matches
/// or cannot evaluate ([`PolicyDenial::is_indeterminate`]).
///
/// A ban on a fingerprint (`not(allow_fingerprints(..))`) is escaped by re-encoding the
/// certificate's signature: ban with [`allow_signed_fingerprints`], a serial with an issuer,
/// or a CRL instead.
pub fn not(policy: impl Policy + 'static) -> impl Policy + 'static {
    Not {
        inner: Box::new(policy),
    }
}

/// Gives the inner policy's denials another status.
pub(crate) struct WithStatus {
    pub(super) inner: BoxPolicy,
    pub(super) status: DenyStatus,
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
