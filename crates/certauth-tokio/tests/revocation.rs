//! Online revocation (issue 33) against real servers on 127.0.0.1: OpenSSL's own OCSP
//! responder (`openssl ocsp -port`) and a plain HTTP server serving CRLs, through the
//! decision path adapters take (`Authenticator::decide(..).await`) and the tokio
//! [`Fetcher`]. Requests are counted where they arrive: the responder's log line per
//! request, the CRL server's own counter.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certauth_core::observe::Observer;
use certauth_core::revocation::Revocation;
use certauth_core::{
    Authenticator, CertificateDer, ChainVerifier, Decision, PeerInfo, TrustAnchors, UnixTime,
};
use certauth_testkit::revocation::{Files, Responder, client, free_port, responder_cert};
use certauth_testkit::{Authority, Issued, wall_clock};
use certauth_tokio::Fetcher;

/// Soft fails seen by the authenticators' observer, with their reasons.
#[derive(Default)]
struct SoftFails(Mutex<Vec<String>>);

impl Observer for SoftFails {
    fn revocation_soft_fail(&self, check: &'static str, detail: &str) {
        self.0.lock().unwrap().push(format!("{check}: {detail}"));
    }
}

fn soft_fails() -> &'static Arc<SoftFails> {
    static ONE: std::sync::OnceLock<Arc<SoftFails>> = std::sync::OnceLock::new();
    ONE.get_or_init(Arc::default)
}

fn observer() -> Arc<dyn Observer> {
    soft_fails().clone()
}

/// Soft fails whose reason contains `needle`, counted and forgotten.
fn take_soft_fails(needle: &str) -> usize {
    let mut all = soft_fails().0.lock().unwrap();
    let before = all.len();
    all.retain(|f| !f.contains(needle));
    before - all.len()
}

fn authenticator(ca: &Authority, revocation: Revocation) -> Authenticator {
    let anchors = TrustAnchors::from_der([ca.cert.der.clone()]).unwrap();
    Authenticator::builder()
        .verifier(ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS))
        .observer(observer())
        .revocation(revocation)
        .build()
        .unwrap()
}

fn revocation() -> Revocation {
    Revocation::new(
        Arc::new(Fetcher::on_current_runtime().unwrap()),
        webpki::ALL_VERIFICATION_ALGS,
    )
    .with_timeout(Duration::from_secs(2))
}

/// `ALLOWED`, or the denial's code and reason.
async fn decide_at(auth: &Authenticator, c: &Issued, now: UnixTime) -> String {
    decide_der(auth, c.der.clone(), now).await
}

async fn decide_der(auth: &Authenticator, der: CertificateDer<'static>, now: UnixTime) -> String {
    let chain = [der];
    let head = certauth_testkit::head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    match auth.decide(&PeerInfo::new(&chain, None), &head, now).await {
        Decision::Allow(_) => "ALLOWED".into(),
        Decision::Deny(d) => format!("{}: {}", d.code(), d.reason()),
    }
}

async fn decide(auth: &Authenticator, c: &Issued) -> String {
    decide_at(auth, c, wall_clock()).await
}

fn code(outcome: &str) -> &str {
    outcome.split(':').next().unwrap_or(outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_against_openssl_responder() {
    soft_fails();
    let dir = std::env::temp_dir().join(format!("certauth-ocsp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Authority::root("OCSP Root");
    let responder = responder_cert(&ca, "Responder");
    // The forger's responder certificate has OCSPSigning too, under a root of the same
    // name: but the CA never issued it.
    let forged_signer = responder_cert(&Authority::root("OCSP Root"), "Responder");

    let (real_port, forged_port) = (free_port(), free_port());
    let real_url = format!("http://127.0.0.1:{real_port}/");
    let good = client(&ca, "good", Some(&real_url), None);
    let revoked = client(&ca, "revoked", Some(&real_url), None);
    let unknown = client(&ca, "unknown", Some(&real_url), None);
    let stampede = client(&ca, "stampede", Some(&real_url), None);
    let victim = client(
        &ca,
        "victim",
        Some(&format!("http://127.0.0.1:{forged_port}/")),
        None,
    );
    let probe = client(&ca, "probe", None, None);
    let real = Responder::start(
        &dir,
        "real",
        real_port,
        &ca,
        &responder,
        &[&good, &stampede, &probe],
        &[&revoked],
        &probe,
    );
    let probes = real.requests();

    // Soft fail (the default strictness).
    let auth = authenticator(&ca, revocation().ocsp(false));
    assert_eq!(decide(&auth, &good).await, "ALLOWED");
    assert_eq!(code(&decide(&auth, &revoked).await), "CERT_REVOKED");
    assert_eq!(decide(&auth, &unknown).await, "ALLOWED");
    assert_eq!(take_soft_fails("does not know"), 1);
    // The cache: five more connections of each, no more requests.
    for _ in 0..5 {
        assert_eq!(decide(&auth, &good).await, "ALLOWED");
        assert_eq!(code(&decide(&auth, &revoked).await), "CERT_REVOKED");
    }
    assert_eq!(real.requests() - probes, 3);

    // Required: unknown denies.
    let strict = authenticator(&ca, revocation().ocsp(true));
    assert_eq!(
        code(&decide(&strict, &unknown).await),
        "OCSP_STATUS_UNKNOWN"
    );
    assert_eq!(decide(&strict, &good).await, "ALLOWED");

    // A stampede: 100 connections of one certificate at once, one request.
    let before = real.requests();
    let auth = authenticator(&ca, revocation().ocsp(true));
    let decisions: Vec<_> = (0..100)
        .map(|_| {
            let (auth, der) = (auth.clone(), stampede.der.clone());
            tokio::spawn(async move { decide_der(&auth, der, wall_clock()).await })
        })
        .collect();
    for d in decisions {
        assert_eq!(d.await.unwrap(), "ALLOWED");
    }
    assert_eq!(real.requests() - before, 1);

    // An answer past its nextUpdate (5 minutes on) and the 5 minutes of skew: not
    // believed. Judged at a later `now`, on an empty cache.
    let later = UnixTime::since_unix_epoch(Duration::from_secs(wall_clock().as_secs() + 3600));
    let auth = authenticator(&ca, revocation().ocsp(true));
    let expired = decide_at(&auth, &good, later).await;
    assert_eq!(code(&expired), "OCSP_CHECK_FAILED", "{expired}");
    assert!(expired.contains("expired at its nextUpdate"), "{expired}");

    // A forged answer: signed by a responder certificate the CA never issued.
    let forger = Responder::start(
        &dir,
        "forged",
        forged_port,
        &ca,
        &forged_signer,
        &[&victim, &probe],
        &[],
        &probe,
    );
    let strict = authenticator(&ca, revocation().ocsp(true));
    let refused = decide(&strict, &victim).await;
    assert_eq!(code(&refused), "OCSP_CHECK_FAILED", "{refused}");
    assert!(refused.contains("forged"), "{refused}");
    let soft = authenticator(&ca, revocation().ocsp(false));
    assert_eq!(decide(&soft, &victim).await, "ALLOWED");
    assert_eq!(take_soft_fails("forged"), 1);
    drop(forger);

    // The responder down: soft allows (and the failure is remembered: one attempt), required
    // denies.
    drop(real);
    let soft = authenticator(&ca, revocation().ocsp(false));
    let down = client(&ca, "down", Some(&real_url), None);
    assert_eq!(decide(&soft, &down).await, "ALLOWED");
    assert_eq!(decide(&soft, &down).await, "ALLOWED");
    assert_eq!(take_soft_fails("did not answer"), 2);
    let strict = authenticator(&ca, revocation().ocsp(true));
    assert_eq!(code(&decide(&strict, &down).await), "OCSP_CHECK_FAILED");

    // A certificate that names no responder is not checked.
    assert_eq!(decide(&strict, &probe).await, "ALLOWED");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crls_from_distribution_points() {
    soft_fails();
    let ca = Authority::root("CRL Root");
    let other = Authority::root("Other Root");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = |p: &str| format!("{base}{p}");
    let good = client(&ca, "good", None, Some(&url("/ca.crl")));
    let revoked = client(&ca, "revoked", None, Some(&url("/ca.crl")));
    let foreign = client(&ca, "foreign", None, Some(&url("/other.crl")));
    let large = client(&ca, "large", None, Some(&url("/large.crl")));
    let missing = client(&ca, "missing", None, Some(&url("/missing.crl")));
    let files = Files::start(
        listener,
        vec![
            ("/ca.crl", ca.crl(&[&revoked]).to_vec()),
            ("/other.crl", other.crl(&[]).to_vec()),
            ("/large.crl", vec![0x30; 20_000]),
        ],
    );

    let auth = authenticator(
        &ca,
        revocation().crl_fetch(false).with_max_crl_bytes(16_384),
    );
    assert_eq!(decide(&auth, &good).await, "ALLOWED");
    assert_eq!(code(&decide(&auth, &revoked).await), "CERT_REVOKED");
    for _ in 0..5 {
        assert_eq!(decide(&auth, &good).await, "ALLOWED");
        assert_eq!(code(&decide(&auth, &revoked).await), "CERT_REVOKED");
    }
    assert_eq!(files.hits("/ca.crl"), 1);
    // Unknown is allowed by default, and reported.
    assert_eq!(decide(&auth, &foreign).await, "ALLOWED");
    assert_eq!(take_soft_fails("not issued by"), 1);
    assert_eq!(decide(&auth, &large).await, "ALLOWED");
    assert_eq!(take_soft_fails("larger than the limit of 16384"), 1);

    let strict = authenticator(&ca, revocation().crl_fetch(true).with_max_crl_bytes(16_384));
    for (c, why) in [
        (&foreign, "not issued by"),
        (&large, "larger than the limit"),
        (&missing, "404"),
    ] {
        let d = decide(&strict, c).await;
        assert_eq!(code(&d), "UNABLE_TO_GET_CRL", "{d}");
        assert!(d.contains(why), "{d}");
    }
    assert_eq!(decide(&strict, &good).await, "ALLOWED");
    drop(files);
}
