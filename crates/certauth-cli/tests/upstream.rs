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
use certauth_testkit::Issued;
use certauth_testkit::suite::{self, Pki};

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
    let port = free_port();
    // Its log, shown if it does not start (a port taken meanwhile, a usage error).
    let log = std::path::Path::new(&f.ca).with_file_name(format!("certauth-{port}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_certauth"))
        .args(["serve", "--ca", &f.ca, "--cert", &f.cert, "--key", &f.key])
        .args(["--allow-cn", "trusted-client", "--upstream", url])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("certauth", || {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("certauth exited ({status}) before listening: {log}");
        }
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
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
    let plain = free_port();
    let _behind = Proc(
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
            .args(["--upstream", &format!("unix:{sock}")])
            .args(["--listen", &format!("127.0.0.1:{plain}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("certauth in header mode", || {
        TcpStream::connect(("127.0.0.1", plain)).is_ok()
    });
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
