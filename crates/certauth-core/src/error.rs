//! [`SetupError`]: why a configuration could not be set up, whichever part of it (trust
//! anchors and CRLs, a policy helper or file, a proxy configuration, the authenticator, the
//! server's TLS identity). One type for every configuration error, so that a server's
//! start-up has one `?` and one message format; each variant says which input to fix.

use std::fmt;
use std::path::PathBuf;

use crate::cert::X509Error;
use crate::proxy::{Encoding, Preset};

/// The files a [`SetupError::Read`] names, as its message does.
pub(crate) mod files {
    /// The CA certificates that issue client certificates.
    pub(crate) const CLIENT_CA: &str = "client CA file";
    /// The server's certificate chain.
    pub(crate) const SERVER_CERTIFICATE: &str = "server certificate file";
    /// The server's private key.
    pub(crate) const SERVER_KEY: &str = "server key file";
}

/// Why a configuration could not be set up. Each variant says which input to fix.
///
/// - Trust configuration (CA certificates, intermediates, CRLs): [`Self::NoCertificates`]
///   to [`Self::Rejected`].
/// - Policy helpers (`policy::allow_fingerprints`, …): [`Self::InvalidFingerprint`] to
///   [`Self::EmptyRule`]; a policy file: [`Self::PolicyFile`].
/// - Proxy configuration: [`Self::UnknownPreset`] to [`Self::InvalidHeaderName`].
/// - The authenticator ([`AuthenticatorBuilder::build`](crate::AuthenticatorBuilder::build),
///   [`Authenticator::reload`](crate::Authenticator::reload)): [`Self::MissingTrustAnchors`]
///   to [`Self::PolicySetTwice`].
/// - [`MutualTls`](crate::MutualTls) and the server's TLS configuration (feature `rustls`):
///   [`Self::Read`] to [`Self::Authenticator`].
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// The input holds no certificate.
    NoCertificates,
    /// The PEM of a certificate bundle is malformed (read as OpenSSL reads it).
    Pem {
        /// The line of the block's `-----BEGIN` line (1-based), or of the bad end line.
        line: usize,
        /// What is wrong, e.g. `the PEM block starting on line 3 has no -----END line`.
        detail: String,
    },
    /// The PEM of a CRL file is malformed.
    CrlPem(rustls_pki_types::pem::Error),
    /// A CRL file holds no `X509 CRL` block.
    NoCrls,
    /// A certificate could not be parsed.
    Malformed {
        /// Position in the input, from 0.
        index: usize,
        /// What is wrong with it.
        source: X509Error,
    },
    /// A certificate offered as a trust anchor is not a CA certificate.
    NotCa {
        /// Position in the input, from 0.
        index: usize,
        /// Its subject (RFC 4514).
        subject: String,
    },
    /// A CA certificate breaks a rule a trust anchor must keep (RFC 5280, as OpenSSL checks
    /// the root too and webpki does not).
    BadAnchor {
        /// Position in the input, from 0.
        index: usize,
        /// Its subject (RFC 4514).
        subject: String,
        /// The rule, and the clause.
        rule: String,
    },
    /// A CRL breaks a rule OpenSSL checks before believing it.
    BadCrl {
        /// Position in the input, from 0.
        index: usize,
        /// OpenSSL's name for it (`UNHANDLED_CRITICAL_CRL_EXTENSION`,
        /// `KEYUSAGE_NO_CRL_SIGN`, `CRL_SIGNATURE_FAILURE`), or certauth's where OpenSSL
        /// has none (`CRL_ENTRY_SERIAL_NOT_DER`).
        code: &'static str,
        /// The rule, and the clause.
        rule: String,
    },
    /// webpki refused a trust anchor or CRL.
    Rejected {
        /// What was refused (`trust anchor 0`, `CRL 1`).
        what: String,
        /// webpki's reason.
        reason: String,
    },
    /// A fingerprint pin is not a SHA-256 fingerprint.
    InvalidFingerprint {
        /// The pin as given.
        value: String,
    },
    /// An attribute name is neither a known short name nor a dotted OID.
    UnknownAttribute {
        /// The name as given.
        name: String,
    },
    /// A serial number is not hex.
    InvalidSerial {
        /// The value as given.
        value: String,
    },
    /// A SAN pattern is malformed (e.g. `IP:` with an invalid address).
    InvalidSan {
        /// The value as given.
        value: String,
    },
    /// A SPIFFE ID or trust domain is malformed.
    InvalidSpiffeId {
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A path prefix no request path could be matched by ([`for_path`](crate::policy::for_path)).
    InvalidPathPrefix {
        /// The prefix as given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A rule names nothing to match (an empty `issuer` or `subject`), which would let in
    /// every client.
    EmptyRule {
        /// The rule.
        rule: &'static str,
    },
    /// A policy file that could not be loaded: where, and what is wrong.
    PolicyFile {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Not one of the preset names.
    UnknownPreset {
        /// The name given.
        name: String,
    },
    /// Not one of the encoding names.
    UnknownEncoding {
        /// The name given.
        name: String,
    },
    /// Not an address or CIDR range.
    InvalidCidr {
        /// The value given.
        value: String,
    },
    /// A header name that is not a valid HTTP token.
    InvalidHeaderName {
        /// The value given.
        name: String,
    },
    /// TLS-peer mode (or header mode with fallback) needs trust anchors.
    MissingTrustAnchors,
    /// Header mode trusts no proxy: every header would be rejected.
    NoTrustedProxies,
    /// A reload asked for other limits; they are fixed when the authenticator is built.
    LimitsChanged,
    /// [`AuthenticatorBuilder::policy`](crate::AuthenticatorBuilder::policy) or [`AuthenticatorBuilder::async_policy`](crate::AuthenticatorBuilder::async_policy) was
    /// called more than once: a builder holds one policy, and keeping only the last would
    /// silently drop the others.
    PolicySetTwice,
    /// A file could not be read (the adapters' `from_pem_files`).
    Read {
        /// Which file: `client CA file`, `server certificate file` or `server key file`.
        file: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The client CA file is not usable as trust anchors (one of the trust configuration
    /// variants).
    TrustAnchors(Box<Self>),
    /// The server certificate PEM holds no certificate or is malformed.
    ServerCertificate(String),
    /// The server key PEM holds no private key or is malformed.
    ServerKey(String),
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[cfg(feature = "rustls")]
    Rustls(rustls::Error),
    /// The strict verifier could not be built.
    Verifier(String),
    /// The authenticator refused the configuration (one of the authenticator variants).
    Authenticator(Box<Self>),
}

impl SetupError {
    /// A [`SetupError::Read`] of the client CA file, for adapters that read the files.
    pub fn read_client_ca(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::read(files::CLIENT_CA, path.into(), source)
    }

    /// A [`SetupError::Read`] of the server certificate file.
    pub fn read_server_certificate(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::read(files::SERVER_CERTIFICATE, path.into(), source)
    }

    /// A [`SetupError::Read`] of the server key file.
    pub fn read_server_key(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::read(files::SERVER_KEY, path.into(), source)
    }

    fn read(file: &'static str, path: PathBuf, source: std::io::Error) -> Self {
        Self::Read { file, path, source }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCertificates => f.write_str(
                "no certificate found: expected PEM `-----BEGIN CERTIFICATE-----` blocks or DER",
            ),
            Self::Pem { detail, .. } => write!(f, "malformed PEM: {detail}"),
            Self::CrlPem(e) => write!(f, "malformed CRL PEM: {e}"),
            Self::NoCrls => f.write_str("no `-----BEGIN X509 CRL-----` block found"),
            Self::Malformed { index, .. } => write!(f, "certificate {index} is malformed"),
            Self::NotCa { index, subject } => write!(
                f,
                "certificate {index} ({subject}) is not a CA certificate (basicConstraints cA is \
                 not set); to accept one specific client certificate, pin its SHA-256 \
                 fingerprint with a policy instead"
            ),
            Self::BadAnchor {
                index,
                subject,
                rule,
            } => write!(
                f,
                "certificate {index} ({subject}) cannot be a trust anchor: {rule}; fix or remove \
                 it (certauth serve --skip-bad-roots leaves such roots out with a warning)"
            ),
            Self::BadCrl { index, code, rule } => {
                write!(f, "CRL {index} is not believed ({code}): {rule}")
            }
            Self::Rejected { what, reason } => write!(f, "{what} refused: {reason}"),

            Self::InvalidFingerprint { value } => write!(
                f,
                "`{value}` is not a SHA-256 fingerprint: expected 64 hex digits, colons and a \
                 `SHA256:` prefix optional (SHA-1 fingerprints are not accepted as pins)"
            ),
            Self::UnknownAttribute { name } => write!(
                f,
                "unknown attribute `{name}`: use a short name (CN, O, OU, C, ST, L, \
                 emailAddress, …) or a dotted OID"
            ),
            Self::InvalidSerial { value } => {
                write!(
                    f,
                    "`{value}` is not a serial number: expected hex digits (a serial is \
                     always read as hex), colons and a leading `-` optional"
                )
            }
            Self::InvalidSan { value } => write!(
                f,
                "`{value}` is not a SAN pattern: expected `DNS:name`, `email:addr`, `URI:uri`, \
                 `IP:addr` or a bare value"
            ),
            Self::InvalidPathPrefix { value, reason } => {
                write!(f, "`{value}` is not a path prefix: {reason}")
            }
            Self::InvalidSpiffeId { value, reason } => {
                write!(f, "`{value}` is not a valid SPIFFE ID: {reason}")
            }
            Self::EmptyRule { rule } => write!(
                f,
                "`{rule}` names no attribute: it would let in every client; name the \
                 attributes to match, or remove the rule"
            ),
            Self::PolicyFile {
                line,
                column,
                message,
            } => write!(f, "policy file line {line}, column {column}: {message}"),

            Self::UnknownPreset { name } => write!(
                f,
                "unknown proxy preset `{name}`: use one of {}",
                Preset::names()
            ),
            Self::UnknownEncoding { name } => write!(
                f,
                "unknown header encoding `{name}`: use one of {}",
                Encoding::names()
            ),
            Self::InvalidCidr { value } => write!(
                f,
                "`{value}` is not an address or CIDR range (e.g. 10.0.0.0/8, 127.0.0.1, ::1/128)"
            ),
            Self::InvalidHeaderName { name } => write!(f, "`{name}` is not a valid header name"),

            Self::MissingTrustAnchors => f.write_str(
                "client certificates from the TLS peer need trust anchors: give the \
                 authenticator a ChainVerifier (the CA that issues client certificates)",
            ),
            Self::NoTrustedProxies => f.write_str(
                "certificate headers are honoured only from trusted proxies: list their \
                 addresses with with_trusted_proxies(..), or call dangerous_trust_any_proxy() if \
                 only the proxy can reach this listener",
            ),
            Self::LimitsChanged => f.write_str(
                "a reload cannot change the limits (connections in progress are bounded by \
                 them): restart to change them",
            ),
            Self::PolicySetTwice => f.write_str(
                "the policy was set more than once (.policy / .async_policy): a builder holds \
                 one; combine them into one (all_of, .and(), or one async policy that runs \
                 the sync check first)",
            ),
            Self::Read { file, path, source } => {
                write!(f, "cannot read the {file} {}: {source}", path.display())
            }
            Self::TrustAnchors(e) => write!(f, "the client CA file is not usable: {e}"),
            Self::ServerCertificate(e) => write!(f, "server certificate: {e}"),
            Self::ServerKey(e) => write!(f, "server private key: {e}"),
            #[cfg(feature = "rustls")]
            Self::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
            Self::Verifier(e) => write!(f, "client verifier: {e}"),
            Self::Authenticator(e) => write!(f, "the authenticator configuration is refused: {e}"),
        }
    }
}

/// A malformed certificate's parse error is the source; every other message prints its cause
/// once (the variant holds it typed).
impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed { source, .. } => Some(source),
            _ => None,
        }
    }
}
