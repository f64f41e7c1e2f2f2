//! The short path (`MutualTls`): three PEM contents and a policy give an authenticator
//! and a TLS configuration that let the policy's client in and keep the others out; every
//! error names the input to fix, once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::error::Error as _;
use std::sync::Arc;

use certauth_core::policy::allow_cn;
use certauth_core::{Decision, PeerInfo, RequestHead};
use certauth_core::{MutualTls, SetupError};
use certauth_testkit::suite::Pki;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(certauth_testkit::ring_provider())
}

fn head() -> RequestHead {
    certauth_testkit::head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
}

fn setup(pki: &Pki) -> Result<MutualTls, SetupError> {
    MutualTls::from_pem(
        provider(),
        pki.root.cert.pem().as_bytes(),
        pki.server.pem().as_bytes(),
        pki.server.key_pem().as_bytes(),
        allow_cn(["trusted-client"]),
    )
}

#[test]
fn three_pems_and_a_policy_decide() {
    let pki = Pki::new();
    let m = setup(&pki).unwrap();
    assert!(format!("{m:?}").starts_with("MutualTls"), "{m:?}");
    // The TLS side asks for client certificates and serves the given chain.
    assert!(!m.server_config.alpn_protocols.iter().any(|p| p == b"h2"));
    let decide = |der: &certauth_core::CertificateDer<'static>| {
        let chain = [der.clone()];
        certauth_core::Evaluation::ready(m.authenticator.decide(
            &PeerInfo::new(&chain, None),
            &head(),
            certauth_testkit::wall_clock(),
        ))
        .unwrap()
    };
    assert!(matches!(decide(&pki.trusted.der), Decision::Allow(_)));
    let Decision::Deny(d) = decide(&pki.forbidden.der) else {
        panic!("the policy refuses another CN")
    };
    assert_eq!(d.code(), "POLICY_DENIED");
    let Decision::Deny(d) = decide(&pki.other_ca.der) else {
        panic!("another CA is refused")
    };
    assert_eq!(d.code(), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
}

#[test]
fn errors_name_the_input_to_fix() {
    let pki = Pki::new();
    let ca = pki.root.cert.pem();
    let cert = pki.server.pem();
    let key = pki.server.key_pem();
    let policy = || allow_cn(["x"]);

    let e = MutualTls::from_pem(provider(), b"", cert.as_bytes(), key.as_bytes(), policy())
        .unwrap_err();
    assert!(matches!(e, SetupError::TrustAnchors(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("the client CA file is not usable: no certificate found"),
        "{e}"
    );
    assert!(
        e.source().is_none(),
        "the cause is printed once, in the message"
    );

    // The server's own certificate is not a CA: refused as a client CA.
    let e = MutualTls::from_pem(
        provider(),
        cert.as_bytes(),
        cert.as_bytes(),
        key.as_bytes(),
        policy(),
    )
    .unwrap_err();
    assert!(matches!(e, SetupError::TrustAnchors(_)), "{e:?}");
    assert!(e.to_string().contains("is not a CA certificate"), "{e}");

    let e = MutualTls::from_pem(provider(), ca.as_bytes(), b"nope", key.as_bytes(), policy())
        .unwrap_err();
    assert!(matches!(e, SetupError::ServerCertificate(_)), "{e:?}");
    assert!(e.to_string().starts_with("server certificate:"), "{e}");

    // A key that is not the certificate's.
    let other_key = pki.trusted.key_pem();
    let e = MutualTls::from_pem(
        provider(),
        ca.as_bytes(),
        cert.as_bytes(),
        other_key.as_bytes(),
        policy(),
    )
    .unwrap_err();
    assert!(matches!(e, SetupError::Rustls(_)), "{e:?}");
    assert!(e.to_string().contains("TLS configuration refused"), "{e}");

    let e = SetupError::read_server_key(
        "/etc/app/server.key",
        std::io::Error::from(std::io::ErrorKind::NotFound),
    );
    assert_eq!(
        e.to_string(),
        "cannot read the server key file /etc/app/server.key: entity not found"
    );
    let not_found = || std::io::Error::from(std::io::ErrorKind::NotFound);
    for (e, text) in [
        (
            SetupError::read_client_ca("x", not_found()),
            "client CA file",
        ),
        (
            SetupError::read_server_certificate("x", not_found()),
            "server certificate file",
        ),
        (
            SetupError::read_server_key("x", not_found()),
            "server key file",
        ),
    ] {
        assert!(
            matches!(e, SetupError::Read { file, .. } if file == text),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read the {text} x:")),
            "{e}"
        );
    }
}
