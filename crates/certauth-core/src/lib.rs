//! # certauth-core
//!
//! The sans-IO core of certauth. (Crate docs are completed below as modules land.)
#![forbid(unsafe_code)]
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod asn1;
pub mod cert;
#[cfg(feature = "serde")]
pub mod legacy;
pub mod name;
pub mod oid;
pub mod policy;
pub mod time;
pub mod verify;

pub use cert::{CertLimits, ClientCertificate, GeneralName, X509Error};
pub use name::Name;
pub use oid::Oid;
pub use policy::{Policy, PolicyContext, Verdict};
pub use rustls_pki_types::{CertificateDer, UnixTime};
pub use time::Time;
pub use verify::{ChainVerifier, TrustAnchors, VerifiedChain, VerifyError};
