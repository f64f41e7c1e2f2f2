//! Per-certificate costs: parse, parse + CN policy, parse + SHA-256, the legacy object, and
//! chain verification; with webpki's lazy parse and x509-parser's full parse as baselines
//! measured in the same run.
//!
//! `cargo bench -p certauth-benches --bench cert`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use certauth_core::ClientCertificate;
use certauth_core::policy::{Policy, PolicyContext, RequestInfo, allow_cn};
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_testkit::{Authority, KeyKind, Leaf, now};
use criterion::{Criterion, criterion_group, criterion_main};
use rcgen_sans::sans;

mod rcgen_sans {
    use certauth_testkit::rcgen::SanType;

    /// SANs a typical workload identity certificate carries.
    pub(crate) fn sans() -> Vec<SanType> {
        vec![
            SanType::DnsName("client.example.com".try_into().unwrap()),
            SanType::URI("spiffe://example.com/ns/prod/sa/client".try_into().unwrap()),
            SanType::Rfc822Name("client@example.com".try_into().unwrap()),
        ]
    }
}

fn per_certificate(c: &mut Criterion) {
    let root = Authority::root("Bench Root");
    let inter = root.intermediate("Bench Intermediate");
    let mut leaf = Leaf::client("trusted-client");
    leaf.sans = sans();
    let p256 = inter.issue(&leaf);
    leaf.key = KeyKind::Rsa2048;
    let rsa = inter.issue(&leaf);
    let der = p256.der.to_vec();
    let policy = allow_cn(["trusted-client", "other-client"]);

    let mut g = c.benchmark_group("certificate");
    g.bench_function("certauth parse", |b| {
        b.iter(|| ClientCertificate::from_der(black_box(&der)).unwrap())
    });
    g.bench_function("certauth parse + CN policy", |b| {
        b.iter(|| {
            let cert = ClientCertificate::from_der(black_box(&der)).unwrap();
            let ctx = PolicyContext::new(&cert, None, RequestInfo::new("GET", "/"));
            assert!(policy.evaluate(&ctx).is_allow());
        })
    });
    g.bench_function("certauth parse + SHA-256", |b| {
        b.iter(|| {
            *ClientCertificate::from_der(black_box(&der))
                .unwrap()
                .fingerprint_sha256()
        })
    });
    g.bench_function("certauth parse + legacy object", |b| {
        b.iter(|| {
            ClientCertificate::from_der(black_box(&der))
                .unwrap()
                .to_legacy_object()
        })
    });
    g.bench_function("baseline: webpki EndEntityCert (lazy)", |b| {
        let d = rustls_pki_types::CertificateDer::from(der.as_slice());
        b.iter(|| {
            let _ = webpki::EndEntityCert::try_from(black_box(&d)).unwrap();
        })
    });
    g.bench_function("baseline: x509-parser full parse", |b| {
        b.iter(|| {
            let (_, cert) = x509_parser::parse_x509_certificate(black_box(&der)).unwrap();
            black_box(cert.subject().iter_common_name().count());
        })
    });
    g.finish();

    let mut g = c.benchmark_group("verify");
    let anchors = TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    let verifier = ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS);
    for (label, issued) in [("P-256 leaf", &p256), ("RSA-2048 leaf", &rsa)] {
        let chain = vec![issued.der.clone(), inter.cert.der.clone()];
        g.bench_function(format!("chain of three, {label}"), |b| {
            b.iter(|| verifier.verify(black_box(&chain), now()).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, per_certificate);
criterion_main!(benches);
