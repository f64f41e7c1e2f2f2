//! # certauth-core
//!
//! The sans-IO core of certauth: everything that decides whether a TLS client may in, as
//! plain functions of bytes, a certificate chain and a time.
//!
//! ```text
//! socket ──bytes──► adapter's buffer ──► HeadParser::parse ──► NeedMore | Complete{head, consumed} | HeadError (400/431)
//! TLS stack ──peer chain──► PeerInfo ─────────────────────┐
//! adapter's clock ──now───────────────────────────────────┼─► Authenticator::decide ──► Decision
//!                                                         │
//!   Allow(Authenticated) ─► accept_websocket(&head) ─► ResponseHead 101 (or 400/426)
//!   Deny(Denial)         ─► denial.response()       ─► ResponseHead 400/401/403/500
//!                                                  └─► ResponseHead::write_to(&mut out) ─► socket
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
//! - [`http`], [`ws`]: the request head parser and the WebSocket upgrade; [`ResponseHead`]
//!   and [`Status`]: the responses, as values.
//! - [`proxy`]: certificates from proxy headers (nginx, HAProxy, Envoy/Istio, AWS ALB,
//!   Cloudflare, Traefik, RFC 9440 / Google Cloud) with trusted proxies.
//! - [`Authenticator`] (at the crate root, with its builder, [`PeerInfo`], [`Decision`],
//!   [`Denial`] and [`BuildError`]) ties it together: `decide(peer, head, now)`.
//! - [`policy`]: [`Policy`] and the helpers (`allow_cn`, `allow_fingerprints`, …),
//!   combinators, async policies and (feature `serde`) the TOML policy file.
//! - `legacy` (feature `serde`): Node's `toLegacyObject()` view of a certificate.
//! - [`revocation`]: OCSP and CRLs from distribution points, checked online: the core says
//!   what to fetch and judges the answer; a [`revocation::Fetch`] moves the bytes.
//! - [`keys`], [`pem`], [`observe`]: the key-type table, PEM as OpenSSL reads it, and the
//!   observer behind metrics (a value you hand the builder). The connection lifecycle
//!   the serve helpers run is `certauth-engine`'s.
//!
//! Small types live at the root ([`Limits`], [`Time`], [`Oid`], [`MutualTls`]
//! with feature `rustls`); the modules above are namespaces a user reaches into by name
//! (`policy::allow_cn`, `proxy::Preset`, `verify::VerifyError`).
//!
//! ## Outcomes
//!
//! Row by row as the Node.js package client-certificate-auth behaves, with certauth's
//! stricter parts marked. Bodies are the bare reason phrase unless
//! [`AuthenticatorBuilder::expose_reasons`](AuthenticatorBuilder::expose_reasons)
//! is on; the code and detail always reach the caller ([`Denial`]) for logging.
//!
//! | situation | status | code |
//! |---|---|---|
//! | TLS peer presented no certificate | 401 | `NO_CERTIFICATE` |
//! | certificate does not parse | 401 | `MALFORMED_CERTIFICATE` |
//! | certificate over a [`CertLimits`] limit (size, SANs, name attributes, extensions) | 401 | `CERT_TOO_LARGE` |
//! | chain does not verify | 401 | its code: `CERT_HAS_EXPIRED`, `CERT_NOT_YET_VALID`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, `DEPTH_ZERO_SELF_SIGNED_CERT`, `SELF_SIGNED_CERT_IN_CHAIN`, `CERT_SIGNATURE_FAILURE`, `INVALID_PURPOSE`, `CERT_REVOKED`, `CA_MD_TOO_WEAK`, `CHAIN_TOO_LONG`, … (stricter: `CA_USED_AS_END_ENTITY`, `UNSUPPORTED_CERT_VERSION`, `UNSUPPORTED_SIGNATURE_ALGORITHM`, `UNHANDLED_CRITICAL_EXTENSION`) |
//! | online revocation ([`revocation`]): revoked; OCSP required and no believable answer or `unknown`; CRL fetched with unknown denied and none had | 401 | `CERT_REVOKED`; `OCSP_CHECK_FAILED`, `OCSP_STATUS_UNKNOWN`; `UNABLE_TO_GET_CRL` |
//! | policy returns false / denies | 401 | `POLICY_DENIED` |
//! | policy denies with 403 | 403 | `POLICY_DENIED` |
//! | header mode: certificate header from an address that is not a trusted proxy (stricter) | 401 | `UNTRUSTED_PROXY_HEADER` |
//! | header mode: certificate header repeated | 400 | `REPEATED_CERTIFICATE_HEADER` |
//! | header mode: verify header missing or not the expected value | 401 | `PROXY_VERIFICATION_FAILED` |
//! | header mode: header absent (and no fallback) | 401 | `NO_CERTIFICATE` |
//! | header mode: header malformed (and no fallback) | 401 | `MALFORMED_CERTIFICATE_HEADER`, `XFCC_HASH_MISMATCH`, `CERTIFICATE_HEADER_TOO_LARGE`, `CHAIN_TOO_LONG` |
//! | header mode with fallback: header absent or malformed | — | decided on the TLS peer, as above |
//! | header mode with trust anchors: forwarded chain re-verified | 401 | its verification code |
//! | certauth cannot decide (a misuse, such as polling a finished decision again) | 500 | `INTERNAL_ERROR` |
//! | head larger than the limit, too many or too large headers | 431 | (a [`HeadError`]) |
//! | malformed request head | 400 | (a [`HeadError`]) |
//! | allowed, but not a valid WebSocket upgrade | 400, or 426 for the version | (an [`UpgradeError`]) |
//!
//! ## The adapter's loop, driven by byte strings
//!
//! ```
//! # use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
//! # let ca_key = KeyPair::generate()?;
//! # let mut ca = CertificateParams::new(vec![])?;
//! # ca.distinguished_name.push(DnType::CommonName, "Example CA");
//! # ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//! # let ca_der = ca.self_signed(&ca_key)?.der().clone();
//! # let issuer = Issuer::new(ca, &ca_key);
//! # let mut leaf = CertificateParams::new(vec![])?;
//! # leaf.distinguished_name.push(DnType::CommonName, "trusted-client");
//! # let client_der = leaf.signed_by(&KeyPair::generate()?, &issuer)?.der().clone();
//! use certauth_core::policy::allow_cn;
//! use certauth_core::{
//!     Authenticator, ChainVerifier, Decision, HeadParser, HeadProgress, PeerInfo, TrustAnchors,
//!     UnixTime, accept_websocket,
//! };
//!
//! # let algorithms = webpki::ALL_VERIFICATION_ALGS;
//! // `algorithms`: a provider's `signature_verification_algorithms.all`, such as
//! // `certauth::tokio::default_provider()`'s.
//! let verifier = ChainVerifier::new(TrustAnchors::from_der([ca_der])?, algorithms);
//! let auth = Authenticator::builder()
//!     .verifier(verifier)
//!     .policy(allow_cn(["trusted-client"]))
//!     .build()?;
//!
//! // What the socket delivers, in two reads: the head, then the rest of it and a frame.
//! let reads: [&[u8]; 2] = [
//!     b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
//!     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x80",
//! ];
//! let chain = [client_der];
//! let peer = PeerInfo::new(&chain, None);
//! let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
//!
//! let mut parser = HeadParser::new(auth.limits());
//! let mut buf = Vec::new();
//! let mut out = Vec::new();
//! for read in reads {
//!     buf.extend_from_slice(read);
//!     let (head, consumed) = match parser.parse(&buf) {
//!         Ok(HeadProgress::NeedMore) => continue,
//!         Ok(HeadProgress::Complete { head, consumed }) => (head, consumed),
//!         Err(e) => { e.response().write_to(&mut out); break; } // 400/431, then close
//!     };
//!     // `.await` in an adapter; ready at once without an async policy.
//!     match auth.decide(&peer, &head, now).ready().ok_or("decision pending")? {
//!         Decision::Allow(client) => {
//!             accept_websocket(&head)?.write_to(&mut out);
//!             let leftover = &buf[consumed..]; // hand to the WebSocket layer
//!             assert_eq!(leftover, b"\x81\x80");
//!             println!("{} connected", client.certificate().subject().to_rfc4514());
//!         }
//!         Decision::Deny(denial) => denial.response().write_to(&mut out), // then close
//!     }
//!     break;
//! }
//! assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Limits
//!
//! Every input is bounded before it is processed: [`Limits`] (head size, header count,
//! header size, and the handshake and head-read timeouts adapters enforce), [`CertLimits`]
//! (certificate size, name attributes, SANs, extensions),
//! [`ChainVerifier::with_max_chain_len`] (presented chain), the proxy header's value size and
//! chain length ([`ProxyHeaderConfig::with_max_value_bytes`], [`ProxyHeaderConfig::with_max_chain_len`]),
//! and the policy file's size and nesting depth (`policy::file`). Each limit has a typed
//! error. The crate forbids `unsafe` and is fuzzed.
//!
//! ## Example: verify a chain, then evaluate a policy
//!
//! ```
//! use certauth_core::policy::{allow_cn, PolicyContext, PolicyExt, RequestInfo, allow_ou};
//! use certauth_core::{ChainVerifier, Policy, TrustAnchors, UnixTime, Verdict};
//! # use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
//! # let ca_key = KeyPair::generate()?;
//! # let mut ca = CertificateParams::new(vec![])?;
//! # ca.distinguished_name.push(DnType::CommonName, "Example CA");
//! # ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
//! # let ca_der = ca.self_signed(&ca_key)?.der().clone();
//! # let issuer = Issuer::new(ca, &ca_key);
//! # let mut leaf = CertificateParams::new(vec![])?;
//! # leaf.distinguished_name.push(DnType::CommonName, "trusted-client");
//! # leaf.distinguished_name.push(DnType::OrganizationalUnitName, "payments");
//! # leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
//! # let leaf_key = KeyPair::generate()?;
//! # let client_der = leaf.signed_by(&leaf_key, &issuer)?.der().clone();
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
//! # let algorithms = webpki::ALL_VERIFICATION_ALGS;
//! let verifier = ChainVerifier::new(anchors, algorithms); // a provider's algorithms
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
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod asn1;
mod authenticator;
pub mod cert;
pub mod escape;
#[cfg(feature = "http")]
pub mod forward;
pub mod http;
pub mod keys;
#[cfg(feature = "serde")]
pub mod legacy;
mod limits;
mod name;
pub mod observe;
mod oid;
pub mod pem;
pub mod policy;
pub mod proxy;
mod response;
pub mod revocation;
#[cfg(feature = "rustls")]
mod setup;
mod time;
#[cfg(feature = "rustls")]
pub mod tls;
pub mod verify;
pub mod ws;

/// Internals the fuzz targets drive directly (built with `--cfg fuzzing` only; not API).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use crate::proxy::ProxyHeaderError;

    /// `proxy::percent_decode`.
    pub fn percent_decode(input: &[u8]) -> Result<Vec<u8>, ProxyHeaderError> {
        crate::proxy::percent_decode(input)
    }

    /// `proxy::xfcc::parse`: how many elements, or why not.
    pub fn xfcc_parse(value: &str) -> Result<usize, ProxyHeaderError> {
        crate::proxy::xfcc::parse(value).map(|elements| elements.len())
    }
}

pub use authenticator::{
    Authenticated, Authenticator, AuthenticatorBuilder, BuildError, Decision, Denial, DenyReason,
    Evaluation, Origin, PeerInfo,
};
pub use cert::{CertLimits, ClientCertificate, GeneralName, X509Error};
pub use http::{HeadError, HeadParser, HeadProgress, RequestHead};
pub use limits::Limits;
pub use oid::Oid;
pub use policy::{Policy, PolicyContext, Verdict};
pub use proxy::{Encoding, Preset, ProxyHeaderConfig};
pub use response::{ResponseHead, Status};
/// rustls-pki-types' (the same types rustls takes), re-exported so that no direct
/// dependency is needed.
#[doc(no_inline)]
pub use rustls_pki_types::{CertificateDer, UnixTime};
#[cfg(feature = "rustls")]
pub use setup::{MutualTls, PemFile, SetupError};
pub use time::Time;
pub use verify::{ChainVerifier, TrustAnchors, VerifiedChain, VerifyError};
pub use ws::{UpgradeError, WebSocketPaths, accept_websocket};

/// The crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
