//! Real proxies (Debian's nginx and HAProxy) in front of certauth, started on loopback with
//! the configurations the README shows, taken from the README itself (only ports, file paths
//! and the upstream are replaced), and the shared header-mode-over-a-Unix-socket case.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certauth_core::{Authenticator, Preset, ProxyHeaderConfig};

use crate::suite::{self, Pki, PlainSetup};
use crate::{Issued, encode};

/// The installed binary `name` (scripts/test.sh installs nginx-light and haproxy).
pub fn binary(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run ./scripts/test.sh (it installs nginx-light and haproxy)");
}

/// A loopback port free when asked.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (10 s at most) until `port` accepts, failing if `child` exits first.
pub fn wait_for(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `certauth` (`command`: everything but `--listen`) on a loopback port the system
/// picks, its log (stderr) written to `log`: the child and its port once it listens, read
/// from its `listening on` line. A port taken from [`free_port`] and handed over can be
/// taken meanwhile by another test's listener, which then answers the readiness probe in
/// certauth's place (a CI run lost a front-door test that way).
pub fn start_certauth(command: &mut Command, log: &Path) -> (Child, u16) {
    let mut child = command
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let port = text
            .split("listening on 127.0.0.1:")
            .nth(1)
            .and_then(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u16>().ok()
            });
        if let Some(port) = port {
            return (child, port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("certauth exited ({status}) before listening:\n{text}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("certauth did not listen within 20 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `BIN serve ARGS` (`BIN`: the test's `env!("CARGO_BIN_EXE_certauth")`) on a port the
/// system picks ([`start_certauth`]), its log in the temporary directory: the server,
/// killed when dropped, and its port.
pub fn certauth_serve<S: AsRef<std::ffi::OsStr>>(bin: &str, args: &[S]) -> (Proc, u16) {
    let log = std::env::temp_dir().join(format!(
        "certauth-serve-{}-{}.log",
        std::process::id(),
        next_id()
    ));
    let (child, port) = start_certauth(Command::new(bin).arg("serve").args(args), &log);
    (Proc(child), port)
}

/// A number not handed out before in this test process (for log file names).
pub fn next_id() -> usize {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// The README's fenced block in `lang`, with each `(from, to)` replaced; every `from` must
/// be in the block, so a README edit that the test no longer matches fails here.
pub fn readme_block(lang: &str, replace: &[(&str, &str)]) -> String {
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
pub fn config_check(program: &str, args: &[&str]) {
    let out = Command::new(binary(program)).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} refused the README's configuration:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory with the PKI's files, removed when dropped.
pub struct Files(PathBuf);

impl Files {
    pub fn new(tag: &str, pki: &Pki) -> Self {
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

    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts nginx with the README's server block on `port`, its upstream replaced by
/// `upstream` (`http://127.0.0.1:…` or `http://unix:/path:`). One process
/// (`master_process off`), so stopping it leaves no worker behind.
pub fn nginx(files: &Files, port: u16, upstream: &str) -> Proc {
    let tmp = files.path("tmp");
    let server = readme_block(
        "nginx",
        &[
            ("listen 443 ssl;", &format!("listen 127.0.0.1:{port} ssl;")),
            ("/etc/nginx/server.pem", &files.path("server.pem")),
            ("/etc/nginx/server.key", &files.path("server.key")),
            ("/etc/nginx/client-ca.pem", &files.path("ca.pem")),
            ("http://127.0.0.1:8080", upstream),
        ],
    );
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
    Proc(child)
}

/// `GET path` through a TLS proxy on `port` with `client`'s certificate: (status line, body).
pub fn get(port: u16, pki: &Pki, client: Option<&Issued>, path: &str) -> (String, String) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(pki, client)).unwrap();
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Starts an adapter's header-mode server on a Unix-domain socket at `path`, gated with
/// `setup.auth`, behaving after the gate as [`suite::ServerSetup`] says (a `/http…` path
/// gets `Hello <CN>`). Returns what stops it.
pub trait UnixHarness {
    fn start_unix(&self, setup: PlainSetup, path: &Path) -> Box<dyn FnOnce() + Send>;
}

impl<F: Fn(PlainSetup, &Path) -> Box<dyn FnOnce() + Send>> UnixHarness for F {
    fn start_unix(&self, setup: PlainSetup, path: &Path) -> Box<dyn FnOnce() + Send> {
        self(setup, path)
    }
}

/// Header mode on a Unix socket behind nginx (the README's block, upstream
/// `http://unix:…:`): the socket is trusted, no TCP peer is, and the certificate is still
/// verified against the client CA.
pub fn unix_behind_nginx(harness: &impl UnixHarness) {
    let pki = Pki::new();
    let files = Files::new("unix-nginx", &pki);
    let socket = PathBuf::from(files.path("app.sock"));
    let (_, with_anchors) = suite::server_parts(
        &pki,
        certauth_core::Limits::DEFAULT,
        certauth_core::tls::ClientAuthMode::Deferred,
    );
    let proxy = ProxyHeaderConfig::preset(Preset::Nginx)
        .trust_unix_socket()
        .with_verify_header("X-SSL-Client-Verify", "SUCCESS")
        .unwrap();
    let auth = Authenticator::builder()
        .verifier(with_anchors.verifier().unwrap())
        .proxy_header(proxy)
        .policy(suite::policy)
        .expose_reasons(true)
        .build()
        .unwrap();
    let (report, reports) = std::sync::mpsc::channel();
    let stop = harness.start_unix(PlainSetup { auth, report }, &socket);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the server did not bind {socket:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let port = free_port();
    let proxy = nginx(&files, port, &format!("http://unix:{}:", socket.display()));

    assert_eq!(
        get(port, &pki, Some(&pki.trusted), "/http/whoami"),
        ("HTTP/1.1 200 OK".into(), "Hello trusted-client".into())
    );
    assert_eq!(
        reports.recv_timeout(Duration::from_secs(10)).unwrap(),
        crate::Outcome::trusted()
    );
    let (status, body) = get(port, &pki, Some(&pki.other_ca), "/http/whoami");
    assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{body}");
    assert_eq!(
        get(port, &pki, None, "/http/whoami"),
        (
            "HTTP/1.1 401 Unauthorized".into(),
            "Unauthorized: Client certificate required (NO_CERTIFICATE)".into()
        )
    );
    let (status, body) = get(port, &pki, Some(&pki.forbidden), "/http/whoami");
    assert_eq!(status, "HTTP/1.1 403 Forbidden", "{body}");
    // Only the proxy speaks on the socket: what it forwards for a client that sent its own
    // certificate header is the proxy's value (the client's header is overwritten).
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(&pki, None)).unwrap();
    write!(
        tls,
        "GET /http/whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         X-SSL-Client-Cert: {}\r\nX-SSL-Client-Verify: SUCCESS\r\n\r\n",
        encode::nginx_escaped(&pki.trusted.pem())
    )
    .unwrap();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
    drop(proxy);
    stop();
}
