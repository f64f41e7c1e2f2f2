//! Which client keys certauth authenticates: one table, read by the deferred TLS verifier
//! (which signatures it checks) and by the decision (which keys it refuses).
//!
//! A client proves it holds its certificate's key by signing the handshake. The TLS
//! provider can check that signature for some key types only (ring: RSA, P-256, P-384,
//! Ed25519; aws-lc-rs adds P-521). Node's TLS server lets every key through. certauth
//! finishes the handshake for the others too, so that the client gets a 401 with a code
//! instead of a TLS alert, but then it never authenticates them:
//!
//! - [`VerifyError::WeakKey`] (`WEAK_KEY`): RSA under [`MIN_RSA_BITS`].
//! - [`VerifyError::UnsupportedKey`] (`UNSUPPORTED_KEY_TYPE`): a key type the provider cannot
//!   verify (P-521 on ring, Ed448, RSA-PSS keys), or one certauth never accepts: DSA, EC
//!   curves other than P-256, P-384 and P-521 (P-192, secp256k1, brainpool), RSA over
//!   [`MAX_RSA_BITS`].
//!
//! The same table applies in every mode: chain verification ([`crate::verify`], so
//! `certauth verify` and header mode) refuses with [`KeySupport::ALL`] (someone else checked
//! possession, only the algorithm and strength count); the TLS decision with the provider's
//! support.
//!
//! A certificate's key is judged once ([`judge`], the only maker of a [`KeyVerdict`]), on
//! first use, and the parsed certificate keeps the verdict: chain verification and the
//! decision ask the same one with their support, and a TLS connection's verified leaf (kept
//! by its memo and the verifier's cache) is judged once per connection at most. The TLS
//! verifier asks only when its provider failed to verify the client's signature.
//!
//! The invariant the two readers keep: the TLS verifier excuses a signature only for a key
//! that [`check`] refuses with the support the decision uses. The decision's support is
//! [`KeySupport::COMMON`] (what every provider verifies) unless the adapter passes the
//! handshake's own (`tls::TlsPeer::of` reads it from the connection),
//! and the verifier never skips a key in [`KeySupport::COMMON`].

use std::fmt;

use crate::cert::{ClientCertificate, PublicKeyAlgorithm};
use crate::verify::VerifyError;

/// The smallest RSA modulus accepted, in bits (as rustls' providers verify).
pub(crate) const MIN_RSA_BITS: u32 = 2048;
/// The largest RSA modulus accepted, in bits (as rustls' providers verify).
pub(crate) const MAX_RSA_BITS: u32 = 8192;

/// A kind of client key a provider may verify signatures for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum KeyKind {
    /// RSA (rsaEncryption), PKCS#1 v1.5 or PSS signatures.
    Rsa,
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
    /// ECDSA on P-521.
    P521,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
    /// RSA restricted to PSS (id-RSASSA-PSS). No rustls provider verifies its handshake
    /// signatures; a proxy's TLS stack may.
    RsaPss,
}

impl KeyKind {
    const fn bit(self) -> u8 {
        match self {
            Self::Rsa => 1,
            Self::P256 => 1 << 1,
            Self::P384 => 1 << 2,
            Self::P521 => 1 << 3,
            Self::Ed25519 => 1 << 4,
            Self::Ed448 => 1 << 5,
            Self::RsaPss => 1 << 6,
        }
    }
}

/// A set of [`KeyKind`]s whose handshake signatures are verified.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeySupport(u8);

impl KeySupport {
    /// None.
    pub(crate) const NONE: Self = Self(0);
    /// What every rustls provider verifies (ring and aws-lc-rs): RSA, P-256, P-384,
    /// Ed25519. The decision's default.
    pub(crate) const COMMON: Self = Self::NONE
        .with(KeyKind::Rsa)
        .with(KeyKind::P256)
        .with(KeyKind::P384)
        .with(KeyKind::Ed25519);

    /// Every kind: where someone else checked possession (a proxy's TLS stack, or
    /// `certauth verify`), only strength and the curve or algorithm count.
    pub(crate) const ALL: Self = Self::COMMON
        .with(KeyKind::P521)
        .with(KeyKind::Ed448)
        .with(KeyKind::RsaPss);

    /// With `kind` added.
    pub(crate) const fn with(self, kind: KeyKind) -> Self {
        Self(self.0 | kind.bit())
    }

    /// Whether `kind` is in the set.
    pub(crate) const fn contains(self, kind: KeyKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Both sets together.
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    pub(crate) const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// What both sets hold.
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    pub(crate) const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The set as one byte (a session ticket carries it: `tls::resumption_data`).
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    pub(crate) const fn to_byte(self) -> u8 {
        self.0
    }

    /// The set a byte of [`Self::to_byte`] names (unknown bits ignored).
    #[cfg_attr(not(feature = "rustls"), allow(dead_code))]
    pub(crate) const fn from_byte(byte: u8) -> Self {
        Self(byte & Self::ALL.0)
    }
}

impl fmt::Debug for KeySupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALL: [KeyKind; 7] = [
            KeyKind::Rsa,
            KeyKind::P256,
            KeyKind::P384,
            KeyKind::P521,
            KeyKind::Ed25519,
            KeyKind::Ed448,
            KeyKind::RsaPss,
        ];
        f.debug_set()
            .entries(ALL.iter().filter(|k| self.contains(**k)))
            .finish()
    }
}

impl Default for KeySupport {
    fn default() -> Self {
        Self::COMMON
    }
}

/// The key's kind and size in words, for logs.
fn describe(alg: PublicKeyAlgorithm) -> String {
    match alg {
        PublicKeyAlgorithm::Rsa { bits } => format!("RSA {bits} bits"),
        PublicKeyAlgorithm::RsaPss { bits } => format!("RSA-PSS (id-RSASSA-PSS) {bits} bits"),
        PublicKeyAlgorithm::P256 => "ECDSA P-256".into(),
        PublicKeyAlgorithm::P384 => "ECDSA P-384".into(),
        PublicKeyAlgorithm::P521 => "ECDSA P-521".into(),
        PublicKeyAlgorithm::OtherCurve => "ECDSA on another curve".into(),
        PublicKeyAlgorithm::Ed25519 => "Ed25519".into(),
        PublicKeyAlgorithm::Ed448 => "Ed448".into(),
        _ => "of an unknown algorithm".into(),
    }
}

/// The table's judgement of one certificate's key: what the key is and whether certauth
/// ever authenticates it, made once per parsed certificate ([`judge`] is the only maker;
/// `ClientCertificate::key_verdict` keeps it) and asked with each reader's support
/// ([`Self::under`]). A TLS connection's verified leaf is parsed once (its memo keeps it for
/// later requests), so its key is judged once: chain verification and the decision read
/// the same verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyVerdict {
    alg: PublicKeyAlgorithm,
    judged: Judged,
}

/// What the table makes of a key, before any support is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judged {
    /// RSA (either form) under [`MIN_RSA_BITS`]: `WEAK_KEY` whatever the support.
    Weak,
    /// A key certauth never accepts: `UNSUPPORTED_KEY_TYPE` whatever the support.
    Never,
    /// A key of this kind: accepted where the support holds it.
    Kind(KeyKind),
}

impl KeyVerdict {
    /// Whether certauth authenticates this key when the handshake verified signatures for
    /// `support` ([`KeySupport::ALL`] where someone else checked possession).
    pub(crate) fn under(self, support: KeySupport) -> Result<(), VerifyError> {
        match self.judged {
            Judged::Weak => Err(VerifyError::WeakKey {
                key: describe(self.alg),
            }),
            Judged::Kind(kind) if support.contains(kind) => Ok(()),
            Judged::Kind(_) | Judged::Never => Err(VerifyError::UnsupportedKey {
                key: describe(self.alg),
            }),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// How many keys [`judge`] judged on this thread (tests count a connection's).
    static JUDGED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many keys were judged on this thread so far.
#[cfg(test)]
pub(crate) fn judged() -> usize {
    JUDGED.with(std::cell::Cell::get)
}

/// The table's judgement of a key of algorithm `alg`. Only `ClientCertificate::key_verdict`
/// calls it, once per parsed certificate.
pub(crate) fn judge(alg: PublicKeyAlgorithm) -> KeyVerdict {
    #[cfg(test)]
    JUDGED.with(|n| n.set(n.get() + 1));
    let judged = match alg {
        PublicKeyAlgorithm::Rsa { bits } | PublicKeyAlgorithm::RsaPss { bits }
            if bits < MIN_RSA_BITS =>
        {
            Judged::Weak
        }
        PublicKeyAlgorithm::Rsa { bits } if bits <= MAX_RSA_BITS => Judged::Kind(KeyKind::Rsa),
        PublicKeyAlgorithm::RsaPss { bits } if bits <= MAX_RSA_BITS => {
            Judged::Kind(KeyKind::RsaPss)
        }
        PublicKeyAlgorithm::P256 => Judged::Kind(KeyKind::P256),
        PublicKeyAlgorithm::P384 => Judged::Kind(KeyKind::P384),
        PublicKeyAlgorithm::P521 => Judged::Kind(KeyKind::P521),
        PublicKeyAlgorithm::Ed25519 => Judged::Kind(KeyKind::Ed25519),
        PublicKeyAlgorithm::Ed448 => Judged::Kind(KeyKind::Ed448),
        _ => Judged::Never,
    };
    KeyVerdict { alg, judged }
}

/// Whether certauth authenticates the key of `cert` when the handshake verified signatures
/// for `support`: its verdict ([`ClientCertificate::key_verdict`], judged on first use and
/// kept by every clone) under `support`.
pub(crate) fn check(cert: &ClientCertificate, support: KeySupport) -> Result<(), VerifyError> {
    cert.key_verdict().under(support)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
