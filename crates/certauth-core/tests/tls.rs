//! The rustls side of the security boundary, driven by real in-memory handshakes: the
//! deferred verifier lets any chain finish the handshake but never one whose key the client
//! does not hold, on TLS 1.2 and TLS 1.3 alike; the strict verifier refuses untrusted
//! chains; the configuration helpers name what is wrong.
#![cfg(feature = "rustls")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::error::Error as _;
use std::sync::Arc;

use certauth_core::TrustAnchors;
use certauth_core::tls::{
    ClientAuthMode, DeferredClientVerifier, TlsConfigError, load_server_identity, peer_chain,
    server_config,
};
use certauth_testkit::handshake::{self, Failed, TLS12, TLS13, presenting, without_certificate};
use certauth_testkit::{Authority, Issued, KeyKind, Leaf, key};
use rustls::server::danger::ClientCertVerifier as _;
use rustls::{CertificateError, ProtocolVersion, SupportedProtocolVersion};

struct Pki {
    client_root: Authority,
    server_root: Authority,
    server: Issued,
    trusted: Issued,
    other: Issued,
    other_ca: Issued,
}

fn pki() -> Pki {
    let client_root = Authority::root("TLS Client CA");
    let server_root = Authority::root("TLS Server CA");
    let mut server = Leaf::client("localhost");
    server.eku = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    server.sans = vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())];
    let other_root = Authority::root("TLS Other CA");
    Pki {
        server: server_root.issue(&server),
        trusted: client_root.issue(&Leaf::client("trusted-client")),
        other: client_root.issue(&Leaf::client("other-client")),
        other_ca: other_root.issue(&Leaf::client("trusted-client")),
        client_root,
        server_root,
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn anchors(pki: &Pki) -> TrustAnchors {
    TrustAnchors::from_der([pki.client_root.cert.der.clone()]).unwrap()
}

fn server(pki: &Pki, mode: ClientAuthMode) -> Arc<rustls::ServerConfig> {
    let (chain, key) =
        load_server_identity(pki.server.pem().as_bytes(), pki.server.key_pem().as_bytes()).unwrap();
    Arc::new(server_config(provider(), chain, key, &anchors(pki), mode).unwrap())
}

/// `cert` presented with `key_of`'s key, over `versions`.
fn client(
    pki: &Pki,
    cert: &Issued,
    key_of: &Issued,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    presenting(
        &pki.server_root.cert.der,
        vec![cert.der.clone()],
        &key_of.key,
        versions,
    )
}

const VERSIONS: [(&[&SupportedProtocolVersion], ProtocolVersion); 2] = [
    (TLS12, ProtocolVersion::TLSv1_2),
    (TLS13, ProtocolVersion::TLSv1_3),
];

#[test]
fn deferred_a_client_holding_its_key_finishes_and_its_chain_is_kept() {
    let pki = pki();
    for (versions, version) in VERSIONS {
        let conn = handshake::handshake(
            server(&pki, ClientAuthMode::Deferred),
            client(&pki, &pki.trusted, &pki.trusted, versions),
        )
        .unwrap();
        assert_eq!(conn.protocol_version(), Some(version));
        assert_eq!(
            peer_chain(&conn),
            vec![pki.trusted.der.clone()],
            "{version:?}"
        );
    }
}

#[test]
fn deferred_a_certificate_presented_without_its_key_fails_the_handshake() {
    // A stolen certificate: the client signs the handshake with another key. The server
    // must refuse it on both versions (TLS 1.2 CertificateVerify signs the handshake hash
    // with the TLS 1.2 scheme rules, TLS 1.3 with its own).
    let pki = pki();
    for (versions, version) in VERSIONS {
        let failed = handshake::handshake(
            server(&pki, ClientAuthMode::Deferred),
            client(&pki, &pki.trusted, &pki.other, versions),
        );
        match failed {
            Err(Failed::Server(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))) => {}
            other => {
                panic!("{version:?}: expected the server to refuse the signature, got {other:?}")
            }
        }
    }
}

#[test]
fn deferred_untrusted_and_missing_certificates_finish_the_handshake() {
    // The core answers them with a 401 and a code after the handshake.
    let pki = pki();
    for (versions, version) in VERSIONS {
        let conn = handshake::handshake(
            server(&pki, ClientAuthMode::Deferred),
            client(&pki, &pki.other_ca, &pki.other_ca, versions),
        )
        .unwrap();
        assert_eq!(
            peer_chain(&conn),
            vec![pki.other_ca.der.clone()],
            "{version:?}"
        );

        let none = Arc::new(without_certificate(&pki.server_root.cert.der, versions));
        let conn = handshake::handshake(server(&pki, ClientAuthMode::Deferred), none).unwrap();
        assert!(peer_chain(&conn).is_empty(), "{version:?}");
    }
}

#[test]
fn strict_refuses_untrusted_and_missing_certificates_in_the_handshake() {
    let pki = pki();
    for (versions, version) in VERSIONS {
        let ok = handshake::handshake(
            server(&pki, ClientAuthMode::Strict),
            client(&pki, &pki.trusted, &pki.trusted, versions),
        )
        .unwrap();
        assert_eq!(peer_chain(&ok), vec![pki.trusted.der.clone()]);

        let untrusted = handshake::handshake(
            server(&pki, ClientAuthMode::Strict),
            client(&pki, &pki.other_ca, &pki.other_ca, versions),
        );
        assert!(
            matches!(
                untrusted,
                Err(Failed::Server(rustls::Error::InvalidCertificate(_)))
            ),
            "{version:?}: {untrusted:?}"
        );
        let none = Arc::new(without_certificate(&pki.server_root.cert.der, versions));
        let missing = handshake::handshake(server(&pki, ClientAuthMode::Strict), none);
        assert!(
            matches!(
                missing,
                Err(Failed::Server(rustls::Error::NoCertificatesPresented))
            ),
            "{version:?}: {missing:?}"
        );
    }
}

#[test]
fn deferred_verifier_requests_optionally_hints_the_anchors_and_offers_the_providers_schemes() {
    let pki = pki();
    let provider = provider();
    let v = DeferredClientVerifier::new(&anchors(&pki), &provider);
    assert!(v.offer_client_auth());
    assert!(!v.client_auth_mandatory());
    let hints: Vec<&[u8]> = v.root_hint_subjects().iter().map(|d| d.as_ref()).collect();
    let ca = certauth_core::ClientCertificate::from_der(&pki.client_root.cert.der).unwrap();
    assert_eq!(hints, vec![ca.subject().raw()]);
    assert_eq!(
        v.supported_verify_schemes(),
        provider
            .signature_verification_algorithms
            .supported_schemes()
    );
    assert!(!v.supported_verify_schemes().is_empty());
}

#[test]
fn peer_chain_of_a_connection_without_a_handshake_is_empty() {
    let pki = pki();
    let conn = rustls::ServerConnection::new(server(&pki, ClientAuthMode::Deferred)).unwrap();
    assert!(peer_chain(&conn).is_empty());
}

#[test]
fn configuration_errors_name_the_part_and_keep_their_source() {
    let pki = pki();
    let e = load_server_identity(b"not pem", pki.server.key_pem().as_bytes()).unwrap_err();
    assert!(matches!(e, TlsConfigError::ServerCertificate(_)));
    assert_eq!(
        e.to_string(),
        "server certificate: no `-----BEGIN CERTIFICATE-----` block found"
    );
    assert!(e.source().is_none());

    let e = load_server_identity(pki.server.pem().as_bytes(), b"").unwrap_err();
    assert!(matches!(e, TlsConfigError::ServerKey(_)));
    assert!(e.to_string().starts_with("server private key: "), "{e}");
    assert!(e.to_string().contains("expected a `PRIVATE KEY`"), "{e}");

    // A key that does not belong to the certificate.
    let (chain, _) =
        load_server_identity(pki.server.pem().as_bytes(), pki.server.key_pem().as_bytes()).unwrap();
    let wrong =
        rustls::pki_types::PrivateKeyDer::try_from(key(KeyKind::P256).serialize_der()).unwrap();
    let e = server_config(
        provider(),
        chain,
        wrong,
        &anchors(&pki),
        ClientAuthMode::Deferred,
    )
    .unwrap_err();
    assert!(matches!(e, TlsConfigError::Rustls(_)), "{e:?}");
    assert!(
        e.to_string().starts_with("TLS configuration refused: "),
        "{e}"
    );
    assert!(e.source().is_some());

    let e = TlsConfigError::Verifier("no roots".into());
    assert_eq!(e.to_string(), "client verifier: no roots");
    assert!(e.source().is_none());
}
