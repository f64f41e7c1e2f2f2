//! # certauth
//!
//! Mutual-TLS client-certificate authentication for Rust servers, for plain HTTP requests
//! and WebSocket upgrades, on any async runtime. This facade re-exports
//! [`certauth-core`](certauth_core), the sans-IO core that makes every decision, and, by
//! feature, the runtime adapters that move the bytes.
//!
//! | feature | what it adds |
//! |---|---|
//! | `tokio` | `certauth::tokio`: `Gate`, `serve_websocket` on tokio-rustls + async-tungstenite |
//! | `smol` | `certauth::smol`: the same for smol, async-io and any futures-io runtime |
//! | `hyper` | `certauth::hyper`: `CertAuthLayer` (tower), `serve` (hyper 1, HTTP/1.1 + HTTP/2), `upgrade_websocket` |
//! | `axum` | the `ClientCert` extractor, `TlsListener` for `axum::serve` |
//! | `axum-server` | `certauth::hyper::axum_server::Acceptor` for axum-server |
//! | `socketio` | `require_client_cert`, Socket.IO connect middleware for socketioxide; `SocketIoSessions`, Engine.IO sessions bound to their certificate |
//! | `rustls` | `certauth::tls`: `server_config`, the deferred verifier (on with any adapter) |
//! | `serde` | Node's legacy object and the TOML policy file |
//! | `ring` (default), `aws-lc-rs` | that rustls provider for the enabled adapters; you still pass the provider as a value |
//!
//! The features are additive: any combination builds, and with none you get the core
//! alone. The crypto provider is always passed as a value: each adapter's
//! `default_provider()` (`certauth::tokio::default_provider()`, and the same under `smol`
//! and `hyper`) is the one `ring`/`aws-lc-rs` make available, and each adapter re-exports
//! `rustls` itself, so no direct `rustls` dependency is needed.
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
