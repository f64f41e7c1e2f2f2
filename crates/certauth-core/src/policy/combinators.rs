//! [`all_of`], [`any_of`], [`not`]: policies of policies.

use super::*;

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
