//! `certauth serve --upstream` attacked (issue 32's review): requests a client crafts to make
//! the upstream see an identity it does not hold. The upstream is Python's own WSGI server
//! (`wsgiref`), which reads headers as CGI variables: `Client_Cert` and `Client-Cert` are both
//! `HTTP_CLIENT_CERT` there, their values joined. Then an upstream that switches protocols on
//! any path: an open path must not become a tunnel without a certificate.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use certauth_testkit::Issued;
use certauth_testkit::proxies;
use certauth_testkit::suite::{self, Pki};

/// A child process killed when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A WSGI application answering every request with the CGI variables certauth writes.
const WSGI_APP: &str = r#"
import json, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
class Quiet(WSGIRequestHandler):
    def log_message(self, *a): pass
def app(environ, start):
    keys = ["HTTP_CLIENT_CERT", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_HOST",
            "PATH_INFO", "QUERY_STRING"]
    body = json.dumps({k: environ.get(k) for k in keys}).encode()
    start("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// `python3` serving [`WSGI_APP`], and its port.
fn wsgi_upstream() -> (Proc, u16) {
    let mut child = Command::new("python3")
        .args(["-c", WSGI_APP])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().unwrap();
    (Proc(child), port)
}

/// A test upstream's read of a request head, byte by byte (nothing past it is taken):
/// `None` if the connection ends or fails first.
fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if !matches!(std::io::Read::read(s, &mut byte), Ok(1)) {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// `certauth serve --upstream` letting `trusted-client` in, `/health` open, WebSockets
/// idle for 1 s closed, and `extra` options.
fn certauth(pki: &Pki, dir: &Dir, extra: &[&str], upstream_port: u16) -> (Proc, u16) {
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = |name: &str, contents: &str| {
        let p = dir.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    };
    let ca = file("ca.pem", &pki.root.cert.pem());
    let cert = file("server.pem", &pki.server.pem());
    let key = file("server.key", &pki.server.key_pem());
    let (child, port) = proxies::start_certauth(
        Command::new(env!("CARGO_BIN_EXE_certauth"))
            .arg("serve")
            .arg("--ca")
            .arg(&ca)
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--allow-cn", "trusted-client", "--open", "/health"])
            .args(["--websocket-idle-timeout", "1"])
            .args(extra)
            .args(["--upstream", &format!("http://127.0.0.1:{upstream_port}")]),
        &dir.0.join("certauth.log"),
    );
    (Proc(child), port)
}

/// Sends `request` over TLS as `who` (or without a certificate): the response, to the close.
fn raw(pki: &Pki, port: u16, who: Option<&Issued>, request: &str) -> String {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(pki, who)).unwrap();
    tls.write_all(request.as_bytes()).unwrap();
    tls.flush().unwrap();
    String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned()
}

/// The upstream's JSON from a 200 response.
fn seen(response: &str) -> serde_json::Value {
    // (wsgiref answers HTTP/1.0; certauth passes the version on.)
    assert!(response.split(' ').nth(1) == Some("200"), "{response}");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

#[test]
fn spoofed_identity_never_reaches_a_wsgi_upstream() {
    let pki = Pki::new();
    let dir = Dir(std::env::temp_dir().join(format!("certauth-attack-{}", std::process::id())));
    let (_upstream, upstream_port) = wsgi_upstream();
    let (_certauth, port) = certauth(&pki, &dir, &[], upstream_port);

    // An open path, no certificate: a `_` spelling of the identity and forwarding headers
    // would be the application's `HTTP_CLIENT_CERT`, `HTTP_X_FORWARDED_*`.
    let spoof = "Client_Cert: :c3Bvb2Zk:\r\nX_Forwarded_For: 6.6.6.6\r\n\
X_Forwarded_Proto: http\r\n";
    let open = raw(
        &pki,
        port,
        None,
        &format!("GET /health HTTP/1.1\r\nHost: localhost\r\n{spoof}Connection: close\r\n\r\n"),
    );
    let env = seen(&open);
    assert_eq!(env["HTTP_CLIENT_CERT"], serde_json::Value::Null, "{open}");
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "127.0.0.1", "{open}");
    assert_eq!(env["HTTP_X_FORWARDED_PROTO"], "https", "{open}");

    // Authenticated: the certificate presented, and nothing the client wrote beside it.
    let mine = raw(
        &pki,
        port,
        Some(&pki.trusted),
        &format!("GET /x HTTP/1.1\r\nHost: localhost\r\n{spoof}Connection: close\r\n\r\n"),
    );
    let env = seen(&mine);
    let der = base64::engine::general_purpose::STANDARD.encode(&pki.trusted.der);
    assert_eq!(env["HTTP_CLIENT_CERT"], format!(":{der}:"), "{mine}");
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "127.0.0.1", "{mine}");
    assert_eq!(env["HTTP_X_FORWARDED_PROTO"], "https", "{mine}");

    // Two Hosts: decided for one, the upstream could route by the other (RFC 9112 §3.2: 400).
    let two_hosts = raw(
        &pki,
        port,
        Some(&pki.trusted),
        "GET /x HTTP/1.1\r\nHost: public.example\r\nHost: admin.example\r\nConnection: close\r\n\r\n",
    );
    assert!(two_hosts.starts_with("HTTP/1.1 400 "), "{two_hosts}");
    // Userinfo in an absolute-form target: never `Host: evil@admin.example` upstream.
    let userinfo = raw(
        &pki,
        port,
        Some(&pki.trusted),
        "GET http://evil@admin.example/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(userinfo.starts_with("HTTP/1.1 400 "), "{userinfo}");
    // An absolute-form target goes upstream in origin form (wsgiref would take the whole
    // URL for the path), with the authority as the Host.
    let absolute = raw(
        &pki,
        port,
        Some(&pki.trusted),
        "GET http://localhost/x/y?q=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let env = seen(&absolute);
    assert_eq!(env["PATH_INFO"], "/x/y", "{absolute}");
    assert_eq!(env["QUERY_STRING"], "q=1", "{absolute}");
    assert_eq!(env["HTTP_HOST"], "localhost", "{absolute}");
    // No path, only a fragment: decided as `/`, and sent as `/` (written as is, it was an
    // empty request target, which wsgiref read as an HTTP/0.9 request: 502; review s9).
    for target in ["http://localhost#/admin", "http://localhost"] {
        let empty = raw(
            &pki,
            port,
            Some(&pki.trusted),
            &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(seen(&empty)["PATH_INFO"], "/", "{target}: {empty}");
    }
}

/// An upstream answering `101` to every upgrade request (then echoing), on any path, as `ws`
/// with no `path` does, and anything else with `200`: the request's bytes as it read them
/// (a chunked body to its end), then `END`. Its port.
fn upgrading_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let Some(head) = read_head(&mut s) else {
                    return;
                };
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if text.contains("\r\nupgrade: websocket") {
                    let _ = s.write_all(
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\n\r\n",
                    );
                    let _ = std::io::copy(&mut s.try_clone().unwrap(), &mut s);
                } else {
                    let mut request = head.clone();
                    if text.contains("\r\ntransfer-encoding: chunked") {
                        let body_end = |r: &[u8]| {
                            let body = &r[head.len()..];
                            body.ends_with(b"\r\n\r\n")
                                && (body.starts_with(b"0\r\n")
                                    || body.windows(5).any(|w| w == b"\r\n0\r\n"))
                        };
                        let mut byte = [0u8; 1];
                        while !body_end(&request) {
                            if !matches!(std::io::Read::read(&mut s, &mut byte), Ok(1)) {
                                return;
                            }
                            request.push(byte[0]);
                        }
                    }
                    request.extend_from_slice(b"END");
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        request.len()
                    );
                    let _ = s.write_all(&request);
                }
            });
        }
    });
    port
}

#[test]
fn an_open_path_never_becomes_a_tunnel_an_idle_one_closes_trailers_are_clean() {
    let pki = Pki::new();
    let dir = Dir(std::env::temp_dir().join(format!("certauth-attack-ws-{}", std::process::id())));
    let (_certauth, port) = certauth(&pki, &dir, &[], upgrading_upstream());
    let upgrade = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n"
        )
    };
    // Without a certificate, on the open path: the upstream sees a plain request. (A tunnel
    // would outlive the connection's head deadline, shedding and --max-connections slot.)
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(&pki, None)).unwrap();
    tls.write_all(upgrade("/health").as_bytes()).unwrap();
    let open = until_end(&mut tls);
    assert!(open.starts_with("HTTP/1.1 200 "), "{open}");
    assert!(
        !open.to_ascii_lowercase().contains("\r\nupgrade:"),
        "{open}"
    );
    // The trusted client's WebSocket still goes through, and echoes.
    let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    tls.write_all(upgrade("/ws").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\n") {
        let n = std::io::Read::read(&mut tls, &mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let frame = suite::client_text_frame("ping");
    tls.write_all(&frame).unwrap();
    let mut echo = vec![0u8; frame.len()];
    std::io::Read::read_exact(&mut tls, &mut echo).unwrap();
    assert_eq!(echo, frame);
    // Then idle: closed with 1001 after --websocket-idle-timeout, as certauth's own are (a
    // tunnel nobody uses would otherwise hold its connection and the upstream's for ever).
    let rest = suite::read_to_close(&mut tls);
    assert_eq!(rest, [0x88, 0x02, 0x03, 0xe9], "{rest:?}");

    // Trailers: a server may merge them into the headers, so they lose what the head would.
    let mut tls = suite::connect(addr, suite::tls_client(&pki, None)).unwrap();
    tls.write_all(
        b"POST /health HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\
Trailer: Client-Cert, X-Forwarded-For, X-Checksum\r\n\r\n3\r\nabc\r\n0\r\nClient-Cert: :c3Bvb2Zk:\r\n\
X-Forwarded-For: 6.6.6.6\r\nX-Checksum: 1\r\n\r\n",
    )
    .unwrap();
    let seen = until_end(&mut tls).to_ascii_lowercase();
    assert!(seen.contains("\r\nx-checksum: 1\r\n"), "{seen}");
    assert!(
        !seen.contains(":c3Bvb2Zk:".to_ascii_lowercase().as_str()),
        "{seen}"
    );
    assert!(!seen.contains("6.6.6.6"), "{seen}");
}

/// A relayed WebSocket stopped in the middle of a frame, both ways (the upstream echoes
/// the half frame), is still closed once idle: a close frame cannot follow half a frame,
/// so the tunnel is cut a moment after --websocket-idle-timeout (1 s here) instead of
/// waiting for the frame's end for ever (attack review s5, finding 2; without the cut this
/// upstream's own 10 s read timeout ends it).
#[test]
fn a_tunnel_stopped_mid_frame_is_cut_when_idle() {
    let pki = Pki::new();
    let dir = Dir(std::env::temp_dir().join(format!("certauth-attack-mid-{}", std::process::id())));
    let (_certauth, port) = certauth(&pki, &dir, &[], upgrading_upstream());
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    tls.write_all(suite::UPGRADE.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\n") {
        let n = std::io::Read::read(&mut tls, &mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // A masked text frame announcing 100 bytes, of which 10 are sent.
    let half = [&[0x81, 0x80 | 100, 1, 2, 3, 4][..], &[b'x'; 10]].concat();
    tls.write_all(&half).unwrap();
    tls.flush().unwrap();
    let started = Instant::now();
    let rest = suite::read_to_close(&mut tls);
    let took = started.elapsed();
    assert!(
        rest.starts_with(&half),
        "the half frame is relayed: {rest:?}"
    );
    assert!(
        !rest[half.len()..].starts_with(&[0x88]),
        "no close frame after half a frame: {rest:?}"
    );
    assert!(
        took < Duration::from_secs(6),
        "cut after {took:?}, not at the idle timeout"
    );
}

/// Once a tunnel is closing, the frame under way has --upstream-tunnel-close-timeout (1 s)
/// from then to end, however its bytes trickle: the wait was counted from the last byte,
/// so a byte every 400 ms inside a frame (echoed by the upstream: both directions
/// trickling) kept a closing tunnel open for as long as it went on (attack review s6, C5).
#[test]
fn a_closing_tunnel_trickled_inside_a_frame_is_cut_on_time() {
    let pki = Pki::new();
    let dir =
        Dir(std::env::temp_dir().join(format!("certauth-attack-trickle-{}", std::process::id())));
    let (_certauth, port) = certauth(&pki, &dir, &[], upgrading_upstream());
    let mut tls = upgraded(&pki, port);
    // A masked binary frame announcing 65,535 bytes, of which 10 are sent; then silence
    // past --websocket-idle-timeout (1 s): the tunnel starts closing.
    let started = Instant::now();
    let half = [&[0x82, 0x80 | 126, 0xff, 0xff, 1, 2, 3, 4][..], &[b'x'; 10]].concat();
    tls.write_all(&half).unwrap();
    tls.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1300));
    // A byte every 400 ms, for up to 10 s: the frame never ends.
    tls.sock
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut closed = None;
    while closed.is_none() && started.elapsed() < Duration::from_secs(12) {
        if tls.write_all(b"y").and_then(|()| tls.flush()).is_err() {
            closed = Some(started.elapsed());
            break;
        }
        match std::io::Read::read(&mut tls, &mut buf) {
            Ok(0) => closed = Some(started.elapsed()),
            Err(e)
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                closed = Some(started.elapsed());
            }
            _ => {}
        }
    }
    let closed = closed.expect("the closing tunnel was never cut while its frame trickled");
    // Idle 1 s, then 1 s for the frame, then 1 s for the other direction: about 3 s.
    assert!(closed < Duration::from_secs(6), "cut only after {closed:?}");
}

/// A frame under way when certauth drains (SIGTERM) may go on for the grace period: it was
/// cut a second after SIGTERM, whatever --grace said, losing an upload in progress (attack
/// review s7, N3). Once it ends, both sides get the 1001 close.
#[test]
fn a_frame_under_way_at_sigterm_has_the_grace_period() {
    let (sent, echoed) = a_frame_across_sigterm("grace", upgrading_upstream());
    // The upstream echoes the frame's bytes as sent (masked), whole; then certauth closes
    // with 1001 (unmasked, to the client).
    assert!(
        echoed.starts_with(&sent),
        "the frame was cut: {} of {} bytes came back",
        echoed.len(),
        sent.len()
    );
    assert_eq!(
        echoed.get(sent.len()..sent.len() + 4),
        Some(&[0x88, 0x02, 0x03, 0xe9][..]),
        "a 1001 close after the frame"
    );
}

/// Through certauth (`--grace 8`) to `upstream`, upgraded: a masked binary frame of 100
/// bytes, 10 of them sent, SIGTERM, the other 90 sent 2.5 s later; what was sent, and what
/// came back to the close.
fn a_frame_across_sigterm(tag: &str, upstream: u16) -> (Vec<u8>, Vec<u8>) {
    let pki = Pki::new();
    let dir =
        Dir(std::env::temp_dir().join(format!("certauth-attack-{tag}-{}", std::process::id())));
    let (certauth, port) = certauth(&pki, &dir, &["--grace", "8"], upstream);
    let mut tls = upgraded(&pki, port);
    let header = [0x82, 0x80 | 100, 1, 2, 3, 4];
    tls.write_all(&[&header[..], &[b'x'; 10]].concat()).unwrap();
    tls.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let term = Command::new("kill")
        .args(["-TERM", &certauth.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    std::thread::sleep(Duration::from_millis(2500));
    // The connection is still open for the rest of the frame.
    tls.write_all(&[b'y'; 90]).unwrap();
    tls.flush().unwrap();
    let back = suite::read_to_close(&mut tls);
    ([&header[..], &[b'x'; 10], &[b'y'; 90]].concat(), back)
}

/// A TLS connection to certauth on `port` as the trusted client, upgraded to WebSocket.
fn upgraded(pki: &Pki, port: u16) -> suite::Tls {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(pki, Some(&pki.trusted))).unwrap();
    tls.write_all(suite::UPGRADE.as_bytes()).unwrap();
    let got = response_head(&mut tls);
    assert!(got.starts_with("HTTP/1.1 101 "), "{got}");
    tls
}

/// An upstream that switches to WebSocket, then only reads (sends nothing): its receiver
/// gets how many bytes it read before its peer closed.
fn sinking_upstream() -> (u16, std::sync::mpsc::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (read, count) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        if read_head(&mut s).is_none() {
            return;
        }
        let _ = s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        );
        let mut total = 0;
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut s, &mut buf) {
            total += n;
        }
        let _ = read.send(total);
    });
    (port, count)
}

/// The same when only the client sends: the upstream-to-client direction, idle at a frame
/// boundary, closes at once, and the upload used to get a second more (attack review s8,
/// R2); it has the grace period.
#[test]
fn an_upload_under_way_at_sigterm_has_the_grace_period() {
    let (upstream, read) = sinking_upstream();
    let _ = a_frame_across_sigterm("upload", upstream);
    let got = read.recv_timeout(Duration::from_secs(15)).unwrap();
    assert!(
        got >= 106,
        "the upload was cut: the upstream read {got} of 106 bytes"
    );
}

/// An upstream that answers every request at once, before reading its body, and keeps its
/// connections open without reading from them (a 404 to an unrouted POST does the same):
/// its port, and how many connections it has accepted.
fn answering_early_upstream() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut s) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                if read_head(&mut s).is_none() {
                    return;
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
                std::thread::sleep(Duration::from_secs(10));
            });
        }
    });
    (port, accepted)
}

/// One response (head and `Content-Length` body) read from `tls`.
fn one_response(tls: &mut suite::Tls) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1];
    let complete = |got: &[u8]| {
        let text = String::from_utf8_lossy(got).to_ascii_lowercase();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        body.len() >= length
    };
    while !complete(&got) {
        match std::io::Read::read(tls, &mut buf) {
            Ok(1) => got.push(buf[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A request's places are held while its body is still on its way to the upstream, not only
/// until the response ends: an upstream that answers first keeps the connection busy, and
/// requests that freed their places there opened upstream connections past
/// `--upstream-max-connections` (attack review s5, finding 3: 252 with a cap of 64).
#[test]
fn a_body_still_going_upstream_keeps_its_place() {
    let pki = Pki::new();
    let dir =
        Dir(std::env::temp_dir().join(format!("certauth-attack-body-{}", std::process::id())));
    let (upstream, accepted) = answering_early_upstream();
    let caps = ["--upstream-max-connections", "2", "--upstream-timeout", "2"];
    let (_certauth, port) = certauth(&pki, &dir, &caps, upstream);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // Four connections, each a POST whose body has only begun: the upstream answers the
    // first two at once; the others wait for a place and get 503 once the timeout passes.
    let mut answers = Vec::new();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        tls.write_all(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n0123456789",
        )
        .unwrap();
        tls.flush().unwrap();
        answers.push(one_response(&mut tls));
        held.push(tls);
    }
    for answer in &answers[..2] {
        assert!(
            answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("early"),
            "{answer}"
        );
    }
    for answer in &answers[2..] {
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answers:?}");
        assert!(answer.contains("most requests in flight (2)"), "{answer}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "upstream connections");
    // The bodies end (their connections close): the places are free again.
    drop(held);
    let answer = raw(
        &pki,
        port,
        Some(&pki.trusted),
        "GET /after HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

/// An upstream that answers `/slow` with its head at once and its body 1.5 s later (a
/// handler that sends its head, then works), `/late` with its head after 0.5 s and its
/// body 2 s after that, any other path at once.
fn head_first_upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let Some(head) = read_head(&mut s) else {
                    return;
                };
                if head.starts_with(b"GET /late ") {
                    std::thread::sleep(Duration::from_millis(500));
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n",
                );
                if head.starts_with(b"GET /late ") {
                    std::thread::sleep(Duration::from_millis(2000));
                    let _ = s.write_all(b"late");
                } else if head.starts_with(b"GET /slow ") {
                    std::thread::sleep(Duration::from_millis(1500));
                    let _ = s.write_all(b"slow");
                } else {
                    let _ = s.write_all(b"fast");
                }
            });
        }
    });
    port
}

/// A client that leaves once the response head is in keeps its place until the upstream's
/// body ends (read and dropped, at most the response timeout): closing the upstream
/// connection freed it while the upstream still worked (attack review s5, finding 1: one
/// connection without a certificate kept 16 workers busy under an open share of 8).
#[test]
fn a_client_gone_after_the_head_keeps_its_place_until_the_body_ends() {
    let pki = Pki::new();
    let dir =
        Dir(std::env::temp_dir().join(format!("certauth-attack-head-{}", std::process::id())));
    // Two places (the smallest cap that leaves `--open` a share), both taken by clients
    // that leave once their head is in.
    let caps = ["--upstream-max-connections", "2", "--upstream-timeout", "5"];
    let (_certauth, port) = certauth(&pki, &dir, &caps, head_first_upstream());
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..2 {
        let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        tls.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        tls.flush().unwrap();
        let got = response_head(&mut tls);
        assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
    }
    // Gone, their bodies still to come: the next request waits for a place.
    let started = Instant::now();
    let answer = raw(
        &pki,
        port,
        Some(&pki.trusted),
        "GET /fast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let waited = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("fast"),
        "{answer}"
    );
    assert!(
        waited >= Duration::from_millis(1000),
        "the place was free after {waited:?}"
    );
}

/// A request without a certificate whose drain stops short (here `--upstream-max-drain-bytes
/// 0`: the upstream connection closes at once) keeps its places until the response timeout:
/// the upstream may work on for a closed connection, and freeing them let clients without a
/// certificate keep 8 handlers busy under an open share of 2 (attack review s6, C2; C3 the
/// same with an upstream sending the limit before it works).
#[test]
fn an_open_request_whose_drain_stops_short_keeps_its_place_until_the_timeout() {
    let pki = Pki::new();
    let dir =
        Dir(std::env::temp_dir().join(format!("certauth-attack-short-{}", std::process::id())));
    // Four places: an open share of two, both taken by clients without a certificate that
    // leave once their head is in.
    let caps = [
        "--upstream-max-connections",
        "4",
        "--upstream-timeout",
        "4",
        "--upstream-max-drain-bytes",
        "0",
        "--open",
        "/slow",
        "--open",
        "/fast",
    ];
    let (_certauth, port) = certauth(&pki, &dir, &caps, head_first_upstream());
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut gone = Vec::new();
    for _ in 0..2 {
        let mut tls = suite::connect(addr, suite::tls_client(&pki, None)).unwrap();
        tls.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        tls.flush().unwrap();
        let got = response_head(&mut tls);
        assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
        gone.push(tls);
    }
    drop(gone);
    // Their places stay taken: the next open request waits (then, its own wait being the
    // same timeout, may get 503), instead of reaching the upstream at once.
    let started = Instant::now();
    let answer = raw(
        &pki,
        port,
        None,
        "GET /fast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let waited = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 503 ") || waited >= Duration::from_secs(2),
        "answered after {waited:?}: {answer}"
    );
    // A client with a certificate is not held up by the open share.
    let answer = raw(
        &pki,
        port,
        Some(&pki.trusted),
        "GET /fast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

/// A client that leaves before the response head keeps its places until the upstream's
/// body ends too: the exchange finishing in a task of its own dropped the response raw,
/// which freed them at the head (the fourth attack review: 17 requests at the upstream
/// under an open share of 8, from one connection without a certificate).
#[test]
fn a_client_gone_before_the_head_keeps_its_place_until_the_body_ends() {
    let pki = Pki::new();
    let dir = Dir(std::env::temp_dir().join(format!("certauth-attack-pre-{}", std::process::id())));
    let caps = ["--upstream-max-connections", "2", "--upstream-timeout", "5"];
    let (_certauth, port) = certauth(&pki, &dir, &caps, head_first_upstream());
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..2 {
        let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        tls.write_all(b"GET /late HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        tls.flush().unwrap();
        // Gone once the request is upstream (its head comes 0.5 s after it, its body 2 s
        // after that).
        std::thread::sleep(Duration::from_millis(150));
    }
    let started = Instant::now();
    let answer = raw(
        &pki,
        port,
        Some(&pki.trusted),
        "GET /fast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let waited = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("fast"),
        "{answer}"
    );
    assert!(
        waited >= Duration::from_millis(1500),
        "the place was free after {waited:?}"
    );
}

/// An upstream that switches to WebSocket, then pushes frames and reads nothing; its sender
/// gets `true` once a write fails (certauth closed the connection).
fn pushing_upstream() -> (u16, std::sync::mpsc::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (ended, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        if read_head(&mut s).is_none() {
            return;
        }
        let _ = s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        );
        // Binary frames of 16 KiB, until a write fails (bounded: 60 s of pushing).
        let frame = [&[0x82, 126, 0x40, 0x00][..], &[b'u'; 16384]].concat();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if s.write_all(&frame).is_err() {
                let _ = ended.send(true);
                return;
            }
        }
    });
    (port, seen)
}

/// A relayed WebSocket blocked writing both ways (a client and an upstream that both send
/// and read nothing) is still ended by the idle clock: each direction waited in its write,
/// where neither the idle timeout nor the close could reach it (the fourth attack review:
/// still open at 40 s with a 10 s idle timeout; only the grace period ended it).
#[test]
fn a_tunnel_blocked_both_ways_ends_when_idle() {
    let pki = Pki::new();
    let dir = Dir(std::env::temp_dir().join(format!("certauth-attack-blk-{}", std::process::id())));
    let (upstream, upstream_ended) = pushing_upstream();
    let (_certauth, port) = certauth(&pki, &dir, &[], upstream);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    tls.write_all(suite::UPGRADE.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(std::io::Read::read(&mut tls, &mut buf).unwrap(), 1);
        got.push(buf[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // Send masked frames, reading nothing, until the writes block (at most 256 MiB).
    tls.sock
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let frame = [
        &[0x82, 0x80 | 126, 0x40, 0x00, 1, 2, 3, 4][..],
        &[b'c'; 16384],
    ]
    .concat();
    let mut blocked = false;
    for _ in 0..16384 {
        if tls.write_all(&frame).and_then(|()| tls.flush()).is_err() {
            blocked = true;
            break;
        }
    }
    assert!(blocked, "the client's writes never blocked");
    // Nothing moves either way: after --websocket-idle-timeout (1 s) the tunnel ends, and
    // the upstream's blocked write fails.
    let ended = upstream_ended.recv_timeout(Duration::from_secs(8));
    assert_eq!(ended, Ok(true), "the blocked tunnel was not ended");
    drop(tls);
}

/// A response's head, read byte by byte (nothing of its body).
fn response_head(tls: &mut suite::Tls) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = std::io::Read::read(tls, &mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.push(buf[0]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A response read up to the upstream's `END`.
fn until_end(tls: &mut suite::Tls) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"END") {
        match std::io::Read::read(tls, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// An upstream that answers one request with the head of a 256 MiB body, then writes it in
/// 64 KiB pieces until a write fails (certauth closed the connection) or all is written;
/// its receiver gets how many bytes of body it wrote. `padded`: the body is chunked, each
/// chunk one byte of data behind a chunk size padded with 4,096 zeros (attack review s6,
/// C4: counted as data, 1 MiB of it is 4 GiB on the wire).
fn downloading_upstream(padded: bool) -> (u16, std::sync::mpsc::Receiver<usize>) {
    const SIZE: usize = 256 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (written, count) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        if read_head(&mut s).is_none() {
            return;
        }
        let (head, piece) = if padded {
            let chunk = [&[b'0'; 4096][..], b"1\r\nd\r\n"].concat();
            let piece: Vec<u8> = chunk.repeat(16);
            ("Transfer-Encoding: chunked".to_owned(), piece)
        } else {
            (format!("Content-Length: {SIZE}"), vec![b'd'; 64 * 1024])
        };
        let head = format!("HTTP/1.1 200 OK\r\n{head}\r\n\r\n");
        if s.write_all(head.as_bytes()).is_err() {
            return;
        }
        let mut sent = 0;
        while sent + piece.len() <= SIZE && s.write_all(&piece).is_ok() {
            sent += piece.len();
        }
        if padded && sent + piece.len() > SIZE {
            let _ = s.write_all(b"0\r\n\r\n");
        }
        let _ = written.send(sent);
    });
    (port, count)
}

/// A client that leaves once the head of a large download is in: certauth reads and drops
/// at most `--upstream-max-drain-bytes` (`Limits::max_drain_bytes`, 1 MiB) of the rest,
/// then closes the upstream connection, instead of pulling the whole download nobody
/// receives (the fourth attack review: 37 GiB pulled for 65 KB sent by clients resetting
/// after each head). What the upstream writes past that is what the two sockets' buffers
/// hold. The limit counts the bytes off the socket, framing included: a body of padded
/// chunk sizes (4,096 zeros a byte of data) costs what it sends (the sixth review pulled
/// 107–210 MB a leaving client when data alone was counted). With a limit past the body's
/// size it is read to its end.
#[test]
fn a_download_whose_client_left_is_read_at_most_the_drain_limit() {
    let pki = Pki::new();
    // Time enough to pull all of it (256 MiB over loopback) were there no byte limit.
    let default = ["--upstream-timeout", "30"];
    let whole = [
        "--upstream-timeout",
        "30",
        "--upstream-max-drain-bytes",
        "314572800",
    ];
    for (extra, tag, padded) in [
        (&default[..], "default", false),
        (&default[..], "padded", true),
        (&whole[..], "whole", false),
    ] {
        let dir =
            Dir(std::env::temp_dir()
                .join(format!("certauth-attack-dl-{tag}-{}", std::process::id())));
        let (upstream, written) = downloading_upstream(padded);
        let (_certauth, port) = certauth(&pki, &dir, extra, upstream);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        tls.write_all(b"GET /download HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        tls.flush().unwrap();
        let got = response_head(&mut tls);
        assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
        drop(tls);
        let sent = written
            .recv_timeout(Duration::from_secs(25))
            .expect("the upstream's writes neither failed nor ended");
        if tag != "whole" {
            assert!(
                sent < 64 << 20,
                "the upstream wrote {} MiB ({tag}) for a client that left after the head",
                sent >> 20
            );
        } else {
            assert_eq!(sent, 256 << 20, "the drain stopped before the body's end");
        }
    }
}
