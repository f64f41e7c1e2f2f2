//! TLS clients that present any chain with any key, and an in-memory handshake between a
//! rustls client and a server configuration: the core's verifiers tested without sockets,
//! for TLS 1.2 and TLS 1.3 alike.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection,
    SupportedProtocolVersion,
};

/// Only TLS 1.2.
pub const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
/// Only TLS 1.3.
pub const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// A client config trusting `server_root`, limited to `versions`, presenting `chain` and
/// signing with `key` without rustls' checks that they belong together (for crafted
/// certificates and stolen ones: a certificate presented with another key).
pub fn presenting(
    server_root: &CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: &rcgen::KeyPair,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);
    impl rustls::client::ResolvesClientCert for Fixed {
        fn resolve(
            &self,
            _: &[&[u8]],
            _: &[rustls::SignatureScheme],
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(Arc::clone(&self.0))
        }
        fn has_certs(&self) -> bool {
            true
        }
    }
    let mut config = without_certificate(server_root, versions);
    let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
    config.client_auth_cert_resolver = Arc::new(Fixed(Arc::new(rustls::sign::CertifiedKey::new(
        chain, signing,
    ))));
    Arc::new(config)
}

/// A client config trusting `server_root`, limited to `versions`, with no certificate.
pub fn without_certificate(
    server_root: &CertificateDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(server_root.clone()).unwrap();
    ClientConfig::builder_with_provider(Arc::new(crate::ring_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Which side of an in-memory handshake failed, and why.
#[derive(Debug)]
pub enum Failed {
    Client(rustls::Error),
    Server(rustls::Error),
}

/// Runs a handshake for `localhost` between `client` and `server` in memory. On success the
/// server connection holds the peer's chain (`peer_certificates`) and the negotiated
/// version.
pub fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> Result<ServerConnection, Failed> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(client, name).map_err(Failed::Client)?;
    let mut s = ServerConnection::new(server).map_err(Failed::Server)?;
    // A full handshake is at most a handful of flights; the bound stops a stuck one.
    for _ in 0..16 {
        let mut wire = Vec::new();
        c.write_tls(&mut wire).unwrap();
        if !wire.is_empty() {
            s.read_tls(&mut wire.as_slice()).unwrap();
            s.process_new_packets().map_err(Failed::Server)?;
        }
        wire.clear();
        s.write_tls(&mut wire).unwrap();
        if !wire.is_empty() {
            c.read_tls(&mut wire.as_slice()).unwrap();
            c.process_new_packets().map_err(Failed::Client)?;
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(s);
        }
    }
    panic!("in-memory handshake did not finish in 16 flights");
}
