//! `certauth serve --upstream` (issue 32), from the outside: a real Node application behind
//! it (`tests/node/upstream.js`: http, ws, socket.io, trusting RFC 9440 `Client-Cert`) and
//! Python's `http.server`; real clients (curl over HTTP/1.1 and HTTP/2, Node's `ws`,
//! socket.io-client over polling and WebSocket, raw TLS for malformed requests). One
//! certauth per upstream, shared by every check against it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use certauth_testkit::suite::{self, Pki};
use certauth_testkit::{Issued, proxies};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("certauth-up-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, contents: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when the test ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// `node upstream.js WHERE` (a port or a socket path), once it listens.
fn node_upstream(where_: &str) -> Proc {
    let mut child = Command::new("node")
        .arg(suite::node_peers_dir().join("upstream.js"))
        .arg(where_)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "listening");
    Proc(child)
}

/// The PKI's files, and the client identities as (cert, key) paths.
struct Files {
    ca: String,
    cert: String,
    key: String,
    server_ca: String,
    trusted: (String, String),
    denied: (String, String),
}

fn files(pki: &Pki, dir: &Dir) -> Files {
    let pair = |name: &str, i: &Issued| {
        (
            dir.file(&format!("{name}.pem"), i.pem().as_bytes()),
            dir.file(&format!("{name}.key"), i.key_pem().as_bytes()),
        )
    };
    Files {
        ca: dir.file("ca.pem", pki.root.cert.pem().as_bytes()),
        cert: dir.file("server.pem", pki.server.pem().as_bytes()),
        key: dir.file("server.key", pki.server.key_pem().as_bytes()),
        server_ca: dir.file("server-ca.pem", pki.server_root.cert.pem().as_bytes()),
        trusted: pair("trusted", &pki.trusted),
        denied: pair("denied", &pki.denied),
    }
}

/// `certauth serve --upstream URL` letting `trusted-client` in, with `extra` arguments.
fn certauth(f: &Files, url: &str, extra: &[&str]) -> (Proc, u16) {
    // Its log, shown if it does not start (a usage error).
    let log =
        std::path::Path::new(&f.ca).with_file_name(format!("certauth-{}.log", proxies::next_id()));
    let (child, port) = proxies::start_certauth(
        Command::new(env!("CARGO_BIN_EXE_certauth"))
            .args(["serve", "--ca", &f.ca, "--cert", &f.cert, "--key", &f.key])
            .args(["--allow-cn", "trusted-client", "--upstream", url])
            .args(extra),
        &log,
    );
    (Proc(child), port)
}

/// curl against `https://localhost:PORT{path}` as `who`: (status code, body, exit status).
fn curl(
    f: &Files,
    port: u16,
    who: Option<&(String, String)>,
    args: &[&str],
    path: &str,
) -> (String, Vec<u8>, i32) {
    let mut c = Command::new("curl");
    c.args(["-s", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(["--cacert", &f.server_ca]);
    if let Some((cert, key)) = who {
        c.args(["--cert", cert, "--key", key]);
    }
    let out = c
        .args(args)
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .unwrap();
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&body[split + 1..]).into_owned();
    body.truncate(split);
    (code, body, out.status.code().unwrap_or(-1))
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// What the upstream has received (asked directly, not through certauth).
fn seen(upstream_port: u16) -> Vec<String> {
    let mut s = TcpStream::connect(("127.0.0.1", upstream_port)).unwrap();
    s.write_all(b"GET /seen HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    json(body.as_bytes())
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["url"].as_str().unwrap().to_owned())
        .collect()
}

fn node_client(
    script: &str,
    url: &str,
    f: &Files,
    who: Option<&(String, String)>,
    env: &[(&str, &str)],
) -> String {
    let mut c = Command::new("node");
    c.arg(suite::node_peers_dir().join(script))
        .arg(url)
        .arg(&f.server_ca);
    if let Some((cert, key)) = who {
        c.args([cert, key]);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out: Output = c.output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `request` over a new TLS connection as the trusted client; what came back before
/// the close (bounded by the read timeout).
fn raw(pki: &Pki, port: u16, request: &[u8]) -> String {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(pki, Some(&pki.trusted))).unwrap();
    let _ = tls.write_all(request);
    let _ = tls.flush();
    String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned()
}

/// The front door over the Node application: identity, spoofing, refusals, open paths,
/// hop-by-hop headers, HTTP/2, WebSocket and Socket.IO, 64 MiB both ways with bounded
/// memory, 504, a dying upstream, smuggling attempts, metrics, then 502 once it is down.
#[test]
fn front_door_over_node() {
    let pki = Pki::new();
    let dir = Dir::new("node");
    let f = files(&pki, &dir);
    let up_port = free_port();
    let mut upstream = Some(node_upstream(&up_port.to_string()));
    let metrics = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics}");
    let (server, port) = certauth(
        &f,
        &format!("http://127.0.0.1:{up_port}"),
        &[
            "--open",
            "/open",
            "--upstream-timeout",
            "1",
            "--metrics",
            &metrics_addr,
        ],
    );
    let trusted = Some(&f.trusted);
    let trusted_b64 = base64::engine::general_purpose::STANDARD.encode(&pki.trusted.der);

    // Identity arrives, equal to the DER presented; spoofed identity headers (any case) and
    // hop-by-hop headers do not; X-Forwarded-For and -Proto are set; Host is kept.
    let spoof = [
        "-H",
        "Client-Cert: :AAAA:",
        "-H",
        "CLIENT-CERT-CHAIN: :AAAA:",
        "-H",
        "x-forwarded-client-cert: Hash=00;Subject=\"CN=admin\"",
        "-H",
        "X-SSL-Client-Cert: forged",
        "-H",
        "Connection: x-hop",
        "-H",
        "X-Hop: 1",
        "-H",
        "Keep-Alive: timeout=99",
        "-H",
        "X-Forwarded-For: 10.9.9.9",
    ];
    for version in ["--http1.1", "--http2"] {
        let mut args = spoof.to_vec();
        args.push(version);
        args.extend(["-D", "-"]);
        let (code, body, _) = curl(&f, port, trusted, &args, "/headers?x=1");
        assert_eq!(code, "200", "{version}");
        let text = String::from_utf8_lossy(&body);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        // The upstream's own hop-by-hop header stops at certauth.
        assert!(
            !head.to_ascii_lowercase().contains("x-upstream-hop"),
            "{head}"
        );
        let got = json(body.as_bytes());
        let h = &got["headers"];
        assert_eq!(
            h["client-cert"],
            format!(":{trusted_b64}:"),
            "{version}: {h}"
        );
        for gone in [
            "client-cert-chain",
            "x-forwarded-client-cert",
            "x-ssl-client-cert",
            "keep-alive",
        ] {
            assert!(h.get(gone).is_none(), "{version}: {gone} arrived: {h}");
        }
        // HTTP/2 has no `Connection` (curl leaves it out): there `X-Hop` is end to end.
        if version == "--http1.1" {
            assert!(h.get("x-hop").is_none(), "x-hop arrived: {h}");
        }
        assert_eq!(h["x-forwarded-for"], "10.9.9.9, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["host"], format!("localhost:{port}"));
        assert_eq!(got["url"], "/headers?x=1");
    }

    // Address headers the client sent (any case, `_` spellings) do not arrive, and
    // certauth writes no `Forwarded`; two cookie fields (HTTP/2 sends them as two) arrive
    // as one `Cookie` line, joined with "; ".
    let forged = [
        "Forwarded: for=10.6.6.6;proto=http;host=admin.example",
        "X-Real-IP: 10.6.6.6",
        "X_Real_IP: 10.6.6.6",
        "x-forwarded-host: admin.example",
        "X-Forwarded-Port: 80",
        "X-Forwarded-Prefix: /admin",
        "X-Original-URL: /admin",
        "X-Rewrite-URL: /admin",
        "X-Client-IP: 10.6.6.6",
        "True-Client-IP: 10.6.6.6",
        "CF-Connecting-IP: 10.6.6.6",
        "X-Cluster-Client-IP: 10.6.6.6",
        "Cookie: a=1",
        "Cookie: b=2",
    ];
    for version in ["--http2", "--http1.1"] {
        let mut args = vec![version];
        for h in &forged {
            args.extend(["-H", h]);
        }
        let (code, body, _) = curl(&f, port, trusted, &args, "/headers");
        assert_eq!(code, "200", "{version}");
        let got = json(&body);
        let raw: Vec<&str> = got["rawHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let names: Vec<String> = raw
            .iter()
            .step_by(2)
            .map(|n| n.to_ascii_lowercase())
            .collect();
        for h in &forged[..12] {
            let name = h.split_once(':').unwrap().0.to_ascii_lowercase();
            assert!(!names.contains(&name), "{version}: {name} arrived: {raw:?}");
        }
        assert!(
            !names.iter().any(|n| n == "forwarded"),
            "{version}: {raw:?}"
        );
        let cookies: Vec<&str> = raw
            .chunks(2)
            .filter(|p| p[0].eq_ignore_ascii_case("cookie"))
            .map(|p| p[1])
            .collect();
        assert_eq!(cookies, ["a=1; b=2"], "{version}: {raw:?}");
        assert_eq!(got["headers"]["x-forwarded-for"], "127.0.0.1", "{version}");
    }

    // Refused clients get certauth's answer; the upstream never sees them.
    let before = seen(up_port).len();
    assert_eq!(curl(&f, port, None, &[], "/headers").0, "401");
    let denied = curl(&f, port, Some(&f.denied), &[], "/headers").0;
    assert!(denied == "401" || denied == "403", "{denied}");
    assert_eq!(curl(&f, port, None, &["--http2"], "/headers").0, "401");
    assert_eq!(
        node_client(
            "ws-client.js",
            &format!("wss://localhost:{port}/ws"),
            &f,
            None,
            &[]
        ),
        "STATUS HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(
        seen(up_port).len(),
        before,
        "a refused client reached the upstream"
    );

    // An open path: through without a certificate, without identity even when spoofed or
    // when the client has one; a path that only looks open is decided.
    for who in [None, trusted] {
        let (code, body, _) = curl(&f, port, who, &["-H", "Client-Cert: :AAAA:"], "/open/x");
        assert_eq!(code, "200");
        assert!(json(&body)["headers"].get("client-cert").is_none());
    }
    assert_eq!(
        curl(&f, port, None, &["--path-as-is"], "/open/../headers").0,
        "401"
    );
    assert_eq!(curl(&f, port, None, &[], "/openx").0, "401");

    // WebSocket and Socket.IO pass through; the application reads the forwarded identity.
    assert_eq!(
        node_client(
            "ws-client.js",
            &format!("wss://localhost:{port}/ws"),
            &f,
            trusted,
            &[]
        ),
        "MESSAGE Echo: hello (CN=trusted-client)"
    );
    for transports in ["polling", "websocket", "polling,websocket"] {
        assert_eq!(
            node_client(
                "sio-client.js",
                &format!("https://localhost:{port}"),
                &f,
                trusted,
                &[("SIO_TRANSPORTS", transports)]
            ),
            "MESSAGE Echo: hello",
            "{transports}"
        );
    }

    // 64 MiB up and down, intact, with the certauth process's memory bounded. (Made,
    // hashed and compared with native tools and memcpy/memcmp: byte loops in a debug
    // build would take most of the test's time.)
    const SIZE: usize = 64 << 20;
    let upload_path = dir.path("upload.bin");
    std::fs::write(&upload_path, pattern(SIZE, 253)).unwrap();
    let (code, body, _) = curl(
        &f,
        port,
        trusted,
        &[
            "--data-binary",
            &format!("@{upload_path}"),
            "-H",
            "Content-Type: application/octet-stream",
        ],
        "/upload",
    );
    assert_eq!(code, "200");
    let got = json(&body);
    assert_eq!(got["bytes"], SIZE);
    let sha = Command::new("sha256sum")
        .arg(&upload_path)
        .output()
        .unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout);
    assert_eq!(got["sha256"], sha.split_whitespace().next().unwrap());
    let download_path = dir.path("download.bin");
    let (code, _, _) = curl(
        &f,
        port,
        trusted,
        &["-o", &download_path],
        &format!("/download?bytes={SIZE}"),
    );
    assert_eq!(code, "200");
    assert!(std::fs::read(&download_path).unwrap() == pattern(SIZE, 251));
    let peak = peak_rss_kib(server.0.id());
    assert!(
        peak < 48 * 1024,
        "certauth's peak RSS {peak} KiB: bodies are buffered"
    );

    // Upstream slow: 504 naming the cause. Upstream dying mid-response: the client sees a
    // truncated response, not a complete one.
    let (code, body, _) = curl(&f, port, trusted, &[], "/slow?ms=3000");
    assert_eq!(code, "504");
    assert!(String::from_utf8_lossy(&body).contains("did not answer within 1s"));
    let (_, body, exit) = curl(&f, port, trusted, &[], "/die");
    assert_ne!(exit, 0, "a truncated response passed for complete");
    assert!(body.len() < 1_000_000);

    // Smuggling: ambiguous framing is refused with 400 (or the connection closed) and
    // neither the request nor what it hides reaches the upstream.
    let before = seen(up_port);
    let hidden = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let cases = [
        format!(
            "POST /s1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}",
            5 + hidden.len()
        ),
        format!(
            "POST /s2 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n{hidden}"
        ),
        format!(
            "POST /s3 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{hidden}",
            hidden.len()
        ),
        format!(
            "POST /s4 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nX-Folded: a\r\n  Transfer-Encoding: chunked\r\n\r\n{hidden}"
        ),
        format!(
            "POST /s5 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{hidden}"
        ),
        format!(
            "POST /s6 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{hidden}"
        ),
        format!(
            "CONNECT 127.0.0.1:{up_port} HTTP/1.1\r\nHost: 127.0.0.1:{up_port}\r\n\r\n{hidden}"
        ),
        // Empty lines first, which hyper skips (the thirteenth attack review: two of them
        // stopped the framing watch, and hyper served this one).
        format!(
            "\r\n\r\nPOST /s8 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n{hidden}"
        ),
        format!(
            "\n\n\r\nPOST /s9 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"
        ),
    ];
    for case in &cases {
        let answer = raw(&pki, port, case.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{case:?} got {answer:?}"
        );
    }
    // A bad chunk size: the head may have gone upstream with the body started, but the
    // request never completes there, the client gets 400, and nothing after the bad chunk
    // is read as a request.
    let answer = raw(&pki, port, format!("POST /s7 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{hidden}").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    let after = seen(up_port);
    let new: Vec<&String> = after[before.len()..].iter().collect();
    assert!(
        new.iter().all(|u| u.as_str() == "/s7"),
        "reached the upstream: {new:?}"
    );

    // A transfer coding besides chunked (RFC 9112 §6.1): 501, not forwarded as `chunked`
    // with its gzip dropped (the fifteenth attack review, I3).
    let before = seen(up_port);
    let gzip = "POST /s14 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let answer = raw(&pki, port, gzip.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 501"), "{answer:?}");
    let after = seen(up_port);
    assert_eq!(after.len(), before.len(), "reached the upstream: {after:?}");

    // More requests pipelined unanswered than the framing watch follows (64): the ones it
    // judged are served, the rest refused, an ambiguous one among them never forwarded.
    let before = seen(up_port);
    let mut wire = "GET /piped HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(70);
    wire.push_str(&format!(
        "POST /s10 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}"
    ));
    // (Read at once, as here, the 65th GET is the one refused; read in parts, the POST.)
    let answer = raw(&pki, port, wire.as_bytes());
    let served = answer.matches("HTTP/1.1 200").count();
    assert!(served >= 64, "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 400").count(), 1, "{answer}");
    let after = seen(up_port);
    let new: Vec<&String> = after[before.len()..].iter().collect();
    assert_eq!(new.len(), served, "{new:?}");
    assert!(new.iter().all(|u| u.as_str() == "/piped"), "{new:?}");

    // Where the watch loses the requests' boundaries (a head over its limits that hyper's
    // larger buffer takes; a chunked body hyper reads differently), the rest is refused
    // (the fourteenth attack review: it stopped, and a CL+TE request after got through).
    let before = seen(up_port);
    let smuggle = "POST /s12 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let flood = format!(
        "{}GET /s11 HTTP/1.1\r\nHost: localhost\r\n\r\n{smuggle}",
        "\r\n".repeat(17_000)
    );
    let answer = raw(&pki, port, flood.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert!(!answer.contains("200 OK"), "{answer:?}");
    let phantom = format!(
        "POST /s13 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\nGET /phantom HTTP/1.1\r\nHost: localhost\r\n\r\n{smuggle}"
    );
    let answer = raw(&pki, port, phantom.as_bytes());
    assert!(answer.matches("HTTP/1.1 ").count() <= 2, "{answer:?}");
    let after = seen(up_port);
    let new: Vec<&String> = after[before.len()..].iter().collect();
    assert!(new.iter().all(|u| u.as_str() == "/s13"), "{new:?}");

    // h2c smuggling: a client's h2c upgrade goes on as a plain request (no `Upgrade`, no
    // `HTTP2-Settings`), so no tunnel to the upstream's HTTP/2 can carry requests no
    // decision saw; and an upstream switching to anything but WebSocket is a 502.
    let h2c = "GET /headers HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let answer = raw(&pki, port, h2c.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // The JSON body names every header the upstream received.
    for gone in ["\"upgrade\"", "\"http2-settings\""] {
        assert!(
            !answer.to_ascii_lowercase().contains(gone),
            "{gone} reached the upstream: {answer}"
        );
    }
    let ws_to_h2c = "GET /h2c HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let answer = raw(&pki, port, ws_to_h2c.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer:?}");
    assert!(!answer.contains("tunnel:"), "{answer:?}");

    // Metrics: the upstream's statuses and latency.
    let mut s = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(
        text.contains("certauth_upstream_responses_total{code=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("certauth_upstream_responses_total{code=\"504\"}"),
        "{text}"
    );
    assert!(text.contains("certauth_upstream_seconds_count"), "{text}");

    // Upstream down: 502 naming the cause.
    drop(upstream.take());
    let (code, body, _) = curl(&f, port, trusted, &[], "/headers");
    assert_eq!(code, "502");
    assert!(String::from_utf8_lossy(&body).contains("unreachable (connection refused)"));
}

/// A `ws` client that sends "hello", prints the first message, then `CLOSE <code>` when
/// the connection closes (argv: URL CA CERT KEY).
const WS_HOLD: &str = "
const fs = require('fs'); const WebSocket = require('ws');
const [url, ca, cert, key] = process.argv.slice(1);
const ws = new WebSocket(url, { ca: fs.readFileSync(ca), cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
ws.on('open', () => ws.send('hello'));
ws.on('message', (m) => console.log('MESSAGE ' + m));
ws.on('close', (code) => { console.log('CLOSE ' + code); process.exit(0); });
ws.on('error', (e) => console.log('ERROR ' + e.message));
setTimeout(() => { console.log('TIMEOUT'); process.exit(1); }, 15000).unref();
";

/// `len` bytes, byte `i` being `i % modulus`, built by copying one period.
fn pattern(len: usize, modulus: usize) -> Vec<u8> {
    let period: Vec<u8> = (0..modulus).map(|i| u8::try_from(i).unwrap()).collect();
    let mut out = Vec::with_capacity(len + modulus);
    while out.len() < len {
        out.extend_from_slice(&period);
    }
    out.truncate(len);
    out
}

/// Over a Unix socket, with Envoy's XFCC: the identity arrives; SIGTERM during a slow
/// response lets it complete within the grace period and exits 0. Then Python's
/// `http.server` (HTTP/1.0, a new connection per request) behind another certauth.
#[test]
fn unix_socket_xfcc_sigterm_and_python() {
    let pki = Pki::new();
    let dir = Dir::new("unix");
    let f = files(&pki, &dir);
    let sock = dir.path("up.sock");
    let _upstream = node_upstream(&sock);
    let (mut server, port) = certauth(
        &f,
        &format!("unix:{sock}"),
        &["--forward-identity", "envoy", "--grace", "5"],
    );
    let (code, body, _) = curl(
        &f,
        port,
        Some(&f.trusted),
        &["-H", "X-Forwarded-Client-Cert: By=spoofed"],
        "/headers",
    );
    assert_eq!(code, "200");
    let xfcc = json(&body)["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!xfcc.contains("spoofed"), "{xfcc}");
    let config = certauth_core::ProxyHeaderConfig::preset(certauth_core::Preset::Envoy);
    let chain = config.decode(xfcc.as_bytes(), None).unwrap();
    assert_eq!(chain[0].as_ref(), pki.trusted.der.as_ref());
    assert!(xfcc.contains("Subject=\"CN=trusted-client\""), "{xfcc}");

    // SIGTERM while a WebSocket is open and a response is slow: the WebSocket is closed
    // with 1001 on both sides, the response completes, then certauth exits 0.
    let mut ws = Command::new("node")
        .current_dir(suite::node_peers_dir())
        .arg("-e")
        .arg(WS_HOLD)
        .arg(format!("wss://localhost:{port}/ws"))
        .args([&f.server_ca, &f.trusted.0, &f.trusted.1])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ws_out = BufReader::new(ws.stdout.take().unwrap());
    let mut line = String::new();
    ws_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "MESSAGE Echo: hello (CN=trusted-client)");
    let slow = {
        let f = files(&pki, &dir);
        std::thread::spawn(move || curl(&f, port, Some(&f.trusted), &[], "/slow?ms=1500"))
    };
    std::thread::sleep(Duration::from_millis(500));
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let (code, body, _) = slow.join().unwrap();
    assert_eq!((code.as_str(), &body[..]), ("200", &b"slow done\n"[..]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "certauth did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    line.clear();
    ws_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "CLOSE 1001");
    let _ = ws.wait();
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(b"GET /seen HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.contains("/ws-closed/1001"), "{text}");

    // Header mode behind a proxy (nginx's header, from 127.0.0.1) with --upstream on a
    // plain listener: the proxy's header is verified, removed, and the identity forwarded.
    let (behind, plain) = proxies::start_certauth(
        Command::new(env!("CARGO_BIN_EXE_certauth"))
            .args([
                "serve",
                "--ca",
                &f.ca,
                "--source",
                "nginx",
                "--trusted-proxy",
                "127.0.0.1",
            ])
            .args(["--upstream", &format!("unix:{sock}")]),
        &std::path::Path::new(&f.ca).with_file_name("certauth-behind.log"),
    );
    let _behind = Proc(behind);
    let escaped = |who: &Issued| -> String {
        who.pem()
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let mut s = TcpStream::connect(("127.0.0.1", plain)).unwrap();
    write!(
        s,
        "GET /headers HTTP/1.1\r\nHost: app\r\nX-SSL-Client-Cert: {}\r\nConnection: close\r\n\r\n",
        escaped(&pki.trusted)
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let h = json(text.split_once("\r\n\r\n").unwrap().1.as_bytes())["headers"].clone();
    let b64 = |who: &Issued| base64::engine::general_purpose::STANDARD.encode(&who.der);
    assert_eq!(h["client-cert"], format!(":{}:", b64(&pki.trusted)));
    assert!(h.get("x-ssl-client-cert").is_none(), "{h}");
    // One proxy connection carries many clients: each request's identity is its own, never
    // the one the connection forwarded before (the identity headers kept per connection
    // are keyed to the certificate).
    let mut s = TcpStream::connect(("127.0.0.1", plain)).unwrap();
    let clients = [&pki.trusted, &pki.denied, &pki.trusted];
    for (i, who) in clients.iter().enumerate() {
        let close = if i + 1 == clients.len() {
            "Connection: close\r\n"
        } else {
            ""
        };
        write!(
            s,
            "GET /headers HTTP/1.1\r\nHost: app\r\nX-SSL-Client-Cert: {}\r\n{close}\r\n",
            escaped(who)
        )
        .unwrap();
    }
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let answers: Vec<&str> = text.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), clients.len(), "{text}");
    for (answer, who) in answers.iter().zip(clients) {
        let other = if std::ptr::eq(who, &pki.trusted) {
            &pki.denied
        } else {
            &pki.trusted
        };
        assert!(answer.starts_with("200"), "{answer}");
        assert!(answer.contains(&b64(who)), "{answer}");
        assert!(!answer.contains(&b64(other)), "{answer}");
    }

    // A URL that is not one of the two forms, an --open that is not a path: exit 2, one
    // line naming the problem.
    for (bad, says) in [
        (
            &["--upstream", "https://127.0.0.1:1"][..],
            "TLS to the upstream is not supported",
        ),
        (&["--upstream", "http://127.0.0.1"], "the port is missing"),
        (&["--upstream", "http://127.0.0.1:1/app"], "no path"),
        (
            &["--upstream", "http://127.0.0.1:1", "--open", "healthz"],
            "starts with /",
        ),
        (
            &[
                "--upstream",
                "http://127.0.0.1:1",
                "--upstream-max-connections",
                "0",
            ],
            "not a number of 1 or more",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_certauth"))
            .args(["serve", "--ca", &f.ca, "--cert", &f.cert, "--key", &f.key])
            .args(bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert!(err.contains(says), "{bad:?}: {err}");
    }

    // Python's http.server.
    let www = Dir::new("www");
    let file: Vec<u8> = (0..300_000u32)
        .map(|i| u8::try_from(i % 241).unwrap())
        .collect();
    www.file("data.bin", &file);
    let py_port = free_port();
    let _python = Proc(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &py_port.to_string(),
                "--directory",
            ])
            .arg(&www.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("python", || {
        TcpStream::connect(("127.0.0.1", py_port)).is_ok()
    });
    let (_py_front, port) = certauth(&f, &format!("http://127.0.0.1:{py_port}"), &[]);
    for _ in 0..3 {
        let (code, body, _) = curl(&f, port, Some(&f.trusted), &[], "/data.bin");
        assert_eq!(code, "200");
        assert!(
            body == file,
            "python's file arrived changed ({} bytes)",
            body.len()
        );
    }
    assert_eq!(curl(&f, port, None, &[], "/data.bin").0, "401");
}

/// A control request to the upstream, not through certauth: its body.
fn control(upstream_port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", upstream_port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The upstream's count of held responses (`/hold`) and of the connections that carried
/// requests (open now, and at most at once).
fn conns(upstream_port: u16) -> (u64, u64, u64) {
    let v = json(control(upstream_port, "/conns").as_bytes());
    let n = |k: &str| v[k].as_u64().unwrap();
    (n("held"), n("active"), n("peak"))
}

/// Waits until the upstream holds `n` responses, then a moment more to see that no other
/// request arrives (the ones past the caps are waiting in certauth).
fn held_settles_at(upstream_port: u16, n: u64) {
    wait_for(&format!("{n} held responses"), || {
        conns(upstream_port).0 >= n
    });
    std::thread::sleep(Duration::from_millis(500));
    let now = conns(upstream_port);
    assert_eq!(now.0, n, "more requests reached the upstream: {now:?}");
}

/// curl fetching `paths` over one connection (`--parallel`: HTTP/2 streams), in the
/// background; prints each transfer's status code.
fn curl_parallel(
    f: &Files,
    port: u16,
    who: Option<&(String, String)>,
    args: &[&str],
    paths: &[String],
) -> Child {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "--max-time",
        "60",
        "-w",
        "%{http_code}\n",
        "--parallel",
        "--parallel-max",
        "50",
    ])
    .arg("--resolve")
    .arg(format!("localhost:{port}:127.0.0.1"))
    .args(["--cacert", &f.server_ca]);
    if let Some((cert, key)) = who {
        c.args(["--cert", cert, "--key", key]);
    }
    c.args(args);
    for p in paths {
        c.args(["-o", "/dev/null"])
            .arg(format!("https://localhost:{port}{p}"));
    }
    c.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The status codes a `curl_parallel` printed, once it is done.
fn codes(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Upstream work is capped (attack finding: one connection without a certificate opened an
/// upstream connection per HTTP/2 stream to an open path with a slow upstream): per client
/// connection (1 request in flight without identity), for the whole upstream (4 here), with
/// half kept for trusted clients; the waiting requests go once places free up; past
/// --upstream-timeout a waiting request gets 503 naming the cap. Counted at the upstream.
#[test]
fn upstream_work_is_capped() {
    let pki = Pki::new();
    let dir = Dir::new("caps");
    let f = files(&pki, &dir);
    let up_port = free_port();
    let _upstream = node_upstream(&up_port.to_string());
    let (_server, port) = certauth(
        &f,
        &format!("http://127.0.0.1:{up_port}"),
        &[
            "--open",
            "/open",
            "--upstream-max-connections",
            "4",
            "--upstream-timeout",
            "30",
        ],
    );
    let trusted = Some(&f.trusted);

    // One TLS connection without a certificate, 20 HTTP/2 streams to a slow open path: one
    // reaches the upstream, the others wait.
    let paths: Vec<String> = (0..20).map(|i| format!("/open/hold?a{i}")).collect();
    let a = curl_parallel(&f, port, None, &["--http2"], &paths);
    held_settles_at(up_port, 1);
    // A trusted client still gets through.
    assert_eq!(curl(&f, port, trusted, &[], "/headers").0, "200");

    // Two more connections without a certificate: requests without identity get half the
    // upstream's places (2 of 4).
    let b = curl_parallel(&f, port, None, &["--http1.1"], &["/open/hold?b".to_owned()]);
    let c = curl_parallel(&f, port, None, &["--http1.1"], &["/open/hold?c".to_owned()]);
    held_settles_at(up_port, 2);
    assert_eq!(curl(&f, port, trusted, &[], "/headers").0, "200");

    // A trusted client's streams fill the rest, and no more: 4 requests at the upstream.
    let paths: Vec<String> = (0..6).map(|i| format!("/hold?d{i}")).collect();
    let d = curl_parallel(&f, port, trusted, &["--http2"], &paths);
    held_settles_at(up_port, 4);
    let (_, active, peak) = conns(up_port);
    assert!(
        active <= 4 && peak <= 4,
        "upstream connections: {active} open, {peak} at most"
    );

    // Released, every waiting request goes through.
    control(up_port, "/release");
    assert_eq!(codes(a), vec!["200"; 20]);
    assert_eq!(codes(b), vec!["200"]);
    assert_eq!(codes(c), vec!["200"]);
    assert_eq!(codes(d), vec!["200"; 6]);

    // Past --upstream-timeout at the cap: 503 naming it.
    let (_small, port) = certauth(
        &f,
        &format!("http://127.0.0.1:{up_port}"),
        &["--upstream-max-connections", "1", "--upstream-timeout", "1"],
    );
    control(up_port, "/rearm");
    let before = conns(up_port).0;
    let e = curl_parallel(&f, port, trusted, &[], &["/hold?e".to_owned()]);
    held_settles_at(up_port, before + 1);
    let (code, body, _) = curl(&f, port, trusted, &[], "/headers");
    assert_eq!(code, "503");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("the upstream has its most requests in flight (1)"),
        "{body}"
    );
    control(up_port, "/release");
    assert_eq!(codes(e), vec!["200"]);
}

/// `--path-policy`: `/admin` stricter than the rest (a policy no client meets), `/ops` for
/// the trusted client only, both besides the global `--allow-cn`. A verified client the
/// path's policy refuses gets 403 and the upstream never sees the request; the prefix
/// matches whole segments in any case, and a path that could be read as another is under
/// it.
#[test]
fn path_policies_make_part_of_the_site_stricter() {
    let pki = Pki::new();
    let dir = Dir::new("paths");
    let f = files(&pki, &dir);
    let admin = dir.file("admin.toml", b"[allow]\ncn = [\"root-operator\"]\n");
    let ops = dir.file("ops.toml", b"[allow]\ncn = [\"trusted-client\"]\n");
    let up_port = free_port();
    let _upstream = node_upstream(&up_port.to_string());
    let (_server, port) = certauth(
        &f,
        &format!("http://127.0.0.1:{up_port}"),
        &[
            "--path-policy",
            &format!("/admin={admin}"),
            "--path-policy",
            &format!("/ops/={ops}"),
            "--open",
            "/open",
        ],
    );
    let trusted = Some(&f.trusted);
    let before = seen(up_port).len();
    for path in ["/admin", "/admin/users?x=1", "/ADMIN/users", "/Admin"] {
        let (code, body, _) = curl(&f, port, trusted, &[], path);
        assert_eq!(code, "403", "{path}: {}", String::from_utf8_lossy(&body));
    }
    for path in ["/admin/../headers", "/x/../admin", "/%61dmin", "//admin"] {
        let (code, _, _) = curl(&f, port, trusted, &["--path-as-is"], path);
        assert_eq!(code, "403", "{path}");
    }
    assert_eq!(curl(&f, port, trusted, &["--http2"], "/admin").0, "403");
    assert_eq!(
        seen(up_port).len(),
        before,
        "a refused request reached the upstream"
    );
    // Elsewhere, and where the path's policy allows, the trusted client goes through; a
    // client without a certificate is still 401 everywhere but --open.
    for path in ["/adminx", "/headers", "/ops", "/ops/run"] {
        assert_eq!(curl(&f, port, trusted, &[], path).0, "200", "{path}");
    }
    assert_eq!(curl(&f, port, None, &[], "/admin").0, "401");
    assert_eq!(curl(&f, port, None, &[], "/open/x").0, "200");
    assert_eq!(
        seen(up_port)[before..],
        ["/adminx", "/headers", "/ops", "/ops/run", "/open/x"]
    );

    // A prefix no path could match, or a spec without a file: exit 2, naming it.
    for (bad, says) in [
        ("admin={ops}", "does not start with /"),
        ("/a/../b={ops}", "is not a path prefix"),
        ("/admin", "is not PREFIX=POLICY.toml"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_certauth"))
            .args(["serve", "--ca", &f.ca, "--cert", &f.cert, "--key", &f.key])
            .args(["--path-policy", &bad.replace("{ops}", &ops)])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// The upstream's count of `/busy` requests being worked on (now, at most at once).
fn busy(upstream_port: u16) -> (u64, u64) {
    let v = json(control(upstream_port, "/conns").as_bytes());
    (v["busy"].as_u64().unwrap(), v["busyPeak"].as_u64().unwrap())
}

/// Attack review s4, finding 3: a client that leaves once its request is sent (an HTTP/1.1
/// connection closed, a body cut mid-upload, an HTTP/2 stream reset) must not free the
/// request's place while the upstream still works on it. Connections without a certificate
/// send a slow request to an open path and close 0.3 s later, one after another; the upstream
/// (`/busy`, which works on whatever happens to its connection) never has more of them at
/// once than their share of the caps (2 of 4), and a trusted client still gets through.
#[test]
fn a_client_leaving_does_not_free_a_place_the_upstream_works_for() {
    let pki = Pki::new();
    let dir = Dir::new("leave");
    let f = files(&pki, &dir);
    let up_port = free_port();
    let _upstream = node_upstream(&up_port.to_string());
    let (_server, port) = certauth(
        &f,
        &format!("http://127.0.0.1:{up_port}"),
        &["--open", "/open", "--upstream-max-connections", "4"],
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let arrived = || seen(up_port).iter().filter(|u| u.contains("/busy")).count();
    for i in 0..12 {
        let before = arrived();
        let mut tls = suite::connect(addr, suite::tls_client(&pki, None)).unwrap();
        let request = if i % 2 == 0 {
            format!("GET /open/busy?ms=30000&i={i} HTTP/1.1\r\nHost: localhost\r\n\r\n")
        } else {
            // A body cut after its first bytes.
            format!(
                "POST /open/busy?ms=30000&i={i} HTTP/1.1\r\nHost: localhost\r\n\
                 Content-Length: 100\r\n\r\n0123456789"
            )
        };
        tls.write_all(request.as_bytes()).unwrap();
        tls.flush().unwrap();
        // Until the request reaches the upstream (the ones past the cap wait in certauth).
        let deadline = Instant::now() + Duration::from_millis(300);
        while arrived() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Gone without a word: no close_notify, no response read.
        tls.sock.shutdown(std::net::Shutdown::Both).unwrap();
    }
    let (now, peak) = busy(up_port);
    assert!(
        peak <= 2,
        "requests without a certificate the upstream worked on at once: {peak} (now {now}), past their share of 2"
    );
    assert_eq!(peak, 2, "the open share was used");
    assert_eq!(curl(&f, port, Some(&f.trusted), &[], "/headers").0, "200");

    // The open share is half, rounded down: with --open, a cap of 1 would leave them none.
    let out = Command::new(env!("CARGO_BIN_EXE_certauth"))
        .args(["serve", "--ca", &f.ca, "--cert", &f.cert, "--key", &f.key])
        .args(["--upstream", &format!("http://127.0.0.1:{up_port}")])
        .args(["--open", "/open", "--upstream-max-connections", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("(give at least 2)"), "{err}");
}

/// Attack review s4, finding 4: a WebSocket client that leaves with a bare TCP close (no TLS
/// close_notify: a crashed client, a killed tab) ends its tunnel at once: the upstream sees
/// the WebSocket closed, and the client's connection slot (--max-connections-per-identity 1)
/// and places are free again long before --websocket-idle-timeout (300 s).
#[test]
fn a_websocket_client_gone_without_close_notify_ends_its_tunnel() {
    let pki = Pki::new();
    let dir = Dir::new("wsgone");
    let f = files(&pki, &dir);
    let up_port = free_port();
    let _upstream = node_upstream(&up_port.to_string());
    let (_server, port) = certauth(
        &f,
        &format!("http://127.0.0.1:{up_port}"),
        &[
            "--max-connections-per-identity",
            "1",
            "--upstream-max-connections",
            "2",
        ],
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    tls.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    tls.write_all(&suite::client_text_frame("hello")).unwrap();
    tls.flush().unwrap();
    let got = String::from_utf8_lossy(&suite::read_until(&mut tls, b"Echo: hello")).into_owned();
    assert!(got.starts_with("HTTP/1.1 101"), "{got}");
    assert!(got.contains("Echo: hello"), "{got}");
    tls.sock.shutdown(std::net::Shutdown::Both).unwrap();
    drop(tls);
    let deadline = Instant::now() + Duration::from_secs(20);
    let closed = loop {
        let closed = seen(up_port)
            .into_iter()
            .find(|u| u.starts_with("/ws-closed/"));
        if closed.is_some() || Instant::now() > deadline {
            break closed;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        closed.is_some(),
        "the upstream's WebSocket is still open 20 s after its client left"
    );
    // The same identity may connect again (not 429), and finds a place (not 503).
    assert_eq!(curl(&f, port, Some(&f.trusted), &[], "/headers").0, "200");
}
