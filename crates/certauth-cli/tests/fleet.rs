//! `certauth serve` in a fleet (issue 31): files reloaded when they change (Kubernetes'
//! `..data` swap included) without a signal, TLS sessions resumed across processes that share
//! a `--session-ticket-key`, and a resumed session decided again with the configuration in
//! force.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certauth_testkit::suite::{self, Pki};
use certauth_testkit::{Issued, proxies};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("certauth-fleet-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `certauth serve`, killed when dropped; its log in a file.
struct Served {
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
}

impl Served {
    fn start(dir: &Dir, name: &str, args: &[&str]) -> Self {
        let log = dir.path(&format!("{name}.log"));
        let (child, port) = proxies::start_certauth(
            Command::new(env!("CARGO_BIN_EXE_certauth"))
                .arg("serve")
                .args(args)
                .arg("--expose-reasons"),
            &log,
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        Self { child, log, addr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /whoami` with `client`: the status line and the body's last line.
fn whoami(addr: SocketAddr, pki: &Pki, client: &Issued) -> String {
    let mut tls = suite::connect(addr, suite::tls_client(pki, Some(client))).unwrap();
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned()
}

/// Asks until `check` holds of the answer, for 10 s at most (the reload is the watcher's,
/// polling every 0.1 s here).
fn eventually(what: &str, mut ask: impl FnMut() -> String, check: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = ask();
        if check(&got) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kubernetes' update of a mounted volume: the files are in a timestamped directory,
/// `..data` links to it and each name links through `..data`; an update writes a new
/// directory and renames a new `..data` link over the old one.
fn kubelet_swap(volume: &Path, version: &str, files: &[(&str, &[u8])]) {
    let dir = volume.join(version);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, contents) in files {
        std::fs::write(dir.join(name), contents).unwrap();
        let link = volume.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    let tmp = volume.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, volume.join("..data")).unwrap();
}

/// A Secret's CA replaced by Kubernetes is in force without a signal; a broken one that
/// follows is logged and the CA in force stays.
#[test]
fn a_kubernetes_volume_update_reloads_without_a_signal() {
    let pki = Pki::new();
    let dir = Dir::new("watch");
    let volume = dir.path("secret");
    std::fs::create_dir_all(&volume).unwrap();
    let root = pki.root.cert.pem();
    kubelet_swap(&volume, "..2026_12_07_01", &[("ca.pem", root.as_bytes())]);
    let cert = dir.file("server.pem", pki.server.pem());
    let key = dir.file("server.key", pki.server.key_pem());
    let ca = volume.join("ca.pem");
    let server = Served::start(
        &dir,
        "serve",
        &[
            "--ca",
            ca.to_str().unwrap(),
            "--cert",
            &cert,
            "--key",
            &key,
            "--watch-interval",
            "0.1",
        ],
    );
    assert!(whoami(server.addr, &pki, &pki.trusted).starts_with("HTTP/1.1 200 OK"));
    assert!(whoami(server.addr, &pki, &pki.other_ca).starts_with("HTTP/1.1 401"));

    let other = pki.other_root.cert.pem();
    kubelet_swap(&volume, "..2026_12_07_02", &[("ca.pem", other.as_bytes())]);
    eventually(
        "the other CA's client after the swap",
        || whoami(server.addr, &pki, &pki.other_ca),
        |got| got.starts_with("HTTP/1.1 200 OK"),
    );
    assert!(whoami(server.addr, &pki, &pki.trusted).starts_with("HTTP/1.1 401"));

    kubelet_swap(
        &volume,
        "..2026_12_07_03",
        &[("ca.pem", b"not a certificate")],
    );
    eventually(
        "the log after a broken CA",
        || server.log(),
        |log| log.contains("reload failed, keeping the configuration in force"),
    );
    assert!(whoami(server.addr, &pki, &pki.other_ca).starts_with("HTTP/1.1 200 OK"));
    assert_eq!(
        server.log().matches("reloaded").count(),
        1,
        "{}",
        server.log()
    );
}

/// One `openssl s_client` connection asking `GET /whoami`, saving its session to `out` or
/// resuming the one in `resume`: whether it resumed, and the answer.
fn s_client(
    addr: SocketAddr,
    dir: &Dir,
    client: &str,
    resume: Option<&Path>,
    out: Option<&Path>,
) -> (bool, String) {
    s_client_with(&[], addr, dir, client, resume, out)
}

/// [`s_client`] with `extra` arguments (`-tls1_2`).
fn s_client_with(
    extra: &[&str],
    addr: SocketAddr,
    dir: &Dir,
    client: &str,
    resume: Option<&Path>,
    out: Option<&Path>,
) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()])
        .args(extra)
        .args(["-servername", "localhost", "-ign_eof"])
        .args(["-CAfile", dir.path("server-ca.pem").to_str().unwrap()])
        .args([
            "-cert",
            &format!("{client}.pem"),
            "-key",
            &format!("{client}.key"),
        ]);
    if let Some(p) = resume {
        cmd.arg("-sess_in").arg(p);
    }
    if let Some(p) = out {
        cmd.arg("-sess_out").arg(p);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let text = String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned();
    let reused = text.lines().any(|l| l.starts_with("Reused, "));
    assert!(
        reused || text.lines().any(|l| l.starts_with("New, ")),
        "{text}"
    );
    let answer = text
        .find("HTTP/1.1 ")
        .map_or_else(String::new, |i| text[i..].to_owned());
    (reused, answer)
}

/// Servers given the same ticket key resume each other's sessions, one with another key
/// does not, and a resumed session is decided again: revoked by a CRL that arrived after
/// the session was made, it resumes and gets 401 CERT_REVOKED.
#[test]
fn sessions_resume_across_a_fleet_and_are_decided_again() {
    let pki = Pki::new();
    let dir = Dir::new("tickets");
    let ca = dir.file("ca.pem", pki.root.cert.pem());
    dir.file("server-ca.pem", pki.server_root.cert.pem());
    let cert = dir.file("server.pem", pki.server.pem());
    let key = dir.file("server.key", pki.server.key_pem());
    dir.file("client.pem", pki.forbidden.pem());
    dir.file("client.key", pki.forbidden.key_pem());
    let client = dir.path("client").to_string_lossy().into_owned();
    let shared = dir.file("shared.key", [7u8; 80]);
    let other = dir.file("other.key", [9u8; 80]);
    let empty = certauth_testkit::pem("X509 CRL", &pki.root.crl(&[]));
    let crl = dir.file("crl.pem", &empty);
    let common = ["--ca", &ca, "--cert", &cert, "--key", &key];
    fn with<'a>(common: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [common, extra].concat()
    }
    let a = Served::start(
        &dir,
        "a",
        &with(
            &common,
            &[
                "--session-ticket-key",
                &shared,
                "--crl",
                &crl,
                "--watch-interval",
                "0.1",
            ],
        ),
    );
    let a_hup = Served::start(&dir, "hup", &with(&common, &["--crl", &crl, "--no-watch"]));
    // The older key second: it still opens tickets, the first seals them.
    let b = Served::start(
        &dir,
        "b",
        &with(
            &common,
            &[
                "--session-ticket-key",
                &other,
                "--session-ticket-key",
                &shared,
            ],
        ),
    );
    let c = Served::start(&dir, "c", &with(&common, &["--session-ticket-key", &other]));

    let (session, own) = (dir.path("a.session"), dir.path("hup.session"));
    let (reused, answer) = s_client(a.addr, &dir, &client, None, Some(&session));
    assert!(!reused && answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let (reused, answer) = s_client(b.addr, &dir, &client, Some(&session), None);
    assert!(reused, "another process with the key resumes");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let (reused, _) = s_client(c.addr, &dir, &client, Some(&session), None);
    assert!(!reused, "a process without the key does not resume");
    // Without ticket keys, the server's own session cache.
    let (reused, _) = s_client(a_hup.addr, &dir, &client, None, Some(&own));
    assert!(!reused);

    // The client is revoked after its sessions were made: the watcher (a) and SIGHUP (the
    // other) reload; each still resumes the session (the reload kept the ticket key, or the
    // cache) and refuses it.
    let revoking = certauth_testkit::pem("X509 CRL", &pki.root.crl(&[&pki.forbidden]));
    std::fs::write(&crl, revoking).unwrap();
    let pid = a_hup.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    for (server, session) in [(&a, &session), (&a_hup, &own)] {
        eventually(
            "the reload",
            || server.log(),
            |log| log.contains("reloaded"),
        );
        let (reused, answer) = s_client(server.addr, &dir, &client, Some(session), None);
        assert!(reused, "{}: {answer}", server.log.display());
        assert!(
            answer.starts_with("HTTP/1.1 401") && answer.contains("(CERT_REVOKED)"),
            "{answer}"
        );
    }
}

/// A TCP connection to `to` from `from` (127.0.0.1 is the trusted proxy here).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp
}

/// `GET /whoami` over TLS on `tcp` (after whatever was written to it): the answer, or
/// `None` if the server closed the connection without one.
fn whoami_on(tcp: TcpStream, pki: &Pki, client: &Issued) -> Option<String> {
    get_on(tcp, pki, client, "/whoami")
}

/// `GET path` over TLS on `tcp`, as [`whoami_on`] (`Connection: close`, for hyper).
fn get_on(mut tcp: TcpStream, pki: &Pki, client: &Issued, path: &str) -> Option<String> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn =
        rustls::ClientConnection::new(suite::tls_client(pki, Some(client)), name).unwrap();
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return None;
        }
    }
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).ok()?;
    Some(String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned())
}

/// Whether the server closes `tcp` without writing a byte (within `wait`: a connection
/// still open then is not).
fn closed_within(mut tcp: &TcpStream, wait: Duration) -> bool {
    use std::io::{ErrorKind, Read as _};
    tcp.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    match tcp.read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

fn closed_unanswered(tcp: &TcpStream) -> bool {
    closed_within(tcp, Duration::from_secs(3))
}

fn v2_header(source: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21".to_vec();
    match source {
        SocketAddr::V6(a) => {
            h.extend_from_slice(&[0x21, 0, 36]);
            h.extend_from_slice(&a.ip().octets());
            h.extend_from_slice(&[0; 16]);
        }
        SocketAddr::V4(a) => {
            h.extend_from_slice(&[0x11, 0, 12]);
            h.extend_from_slice(&a.ip().octets());
            h.extend_from_slice(&[0; 4]);
        }
    }
    h.extend_from_slice(&source.port().to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h
}

/// `--proxy-protocol` behind HAProxy (`send-proxy-v2`) and with hand-made v1 and v2
/// headers: the address a header names is the one logged and capped per address; a peer
/// that is not a trusted proxy, or a trusted one without a header, is closed unanswered.
#[test]
fn the_proxy_protocol_names_the_client_behind_haproxy_and_by_hand() {
    let pki = Pki::new();
    let dir = Dir::new("proxy-protocol");
    let ca = dir.file("ca.pem", pki.root.cert.pem());
    let cert = dir.file("server.pem", pki.server.pem());
    let key = dir.file("server.key", pki.server.key_pem());
    for runtime in ["tokio", "smol"] {
        let server = Served::start(
            &dir,
            runtime,
            &[
                "--ca",
                &ca,
                "--cert",
                &cert,
                "--key",
                &key,
                "--proxy-protocol",
                "--trusted-proxy",
                "127.0.0.1",
                "--max-pending-per-address",
                "1",
                "--runtime",
                runtime,
            ],
        );
        let addr = server.addr;
        let trusted = || connect_from([127, 0, 0, 1], addr);

        // Hand-made v1 and v2 headers from the trusted proxy.
        let mut tcp = trusted();
        tcp.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 443\r\n")
            .unwrap();
        let answer = whoami_on(tcp, &pki, &pki.trusted).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{runtime}: {answer}");
        let mut tcp = trusted();
        tcp.write_all(&v2_header("[2001:db8::7]:6666".parse().unwrap()))
            .unwrap();
        let answer = whoami_on(tcp, &pki, &pki.other_ca).unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{runtime}: {answer}");
        eventually(
            "the log naming the clients",
            || server.log(),
            |log| log.contains("client_addr=192.0.2.7") && log.contains("client_addr=2001:db8::7"),
        );

        // Not a trusted proxy, with a header; the trusted proxy without one; a header
        // longer than the limit: closed, nothing written, logged.
        let mut stranger = connect_from([127, 0, 0, 2], addr);
        stranger
            .write_all(b"PROXY TCP4 192.0.2.8 127.0.0.1 5555 443\r\n")
            .unwrap();
        assert!(closed_unanswered(&stranger), "{runtime}");
        // (Refusals are logged once a second at most: this one first.)
        eventually(
            "the log of the stranger",
            || server.log(),
            |log| {
                log.contains("remote=127.0.0.2")
                    && log.contains("accepts connections only from trusted proxies")
            },
        );
        assert!(
            whoami_on(trusted(), &pki, &pki.trusted).is_none(),
            "{runtime}"
        );
        let mut long = trusted();
        long.write_all(&[b"PROXY UNKNOWN ".as_slice(), &[b'a'; 200]].concat())
            .unwrap();
        assert!(closed_unanswered(&long), "{runtime}");
        // The cap per address counts the client a header names, not the proxy: one
        // stalled connection for 192.0.2.9 holds its one place; another for it is closed,
        // one for another client behind the same proxy goes through, although the proxy
        // also holds a connection that has sent nothing yet.
        let mut stalled = trusted();
        stalled
            .write_all(&v2_header("192.0.2.9:1".parse().unwrap()))
            .unwrap();
        // Whichever of two connections for the address the server reads first holds the
        // place; those still open are kept, so the next one must be refused.
        let mut held = vec![stalled];
        eventually(
            "a second connection for the address refused",
            || {
                let mut second = trusted();
                second
                    .write_all(&v2_header("192.0.2.9:2".parse().unwrap()))
                    .unwrap();
                // Short: an open one is retried (and a slow close is refused next time).
                let closed = closed_within(&second, Duration::from_millis(500));
                held.push(second);
                if closed {
                    "closed".into()
                } else {
                    "open".into()
                }
            },
            |got| got == "closed",
        );
        let silent = trusted();
        let mut other = trusted();
        other
            .write_all(&v2_header("192.0.2.10:3".parse().unwrap()))
            .unwrap();
        let answer = whoami_on(other, &pki, &pki.trusted).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{runtime}: {answer}");
        drop((held, silent));
    }

    // Behind HAProxy in TCP mode with send-proxy-v2: the client's own address (127.0.0.3)
    // reaches certauth, whose peer is HAProxy (127.0.0.1).
    let server = Served::start(
        &dir,
        "behind-haproxy",
        &[
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--proxy-protocol",
            "--trusted-proxy",
            "127.0.0.1/32",
        ],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.file(
        "haproxy.cfg",
        format!(
            "global\n    maxconn 100\ndefaults\n    mode tcp\n    timeout connect 5s\n    \
             timeout client 10s\n    timeout server 10s\nfrontend fe\n    bind 127.0.0.1:{port}\n    \
             default_backend be\nbackend be\n    server certauth {} send-proxy-v2\n",
            server.addr
        ),
    );
    let mut haproxy = Command::new("/usr/sbin/haproxy")
        .args(["-f", &conf, "-db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let front: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(front).is_err() {
        assert!(Instant::now() < deadline, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = whoami_on(connect_from([127, 0, 0, 3], front), &pki, &pki.trusted);
    let _ = haproxy.kill();
    let _ = haproxy.wait();
    let answer = answer.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("trusted-client"), "{answer}");
    eventually(
        "the log naming HAProxy's client",
        || server.log(),
        |log| log.contains("remote=127.0.0.1") && log.contains("client_addr=127.0.0.3"),
    );
}

/// `--proxy-protocol` on hyper's serve (`--upstream`, `--socketio`): the client a header
/// names is the X-Forwarded-For the upstream sees and the address logged; a peer that is not
/// a trusted proxy is closed unanswered.
#[test]
fn the_proxy_protocol_reaches_the_front_door_and_socketio() {
    let pki = Pki::new();
    let dir = Dir::new("proxy-protocol-hyper");
    let ca = dir.file("ca.pem", pki.root.cert.pem());
    let cert = dir.file("server.pem", pki.server.pem());
    let key = dir.file("server.key", pki.server.key_pem());
    let up_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A tiny upstream answering with the X-Forwarded-For it was sent.
    let echo = r#"
import http.server as h, sys
class E(h.BaseHTTPRequestHandler):
    def do_GET(self):
        b = ('x-forwarded-for=' + str(self.headers.get('X-Forwarded-For'))).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(b)))
        self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
s = h.HTTPServer(('127.0.0.1', int(sys.argv[1])), E)
print('listening', flush=True); s.serve_forever()
"#;
    let mut python = Command::new("python3")
        .args(["-c", echo, &up_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(python.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "listening");
    let _python = Killed(python);
    let upstream = format!("http://127.0.0.1:{up_port}");
    let common = [
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--allow-cn",
        "trusted-client",
        "--proxy-protocol",
        "--trusted-proxy",
        "127.0.0.1",
    ];
    let front = Served::start(
        &dir,
        "front",
        &[&common[..], &["--upstream", &upstream]].concat(),
    );
    let cap = ["--socketio", "--max-pending-per-address", "1"];
    let socketio = Served::start(&dir, "socketio", &[&common[..], &cap].concat());

    // The front door: the upstream sees the client the v2 header names, not the proxy.
    let mut tcp = connect_from([127, 0, 0, 1], front.addr);
    tcp.write_all(&v2_header("127.0.0.9:4242".parse().unwrap()))
        .unwrap();
    let answer = get_on(tcp, &pki, &pki.trusted, "/headers").unwrap();
    assert!(answer.starts_with("HTTP/1.0 200 OK"), "{answer}");
    assert!(answer.ends_with("x-forwarded-for=127.0.0.9"), "{answer}");
    // Socket.IO mode's GET /whoami, with a v1 header; a refused client is logged with the
    // address its header names.
    for server in [&socketio, &front] {
        let mut tcp = connect_from([127, 0, 0, 1], server.addr);
        tcp.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 443\r\n")
            .unwrap();
        let answer = get_on(tcp, &pki, &pki.denied, "/whoami").unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        eventually(
            "the log naming the refused client",
            || server.log(),
            |log| {
                log.contains("client_addr=192.0.2.7")
                    && log.contains("remote=Some(192.0.2.7:5555)")
                    && log.contains("client rejected")
            },
        );
    }
    let mut tcp = connect_from([127, 0, 0, 1], socketio.addr);
    tcp.write_all(&v2_header("127.0.0.9:4242".parse().unwrap()))
        .unwrap();
    let answer = get_on(tcp, &pki, &pki.trusted, "/whoami").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("trusted-client"), "{answer}");

    // Not a trusted proxy: closed unanswered, logged; a trusted one without a header too.
    for server in [&front, &socketio] {
        let mut stranger = connect_from([127, 0, 0, 2], server.addr);
        stranger
            .write_all(b"PROXY TCP4 192.0.2.8 127.0.0.1 5555 443\r\n")
            .unwrap();
        assert!(closed_unanswered(&stranger));
        eventually(
            "the log of the stranger",
            || server.log(),
            |log| {
                log.contains("remote=127.0.0.2")
                    && log.contains("accepts connections only from trusted proxies")
            },
        );
        let trusted = connect_from([127, 0, 0, 1], server.addr);
        assert!(whoami_on(trusted, &pki, &pki.trusted).is_none());
    }

    // The cap per address counts the client a header names (after the stranger: refusals
    // are logged once a second at most): a stalled connection for 192.0.2.9 holds its one
    // place, so another for it is closed (whichever the server reads first holds it: those
    // still open are kept), one for 192.0.2.10 goes through.
    let stalled = |port: u16| {
        let mut tcp = connect_from([127, 0, 0, 1], socketio.addr);
        tcp.write_all(&v2_header(SocketAddr::from(([192, 0, 2, 9], port))))
            .unwrap();
        tcp
    };
    let mut held = vec![stalled(1)];
    eventually(
        "a second connection for the address refused",
        || {
            let second = stalled(2);
            let closed = closed_within(&second, Duration::from_millis(500));
            held.push(second);
            if closed { "closed" } else { "open" }.to_owned()
        },
        |got| got == "closed",
    );
    let mut other = connect_from([127, 0, 0, 1], socketio.addr);
    other
        .write_all(&v2_header("192.0.2.10:3".parse().unwrap()))
        .unwrap();
    let answer = get_on(other, &pki, &pki.trusted, "/whoami").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    drop(held);

    // Header mode (a TLS-terminating proxy behind the balancer): the certificate header is
    // believed only if the client the PROXY header names is a trusted proxy.
    let header_mode = Served::start(
        &dir,
        "header-mode",
        &[
            "--ca",
            &ca,
            "--source",
            "nginx",
            "--proxy-protocol",
            "--trusted-proxy",
            "127.0.0.1",
            "--upstream",
            &upstream,
        ],
    );
    let cert = certauth_testkit::encode::nginx_escaped(&pki.trusted.pem());
    let get = |named: &str| {
        let mut tcp = connect_from([127, 0, 0, 1], header_mode.addr);
        tcp.write_all(&v2_header(named.parse().unwrap())).unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: b\r\nX-SSL-Client-Cert: {cert}\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).unwrap();
        String::from_utf8_lossy(&suite::read_to_close(&mut tcp)).into_owned()
    };
    let answer = get("127.0.0.1:7777");
    assert!(answer.starts_with("HTTP/1.0 200 OK"), "{answer}");
    assert!(answer.ends_with("x-forwarded-for=127.0.0.1"), "{answer}");
    let answer = get("192.0.2.7:7777");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("(UNTRUSTED_PROXY_HEADER)"), "{answer}");
    // The raw WebSocket server's header mode reads no PROXY header: a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_certauth"))
        .args([
            "serve",
            "--ca",
            &ca,
            "--source",
            "nginx",
            "--proxy-protocol",
        ])
        .args(["--trusted-proxy", "127.0.0.1", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--upstream or --socketio"), "{err}");
}

/// A session made where the client's key could not be checked (P-521 on ring: its
/// handshake signature excused there, the decision refusing it) does not pass unproven
/// when a server whose provider verifies P-521 (aws-lc-rs, sharing the ticket key) resumes
/// it: a resumed client is judged with the key types both providers verify (the ticket
/// carries the first one's, `tls::resumption_data`). A session made and resumed on
/// aws-lc-rs still passes.
#[cfg(feature = "aws-lc-rs")]
#[test]
fn a_session_resumed_on_another_provider_is_judged_with_both() {
    use certauth_testkit::keytypes::{KEYS, write_client};
    let pki = Pki::new();
    let dir = Dir::new("providers");
    let ca = dir.file("ca.pem", pki.root.cert.pem());
    dir.file("server-ca.pem", pki.server_root.cert.pem());
    let cert = dir.file("server.pem", pki.server.pem());
    let key = dir.file("server.key", pki.server.key_pem());
    let shared = dir.file("shared.key", [5u8; 80]);
    let p521 = KEYS.iter().find(|k| k.name == "p521").unwrap();
    write_client(&pki, *p521, &dir.0);
    let client = dir.path("p521").to_string_lossy().into_owned();
    let common = ["--ca", &ca, "--cert", &cert, "--key", &key];
    let served = |name: &str, provider: &str| {
        let args = [
            &common[..],
            &["--session-ticket-key", &shared, "--provider", provider],
        ];
        Served::start(&dir, name, &args.concat())
    };
    let (ring, aws) = (served("ring", "ring"), served("aws", "aws-lc-rs"));

    // Full handshakes: aws-lc-rs verifies the key, ring cannot and refuses it.
    let (made_on_aws, made_on_ring) = (dir.path("aws.session"), dir.path("ring.session"));
    let (_, answer) = s_client(aws.addr, &dir, &client, None, Some(&made_on_aws));
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let (_, answer) = s_client(ring.addr, &dir, &client, None, Some(&made_on_ring));
    assert!(answer.contains("(UNSUPPORTED_KEY_TYPE)"), "{answer}");

    // ring's session resumed on aws-lc-rs: still refused, the key was never proven.
    let (reused, answer) = s_client(aws.addr, &dir, &client, Some(&made_on_ring), None);
    assert!(reused, "the shared ticket key resumes: {answer}");
    assert!(
        answer.starts_with("HTTP/1.1 401") && answer.contains("(UNSUPPORTED_KEY_TYPE)"),
        "{answer}"
    );
    // aws-lc-rs's own session resumed there: the key was proven when it was made.
    let (reused, answer) = s_client(aws.addr, &dir, &client, Some(&made_on_aws), None);
    assert!(reused && answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    // TLS 1.2: rustls hands back no resumption data for its sessions, so a resumed one is
    // judged with the common key types wherever it was made (the second attack review let
    // ring's session in on aws-lc-rs this way); its full handshake is judged as above.
    let tls12 = |addr, resume: Option<&Path>, out: Option<&Path>| {
        s_client_with(&["-tls1_2"], addr, &dir, &client, resume, out)
    };
    let (aws12, ring12) = (dir.path("aws12.session"), dir.path("ring12.session"));
    let (_, answer) = tls12(aws.addr, None, Some(&aws12));
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let (_, answer) = tls12(ring.addr, None, Some(&ring12));
    assert!(answer.contains("(UNSUPPORTED_KEY_TYPE)"), "{answer}");
    for made in [&ring12, &aws12] {
        let (reused, answer) = tls12(aws.addr, Some(made), None);
        assert!(
            reused,
            "the shared ticket key resumes over TLS 1.2: {answer}"
        );
        assert!(answer.contains("(UNSUPPORTED_KEY_TYPE)"), "{answer}");
    }
    // A common key type still resumes over TLS 1.2 across providers.
    let trusted = dir.path("trusted");
    std::fs::write(trusted.with_extension("pem"), pki.trusted.pem()).unwrap();
    std::fs::write(trusted.with_extension("key"), pki.trusted.key_pem()).unwrap();
    let trusted = trusted.to_string_lossy().into_owned();
    let made = dir.path("trusted12.session");
    let (_, answer) = s_client_with(&["-tls1_2"], ring.addr, &dir, &trusted, None, Some(&made));
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    let (reused, answer) = s_client_with(&["-tls1_2"], aws.addr, &dir, &trusted, Some(&made), None);
    assert!(reused && answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}
