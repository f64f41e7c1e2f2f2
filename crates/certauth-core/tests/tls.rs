//! The rustls side of the security boundary, driven by real in-memory handshakes: the
//! deferred verifier lets any chain finish the handshake but never one whose key the client
//! does not hold, on TLS 1.2 and TLS 1.3 alike; the strict verifier refuses untrusted
//! chains; the configuration helpers name what is wrong.
#![cfg(feature = "rustls")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::error::Error as _;
use std::sync::Arc;

use certauth_core::tls::{
    ClientAuthMode, deferred_verifier, load_server_identity, peer_chain, server_config,
};
use certauth_core::{SetupError, TrustAnchors};
use certauth_testkit::handshake::{self, Failed, TLS12, TLS13, presenting, without_certificate};
use certauth_testkit::{Authority, Issued, KeyKind, Leaf, key};
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
    Arc::new(certauth_testkit::ring_provider())
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
    let v = deferred_verifier(&anchors(&pki), &provider);
    assert!(v.offer_client_auth());
    assert!(!v.client_auth_mandatory());
    let hints: Vec<&[u8]> = v.root_hint_subjects().iter().map(|d| d.as_ref()).collect();
    let ca = certauth_core::ClientCertificate::from_der(&pki.client_root.cert.der).unwrap();
    assert_eq!(hints, vec![ca.subject().raw()]);
    // The provider's schemes first, then those of keys it cannot verify, so that such a
    // client still sends its certificate and hears why it is refused.
    let own = provider
        .signature_verification_algorithms
        .supported_schemes();
    let offered = v.supported_verify_schemes();
    assert_eq!(offered[..own.len()], own[..]);
    for extra in [
        rustls::SignatureScheme::ECDSA_NISTP521_SHA512,
        rustls::SignatureScheme::ED448,
        rustls::SignatureScheme::Unknown(0x0809),
    ] {
        assert!(offered.contains(&extra), "{extra:?}");
    }
    assert_eq!(offered.len(), own.len() + 8, "{offered:?}");
}

/// A certificate whose key the provider cannot verify (or too weak to trust) finishes the
/// handshake without its signature checked, and the decision refuses it whatever else
/// holds: possession is never assumed for a client let in. A key the provider does verify
/// is always checked, even when the certificate's key is not the client's.
#[test]
fn deferred_unverifiable_keys_finish_the_handshake_and_are_refused_by_the_decision() {
    use certauth_core::{Authenticator, Decision, PeerInfo, verify::ChainVerifier};
    use certauth_testkit::{Crafted, der};
    let pki = pki();
    let root = certauth_core::ClientCertificate::from_der(&pki.client_root.cert.der).unwrap();
    let spki = |alg: Vec<Vec<u8>>, key: Vec<u8>| {
        der::seq(&[der::seq(&alg), der::tlv(0x03, &[&[0u8][..], &key].concat())])
    };
    let mut modulus = vec![0x00, 0xC1];
    modulus.extend([0x5A; 127]);
    let rsa1024 = spki(
        vec![der::oid("1.2.840.113549.1.1.1"), der::tlv(0x05, &[])],
        der::seq(&[der::tlv(0x02, &modulus), der::tlv(0x02, &[1, 0, 1])]),
    );
    let p521 = spki(
        vec![der::oid("1.2.840.10045.2.1"), der::oid("1.3.132.0.35")],
        [&[4u8][..], &[0x33; 132]].concat(),
    );
    let ed448 = spki(vec![der::oid("1.3.101.113")], vec![0x44; 57]);
    let ed25519 = spki(vec![der::oid("1.3.101.112")], vec![0x55; 32]);
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors(&pki),
            provider().signature_verification_algorithms.all,
        ))
        .build()
        .unwrap();
    let head = certauth_testkit::head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    for (versions, version) in VERSIONS {
        for (name, spki_der, want) in [
            ("rsa1024", &rsa1024, Ok("WEAK_KEY")),
            ("p521", &p521, Ok("UNSUPPORTED_KEY_TYPE")),
            ("ed448", &ed448, Ok("UNSUPPORTED_KEY_TYPE")),
            ("ed25519", &ed25519, Err(())),
        ] {
            let mut c = Crafted::new(der::simple_name(&[("CN", "trusted-client")]));
            c.issuer = root.subject().raw().to_vec();
            c.spki = Some(spki_der.clone());
            let cert = c.sign(&pki.client_root.cert.key, &pki.client_root.cert.key);
            // The client signs with a P-256 key of its own: not the certificate's.
            let client = presenting(
                &pki.server_root.cert.der,
                vec![cert.into()],
                &key(KeyKind::P256),
                versions,
            );
            let done = handshake::handshake(server(&pki, ClientAuthMode::Deferred), client);
            match (done, want) {
                (Ok(conn), Ok(code)) => {
                    let chain = peer_chain(&conn);
                    let decision = auth.decide(
                        &PeerInfo::new(&chain, None),
                        &head,
                        certauth_testkit::wall_clock(),
                    );
                    match decision.ready() {
                        Some(Decision::Deny(d)) => assert_eq!(d.code(), code, "{name}"),
                        other => panic!("{version:?} {name}: {other:?}"),
                    }
                }
                (Err(Failed::Server(_)), Err(())) => {}
                (other, _) => panic!("{version:?} {name}: {:?}", other.map(|_| ())),
            }
        }
    }
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
    assert!(matches!(e, SetupError::ServerCertificate(_)));
    assert_eq!(
        e.to_string(),
        "server certificate: no `-----BEGIN CERTIFICATE-----` block found"
    );
    assert!(e.source().is_none());

    let e = load_server_identity(pki.server.pem().as_bytes(), b"").unwrap_err();
    assert!(matches!(e, SetupError::ServerKey(_)));
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
    assert!(matches!(e, SetupError::Rustls(_)), "{e:?}");
    assert!(
        e.to_string().starts_with("TLS configuration refused: "),
        "{e}"
    );
    assert!(
        e.source().is_none(),
        "the message prints rustls' error once"
    );

    let e = SetupError::Verifier("no roots".into());
    assert_eq!(e.to_string(), "client verifier: no roots");
    assert!(e.source().is_none());
}

/// A `TlsConfig` hands out the configuration in force; `reload` replaces it for every clone,
/// and connections already holding the old one keep it.
#[test]
fn tls_config_reloads_for_every_clone() {
    use certauth_core::tls::TlsConfig;
    let pki = pki();
    let first = server(&pki, ClientAuthMode::Deferred);
    let second = server(&pki, ClientAuthMode::Strict);
    let config = TlsConfig::new(Arc::clone(&first));
    let clone = config.clone();
    let held = config.current();
    assert!(Arc::ptr_eq(&held, &first));
    clone.reload(Arc::clone(&second));
    assert!(Arc::ptr_eq(&config.current(), &second));
    assert!(Arc::ptr_eq(&held, &first));
    assert!(format!("{config:?}").starts_with("TlsConfig"), "{config:?}");
}

/// ALPN: a configuration without protocols gets the ones asked for; one with its own keeps
/// them.
#[test]
fn with_alpn_fills_in_and_never_overrides() {
    use certauth_core::tls::{ALPN_HTTP2_AND_HTTP1, with_alpn};
    let pki = pki();
    let bare = server(&pki, ClientAuthMode::Deferred);
    assert!(bare.alpn_protocols.is_empty());
    let offered = with_alpn(Arc::clone(&bare), &ALPN_HTTP2_AND_HTTP1);
    assert_eq!(
        offered.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let own = with_alpn(Arc::clone(&offered), &[b"http/1.1"]);
    assert!(Arc::ptr_eq(&own, &offered));
}

/// `TlsConfig::offering`: the protocols reach the first configuration and every reload that
/// offers none, for every clone; a configuration with its own keeps them.
#[test]
fn tls_config_offers_its_protocols_to_every_reload() {
    use certauth_core::tls::{ALPN_HTTP1, TlsConfig};
    let pki = pki();
    let bare = server(&pki, ClientAuthMode::Deferred);
    let plain = TlsConfig::new(Arc::clone(&bare));
    let clone = plain.clone();
    assert!(plain.current().alpn_protocols.is_empty());
    let config = plain.offering(&ALPN_HTTP1);
    let http1 = [b"http/1.1".to_vec()];
    assert_eq!(config.current().alpn_protocols, http1);
    clone.reload(Arc::clone(&bare));
    assert_eq!(config.current().alpn_protocols, http1);
    let mut own = (*bare).clone();
    own.alpn_protocols = vec![b"h2".to_vec()];
    clone.reload(Arc::new(own));
    assert_eq!(config.current().alpn_protocols, [b"h2".to_vec()]);
}

/// A `--ca` bundle whose names are over what a CertificateRequest holds: no CA is named
/// (with a warning to log), and a trusted client still completes the handshake, on TLS 1.2
/// and 1.3, deferred and strict. A bundle within it keeps its names.
#[test]
fn a_bundle_of_600_roots_names_no_ca_and_clients_still_get_through() {
    use certauth_core::tls::{MAX_CA_HINT_BYTES, ca_hints};
    let pki = pki();
    let pem = format!(
        "{}{}",
        certauth_testkit::bundle_of_roots(600),
        pki.client_root.cert.pem()
    );
    let big = TrustAnchors::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(big.certificates().len(), 601);
    let (hints, warning) = ca_hints(&big);
    assert!(hints.is_empty());
    let warning = warning.unwrap();
    assert!(
        warning.starts_with("the 601 client CAs' names take ") && warning.contains("no CA names"),
        "{warning}"
    );
    assert!(
        deferred_verifier(&big, &provider())
            .root_hint_subjects()
            .is_empty()
    );
    for mode in [ClientAuthMode::Deferred, ClientAuthMode::Strict] {
        let (chain, key) =
            load_server_identity(pki.server.pem().as_bytes(), pki.server.key_pem().as_bytes())
                .unwrap();
        let config = Arc::new(server_config(provider(), chain, key, &big, mode).unwrap());
        for (versions, version) in VERSIONS {
            let conn = handshake::handshake(
                Arc::clone(&config),
                client(&pki, &pki.trusted, &pki.trusted, versions),
            );
            let conn = conn.unwrap_or_else(|e| panic!("{mode:?} {version:?}: {e:?}"));
            assert_eq!(peer_chain(&conn), vec![pki.trusted.der.clone()]);
        }
    }
    // 200 of them fit: every name is hinted.
    let pem = certauth_testkit::bundle_of_roots(200);
    let some = TrustAnchors::from_pem(pem.as_bytes()).unwrap();
    let (hints, warning) = ca_hints(&some);
    assert_eq!((hints.len(), warning), (200, None));
    let bytes: usize = hints.iter().map(|h| h.as_ref().len() + 2).sum();
    assert!(bytes <= MAX_CA_HINT_BYTES && bytes > 30_000, "{bytes}");
}

/// The limit counts each name with its 2-byte length, as TLS writes it: the most roots that
/// fit keep their names, one more (or the same names without their lengths counted) would
/// not.
#[test]
fn ca_hints_count_each_name_with_its_length_up_to_the_limit() {
    use certauth_core::tls::{MAX_CA_HINT_BYTES, ca_hints};
    let one = TrustAnchors::from_pem(certauth_testkit::bundle_of_roots(1).as_bytes()).unwrap();
    let name = one.certificates()[0].subject().raw().len();
    let fit = MAX_CA_HINT_BYTES / (name + 2);
    let over = MAX_CA_HINT_BYTES / name;
    assert!(
        fit < over && over * (name + 2) > MAX_CA_HINT_BYTES,
        "{name}"
    );
    for (n, hinted) in [(fit, true), (over, false)] {
        let pem = certauth_testkit::bundle_of_roots(n);
        let anchors = TrustAnchors::from_pem(pem.as_bytes()).unwrap();
        let (hints, warning) = ca_hints(&anchors);
        assert_eq!(hints.len(), if hinted { n } else { 0 }, "{n} roots");
        assert_eq!(warning.is_none(), hinted, "{n} roots");
    }
}
