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
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;

use crate::authenticator::{Authenticator, BuildError};
use crate::policy::Policy;
use crate::tls::{ClientAuthMode, load_server_identity, server_config};
use crate::verify::{ChainVerifier, TrustAnchors, TrustConfigError};

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
        let anchors = TrustAnchors::from_pem(ca_pem).map_err(SetupError::TrustAnchors)?;
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
            .map_err(SetupError::Authenticator)?;
        Ok(Self {
            authenticator,
            server_config: Arc::new(config),
        })
    }
}

/// Which of the three files a [`SetupError::Read`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemFile {
    /// The CA certificates that issue client certificates.
    ClientCa,
    /// The server's certificate chain.
    ServerCertificate,
    /// The server's private key.
    ServerKey,
}

impl fmt::Display for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClientCa => "client CA file",
            Self::ServerCertificate => "server certificate file",
            Self::ServerKey => "server key file",
        })
    }
}

/// Why [`MutualTls`], or a server configuration ([`crate::tls::server_config`],
/// [`crate::tls::load_server_identity`]), could not be set up. Each variant says which input
/// to fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// A file could not be read (the adapters' `from_pem_files`).
    Read {
        /// Which file.
        file: PemFile,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The client CA file is not usable as trust anchors.
    TrustAnchors(TrustConfigError),
    /// The server certificate PEM holds no certificate or is malformed.
    ServerCertificate(String),
    /// The server key PEM holds no private key or is malformed.
    ServerKey(String),
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    Rustls(rustls::Error),
    /// The strict verifier could not be built.
    Verifier(String),
    /// The authenticator refused the configuration.
    Authenticator(BuildError),
}

impl SetupError {
    /// A [`SetupError::Read`], for adapters that read the files.
    pub fn read(file: PemFile, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Read {
            file,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { file, path, source } => {
                write!(f, "cannot read the {file} {}: {source}", path.display())
            }
            Self::TrustAnchors(e) => write!(f, "the client CA file is not usable: {e}"),
            Self::ServerCertificate(e) => write!(f, "server certificate: {e}"),
            Self::ServerKey(e) => write!(f, "server private key: {e}"),
            Self::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
            Self::Verifier(e) => write!(f, "client verifier: {e}"),
            Self::Authenticator(e) => write!(f, "the authenticator configuration is refused: {e}"),
        }
    }
}

/// No `source()`: the message prints its cause once (the variant holds it typed).
impl std::error::Error for SetupError {}
