//! The behaviour suite every runtime adapter must pass, over loopback with real TLS clients.
//!
//! An adapter's test starts its server with [`Harness::start`] (any runtime, in a thread of
//! its own) following [`ServerSetup`]'s contract; the suite then drives blocking rustls
//! clients against it and checks the exact bytes each gets back and what the server
//! reported. Every read has a deadline, so a broken adapter fails instead of hanging.
//!
//! The raw gates (tokio, smol) run everything: [`run`], [`run_strict`],
//! [`run_real_clients`]. hyper writes its own heads and parses requests itself, so its
//! tests run [`run_shared`] with [`Compare::Normalized`] (decisions, responses, upgrades,
//! the HTTP path, early frames, resumption), [`run_real_clients`] and the header-mode
//! hostile cases; the core's head limits, head deadline and handshake reports are the raw
//! gates' alone.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use certauth_core::policy::{PolicyContext, Verdict};
use certauth_core::tls::{ClientAuthMode, server_config};
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{Authenticator, Limits};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

pub use crate::outcome::Outcome;
use crate::{Authority, Issued, Leaf};

/// Every certificate the suite uses, valid around the wall clock.
pub struct Pki {
    pub root: Authority,
    /// The CA of `other_ca`, which the server does not trust.
    pub other_root: Authority,
    pub server_root: Authority,
    pub server: Issued,
    pub trusted: Issued,
    pub other_ca: Issued,
    pub expired: Issued,
    pub denied: Issued,
    pub forbidden: Issued,
}

impl Pki {
    pub fn new() -> Self {
        let root = Authority::root("Suite Client CA");
        let other = Authority::root("Suite Other CA");
        let server_root = Authority::root("Suite Server CA");
        let mut server = Leaf::client("localhost").around_wall_clock();
        server.eku = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        server.sans = vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())];
        let now = crate::wall_clock().as_secs() as i64;
        let mut expired = Leaf::client("trusted-client");
        expired.not_before = now - 10 * 86_400;
        expired.not_after = now - 5 * 86_400;
        Self {
            server: server_root.issue(&server),
            trusted: root.issue(&Leaf::client("trusted-client").around_wall_clock()),
            other_ca: other.issue(&Leaf::client("trusted-client").around_wall_clock()),
            expired: root.issue(&expired),
            denied: root.issue(&Leaf::client("denied-client").around_wall_clock()),
            forbidden: root.issue(&Leaf::client("forbidden-client").around_wall_clock()),
            root,
            other_root: other,
            server_root,
        }
    }
}

impl Pki {
    /// The trusted client's SHA-256 fingerprint as Node prints it.
    pub fn trusted_fingerprint(&self) -> String {
        certauth_core::ClientCertificate::from_der(&self.trusted.der)
            .unwrap()
            .fingerprint_sha256_hex()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// What the adapter's server must run: a gate built from `tls` and `auth`, and for each
/// connection:
/// - a request whose path starts with `/http`: the HTTP gate, then `HTTP/1.1 200 OK` with
///   `Content-Length` and the body `Hello <CN>`, then close;
/// - anything else: the WebSocket gate; on success, answer each text message `m` with the
///   text `Echo: m` until the client closes.
///
/// It reports each connection's [`Outcome`] on `report`.
pub struct ServerSetup {
    pub tls: Arc<rustls::ServerConfig>,
    pub auth: Authenticator,
    pub report: Sender<Outcome>,
}

/// A server the harness started. Dropping `stop` (or calling it) must stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub stop: Box<dyn FnOnce() + Send>,
}

/// Starts an adapter's server.
pub trait Harness {
    fn start(&self, setup: ServerSetup) -> RunningServer;
}

impl<F: Fn(ServerSetup) -> RunningServer> Harness for F {
    fn start(&self, setup: ServerSetup) -> RunningServer {
        self(setup)
    }
}

/// The suite's policy: `trusted-client` in, `forbidden-client` 403, anyone else 401.
pub fn policy(ctx: &PolicyContext<'_>) -> Verdict {
    let cn = ctx
        .cert
        .subject()
        .common_names()
        .next()
        .map(|c| c.into_owned());
    match cn.as_deref() {
        Some("trusted-client") => Verdict::Allow,
        Some("forbidden-client") => Verdict::forbid("forbidden-client may not connect"),
        _ => Verdict::deny("unknown client"),
    }
}

/// What a harness gets to start a header-mode server: a plain-TCP listener on 127.0.0.1 (a
/// proxy in front terminates TLS), gated with `auth` and the connection's remote address;
/// after the gate it behaves, and reports, as in [`ServerSetup`].
pub struct PlainSetup {
    pub auth: Authenticator,
    pub report: Sender<Outcome>,
}

/// Starts an adapter's header-mode server.
pub trait PlainHarness {
    fn start_plain(&self, setup: PlainSetup) -> RunningServer;
}

impl<F: Fn(PlainSetup) -> RunningServer> PlainHarness for F {
    fn start_plain(&self, setup: PlainSetup) -> RunningServer {
        self(setup)
    }
}

/// A running server plus what it reports.
pub struct Server {
    pub addr: SocketAddr,
    reports: Receiver<Outcome>,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Server {
    /// Starts a server with the suite's PKI and policy (deferred client authentication).
    pub fn start(harness: &impl Harness, pki: &Pki, limits: Limits) -> Self {
        Self::start_with_mode(harness, pki, limits, ClientAuthMode::Deferred)
    }

    /// Starts a server whose TLS layer authenticates clients in `mode`.
    pub fn start_with_mode(
        harness: &impl Harness,
        pki: &Pki,
        limits: Limits,
        mode: ClientAuthMode,
    ) -> Self {
        let (tls, auth) = server_parts(pki, limits, mode);
        let (report, reports) = std::sync::mpsc::channel();
        let running = harness.start(ServerSetup { tls, auth, report });
        Self {
            addr: running.addr,
            reports,
            stop: Some(running.stop),
        }
    }

    /// Starts a header-mode server (plain TCP) deciding with `auth`.
    pub fn start_plain(harness: &impl PlainHarness, auth: Authenticator) -> Self {
        let (report, reports) = std::sync::mpsc::channel();
        let running = harness.start_plain(PlainSetup { auth, report });
        Self {
            addr: running.addr,
            reports,
            stop: Some(running.stop),
        }
    }

    /// The next outcome the server reports within `limit`, if any.
    pub fn outcome_within(&self, limit: Duration) -> Option<Outcome> {
        self.reports.recv_timeout(limit).ok()
    }

    /// The next outcome the server reports (waits up to 10 s).
    pub fn outcome(&self) -> Outcome {
        self.reports
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or(Outcome::NoReport)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// The suite's server TLS configuration and authenticator: its PKI and [`policy`].
pub fn server_parts(
    pki: &Pki,
    limits: Limits,
    mode: ClientAuthMode,
) -> (Arc<rustls::ServerConfig>, Authenticator) {
    let provider = Arc::new(crate::ring_provider());
    let anchors = TrustAnchors::from_der([pki.root.cert.der.clone()]).unwrap();
    let key = PrivateKeyDer::try_from(pki.server.key.serialize_der()).unwrap();
    let tls = server_config(
        Arc::clone(&provider),
        vec![pki.server.der.clone()],
        key,
        &anchors,
        mode,
    )
    .unwrap();
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            provider.signature_verification_algorithms.all,
        ))
        .policy(policy)
        .limits(limits)
        .build()
        .unwrap();
    (Arc::new(tls), auth)
}

/// A TLS client presenting `client` (or nothing), trusting the suite's server CA.
pub fn tls_client(pki: &Pki, client: Option<&Issued>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.server_root.cert.der.clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(crate::ring_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(c) => builder
            .with_client_auth_cert(
                vec![c.der.clone()],
                PrivateKeyDer::try_from(c.key.serialize_der()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

pub type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Connects and completes the TLS handshake.
pub fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let mut tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
        .map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

/// Reads until EOF (or an error, or 10 s), returning what arrived.
pub fn read_to_close(s: &mut impl Read) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

pub const UPGRADE: &str = "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Sends `request` and returns the whole answer up to the server's close.
fn exchange(addr: SocketAddr, config: Arc<ClientConfig>, request: &[u8]) -> String {
    let mut tls = connect(addr, config).unwrap();
    tls.write_all(request).unwrap();
    tls.flush().unwrap();
    String::from_utf8_lossy(&read_to_close(&mut tls)).into_owned()
}

fn error_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A masked client text frame.
pub fn client_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let payload = text.as_bytes();
    assert!(payload.len() < 126);
    let mut f = vec![0x81, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Strict mode: untrusted or missing certificates fail in the TLS handshake; a trusted
/// client still gets through and is still decided by the core.
pub fn run_strict(harness: &impl Harness) {
    let pki = Pki::new();
    let server = Server::start_with_mode(harness, &pki, Limits::DEFAULT, ClientAuthMode::Strict);
    for client in [None, Some(&pki.other_ca)] {
        let got = connect(server.addr, tls_client(&pki, client)).map(|mut t| {
            let _ = t.write_all(UPGRADE.as_bytes());
            read_to_close(&mut t)
        });
        assert!(
            got.as_ref().map_or(true, Vec::is_empty),
            "strict mode answered {got:?}"
        );
        assert_eq!(server.outcome(), Outcome::Handshake);
    }
    let tls = connect(server.addr, tls_client(&pki, Some(&pki.trusted))).unwrap();
    let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
    ws.send(tungstenite::Message::text("strict")).unwrap();
    assert_eq!(ws.read().unwrap().to_string(), "Echo: strict");
    assert_eq!(server.outcome(), Outcome::trusted());
    // The policy still applies after a strict handshake.
    let got = exchange(
        server.addr,
        tls_client(&pki, Some(&pki.denied)),
        UPGRADE.as_bytes(),
    );
    assert!(got.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{got}");
    assert_eq!(server.outcome(), Outcome::denied("POLICY_DENIED"));
}

/// How the suite compares a server's responses with its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Byte for byte: the raw gates write the core's bytes.
    Exact,
    /// Status line, body, and the set of headers with names lowercased and `date` left out:
    /// for servers whose HTTP library writes the head (hyper).
    Normalized,
}

impl Compare {
    /// Whether `got` passes for `want`.
    pub fn same(self, got: &str, want: &str) -> bool {
        match self {
            Self::Exact => got == want,
            Self::Normalized => normalized(got) == normalized(want),
        }
    }
}

/// What a suite run failed, collected so every case runs before the panic.
#[derive(Default)]
struct Failures(std::cell::RefCell<Vec<String>>);

impl Failures {
    fn push(&self, failure: String) {
        self.0.borrow_mut().push(failure);
    }

    /// Records a failure unless `got` passes for `want` under `compare`.
    fn check(&self, compare: Compare, name: &str, got: &str, want: &str) {
        if !compare.same(got, want) {
            self.push(format!("{name}:\n  got:  {got:?}\n  want: {want:?}"));
        }
    }

    /// Records a failure unless the server reported `want`.
    fn outcome(&self, name: &str, got: Outcome, want: Outcome) {
        if got != want {
            self.push(format!("{name}: reported {got}, want {want}"));
        }
    }

    fn assert_none(self) {
        let failures = self.0.into_inner();
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// A response reduced to what [`Compare::Normalized`] compares.
fn normalized(response: &str) -> String {
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return response.to_owned();
    };
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut headers: Vec<String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim()))
        .filter(|(n, _)| n != "date")
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    headers.sort();
    format!("{status}\n{}\n\n{body}", headers.join("\n"))
}

/// The suite's limits: a small head and a short head deadline.
fn suite_limits() -> Limits {
    Limits::DEFAULT
        .with_max_head_bytes(4096)
        .with_head_read_timeout(Duration::from_millis(500))
}

/// Runs every case against a raw gate (exact bytes, the core's head limits and deadlines,
/// handshake failures reported); panics with a list of what failed.
pub fn run(harness: &impl Harness) {
    let pki = Pki::new();
    let server = Server::start(harness, &pki, suite_limits());
    let failures = Failures::default();
    shared_cases(&pki, &server, Compare::Exact, &failures);
    let addr = server.addr;
    let check =
        |name: &str, got: String, want: &str| failures.check(Compare::Exact, name, &got, want);
    let trusted = || tls_client(&pki, Some(&pki.trusted));

    let big = format!("GET /chat HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(5000));
    let got = exchange(addr, trusted(), big.as_bytes());
    check(
        "oversized head",
        got,
        &error_response(
            "431 Request Header Fields Too Large",
            "Request Header Fields Too Large",
        ),
    );
    failures.outcome(
        "oversized head: report",
        server.outcome(),
        Outcome::Head(431),
    );

    // A client that sends nothing after the handshake is closed after the deadline.
    {
        let started = Instant::now();
        let mut tls = connect(addr, trusted()).unwrap();
        let got = read_to_close(&mut tls);
        let waited = started.elapsed();
        check(
            "silent client: nothing written",
            String::from_utf8_lossy(&got).into_owned(),
            "",
        );
        if waited < Duration::from_millis(400) || waited > Duration::from_secs(5) {
            failures.push(format!(
                "silent client: closed after {waited:?}, limit 500 ms"
            ));
        }
        failures.outcome(
            "silent client: report",
            server.outcome(),
            Outcome::HeadTimeout,
        );
    }

    drop(server);
    failures.assert_none();
}

/// Runs the cases every integration shares (decisions, responses, WebSocket upgrades, the
/// HTTP path, an early first frame, resumption), comparing responses as `compare` says;
/// for servers whose HTTP library parses heads itself (hyper), which the core's head
/// limits and deadlines do not govern.
pub fn run_shared(harness: &impl Harness, compare: Compare) {
    let pki = Pki::new();
    let server = Server::start(harness, &pki, suite_limits());
    let failures = Failures::default();
    shared_cases(&pki, &server, compare, &failures);
    drop(server);
    failures.assert_none();
}

fn shared_cases(pki: &Pki, server: &Server, compare: Compare, failures: &Failures) {
    let addr = server.addr;
    let check = |name: &str, got: String, want: &str| failures.check(compare, name, &got, want);
    key_possession_cases(pki, server, compare, failures);

    // Trusted client: WebSocket echo, through a real WebSocket client.
    {
        let tls = connect(addr, tls_client(pki, Some(&pki.trusted))).unwrap();
        let (mut ws, resp) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
        check("trusted: status", resp.status().as_u16().to_string(), "101");
        ws.send(tungstenite::Message::text("hello")).unwrap();
        let reply = ws.read().map(|m| m.to_string()).unwrap_or_default();
        check("trusted: echo", reply, "Echo: hello");
        let _ = ws.close(None);
        failures.outcome("trusted: report", server.outcome(), Outcome::trusted());
    }

    let unauthorized = error_response("401 Unauthorized", "Unauthorized");
    for (name, client, code) in [
        ("no certificate", None, "NO_CERTIFICATE"),
        (
            "other CA",
            Some(&pki.other_ca),
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        ),
        ("expired", Some(&pki.expired), "CERT_HAS_EXPIRED"),
        ("policy deny", Some(&pki.denied), "POLICY_DENIED"),
    ] {
        let got = exchange(addr, tls_client(pki, client), UPGRADE.as_bytes());
        check(name, got, &unauthorized);
        failures.outcome(
            &format!("{name}: report"),
            server.outcome(),
            Outcome::denied(code),
        );
    }

    let got = exchange(
        addr,
        tls_client(pki, Some(&pki.forbidden)),
        UPGRADE.as_bytes(),
    );
    check(
        "policy 403",
        got,
        &error_response("403 Forbidden", "Forbidden"),
    );
    failures.outcome(
        "policy 403: report",
        server.outcome(),
        Outcome::denied("POLICY_DENIED"),
    );

    let trusted = || tls_client(pki, Some(&pki.trusted));
    let got = exchange(
        addr,
        trusted(),
        b"GET /chat HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    check(
        "not an upgrade",
        got,
        &error_response("400 Bad Request", "Bad Request"),
    );
    failures.outcome(
        "not an upgrade: report",
        server.outcome(),
        Outcome::Upgrade(400),
    );

    let v8 = UPGRADE.replace("Version: 13", "Version: 8");
    let got = exchange(addr, trusted(), v8.as_bytes());
    let want = error_response("426 Upgrade Required", "Upgrade Required").replace(
        "Connection: close\r\n",
        "Connection: close\r\nSec-WebSocket-Version: 13\r\n",
    );
    check("wrong version", got, &want);
    failures.outcome(
        "wrong version: report",
        server.outcome(),
        Outcome::Upgrade(426),
    );

    // The first frame in the same write as the head reaches the WebSocket layer.
    {
        let mut tls = connect(addr, trusted()).unwrap();
        let bytes = [UPGRADE.as_bytes(), &client_text_frame("early")].concat();
        tls.write_all(&bytes).unwrap();
        tls.flush().unwrap();
        let got = read_until(&mut tls, b"Echo: early");
        let text = String::from_utf8_lossy(&got).into_owned();
        if !text.starts_with("HTTP/1.1 101 Switching Protocols\r\n")
            || !text.ends_with("Echo: early")
        {
            failures.push(format!("early frame: got {text:?}"));
        }
        failures.outcome("early frame: report", server.outcome(), Outcome::trusted());
    }

    // The HTTP gate.
    let got = exchange(
        addr,
        trusted(),
        b"GET /http HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    check(
        "http gate",
        got,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\nHello trusted-client",
    );
    failures.outcome("http gate: report", server.outcome(), Outcome::trusted());

    // Resumed TLS sessions are authenticated again: the second connection's decision
    // still sees the certificate.
    {
        let config = trusted();
        for round in 0..2 {
            let tls = connect(addr, Arc::clone(&config)).unwrap();
            let resumed = tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            if round == 1 && !resumed {
                failures.push("resumption: the second connection was not resumed".into());
            }
            let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
            ws.send(tungstenite::Message::text("again")).unwrap();
            let reply = ws.read().map(|m| m.to_string()).unwrap_or_default();
            check(&format!("resumption {round}: echo"), reply, "Echo: again");
            let _ = ws.close(None);
            failures.outcome(
                &format!("resumption {round}: report"),
                server.outcome(),
                Outcome::trusted(),
            );
        }
    }
}

/// Each TLS version the server allows: a trusted client is served over it, and a client
/// presenting the trusted certificate with another key (a stolen certificate) fails the
/// handshake over it and is never decided. The raw gates report the failure as `HANDSHAKE`;
/// hyper's serve reports nothing, so nothing may be reported.
fn key_possession_cases(pki: &Pki, server: &Server, compare: Compare, failures: &Failures) {
    use crate::handshake::{TLS12, TLS13, presenting};
    for (version, versions) in [("TLS 1.2", TLS12), ("TLS 1.3", TLS13)] {
        let own = presenting(
            &pki.server_root.cert.der,
            vec![pki.trusted.der.clone()],
            &pki.trusted.key,
            versions,
        );
        let got = exchange(
            server.addr,
            own,
            b"GET /http HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        if !got.starts_with("HTTP/1.1 200 OK\r\n") || !got.ends_with("Hello trusted-client") {
            failures.push(format!("{version} trusted: got {got:?}"));
        }
        failures.outcome(
            &format!("{version} trusted"),
            server.outcome(),
            Outcome::trusted(),
        );

        let stolen = presenting(
            &pki.server_root.cert.der,
            vec![pki.trusted.der.clone()],
            &pki.denied.key,
            versions,
        );
        let answer = connect(server.addr, stolen).map(|mut t| {
            let _ = t.write_all(b"GET /http HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let _ = t.flush();
            read_to_close(&mut t)
        });
        if let Ok(got) = &answer
            && !got.is_empty()
        {
            failures.push(format!(
                "{version} stolen certificate: answered {:?}",
                String::from_utf8_lossy(got)
            ));
        }
        let report = server.outcome_within(Duration::from_millis(500));
        let want = (compare == Compare::Exact).then_some(Outcome::Handshake);
        if report != want {
            failures.push(format!(
                "{version} stolen certificate: report {report:?}, want {want:?}"
            ));
        }
    }
}

/// Reads until `needle` has arrived (or close, or 10 s).
pub fn read_until(s: &mut impl Read, needle: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !out.windows(needle.len()).any(|w| w == needle) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    // Drop the frame header bytes before the payload so callers can compare text.
    if let Some(pos) = out.windows(4).position(|w| w == b"\r\n\r\n") {
        let (head, rest) = out.split_at(pos + 4);
        let payload_start = rest.iter().position(|b| *b == b'E').unwrap_or(0);
        return [head, &rest[payload_start..]].concat();
    }
    out
}

/// Writes the PEM files the command-line peers need into a fresh directory.
pub struct PemFiles {
    dir: std::path::PathBuf,
}

impl PemFiles {
    pub fn new(pki: &Pki) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("certauth-peers-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        write("server-ca.pem", pki.server_root.cert.pem());
        write("trusted.pem", pki.trusted.pem());
        write("trusted.key", pki.trusted.key_pem());
        write("other.pem", pki.other_ca.pem());
        write("other.key", pki.other_ca.key_pem());
        Self { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for PemFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding the Node peers (`tests/node`, installed by `scripts/test.sh`).
pub fn node_peers_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node");
    assert!(
        dir.join("node_modules/ws").is_dir(),
        "the Node test peers are not installed: run ./scripts/test.sh, or \
         `npm install --prefix tests/node`"
    );
    dir
}

fn run_command(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Real clients against the adapter's server, each checked on the exact status line it
/// receives: Node's `ws` package (trusted and untrusted certificates), `curl --cert` on the
/// HTTP gate, and `openssl s_client` without a certificate.
pub fn run_real_clients(harness: &impl Harness) {
    let pki = Pki::new();
    let server = Server::start(harness, &pki, Limits::DEFAULT);
    let files = PemFiles::new(&pki);
    let port = server.addr.port();
    let failures = Failures::default();
    let check = |name: &str, got: &str, want: &str| {
        if got.trim_end() != want {
            failures.push(format!("{name}:\n  got:  {got:?}\n  want: {want:?}"));
        }
    };
    let report = |name: &str, got: Outcome, want: Outcome| failures.outcome(name, got, want);

    let node = node_peers_dir();
    let ws = |cert: Option<&str>| {
        let mut cmd = std::process::Command::new("node");
        cmd.arg(node.join("ws-client.js"))
            .arg(format!("wss://localhost:{port}/chat"))
            .arg(files.path("server-ca.pem"));
        if let Some(c) = cert {
            cmd.arg(files.path(&format!("{c}.pem")))
                .arg(files.path(&format!("{c}.key")));
        }
        cmd.env("NODE_PATH", node.join("node_modules"));
        run_command(&mut cmd)
    };
    check(
        "node ws, trusted",
        &ws(Some("trusted")),
        "MESSAGE Echo: hello",
    );
    report(
        "node ws, trusted: report",
        server.outcome(),
        Outcome::trusted(),
    );
    check(
        "node ws, other CA",
        &ws(Some("other")),
        "STATUS HTTP/1.1 401 Unauthorized",
    );
    report(
        "node ws, other CA: report",
        server.outcome(),
        Outcome::denied("UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
    );
    check(
        "node ws, no certificate",
        &ws(None),
        "STATUS HTTP/1.1 401 Unauthorized",
    );
    report(
        "node ws, no certificate: report",
        server.outcome(),
        Outcome::denied("NO_CERTIFICATE"),
    );

    let curl = |cert: bool| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "-i", "--http1.1", "--max-time", "10"])
            .arg("--resolve")
            .arg(format!("localhost:{port}:127.0.0.1"))
            .arg("--cacert")
            .arg(files.path("server-ca.pem"));
        if cert {
            cmd.arg("--cert")
                .arg(files.path("trusted.pem"))
                .arg("--key")
                .arg(files.path("trusted.key"));
        }
        cmd.arg(format!("https://localhost:{port}/http"));
        run_command(&mut cmd)
    };
    let got = curl(true);
    check(
        "curl --cert: status line",
        got.lines().next().unwrap_or(""),
        "HTTP/1.1 200 OK",
    );
    check(
        "curl --cert: body",
        got.rsplit("\r\n\r\n").next().unwrap_or(""),
        "Hello trusted-client",
    );
    report("curl --cert: report", server.outcome(), Outcome::trusted());
    let got = curl(false);
    check(
        "curl, no certificate",
        got.lines().next().unwrap_or(""),
        "HTTP/1.1 401 Unauthorized",
    );
    report(
        "curl, no certificate: report",
        server.outcome(),
        Outcome::denied("NO_CERTIFICATE"),
    );

    let mut child = std::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-ign_eof", "-servername", "localhost"])
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-CAfile")
        .arg(files.path("server-ca.pem"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(UPGRADE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    check(
        "openssl s_client, no certificate",
        got.lines().next().unwrap_or(""),
        "HTTP/1.1 401 Unauthorized",
    );
    report(
        "openssl s_client: report",
        server.outcome(),
        Outcome::denied("NO_CERTIFICATE"),
    );

    drop(server);
    failures.assert_none();
}
