//! Issue 25's findings, reproduced from outside: the `certauth` binary with real files and
//! real clients, as the review ran them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use certauth_testkit::encode::nginx_escaped;
use certauth_testkit::rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, SanType,
    date_time_ymd,
};
use certauth_testkit::suite::{self, Pki};
use certauth_testkit::{KeyKind, Leaf, der, key, pem, proxies};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d =
            std::env::temp_dir().join(format!("certauth-findings-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn verify(args: &[&str]) -> (String, Option<i32>) {
    let o = Command::new(env!("CARGO_BIN_EXE_certauth"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        o.status.code(),
    )
}

/// A CA named `Mail CA` (sign it with the same key for twins), optionally limited
/// to example.org mail, optionally long expired.
fn mail_ca(constrained: bool, expired: bool) -> CertificateParams {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "Mail CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    if constrained {
        let subtree = der::seq(&[der::tlv(0x81, b"example.org")]);
        let mut ext = CustomExtension::from_oid_content(
            &[2, 5, 29, 30],
            der::seq(&[der::tlv(0xA0, &subtree)]),
        );
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    }
    if expired {
        p.not_before = date_time_ymd(2000, 1, 1);
        p.not_after = date_time_ymd(2001, 1, 1);
    }
    p
}

/// Findings 1 and 8 through `certauth verify`: a subject email outside the CA's mail
/// constraint beside a DNS SAN; twin anchors in either order.
#[test]
fn verify_holds_subject_emails_and_twin_anchors_to_their_rules() {
    let dir = Dir::new("verify");
    let ca_key = key(KeyKind::P256);
    let constrained = mail_ca(true, false);
    let constrained_pem = pem(
        "CERTIFICATE",
        constrained.self_signed(&ca_key).unwrap().der(),
    );
    let expired_twin = mail_ca(false, true);
    let expired_pem = pem(
        "CERTIFICATE",
        expired_twin.self_signed(&ca_key).unwrap().der(),
    );
    let issuer = Issuer::from_params(&constrained, &ca_key);
    let issue = |subject_email: Option<&str>, sans: Vec<SanType>| {
        let mut leaf = Leaf::client("mailer").around_wall_clock();
        leaf.sans = sans;
        if let Some(e) = subject_email {
            leaf.extra_dn = vec![(
                DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
                e.into(),
            )];
        }
        let k = key(KeyKind::P256);
        pem(
            "CERTIFICATE",
            leaf.params().signed_by(&k, &issuer).unwrap().der(),
        )
    };
    let dns = || SanType::DnsName("host.example.org".try_into().unwrap());
    let ca = dir.file("ca.pem", &constrained_pem);
    let forged = dir.file("forged.pem", &issue(Some("ceo@victim.com"), vec![dns()]));
    let own = dir.file("own.pem", &issue(Some("ops@example.org"), vec![dns()]));
    assert_eq!(
        verify(&["--ca", &ca, &forged]),
        ("NAME_CONSTRAINTS_VIOLATION".into(), Some(1))
    );
    assert_eq!(verify(&["--ca", &ca, &own]), ("ok".into(), Some(0)));

    let mail = |e: &str| SanType::Rfc822Name(e.try_into().unwrap());
    let inside = dir.file("inside.pem", &issue(None, vec![mail("alice@example.org")]));
    let outside = dir.file(
        "outside.pem",
        &issue(None, vec![mail("mallory@evil.example")]),
    );
    for (name, bundle) in [
        ("a-then-b.pem", format!("{constrained_pem}{expired_pem}")),
        ("b-then-a.pem", format!("{expired_pem}{constrained_pem}")),
    ] {
        let twins = dir.file(name, &bundle);
        assert_eq!(
            verify(&["--ca", &twins, &inside]),
            ("ok".into(), Some(0)),
            "{name}"
        );
        let (code, status) = verify(&["--ca", &twins, &outside]);
        assert_eq!(status, Some(1), "{name}: {code}");
    }
}

/// `certauth serve ARGS` on a port the system picks: the server and its port.
fn serve(args: &[&str]) -> (proxies::Proc, u16) {
    proxies::certauth_serve(env!("CARGO_BIN_EXE_certauth"), args)
}

/// Finding 6: the proxy reaches `certauth serve` over mutual TLS with its own trusted
/// certificate and forwards a client that has none (nginx `optional_no_ca`), or a malformed
/// certificate header: the proxy's identity must not stand in for its client.
#[test]
fn a_trusted_proxys_own_certificate_never_stands_in_for_its_client() {
    let pki = Pki::new();
    let dir = Dir::new("fallback");
    let ca = dir.file("ca.pem", &pki.root.cert.pem());
    let cert = dir.file("server.pem", &pki.server.pem());
    let key = dir.file("server.key", &pki.server.key_pem());
    let (_server, port) = serve(&[
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--source",
        "nginx",
        "--trusted-proxy",
        "127.0.0.1",
        "--verify-header",
        "X-SSL-Client-Verify=SUCCESS",
        "--fallback-to-tls-peer",
        "--expose-reasons",
    ]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let proxied = |headers: &str| {
        // The proxy's own certificate is a trusted one (the suite's trusted client).
        let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        write!(tls, "GET /whoami HTTP/1.1\r\nHost: app\r\n{headers}\r\n").unwrap();
        String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned()
    };
    let none = proxied("X-SSL-Client-Verify: NONE\r\n");
    assert!(none.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{none}");
    let malformed =
        proxied("X-SSL-Client-Cert: not-a-certificate\r\nX-SSL-Client-Verify: SUCCESS\r\n");
    assert!(
        malformed.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{malformed}"
    );
    // The client's own certificate, forwarded, is what counts.
    let forwarded = format!(
        "X-SSL-Client-Cert: {}\r\nX-SSL-Client-Verify: SUCCESS\r\n",
        nginx_escaped(&pki.trusted.pem())
    );
    let ok = proxied(&forwarded);
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
}
