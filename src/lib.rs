//! # certauth
//!
//! Mutual-TLS client-certificate authentication for Rust servers, for plain HTTP requests
//! and WebSocket upgrades, on any async runtime. This facade re-exports
//! [`certauth-core`](certauth_core), the sans-IO core that makes every decision, and, by
//! feature, the runtime adapters that move the bytes.
//!
//! | feature | what it adds |
//! |---|---|
//! | `tokio` | `certauth::tokio`: gates and a serve helper on tokio + tokio-rustls + async-tungstenite |
//! | `smol` | `certauth::smol`: the same on smol / async-io / any futures-io runtime (futures-rustls) |
//! | `hyper` | `certauth::hyper`: `CertAuthLayer` (tower), `serve` (hyper 1, HTTP/1.1 + HTTP/2), `upgrade_websocket` |
//! | `axum` | the `ClientCert` extractor (with `hyper`) |
//! | `socketio` | Socket.IO connect middleware for socketioxide (with `hyper`) |
//! | `rustls` | `certauth::tls`: rustls `ServerConfig` helpers and the deferred client verifier (on with `tokio` or `smol`) |
//! | `serde` | Node's legacy certificate object (`certauth::legacy`) and the TOML policy file |
//! | `ring` (default) | rustls' ring provider for the enabled adapters |
//! | `aws-lc-rs` | rustls' aws-lc-rs provider for the enabled adapters |
//!
//! The features are additive: any combination builds, and with none you get the core
//! alone. The crypto provider is always passed as a value
//! (`rustls::crypto::ring::default_provider()`); `ring`/`aws-lc-rs` only make one available.
//!
//! ```
//! use certauth::policy::{allow_cn, PolicyExt, allow_organization};
//!
//! let policy = allow_cn(["trusted-client"]).or(allow_organization(["Example Corp"]));
//! # let _ = policy;
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use certauth_core::*;

/// The tokio adapter (feature `tokio`).
#[cfg(feature = "tokio")]
pub use certauth_tokio as tokio;

/// The smol / futures-io adapter (feature `smol`).
#[cfg(feature = "smol")]
pub use certauth_smol as smol;

/// The hyper / tower / axum adapter (feature `hyper`).
#[cfg(feature = "hyper")]
pub use certauth_hyper as hyper;

/// The README's Rust examples, compiled as doc tests.
#[cfg(all(
    doctest,
    feature = "tokio",
    feature = "smol",
    feature = "serde",
    feature = "axum",
    feature = "socketio"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
