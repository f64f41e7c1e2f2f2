//! Header mode behind real proxies from Debian's packages, started on loopback ports with the
//! configurations the README shows, taken from the README itself (only ports and file paths
//! are replaced): nginx (`ssl_verify_client optional_no_ca`, `$ssl_client_escaped_cert`,
//! `$ssl_client_verify`) and HAProxy (`ssl_c_der,base64`, `ssl_c_verify`). Each passes
//! `nginx -t` / `haproxy -c` first. The backend is the hyper layer on plain HTTP, trusting
//! only 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use certauth_hyper::certauth_core::tls::ClientAuthMode;
use certauth_hyper::certauth_core::{Authenticator, Limits, Preset, ProxyHeaderConfig};
use certauth_hyper::{CertAuthLayer, ClientCert, serve};
use certauth_testkit::encode;
use certauth_testkit::proxies::{
    self, Files, Proc, binary, config_check, free_port, readme_block, wait_for,
};
use certauth_testkit::suite::{self, Pki};

struct Backend {
    port: u16,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The hyper backend in header mode for `preset`, verify header `name=value`.
fn backend(pki: &Pki, preset: Preset, verify: (&str, &str)) -> Backend {
    let (_, with_anchors) = suite::server_parts(pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let proxy = ProxyHeaderConfig::preset(preset)
        .with_trusted_proxies(["127.0.0.1"])
        .unwrap()
        .with_verify_header(verify.0, verify.1)
        .unwrap();
    let auth = Authenticator::builder()
        .verifier(with_anchors.verifier().unwrap())
        .proxy_header(proxy)
        .policy(suite::policy)
        .expose_reasons(true)
        .build()
        .unwrap();
    let port = free_port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            let app = Router::new()
                .route(
                    "/whoami",
                    get(|ClientCert(c): ClientCert| async move {
                        format!(
                            "CN={}",
                            c.certificate().subject().common_names().next().unwrap()
                        )
                    }),
                )
                .layer(CertAuthLayer::new(auth));
            serve(listener, None, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "backend did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Backend { port, _stop: stop }
}

/// A request sent straight to the backend from 127.0.0.2, which is not a trusted proxy.
fn forged(backend: u16, header: &str, value: &str, verify: &str) -> String {
    let mut tcp = from_127_0_0_2(backend);
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "GET /whoami HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n{header}: {value}\r\n{verify}\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out
}

/// A connection to `port` whose source address is 127.0.0.2 (std cannot bind before
/// connecting; tokio's TcpSocket can).
fn from_127_0_0_2(port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(([127, 0, 0, 2], 0).into()).unwrap();
        s.connect(([127, 0, 0, 1], port).into()).await.unwrap()
    });
    let std = stream.into_std().unwrap();
    std.set_nonblocking(false).unwrap();
    std
}

#[test]
fn behind_nginx() {
    let pki = Pki::new();
    let backend = backend(&pki, Preset::Nginx, ("X-SSL-Client-Verify", "SUCCESS"));
    let files = Files::new("nginx", &pki);
    let port = free_port();
    let _nginx = proxies::nginx(&files, port, &format!("http://127.0.0.1:{}", backend.port));

    assert_eq!(
        proxies::get(port, &pki, Some(&pki.trusted), "/whoami"),
        ("HTTP/1.1 200 OK".into(), "CN=trusted-client".into())
    );
    let (status, body) = proxies::get(port, &pki, Some(&pki.other_ca), "/whoami");
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert!(
        body.starts_with("Certificate verification failed (FAILED:"),
        "{body}"
    );
    assert_eq!(
        proxies::get(port, &pki, None, "/whoami"),
        (
            "HTTP/1.1 401 Unauthorized".into(),
            "Unauthorized: Client certificate required (NO_CERTIFICATE)".into()
        )
    );
    let (status, body) = proxies::get(port, &pki, Some(&pki.forbidden), "/whoami");
    assert_eq!(status, "HTTP/1.1 403 Forbidden", "{body}");

    let forged = forged(
        backend.port,
        "X-SSL-Client-Cert",
        &encode::nginx_escaped(&pki.trusted.pem()),
        "X-SSL-Client-Verify: SUCCESS",
    );
    assert!(
        forged.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{forged}"
    );
    assert!(forged.ends_with("(UNTRUSTED_PROXY_HEADER)"), "{forged}");
}

#[test]
fn behind_haproxy() {
    let pki = Pki::new();
    let backend = backend(&pki, Preset::Haproxy, ("X-SSL-Client-Verify", "0"));
    let files = Files::new("haproxy", &pki);
    let port = free_port();
    let block = readme_block(
        "haproxy",
        &[
            ("bind :443", &format!("bind 127.0.0.1:{port}")),
            ("/etc/haproxy/server.pem", &files.path("haproxy.pem")),
            ("/etc/haproxy/client-ca.pem", &files.path("ca.pem")),
            ("127.0.0.1:8080", &format!("127.0.0.1:{}", backend.port)),
        ],
    );
    let conf = files.write("haproxy.cfg", &format!("global\n    maxconn 100\n{block}"));
    config_check("haproxy", &["-c", "-q", "-f", &conf]);
    let mut child = Command::new(binary("haproxy"))
        .args(["-f", &conf, "-db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(port, &mut child, "haproxy");
    let _haproxy = Proc(child);

    assert_eq!(
        proxies::get(port, &pki, Some(&pki.trusted), "/whoami"),
        ("HTTP/1.1 200 OK".into(), "CN=trusted-client".into())
    );
    let (status, body) = proxies::get(port, &pki, Some(&pki.other_ca), "/whoami");
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert!(
        body.starts_with("Certificate verification failed ("),
        "{body}"
    );
    assert!(!body.contains("(0)"), "{body}");
    let (status, body) = proxies::get(port, &pki, None, "/whoami");
    assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{body}");
    let forged = forged(
        backend.port,
        "X-SSL-Client-Cert",
        &encode::base64_der(&pki.trusted.der),
        "X-SSL-Client-Verify: 0",
    );
    assert!(forged.ends_with("(UNTRUSTED_PROXY_HEADER)"), "{forged}");
}
