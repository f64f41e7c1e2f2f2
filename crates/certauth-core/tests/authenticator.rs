//! Every decision the Authenticator makes, and golden bytes: exact request bytes in, exact
//! response bytes out, through the same loop an adapter runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::as_conversions,
    clippy::cloned_ref_to_slice_refs,
    missing_docs
)]

use std::future::IntoFuture as _;
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};

use certauth_core::Preset;
use certauth_core::SetupError;
use certauth_core::policy::{OwnedPolicyContext, PolicyExt, Verdict, allow_cn};
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{
    Authenticator, CertificateDer, Decision, Evaluation, HeadParser, HeadProgress, Limits,
    PeerInfo, ProxyHeaderConfig, RequestHead, Status, accept_websocket,
};
use certauth_testkit::encode;
use certauth_testkit::{Authority, Issued, Leaf, NOW_SECS, now};

struct Pki {
    root: Authority,
    trusted: Issued,
    other: Issued,
    expired: Issued,
}

fn pki() -> Pki {
    let root = Authority::root("Decide Root");
    let other_ca = Authority::root("Decide Other Root");
    let trusted = root.issue(&Leaf::client("trusted-client"));
    let other = other_ca.issue(&Leaf::client("trusted-client"));
    let mut e = Leaf::client("expired-client");
    e.not_before = NOW_SECS as i64 - 20 * 86_400;
    e.not_after = NOW_SECS as i64 - 10 * 86_400;
    let expired = root.issue(&e);
    Pki {
        root,
        trusted,
        other,
        expired,
    }
}

fn verifier(root: &Authority) -> ChainVerifier {
    ChainVerifier::new(
        TrustAnchors::from_der([root.cert.der.clone()]).unwrap(),
        webpki::ALL_VERIFICATION_ALGS,
    )
}

const WS: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn head(bytes: &[u8]) -> RequestHead {
    certauth_testkit::head(bytes)
}

fn with_headers(extra: &[(&str, &str)]) -> RequestHead {
    let mut text = String::from("GET /api HTTP/1.1\r\nHost: backend\r\n");
    for (n, v) in extra {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str("\r\n");
    head(text.as_bytes())
}

fn ready(e: Evaluation) -> Decision {
    e.ready().expect("synchronous policies decide at once")
}

fn decide(
    auth: &Authenticator,
    chain: &[CertificateDer<'_>],
    remote: &str,
    h: &RequestHead,
) -> Decision {
    let peer = PeerInfo::new(chain, Some(remote.parse::<IpAddr>().unwrap()));
    ready(auth.decide(&peer, h, now()))
}

fn code(d: &Decision) -> String {
    match d {
        Decision::Allow(_) => "ALLOW".into(),
        Decision::Deny(d) => format!("{} {}", d.status().code(), d.code()),
    }
}

/// The adapter's loop, over byte strings: parse the head (possibly in chunks), decide, and
/// produce the bytes to write plus the leftover.
fn pipeline(auth: &Authenticator, peer: &PeerInfo<'_>, chunks: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
    let mut parser = HeadParser::new(auth.limits());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        match parser.parse(&buf) {
            Ok(HeadProgress::NeedMore) => continue,
            Err(e) => {
                e.response().write_to(&mut out);
                return (out, Vec::new());
            }
            Ok(HeadProgress::Complete { head, consumed }) => {
                match ready(auth.decide(peer, &head, now())) {
                    Decision::Allow(_) => match accept_websocket(&head) {
                        Ok(r) => r.write_to(&mut out),
                        Err(e) => e.response().write_to(&mut out),
                    },
                    Decision::Deny(d) => d.response().write_to(&mut out),
                }
                return (out, buf[consumed..].to_vec());
            }
        }
    }
    (out, Vec::new())
}

#[test]
fn golden_bytes_through_the_adapter_loop() {
    let p = pki();
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .policy(allow_cn(["trusted-client"]))
        .build()
        .unwrap();
    let trusted = [p.trusted.der.clone()];
    let peer = PeerInfo::new(&trusted, None);

    // Allowed: the head arrives in pieces, the last of which also carries the client's
    // first WebSocket frame.
    let frame = [0x81u8, 0x85, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    let bytes: Vec<u8> = [WS, &frame].concat();
    let chunks: Vec<&[u8]> = vec![
        &bytes[..1],
        &bytes[1..40],
        &bytes[40..WS.len() - 1],
        &bytes[WS.len() - 1..],
    ];
    let (out, leftover) = pipeline(&auth, &peer, &chunks);
    assert_eq!(
        out,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
    assert_eq!(leftover, frame);

    // No certificate.
    let none = PeerInfo::new(&[], None);
    let (out, _) = pipeline(&auth, &none, &[WS]);
    assert_eq!(
        out,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
          Content-Length: 12\r\nConnection: close\r\n\r\nUnauthorized"
    );

    // Authenticated, but not an upgrade: 400.
    let (out, _) = pipeline(&auth, &peer, &[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
    assert_eq!(
        out,
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
          Content-Length: 11\r\nConnection: close\r\n\r\nBad Request"
    );

    // Wrong WebSocket version: 426 naming the supported one.
    let v8 = String::from_utf8(WS.to_vec())
        .unwrap()
        .replace("Version: 13", "Version: 8");
    let (out, _) = pipeline(&auth, &peer, &[v8.as_bytes()]);
    assert!(out.starts_with(b"HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(
        out.windows(27)
            .any(|w| w == b"Sec-WebSocket-Version: 13\r\n")
    );

    // Oversized head: 431.
    let small = Authenticator::builder()
        .verifier(verifier(&p.root))
        .limits(Limits::DEFAULT.with_max_head_bytes(64))
        .build()
        .unwrap();
    let (out, _) = pipeline(&small, &peer, &[WS]);
    assert_eq!(
        out,
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
          Content-Length: 31\r\nConnection: close\r\n\r\nRequest Header Fields Too Large"
    );

    // Policy says 403.
    let forbid = Authenticator::builder()
        .verifier(verifier(&p.root))
        .policy(allow_cn(["someone-else"]).deny_with_403())
        .build()
        .unwrap();
    let (out, _) = pipeline(&forbid, &peer, &[WS]);
    assert_eq!(
        out,
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
          Content-Length: 9\r\nConnection: close\r\n\r\nForbidden"
    );
}

#[test]
fn tls_peer_decisions() {
    let p = pki();
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .policy(allow_cn(["trusted-client"]))
        .build()
        .unwrap();
    let h = head(WS);
    let d = decide(&auth, &[p.trusted.der.clone()], "192.0.2.1", &h);
    let Decision::Allow(who) = &d else {
        panic!("{d:?}")
    };
    assert_eq!(
        who.certificate().subject().common_names().next().unwrap(),
        "trusted-client"
    );
    assert!(!who.from_proxy_header());
    assert_eq!(
        who.chain().unwrap().anchor().unwrap().der(),
        &p.root.cert.der[..]
    );

    assert_eq!(
        code(&decide(&auth, &[], "192.0.2.1", &h)),
        "401 NO_CERTIFICATE"
    );
    let d = decide(&auth, &[p.other.der.clone()], "192.0.2.1", &h);
    assert_eq!(code(&d), "401 UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    let Decision::Deny(denial) = d else { panic!() };
    assert!(
        denial.certificate().is_some(),
        "the certificate is attached for logging"
    );
    assert_eq!(
        code(&decide(&auth, &[p.expired.der.clone()], "192.0.2.1", &h)),
        "401 CERT_HAS_EXPIRED"
    );
    assert_eq!(
        code(&decide(
            &auth,
            &[CertificateDer::from(vec![0x30, 0x00])],
            "192.0.2.1",
            &h
        )),
        "401 MALFORMED_CERTIFICATE"
    );

    let other_cn = root_leaf(&p.root, "someone");
    let d = decide(&auth, &[other_cn.der.clone()], "192.0.2.1", &h);
    assert_eq!(code(&d), "401 POLICY_DENIED");
    let Decision::Deny(denial) = d else { panic!() };
    assert!(denial.to_string().contains("CN not allowed"), "{denial}");
    assert_eq!(
        denial.response().body(),
        "Unauthorized",
        "generic body by default"
    );
}

fn root_leaf(root: &Authority, cn: &str) -> Issued {
    root.issue(&Leaf::client(cn))
}

#[test]
fn exposed_reasons_read_like_the_node_package() {
    let p = pki();
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .expose_reasons(true)
        .build()
        .unwrap();
    let h = head(WS);
    let Decision::Deny(d) = decide(&auth, &[p.expired.der.clone()], "192.0.2.1", &h) else {
        panic!()
    };
    assert_eq!(
        d.response().body(),
        "Unauthorized: Client certificate rejected (CERT_HAS_EXPIRED)"
    );
    let Decision::Deny(d) = decide(&auth, &[], "192.0.2.1", &h) else {
        panic!()
    };
    assert_eq!(
        d.response().body(),
        "Unauthorized: Client certificate required (NO_CERTIFICATE)"
    );
}

fn poll_once(e: Evaluation) -> Poll<Decision> {
    let mut fut = std::pin::pin!(e.into_future());
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn async_policies_pend_then_decide() {
    let p = pki();
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .async_policy(|ctx: OwnedPolicyContext| async move {
            ctx.cert
                .subject()
                .common_names()
                .any(|cn| cn == "trusted-client")
        })
        .build()
        .unwrap();
    let h = head(WS);
    let chain = [p.trusted.der.clone()];
    let peer = PeerInfo::new(&chain, None);
    let e = auth.decide(&peer, &h, now());
    assert!(e.is_pending());
    assert!(matches!(poll_once(e), Poll::Ready(Decision::Allow(_))));

    let deny = Authenticator::builder()
        .verifier(verifier(&p.root))
        .async_policy(|_: OwnedPolicyContext| async { Verdict::forbid("db says no") })
        .build()
        .unwrap();
    let Poll::Ready(Decision::Deny(d)) = poll_once(deny.decide(&peer, &h, now())) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Forbidden);
    assert!(d.certificate().is_some());

    // Failures before the policy never reach it: ready at once.
    let none = PeerInfo::new(&[], None);
    assert!(!auth.decide(&none, &h, now()).is_pending());
    assert!(matches!(
        auth.decide(&none, &h, now()).ready(),
        Some(Decision::Deny(_))
    ));
}

#[test]
fn configuration_errors() {
    let p = pki();
    assert!(matches!(
        Authenticator::builder().build().unwrap_err(),
        SetupError::MissingTrustAnchors
    ));
    let nginx = ProxyHeaderConfig::preset(Preset::Nginx);
    assert!(matches!(
        Authenticator::builder()
            .proxy_header(nginx.clone())
            .build()
            .unwrap_err(),
        SetupError::NoTrustedProxies
    ));
    let trusted = nginx.with_trusted_proxies(["127.0.0.1"]).unwrap();
    assert!(
        Authenticator::builder()
            .proxy_header(trusted.clone())
            .build()
            .is_ok()
    );
    assert!(matches!(
        Authenticator::builder()
            .proxy_header(trusted.clone().with_fallback_to_tls_peer(true))
            .build()
            .unwrap_err(),
        SetupError::MissingTrustAnchors
    ));
    assert!(
        Authenticator::builder()
            .proxy_header(trusted.with_fallback_to_tls_peer(true))
            .verifier(verifier(&p.root))
            .build()
            .is_ok()
    );
    assert!(
        SetupError::NoTrustedProxies
            .to_string()
            .contains("dangerous_trust_any_proxy")
    );
}

fn nginx_auth(
    root: &Authority,
    cfg: impl FnOnce(ProxyHeaderConfig) -> ProxyHeaderConfig,
) -> Authenticator {
    let c = ProxyHeaderConfig::preset(Preset::Nginx)
        .with_trusted_proxies(["127.0.0.1", "10.0.0.0/8"])
        .unwrap()
        .with_verify_header("X-SSL-Client-Verify", "SUCCESS")
        .unwrap();
    Authenticator::builder()
        .verifier(verifier(root))
        .proxy_header(cfg(c))
        .expose_reasons(true)
        .build()
        .unwrap()
}

#[test]
fn header_mode_decisions() {
    let p = pki();
    let auth = nginx_auth(&p.root, |c| c);
    let cert = encode::nginx_escaped(&p.trusted.pem());
    let ok = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);

    let d = decide(&auth, &[], "127.0.0.1", &ok);
    let Decision::Allow(who) = &d else {
        panic!("{d:?}")
    };
    assert!(who.from_proxy_header());
    assert!(who.chain().is_some(), "re-verified against the anchors");
    assert_eq!(code(&decide(&auth, &[], "10.9.8.7", &ok)), "ALLOW");

    // A forged header sent straight to the backend.
    let d = decide(&auth, &[], "203.0.113.9", &ok);
    assert_eq!(code(&d), "401 UNTRUSTED_PROXY_HEADER");
    let Decision::Deny(denial) = d else { panic!() };
    assert!(denial.to_string().contains("203.0.113.9"), "{denial}");

    // A peer whose address the adapter does not know is never a trusted proxy (hyper's
    // layer used without certauth's serve has none).
    let unknown = ready(auth.decide(&PeerInfo::new(&[], None), &ok, now()));
    assert_eq!(code(&unknown), "401 UNTRUSTED_PROXY_HEADER");
    let Decision::Deny(denial) = unknown else {
        panic!()
    };
    assert!(denial.to_string().contains("unknown address"), "{denial}");

    // The verify header.
    let missing = with_headers(&[("X-SSL-Client-Cert", &cert)]);
    let Decision::Deny(d) = decide(&auth, &[], "127.0.0.1", &missing) else {
        panic!()
    };
    assert_eq!(d.code(), "PROXY_VERIFICATION_FAILED");
    assert_eq!(
        d.response().body(),
        "Certificate verification failed (header missing)"
    );
    let failed = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("X-SSL-Client-Verify", "FAILED:unable to verify"),
    ]);
    let Decision::Deny(d) = decide(&auth, &[], "127.0.0.1", &failed) else {
        panic!()
    };
    assert_eq!(
        d.response().body(),
        "Certificate verification failed (FAILED:unable to verify)"
    );

    // Repeated certificate header: 400.
    let twice = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("x-ssl-client-cert", &cert),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);
    assert_eq!(
        code(&decide(&auth, &[], "127.0.0.1", &twice)),
        "400 REPEATED_CERTIFICATE_HEADER"
    );

    // A repeated verify header is refused too, even with SUCCESS first.
    let verify_twice = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("X-SSL-Client-Verify", "SUCCESS"),
        ("X-SSL-Client-Verify", "FAILED:unable to verify"),
    ]);
    let Decision::Deny(d) = decide(&auth, &[], "127.0.0.1", &verify_twice) else {
        panic!()
    };
    assert_eq!(d.code(), "REPEATED_CERTIFICATE_HEADER");
    assert!(d.to_string().contains("X-SSL-Client-Verify"), "{d}");

    // Absent, malformed.
    let absent = with_headers(&[("X-SSL-Client-Verify", "SUCCESS")]);
    assert_eq!(
        code(&decide(&auth, &[], "127.0.0.1", &absent)),
        "401 NO_CERTIFICATE"
    );
    let garbage = with_headers(&[
        ("X-SSL-Client-Cert", "%ZZ"),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);
    assert_eq!(
        code(&decide(&auth, &[], "127.0.0.1", &garbage)),
        "401 MALFORMED_CERTIFICATE_HEADER"
    );

    // Re-verification against the anchors catches a certificate the proxy should not have
    // accepted.
    let foreign = with_headers(&[
        ("X-SSL-Client-Cert", &encode::nginx_escaped(&p.other.pem())),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);
    assert_eq!(
        code(&decide(&auth, &[], "127.0.0.1", &foreign)),
        "401 UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    );
    let trusting = nginx_auth(&p.root, |c| c.with_reverify(false));
    let Decision::Allow(who) = decide(&trusting, &[], "127.0.0.1", &foreign) else {
        panic!()
    };
    assert!(who.chain().is_none());
}

/// RFC 9440: the chain is a structured-field List; a proxy may send it over several field
/// lines, which count as one list (RFC 8941 section 3.1).
#[test]
fn rfc9440_chain_split_over_field_lines() {
    let root = Authority::root("Split Root");
    let upper = root.intermediate("Split Upper");
    let lower = upper.intermediate("Split Lower");
    let leaf = lower.issue(&Leaf::client("trusted-client"));
    let auth = Authenticator::builder()
        .verifier(verifier(&root))
        .proxy_header(
            ProxyHeaderConfig::preset(Preset::Rfc9440)
                .with_trusted_proxies(["127.0.0.1"])
                .unwrap(),
        )
        .build()
        .unwrap();
    let cert = encode::sf_binary(&leaf.der);
    let (a, b) = (
        encode::sf_binary(&lower.cert.der),
        encode::sf_binary(&upper.cert.der),
    );
    let one_line = with_headers(&[
        ("Client-Cert", &cert),
        ("Client-Cert-Chain", &format!("{a}, {b}")),
    ]);
    let two_lines = with_headers(&[
        ("Client-Cert", &cert),
        ("Client-Cert-Chain", &a),
        ("Client-Cert-Chain", &b),
    ]);
    let first_only = with_headers(&[("Client-Cert", &cert), ("Client-Cert-Chain", &a)]);
    assert_eq!(code(&decide(&auth, &[], "127.0.0.1", &one_line)), "ALLOW");
    assert_eq!(code(&decide(&auth, &[], "127.0.0.1", &two_lines)), "ALLOW");
    assert_eq!(
        code(&decide(&auth, &[], "127.0.0.1", &first_only)),
        "401 UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    );
}

#[test]
fn fallback_to_the_tls_peer() {
    let p = pki();
    let auth = nginx_auth(&p.root, |c| c.with_fallback_to_tls_peer(true));
    let tls = [p.trusted.der.clone()];
    let absent = with_headers(&[]);
    // A client reaching certauth directly (not a trusted proxy) with no header: its own
    // TLS certificate.
    let Decision::Allow(who) = decide(&auth, &tls, "203.0.113.9", &absent) else {
        panic!()
    };
    assert!(!who.from_proxy_header());
    assert_eq!(
        code(&decide(&auth, &[], "203.0.113.9", &absent)),
        "401 NO_CERTIFICATE"
    );
    // Fallback never excuses an untrusted source.
    let cert = encode::nginx_escaped(&p.trusted.pem());
    let forged = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);
    assert_eq!(
        code(&decide(&auth, &tls, "203.0.113.9", &forged)),
        "401 UNTRUSTED_PROXY_HEADER"
    );
}

/// Issue 25, finding 6: the proxy reaches certauth over mutual TLS with its own trusted
/// certificate; its client's certificate is what counts, and a request for a client without
/// one, or with a malformed one, must not pass as the proxy.
#[test]
fn a_trusted_proxy_never_stands_in_for_its_client() {
    let p = pki();
    let auth = nginx_auth(&p.root, |c| c.with_fallback_to_tls_peer(true));
    let proxy_tls = [p.trusted.der.clone()];
    // nginx `optional_no_ca`: no certificate header, the verify header says NONE.
    let no_client_cert = with_headers(&[("X-SSL-Client-Verify", "NONE")]);
    assert_eq!(
        code(&decide(&auth, &proxy_tls, "127.0.0.1", &no_client_cert)),
        "401 NO_CERTIFICATE"
    );
    assert_eq!(
        code(&decide(&auth, &proxy_tls, "127.0.0.1", &with_headers(&[]))),
        "401 NO_CERTIFICATE"
    );
    let garbage = with_headers(&[
        ("X-SSL-Client-Cert", "not a pem"),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);
    assert_eq!(
        code(&decide(&auth, &proxy_tls, "127.0.0.1", &garbage)),
        "401 MALFORMED_CERTIFICATE_HEADER"
    );
    let cert = encode::nginx_escaped(&p.trusted.pem());
    let unverified = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("X-SSL-Client-Verify", "FAILED:unable to verify"),
    ]);
    assert_eq!(
        code(&decide(&auth, &proxy_tls, "127.0.0.1", &unverified)),
        "401 PROXY_VERIFICATION_FAILED"
    );
}

#[test]
fn header_caps() {
    let p = pki();
    let auth = nginx_auth(&p.root, |c| c.with_max_value_bytes(256));
    let cert = encode::nginx_escaped(&p.trusted.pem());
    let h = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);
    assert_eq!(
        code(&decide(&auth, &[], "127.0.0.1", &h)),
        "401 CERTIFICATE_HEADER_TOO_LARGE"
    );

    let auth = nginx_auth(&p.root, |c| c.with_max_chain_len(2));
    let three =
        encode::nginx_escaped(&[p.trusted.pem(), p.trusted.pem(), p.trusted.pem()].concat());
    let h = with_headers(&[
        ("X-SSL-Client-Cert", &three),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);
    assert_eq!(
        code(&decide(&auth, &[], "127.0.0.1", &h)),
        "401 CHAIN_TOO_LONG"
    );
}

#[test]
fn authenticator_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Authenticator>();
    assert_send_sync::<certauth_core::Authenticated>();
    fn assert_send<T: Send>() {}
    assert_send::<Evaluation>();
    assert_send::<RequestHead>();
}

#[test]
fn reload_replaces_the_configuration_for_every_clone_and_keeps_it_on_error() {
    let p = pki();
    let other_root = Authority::root("Reload Other Root");
    let from_other = other_root.issue(&Leaf::client("trusted-client"));
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .build()
        .unwrap();
    let clone = auth.clone();
    let h = head(WS);
    // One connection: it remembers its chain's verification between requests.
    let connection = certauth_core::tls::TlsPeer::presenting(vec![p.trusted.der.clone()]);
    let with_memo = |a: &Authenticator| code(&ready(a.decide(&connection.info(None), &h, now())));
    assert_eq!(with_memo(&auth), "ALLOW");
    let trusted = [p.trusted.der.clone()];
    assert_eq!(
        code(&decide(&clone, &[from_other.der.clone()], "10.0.0.1", &h)),
        "401 UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    );

    // New anchors: the clone sees them too.
    auth.reload(Authenticator::builder().verifier(verifier(&other_root)))
        .unwrap();
    assert_eq!(
        code(&decide(&clone, &[from_other.der.clone()], "10.0.0.1", &h)),
        "ALLOW"
    );
    // What the connection remembered under the old anchors is not reused.
    assert_eq!(with_memo(&auth), "401 UNABLE_TO_VERIFY_LEAF_SIGNATURE");

    // A CRL revoking a client that was verified (and cached) before.
    let v = verifier(&p.root);
    auth.reload(Authenticator::builder().verifier(v.clone()))
        .unwrap();
    assert_eq!(code(&decide(&auth, &trusted, "10.0.0.1", &h)), "ALLOW");
    let revoking = v.with_crls([p.root.crl(&[&p.trusted])]).unwrap();
    auth.reload(Authenticator::builder().verifier(revoking))
        .unwrap();
    assert_eq!(
        code(&decide(&auth, &trusted, "10.0.0.1", &h)),
        "401 CERT_REVOKED"
    );

    // A policy change.
    auth.reload(
        Authenticator::builder()
            .verifier(verifier(&p.root))
            .policy(allow_cn(["someone-else"])),
    )
    .unwrap();
    assert_eq!(
        code(&decide(&clone, &trusted, "10.0.0.1", &h)),
        "401 POLICY_DENIED"
    );

    // A broken configuration is refused and the one in force stays.
    let broken = Authenticator::builder().proxy_header(ProxyHeaderConfig::preset(Preset::Nginx));
    assert!(matches!(
        auth.reload(broken),
        Err(SetupError::NoTrustedProxies)
    ));
    assert!(matches!(
        auth.reload(Authenticator::builder()),
        Err(SetupError::MissingTrustAnchors)
    ));
    let other_limits = Authenticator::builder()
        .verifier(verifier(&p.root))
        .limits(Limits::DEFAULT.with_max_headers(3));
    assert!(matches!(
        auth.reload(other_limits),
        Err(SetupError::LimitsChanged)
    ));
    assert!(SetupError::LimitsChanged.to_string().contains("restart"));
    assert_eq!(
        code(&decide(&clone, &trusted, "10.0.0.1", &h)),
        "401 POLICY_DENIED"
    );
}

/// A reload that swaps only the anchors and the policy keeps how refusals are written
/// (`expose_reasons`, the `deny_body` hook) and the limits; setting them in the reload's
/// builder changes them.
#[test]
fn reload_keeps_what_its_builder_does_not_set() {
    let p = pki();
    let limits = Limits::DEFAULT.with_max_headers(40);
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .limits(limits)
        .expose_reasons(true)
        .deny_body(|d, _| Some(("text/plain", format!("page {}", d.code()))))
        .build()
        .unwrap();
    let h = head(WS);
    let body = |a: &Authenticator| match decide(a, &[], "10.0.0.1", &h) {
        Decision::Deny(d) => (d.response().body().to_owned(), format!("{d}")),
        Decision::Allow(_) => panic!("allowed without a certificate"),
    };
    assert_eq!(body(&auth).0, "page NO_CERTIFICATE");

    // Anchors and policy only: the hook, the exposed reasons and the limits stay.
    auth.reload(
        Authenticator::builder()
            .verifier(verifier(&p.root))
            .policy(allow_cn(["trusted-client"])),
    )
    .unwrap();
    assert_eq!(body(&auth).0, "page NO_CERTIFICATE");
    assert_eq!(auth.limits(), &limits);
    // Setting the same limits again is no change.
    auth.reload(
        Authenticator::builder()
            .verifier(verifier(&p.root))
            .limits(limits),
    )
    .unwrap();

    // Removing the hook: certauth's body, still with the reason exposed.
    auth.reload(
        Authenticator::builder()
            .verifier(verifier(&p.root))
            .default_deny_body(),
    )
    .unwrap();
    assert_eq!(
        body(&auth).0,
        "Unauthorized: Client certificate required (NO_CERTIFICATE)"
    );
    // And hiding the reason.
    auth.reload(
        Authenticator::builder()
            .verifier(verifier(&p.root))
            .expose_reasons(false),
    )
    .unwrap();
    assert_eq!(body(&auth).0, "Unauthorized");
}

#[test]
fn denials_chain_their_sources_and_debug_says_what_it_holds() {
    use std::error::Error as _;
    let p = pki();
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .build()
        .unwrap();
    assert!(
        format!("{auth:?}").starts_with("Authenticator {"),
        "{auth:?}"
    );
    assert!(auth.verifier().is_some());
    let h = head(WS);
    let evaluation = auth.decide(&PeerInfo::new(&[], None), &h, now());
    assert!(
        format!("{evaluation:?}").starts_with("Ready(Deny("),
        "{evaluation:?}"
    );
    // A chain that does not verify: the denial prints its cause once (no `source()` chain to
    // print it again), and holds it typed.
    let Decision::Deny(d) = decide(&auth, &[p.other.der.clone()], "10.0.0.1", &h) else {
        panic!()
    };
    assert!(d.source().is_none());
    assert!(d.reason().source().is_none());
    assert!(
        d.to_string()
            .contains("certificate's issuer is not a trusted CA and no intermediate was sent"),
        "{d}"
    );
    assert!(matches!(
        d.reason(),
        certauth_core::DenyReason::Verify(certauth_core::VerifyError::LeafIssuerUnknown)
    ));
    // A leaf that does not parse.
    let Decision::Deny(d) = decide(
        &auth,
        &[CertificateDer::from(vec![0x30, 0x00])],
        "10.0.0.1",
        &h,
    ) else {
        panic!()
    };
    assert_eq!(d.code(), "MALFORMED_CERTIFICATE");
    assert!(matches!(
        d.reason(),
        certauth_core::DenyReason::MalformedCertificate(_)
    ));
    // A header that does not decode.
    let header = Authenticator::builder()
        .proxy_header(
            ProxyHeaderConfig::preset(Preset::Cloudflare)
                .with_trusted_proxies(["127.0.0.1"])
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(header.verifier().is_none());
    let bad = with_headers(&[("Cf-Client-Cert-Der-Base64", "!!!")]);
    let Decision::Deny(d) = decide(&header, &[], "127.0.0.1", &bad) else {
        panic!()
    };
    assert!(
        matches!(d.reason(), certauth_core::DenyReason::ProxyHeader(_)),
        "{d}"
    );
    // An internal error answers 500, never 401.
    let internal = auth.misconfigured("no connection information");
    assert_eq!(
        (internal.status(), internal.code()),
        (Status::InternalServerError, "INTERNAL_ERROR")
    );
    assert!(internal.reason().source().is_none());
    assert!(
        internal.to_string().contains("no connection information"),
        "{internal}"
    );
}

/// The decision honours the key types the handshake verified: a client whose key the
/// handshake's provider did not verify is refused with the key in the reason (typed), and
/// let in when it did; a P-521 client is refused with the common support (ring's).
#[cfg(feature = "rustls")]
#[test]
fn the_key_support_of_the_handshake_decides_which_keys_get_in() {
    use certauth_core::VerifyError;
    use certauth_core::tls::TlsPeer;
    use certauth_testkit::{Crafted, der};
    let p = pki();
    let root = certauth_core::ClientCertificate::from_der(&p.root.cert.der).unwrap();
    let mut c = Crafted::new(der::simple_name(&[("CN", "p521-client")]));
    c.issuer = root.subject().raw().to_vec();
    c.spki = Some(der::seq(&[
        der::seq(&[der::oid("1.2.840.10045.2.1"), der::oid("1.3.132.0.35")]),
        der::tlv(0x03, &[&[0u8, 4][..], &[0x21; 132]].concat()),
    ]));
    let leaf_key = certauth_testkit::key(certauth_testkit::KeyKind::P256);
    let p521 = CertificateDer::from(c.sign(&leaf_key, &p.root.cert.key));
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .build()
        .unwrap();
    let h = head(WS);
    let decide_as = |peer: &TlsPeer| ready(auth.decide(&peer.info(None), &h, now()));

    let Decision::Deny(d) = decide_as(&TlsPeer::presenting(vec![p521.clone()])) else {
        panic!()
    };
    assert_eq!(d.code(), "UNSUPPORTED_KEY_TYPE");
    assert!(d.to_string().contains("ECDSA P-521"), "{d}");
    assert!(
        matches!(
            d.reason(),
            certauth_core::DenyReason::Verify(VerifyError::UnsupportedKey { .. })
        ),
        "{d}"
    );
    assert_eq!(
        code(&decide(&auth, &[p521], "10.0.0.1", &h)),
        "401 UNSUPPORTED_KEY_TYPE"
    );

    // The trusted client's key (P-256) gets in over a handshake that verified it (ring's
    // provider), and not over one whose provider verifies Ed25519 alone.
    let config = |provider: rustls::crypto::CryptoProvider| {
        let key = certauth_testkit::key(certauth_testkit::KeyKind::P256);
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap()
    };
    static ED25519: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm] =
        &[webpki::ring::ED25519];
    static MAPPING: &[(
        rustls::SignatureScheme,
        &[&dyn rustls::pki_types::SignatureVerificationAlgorithm],
    )] = &[(rustls::SignatureScheme::ED25519, ED25519)];
    let mut narrow = certauth_testkit::ring_provider();
    narrow.signature_verification_algorithms = rustls::crypto::WebPkiSupportedAlgorithms {
        all: ED25519,
        mapping: MAPPING,
    };
    let chain = vec![p.trusted.der.clone()];
    let ring = TlsPeer::new(&config(certauth_testkit::ring_provider()), chain.clone());
    let ed25519_only = TlsPeer::new(&config(narrow), chain.clone());
    assert_eq!(ring, TlsPeer::presenting(chain));
    assert_ne!(ring, ed25519_only);
    assert_eq!(code(&decide_as(&ring)), "ALLOW");
    let Decision::Deny(d) = decide_as(&ed25519_only) else {
        panic!()
    };
    assert_eq!(d.code(), "UNSUPPORTED_KEY_TYPE");
    assert!(d.to_string().contains("ECDSA P-256"), "{d}");
}

/// An authenticated client prints as its subject; the configuration's risks are named.
#[test]
fn authenticated_display_and_configuration_warnings() {
    let p = pki();
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .build()
        .unwrap();
    let Decision::Allow(client) = decide(&auth, &[p.trusted.der.clone()], "10.0.0.1", &head(WS))
    else {
        panic!()
    };
    assert_eq!(client.to_string(), "CN=trusted-client");
    assert!(auth.warnings().is_empty());
    let proxy = || {
        ProxyHeaderConfig::preset(Preset::Cloudflare)
            .with_trusted_proxies(["10.0.0.5"])
            .unwrap()
    };
    // Header mode with neither a verifier nor a verify header believes anything forwarded.
    let open = Authenticator::builder()
        .proxy_header(proxy())
        .build()
        .unwrap();
    assert_eq!(open.warnings().len(), 1);
    assert!(open.warnings()[0].contains("without verifying"));
    // Either safeguard is enough.
    let reverified = Authenticator::builder()
        .verifier(verifier(&p.root))
        .proxy_header(proxy())
        .build()
        .unwrap();
    assert!(reverified.warnings().is_empty());
    let with_verify_header = Authenticator::builder()
        .proxy_header(proxy().with_verify_header("X-Verify", "SUCCESS").unwrap())
        .build()
        .unwrap();
    assert!(with_verify_header.warnings().is_empty());
    // A loopback proxy lets every local process send the header.
    for local in ["127.0.0.1", "::1", "127.0.0.0/8"] {
        let loopback = Authenticator::builder()
            .verifier(verifier(&p.root))
            .proxy_header(
                ProxyHeaderConfig::preset(Preset::Cloudflare)
                    .with_trusted_proxies([local])
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(loopback.warnings().len(), 1, "{local}");
        assert!(loopback.warnings()[0].contains("every process on this host"));
    }
}

/// Header mode on a Unix socket: trust is the socket, opted into by the configuration, and
/// it never widens what TCP peers may do.
#[test]
fn header_mode_on_a_unix_socket() {
    let p = pki();
    let cert = encode::nginx_escaped(&p.trusted.pem());
    let ok = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("X-SSL-Client-Verify", "SUCCESS"),
    ]);
    let on_socket = |auth: &Authenticator| ready(auth.decide(&PeerInfo::unix_socket(), &ok, now()));

    // Trusting the socket alone is a complete configuration (not NoTrustedProxies).
    let socket_only = Authenticator::builder()
        .verifier(verifier(&p.root))
        .proxy_header(
            ProxyHeaderConfig::preset(Preset::Nginx)
                .trust_unix_socket()
                .with_verify_header("X-SSL-Client-Verify", "SUCCESS")
                .unwrap(),
        )
        .build()
        .unwrap();
    let Decision::Allow(who) = on_socket(&socket_only) else {
        panic!("a trusted socket's header is honoured")
    };
    assert!(who.from_proxy_header());
    // ... and trusts no TCP peer, loopback included.
    for remote in ["127.0.0.1", "::1", "10.0.0.1"] {
        assert_eq!(
            code(&decide(&socket_only, &[], remote, &ok)),
            "401 UNTRUSTED_PROXY_HEADER",
            "{remote}"
        );
    }
    assert_eq!(
        code(&ready(socket_only.decide(
            &PeerInfo::new(&[], None),
            &ok,
            now()
        ))),
        "401 UNTRUSTED_PROXY_HEADER"
    );
    // The socket still needs a good certificate and the verify header.
    let bad = with_headers(&[
        ("X-SSL-Client-Cert", &cert),
        ("X-SSL-Client-Verify", "NONE"),
    ]);
    assert_eq!(
        code(&ready(socket_only.decide(
            &PeerInfo::unix_socket(),
            &bad,
            now()
        ))),
        "401 PROXY_VERIFICATION_FAILED"
    );
    // A loopback-only configuration does not trust a Unix peer.
    let loopback = nginx_auth(&p.root, |c| c);
    let Decision::Deny(d) = on_socket(&loopback) else {
        panic!("an untrusted socket's header is refused")
    };
    assert_eq!(d.code(), "UNTRUSTED_PROXY_HEADER");
    assert!(d.to_string().contains("Unix socket"), "{d}");
    // dangerous_trust_any_proxy trusts every peer, sockets included.
    let any = nginx_auth(&p.root, ProxyHeaderConfig::dangerous_trust_any_proxy);
    assert!(matches!(on_socket(&any), Decision::Allow(_)));
    // No loopback warning for a socket-only configuration.
    assert!(
        socket_only
            .warnings()
            .iter()
            .all(|w| !w.contains("loopback")),
        "{:?}",
        socket_only.warnings()
    );
}

/// `deny_body`: the application writes the refusal's body (a page for browsers); the status,
/// `Content-Length` and the close stay the core's; `None` keeps certauth's body.
#[test]
fn deny_body_replaces_only_the_body() {
    let p = pki();
    let page = |d: &certauth_core::Denial, r: &certauth_core::policy::RequestInfo<'_>| {
        let html = r
            .headers
            .get("accept")
            .is_some_and(|a| a.windows(9).any(|w| w == b"text/html"));
        html.then(|| {
            (
                "text/html; charset=utf-8",
                format!("<p>{} {} {}</p>", d.code(), r.method, r.target),
            )
        })
    };
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .policy(allow_cn(["trusted-client"]))
        .deny_body(page)
        .build()
        .unwrap();
    let browser = with_headers(&[("Accept", "text/html,*/*")]);
    let api = with_headers(&[("Accept", "application/json")]);

    // A refusal before the policy (no certificate) and one by the policy.
    let refused = p.root.issue(&Leaf::client("someone-else"));
    let other = [refused.der.clone()];
    for (chain, code) in [(&[][..], "NO_CERTIFICATE"), (&other[..], "POLICY_DENIED")] {
        let Decision::Deny(d) = decide(&auth, chain, "192.0.2.1", &browser) else {
            panic!()
        };
        let r = d.response();
        assert_eq!(r.status(), Status::Unauthorized);
        let body = format!("<p>{code} GET /api</p>");
        assert_eq!(r.body(), body);
        let bytes = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            bytes.contains("Content-Type: text/html; charset=utf-8\r\n"),
            "{bytes}"
        );
        assert!(
            bytes.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{bytes}"
        );
        assert!(bytes.contains("Connection: close\r\n"), "{bytes}");
        assert!(r.closes_connection());

        let Decision::Deny(d) = decide(&auth, chain, "192.0.2.1", &api) else {
            panic!()
        };
        assert_eq!(
            d.response().body(),
            "Unauthorized",
            "None keeps certauth's body"
        );
    }

    // An async policy's denial is dressed too, with the request's headers.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen2 = std::sync::Arc::clone(&seen);
    let deny = Authenticator::builder()
        .verifier(verifier(&p.root))
        .async_policy(|_: OwnedPolicyContext| async { Verdict::forbid("db says no") })
        .deny_body(move |d, r| {
            *seen2.lock().unwrap() = Some((r.headers.get("accept").is_some(), r.target.to_owned()));
            Some(("text/plain; charset=utf-8", format!("no: {}", d.code())))
        })
        .build()
        .unwrap();
    let chain = [p.trusted.der.clone()];
    let peer = PeerInfo::new(&chain, None);
    let Poll::Ready(Decision::Deny(d)) = poll_once(deny.decide(&peer, &browser, now())) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Forbidden);
    assert_eq!(d.response().body(), "no: POLICY_DENIED");
    assert_eq!(*seen.lock().unwrap(), Some((true, "/api".to_owned())));
}

/// An async policy sees what a sync one sees: the method, the target (and its path alone),
/// every header, copied.
#[test]
fn async_policies_see_the_request_headers() {
    let p = pki();
    let auth = Authenticator::builder()
        .verifier(verifier(&p.root))
        .async_policy(|ctx: OwnedPolicyContext| async move {
            let mut count = 0;
            ctx.request().headers.for_each(&mut |_, _| count += 1);
            let ok = ctx.path() == "/api"
                && ctx.target == "/api?x=1"
                && ctx.header("x-tenant") == Some(&b"blue"[..])
                && ctx.request().headers.get("X-TENANT") == Some(&b"blue"[..])
                && count == 2;
            if ok {
                Verdict::Allow
            } else {
                Verdict::deny(format!("saw {ctx:?}"))
            }
        })
        .build()
        .unwrap();
    let h = head(b"GET /api?x=1 HTTP/1.1\r\nHost: h\r\nX-Tenant: blue\r\n\r\n");
    let chain = [p.trusted.der.clone()];
    let peer = PeerInfo::new(&chain, None);
    let d = match poll_once(auth.decide(&peer, &h, now())) {
        Poll::Ready(d) => d,
        Poll::Pending => panic!("the policy is ready at once"),
    };
    assert_eq!(code(&d), "ALLOW", "{d:?}");
}

/// Issue 25, finding 10: what a client put in its certificate reaches the logs (a denial's
/// text) and, with `expose_reasons`, the body, with its control characters escaped: a CN
/// holding CR/LF cannot forge a log line, a bidi override cannot disguise one.
#[test]
fn a_denial_never_carries_a_clients_control_characters() {
    let root = Authority::root("Escape Root");
    let forger = root.issue(&Leaf::client(
        "x\r\n2026-12-07T00:00:00Z INFO client authenticated\u{202e}",
    ));
    let auth = Authenticator::builder()
        .verifier(verifier(&root))
        .policy(allow_cn(["trusted-client"]))
        .expose_reasons(true)
        .build()
        .unwrap();
    let Decision::Deny(denial) = decide(&auth, &[forger.der.clone()], "127.0.0.1", &head(WS))
    else {
        panic!("the policy must refuse")
    };
    let logged = denial.to_string();
    assert!(!logged.contains(['\r', '\n', '\u{202e}']), "{logged:?}");
    assert!(logged.contains("2026-12-07T00:00:00Z INFO"), "{logged}");
    assert!(!denial.reason().to_string().contains('\n'));
    let body = denial.response().body();
    assert!(!body.contains(['\r', '\n', '\u{202e}']), "{body:?}");
    // The subject adapters log beside the text (attack review): escaped too.
    let subject = denial.subject().unwrap();
    assert!(!subject.contains(['\r', '\n', '\u{202e}']), "{subject:?}");
    assert!(subject.contains("\\u{202e}"), "{subject}");
}

/// Attack review of finding 6: every way a request can arrive from a trusted proxy without
/// a usable certificate header, with the fallback on, must be refused; the fallback serves
/// only a direct client that sends no certificate header.
#[test]
fn attack_the_fallback_from_every_side() {
    let p = pki();
    let auth = nginx_auth(&p.root, |c| {
        c.with_fallback_to_tls_peer(true)
            .with_chain_header("X-SSL-Client-Chain")
            .unwrap()
    });
    let proxy_tls = [p.trusted.der.clone()];
    let cert = encode::nginx_escaped(&p.trusted.pem());
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "empty certificate header",
            vec![
                ("X-SSL-Client-Cert", ""),
                ("X-SSL-Client-Verify", "SUCCESS"),
            ],
        ),
        (
            "whitespace header",
            vec![
                ("X-SSL-Client-Cert", "   "),
                ("X-SSL-Client-Verify", "SUCCESS"),
            ],
        ),
        (
            "chain header only",
            vec![
                ("X-SSL-Client-Chain", &cert),
                ("X-SSL-Client-Verify", "SUCCESS"),
            ],
        ),
        (
            "verify header only",
            vec![("X-SSL-Client-Verify", "SUCCESS")],
        ),
        (
            "repeated certificate header",
            vec![
                ("X-SSL-Client-Cert", &cert),
                ("X-SSL-Client-Cert", &cert),
                ("X-SSL-Client-Verify", "SUCCESS"),
            ],
        ),
        (
            "repeated verify header",
            vec![
                ("X-SSL-Client-Cert", &cert),
                ("X-SSL-Client-Verify", "SUCCESS"),
                ("x-ssl-client-verify", "SUCCESS"),
            ],
        ),
        (
            "verify header lower case value",
            vec![
                ("X-SSL-Client-Cert", &cert),
                ("X-SSL-Client-Verify", "success"),
            ],
        ),
        ("no verify header", vec![("X-SSL-Client-Cert", &cert)]),
        (
            "name case",
            vec![
                ("x-ssl-client-cert", "junk"),
                ("X-SSL-CLIENT-VERIFY", "SUCCESS"),
            ],
        ),
    ];
    for remote in ["127.0.0.1", "::ffff:127.0.0.1", "10.1.2.3"] {
        for (name, headers) in &cases {
            let d = decide(&auth, &proxy_tls, remote, &with_headers(headers));
            assert_ne!(
                code(&d),
                "ALLOW",
                "{remote} {name}: the proxy's own identity passed"
            );
        }
    }
    // A TLS peer whose address is unknown (an adapter that could not read it) may be the
    // proxy: its own certificate must not stand in either.
    for (name, headers) in &cases {
        let peer = PeerInfo::new(&proxy_tls, None);
        let d = ready(auth.decide(&peer, &with_headers(headers), now()));
        assert_ne!(code(&d), "ALLOW", "unknown address, {name}");
    }
    let peer = PeerInfo::new(&proxy_tls, None);
    assert_eq!(
        code(&ready(auth.decide(&peer, &with_headers(&[]), now()))),
        "401 NO_CERTIFICATE",
        "unknown address, no header"
    );
    // A Unix peer is never a direct client, whatever address an adapter gives it.
    let mut unix = PeerInfo::new(&proxy_tls, Some("203.0.113.9".parse().unwrap()));
    unix.unix_socket = true;
    assert_eq!(
        code(&ready(auth.decide(&unix, &with_headers(&[]), now()))),
        "401 NO_CERTIFICATE",
        "unix socket with an address, no header"
    );
    // A trusted Unix socket: never a fallback either (and it has no TLS peer anyway).
    let socket = Authenticator::builder()
        .verifier(verifier(&p.root))
        .proxy_header(
            ProxyHeaderConfig::preset(Preset::Nginx)
                .trust_unix_socket()
                .with_fallback_to_tls_peer(true),
        )
        .build()
        .unwrap();
    for (name, headers) in &cases {
        let d = ready(socket.decide(&PeerInfo::unix_socket(), &with_headers(headers), now()));
        let ok = matches!(&d, Decision::Allow(who) if who.from_proxy_header());
        assert!(
            !matches!(&d, Decision::Allow(who) if !who.from_proxy_header()),
            "unix {name}: fell back"
        );
        let _ = ok;
    }
    // An untrusted client sending headers is refused, not fallen back (and not believed).
    for (name, headers) in &cases {
        let d = decide(&auth, &proxy_tls, "203.0.113.9", &with_headers(headers));
        if let Decision::Allow(who) = &d {
            assert!(!who.from_proxy_header(), "{name}");
            assert!(
                !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("x-ssl-client-cert")),
                "untrusted {name}: passed with a certificate header"
            );
        }
    }
}
