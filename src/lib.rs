//! # certauth
//!
//! Mutual-TLS client-certificate authentication for Rust servers, for plain HTTP requests
//! and WebSocket upgrades. This facade re-exports [`certauth-core`](certauth_core), the
//! sans-IO core that makes every decision; runtime adapters join it behind features as they
//! land.
//!
//! | feature | what it adds |
//! |---|---|
//! | `serde` | Node's legacy certificate object (`certauth::legacy`) and the TOML policy file |
//!
//! No feature is on by default.
//!
//! ```
//! use certauth::policy::{allow_cn, PolicyExt, allow_organization};
//!
//! let policy = allow_cn(["trusted-client"]).or(allow_organization(["Example Corp"]));
//! # let _ = policy;
//! ```
#![forbid(unsafe_code)]

pub use certauth_core::*;
