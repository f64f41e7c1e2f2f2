//! The connection lifecycle under slow and exhausting clients, against an adapter's serve
//! helper (not a test loop): idle TCP connections, half ClientHellos, completed handshakes
//! trickling a head, heads just under the size cap. In each case a trusted client must
//! still be served within [`TRUSTED_BOUND`], and every phase must end by its deadline.
//!
//! A harness starts the adapter's serve helper ([`ServeSetup`]) on 127.0.0.1:0 answering a
//! WebSocket upgrade on any path with an echo (`Echo: <text>`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certauth_core::tls::ClientAuthMode;
use certauth_core::{Authenticator, Limits, WebSocketPaths};
use certauth_engine::lifecycle::ServeOptions;

use crate::suite::{self, Pki, RunningServer, UPGRADE, connect, tls_client};

/// How soon a trusted client must be served however many idle or slow connections are
/// open (the README's security notes state it).
pub const TRUSTED_BOUND: Duration = Duration::from_secs(2);

/// What a harness gets: the TLS configuration, the authenticator (its limits), the
/// serve options to run its serve helper with and the paths its gate upgrades
/// (`Gate::websocket_paths`).
pub struct ServeSetup {
    pub tls: Arc<rustls::ServerConfig>,
    pub auth: Authenticator,
    pub options: ServeOptions,
    pub paths: WebSocketPaths,
}

/// Starts an adapter's serve helper.
pub trait ServeHarness {
    fn serve(&self, setup: ServeSetup) -> RunningServer;
}

impl<F: Fn(ServeSetup) -> RunningServer> ServeHarness for F {
    fn serve(&self, setup: ServeSetup) -> RunningServer {
        self(setup)
    }
}

/// The limits the cases run with: short deadlines so each case takes seconds.
pub fn limits() -> Limits {
    Limits::DEFAULT
        .with_handshake_timeout(Duration::from_secs(2))
        .with_head_read_timeout(Duration::from_secs(2))
}

struct Running {
    addr: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

fn start(harness: &impl ServeHarness, pki: &Pki, options: ServeOptions) -> Running {
    let (tls, auth) = suite::server_parts(pki, limits(), ClientAuthMode::Deferred);
    let running = harness.serve(ServeSetup {
        tls,
        auth,
        options,
        paths: WebSocketPaths::any(),
    });
    Running {
        addr: running.addr,
        stop: Some(running.stop),
    }
}

/// A trusted client's WebSocket echo, timed; `Err` with what went wrong.
pub fn trusted_echo(addr: SocketAddr, pki: &Pki) -> Result<Duration, String> {
    let started = Instant::now();
    let tls = connect(addr, tls_client(pki, Some(&pki.trusted))).map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls)
        .map_err(|e| format!("upgrade: {e}"))?;
    ws.send(tungstenite::Message::text("ping"))
        .map_err(|e| e.to_string())?;
    let reply = ws.read().map_err(|e| e.to_string())?;
    let _ = ws.close(None);
    if reply.to_string() != "Echo: ping" {
        return Err(format!("echo: {reply:?}"));
    }
    Ok(started.elapsed())
}

/// A WebSocket upgrade to `path` with `client`'s certificate: the echo's reply, or the
/// HTTP status the upgrade was answered with.
fn echo_at(addr: SocketAddr, pki: &Pki, client: Option<&crate::Issued>, path: &str) -> String {
    let tls = connect(addr, tls_client(pki, client)).unwrap();
    match tungstenite::client::client(format!("wss://localhost{path}"), tls) {
        Ok((mut ws, _)) => {
            ws.send(tungstenite::Message::text("ping")).unwrap();
            let reply = ws.read().unwrap().to_string();
            let _ = ws.close(None);
            reply
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            format!("HTTP {}", r.status().as_u16())
        }
        Err(e) => format!("error: {e}"),
    }
}

/// `serve_websocket` with its gate restricted to `/ws`: a trusted client gets the echo there
/// (a query does not matter) and 404 on any other path; an untrusted client gets 401
/// wherever it asks, so the routes are not revealed before authentication.
pub fn websocket_paths(harness: &impl ServeHarness) {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, limits(), ClientAuthMode::Deferred);
    let running = harness.serve(ServeSetup {
        tls,
        auth,
        options: ServeOptions::default(),
        paths: WebSocketPaths::only(["/ws"]),
    });
    let _running = Running {
        addr: running.addr,
        stop: Some(running.stop),
    };
    let addr = running.addr;
    let trusted = Some(&pki.trusted);
    assert_eq!(echo_at(addr, &pki, trusted, "/ws"), "Echo: ping");
    assert_eq!(echo_at(addr, &pki, trusted, "/ws?token=1"), "Echo: ping");
    for path in ["/", "/chat", "/ws/", "/wss"] {
        assert_eq!(echo_at(addr, &pki, trusted, path), "HTTP 404", "{path}");
    }
    for path in ["/ws", "/chat"] {
        assert_eq!(
            echo_at(addr, &pki, Some(&pki.other_ca), path),
            "HTTP 401",
            "{path}"
        );
        assert_eq!(echo_at(addr, &pki, None, path), "HTTP 401", "{path}");
    }
}

/// The first bytes of a real ClientHello: a handshake that never finishes.
fn half_client_hello(pki: &Pki) -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        tls_client(pki, None),
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello.truncate(hello.len() / 2);
    hello
}

/// How a crowd of slow clients behaves.
#[derive(Clone, Copy, Debug)]
enum Crowd {
    /// TCP connections that send nothing.
    Idle,
    /// Half a ClientHello, then nothing.
    HalfHello,
    /// A completed handshake, then a head at one byte a second.
    Trickle,
    /// A completed handshake, then a head just under the size cap that never ends.
    BigHead,
}

/// Opens `n` slow clients of `kind` (each in its own state; a thread trickles).
fn open_crowd(addr: SocketAddr, pki: &Pki, kind: Crowd, n: usize) -> Crowd2 {
    let mut plain = Vec::new();
    let mut tls = Vec::new();
    let hello = half_client_hello(pki);
    for _ in 0..n {
        match kind {
            Crowd::Idle | Crowd::HalfHello => {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    continue;
                };
                if matches!(kind, Crowd::HalfHello) {
                    let _ = s.write_all(&hello);
                }
                plain.push(s);
            }
            Crowd::Trickle | Crowd::BigHead => {
                // Without a certificate: these never authenticate.
                let Ok(mut t) = connect(addr, tls_client(pki, None)) else {
                    continue;
                };
                if matches!(kind, Crowd::BigHead) {
                    let pad = "a".repeat(limits().max_head_bytes - 200);
                    let _ = write!(
                        t,
                        "GET /chat HTTP/1.1\r\nHost: localhost\r\nX-Pad: {pad}\r\n"
                    );
                    let _ = t.flush();
                }
                tls.push(t);
            }
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickler = matches!(kind, Crowd::Trickle).then(|| {
        let stop = Arc::clone(&stop);
        let mut conns = std::mem::take(&mut tls);
        std::thread::spawn(move || {
            let head = b"GET /chat HTTP/1.1\r\nHost: localhost\r\n";
            let mut i = 0;
            // Bounded: stops when told, or after 30 s whatever happens.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 30 {
                for c in &mut conns {
                    let _ = c.write_all(&head[i % head.len()..i % head.len() + 1]);
                    let _ = c.flush();
                }
                i += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            conns
        })
    });
    Crowd2 {
        _plain: plain,
        _tls: tls,
        trickler,
        stop,
    }
}

/// A crowd of slow clients, closed when dropped.
struct Crowd2 {
    _plain: Vec<TcpStream>,
    _tls: Vec<suite::Tls>,
    trickler: Option<std::thread::JoinHandle<Vec<suite::Tls>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Crowd2 {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.trickler.take() {
            let _ = t.join();
        }
    }
}

/// Runs every case; panics listing what failed, with the times measured.
pub fn run(harness: &impl ServeHarness) {
    let pki = Pki::new();
    let mut failures = Vec::new();
    let mut report = Vec::new();

    // Crowds larger than the pre-authentication cap: the loop must keep accepting and
    // shed the stalest, so the trusted client gets in.
    let cases = [
        (Crowd::Idle, 300, ServeOptions::DEFAULT),
        (Crowd::Idle, 1000, ServeOptions::DEFAULT),
        (Crowd::HalfHello, 300, ServeOptions::DEFAULT),
        (
            Crowd::Trickle,
            100,
            ServeOptions::DEFAULT.with_max_pending(64),
        ),
        (
            Crowd::BigHead,
            100,
            ServeOptions::DEFAULT.with_max_pending(64),
        ),
    ];
    for (kind, n, options) in cases {
        let server = start(harness, &pki, options);
        let crowd = open_crowd(server.addr, &pki, kind, n);
        match trusted_echo(server.addr, &pki) {
            Ok(took) if took <= TRUSTED_BOUND => report.push(format!("{kind:?} x{n}: {took:?}")),
            Ok(took) => failures.push(format!(
                "{kind:?} x{n}: trusted client served after {took:?} (bound {TRUSTED_BOUND:?})"
            )),
            Err(e) => failures.push(format!("{kind:?} x{n}: trusted client failed: {e}")),
        }
        drop(crowd);
        if let Err(e) = trusted_echo(server.addr, &pki) {
            failures.push(format!("{kind:?} x{n}: after the crowd left: {e}"));
        }
    }

    // Each phase ends by its deadline, however the bytes trickle: a lone half handshake at
    // the handshake timeout, a head sent a byte every 200 ms at the head timeout.
    let server = start(harness, &pki, ServeOptions::DEFAULT);
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(&half_client_hello(&pki)).unwrap();
    half.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let closed = closed_after(&mut half, &[]);
    check_window(
        "half ClientHello",
        closed,
        limits().handshake_timeout,
        &mut failures,
        &mut report,
    );

    let mut slow = connect(server.addr, tls_client(&pki, Some(&pki.trusted))).unwrap();
    slow.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let head = UPGRADE.as_bytes();
    let closed = closed_after(&mut slow, &head[..head.len() - 1]);
    check_window(
        "trickled head",
        closed,
        limits().head_read_timeout,
        &mut failures,
        &mut report,
    );
    drop(server);

    shutdown_case(harness, &pki, &mut failures, &mut report);

    eprintln!("lifecycle cases: {}", report.join("; "));
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Waits (at most 2 s) until the server's socket for the connection from `client` has no
/// bytes left in its receive queue (Linux's `/proc/net/tcp`; elsewhere a short sleep).
fn wait_until_read(server: SocketAddr, client: SocketAddr) {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            a.port()
        ),
        SocketAddr::V6(_) => String::new(),
    };
    let (local, remote) = (hex(server), hex(client));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
            std::thread::sleep(Duration::from_millis(200));
            return;
        };
        let queued = table.lines().find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 4 && f[1] == local && f[2] == remote)
                .then(|| f[4].split(':').nth(1).map(|rx| rx != "00000000"))
                .flatten()
        });
        if queued != Some(true) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Shutdown with a WebSocket open: a message sent before the signal is answered, then the
/// client gets a 1001 (going away) close; the listener refuses new connections at once; the
/// serve helper returns within its grace period.
fn shutdown_case(
    harness: &impl ServeHarness,
    pki: &Pki,
    failures: &mut Vec<String>,
    report: &mut Vec<String>,
) {
    use tungstenite::protocol::frame::coding::CloseCode;
    let grace = Duration::from_secs(3);
    let mut server = start(harness, pki, ServeOptions::DEFAULT.with_grace(grace));
    let addr = server.addr;
    let tls = connect(addr, tls_client(pki, Some(&pki.trusted))).unwrap();
    let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
    ws.send(tungstenite::Message::text("before")).unwrap();
    if ws.read().map(|m| m.to_string()).ok().as_deref() != Some("Echo: before") {
        failures.push("shutdown: no echo before the signal".into());
    }
    ws.send(tungstenite::Message::text("in flight")).unwrap();
    // "In flight" means the server has it: a message still in its socket's receive queue when
    // the signal comes was never received (on a loaded machine the reactor can see the drain
    // first), so wait until the server's side of this connection has read it.
    let client = ws.get_ref().sock.local_addr().unwrap();
    wait_until_read(addr, client);
    let stop = server.stop.take().unwrap();
    let stopper = std::thread::spawn(move || {
        let started = Instant::now();
        stop();
        started.elapsed()
    });
    let signalled = Instant::now();
    match ws.read() {
        Ok(m) if m.to_string() == "Echo: in flight" => {}
        other => failures.push(format!("shutdown: the in-flight message got {other:?}")),
    }
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(f))) if f.code == CloseCode::Away => {}
        other => failures.push(format!("shutdown: expected a 1001 close, got {other:?}")),
    }
    let _ = ws.flush();
    // The listener closes at once: connections are refused, not left hanging.
    let refused = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                break Some(signalled.elapsed());
            }
            _ if signalled.elapsed() > Duration::from_secs(2) => break None,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    match refused {
        Some(after) if after < Duration::from_secs(1) => {
            report.push(format!(
                "shutdown: refusing new connections after {after:?}"
            ));
        }
        other => failures.push(format!("shutdown: new connections refused after {other:?}")),
    }
    drop(ws);
    let took = stopper.join().unwrap();
    if took > grace + Duration::from_secs(1) {
        failures.push(format!("shutdown took {took:?}, grace {grace:?}"));
    } else {
        report.push(format!("shutdown returned after {took:?}"));
    }
}

/// Writes `trickle` a byte per read attempt (reads time out after 200 ms) until the server
/// closes the connection; how long that took, `None` after 10 s.
fn closed_after(s: &mut (impl Read + Write), trickle: &[u8]) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(b) = trickle.get(sent) {
            let _ = s.write_all(&[*b]).and_then(|()| s.flush());
            sent += 1;
        }
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

/// A phase must end no sooner than its deadline and well before twice it.
fn check_window(
    name: &str,
    closed: Option<Duration>,
    deadline: Duration,
    failures: &mut Vec<String>,
    report: &mut Vec<String>,
) {
    match closed {
        Some(d) if d + Duration::from_millis(250) >= deadline && d <= deadline * 2 => {
            report.push(format!("{name} closed after {d:?} (deadline {deadline:?})"));
        }
        other => failures.push(format!(
            "{name}: closed after {other:?}, deadline {deadline:?}"
        )),
    }
}

/// What an adapter's short path built from three PEM files: the TLS configuration and the
/// authenticator its gate holds.
pub type ShortPath = Result<(Arc<rustls::ServerConfig>, Authenticator), certauth_core::SetupError>;

/// The short path (`Gate::from_pem_files`): `from_files(ca, cert, key)` with the policy
/// `trusted-client` serves the trusted client through the serve helper and offers http/1.1
/// by ALPN; a missing file is named in the error.
pub fn short_path(
    harness: &impl ServeHarness,
    from_files: impl Fn(&std::path::Path, &std::path::Path, &std::path::Path) -> ShortPath,
) {
    use certauth_core::SetupError;
    let pki = Pki::new();
    let files = crate::proxies::Files::new("short-path", &pki);
    let path = |name: &str| std::path::PathBuf::from(files.path(name));
    let (tls, auth) =
        from_files(&path("ca.pem"), &path("server.pem"), &path("server.key")).unwrap();
    assert_eq!(tls.alpn_protocols, [b"http/1.1".to_vec()]);
    let running = harness.serve(ServeSetup {
        tls,
        auth,
        options: ServeOptions::DEFAULT,
        paths: WebSocketPaths::any(),
    });
    let echoed = trusted_echo(running.addr, &pki);
    (running.stop)();
    echoed.unwrap();

    let e = from_files(&path("ca.pem"), &path("missing.pem"), &path("server.key"))
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            SetupError::Read {
                file: "server certificate file",
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("cannot read the server certificate file ")
            && text.contains("missing.pem"),
        "{text}"
    );
}
