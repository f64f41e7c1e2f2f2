//! A real browser as the client: headless Chromium (Debian's `chromium`) driven over the
//! DevTools protocol by `tests/node/browser.js` (Node's `ws` package, no framework), against
//! `certauth serve` on tokio, on smol and on hyper (`--socketio`).
//!
//! Each browser gets its own HOME, whose NSS database (what Chromium on Linux reads) trusts
//! the server's CA and holds at most one client certificate, imported from PKCS#12 with
//! `pk12util`; the `AutoSelectCertificateForUrls` policy that scripts/test.sh installs lets
//! headless Chromium present it without a prompt. What the tests found is in the README's
//! "Browsers" section.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use certauth_testkit::Issued;
use certauth_testkit::proxies::{Files, Proc, free_port};
use certauth_testkit::suite::{self, Pki};
use serde_json::Value;

/// Where scripts/test.sh installs the policy that auto-selects a certificate for
/// `https://localhost:*` (headless Chromium cannot show the certificate prompt).
const POLICY: &str = "/etc/chromium/policies/managed/certauth-tests.json";

fn need(path: &str, what: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing ({what}): run ./scripts/test.sh, which installs chromium, \
         libnss3-tools and the test policy"
    );
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A browser HOME under `dir`: an NSS database trusting the server's CA for websites and
/// holding `client`'s certificate and key, if any.
fn browser_home(dir: &Files, name: &str, pki: &Pki, client: Option<&Issued>) -> PathBuf {
    let home = PathBuf::from(dir.path(name));
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    run("certutil", &["-N", "-d", &db, "--empty-password"]);
    let server_ca = dir.write(
        &format!("{name}-server-ca.pem"),
        &pki.server_root.cert.pem(),
    );
    run(
        "certutil",
        &[
            "-A",
            "-d",
            &db,
            "-n",
            "server-ca",
            "-t",
            "C,,",
            "-i",
            &server_ca,
        ],
    );
    if let Some(client) = client {
        let cert = dir.write(&format!("{name}.pem"), &client.pem());
        let key = dir.write(&format!("{name}.key"), &client.key_pem());
        let p12 = dir.path(&format!("{name}.p12"));
        run(
            "openssl",
            &[
                "pkcs12", "-export", "-in", &cert, "-inkey", &key, "-out", &p12, "-passout",
                "pass:",
            ],
        );
        run("pk12util", &["-i", &p12, "-d", &db, "-W", ""]);
    }
    home
}

/// What one page load found: the main document's status and each expression's value.
struct Visit {
    status: Value,
    results: Value,
}

impl Visit {
    fn get(&self, name: &str) -> &str {
        self.results[name].as_str().unwrap_or("<not a string>")
    }
}

/// Loads `url` (or, with `cross_origin`, a page on `http://127.0.0.1:<other port>`) in a
/// fresh headless Chromium with `home`, then evaluates each expression in the page.
fn visit(
    home: &Path,
    url: &str,
    cross_origin: bool,
    inject: &[PathBuf],
    evaluate: &[(&str, &str)],
) -> Visit {
    let spec = serde_json::json!({
        "chromium": "/usr/bin/chromium",
        "home": home,
        "url": url,
        "crossOrigin": cross_origin,
        "inject": inject,
        "evaluate": evaluate.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect::<serde_json::Map<_, _>>(),
    });
    let spec_file = home.join("spec.json");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let out = Command::new("node")
        .arg(suite::node_peers_dir().join("browser.js"))
        .arg(&spec_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser.js failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    Visit {
        status: v["status"].clone(),
        results: v["results"].clone(),
    }
}

/// The page's own button: click it and wait for the echo's answer.
const CLICK_ECHO: &str = "document.getElementById('echo').click(); new Promise(r => { \
    const t = setInterval(() => { const v = document.getElementById('echo-result').textContent; \
    if (v && v !== 'connecting…') { clearInterval(t); r(v); } }, 50); })";

/// A same-origin WebSocket echo written the way a dashboard would.
const WS_ECHO: &str = "new Promise(r => { const w = new WebSocket('wss://' + location.host + '/'); \
    w.onopen = () => w.send('hi'); w.onmessage = e => { r(e.data); w.close(); }; \
    w.onerror = () => r('error'); })";

const WHOAMI: &str = "fetch('/whoami').then(async r => r.status + ' ' + \
    (r.ok ? JSON.parse(await r.text()).subject.CN : await r.text()))";

fn text(id: &str) -> String {
    format!("(document.getElementById('{id}') || {{textContent: 'absent'}}).textContent")
}

/// A running `certauth serve`; a failing test prints its log (debug level), which says
/// what the server saw of the browser's connections.
struct Served {
    _proc: Proc,
    log: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(200).collect();
            eprintln!("--- the server's log, last {} lines ---", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// `certauth serve` with the suite's PKI, the policy `trusted-client`, and `extra` flags.
fn serve(dir: &Files, extra: &[&str]) -> (Served, u16) {
    let (ca, cert, key) = (
        dir.path("ca.pem"),
        dir.path("server.pem"),
        dir.path("server.key"),
    );
    let port = free_port();
    let log = dir.path("server.log");
    let child = Command::new(env!("CARGO_BIN_EXE_certauth"))
        .args(["serve", "--ca", &ca, "--cert", &cert, "--key", &key])
        .args(["--allow-cn", "trusted-client", "--expose-reasons"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env(
            "RUST_LOG",
            "certauth=debug,socketioxide=debug,engineioxide=debug",
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        Served {
            _proc: Proc(child),
            log,
        },
        port,
    )
}

/// The raw gates (`certauth serve`, tokio or smol) with a browser holding a trusted
/// certificate, another CA's, or none; and a page of another origin.
fn raw_gates(runtime: &str) {
    need("/usr/bin/chromium", "Debian's chromium");
    need(POLICY, "the certificate auto-selection policy");
    let pki = Pki::new();
    let dir = Files::new(&format!("browser-{runtime}"), &pki);
    let (_server, port) = serve(&dir, &["--runtime", runtime]);
    let url = format!("https://localhost:{port}/");

    let trusted = browser_home(&dir, "trusted", &pki, Some(&pki.trusted));
    let v = visit(
        &trusted,
        &url,
        false,
        &[],
        &[
            ("decision", &text("decision")),
            ("subject", &text("subject")),
            ("fingerprint", &text("fingerprint")),
            ("whoami", WHOAMI),
            ("ws", WS_ECHO),
            ("button", CLICK_ECHO),
        ],
    );
    assert_eq!(v.status, 200, "{:?}", v.results);
    assert_eq!(v.get("decision"), "Allowed");
    assert_eq!(v.get("subject"), "CN=trusted-client");
    assert_eq!(v.get("fingerprint"), pki.trusted_fingerprint());
    assert_eq!(v.get("whoami"), "200 trusted-client");
    assert_eq!(v.get("ws"), "Echo: hi");
    assert_eq!(v.get("button"), "Echo: hello");

    // No certificate: the page, with 401 and the code; a WebSocket only errors (a browser
    // never shows a refused upgrade's status to the page).
    let none = browser_home(&dir, "none", &pki, None);
    let v = visit(
        &none,
        &url,
        false,
        &[],
        &[
            ("decision", &text("decision")),
            ("code", &text("code")),
            ("reason", &text("reason")),
            ("whoami", WHOAMI),
            ("ws", WS_ECHO),
        ],
    );
    assert_eq!(v.status, 401);
    assert_eq!(v.get("decision"), "Refused");
    assert_eq!(v.get("code"), "NO_CERTIFICATE");
    assert!(
        v.get("reason").contains("presented none"),
        "{}",
        v.get("reason")
    );
    assert_eq!(
        v.get("whoami"),
        "401 Unauthorized: Client certificate required (NO_CERTIFICATE)"
    );
    assert_eq!(v.get("ws"), "error");

    // Another CA's certificate: the server names its CAs in the CertificateRequest, and
    // Chromium offers only certificates issued by one of them, so it sends none.
    let other = browser_home(&dir, "other", &pki, Some(&pki.other_ca));
    let v = visit(&other, &url, false, &[], &[("code", &text("code"))]);
    assert_eq!(v.status, 401);
    assert_eq!(v.get("code"), "NO_CERTIFICATE");

    // A page of another origin opening wss:// to certauth: Chromium abandons the handshake
    // rather than present the certificate there (the server logs `TLS handshake failed`),
    // even with the auto-selection policy; the page sees an error event.
    let v = visit(
        &trusted,
        &url,
        true,
        &[],
        &[(
            "ws",
            &WS_ECHO.replace(
                "'wss://' + location.host + '/'",
                &format!("'wss://localhost:{port}/'"),
            ),
        )],
    );
    assert_eq!(v.status, 200);
    assert_eq!(v.get("ws"), "error");
}

#[test]
fn chromium_against_the_tokio_gates() {
    raw_gates("tokio");
}

#[test]
fn chromium_against_the_smol_gates() {
    raw_gates("smol");
}

/// hyper (`--socketio`): the page, its inline Socket.IO echo, and Socket.IO's own browser
/// client (socket.io-client's bundle, injected into the page).
#[test]
fn chromium_against_hyper_and_socketio() {
    need("/usr/bin/chromium", "Debian's chromium");
    need(POLICY, "the certificate auto-selection policy");
    let pki = Pki::new();
    let dir = Files::new("browser-hyper", &pki);
    let (_server, port) = serve(&dir, &["--socketio"]);
    let url = format!("https://localhost:{port}/");
    let bundle =
        suite::node_peers_dir().join("node_modules/socket.io-client/dist/socket.io.min.js");
    let sio = "new Promise(r => { const s = io({transports: ['websocket']}); \
        s.on('connect', () => s.emit('message', 'hi')); \
        s.on('message', m => { r(m); s.close(); }); \
        s.on('connect_error', e => { r('connect_error: ' + e.message); s.close(); }); })";

    let trusted = browser_home(&dir, "trusted", &pki, Some(&pki.trusted));
    let v = visit(
        &trusted,
        &url,
        false,
        std::slice::from_ref(&bundle),
        &[
            ("decision", &text("decision")),
            ("whoami", WHOAMI),
            ("button", CLICK_ECHO),
            ("socketio", sio),
        ],
    );
    assert_eq!(v.status, 200, "{:?}", v.results);
    assert_eq!(v.get("decision"), "Allowed");
    assert_eq!(v.get("whoami"), "200 trusted-client");
    assert_eq!(v.get("button"), "Echo: hello");
    assert_eq!(v.get("socketio"), "Echo: hi");

    let none = browser_home(&dir, "none", &pki, None);
    let v = visit(
        &none,
        &url,
        false,
        &[bundle],
        &[
            ("code", &text("code")),
            ("button", CLICK_ECHO),
            ("socketio", sio),
        ],
    );
    assert_eq!(v.status, 401);
    assert_eq!(v.get("code"), "NO_CERTIFICATE");
    assert_eq!(
        v.get("button"),
        "connect_error: Authentication failed (NO_CERTIFICATE)"
    );
    assert_eq!(
        v.get("socketio"),
        "connect_error: Authentication failed (NO_CERTIFICATE)"
    );
}
