//! Policies: who, among clients whose chain verified, is let in.
//!
//! A [`Policy`] sees the certificate, the verified chain (when there is one) and the request
//! ([`PolicyContext`]) and answers a [`Verdict`]: allow, or deny with a status (401 by
//! default; a policy may choose 403) and a reason for the logs. Closures are policies:
//!
//! ```
//! use certauth_core::policy::{Policy, PolicyContext};
//!
//! // The CN the application reads (`common_name()`: the first), not "any of the CNs".
//! let p = |ctx: &PolicyContext<'_>| ctx.cert.common_name().as_deref() == Some("svc");
//! # fn takes(_: impl Policy) {}
//! # takes(p);
//! ```
//!
//! [`for_path`] applies a policy to part of a site only (`/admin` stricter than the rest).
//!
//! Helpers mirror client-certificate-auth's (`allowCN` → [`allow_cn`], …), but judge every
//! value of a repeated attribute (the one the application reads among them), pin SHA-256
//! fingerprints (not SHA-1), and compare pins in constant time. Combine them with
//! [`all_of`], [`any_of`], [`not`] or [`PolicyExt`].
//!
//! What each rule matches:
//!
//! - `allow_cn`, `allow_ou`, `allow_organization`: every value of the attribute must be
//!   listed; several values of which only some are listed are ambiguous (denied, inside
//!   `not` too). CN compares exactly; O and OU case-insensitively.
//! - `allow_issuer`, `allow_subject`: each named attribute must hold the value (every time
//!   it occurs); attributes not named may hold anything. The issuer is the immediate one.
//! - `allow_serial`: hex, always; not tied to an issuer.
//! - `allow_san`, `allow_email`: any one of the certificate's names may match.
//! - `allow_fingerprints`: the DER as presented, for allow-lists; bans use
//!   `allow_signed_fingerprints` (what the CA signed), a serial with an issuer, or a CRL.
//! - SPIFFE rules: the certificate's one URI SAN, read as the X.509-SVID spec reads it.
//!
//! A rule that cannot evaluate a certificate (a malformed SPIFFE ID, an ambiguous CN)
//! denies it with an indeterminate denial, which [`not`] keeps a denial.
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
use crate::error::SetupError;
use crate::name::{Name, attribute_type};
use crate::verify::VerifiedChain;

pub use crate::http::HeaderMap;
use crate::http::NoHeaders;

mod combinators;
mod context;
mod helpers;
pub(crate) mod path;
pub(crate) mod spiffe;
mod verdict;

pub use combinators::*;
pub use context::*;
pub use helpers::*;
pub use path::for_path;
pub use spiffe::{allow_spiffe_id, allow_spiffe_trust_domain};
pub use verdict::*;

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
    fn and(self, other: impl Policy + 'static) -> impl Policy + 'static {
        all_of([self.boxed(), other.boxed()])
    }

    /// Either may allow.
    fn or(self, other: impl Policy + 'static) -> impl Policy + 'static {
        any_of([self.boxed(), other.boxed()])
    }

    /// Denials are 403 Forbidden instead of 401 (a known client that is not allowed here).
    fn deny_with_403(self) -> impl Policy + 'static {
        WithStatus {
            inner: self.boxed(),
            status: DenyStatus::Forbidden,
        }
    }
}

impl<P: Policy + Sized + 'static> PolicyExt for P {}

/// A future returned by an [`AsyncPolicy`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

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
