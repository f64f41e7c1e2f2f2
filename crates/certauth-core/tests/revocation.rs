//! The core's online revocation judgements (issue 33) on real answers: OpenSSL's OCSP
//! responder and a CRL server on 127.0.0.1, reached by a blocking std fetcher (the core
//! needs no runtime to be driven), with `now` chosen by the test.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// The test is the I/O side the core leaves to its caller: it fetches and serves.
#![allow(clippy::disallowed_types)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use certauth_core::observe::Observer;
use certauth_core::policy::BoxFuture;
use certauth_core::revocation::{Fetch, FetchRequest, Revocation};
use certauth_core::{
    Authenticator, CertificateDer, ChainVerifier, Decision, PeerInfo, TrustAnchors, UnixTime,
};
use certauth_testkit::rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use certauth_testkit::revocation::{Files, Responder, client, free_port, issue, responder_cert};
use certauth_testkit::{Authority, Issued, Leaf, pem, wall_clock};

/// Fetches with blocking std sockets, counting fetches.
#[derive(Default)]
struct StdFetch(AtomicUsize);

impl Fetch for StdFetch {
    fn fetch(&self, r: FetchRequest) -> BoxFuture<Result<Vec<u8>, std::io::Error>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let result = (|| {
            let mut s = TcpStream::connect((r.host(), r.port()))?;
            s.set_read_timeout(Some(r.timeout()))?;
            s.write_all(r.wire())?;
            let mut out = Vec::new();
            let cap = u64::try_from(r.max_response_bytes()).unwrap() + 1;
            s.take(cap).read_to_end(&mut out)?;
            Ok(out)
        })();
        Box::pin(std::future::ready(result))
    }
}

/// Runs a future to completion on this thread (10 s at most: a decision that never ends
/// fails the test).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut f = std::pin::pin!(f);
    for _ in 0..100 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
    panic!("the decision did not end within 10 s");
}

#[derive(Default)]
struct SoftFails(Mutex<Vec<String>>);

impl Observer for SoftFails {
    fn revocation_soft_fail(&self, check: &'static str, detail: &str) {
        self.0.lock().unwrap().push(format!("{check}: {detail}"));
    }
}

/// The observer every authenticator here reports to (tests run in parallel: each counts
/// the soft fails whose reasons name its own servers' paths or causes).
fn observer() -> Arc<SoftFails> {
    static ONE: std::sync::OnceLock<Arc<SoftFails>> = std::sync::OnceLock::new();
    Arc::clone(ONE.get_or_init(Arc::default))
}

fn soft_fails(needle: &str) -> usize {
    let o = observer();
    let mut all = o.0.lock().unwrap();
    let before = all.len();
    all.retain(|f| !f.contains(needle));
    before - all.len()
}

struct Setup {
    ca: Authority,
    fetches: Arc<StdFetch>,
}

impl Setup {
    fn new(ca: Authority) -> Self {
        soft_fails("");
        Self {
            ca,
            fetches: Arc::new(StdFetch::default()),
        }
    }

    fn revocation(&self) -> Revocation {
        Revocation::new(self.fetches.clone(), webpki::ALL_VERIFICATION_ALGS)
    }

    fn auth(&self, r: Revocation) -> Authenticator {
        let anchors = TrustAnchors::from_der([self.ca.cert.der.clone()]).unwrap();
        Authenticator::builder()
            .verifier(ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS))
            .observer(observer())
            .revocation(r)
            .build()
            .unwrap()
    }

    fn fetched(&self) -> usize {
        self.fetches.0.load(Ordering::SeqCst)
    }
}

fn at(offset: i64) -> UnixTime {
    let now = i64::try_from(wall_clock().as_secs()).unwrap() + offset;
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap()))
}

/// `ALLOWED`, or the denial's code and reason.
fn decide(auth: &Authenticator, c: &Issued, now: UnixTime) -> String {
    let chain = [CertificateDer::from(c.der.to_vec())];
    let head = certauth_testkit::head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    match block_on(
        auth.decide(&PeerInfo::new(&chain, None), &head, now)
            .into_future(),
    ) {
        Decision::Allow(_) => "ALLOWED".into(),
        Decision::Deny(d) => format!("{}: {}", d.code(), d.reason()),
    }
}

fn code(outcome: &str) -> &str {
    outcome.split(':').next().unwrap_or(outcome)
}

fn dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("certauth-core-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn ocsp_answers_are_judged() {
    let s = Setup::new(Authority::root("Core OCSP Root"));
    let d = dir("ocsp");
    let (by_ca, delegated, no_eku, forged) = (free_port(), free_port(), free_port(), free_port());
    let url = |p: u16| format!("http://127.0.0.1:{p}/ocsp");
    let good = client(&s.ca, "good", Some(&url(by_ca)), None);
    let revoked = client(&s.ca, "revoked", Some(&url(by_ca)), None);
    let unknown = client(&s.ca, "unknown", Some(&url(by_ca)), None);
    let via_delegate = client(&s.ca, "delegated", Some(&url(delegated)), None);
    let via_no_eku = client(&s.ca, "no-eku", Some(&url(no_eku)), None);
    let via_forger = client(&s.ca, "forged", Some(&url(forged)), None);
    let probe = client(&s.ca, "probe", None, None);
    // The CA answers itself; a delegate it issued for OCSP signing; one it issued without
    // id-kp-OCSPSigning; a delegate of another CA of the same name.
    let _ca = Responder::start(
        &d,
        "ca",
        by_ca,
        &s.ca,
        &s.ca.cert,
        &[&good, &probe],
        &[&revoked],
        &probe,
    );
    let delegate = responder_cert(&s.ca, "Delegate");
    let _d = Responder::start(
        &d,
        "d",
        delegated,
        &s.ca,
        &delegate,
        &[&via_delegate, &probe],
        &[],
        &probe,
    );
    let mut plain = Leaf::client("Not a responder");
    plain.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    plain.eku = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let plain = issue(&s.ca, &plain, |_| {});
    let _n = Responder::start(
        &d,
        "n",
        no_eku,
        &s.ca,
        &plain,
        &[&via_no_eku, &probe],
        &[],
        &probe,
    );
    let stranger = responder_cert(&Authority::root("Core OCSP Root"), "Delegate");
    let _f = Responder::start(
        &d,
        "f",
        forged,
        &s.ca,
        &stranger,
        &[&via_forger, &probe],
        &[],
        &probe,
    );

    let strict = s.auth(s.revocation().ocsp(true));
    let now = at(0);
    assert_eq!(decide(&strict, &good, now), "ALLOWED");
    assert_eq!(code(&decide(&strict, &revoked, now)), "CERT_REVOKED");
    assert_eq!(code(&decide(&strict, &unknown, now)), "OCSP_STATUS_UNKNOWN");
    assert_eq!(decide(&strict, &via_delegate, now), "ALLOWED");
    for c in [&via_no_eku, &via_forger] {
        let d = decide(&strict, c, now);
        assert_eq!(code(&d), "OCSP_CHECK_FAILED", "{d}");
        assert!(
            d.contains("signed neither by O=certauth tests,CN=Core OCSP Root"),
            "{d}"
        );
    }
    assert_eq!(s.fetched(), 6);
    // Cached: no more fetches, the same answers.
    assert_eq!(code(&decide(&strict, &revoked, now)), "CERT_REVOKED");
    assert_eq!(decide(&strict, &good, now), "ALLOWED");
    assert_eq!(
        code(&decide(&strict, &via_forger, now)),
        "OCSP_CHECK_FAILED"
    );
    assert_eq!(s.fetched(), 6);

    // The answers say nextUpdate = thisUpdate + 5 minutes. After four of them the next
    // decision refreshes (one fetch); the answer is good again.
    assert_eq!(decide(&strict, &good, at(4 * 60 + 5)), "ALLOWED");
    assert_eq!(s.fetched(), 7);
    assert_eq!(decide(&strict, &good, at(4 * 60 + 6)), "ALLOWED");
    assert_eq!(s.fetched(), 7);

    // Judged an hour on (fresh cache), an answer is past nextUpdate and the skew; judged an
    // hour before, its thisUpdate is in the future.
    let fresh = s.auth(s.revocation().ocsp(true));
    let expired = decide(&fresh, &good, at(3600));
    assert!(expired.contains("expired at its nextUpdate"), "{expired}");
    let fresh = s.auth(s.revocation().ocsp(true));
    let early = decide(&fresh, &good, at(-3600));
    assert!(early.contains("is in the future"), "{early}");
    // With a skew of an hour both are believed.
    let lenient = s.auth(
        s.revocation()
            .ocsp(true)
            .with_clock_skew(Duration::from_secs(7200)),
    );
    assert_eq!(decide(&lenient, &good, at(3600)), "ALLOWED");

    // A decision dropped before it was ever polled (its connection closed) leaves no
    // fetch in flight behind it: the next one fetches.
    let fresh = s.auth(s.revocation().ocsp(true));
    let chain = [CertificateDer::from(good.der.to_vec())];
    let head = certauth_testkit::head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(
        fresh
            .decide(&PeerInfo::new(&chain, None), &head, now)
            .ready()
            .is_none()
    );
    assert_eq!(decide(&fresh, &good, now), "ALLOWED");

    // An answer over the size cap is not read.
    let tiny = s.auth(s.revocation().ocsp(true).with_max_ocsp_bytes(64));
    let big = decide(&tiny, &good, now);
    assert!(big.contains("larger than the limit of 64 bytes"), "{big}");

    // Soft: every failure lets the client in, reported.
    let soft = s.auth(s.revocation().ocsp(false));
    assert_eq!(decide(&soft, &via_forger, now), "ALLOWED");
    assert_eq!(decide(&soft, &unknown, now), "ALLOWED");
    assert_eq!(code(&decide(&soft, &revoked, now)), "CERT_REVOKED");
    assert_eq!(soft_fails("signed neither"), 1);
    assert_eq!(soft_fails("does not know"), 1);
    let _ = std::fs::remove_dir_all(&d);
}

/// An answer without nextUpdate ("newer information is always available", RFC 6960
/// 4.2.2.1) is believed for 5 minutes from its thisUpdate (and the clock skew), not from
/// when it arrived: else one fetched an hour after it was signed, as replayed by anyone on
/// the path to a plain-HTTP responder after the certificate was revoked, would say good.
#[test]
fn an_answer_without_next_update_ages_from_its_this_update() {
    let s = Setup::new(Authority::root("Core No NextUpdate Root"));
    let d = dir("no-next-update");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/ocsp");
    let good = client(&s.ca, "good", Some(&url), None);
    let probe = client(&s.ca, "probe", None, None);
    let _r = Responder::start_with(
        &d,
        "r",
        port,
        &s.ca,
        &s.ca.cert,
        &[&good, &probe],
        &[],
        &probe,
        None,
    );
    let fresh = s.auth(s.revocation().ocsp(true));
    assert_eq!(decide(&fresh, &good, at(0)), "ALLOWED");
    let replayed = s.auth(s.revocation().ocsp(true));
    let old = decide(&replayed, &good, at(3600));
    assert_eq!(code(&old), "OCSP_CHECK_FAILED", "{old}");
    assert!(old.contains("no nextUpdate"), "{old}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn failures_are_remembered_then_retried() {
    let s = Setup::new(Authority::root("Core Down Root"));
    let port = free_port();
    let down = client(
        &s.ca,
        "down",
        Some(&format!("http://127.0.0.1:{port}/")),
        None,
    );
    let auth = s.auth(
        s.revocation()
            .ocsp(true)
            .with_retry_after(Duration::from_secs(30))
            .with_timeout(Duration::from_secs(1)),
    );
    let d = decide(&auth, &down, at(0));
    assert_eq!(code(&d), "OCSP_CHECK_FAILED", "{d}");
    assert!(d.contains("did not answer"), "{d}");
    assert_eq!(code(&decide(&auth, &down, at(29))), "OCSP_CHECK_FAILED");
    assert_eq!(s.fetched(), 1);
    assert_eq!(code(&decide(&auth, &down, at(30))), "OCSP_CHECK_FAILED");
    assert_eq!(s.fetched(), 2);
    // A certificate naming no responder is not asked about.
    let none = client(&s.ca, "none", None, None);
    assert_eq!(decide(&auth, &none, at(0)), "ALLOWED");
    assert_eq!(s.fetched(), 2);
}

#[test]
fn crls_are_fetched_judged_and_cached() {
    let s = Setup::new(Authority::root("Core CRL Root"));
    let other = Authority::root("Core Other Root");
    let same_name = Authority::root("Core CRL Root");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let with = |cn: &str, path: &str| client(&s.ca, cn, None, Some(&format!("{base}{path}")));
    let good = with("good", "/ca.crl");
    let revoked = with("revoked", "/ca.crl");
    let via_pem = with("pem", "/ca.pem");
    let revoked_pem = with("revoked-pem", "/ca.pem");
    let foreign = with("foreign", "/other.crl");
    let forged = with("forged", "/forged.crl");
    let stale = with("stale", "/stale.crl");
    let garbage = with("garbage", "/garbage");
    let now_secs = i64::try_from(wall_clock().as_secs()).unwrap();
    let crl = s.ca.crl_until(&[&revoked, &revoked_pem], now_secs + 1000);
    let files = Files::start(
        listener,
        vec![
            ("/ca.crl", crl.to_vec()),
            ("/ca.pem", pem("X509 CRL", &crl).into_bytes()),
            ("/other.crl", other.crl(&[]).to_vec()),
            ("/forged.crl", same_name.crl(&[]).to_vec()),
            ("/stale.crl", s.ca.crl_until(&[], now_secs - 60).to_vec()),
            ("/garbage", b"not a CRL".to_vec()),
        ],
    );
    let strict = s.auth(s.revocation().crl_fetch(true));
    let now = at(0);
    assert_eq!(decide(&strict, &good, now), "ALLOWED");
    assert_eq!(code(&decide(&strict, &revoked, now)), "CERT_REVOKED");
    assert_eq!(decide(&strict, &via_pem, now), "ALLOWED");
    assert_eq!(code(&decide(&strict, &revoked_pem, now)), "CERT_REVOKED");
    assert_eq!(s.fetched(), 2, "one fetch per URL");
    for (c, why) in [
        (
            &foreign,
            "is not issued by O=certauth tests,CN=Core CRL Root",
        ),
        (&forged, "CRL_SIGNATURE_FAILURE"),
        (&stale, "expired at its nextUpdate"),
        (&garbage, "neither DER nor PEM"),
    ] {
        let d = decide(&strict, c, now);
        assert_eq!(code(&d), "UNABLE_TO_GET_CRL", "{d}");
        assert!(d.contains(why), "{d}");
    }
    // A CRL published anew: fetched again from four fifths of the old one's time, and what
    // it says of each client judged again.
    files.set("/ca.crl", s.ca.crl(&[&good]).to_vec());
    assert_eq!(code(&decide(&strict, &revoked, now)), "CERT_REVOKED");
    assert_eq!(decide(&strict, &good, now), "ALLOWED");
    let later = at(850);
    assert_eq!(code(&decide(&strict, &good, later)), "CERT_REVOKED");
    assert_eq!(decide(&strict, &revoked, later), "ALLOWED");

    let soft = s.auth(s.revocation().crl_fetch(false));
    assert_eq!(decide(&soft, &foreign, now), "ALLOWED");
    assert_eq!(soft_fails("is not issued by"), 1);
    assert_eq!(code(&decide(&soft, &good, now)), "CERT_REVOKED");
}

/// Sends a recorded request instead of the one asked for: the responder then answers about
/// another certificate (a CertID that is not the one asked about).
#[derive(Default)]
struct SwapFetch {
    last: Mutex<Option<Vec<u8>>>,
    swap: Mutex<Option<Vec<u8>>>,
}

impl Fetch for SwapFetch {
    fn fetch(&self, r: FetchRequest) -> BoxFuture<Result<Vec<u8>, std::io::Error>> {
        *self.last.lock().unwrap() = Some(r.wire().to_vec());
        let wire = self.swap.lock().unwrap().clone();
        let wire = wire.unwrap_or_else(|| r.wire().to_vec());
        let result = (|| {
            let mut s = TcpStream::connect((r.host(), r.port()))?;
            s.set_read_timeout(Some(r.timeout()))?;
            s.write_all(&wire)?;
            let mut out = Vec::new();
            s.read_to_end(&mut out)?;
            Ok(out)
        })();
        Box::pin(std::future::ready(result))
    }
}

/// A genuine, CA-signed "good" answer about one certificate is no answer about another:
/// the revoked client's check sends the good client's request, and is refused for it.
#[test]
fn an_answer_about_another_certificate_is_not_believed() {
    let s = Setup::new(Authority::root("Core OCSP CertID Root"));
    let d = dir("ocsp-certid");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/ocsp");
    let good = client(&s.ca, "good", Some(&url), None);
    let revoked = client(&s.ca, "revoked", Some(&url), None);
    let probe = client(&s.ca, "probe", None, None);
    let _r = Responder::start(
        &d,
        "r",
        port,
        &s.ca,
        &s.ca.cert,
        &[&good, &probe],
        &[&revoked],
        &probe,
    );
    let fetch = Arc::new(SwapFetch::default());
    let auth = |f: &Arc<SwapFetch>| {
        s.auth(Revocation::new(f.clone(), webpki::ALL_VERIFICATION_ALGS).ocsp(true))
    };
    let now = at(0);
    assert_eq!(decide(&auth(&fetch), &good, now), "ALLOWED");
    let good_request = fetch.last.lock().unwrap().clone().unwrap();
    *fetch.swap.lock().unwrap() = Some(good_request);
    let d = decide(&auth(&fetch), &revoked, now);
    assert_eq!(code(&d), "OCSP_CHECK_FAILED", "{d}");
    assert!(d.contains("says nothing of the certificate"), "{d}");
}
