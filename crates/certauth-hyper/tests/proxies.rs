//! Header mode behind real proxies from Debian's packages, started on loopback ports with the
//! configurations the README shows, taken from the README itself (only ports and file paths
//! are replaced): nginx (`ssl_verify_client optional_no_ca`, `$ssl_client_escaped_cert`,
//! `$ssl_client_verify`) and HAProxy (`ssl_c_der,base64`, `ssl_c_verify`). Each passes
//! `nginx -t` / `haproxy -c` first. The backend is the hyper layer on plain HTTP, trusting
//! only 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use certauth_hyper::certauth_core::tls::ClientAuthMode;
use certauth_hyper::certauth_core::{Authenticator, Limits, Preset, ProxyHeaderConfig};
use certauth_hyper::{CertAuthLayer, ClientCert, serve};
use certauth_testkit::encode;
use certauth_testkit::suite::{self, Pki};

fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run ./scripts/test.sh (it installs nginx-light and haproxy)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The README's fenced block in `lang`, with each `(from, to)` replaced; every `from` must
/// be in the block, so a README edit that the test no longer matches fails here.
fn readme_block(lang: &str, replace: &[(&str, &str)]) -> String {
    let readme = include_str!("../../../README.md");
    let fence = format!("```{lang}\n");
    let mut block = readme
        .split(fence.as_str())
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("README has no {lang} block"))
        .to_owned();
    for (from, to) in replace {
        assert!(
            block.contains(from),
            "README's {lang} block no longer has {from:?}"
        );
        block = block.replace(from, to);
    }
    block
}

/// Runs `program args`, panicking with its output unless it succeeds.
fn config_check(program: &str, args: &[&str]) {
    let out = Command::new(binary(program)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} refused the README's configuration:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Backend {
    port: u16,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The hyper backend in header mode for `preset`, verify header `name=value`.
fn backend(pki: &Pki, preset: Preset, verify: (&str, &str)) -> Backend {
    let (_, with_anchors) = suite::server_parts(pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let proxy = ProxyHeaderConfig::preset(preset)
        .trusted_proxies(["127.0.0.1"])
        .unwrap()
        .verify_header(verify.0, verify.1)
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

struct Files(PathBuf);

impl Files {
    fn new(tag: &str, pki: &Pki) -> Self {
        let dir = std::env::temp_dir().join(format!("certauth-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let f = Self(dir);
        f.write("ca.pem", &pki.root.cert.pem());
        f.write("server.pem", &pki.server.pem());
        f.write("server.key", &pki.server.key_pem());
        f.write(
            "haproxy.pem",
            &format!("{}{}", pki.server.pem(), pki.server.key_pem()),
        );
        f
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GET /whoami through the proxy with `client`'s certificate: (status line, body).
fn whoami(port: u16, pki: &Pki, client: Option<&certauth_testkit::Issued>) -> (String, String) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(pki, client)).unwrap();
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_owned())
        .unwrap_or_default();
    (status, body)
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
    let tmp = files.path("tmp");
    let server = readme_block(
        "nginx",
        &[
            ("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;")),
            ("/etc/nginx/server.pem", &files.path("server.pem")),
            ("/etc/nginx/server.key", &files.path("server.key")),
            ("/etc/nginx/client-ca.pem", &files.path("ca.pem")),
            ("127.0.0.1:8080", &format!("127.0.0.1:{}", backend.port)),
        ],
    );
    // One process (`master_process off`), so stopping it leaves no worker behind.
    let conf = files.write(
        "nginx.conf",
        &format!(
            "master_process off;\npid {pid};\nerror_log {err} warn;\nevents {{}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {tmp}; proxy_temp_path {tmp};\n\
             fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n{server}}}\n",
            pid = files.path("nginx.pid"),
            err = files.path("error.log"),
        ),
    );
    config_check("nginx", &["-t", "-q", "-c", &conf, "-p", &files.path("")]);
    let mut child = Command::new(binary("nginx"))
        .args(["-c", &conf, "-p", &files.path(""), "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(port, &mut child, "nginx");
    let _nginx = Proc(child);

    assert_eq!(
        whoami(port, &pki, Some(&pki.trusted)),
        ("HTTP/1.1 200 OK".into(), "CN=trusted-client".into())
    );
    let (status, body) = whoami(port, &pki, Some(&pki.other_ca));
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert!(
        body.starts_with("Certificate verification failed (FAILED:"),
        "{body}"
    );
    assert_eq!(
        whoami(port, &pki, None),
        (
            "HTTP/1.1 401 Unauthorized".into(),
            "Unauthorized: Client certificate required (NO_CERTIFICATE)".into()
        )
    );
    let (status, body) = whoami(port, &pki, Some(&pki.forbidden));
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
        whoami(port, &pki, Some(&pki.trusted)),
        ("HTTP/1.1 200 OK".into(), "CN=trusted-client".into())
    );
    let (status, body) = whoami(port, &pki, Some(&pki.other_ca));
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert!(
        body.starts_with("Certificate verification failed ("),
        "{body}"
    );
    assert!(!body.contains("(0)"), "{body}");
    let (status, body) = whoami(port, &pki, None);
    assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{body}");
    let forged = forged(
        backend.port,
        "X-SSL-Client-Cert",
        &encode::base64_der(&pki.trusted.der),
        "X-SSL-Client-Verify: 0",
    );
    assert!(forged.ends_with("(UNTRUSTED_PROXY_HEADER)"), "{forged}");
}
