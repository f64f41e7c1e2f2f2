//! `certauth serve` within bounds whatever its operator's files and its clients do (issue
//! 26): a `--ca` bundle too large to name in the CertificateRequest, a `--ca` replaced by a
//! FIFO or `/dev/zero` before a SIGHUP, many idle connections to `--metrics`, one identity
//! opening connection after connection.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use certauth_testkit::proxies;
use certauth_testkit::suite::{self, Pki};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("certauth-bounds-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, contents: &str) -> String {
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
}

impl Served {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `text` (10 s at most).
    fn logged(&self, text: &str) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The server's resident memory, in bytes.
    fn rss(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    fn hup(&self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `certauth serve` with `ca` (a file in `dir`), the suite's server identity, `extra`
/// arguments, `env`, and at most `nofile` descriptors; logs to `dir/serve.log`.
fn serve(
    pki: &Pki,
    dir: &Dir,
    ca: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
    nofile: Option<u32>,
) -> (Served, SocketAddr) {
    let cert = dir.file("server.pem", &pki.server.pem());
    let key = dir.file("server.key", &pki.server.key_pem());
    let log = dir.path("serve.log");
    let limit = nofile.map_or_else(String::new, |n| format!("ulimit -n {n} && "));
    let (child, port) = proxies::start_certauth(
        Command::new("sh")
            .arg("-c")
            .arg(format!("{limit}exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_certauth"))
            .args([
                "serve",
                "--ca",
                ca.to_str().unwrap(),
                "--cert",
                &cert,
                "--key",
                &key,
            ])
            .args(extra)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1"),
        &log,
    );
    let served = Served { child, log };
    (served, ([127, 0, 0, 1], port).into())
}

/// `GET /whoami` with the trusted certificate: the status line, or what went wrong.
fn whoami(addr: SocketAddr, pki: &Pki) -> String {
    let mut tls = match suite::connect(addr, suite::tls_client(pki, Some(&pki.trusted))) {
        Ok(t) => t,
        Err(e) => return format!("no connection: {e}"),
    };
    let _ = tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let _ = tls.flush();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    text.lines().next().unwrap_or("").to_owned()
}

const OK: &str = "HTTP/1.1 200 OK";

/// A `--ca` of 600 roots and the client CA: too many names for the CertificateRequest, so
/// none is sent (with a warning) and the trusted client still authenticates; a SIGHUP that
/// grows a small bundle past it is a reload that works.
#[test]
fn a_ca_bundle_of_600_roots_still_lets_clients_in() {
    let pki = Pki::new();
    let big = format!(
        "{}{}",
        certauth_testkit::bundle_of_roots(600),
        pki.root.cert.pem()
    );
    for runtime in ["tokio", "smol"] {
        let dir = Dir::new(&format!("bundle-{runtime}"));
        let ca = dir.file("ca.pem", &big);
        let (server, addr) = serve(
            &pki,
            &dir,
            Path::new(&ca),
            &["--runtime", runtime],
            &[],
            None,
        );
        assert_eq!(whoami(addr, &pki), OK, "{runtime}: {}", server.log());
        assert!(
            server.logged("clients are sent no CA names"),
            "{}",
            server.log()
        );
        drop(server);

        let dir = Dir::new(&format!("bundle-reload-{runtime}"));
        let ca = dir.file("ca.pem", &pki.root.cert.pem());
        let (server, addr) = serve(
            &pki,
            &dir,
            Path::new(&ca),
            &["--runtime", runtime],
            &[],
            None,
        );
        assert_eq!(whoami(addr, &pki), OK);
        std::fs::write(&ca, &big).unwrap();
        server.hup();
        assert!(server.logged("reloaded"), "{}", server.log());
        assert!(server.log().contains("clients are sent no CA names"));
        assert_eq!(whoami(addr, &pki), OK, "{runtime} after the reload");
    }
}

/// `--ca` replaced by a FIFO (nobody writes to it) or a symbolic link to `/dev/zero`, then
/// SIGHUP, with one tokio worker: the reload fails with the reason logged, the server keeps
/// serving with the configuration in force, and its memory stays put.
#[test]
fn a_reload_from_a_fifo_or_dev_zero_fails_and_the_server_keeps_serving() {
    let pki = Pki::new();
    for runtime in ["tokio", "smol"] {
        let dir = Dir::new(&format!("fifo-{runtime}"));
        let ca = dir.file("ca.pem", &pki.root.cert.pem());
        let (server, addr) = serve(
            &pki,
            &dir,
            Path::new(&ca),
            &["--runtime", runtime],
            &[("TOKIO_WORKER_THREADS", "1")],
            None,
        );
        assert_eq!(whoami(addr, &pki), OK);
        let before = server.rss();

        std::fs::remove_file(&ca).unwrap();
        assert!(Command::new("mkfifo").arg(&ca).status().unwrap().success());
        server.hup();
        assert!(
            server.logged("not a regular file"),
            "{runtime}: {}",
            server.log()
        );
        assert_eq!(whoami(addr, &pki), OK, "{runtime}: serving after the FIFO");

        std::fs::remove_file(&ca).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &ca).unwrap();
        server.hup();
        let started = Instant::now();
        while server.log().matches("not a regular file").count() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{runtime}: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(whoami(addr, &pki), OK, "{runtime}: serving after /dev/zero");
        let grew = server.rss().saturating_sub(before);
        assert!(grew < 64 << 20, "{runtime}: memory grew by {grew} bytes");
        let reloaded = server.log().lines().any(|l| l.ends_with(" reloaded"));
        assert!(!reloaded, "{}", server.log());
    }
}

/// `GET /metrics` over plain HTTP: the body, or what went wrong.
fn scrape(addr: SocketAddr) -> String {
    let Ok(mut tcp) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return "no connection".into();
    };
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    String::from_utf8_lossy(&suite::read_to_close(&mut tcp)).into_owned()
}

/// Under `ulimit -n 64`, 100 idle connections to `--metrics` (and one sending a head that
/// never ends): the operations port holds a few of them and leaves the rest in its backlog,
/// so the TLS port keeps its descriptors and serves trusted clients; the metrics port
/// itself answers again once the idle ones are shed or time out.
#[test]
fn idle_connections_to_metrics_leave_the_tls_port_its_descriptors() {
    let pki = Pki::new();
    for runtime in ["tokio", "smol"] {
        let dir = Dir::new(&format!("metrics-{runtime}"));
        let ca = dir.file("ca.pem", &pki.root.cert.pem());
        let metrics: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let metrics_arg = metrics.to_string();
        let extra = ["--runtime", runtime, "--metrics", &metrics_arg, "--health"];
        let (server, addr) = serve(&pki, &dir, Path::new(&ca), &extra, &[], Some(64));
        let started = Instant::now();
        while !scrape(metrics).contains("certauth_") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut idle: Vec<TcpStream> = (0..100)
            .filter_map(|_| TcpStream::connect_timeout(&metrics, Duration::from_millis(500)).ok())
            .collect();
        if let Some(first) = idle.first_mut() {
            let _ = first.write_all(
                format!("GET /metrics HTTP/1.1\r\nX-Pad: {}", "a".repeat(60_000)).as_bytes(),
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        for i in 0..3 {
            assert_eq!(
                whoami(addr, &pki),
                OK,
                "{runtime}: trusted client {i}: {}",
                server.log()
            );
        }
        let started = Instant::now();
        while !scrape(metrics).contains("certauth_connections_active") {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{runtime}: metrics never answered: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            !server.log().contains("Too many open files"),
            "{}",
            server.log()
        );
        drop(idle);
    }
}

/// `--max-connections-per-identity 2`: a third WebSocket with the same certificate is
/// refused with 429 and the code (logged), a WebSocket with the same name but another
/// certificate is not.
#[test]
fn one_certificate_cannot_take_every_connection() {
    let pki = Pki::new();
    let other = pki
        .root
        .issue(&certauth_testkit::Leaf::client("trusted-client").around_wall_clock());
    for runtime in ["tokio", "smol"] {
        let dir = Dir::new(&format!("identity-{runtime}"));
        let ca = dir.file("ca.pem", &pki.root.cert.pem());
        let extra = ["--runtime", runtime, "--max-connections-per-identity", "2"];
        let (server, addr) = serve(&pki, &dir, Path::new(&ca), &extra, &[], None);
        // The WebSocket, or the status and body it was refused with.
        let open = |client: &certauth_testkit::Issued| {
            let tls = suite::connect(addr, suite::tls_client(&pki, Some(client))).unwrap();
            match tungstenite::client::client("wss://localhost/ws", tls) {
                Ok((ws, _)) => Ok(ws),
                Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                    let body = String::from_utf8_lossy(r.body().as_deref().unwrap_or_default());
                    Err(format!("{} {body}", r.status().as_u16()))
                }
                Err(e) => Err(e.to_string()),
            }
        };
        let held: Vec<_> = (0..2).map(|_| open(&pki.trusted).unwrap()).collect();
        match open(&pki.trusted) {
            Err(e) => assert_eq!(
                e, "429 Too Many Requests: TOO_MANY_CONNECTIONS",
                "{runtime}"
            ),
            Ok(_) => panic!("{runtime}: a third WebSocket was let in"),
        }
        assert!(server.logged("TOO_MANY_CONNECTIONS"), "{}", server.log());
        assert!(open(&other).is_ok(), "{runtime}: another certificate");
        drop(held);
    }
}
