//! Online revocation (issue 33) against real servers on 127.0.0.1: OpenSSL's own OCSP
//! responder (`openssl ocsp -port`) and a plain HTTP server serving CRLs, through the
//! decision path adapters take (`Authenticator::decide(..).await`) and the tokio
//! [`Fetcher`]. Requests are counted where they arrive: the responder's log line per
//! request, the CRL server's own counter.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certauth_core::observe::{self, Observer};
use certauth_core::revocation::Revocation;
use certauth_core::{
    Authenticator, CertificateDer, ChainVerifier, Decision, PeerInfo, TrustAnchors, UnixTime,
};
use certauth_testkit::rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, ExtendedKeyUsagePurpose, Issuer,
    KeyUsagePurpose,
};
use certauth_testkit::{Authority, Issued, Leaf, der, key, wall_clock};
use certauth_tokio::Fetcher;

/// Soft fails seen by the process's observer, with their reasons.
#[derive(Default)]
struct SoftFails(Mutex<Vec<String>>);

impl Observer for SoftFails {
    fn revocation_soft_fail(&self, check: &'static str, detail: &str) {
        self.0.lock().unwrap().push(format!("{check}: {detail}"));
    }
}

fn soft_fails() -> &'static SoftFails {
    static ONE: std::sync::OnceLock<Arc<SoftFails>> = std::sync::OnceLock::new();
    let o = ONE.get_or_init(|| {
        let o = Arc::new(SoftFails::default());
        observe::install(o.clone());
        o
    });
    o
}

/// Soft fails whose reason contains `needle`, counted and forgotten.
fn take_soft_fails(needle: &str) -> usize {
    let mut all = soft_fails().0.lock().unwrap();
    let before = all.len();
    all.retain(|f| !f.contains(needle));
    before - all.len()
}

/// authorityInfoAccess with one OCSP responder URL.
fn aia(url: &str) -> CustomExtension {
    let content = der::seq(&[der::seq(&[
        der::oid("1.3.6.1.5.5.7.48.1"),
        der::tlv(0x86, url.as_bytes()),
    ])]);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], content)
}

fn issue(ca: &Authority, leaf: &Leaf, edit: impl FnOnce(&mut CertificateParams)) -> Issued {
    let k = key(leaf.key);
    let mut params = leaf.params();
    edit(&mut params);
    let issuer = Issuer::from_params(&ca.cert.params, &ca.cert.key);
    let der = params.signed_by(&k, &issuer).unwrap().der().clone();
    Issued {
        der,
        key: k,
        params,
    }
}

fn client(ca: &Authority, cn: &str, ocsp: Option<&str>, crl: Option<&str>) -> Issued {
    issue(ca, &Leaf::client(cn), |p| {
        if let Some(url) = ocsp {
            p.custom_extensions.push(aia(url));
        }
        if let Some(url) = crl {
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.to_owned()],
            }];
        }
    })
}

fn responder_cert(ca: &Authority, cn: &str) -> Issued {
    let mut leaf = Leaf::client(cn);
    leaf.eku = vec![ExtendedKeyUsagePurpose::OcspSigning];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    issue(ca, &leaf, |_| {})
}

fn serial_hex(c: &Issued) -> String {
    let s = c.params.serial_number.as_ref().unwrap();
    s.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `openssl ocsp` answering for `ca` from an index of `valid` and `revoked`, signed by
/// `signer`. Killed on drop.
struct Responder {
    child: Child,
    log: PathBuf,
    url: String,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Responder {
    /// Serves on `port` (whose URL the certificates already name).
    #[allow(clippy::too_many_arguments)]
    fn start(
        dir: &Path,
        name: &str,
        port: u16,
        ca: &Authority,
        signer: &Issued,
        valid: &[&Issued],
        revoked: &[&Issued],
        probe: &Issued,
    ) -> Self {
        let file = |suffix: &str, text: &str| {
            let p = dir.join(format!("{name}-{suffix}"));
            std::fs::write(&p, text).unwrap();
            p
        };
        let mut index = String::new();
        for c in valid {
            index.push_str(&format!(
                "V\t351231000000Z\t\t{0}\tunknown\t/CN={0}\n",
                serial_hex(c)
            ));
        }
        for c in revoked {
            index.push_str(&format!(
                "R\t351231000000Z\t260101000000Z\t{0}\tunknown\t/CN={0}\n",
                serial_hex(c)
            ));
        }
        let (index, ca_pem) = (file("index.txt", &index), file("ca.pem", &ca.cert.pem()));
        let rsigner = file("rsigner.pem", &signer.pem());
        let rkey = file("rkey.pem", &signer.key_pem());
        let probe = file("probe.pem", &probe.pem());
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(&index)
            .arg("-CA")
            .arg(&ca_pem)
            .arg("-rsigner")
            .arg(&rsigner)
            .arg("-rkey")
            .arg(&rkey)
            .args(["-port", &port.to_string(), "-nmin", "5"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("openssl");
        let url = format!("http://127.0.0.1:{port}/");
        let mut r = Self { child, log, url };
        // Ready when it answers a real query (it waits forever on a connection that sends
        // nothing, so it is never probed with an empty one).
        for _ in 0..100 {
            if let Ok(Some(status)) = r.child.try_wait() {
                let log = std::fs::read_to_string(&r.log).unwrap_or_default();
                panic!("openssl ocsp exited ({status}): {log}");
            }
            let ok = Command::new("openssl")
                .args(["ocsp", "-no_nonce", "-noverify", "-issuer"])
                .arg(&ca_pem)
                .arg("-cert")
                .arg(&probe)
                .args(["-url", &r.url, "-timeout", "2"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            if ok {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("openssl ocsp did not start on {}", r.url);
    }

    /// Requests received so far (one log line each).
    fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Received request")
            .count()
    }
}

/// A plain HTTP/1.0 server of fixed bodies by path, counting requests per path.
struct Files {
    hits: Arc<Mutex<Vec<String>>>,
}

impl Files {
    /// Serves `files` from `listener` (bound first: the certificates name its URL).
    fn start(listener: TcpListener, files: Vec<(&'static str, Vec<u8>)>) -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if s.read(&mut byte).unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap().push(path.clone());
                match files.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => {
                        let _ = write!(
                            s,
                            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(body);
                    }
                    None => {
                        let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\n\r\n");
                    }
                }
            }
        });
        Self { hits }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

fn authenticator(ca: &Authority, revocation: Revocation) -> Authenticator {
    let anchors = TrustAnchors::from_der([ca.cert.der.clone()]).unwrap();
    Authenticator::builder()
        .verifier(ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS))
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
