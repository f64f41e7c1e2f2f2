//! The key table: which client keys are authenticated, with which support, and the codes.

use super::{KeyKind, KeySupport};
use crate::cert::ClientCertificate;
use crate::keys;
use crate::verify::VerifyError;
use certauth_testkit::der;
use certauth_testkit::{Crafted, KeyKind as TestKey, key};

fn with_spki(spki: Vec<u8>) -> ClientCertificate {
    let k = key(TestKey::P256);
    let mut c = Crafted::new(der::simple_name(&[("CN", "k")]));
    c.spki = Some(spki);
    ClientCertificate::from_der(&c.sign(&k, &k)).unwrap()
}

fn spki(alg: Vec<Vec<u8>>, key_bytes: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key_bytes);
    der::seq(&[der::seq(&alg), der::tlv(0x03, &bits)])
}

fn rsa(oid: &str, bits: usize) -> ClientCertificate {
    let mut modulus = vec![0x00, 0x80];
    modulus.extend(std::iter::repeat_n(0xAB, bits / 8 - 1));
    let key = der::seq(&[der::tlv(0x02, &modulus), der::tlv(0x02, &[1, 0, 1])]);
    with_spki(spki(vec![der::oid(oid), der::tlv(0x05, &[])], &key))
}

fn ec(curve: &str) -> ClientCertificate {
    let mut point = vec![0x04];
    point.extend(std::iter::repeat_n(0x11, 64));
    with_spki(spki(
        vec![der::oid("1.2.840.10045.2.1"), der::oid(curve)],
        &point,
    ))
}

const RSA: &str = "1.2.840.113549.1.1.1";
const PSS: &str = "1.2.840.113549.1.1.10";

fn outcome(cert: &ClientCertificate, support: KeySupport) -> String {
    match keys::check(cert, support) {
        Ok(()) => "ok".into(),
        Err(e) => format!("{}: {}", e.code(), key_of(&e)),
    }
}

fn key_of(e: &VerifyError) -> &str {
    match e {
        VerifyError::WeakKey { key } | VerifyError::UnsupportedKey { key } => key,
        _ => "?",
    }
}

#[test]
fn every_key_type_under_each_support() {
    let ring_like = KeySupport::COMMON;
    let aws_like = KeySupport::COMMON.with(KeyKind::P521);
    let rows = [
        (
            rsa(RSA, 1024),
            "WEAK_KEY: RSA 1024 bits",
            "WEAK_KEY: RSA 1024 bits",
        ),
        (
            rsa(RSA, 2040),
            "WEAK_KEY: RSA 2040 bits",
            "WEAK_KEY: RSA 2040 bits",
        ),
        (rsa(RSA, 2048), "ok", "ok"),
        (rsa(RSA, 8192), "ok", "ok"),
        (
            rsa(RSA, 8200),
            "UNSUPPORTED_KEY_TYPE: RSA 8200 bits",
            "UNSUPPORTED_KEY_TYPE: RSA 8200 bits",
        ),
        (
            rsa(PSS, 2048),
            "UNSUPPORTED_KEY_TYPE: RSA-PSS (id-RSASSA-PSS) 2048 bits",
            "UNSUPPORTED_KEY_TYPE: RSA-PSS (id-RSASSA-PSS) 2048 bits",
        ),
        (ec("1.2.840.10045.3.1.7"), "ok", "ok"),
        (ec("1.3.132.0.34"), "ok", "ok"),
        (
            ec("1.3.132.0.35"),
            "UNSUPPORTED_KEY_TYPE: ECDSA P-521",
            "ok",
        ),
        (
            ec("1.3.132.0.10"),
            "UNSUPPORTED_KEY_TYPE: ECDSA on another curve",
            "UNSUPPORTED_KEY_TYPE: ECDSA on another curve",
        ),
        (
            with_spki(spki(vec![der::oid("1.3.101.112")], &[7; 32])),
            "ok",
            "ok",
        ),
        (
            with_spki(spki(vec![der::oid("1.3.101.113")], &[7; 57])),
            "UNSUPPORTED_KEY_TYPE: Ed448",
            "UNSUPPORTED_KEY_TYPE: Ed448",
        ),
        (
            with_spki(spki(vec![der::oid("1.2.840.10040.4.1")], &[7; 8])),
            "UNSUPPORTED_KEY_TYPE: of an unknown algorithm",
            "UNSUPPORTED_KEY_TYPE: of an unknown algorithm",
        ),
    ];
    for (cert, ring, aws) in &rows {
        let alg = cert.public_key_algorithm();
        assert_eq!(outcome(cert, ring_like), *ring, "{alg:?} ring");
        assert_eq!(outcome(cert, aws_like), *aws, "{alg:?} aws-lc-rs");
    }
    // Nothing is authenticated without support; weak stays weak.
    assert!(keys::check(&rows[2].0, KeySupport::NONE).is_err());
    assert_eq!(
        keys::check(&rows[0].0, KeySupport::NONE)
            .unwrap_err()
            .code(),
        "WEAK_KEY"
    );
    // Where possession was checked elsewhere (a proxy, `certauth verify`), every kind of
    // the table is accepted; weak keys, other curves, DSA and oversized RSA are not.
    let everywhere: Vec<String> = rows
        .iter()
        .map(|(c, _, _)| outcome(c, KeySupport::ALL))
        .collect();
    assert_eq!(
        everywhere,
        [
            "WEAK_KEY: RSA 1024 bits",
            "WEAK_KEY: RSA 2040 bits",
            "ok",
            "ok",
            "UNSUPPORTED_KEY_TYPE: RSA 8200 bits",
            "ok",
            "ok",
            "ok",
            "ok",
            "UNSUPPORTED_KEY_TYPE: ECDSA on another curve",
            "ok",
            "ok",
            "UNSUPPORTED_KEY_TYPE: of an unknown algorithm",
        ]
    );
    assert_eq!(
        outcome(&rsa(PSS, 1024), KeySupport::ALL),
        "WEAK_KEY: RSA-PSS (id-RSASSA-PSS) 1024 bits"
    );
}

/// Every key is described by kind and size in its refusal, whatever support refuses it.
#[test]
fn refusals_name_the_key() {
    let named = |c: &ClientCertificate| outcome(c, KeySupport::NONE);
    assert_eq!(
        named(&ec("1.2.840.10045.3.1.7")),
        "UNSUPPORTED_KEY_TYPE: ECDSA P-256"
    );
    assert_eq!(
        named(&ec("1.3.132.0.34")),
        "UNSUPPORTED_KEY_TYPE: ECDSA P-384"
    );
    assert_eq!(
        named(&with_spki(spki(vec![der::oid("1.3.101.112")], &[7; 32]))),
        "UNSUPPORTED_KEY_TYPE: Ed25519"
    );
    assert_eq!(
        named(&rsa(RSA, 2048)),
        "UNSUPPORTED_KEY_TYPE: RSA 2048 bits"
    );
    // RSA-PSS keys have the same size bounds as RSA.
    assert_eq!(
        outcome(&rsa(PSS, 8200), KeySupport::ALL),
        "UNSUPPORTED_KEY_TYPE: RSA-PSS (id-RSASSA-PSS) 8200 bits"
    );
    assert_eq!(outcome(&rsa(PSS, 8192), KeySupport::ALL), "ok");
}

#[test]
fn supports_are_sets() {
    let s = KeySupport::NONE.with(KeyKind::Ed448);
    assert!(s.contains(KeyKind::Ed448) && !s.contains(KeyKind::Rsa));
    let both = s.union(KeySupport::COMMON);
    for k in [
        KeyKind::Rsa,
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::Ed25519,
        KeyKind::Ed448,
    ] {
        assert!(both.contains(k), "{k:?}");
    }
    assert!(!both.contains(KeyKind::P521));
    assert_eq!(KeySupport::default(), KeySupport::COMMON);
    assert_eq!(format!("{:?}", s), "{Ed448}");
}

#[test]
fn problems_say_what_to_do() {
    let weak = keys::check(&rsa(RSA, 1024), KeySupport::COMMON).unwrap_err();
    assert!(weak.to_string().contains("2048 bits or more"), "{weak}");
    let p521 = keys::check(&ec("1.3.132.0.35"), KeySupport::COMMON).unwrap_err();
    assert!(p521.to_string().contains("aws-lc-rs adds P-521"), "{p521}");
}

#[cfg(feature = "rustls")]
#[test]
fn provider_support_is_read_from_its_algorithms() {
    let ring = keys_of(certauth_testkit::ring_provider());
    assert_eq!(ring, KeySupport::COMMON, "{ring:?}");
    // A provider that verifies ECDSA P-256 alone supports that alone, and so does a
    // ServerConfig built with it.
    static ALL: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm] =
        &[webpki::ring::ECDSA_P256_SHA256];
    static MAPPING: &[(
        rustls::SignatureScheme,
        &[&dyn rustls::pki_types::SignatureVerificationAlgorithm],
    )] = &[(rustls::SignatureScheme::ECDSA_NISTP256_SHA256, ALL)];
    let mut narrow = certauth_testkit::ring_provider();
    narrow.signature_verification_algorithms = rustls::crypto::WebPkiSupportedAlgorithms {
        all: ALL,
        mapping: MAPPING,
    };
    assert_eq!(
        keys_of(narrow.clone()),
        KeySupport::NONE.with(KeyKind::P256)
    );
    let key = key(TestKey::P256);
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(narrow))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    assert_eq!(
        crate::tls::key_support(&config),
        KeySupport::NONE.with(KeyKind::P256)
    );
}

#[cfg(feature = "rustls")]
fn keys_of(p: rustls::crypto::CryptoProvider) -> KeySupport {
    crate::tls::provider_key_support(&p)
}

/// Issue 30: a TLS connection's leaf key is judged once. The handshake asks the table only
/// for a signature its provider could not verify, and chain verification and the decision
/// read the verdict the verified leaf keeps (so do the connection's later requests, through
/// its memo). Counted by [`keys::judged`] on this thread, where the in-memory handshake and
/// the decisions run, over TLS 1.2 and 1.3.
#[cfg(feature = "rustls")]
#[test]
fn a_connections_key_is_judged_once() {
    use std::sync::Arc;

    use crate::authenticator::{Authenticator, Decision};
    use crate::tls::{ClientAuthMode, TlsPeer, load_server_identity, server_config};
    use crate::verify::{ChainVerifier, TrustAnchors};
    use certauth_testkit::handshake::{TLS12, TLS13, handshake, presenting};
    use certauth_testkit::{Authority, Leaf};

    let client_root = Authority::root("Once Client CA");
    let server_root = Authority::root("Once Server CA");
    let mut server = Leaf::client("localhost");
    server.eku = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    server.sans = vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())];
    let server = server_root.issue(&server);
    let trusted = client_root.issue(&Leaf::client("trusted-client"));
    // A P-521 key (which ring cannot verify) certified by the trusted root, presented by a
    // client signing with a P-256 key: the handshake excuses the signature, the decision
    // refuses the key.
    let root = ClientCertificate::from_der(&client_root.cert.der).unwrap();
    let mut c = Crafted::new(der::simple_name(&[("CN", "p521-client")]));
    c.issuer = root.subject().raw().to_vec();
    c.spki = Some(spki(
        vec![der::oid("1.2.840.10045.2.1"), der::oid("1.3.132.0.35")],
        &[&[4u8][..], &[0x21; 132]].concat(),
    ));
    let signing = key(TestKey::P256);
    let p521 = rustls::pki_types::CertificateDer::from(c.sign(&signing, &client_root.cert.key));

    let anchors = TrustAnchors::from_der([client_root.cert.der.clone()]).unwrap();
    let (chain, server_key) =
        load_server_identity(server.pem().as_bytes(), server.key_pem().as_bytes()).unwrap();
    let provider = Arc::new(certauth_testkit::ring_provider());
    let config = Arc::new(
        server_config(
            provider,
            chain,
            server_key,
            &anchors,
            ClientAuthMode::Deferred,
        )
        .unwrap(),
    );
    let head = match crate::HeadParser::new(&crate::Limits::DEFAULT)
        .parse(b"GET / HTTP/1.1\r\nHost: server.example\r\n\r\n")
    {
        Ok(crate::HeadProgress::Complete { head, .. }) => head,
        other => panic!("{other:?}"),
    };
    let now = certauth_testkit::now();

    for versions in [TLS12, TLS13] {
        let auth = Authenticator::builder()
            .verifier(ChainVerifier::new(
                anchors.clone(),
                webpki::ALL_VERIFICATION_ALGS,
            ))
            .build()
            .unwrap();
        // Three requests over one connection: judged once, by its first decision.
        let connect = |chain: Vec<_>, key: &rcgen::KeyPair| {
            let client = presenting(&server_root.cert.der, chain, key, versions);
            let conn = handshake(Arc::clone(&config), client).unwrap();
            TlsPeer::of(&config, &conn)
        };
        let decide = |peer: &TlsPeer| auth.decide(&peer.info(None), &head, now).ready().unwrap();
        let before = keys::judged();
        let peer = connect(vec![trusted.der.clone()], &trusted.key);
        for _ in 0..3 {
            assert!(matches!(decide(&peer), Decision::Allow(_)));
        }
        assert_eq!(keys::judged() - before, 1, "a trusted client's connection");

        // Another connection of the same chain reads the verdict the verifier's cache kept.
        let before = keys::judged();
        let again = connect(vec![trusted.der.clone()], &trusted.key);
        assert!(matches!(decide(&again), Decision::Allow(_)));
        assert_eq!(keys::judged() - before, 0, "the same chain again");

        // A key the provider cannot verify: the handshake judges it to finish (it can hand
        // nothing to the connection), the decision once for its code, whatever the requests.
        let before = keys::judged();
        let refused = connect(vec![p521.clone()], &signing);
        assert_eq!(
            keys::judged() - before,
            1,
            "the handshake excusing a signature"
        );
        for _ in 0..3 {
            let Decision::Deny(d) = decide(&refused) else {
                panic!("a P-521 key over ring got in")
            };
            assert_eq!(d.code(), "UNSUPPORTED_KEY_TYPE");
        }
        assert_eq!(keys::judged() - before, 2, "a refused key's connection");
    }
}

/// A resumed client is judged with the key types both the server that made its session
/// and this one verify (`tls::resumption_data`, carried in the ticket): a session made on
/// ring does not let a P-521 key pass on aws-lc-rs; a ticket without the data counts as
/// the common key types; a full handshake is judged with this provider's.
#[cfg(feature = "rustls")]
#[test]
fn a_resumed_client_is_judged_with_both_providers_key_types() {
    use crate::tls::{proven_support, resumption_bytes};
    let ring = KeySupport::COMMON;
    let wide = KeySupport::COMMON.with(KeyKind::P521).with(KeyKind::Ed448);
    assert_eq!(proven_support(wide, None), wide);
    assert_eq!(proven_support(wide, Some(&resumption_bytes(ring))), ring);
    assert_eq!(proven_support(wide, Some(&resumption_bytes(wide))), wide);
    for unknown in [
        &[][..],
        &[0xCA][..],
        &[0x00, 0xFF][..],
        &[0xCA, 0xFF, 0x00][..],
    ] {
        assert_eq!(proven_support(wide, Some(unknown)), ring, "{unknown:?}");
    }
    // Never wider than this server's own, whatever the ticket says; unknown bits ignored.
    assert_eq!(proven_support(ring, Some(&resumption_bytes(wide))), ring);
    assert_eq!(
        proven_support(wide, Some(&[0xCA, 0xFF])),
        KeySupport::ALL.intersection(wide)
    );
    assert_eq!(KeySupport::from_byte(0xFF), KeySupport::ALL);
}

/// A resumed TLS 1.2 handshake counts as a ticket from an unknown maker: rustls hands back
/// resumption data for TLS 1.3 only, and reading just that let a P-521 session made on ring
/// pass on aws-lc-rs over TLS 1.2 (the second attack review of stop 37; `tests/fleet.rs`
/// has it across processes). A full handshake has none.
#[cfg(feature = "rustls")]
#[test]
fn a_resumed_tls12_session_counts_as_an_unknown_makers() {
    use std::sync::Arc;

    use crate::tls::{ClientAuthMode, load_server_identity, resumed, server_config};
    use crate::verify::TrustAnchors;
    use certauth_testkit::handshake::{TLS12, handshake, presenting};
    use certauth_testkit::{Authority, Leaf};

    let client_root = Authority::root("Resume Client CA");
    let server_root = Authority::root("Resume Server CA");
    let mut server = Leaf::client("localhost");
    server.eku = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    server.sans = vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())];
    let server = server_root.issue(&server);
    let trusted = client_root.issue(&Leaf::client("trusted-client"));
    let anchors = TrustAnchors::from_der([client_root.cert.der.clone()]).unwrap();
    let (chain, key) =
        load_server_identity(server.pem().as_bytes(), server.key_pem().as_bytes()).unwrap();
    let provider = Arc::new(certauth_testkit::ring_provider());
    let config =
        Arc::new(server_config(provider, chain, key, &anchors, ClientAuthMode::Deferred).unwrap());
    // What this server's acceptors write into its tickets: the format byte, then the key
    // types ring verifies (the common ones).
    assert_eq!(crate::tls::key_support(&config), KeySupport::COMMON);
    assert_eq!(
        crate::tls::resumption_data(&config),
        [0xCA, KeySupport::COMMON.to_byte()]
    );
    // One client configuration (its session store) for both handshakes: the second resumes.
    let client = presenting(
        &server_root.cert.der,
        vec![trusted.der.clone()],
        &trusted.key,
        TLS12,
    );
    let full = handshake(Arc::clone(&config), Arc::clone(&client)).unwrap();
    assert_eq!(full.handshake_kind(), Some(rustls::HandshakeKind::Full));
    assert_eq!(resumed(&full), None);
    let again = handshake(Arc::clone(&config), client).unwrap();
    assert_eq!(again.handshake_kind(), Some(rustls::HandshakeKind::Resumed));
    assert_eq!(
        again.received_resumption_data(),
        None,
        "rustls returns none over TLS 1.2"
    );
    assert_eq!(resumed(&again), Some(&[][..]));
    assert_eq!(again.peer_certificates().map(<[_]>::len), Some(1));
}
