//! The short path (feature `rustls`): from the contents of three PEM files (the CA that
//! issues client certificates, the server's certificate chain and its key) and a policy to
//! the two things every adapter needs, an [`Authenticator`] and a rustls `ServerConfig`.
//!
//! It makes the choices a new user would: the client certificates' chain is verified
//! against the CA with the provider's algorithms, the handshake defers the decision
//! ([`ClientAuthMode::Deferred`]: a client without an acceptable certificate gets a 401
//! with a code, not a dropped connection), the default [`Limits`](crate::Limits). For
//! anything else (intermediates, CRLs, header mode, strict handshakes, other limits) build
//! the two yourself: this module is twenty lines of the long form.
//!
//! The adapters read the files (`Gate::from_pem_files` on tokio and smol,
//! `certauth_hyper::load_pem_files`); this crate does no I/O.

use std::fmt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;

use crate::authenticator::Authenticator;
use crate::error::SetupError;
use crate::policy::Policy;
use crate::tls::{ClientAuthMode, load_server_identity, server_config};
use crate::verify::{ChainVerifier, TrustAnchors};

/// An authenticator and the TLS configuration that goes with it.
#[derive(Clone)]
#[non_exhaustive]
pub struct MutualTls {
    /// Decides each request (verifies the chain, applies the policy).
    pub authenticator: Authenticator,
    /// Terminates TLS and asks clients for a certificate issued by the CA.
    pub server_config: Arc<ServerConfig>,
}

impl fmt::Debug for MutualTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutualTls").finish_non_exhaustive()
    }
}

impl MutualTls {
    /// From PEM contents: `ca_pem` (one or more CA certificates that issue client
    /// certificates), `cert_pem` (the server's chain, leaf first), `key_pem` (its key:
    /// PKCS#8, PKCS#1 or SEC1), `policy` (who of the verified clients is let in, e.g.
    /// `policy::allow_cn(["trusted-client"])`).
    pub fn from_pem(
        provider: Arc<CryptoProvider>,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
        policy: impl Policy + 'static,
    ) -> Result<Self, SetupError> {
        let anchors =
            TrustAnchors::from_pem(ca_pem).map_err(|e| SetupError::TrustAnchors(Box::new(e)))?;
        let (chain, key) = load_server_identity(cert_pem, key_pem)?;
        let config = server_config(
            Arc::clone(&provider),
            chain,
            key,
            &anchors,
            ClientAuthMode::Deferred,
        )?;
        let verifier = ChainVerifier::new(anchors, provider.signature_verification_algorithms.all);
        let authenticator = Authenticator::builder()
            .verifier(verifier)
            .policy(policy)
            .build()
            .map_err(|e| SetupError::Authenticator(Box::new(e)))?;
        Ok(Self {
            authenticator,
            server_config: Arc::new(config),
        })
    }
}
