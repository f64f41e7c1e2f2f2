//! Hostile input against a running adapter: every limit, slow and broken clients, bytes
//! that are not TLS or not HTTP, malformed upgrades, oversized and over-long certificate
//! chains, churn. The cases are a table: what a client sends (`Send`), what must come
//! back (`Reply`) and what the server must report ([`Outcome`]); after each, a trusted
//! client must still be served.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certauth_core::Limits;
use rustls::ClientConfig;

use crate::Outcome;
use crate::der::{self, san};
use crate::suite::{self, Harness, Pki, Server, UPGRADE, connect, read_to_close, tls_client};
use crate::{Crafted, Issued, KeyKind, key};

pub mod authenticated;
pub mod headers;

/// The limits the hostile server runs with (small, so the cases stay quick).
pub fn limits() -> Limits {
    Limits::DEFAULT
        .with_max_head_bytes(8 * 1024)
        .with_max_headers(32)
        .with_max_header_bytes(4 * 1024)
        .with_head_read_timeout(Duration::from_secs(1))
        .with_handshake_timeout(Duration::from_secs(1))
}

fn error(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// How a case's client talks to the server.
enum Send {
    /// Connects over TLS with this client configuration, writes the bytes (none: stays
    /// silent) and reads until the close.
    Tls(Arc<ClientConfig>, Vec<u8>),
    /// Connects over TLS, then writes the bytes one at a time, `every` apart.
    Trickle(Arc<ClientConfig>, &'static [u8], Duration),
    /// Plain TCP to the TLS port: writes the bytes, reads until the close.
    Raw(Vec<u8>),
    /// Plain TCP: writes the bytes and hangs up at once.
    HangUp(Vec<u8>),
}

/// What must come back to the client.
enum Reply {
    /// Exactly these bytes, then the close.
    Exact(String),
    /// A `101 Switching Protocols`, then `Echo: <m>` for each of these messages.
    Echoed(&'static [&'static str]),
    /// The TLS session is closed without a byte, after a time within the range.
    Closed(Range<Duration>),
    /// No HTTP response (a failed handshake or a bare close), within the time.
    NoResponse(Duration),
}

impl Reply {
    fn accepts(&self, got: &str, waited: Duration) -> bool {
        match self {
            Self::Exact(want) => got == want,
            Self::Echoed(messages) => {
                got.starts_with("HTTP/1.1 101 Switching Protocols\r\n")
                    && messages.iter().all(|m| got.contains(&format!("Echo: {m}")))
            }
            Self::Closed(within) => got.is_empty() && within.contains(&waited),
            Self::NoResponse(within) => !got.contains("HTTP/") && waited < *within,
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(want) => write!(f, "{want:?}"),
            Self::Echoed(messages) => write!(f, "101 and the echo of {messages:?}"),
            Self::Closed(within) => write!(f, "a close without a byte after {within:?}"),
            Self::NoResponse(within) => write!(f, "no HTTP response within {within:?}"),
        }
    }
}

/// One hostile case: a client, and the (reply, outcome) pairs that pass (usually one).
struct Case {
    name: String,
    send: Send,
    want: Vec<(Reply, Outcome)>,
}

impl Case {
    fn new(name: impl Into<String>, send: Send, reply: Reply, outcome: Outcome) -> Self {
        Self {
            name: name.into(),
            send,
            want: vec![(reply, outcome)],
        }
    }

    /// Another answer that also passes.
    fn or(mut self, reply: Reply, outcome: Outcome) -> Self {
        self.want.push((reply, outcome));
        self
    }

    /// Plays the case; the failure, if it failed.
    fn play(&self, server: &Server) -> Result<(), String> {
        let started = Instant::now();
        let got = match &self.send {
            Send::Tls(config, bytes) => over_tls(server.addr, Arc::clone(config), bytes),
            Send::Trickle(config, bytes, every) => match connect(server.addr, Arc::clone(config)) {
                Ok(mut t) => {
                    for b in *bytes {
                        if t.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(*every);
                    }
                    String::from_utf8_lossy(&read_to_close(&mut t)).into_owned()
                }
                Err(e) => format!("HANDSHAKE ERROR {e}"),
            },
            Send::Raw(bytes) => String::from_utf8_lossy(&raw(server.addr, bytes)).into_owned(),
            Send::HangUp(bytes) => {
                if let Ok(mut tcp) = TcpStream::connect(server.addr) {
                    let _ = tcp.write_all(bytes);
                    let _ = tcp.shutdown(Shutdown::Both);
                }
                String::new()
            }
        };
        let waited = started.elapsed();
        let report = server.outcome();
        if self
            .want
            .iter()
            .any(|(reply, outcome)| reply.accepts(&got, waited) && report == *outcome)
        {
            Ok(())
        } else {
            let wants: Vec<String> = self
                .want
                .iter()
                .map(|(reply, outcome)| format!("{reply:?} / {outcome}"))
                .collect();
            Err(format!(
                "got {got:?} after {waited:?} / {report}, want {}",
                wants.join(" or ")
            ))
        }
    }
}

/// Sends `bytes` over TLS as `client` and returns everything up to the close.
fn over_tls(addr: SocketAddr, config: Arc<ClientConfig>, bytes: &[u8]) -> String {
    match connect(addr, config) {
        Ok(mut t) => {
            let _ = t.write_all(bytes);
            let _ = t.flush();
            String::from_utf8_lossy(&read_to_close(&mut t)).into_owned()
        }
        Err(e) => format!("HANDSHAKE ERROR {e}"),
    }
}

/// Plain TCP: sends `bytes`, returns what came back before the close.
fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let Ok(mut tcp) = TcpStream::connect(addr) else {
        return Vec::new();
    };
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = tcp.write_all(bytes);
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    out
}

/// A client config presenting `cert` but signing with `key_of`'s key.
fn presenting_with_key(pki: &Pki, cert: &Issued, key_of: &Issued) -> Arc<ClientConfig> {
    presenting_unchecked(pki, vec![cert.der.clone()], &key_of.key)
}

/// A client config presenting `chain` and signing with `key`, without rustls' checks
/// (for crafted certificates and mismatched keys).
pub(crate) fn presenting_unchecked(
    pki: &Pki,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: &rcgen::KeyPair,
) -> Arc<ClientConfig> {
    crate::handshake::presenting(
        &pki.server_root.cert.der,
        chain,
        key,
        rustls::DEFAULT_VERSIONS,
    )
}

/// A client certificate issued by the suite's CA with extra extensions (crafted DER).
fn crafted_client(pki: &Pki, extensions: Vec<(String, bool, Vec<u8>)>) -> Issued {
    let root_cert = certauth_core::ClientCertificate::from_der(&pki.root.cert.der).unwrap();
    let k = key(KeyKind::P256);
    let mut c = Crafted::new(der::simple_name(&[("CN", "trusted-client")]));
    c.issuer = root_cert.subject().raw().to_vec();
    c.serial = vec![0x33];
    c.extensions = extensions;
    let der = c.sign(&k, &pki.root.cert.key);
    Issued::new(der.into(), k)
}

/// A client presenting `issued` (its own key), without rustls' checks.
fn presenting(pki: &Pki, issued: &Issued) -> Arc<ClientConfig> {
    presenting_unchecked(pki, vec![issued.der.clone()], &issued.key)
}

/// A client certificate with `n` DNS names.
fn with_sans(pki: &Pki, n: usize) -> Issued {
    let sans: Vec<Vec<u8>> = (0..n).map(|i| san::dns(&format!("h{i}.example"))).collect();
    crafted_client(
        pki,
        vec![("2.5.29.17".into(), false, san::extension(&sans))],
    )
}

/// Limits on the head: each refused with the exact response and code, before any decision.
fn head_cases(trusted: &Arc<ClientConfig>) -> Vec<Case> {
    let too_large = || {
        (
            Reply::Exact(error(
                "431 Request Header Fields Too Large",
                "Request Header Fields Too Large",
            )),
            Outcome::Head(431),
        )
    };
    let bad = || {
        (
            Reply::Exact(error("400 Bad Request", "Bad Request")),
            Outcome::Head(400),
        )
    };
    let heads: Vec<(&str, Vec<u8>, (Reply, Outcome))> = vec![
        (
            "head over the limit",
            format!(
                "GET / HTTP/1.1\r\nX-A: {}\r\nX-B: {}\r\n\r\n",
                "a".repeat(4000),
                "b".repeat(4500)
            )
            .into_bytes(),
            too_large(),
        ),
        (
            "too many headers",
            format!(
                "GET / HTTP/1.1\r\n{}\r\n",
                (0..40).map(|i| format!("H{i}: v\r\n")).collect::<String>()
            )
            .into_bytes(),
            too_large(),
        ),
        (
            "one header too large",
            format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "x".repeat(5000)).into_bytes(),
            too_large(),
        ),
        (
            "1 MB header",
            [
                b"GET / HTTP/1.1\r\nX-Huge: ".as_slice(),
                &vec![b'z'; 1 << 20],
            ]
            .concat(),
            too_large(),
        ),
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), bad()),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            bad(),
        ),
        (
            "invalid UTF-8 in a header name",
            b"GET / HTTP/1.1\r\nX-\xff\xfe: v\r\n\r\n".to_vec(),
            bad(),
        ),
        (
            "NUL in a header value",
            b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n".to_vec(),
            bad(),
        ),
        (
            "space before a header colon",
            b"GET / HTTP/1.1\r\nX-A : v\r\n\r\n".to_vec(),
            bad(),
        ),
        ("HTTP/1.2", b"GET / HTTP/1.2\r\n\r\n".to_vec(), bad()),
    ];
    heads
        .into_iter()
        .map(|(name, bytes, (reply, outcome))| {
            Case::new(name, Send::Tls(Arc::clone(trusted), bytes), reply, outcome)
        })
        .collect()
}

/// Malformed upgrades from an authenticated client, and odd but valid heads that still
/// authenticate and upgrade.
fn upgrade_cases(trusted: &Arc<ClientConfig>) -> Vec<Case> {
    let bad = || Reply::Exact(error("400 Bad Request", "Bad Request"));
    let refused: Vec<(&str, String, Reply, u16)> = vec![
        (
            "upgrade without Connection",
            UPGRADE.replace("Connection: Upgrade\r\n", ""),
            bad(),
            400,
        ),
        (
            "bad WebSocket key",
            UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
            bad(),
            400,
        ),
        (
            "two WebSocket keys",
            UPGRADE.replace(
                "Version: 13\r\n",
                "Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            ),
            bad(),
            400,
        ),
        (
            "POST upgrade",
            UPGRADE.replace("GET /chat", "POST /chat"),
            bad(),
            400,
        ),
        (
            "HTTP/1.0 upgrade",
            UPGRADE.replace("HTTP/1.1", "HTTP/1.0"),
            bad(),
            400,
        ),
        (
            "Upgrade: h2c",
            UPGRADE.replace("Upgrade: websocket", "Upgrade: h2c"),
            bad(),
            400,
        ),
        (
            "WebSocket version 8",
            UPGRADE.replace("Version: 13", "Version: 8"),
            Reply::Exact(error("426 Upgrade Required", "Upgrade Required").replace(
                "Connection: close\r\n",
                "Connection: close\r\nSec-WebSocket-Version: 13\r\n",
            )),
            426,
        ),
    ];
    let mut cases: Vec<Case> = refused
        .into_iter()
        .map(|(name, request, reply, status)| {
            Case::new(
                name,
                Send::Tls(Arc::clone(trusted), request.into_bytes()),
                reply,
                Outcome::Upgrade(status),
            )
        })
        .collect();

    // A header value that is not UTF-8 (0xC3 0x28 0xFF), and bare LF line endings.
    let not_utf8 = UPGRADE
        .replace("Host: localhost", "Host: localhost\r\nX-Odd: \u{1}")
        .into_bytes()
        .into_iter()
        .flat_map(|b| {
            if b == 1 {
                vec![0xC3, 0x28, 0xFF]
            } else {
                vec![b]
            }
        })
        .collect::<Vec<u8>>();
    let bare_lf = UPGRADE.replace("\r\n", "\n").into_bytes();
    for (name, head) in [
        ("invalid UTF-8 in a header value", not_utf8),
        ("bare LF line endings", bare_lf),
    ] {
        cases.push(Case::new(
            name,
            Send::Tls(
                Arc::clone(trusted),
                [head.as_slice(), &suite::client_text_frame("odd")].concat(),
            ),
            Reply::Echoed(&["odd"]),
            Outcome::trusted(),
        ));
    }
    cases
}

/// Slow and silent clients, and bytes that are not TLS or not complete.
fn transport_cases(trusted: &Arc<ClientConfig>) -> Vec<Case> {
    let quick = Duration::from_secs(4);
    vec![
        // Closed at the head deadline (1 s) without a response.
        Case::new(
            "a byte every 300 ms",
            Send::Trickle(Arc::clone(trusted), b"GET / HT", Duration::from_millis(300)),
            Reply::Closed(Duration::ZERO..quick),
            Outcome::HeadTimeout,
        ),
        Case::new(
            "idle after the handshake",
            Send::Tls(Arc::clone(trusted), Vec::new()),
            Reply::Closed(Duration::from_millis(900)..quick),
            Outcome::HeadTimeout,
        ),
        Case::new(
            "plaintext HTTP on the TLS port",
            Send::Raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            Reply::NoResponse(quick),
            Outcome::Handshake,
        ),
        Case::new(
            "random bytes",
            Send::Raw(
                (0..1024u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect(),
            ),
            Reply::NoResponse(quick),
            Outcome::Handshake,
        ),
        Case::new(
            "a truncated ClientHello",
            Send::Raw(vec![
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ]),
            Reply::NoResponse(quick),
            Outcome::Handshake,
        ),
        Case::new(
            "disconnect mid-handshake",
            Send::HangUp(vec![0x16, 0x03, 0x01, 0x00, 0x40]),
            Reply::NoResponse(quick),
            Outcome::Handshake,
        ),
    ]
}

/// Certificates: refused with the exact response and code, or let in where they are within
/// the caps.
fn certificate_cases(pki: &Pki) -> Vec<Case> {
    let unauthorized = || Reply::Exact(error("401 Unauthorized", "Unauthorized"));
    let upgrade = || UPGRADE.as_bytes().to_vec();
    let mut cases: Vec<Case> = [
        ("no certificate", None, "NO_CERTIFICATE"),
        (
            "other CA",
            Some(&pki.other_ca),
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        ),
        ("expired", Some(&pki.expired), "CERT_HAS_EXPIRED"),
        ("policy deny", Some(&pki.denied), "POLICY_DENIED"),
    ]
    .into_iter()
    .map(|(name, client, code)| {
        Case::new(
            name,
            Send::Tls(tls_client(pki, client), upgrade()),
            unauthorized(),
            Outcome::denied(code),
        )
    })
    .collect();
    cases.push(Case::new(
        "policy 403",
        Send::Tls(tls_client(pki, Some(&pki.forbidden)), upgrade()),
        Reply::Exact(error("403 Forbidden", "Forbidden")),
        Outcome::denied("POLICY_DENIED"),
    ));
    // A trusted certificate presented with another key: the handshake signature fails.
    cases.push(Case::new(
        "a certificate without its key",
        Send::Tls(
            presenting_with_key(pki, &pki.trusted, &pki.denied),
            upgrade(),
        ),
        Reply::NoResponse(Duration::from_secs(10)),
        Outcome::Handshake,
    ));
    // A second frame pipelined behind the upgrade is WebSocket data, not HTTP.
    cases.push(Case::new(
        "two frames in the head's packet",
        Send::Tls(
            tls_client(pki, Some(&pki.trusted)),
            [
                UPGRADE.as_bytes(),
                &suite::client_text_frame("one"),
                &suite::client_text_frame("two"),
            ]
            .concat(),
        ),
        Reply::Echoed(&["one", "two"]),
        Outcome::trusted(),
    ));
    let ca_leaf = pki.root.issue(&{
        let mut l = crate::Leaf::client("trusted-client").around_wall_clock();
        l.is_ca = true;
        l
    });
    cases.push(Case::new(
        "a CA certificate as the client's",
        Send::Tls(presenting(pki, &ca_leaf), upgrade()),
        unauthorized(),
        Outcome::denied("CA_USED_AS_END_ENTITY"),
    ));
    cases.push(Case::new(
        "1,025 SANs (cap 1024)",
        Send::Tls(presenting(pki, &with_sans(pki, 1025)), upgrade()),
        unauthorized(),
        Outcome::denied("CERT_TOO_LARGE"),
    ));
    // About 90 KB: over certauth's caps, or refused by TLS framing first.
    cases.push(
        Case::new(
            "10,000 SANs",
            Send::Tls(presenting(pki, &with_sans(pki, 10_000)), upgrade()),
            unauthorized(),
            Outcome::denied("CERT_TOO_LARGE"),
        )
        .or(
            Reply::NoResponse(Duration::from_secs(10)),
            Outcome::Handshake,
        ),
    );
    // 60 KB, under the 64 KiB cap (a TLS handshake message cannot carry much more).
    let big = crafted_client(
        pki,
        vec![(
            "1.3.6.1.4.1.99999.7".into(),
            false,
            der::tlv(0x04, &vec![0u8; 60_000]),
        )],
    );
    cases.push(Case::new(
        "a 60 KB certificate (cap 64 KiB)",
        Send::Tls(presenting(pki, &big), upgrade()),
        Reply::Echoed(&[]),
        Outcome::trusted(),
    ));
    let inter = pki.root.intermediate("Suite Intermediate");
    let leaf = inter.issue(&crate::Leaf::client("trusted-client").around_wall_clock());
    let mut long = vec![leaf.der.clone()];
    long.extend(std::iter::repeat_n(inter.cert.der.clone(), 19));
    cases.push(Case::new(
        "a chain of 20 (cap 8)",
        Send::Tls(presenting_unchecked(pki, long, &leaf.key), upgrade()),
        unauthorized(),
        Outcome::denied("CHAIN_TOO_LONG"),
    ));
    cases.push(Case::new(
        "a chain of 3 still passes",
        Send::Tls(
            presenting_unchecked(
                pki,
                vec![leaf.der.clone(), inter.cert.der.clone()],
                &leaf.key,
            ),
            [UPGRADE.as_bytes(), &suite::client_text_frame("deep")].concat(),
        ),
        Reply::Echoed(&["deep"]),
        Outcome::trusted(),
    ));
    let forged = UPGRADE.replace(
        "Host: localhost",
        &format!(
            "Host: localhost\r\nX-Forwarded-Client-Cert: Cert=\"{}\"",
            crate::encode::nginx_escaped(&pki.trusted.pem())
        ),
    );
    cases.push(Case::new(
        "a forged proxy header on the TLS port",
        Send::Tls(tls_client(pki, None), forged.into_bytes()),
        unauthorized(),
        Outcome::denied("NO_CERTIFICATE"),
    ));
    cases
}

/// The health check every case is followed by: a trusted client's WebSocket echo.
fn healthy(server: &Server, trusted: &Arc<ClientConfig>) -> Result<(), String> {
    let tls = connect(server.addr, Arc::clone(trusted)).map_err(|e| e.to_string())?;
    let (mut ws, _) =
        tungstenite::client::client("wss://localhost/chat", tls).map_err(|e| e.to_string())?;
    ws.send(tungstenite::Message::text("ping"))
        .map_err(|e| e.to_string())?;
    let reply = ws.read().map_err(|e| e.to_string())?.to_string();
    let _ = ws.close(None);
    let report = server.outcome();
    if reply != "Echo: ping" || report != Outcome::trusted() {
        return Err(format!("health check got {reply:?} / {report}"));
    }
    Ok(())
}

/// Runs every hostile case; panics listing the failures.
pub fn run(harness: &impl Harness) {
    let pki = Pki::new();
    let server = Server::start(harness, &pki, limits());
    let trusted = tls_client(&pki, Some(&pki.trusted));
    let mut cases = head_cases(&trusted);
    cases.extend(upgrade_cases(&trusted));
    cases.extend(transport_cases(&trusted));
    cases.extend(certificate_cases(&pki));

    let mut failures: Vec<String> = Vec::new();
    for case in &cases {
        if let Err(e) = case.play(&server) {
            failures.push(format!("{}: {e}", case.name));
        }
        if let Err(e) = healthy(&server, &trusted) {
            failures.push(format!("{}: server unhealthy afterwards: {e}", case.name));
        }
    }

    // Churn: hundreds of connections opened and dropped, then the trusted client.
    for _ in 0..300 {
        drop(TcpStream::connect(server.addr));
    }
    for _ in 0..300 {
        let _ = server.outcome_within(Duration::from_millis(500));
    }
    for _ in 0..50 {
        drop(connect(server.addr, Arc::clone(&trusted)));
    }
    for _ in 0..50 {
        let _ = server.outcome_within(Duration::from_secs(3));
    }
    if let Err(e) = healthy(&server, &trusted) {
        failures.push(format!("350 connections opened and dropped: {e}"));
    }

    drop(server);
    assert!(cases.len() >= 39, "only {} hostile cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        cases.len() + 1,
        failures.join("\n")
    );
}
