//! # certauth-core
//!
//! The sans-IO core of certauth: everything that decides whether a TLS client may in, as
//! plain functions of bytes, a certificate chain and a time.
//!
//! ```text
//! peer chain (DER) ──► ClientCertificate::from_der ──► ChainVerifier::verify(chain, now)
//!                                                          │
//!                                          VerifiedChain ◄─┘ or VerifyError (stable code)
//!                                                │
//! request (method, path, headers, address) ──► Policy::evaluate(PolicyContext) ──► Verdict
//! ```
//!
//! ## What it does not do
//!
//! No I/O, no sockets, no files, no async runtime, and no clock: "now" is always an
//! argument (`clippy.toml` bans `SystemTime::now` here). It does not pick a crypto
//! provider either: signature algorithms are passed in as a value (a rustls
//! `CryptoProvider`'s `signature_verification_algorithms.all`, or webpki's constants).
//! The runtime adapters (`certauth-tokio`, `certauth-smol`, `certauth-hyper`) move bytes
//! and call this crate.
//!
//! ## Modules
//!
//! - [`cert`]: [`ClientCertificate`], a validated, lazily decoded view over DER: names in
//!   every string type real CAs use, SANs, serial, validity, key usage, EKU, fingerprints.
//! - [`verify`]: [`TrustAnchors`], [`ChainVerifier`] (rustls-webpki, CRLs, chain-length
//!   cap) and [`VerifyError`], whose codes are the ones Node.js reports
//!   (`CERT_HAS_EXPIRED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, …).
//! - [`policy`]: [`Policy`] and the helpers (`allow_cn`, `allow_fingerprints`, …),
//!   combinators, async policies and (feature `serde`) the TOML policy file.
//! - `legacy` (feature `serde`): Node's `toLegacyObject()` view of a certificate.
//!
//! ## Limits
//!
//! Every input is bounded before it is processed: [`CertLimits`] (certificate size, name
//! attributes, SANs, extensions), [`ChainVerifier::with_max_chain_len`] (presented chain),
//! and the policy file's size and nesting depth (`policy::file`). Each limit has a typed
//! error. The crate forbids `unsafe` and is fuzzed.
//!
//! ## Example: verify a chain, then evaluate a policy
//!
//! ```
//! use certauth_core::policy::{allow_cn, PolicyContext, PolicyExt, RequestInfo, allow_ou};
//! use certauth_core::{ChainVerifier, Policy, TrustAnchors, UnixTime, Verdict};
//! # use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
//! # let ca_key = KeyPair::generate().unwrap();
//! # let mut ca = CertificateParams::new(vec![]).unwrap();
//! # ca.distinguished_name.push(DnType::CommonName, "Example CA");
//! # ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//! # let ca_der = ca.self_signed(&ca_key).unwrap().der().clone();
//! # let issuer = Issuer::new(ca, &ca_key);
//! # let mut leaf = CertificateParams::new(vec![]).unwrap();
//! # leaf.distinguished_name.push(DnType::CommonName, "trusted-client");
//! # leaf.distinguished_name.push(DnType::OrganizationalUnitName, "payments");
//! # leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
//! # let leaf_key = KeyPair::generate().unwrap();
//! # let client_der = leaf.signed_by(&leaf_key, &issuer).unwrap().der().clone();
//! # let ca_pem = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
//! #     base64_encode(&ca_der));
//! # fn base64_encode(d: &[u8]) -> String {
//! #     const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
//! #     let mut s = String::new();
//! #     for c in d.chunks(3) {
//! #         let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
//! #         for i in 0..4 { if i <= c.len() { s.push(char::from(T[(n >> (18 - 6 * i)) as usize & 63])) } else { s.push('=') } }
//! #     }
//! #     s
//! # }
//! // Once, at start-up: the CA that issues client certificates, and the policy.
//! let anchors = TrustAnchors::from_pem(ca_pem.as_bytes())?;
//! let verifier = ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS);
//! let policy = allow_cn(["trusted-client"]).and(allow_ou(["payments"]));
//!
//! // Per connection: the chain the TLS peer presented, and the current time.
//! let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
//! let chain = match verifier.verify(&[client_der], now) {
//!     Ok(chain) => chain,
//!     Err(e) => panic!("401 Unauthorized: {} ({e})", e.code()),
//! };
//! let request = RequestInfo::new("GET", "/ws");
//! let verdict = policy.evaluate(&PolicyContext::new(chain.leaf(), Some(&chain), request));
//! assert_eq!(verdict, Verdict::Allow);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod asn1;
pub mod authenticator;
pub mod cert;
pub mod http;
#[cfg(feature = "serde")]
pub mod legacy;
pub mod limits;
pub mod name;
pub mod oid;
pub mod policy;
pub mod proxy;
pub mod response;
pub mod time;
pub mod verify;
pub mod ws;

pub use authenticator::{
    Authenticated, Authenticator, CertificateSource, Decision, Denial, DenyReason, Evaluation,
    PeerInfo,
};
pub use cert::{CertLimits, ClientCertificate, GeneralName, X509Error};
pub use http::{HeadError, HeadParser, HeadProgress, RequestHead};
pub use limits::Limits;
pub use name::Name;
pub use oid::Oid;
pub use policy::{Policy, PolicyContext, Verdict};
pub use proxy::{Encoding, Preset, ProxyHeaderConfig};
pub use response::{ResponseHead, Status};
pub use rustls_pki_types::{CertificateDer, UnixTime};
pub use time::Time;
pub use verify::{ChainVerifier, TrustAnchors, VerifiedChain, VerifyError};
pub use ws::{UpgradeError, accept_websocket};
