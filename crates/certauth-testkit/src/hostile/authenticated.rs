//! An authenticated client misbehaves: a trusted certificate is not a trusted client (a
//! device certificate gets stolen, a buggy client loops). Against an adapter's serve helper
//! ([`ServeHarness`]), each case checks that the client is cut off, within a generous bound
//! of memory, and that other clients are still served.

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use certauth_core::Limits;
use certauth_core::WebSocketPaths;
use certauth_core::tls::ClientAuthMode;
use certauth_engine::lifecycle::ServeOptions;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::lifecycle::{ServeHarness, ServeSetup, trusted_echo};
use crate::suite::{self, Pki, connect, tls_client};

/// A running serve helper, stopped when dropped.
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

fn start(harness: &impl ServeHarness, pki: &Pki, limits: Limits, options: ServeOptions) -> Running {
    let (tls, auth) = suite::server_parts(pki, limits, ClientAuthMode::Deferred);
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

/// The process's resident memory, in bytes (Linux; 0 elsewhere).
pub fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// A masked client ping frame with a 125-byte payload (the most a control frame holds).
fn ping_frame() -> Vec<u8> {
    let mut f = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    f.extend_from_slice(&[b'p'; 125]);
    f
}

/// What [`ping_flood`] saw.
#[derive(Debug)]
pub struct Flood {
    /// Bytes of pings written before the server closed the connection (or the budget).
    pub sent: usize,
    /// Whether the server closed the connection before the budget was spent.
    pub cut_off: bool,
    /// How much the process's resident memory grew meanwhile (server and client).
    pub grew: usize,
}

/// A trusted client opens a WebSocket, then writes pings and never reads (the pongs pile
/// up on the server unless its write buffer is bounded), up to `budget` bytes or 60 s.
pub fn ping_flood(addr: SocketAddr, pki: &Pki, budget: usize) -> Flood {
    let tls = connect(addr, tls_client(pki, Some(&pki.trusted))).unwrap();
    let (ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
    let mut tls = ws.into_inner();
    tls.sock
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let before = rss();
    let frame = ping_frame().repeat(64);
    let (mut sent, mut cut_off) = (0, false);
    let started = Instant::now();
    while sent < budget && started.elapsed() < Duration::from_secs(60) {
        match tls.write_all(&frame).and_then(|()| tls.flush()) {
            Ok(()) => sent += frame.len(),
            Err(e) => {
                cut_off = e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::TimedOut;
                break;
            }
        }
    }
    let grew = rss().saturating_sub(before);
    Flood {
        sent,
        cut_off,
        grew,
    }
}

/// How a WebSocket a trusted client holds open, reading (so answering pings), ended.
fn idle_until_closed(addr: SocketAddr, pki: &Pki) -> Result<(Option<CloseCode>, String), String> {
    let tls = connect(addr, tls_client(pki, Some(&pki.trusted))).map_err(|e| e.to_string())?;
    let (mut ws, _) =
        tungstenite::client::client("wss://localhost/chat", tls).map_err(|e| e.to_string())?;
    ws.send(tungstenite::Message::text("hello"))
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        match ws.read() {
            Ok(tungstenite::Message::Close(frame)) => {
                return Ok((
                    frame.as_ref().map(|f| f.code),
                    frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("ended without a close frame: {e}")),
        }
    }
    Err("still open after 20 s".into())
}

/// A WebSocket upgrade as `client`: the open socket, or the HTTP status and body it was
/// refused with.
fn open_as(
    addr: SocketAddr,
    pki: &Pki,
    client: &crate::Issued,
) -> Result<tungstenite::WebSocket<suite::Tls>, String> {
    let tls = connect(addr, tls_client(pki, Some(client))).map_err(|e| e.to_string())?;
    match tungstenite::client::client("wss://localhost/chat", tls) {
        Ok((mut ws, _)) => {
            ws.send(tungstenite::Message::text("hi"))
                .map_err(|e| e.to_string())?;
            match ws.read() {
                Ok(m) if m.to_string() == "Echo: hi" => Ok(ws),
                other => Err(format!("echo: {other:?}")),
            }
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            let body = r.body().as_deref().map(String::from_utf8_lossy);
            Err(format!(
                "HTTP {} {}",
                r.status().as_u16(),
                body.unwrap_or_default()
            ))
        }
        Err(e) => Err(format!("error: {e}")),
    }
}

/// One certificate holds `max_connections_per_identity` WebSockets: its next connection is
/// refused with 429 and the code, another certificate still gets in, and once one of the
/// first closes, the certificate gets in again.
fn per_identity(harness: &impl ServeHarness, pki: &Pki, failures: &mut Vec<String>) {
    let options = ServeOptions::DEFAULT.with_max_connections_per_identity(Some(3));
    let server = start(harness, pki, Limits::DEFAULT, options);
    let mut held = Vec::new();
    for i in 0..3 {
        match open_as(server.addr, pki, &pki.trusted) {
            Ok(ws) => held.push(ws),
            Err(e) => failures.push(format!("per identity: connection {i}: {e}")),
        }
    }
    match open_as(server.addr, pki, &pki.trusted) {
        Err(e) if e == "HTTP 429 Too Many Requests: TOO_MANY_CONNECTIONS" => {}
        other => failures.push(format!(
            "per identity: the 4th connection got {:?}, want a 429",
            other.map(|_| "a WebSocket")
        )),
    }
    let other = pki
        .root
        .issue(&crate::Leaf::client("trusted-client").around_wall_clock());
    if let Err(e) = open_as(server.addr, pki, &other) {
        failures.push(format!("per identity: another certificate: {e}"));
    }
    if let Some(mut ws) = held.pop() {
        let _ = ws.close(None);
        let _ = ws.flush();
        let _ = ws.read();
    }
    drop(held.pop());
    let started = Instant::now();
    let again = loop {
        match open_as(server.addr, pki, &pki.trusted) {
            Ok(ws) => break Ok(ws),
            Err(e) if started.elapsed() > Duration::from_secs(5) => break Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    if let Err(e) = again {
        failures.push(format!("per identity: after two closed: {e}"));
    }
}

/// Runs every case; panics listing what failed.
pub fn run(harness: &impl ServeHarness) {
    let pki = Pki::new();
    let mut failures = Vec::new();

    // Ping flood: the pongs stay within the write buffer and the client, which never
    // reads, does not answer the server's ping: cut off after about two intervals.
    let limits = Limits::DEFAULT.with_websocket_ping_interval(Duration::from_millis(300));
    let server = start(harness, &pki, limits, ServeOptions::DEFAULT);
    let budget = 256 << 20;
    let flood = ping_flood(server.addr, &pki, budget);
    eprintln!("ping flood: {flood:?}");
    if !flood.cut_off {
        failures.push(format!(
            "ping flood: not cut off after {} bytes of pings",
            flood.sent
        ));
    }
    if flood.grew > 96 << 20 {
        failures.push(format!(
            "ping flood: memory grew by {} MiB",
            flood.grew >> 20
        ));
    }
    if let Err(e) = trusted_echo(server.addr, &pki) {
        failures.push(format!("ping flood: a trusted client afterwards: {e}"));
    }
    drop(server);

    // An idle WebSocket whose client reads (and so answers the pings) is closed with 1000
    // at the idle timeout, not earlier as if it were gone.
    let limits = Limits::DEFAULT
        .with_websocket_idle_timeout(Duration::from_secs(1))
        .with_websocket_ping_interval(Duration::from_millis(200));
    let server = start(harness, &pki, limits, ServeOptions::DEFAULT);
    match idle_until_closed(server.addr, &pki) {
        Ok((Some(CloseCode::Normal), reason)) if reason == "idle timeout" => {}
        other => failures.push(format!("idle WebSocket: {other:?}")),
    }
    drop(server);

    per_identity(harness, &pki, &mut failures);

    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
