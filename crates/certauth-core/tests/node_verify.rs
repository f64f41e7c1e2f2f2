//! Our error codes against what Node's own TLS server reports in
//! `socket.authorizationError` (with `requestCert: true, rejectUnauthorized: false`), for the
//! same PKI and the same client chains, at the wall-clock time (Node reads the clock).
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_testkit::node::{self, TlsCase};
use certauth_testkit::{Authority, Issued, Leaf, wall_clock};
use rcgen::ExtendedKeyUsagePurpose;

struct Case {
    label: &'static str,
    root: usize,
    chain: Vec<Issued>,
    with_crl: bool,
}

#[test]
fn error_codes_match_node() {
    let now = wall_clock().as_secs() as i64;
    let roots = [
        Authority::root("Node Root A"),
        Authority::root("Node Root B"),
    ];
    let (a, b) = (&roots[0], &roots[1]);
    let a_inter = a.intermediate("Node Intermediate A");
    let b_inter = b.intermediate("Node Intermediate B");
    let imposter = Authority::root("Node Root A");
    let leaf = |cn: &str| Leaf::client(cn).around_wall_clock();

    let revoked = a.issue(&leaf("revoked"));
    let crl = a.crl(&[&revoked]);

    let mut cases = vec![
        Case {
            label: "trusted",
            root: 0,
            chain: vec![a.issue(&leaf("ok"))],
            with_crl: false,
        },
        Case {
            label: "chain of three",
            root: 0,
            chain: vec![a_inter.issue(&leaf("deep")), clone(&a_inter.cert)],
            with_crl: false,
        },
        Case {
            label: "other CA",
            root: 0,
            chain: vec![b.issue(&leaf("x"))],
            with_crl: false,
        },
        Case {
            label: "other CA with its intermediate",
            root: 0,
            chain: vec![b_inter.issue(&leaf("x")), clone(&b_inter.cert)],
            with_crl: false,
        },
        Case {
            label: "other CA with its whole chain",
            root: 0,
            chain: vec![
                b_inter.issue(&leaf("x")),
                clone(&b_inter.cert),
                clone(&b.cert),
            ],
            with_crl: false,
        },
        Case {
            label: "issuer name right, key identifier wrong",
            root: 0,
            chain: vec![imposter.issue(&leaf("eve"))],
            with_crl: false,
        },
        Case {
            label: "corrupted signature",
            root: 0,
            chain: vec![corrupt(a.issue(&leaf("eve")))],
            with_crl: false,
        },
        Case {
            label: "revoked",
            root: 0,
            chain: vec![revoked],
            with_crl: true,
        },
        Case {
            label: "not revoked",
            root: 0,
            chain: vec![a.issue(&leaf("fine"))],
            with_crl: true,
        },
    ];
    let mut expired = leaf("expired");
    expired.not_before = now - 10 * 86_400;
    expired.not_after = now - 5 * 86_400;
    cases.push(Case {
        label: "expired",
        root: 0,
        chain: vec![a.issue(&expired)],
        with_crl: false,
    });
    let mut future = leaf("future");
    future.not_before = now + 5 * 86_400;
    future.not_after = now + 10 * 86_400;
    cases.push(Case {
        label: "not yet valid",
        root: 0,
        chain: vec![a.issue(&future)],
        with_crl: false,
    });
    let mut server_only = leaf("server only");
    server_only.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
    cases.push(Case {
        label: "serverAuth only",
        root: 0,
        chain: vec![a.issue(&server_only)],
        with_crl: false,
    });
    // Self-signed: a "CA" that issues itself... a plain self-signed client certificate.
    cases.push(Case {
        label: "self-signed",
        root: 0,
        chain: vec![self_signed()],
        with_crl: false,
    });

    let crl_pem = certauth_testkit::pem("X509 CRL", &crl);
    let tls_cases: Vec<TlsCase> = cases
        .iter()
        .map(|c| TlsCase {
            ca_pem: roots[c.root].cert.pem(),
            client_chain_pem: c.chain.iter().map(Issued::pem).collect(),
            client_key_pem: c.chain[0].key_pem(),
            crl_pem: if c.with_crl {
                crl_pem.clone()
            } else {
                String::new()
            },
        })
        .collect();
    let node_codes = node::authorization_errors(&tls_cases);
    assert_eq!(
        node_codes.len(),
        cases.len(),
        "Node answered for every case"
    );

    let mut mismatches = Vec::new();
    for (c, node_code) in cases.iter().zip(&node_codes) {
        let anchors = TrustAnchors::from_der([roots[c.root].cert.der.clone()]).unwrap();
        let mut v = ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS);
        if c.with_crl {
            v = v.with_crls([crl.clone()]).unwrap();
        }
        let chain: Vec<_> = c.chain.iter().map(|i| i.der.clone()).collect();
        let ours = match v.verify(&chain, wall_clock()) {
            Ok(_) => "OK",
            Err(e) => e.code(),
        };
        if ours != node_code {
            mismatches.push(format!("{}: ours {ours}, node {node_code}", c.label));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Flips a bit in the signature (the last byte of the DER).
fn corrupt(i: Issued) -> Issued {
    let mut der = i.der.to_vec();
    *der.last_mut().unwrap() ^= 0x01;
    Issued::new(der.into(), i.key)
}

fn clone(i: &Issued) -> Issued {
    i.cert_only()
}

fn self_signed() -> Issued {
    let key = certauth_testkit::key(certauth_testkit::KeyKind::P256);
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "self");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let der = params.self_signed(&key).unwrap().der().clone();
    Issued::new(der, key)
}
