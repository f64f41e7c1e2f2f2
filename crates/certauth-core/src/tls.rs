//! rustls server configuration for client authentication (feature `rustls`).
//!
//! Two modes:
//!
//! - [`ClientAuthMode::Deferred`] (the default, like Node's `requestCert: true,
//!   rejectUnauthorized: false`): the server asks for a client certificate, naming the
//!   trusted CAs as hints, and lets the handshake finish without one or with an untrusted
//!   one, so the client gets a clear HTTP 401 with a code instead of a dropped connection.
//!   The client's CertificateVerify signature is still checked with the provider's
//!   algorithms. For a key the provider cannot check (P-521 on ring, Ed448, RSA-PSS keys)
//!   or too weak to trust (RSA under 2048 bits) the handshake finishes unchecked, so the
//!   client gets a 401 with `UNSUPPORTED_KEY_TYPE` or `WEAK_KEY`: the decision refuses
//!   exactly those keys ([`VerifyError::UnsupportedKey`](crate::VerifyError::UnsupportedKey)). The [`Authenticator`](crate::Authenticator)
//!   then verifies the chain.
//! - [`ClientAuthMode::Strict`]: rustls' own `WebPkiClientVerifier` rejects a missing or
//!   untrusted certificate during the handshake (the Authenticator still verifies again
//!   and applies the policy).
//!
//! The crypto provider is always a value (`Arc<CryptoProvider>`); this crate enables none.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use crate::cert::ClientCertificate;
use crate::keys::{self, KeyKind, KeySupport};
use crate::verify::PeerMemo;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime, alg_id};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use crate::error::SetupError;
use crate::verify::TrustAnchors;

/// How the TLS handshake treats client certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMode {
    /// Request a certificate; decide after the handshake (HTTP 401 with a code).
    #[default]
    Deferred,
    /// Require a certificate that chains to the anchors; fail the handshake otherwise.
    Strict,
}

/// Reads a server certificate chain (PEM, leaf first) and private key (PEM: PKCS#8, PKCS#1
/// or SEC1).
pub fn load_server_identity(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SetupError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SetupError::ServerCertificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(SetupError::ServerCertificate(
            "no `-----BEGIN CERTIFICATE-----` block found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        SetupError::ServerKey(format!(
            "{e} (expected a `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)"
        ))
    })?;
    Ok((chain, key))
}

/// The most bytes of CA names (each with its 2-byte length) a CertificateRequest carries as
/// hints: 60,000. TLS writes the list, and in TLS 1.3 all the request's extensions
/// together, with a 16-bit length (65,535 bytes); the rest is room for the other
/// extensions. rustls checks it with a `debug_assert` only, so a longer list went out with
/// a wrong length and every client failed the handshake (`parse_ca_names: length
/// mismatch`, `excessive message size`): about 370 CAs of usual names were enough.
/// Past it no CA is named ([`ca_hints`]): an empty list lets the client choose any
/// certificate, where a partial one would steer away clients of the CAs left out.
pub const MAX_CA_HINT_BYTES: usize = 60_000;

/// The CA names (subjects of `anchors`) a CertificateRequest hints, and, when together they
/// are over [`MAX_CA_HINT_BYTES`], none and the warning to log instead.
pub fn ca_hints(anchors: &TrustAnchors) -> (Vec<DistinguishedName>, Option<String>) {
    let names: Vec<DistinguishedName> = anchors
        .certificates()
        .iter()
        .map(|c| DistinguishedName::from(c.subject().raw().to_vec()))
        .collect();
    let bytes: usize = names.iter().map(|n| n.as_ref().len() + 2).sum();
    if bytes <= MAX_CA_HINT_BYTES {
        return (names, None);
    }
    let warning = format!(
        "the {} client CAs' names take {bytes} bytes, more than a TLS CertificateRequest \
         holds ({MAX_CA_HINT_BYTES}): clients are sent no CA names and choose a certificate \
         without them",
        names.len()
    );
    (Vec::new(), Some(warning))
}

/// A `ServerConfig` (TLS 1.2 and 1.3, the provider's defaults) that authenticates clients
/// against `anchors` in the given mode. Set ALPN on the result as your server needs. The
/// anchors' names are sent as hints unless they are over [`MAX_CA_HINT_BYTES`] (see
/// [`ca_hints`] for the warning to log).
pub fn server_config(
    provider: Arc<CryptoProvider>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    anchors: &TrustAnchors,
    mode: ClientAuthMode,
) -> Result<ServerConfig, SetupError> {
    let verifier: Arc<dyn ClientCertVerifier> = match mode {
        ClientAuthMode::Deferred => deferred_verifier(anchors, &provider),
        ClientAuthMode::Strict => {
            let mut roots = RootCertStore::empty();
            for cert in anchors.certificates() {
                roots
                    .add(CertificateDer::from(cert.der().to_vec()))
                    .map_err(SetupError::Rustls)?;
            }
            let mut builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if ca_hints(anchors).1.is_some() {
                builder = builder.clear_root_hint_subjects();
            }
            builder
                .build()
                .map_err(|e| SetupError::Verifier(e.to_string()))?
        }
    };
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SetupError::Rustls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_chain, server_key)
        .map_err(SetupError::Rustls)
}

/// ALPN for a server that speaks HTTP/2 and HTTP/1.1 (hyper's): `h2`, then `http/1.1`.
pub const ALPN_HTTP2_AND_HTTP1: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// ALPN for a server that speaks HTTP/1.1 only (the raw gates: WebSocket upgrades and your
/// own HTTP/1.1): a client offering `h2` is told `http/1.1` rather than left to guess.
pub const ALPN_HTTP1: [&[u8]; 1] = [b"http/1.1"];

/// `config` offering `protocols` by ALPN, unless it already offers some (yours win). Without
/// ALPN a client that could speak HTTP/2 falls back to HTTP/1.1 (`curl --http2` answers
/// "server did not agree on a protocol"); hyper's `serve` applies
/// [`ALPN_HTTP2_AND_HTTP1`] this way.
pub fn with_alpn(config: Arc<ServerConfig>, protocols: &[&[u8]]) -> Arc<ServerConfig> {
    if !config.alpn_protocols.is_empty() {
        return config;
    }
    let mut config = (*config).clone();
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// The key types whose handshake signatures `provider` verifies.
pub(crate) fn provider_key_support(provider: &CryptoProvider) -> KeySupport {
    let mut support = KeySupport::NONE;
    for (_, algs) in provider.signature_verification_algorithms.mapping {
        for alg in *algs {
            let id = alg.public_key_alg_id();
            let kind = [
                (alg_id::RSA_ENCRYPTION, KeyKind::Rsa),
                (alg_id::ECDSA_P256, KeyKind::P256),
                (alg_id::ECDSA_P384, KeyKind::P384),
                (alg_id::ECDSA_P521, KeyKind::P521),
                (alg_id::ED25519, KeyKind::Ed25519),
                (alg_id::ED448, KeyKind::Ed448),
            ]
            .into_iter()
            .find(|(a, _)| *a == id);
            if let Some((_, kind)) = kind {
                support = support.with(kind);
            }
        }
    }
    support
}

/// The key types a connection accepted with `config` proved possession of: its provider's
/// ([`provider_key_support`]), taken from the configuration that did the handshake.
pub(crate) fn key_support(config: &ServerConfig) -> KeySupport {
    provider_key_support(config.crypto_provider())
}

/// What the acceptor puts in every session ticket a connection accepted with `config` is
/// issued (`ServerConnection::set_resumption_data`, called before the handshake: tokio-rustls'
/// and futures-rustls' `accept_with`; the adapters do): the key types its provider verifies.
///
/// Why: a resumed handshake carries no CertificateVerify. Its client proved possession of
/// its key in the handshake that made the session, on whichever server made it, with that
/// server's provider; a key that provider could not verify (P-521 on ring) was excused there
/// and refused by the decision, but its session could be resumed on a server whose provider
/// does verify such keys (aws-lc-rs sharing `--session-ticket-key`), and the key would pass
/// unproven. [`TlsPeer::of`] therefore judges a resumed client with the key types both
/// providers verify; a ticket without this data (made by an acceptor that did not set it,
/// and every resumed TLS 1.2 session: rustls hands this data back for TLS 1.3 only)
/// counts as the key types every provider verifies (RSA, P-256, P-384, Ed25519). So a
/// P-521 or Ed448 client resuming over TLS 1.2 is refused even where its session was made
/// on aws-lc-rs; a full handshake lets it in.
pub fn resumption_data(config: &ServerConfig) -> [u8; 2] {
    resumption_bytes(key_support(config))
}

/// [`resumption_data`] for a provider verifying `support`.
pub(crate) const fn resumption_bytes(support: KeySupport) -> [u8; 2] {
    [RESUMPTION_TAG, support.to_byte()]
}

/// The first byte of [`resumption_data`]: its format.
const RESUMPTION_TAG: u8 = 0xCA;

/// The key types a client proved possession of on a connection whose provider verifies
/// `ours`, when its handshake resumed a session whose ticket carried `resumed` (`None`: a
/// full handshake).
pub(crate) fn proven_support(ours: KeySupport, resumed: Option<&[u8]>) -> KeySupport {
    match resumed {
        None => ours,
        Some(&[RESUMPTION_TAG, byte]) => ours.intersection(KeySupport::from_byte(byte)),
        Some(_) => ours.intersection(KeySupport::COMMON),
    }
}

/// What a connection's ticket carried if its handshake resumed a session (`None`: a full
/// handshake). rustls hands back the resumption data of a TLS 1.3 ticket only: a resumed
/// TLS 1.2 session (or a handshake rustls does not call full) yields no data, which
/// [`proven_support`] counts as a ticket from an unknown maker. Reading only
/// `received_resumption_data` let a P-521 session made on ring pass on aws-lc-rs over TLS 1.2
/// (the second attack review of stop 37).
pub(crate) fn resumed(connection: &rustls::ServerConnection) -> Option<&[u8]> {
    use rustls::HandshakeKind::{Full, FullWithHelloRetryRequest};
    match connection.handshake_kind() {
        Some(Full | FullWithHelloRetryRequest) => None,
        _ => Some(connection.received_resumption_data().unwrap_or_default()),
    }
}

/// Signature schemes offered to clients besides the provider's, so that a client whose key
/// the provider cannot verify still sends its certificate (and gets a 401 that says why)
/// instead of an empty one: ECDSA P-521, Ed448, RSA-PSS keys (rsa_pss_pss_*), and the
/// brainpool curves.
const EXTRA_SCHEMES: [SignatureScheme; 8] = [
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::ED448,
    SignatureScheme::Unknown(0x0809),
    SignatureScheme::Unknown(0x080A),
    SignatureScheme::Unknown(0x080B),
    SignatureScheme::Unknown(0x081A),
    SignatureScheme::Unknown(0x081B),
    SignatureScheme::Unknown(0x081C),
];

/// Requests a client certificate and accepts any chain (the core verifies it after the
/// handshake), but checks the client's handshake signature, so the client must hold the
/// certificate's key, except for keys the decision refuses anyway ([`VerifyError::UnsupportedKey`](crate::VerifyError::UnsupportedKey)).
///
/// Built by [`deferred_verifier`].
#[derive(Debug)]
struct DeferredClientVerifier {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
    support: KeySupport,
}

/// The verifier of [`ClientAuthMode::Deferred`]: requests a client certificate and accepts
/// any chain (the core verifies it after the handshake), but checks the client's handshake
/// signature with `provider`'s algorithms, so the client must hold the certificate's key,
/// except for keys the decision refuses anyway ([`VerifyError::UnsupportedKey`](crate::VerifyError::UnsupportedKey)). It hints `anchors`'
/// subjects (none past [`MAX_CA_HINT_BYTES`]).
///
/// Build it with the same provider as the `ServerConfig` it goes into ([`server_config`]
/// does): the adapters tell the decision which keys were verified from the
/// `ServerConfig`'s provider.
pub fn deferred_verifier(
    anchors: &TrustAnchors,
    provider: &CryptoProvider,
) -> Arc<dyn ClientCertVerifier> {
    Arc::new(DeferredClientVerifier::new(anchors, provider))
}

impl DeferredClientVerifier {
    /// A verifier hinting `anchors`' subjects (none past [`MAX_CA_HINT_BYTES`]) and checking
    /// signatures with `provider`'s algorithms.
    fn new(anchors: &TrustAnchors, provider: &CryptoProvider) -> Self {
        Self {
            hints: ca_hints(anchors).0,
            algorithms: provider.signature_verification_algorithms,
            support: provider_key_support(provider),
        }
    }

    /// Whether a handshake signature the provider could not verify is let through: only
    /// for a key the decision refuses whatever support it is given (its default,
    /// [`KeySupport::COMMON`], or this provider's), so possession is never assumed for a
    /// client let in. A key in [`KeySupport::COMMON`] is never excused: if the provider
    /// cannot verify its signature, the handshake fails.
    ///
    /// Asked only after the provider failed (see [`Self::checked`]): a client whose
    /// signature verifies gets in without its key judged here, and its key is judged once
    /// per connection, by the decision.
    fn excused(&self, cert: &CertificateDer<'_>) -> bool {
        ClientCertificate::from_der(cert)
            .is_ok_and(|c| keys::check(&c, self.support.union(KeySupport::COMMON)).is_err())
    }

    /// `verified`, the provider's check of the handshake signature of `cert`, unless it
    /// failed for a key the decision refuses anyway ([`Self::excused`]): that client
    /// finishes the handshake and gets a 401 with the key's code.
    fn checked(
        &self,
        cert: &CertificateDer<'_>,
        verified: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match verified {
            Err(_) if self.excused(cert) => Ok(HandshakeSignatureValid::assertion()),
            verified => verified,
        }
    }
}

impl ClientCertVerifier for DeferredClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Deferred on purpose: the Authenticator verifies the chain after the handshake and
        // answers 401 with a code. Possession of the key is still proven below.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verified = rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms);
        self.checked(cert, verified)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verified = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms);
        self.checked(cert, verified)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self.algorithms.supported_schemes();
        for extra in EXTRA_SCHEMES {
            if !schemes.contains(&extra) {
                schemes.push(extra);
            }
        }
        schemes
    }
}

/// A server configuration that can be replaced while serving: the adapters take the current
/// one for each new connection, connections in progress keep theirs. Replace it when the
/// server's certificate or key rotates, or when the client CAs change (the deferred
/// verifier names them to clients). Cheap to clone; clones share it.
///
/// A server's protocols by ALPN are the server's, not the configuration's: [`Self::offering`]
/// names them once and every configuration, the first and each reload, that offers none is
/// given them (one that offers its own keeps them). The raw gates offer [`ALPN_HTTP1`]
/// whichever way they were built.
#[derive(Clone)]
pub struct TlsConfig {
    shared: Arc<RwLock<Current>>,
}

struct Current {
    config: Arc<ServerConfig>,
    /// What a configuration without ALPN protocols is given ([`TlsConfig::offering`]).
    alpn: Option<&'static [&'static [u8]]>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Starts with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            shared: Arc::new(RwLock::new(Current { config, alpn: None })),
        }
    }

    /// Offers `protocols` by ALPN in this configuration and every one that replaces it,
    /// unless that configuration offers some itself (yours win, as with [`with_alpn`]).
    /// For every clone.
    pub fn offering(self, protocols: &'static [&'static [u8]]) -> Self {
        {
            let mut current = self.write();
            current.alpn = Some(protocols);
            current.config = with_alpn(Arc::clone(&current.config), protocols);
        }
        self
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        // A panic while replacing leaves the old or the new configuration, both whole.
        Arc::clone(
            &self
                .shared
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .config,
        )
    }

    /// Replaces it for every connection from now on (given the protocols of
    /// [`Self::offering`] if it offers none).
    pub fn reload(&self, config: Arc<ServerConfig>) {
        let mut current = self.write();
        current.config = match current.alpn {
            Some(protocols) => with_alpn(config, protocols),
            None => config,
        };
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Current> {
        self.shared.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<Arc<ServerConfig>> for TlsConfig {
    fn from(config: Arc<ServerConfig>) -> Self {
        Self::new(config)
    }
}

impl From<ServerConfig> for TlsConfig {
    fn from(config: ServerConfig) -> Self {
        Self::new(Arc::new(config))
    }
}

/// What the decision needs of a TLS peer, read from its connection in one call
/// ([`Self::of`]): the chain it presented, the key types its handshake verified (those of
/// the `ServerConfig`'s provider; a client key outside them is refused with
/// `UNSUPPORTED_KEY_TYPE`), and what the connection remembers of the chain's verification
/// between its requests (keep-alive, HTTP/2 streams verify the chain once, while the result
/// holds). Owned, so that it outlives the borrow of the connection (the adapter reads the
/// request from the stream next) and can travel with it (certauth-hyper's
/// `ConnectionInfo`); [`Self::info`] lends it to a decision. One per connection: clones
/// share the memory of the verification, which speaks only for this chain.
#[derive(Clone, Debug, Default)]
pub struct TlsPeer {
    chain: Arc<[CertificateDer<'static>]>,
    keys: KeySupport,
    memo: Arc<PeerMemo>,
}

/// Two peers are equal when they presented the same chain and their handshakes verified
/// the same key types (what they remember is not compared).
impl PartialEq for TlsPeer {
    fn eq(&self, other: &Self) -> bool {
        self.chain == other.chain && self.keys == other.keys
    }
}

impl Eq for TlsPeer {}

impl TlsPeer {
    /// The peer of `connection`, whose handshake ran with `config`. A resumed handshake's
    /// client proved its key in the handshake that made the session: it is judged with the
    /// key types both that server's provider and this one verify ([`resumption_data`]).
    pub fn of(config: &ServerConfig, connection: &rustls::ServerConnection) -> Self {
        let keys = proven_support(key_support(config), resumed(connection));
        Self {
            chain: peer_chain(connection).into(),
            keys,
            memo: Arc::default(),
        }
    }

    /// A peer that presented `chain` in a full handshake run with `config` (for a
    /// connection whose chain was read elsewhere; [`Self::of`] reads both, and knows a
    /// resumed handshake from a full one).
    pub fn new(config: &ServerConfig, chain: Vec<CertificateDer<'static>>) -> Self {
        Self {
            chain: chain.into(),
            keys: key_support(config),
            memo: Arc::default(),
        }
    }

    /// A peer that presented `chain` in a handshake whose provider verified the common key
    /// types (RSA, P-256, P-384, Ed25519): for a connection accepted outside the adapters.
    pub fn presenting(chain: Vec<CertificateDer<'static>>) -> Self {
        Self {
            chain: chain.into(),
            keys: KeySupport::COMMON,
            memo: Arc::default(),
        }
    }

    /// The chain it presented (empty for none).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The peer as a decision sees it, from `remote`.
    pub fn info(&self, remote: Option<std::net::IpAddr>) -> crate::PeerInfo<'_> {
        crate::PeerInfo::new(&self.chain, remote)
            .with_key_support(self.keys)
            .with_memo(&self.memo)
    }
}

/// The chain a TLS peer presented, as owned DER (empty if none).
pub fn peer_chain(conn: &rustls::ServerConnection) -> Vec<CertificateDer<'static>> {
    conn.peer_certificates()
        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
        .unwrap_or_default()
}
