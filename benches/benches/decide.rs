//! Per-request decisions: policies (a CN allowlist, 10,000 SHA-256 pins, a nested policy
//! file) and the whole `Authenticator::decide` from a TLS peer chain and from each proxy
//! header encoding, with and without re-verifying the forwarded chain.
//!
//! `cargo bench -p certauth-benches --bench decide`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use certauth_core::policy::file::PolicyFile;
use certauth_core::policy::{Policy, PolicyContext, RequestInfo, allow_cn, allow_fingerprints};
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{
    Authenticator, ClientCertificate, Decision, HeadParser, HeadProgress, Limits, PeerInfo, Preset,
    ProxyHeaderConfig, RequestHead,
};
use certauth_testkit::{Authority, Leaf, encode, now};
use criterion::{Criterion, criterion_group, criterion_main};

const NESTED: &str = r#"
[allow]
any_of = [
  { all_of = [ { issuer = { CN = "Bench Intermediate" } }, { not = { ou = ["contractors"] } }, { cn = ["nobody"] } ] },
  { all_of = [ { san = ["DNS:other.example"] }, { email = ["x@example.com"] } ] },
  { spiffe_trust_domain = { trust_domain = "example.com", path_prefix = "/ns/prod" } },
  { cn = ["trusted-client"] },
]
"#;

fn benches(c: &mut Criterion) {
    let root = Authority::root("Bench Root");
    let inter = root.intermediate("Bench Intermediate");
    let mut leaf = Leaf::client("trusted-client");
    leaf.sans = vec![rcgen_san_dns("client.example.com")];
    let leaf = inter.issue(&leaf);
    let cert = ClientCertificate::from_der(&leaf.der).unwrap();

    let mut g = c.benchmark_group("policy");
    let ctx = PolicyContext::new(&cert, None, RequestInfo::new("GET", "/"));
    let cn = allow_cn(["trusted-client", "other"]);
    g.bench_function("allow_cn (2 names)", |b| {
        b.iter(|| black_box(cn.evaluate(black_box(&ctx))))
    });
    let mut pins: Vec<String> = (0..9_999u32).map(|i| format!("{i:064x}")).collect();
    pins.push(cert.fingerprint_sha256_hex());
    let pinned = allow_fingerprints(&pins).unwrap();
    let _ = cert.fingerprint_sha256(); // computed once per certificate, like a connection
    g.bench_function("allow_fingerprints (10,000 pins)", |b| {
        b.iter(|| black_box(pinned.evaluate(black_box(&ctx))))
    });
    let file = PolicyFile::from_toml(NESTED).unwrap();
    g.bench_function("nested policy file", |b| {
        b.iter(|| black_box(file.evaluate(black_box(&ctx))))
    });
    g.finish();

    let anchors = || TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    let verifier = || ChainVerifier::new(anchors(), webpki::ALL_VERIFICATION_ALGS);
    let head_bytes =
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let head = parse_head(head_bytes);
    let chain = [leaf.der.clone(), inter.cert.der.clone()];

    let mut g = c.benchmark_group("decide");
    let uncached = Authenticator::builder()
        .verifier(verifier().with_cache_entries(0))
        .policy(allow_cn(["trusted-client"]))
        .build()
        .unwrap();
    g.bench_function("TLS peer, chain of three (verifies two signatures)", |b| {
        b.iter(|| {
            let d = uncached
                .decide(&PeerInfo::new(black_box(&chain), None), &head, now())
                .ready()
                .unwrap();
            assert!(matches!(d, Decision::Allow(_)));
        })
    });
    let tls = Authenticator::builder()
        .verifier(verifier())
        .policy(allow_cn(["trusted-client"]))
        .build()
        .unwrap();
    g.bench_function("TLS peer, chain of three, known to the cache", |b| {
        b.iter(|| {
            let d = tls
                .decide(&PeerInfo::new(black_box(&chain), None), &head, now())
                .ready()
                .unwrap();
            assert!(matches!(d, Decision::Allow(_)));
        })
    });
    let memo = certauth_core::verify::PeerMemo::new();
    g.bench_function(
        "TLS peer, chain of three, remembered by the connection",
        |b| {
            b.iter(|| {
                let peer = PeerInfo::new(black_box(&chain), None).with_memo(&memo);
                let d = tls.decide(&peer, &head, now()).ready().unwrap();
                assert!(matches!(d, Decision::Allow(_)));
            })
        },
    );
    let none = PeerInfo::new(&[], None);
    g.bench_function("TLS peer, no certificate (401)", |b| {
        b.iter(|| black_box(tls.decide(&none, &head, now()).ready().unwrap()))
    });

    let pem_chain = format!("{}{}", leaf.pem(), inter.cert.pem());
    let xfcc = format!(
        "By=spiffe://example.com/edge;Hash={};Cert=\"{}\";Chain=\"{}\";URI=spiffe://example.com/client",
        encode::sha256_hex(&leaf.der),
        encode::nginx_escaped(&leaf.pem()),
        encode::nginx_escaped(&pem_chain),
    );
    let cases: Vec<(&str, Preset, String, Option<String>)> = vec![
        (
            "nginx url-pem",
            Preset::Nginx,
            encode::nginx_escaped(&pem_chain),
            None,
        ),
        (
            "aws-alb url-pem-aws",
            Preset::AwsAlb,
            encode::aws_alb(&pem_chain),
            None,
        ),
        ("envoy xfcc", Preset::Envoy, xfcc, None),
        (
            "traefik base64-der",
            Preset::Traefik,
            encode::traefik(&[&leaf.der, &inter.cert.der]),
            None,
        ),
        (
            "cloudflare base64-der",
            Preset::Cloudflare,
            encode::base64_der(&leaf.der),
            None,
        ),
        (
            "rfc9440",
            Preset::Rfc9440,
            encode::sf_binary(&leaf.der),
            Some(encode::sf_binary(&inter.cert.der)),
        ),
    ];
    let remote = Some("127.0.0.1".parse().unwrap());
    for (label, preset, value, chain_value) in cases {
        let cfg = ProxyHeaderConfig::preset(preset)
            .with_trusted_proxies(["127.0.0.1"])
            .unwrap();
        let mut text = format!(
            "GET /ws HTTP/1.1\r\nHost: a\r\n{}: {value}\r\n",
            preset.header()
        );
        if let Some(cv) = chain_value {
            text.push_str(&format!("Client-Cert-Chain: {cv}\r\n"));
        }
        text.push_str("\r\n");
        let h = parse_head(text.as_bytes());
        for reverify in [false, true] {
            let mut b = Authenticator::builder()
                .proxy_header(cfg.clone().with_reverify(reverify))
                .policy(allow_cn(["trusted-client"]));
            if reverify {
                // Cloudflare forwards the leaf only: the server knows the intermediate. The
                // cache is off: this measures the verification itself.
                let with_inter = verifier()
                    .with_intermediates([inter.cert.der.clone()])
                    .unwrap()
                    .with_cache_entries(0);
                b = b.verifier(with_inter);
            }
            let auth = b.build().unwrap();
            let name = format!(
                "header {label}{}",
                if reverify { ", re-verified" } else { "" }
            );
            let peer = PeerInfo::new(&[], remote);
            g.bench_function(name, |bn| {
                bn.iter(|| {
                    let d = auth.decide(&peer, black_box(&h), now()).ready().unwrap();
                    assert!(matches!(d, Decision::Allow(_)), "{d:?}");
                })
            });
        }
    }
    g.finish();
}

fn rcgen_san_dns(name: &str) -> certauth_testkit::rcgen::SanType {
    certauth_testkit::rcgen::SanType::DnsName(name.try_into().unwrap())
}

/// The decision with online revocation answers in the cache (issue 33: at most 1.1× the
/// decision without): a cached OCSP answer from OpenSSL's responder, a CRL fetched from a
/// distribution point, both, and neither, over one chain known to the verifier's cache.
fn revocation(c: &mut Criterion) {
    use certauth_core::revocation::Revocation;
    use certauth_testkit::revocation::{Files, Responder, client, free_port, responder_cert};
    let root = Authority::root("Bench Root");
    let inter = root.intermediate("Bench Intermediate");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let crl_url = format!("http://{}/inter.crl", listener.local_addr().unwrap());
    let port = free_port();
    let ocsp_url = format!("http://127.0.0.1:{port}/");
    let leaf = client(&inter, "trusted-client", Some(&ocsp_url), Some(&crl_url));
    let dir = std::env::temp_dir().join(format!("certauth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let signer = responder_cert(&inter, "Bench Responder");
    let _responder = Responder::start(&dir, "bench", port, &inter, &signer, &[&leaf], &[], &leaf);
    let _files = Files::start(listener, vec![("/inter.crl", inter.crl(&[]).to_vec())]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fetcher = std::sync::Arc::new(certauth_tokio::Fetcher::new(rt.handle().clone()));
    let revocation = || Revocation::new(fetcher.clone(), webpki::ALL_VERIFICATION_ALGS);
    let chain = [leaf.der.clone(), inter.cert.der.clone()];
    let head = parse_head(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    let now = certauth_testkit::wall_clock();
    let variants: Vec<(&str, Option<Revocation>)> = vec![
        ("no online check", None),
        ("cached OCSP answer", Some(revocation().ocsp(true))),
        ("fetched CRL", Some(revocation().crl_fetch(true))),
        (
            "cached OCSP answer and fetched CRL",
            Some(revocation().ocsp(true).crl_fetch(true)),
        ),
    ];
    let peer = PeerInfo::new(&chain, None);
    let auths: Vec<(&str, Authenticator)> = variants
        .into_iter()
        .map(|(name, r)| {
            let anchors = TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
            let mut b = Authenticator::builder()
                .verifier(ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS))
                .policy(allow_cn(["trusted-client"]));
            if let Some(r) = r {
                b = b.revocation(r);
            }
            let auth = b.build().unwrap();
            // The first decision fetches; every measured one is answered from the caches.
            let first = rt.block_on(async { auth.decide(&peer, &head, now).await });
            assert!(matches!(first, Decision::Allow(_)), "{first:?}");
            (name, auth)
        })
        .collect();
    let decide = |auth: &Authenticator| {
        let d = auth.decide(black_box(&peer), &head, now).ready().unwrap();
        assert!(matches!(d, Decision::Allow(_)));
    };
    // Paired: the four run in rotating turns of 20,000 decisions, and each turn's time is
    // divided by the same round's time without online checks, so that the load of the
    // machine (other builds on two cores) moves both sides of each ratio.
    let (rounds, per_turn) = (31, 20_000u32);
    let mut ratios = vec![Vec::new(); auths.len()];
    let mut base = Vec::new();
    for round in 0..rounds {
        let mut times = vec![0f64; auths.len()];
        for k in 0..auths.len() {
            let i = (k + round) % auths.len();
            let started = std::time::Instant::now();
            for _ in 0..per_turn {
                decide(&auths[i].1);
            }
            times[i] = started.elapsed().as_secs_f64() / f64::from(per_turn);
        }
        base.push(times[0]);
        for (i, t) in times.iter().enumerate() {
            ratios[i].push(t / times[0]);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!(
        "revocation, paired over {rounds} rounds: no online check {:.0} ns (median)",
        median(&mut base) * 1e9
    );
    for ((name, _), r) in auths.iter().zip(&mut ratios) {
        let mid = median(r);
        let (lo, hi) = (r[r.len() / 4], r[r.len() * 3 / 4]);
        eprintln!("revocation, paired: {name}: {mid:.3}x (quartiles {lo:.3}-{hi:.3}x)");
    }
    let mut g = c.benchmark_group("revocation");
    for (name, auth) in &auths {
        g.bench_function(*name, |bn| bn.iter(|| decide(auth)));
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(all, benches, revocation);
criterion_main!(all);

/// A complete head, through the parser the adapters use.
fn parse_head(bytes: &[u8]) -> RequestHead {
    match HeadParser::new(&Limits::DEFAULT).parse(bytes).unwrap() {
        HeadProgress::Complete { head, .. } => head,
        HeadProgress::NeedMore => panic!("incomplete head"),
    }
}
