//! Issue 25, finding 5, as the review reproduced it: certauth-tokio's `serve_plain` in
//! header mode (the nginx preset) with hyper as the caller's HTTP server and a path policy
//! (`/admin` only for CN=admin). A trusted proxy writes, at once, `GET /public` with a
//! valid certificate header and `GET /admin` with none: `/admin` must never be served.
#![allow(clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use certauth_core::policy::{PolicyContext, Verdict};
use certauth_core::proxy::{Preset, ProxyHeaderConfig};
use certauth_core::{Authenticator, ChainVerifier, TrustAnchors};
use certauth_testkit::encode::nginx_escaped;
use certauth_testkit::{Authority, Leaf};
use certauth_tokio::{ServeOptions, serve_plain};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

fn admin_only_for_admin(ctx: &PolicyContext<'_>) -> Verdict {
    let cn = ctx.cert.subject().common_names().next().unwrap_or_default();
    if ctx.request.path().starts_with("/admin") && cn != "admin" {
        Verdict::forbid("/admin is for CN=admin")
    } else {
        Verdict::Allow
    }
}

/// `serve_plain` with hyper behind it, as above; the address and the trusted client's
/// certificate header.
fn start() -> (tokio::runtime::Runtime, std::net::SocketAddr, String) {
    let root = Authority::root("Pipeline Root");
    let client = root.issue(&Leaf::client("trusted-client"));
    let anchors = TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            certauth_testkit::ring_provider()
                .signature_verification_algorithms
                .all,
        ))
        .proxy_header(
            ProxyHeaderConfig::preset(Preset::Nginx)
                .with_trusted_proxies(["127.0.0.1"])
                .unwrap(),
        )
        .policy(admin_only_for_admin)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(serve_plain(
        listener,
        auth,
        ServeOptions::default(),
        std::future::pending(),
        |accepted| async move {
            // The caller's own HTTP server, as the README's raw-gate guide has it.
            let service = hyper::service::service_fn(|req: hyper::Request<_>| async move {
                let body = format!("served {}", req.uri().path());
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(TokioIo::new(accepted.into_stream()), service)
                .await;
        },
    ));
    let header = format!("X-SSL-Client-Cert: {}", nginx_escaped(&client.pem()));
    (runtime, addr, header)
}

/// Sends `bytes` from the trusted proxy and reads everything up to the close.
fn exchange(addr: std::net::SocketAddr, bytes: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(bytes.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn a_request_pipelined_after_a_decided_one_is_never_served() {
    let (_runtime, addr, header) = start();
    let reply = exchange(
        addr,
        &format!(
            "GET /public HTTP/1.1\r\nHost: app\r\n{header}\r\n\r\n\
             GET /admin HTTP/1.1\r\nHost: app\r\n\r\n"
        ),
    );
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains("served /public"), "{reply}");
    assert!(!reply.contains("served /admin"), "{reply}");
    assert_eq!(reply.matches("HTTP/1.1").count(), 1, "{reply}");
}

/// Issue 25, finding 7: the path policy judges the path hyper routes by, however the
/// target is spelled (absolute form with any scheme, a fragment).
#[test]
fn a_path_policy_sees_the_path_hyper_serves() {
    let (_runtime, addr, header) = start();
    for target in [
        "ws://app/admin",
        "HTTPS://app/admin/x?y",
        "/admin#frag",
        "/admin",
    ] {
        let reply = exchange(
            addr,
            &format!("GET {target} HTTP/1.1\r\nHost: app\r\n{header}\r\n\r\n"),
        );
        assert!(
            reply.starts_with("HTTP/1.1 403 Forbidden"),
            "{target}: {reply}"
        );
        assert!(!reply.contains("served"), "{target}: {reply}");
    }
    let reply = exchange(
        addr,
        &format!("GET http://app#/admin HTTP/1.1\r\nHost: app\r\n{header}\r\n\r\n"),
    );
    assert!(reply.contains("served /"), "{reply}");
}
