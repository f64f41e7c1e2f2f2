//! `certauth serve` as an operator runs it: out of file descriptors it neither spins nor
//! stays locked out, and SIGTERM drains (in-flight messages answered, WebSockets closed with
//! 1001, the listener refusing at once, exit 0). On every runtime: tokio, smol, and hyper
//! (`--socketio`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use certauth_testkit::proxies;
use certauth_testkit::suite::{self, Pki};
use tungstenite::protocol::frame::coding::CloseCode;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("certauth-life-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Served(Child);

impl Drop for Served {
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

/// `certauth serve` with the suite's PKI, `extra` arguments, and at most `nofile` open
/// file descriptors (set for the server process alone, by the shell that execs it).
fn serve(pki: &Pki, dir: &Dir, extra: &[&str], nofile: Option<u32>) -> (Served, SocketAddr) {
    let ca = dir.file("ca.pem", &pki.root.cert.pem());
    let cert = dir.file("server.pem", &pki.server.pem());
    let key = dir.file("server.key", &pki.server.key_pem());
    let limit = nofile.map_or_else(String::new, |n| format!("ulimit -n {n} && "));
    let (child, port) = proxies::start_certauth(
        Command::new("sh")
            .arg("-c")
            .arg(format!("{limit}exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_certauth"))
            .args(["serve", "--ca", &ca, "--cert", &cert, "--key", &key])
            .args(extra),
        &dir.0.join(format!("serve-{}.log", proxies::next_id())),
    );
    (Served(child), ([127, 0, 0, 1], port).into())
}

/// The server's CPU time so far (user + system), in clock ticks of 10 ms.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line; after the command, 12 and 13 here
    // counting from 1 (the state is field 3), so indexes 11 and 12.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// `GET /whoami` with the trusted certificate: the status line, or the error.
fn whoami(addr: SocketAddr, pki: &Pki) -> String {
    let Ok(mut tls) = suite::connect(addr, suite::tls_client(pki, Some(&pki.trusted))) else {
        return "no connection".into();
    };
    let _ = tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let _ = tls.flush();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    text.lines().next().unwrap_or("").to_owned()
}

#[test]
fn out_of_descriptors_it_backs_off_and_recovers() {
    let pki = Pki::new();
    let dir = Dir::new("nofile");
    for (name, extra) in [
        ("tokio", &["--runtime", "tokio"][..]),
        ("smol", &["--runtime", "smol"][..]),
        ("hyper", &["--socketio"][..]),
    ] {
        let (server, addr) = serve(&pki, &dir, extra, Some(64));
        // More idle connections than the process may hold descriptors.
        let idle: Vec<TcpStream> = (0..100)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let pid = server.0.id();
        let before = cpu_ticks(pid);
        std::thread::sleep(Duration::from_secs(2));
        let spent = cpu_ticks(pid) - before;
        assert!(
            spent < 40,
            "{name}: {spent} ticks of CPU in 2 s out of descriptors (spinning?)"
        );
        // Stalled connections are shed for new ones: a trusted client gets in.
        let started = Instant::now();
        let status = whoami(addr, &pki);
        assert_eq!(
            status,
            "HTTP/1.1 200 OK",
            "{name}: with {} idle connections",
            idle.len()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: served after {:?}",
            started.elapsed()
        );
        drop(idle);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            whoami(addr, &pki),
            "HTTP/1.1 200 OK",
            "{name}: after they left"
        );
    }
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let pki = Pki::new();
    let dir = Dir::new("sigterm");
    for (name, extra) in [
        ("tokio", &["--runtime", "tokio", "--grace", "3"][..]),
        ("smol", &["--runtime", "smol", "--grace", "3"][..]),
        ("hyper", &["--socketio", "--grace", "3"][..]),
    ] {
        let (mut server, addr) = serve(&pki, &dir, extra, None);
        let websocket = name != "hyper"; // --socketio serves Socket.IO, not a raw echo
        let mut sockets = Vec::new();
        if websocket {
            for i in 0..2 {
                let tls =
                    suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
                let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
                ws.send(tungstenite::Message::text(format!("before {i}")))
                    .unwrap();
                assert_eq!(ws.read().unwrap().to_string(), format!("Echo: before {i}"));
                sockets.push(ws);
            }
            // Sent, not yet answered, when the signal arrives.
            sockets[0]
                .send(tungstenite::Message::text("in flight"))
                .unwrap();
        }
        let pid = server.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let signalled = Instant::now();
        if websocket {
            assert_eq!(
                sockets[0].read().unwrap().to_string(),
                "Echo: in flight",
                "{name}: a message sent before the signal is answered"
            );
            for ws in &mut sockets {
                match ws.read() {
                    Ok(tungstenite::Message::Close(Some(f))) => {
                        assert_eq!(f.code, CloseCode::Away, "{name}")
                    }
                    other => panic!("{name}: expected a 1001 close, got {other:?}"),
                }
            }
        }
        // The listener is closed at once.
        let refused = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    break signalled.elapsed();
                }
                _ => {
                    assert!(
                        signalled.elapsed() < Duration::from_secs(2),
                        "{name}: still accepting after SIGTERM"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        assert!(
            refused < Duration::from_secs(1),
            "{name}: refused after {refused:?}"
        );
        drop(sockets);
        let status = loop {
            if let Some(s) = server.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(8),
                "{name}: still running after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "{name}: exit {status}");
    }
}

/// `GET /whoami` with `client`: the status line and the body.
fn whoami_as(addr: SocketAddr, pki: &Pki, client: &certauth_testkit::Issued) -> String {
    let Ok(mut tls) = suite::connect(addr, suite::tls_client(pki, Some(client))) else {
        return "no connection".into();
    };
    let _ = tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let _ = tls.flush();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text
        .rsplit("\r\n\r\n")
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    if status.starts_with("HTTP/1.1 200") {
        status
    } else {
        format!("{status} {body}")
    }
}

/// Sends SIGHUP, then asks until `check` holds (or 5 s pass).
fn hup_until(server: &Served, what: &str, mut check: impl FnMut() -> bool) {
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "after SIGHUP: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_anchors_policy_and_crls_and_keeps_a_broken_one_out() {
    let pki = Pki::new();
    for runtime in ["tokio", "smol"] {
        let dir = Dir::new(&format!("reload-{runtime}"));
        let empty_crl = certauth_testkit::pem("X509 CRL", &pki.root.crl(&[]));
        let crl = dir.file("crl.pem", &empty_crl);
        let policy = dir.file("policy.toml", "[allow]\ncn = [\"trusted-client\"]\n");
        let extra = [
            "--runtime",
            runtime,
            "--crl",
            &crl,
            "--policy",
            &policy,
            "--expose-reasons",
        ];
        let (server, addr) = serve(&pki, &dir, &extra, None);
        let ca = dir.0.join("ca.pem");
        // An open WebSocket, authenticated before any reload: it keeps echoing throughout.
        let tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
        let mut echo = |text: &str| {
            ws.send(tungstenite::Message::text(text)).unwrap();
            assert_eq!(
                ws.read().unwrap().to_string(),
                format!("Echo: {text}"),
                "{runtime}"
            );
        };
        echo("before");
        let other = whoami_as(addr, &pki, &pki.other_ca);
        assert!(
            other.ends_with("(UNABLE_TO_VERIFY_LEAF_SIGNATURE)"),
            "{runtime}: {other}"
        );

        // A second CA in the bundle: its client goes from 401 to 200.
        let bundle = format!("{}{}", pki.root.cert.pem(), pki.other_root.cert.pem());
        std::fs::write(&ca, bundle).unwrap();
        hup_until(&server, "the new CA's client is let in", || {
            whoami_as(addr, &pki, &pki.other_ca) == "HTTP/1.1 200 OK"
        });
        echo("after the CA");

        // A policy change.
        let denied = whoami_as(addr, &pki, &pki.denied);
        assert!(denied.ends_with("(POLICY_DENIED)"), "{runtime}: {denied}");
        std::fs::write(
            &policy,
            "[allow]\ncn = [\"trusted-client\", \"denied-client\"]\n",
        )
        .unwrap();
        hup_until(&server, "the policy lets denied-client in", || {
            whoami_as(addr, &pki, &pki.denied) == "HTTP/1.1 200 OK"
        });

        // A CRL revoking the trusted client: new connections get CERT_REVOKED.
        let revoking = certauth_testkit::pem("X509 CRL", &pki.root.crl(&[&pki.trusted]));
        std::fs::write(&crl, revoking).unwrap();
        hup_until(&server, "the trusted client is revoked", || {
            whoami_as(addr, &pki, &pki.trusted).ends_with("(CERT_REVOKED)")
        });
        echo("after the CRL");

        // A rotated server certificate: new connections get it.
        let mut leaf = certauth_testkit::Leaf::client("localhost").around_wall_clock();
        leaf.eku = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        leaf.sans = vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())];
        let rotated = pki.server_root.issue(&leaf);
        std::fs::write(dir.0.join("server.pem"), rotated.pem()).unwrap();
        std::fs::write(dir.0.join("server.key"), rotated.key_pem()).unwrap();
        let served_cert = || {
            let tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.denied))).unwrap();
            tls.conn.peer_certificates().unwrap()[0].clone()
        };
        hup_until(&server, "the rotated server certificate is served", || {
            served_cert() == rotated.der
        });
        echo("after the rotation");

        // A broken file: the reload is refused, the configuration in force stays.
        std::fs::write(&ca, "not a certificate").unwrap();
        std::fs::write(&policy, "[allow]\ncn = [\"nobody\"]\n").unwrap();
        let pid = server.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            whoami_as(addr, &pki, &pki.denied),
            "HTTP/1.1 200 OK",
            "{runtime}"
        );
        assert_eq!(
            whoami_as(addr, &pki, &pki.other_ca),
            "HTTP/1.1 200 OK",
            "{runtime}"
        );
        echo("after the broken reload");
        assert!(server.0.id() > 0);
    }
}

/// `GET /metrics` from `--metrics`.
fn scrape(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut tcp, &mut out);
    out
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_known_traffic() {
    let pki = Pki::new();
    for runtime in ["tokio", "smol"] {
        let dir = Dir::new(&format!("metrics-{runtime}"));
        let mport = free_port();
        let maddr: SocketAddr = ([127, 0, 0, 1], mport).into();
        let metrics_arg = maddr.to_string();
        let extra = [
            "--runtime",
            runtime,
            "--allow-cn",
            "trusted-client",
            "--metrics",
            &metrics_arg,
        ];
        let (server, addr) = serve(&pki, &dir, &extra, None);
        for _ in 0..3 {
            assert_eq!(whoami_as(addr, &pki, &pki.trusted), "HTTP/1.1 200 OK");
        }
        for _ in 0..2 {
            let _ = whoami_as(addr, &pki, &pki.other_ca);
        }
        let _ = whoami_as(addr, &pki, &pki.denied);
        if let Ok(mut t) = suite::connect(addr, suite::tls_client(&pki, None)) {
            let _ = t.write_all(b"GET /whoami HTTP/1.1\r\nHost: a\r\n\r\n");
            let _ = suite::read_to_close(&mut t);
        }
        // A stolen certificate: the handshake fails.
        let stolen = certauth_testkit::handshake::presenting(
            &pki.server_root.cert.der,
            vec![pki.trusted.der.clone()],
            &pki.denied.key,
            certauth_testkit::handshake::TLS13,
        );
        if let Ok(mut t) = suite::connect(addr, stolen) {
            let _ = t.write_all(b"GET /whoami HTTP/1.1\r\nHost: a\r\n\r\n");
            let _ = suite::read_to_close(&mut t);
        }
        // One WebSocket stays open.
        let tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
        ws.send(tungstenite::Message::text("hi")).unwrap();
        assert_eq!(ws.read().unwrap().to_string(), "Echo: hi");
        // A good reload, then a broken one.
        let pid = server.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(dir.0.join("ca.pem"), "broken").unwrap();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );

        let started = Instant::now();
        let text = loop {
            let text = scrape(maddr);
            let settled = metric(&text, "certauth_connections_active") == Some(1.0)
                && metric(&text, "certauth_reloads_total{result=\"error\"}") == Some(1.0);
            if settled || started.elapsed() > Duration::from_secs(5) {
                break text;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        for (name, want) in [
            (
                "certauth_decisions_total{outcome=\"allow\",code=\"ALLOWED\"}",
                4.0,
            ),
            (
                "certauth_decisions_total{outcome=\"deny\",code=\"UNABLE_TO_VERIFY_LEAF_SIGNATURE\"}",
                2.0,
            ),
            (
                "certauth_decisions_total{outcome=\"deny\",code=\"POLICY_DENIED\"}",
                1.0,
            ),
            (
                "certauth_decisions_total{outcome=\"deny\",code=\"NO_CERTIFICATE\"}",
                1.0,
            ),
            ("certauth_verifications_reused_total", 3.0),
            // The stolen certificate (the server is known to listen from its log: no probe
            // connection of the test's counts).
            ("certauth_handshake_failures_total", 1.0),
            ("certauth_connections_active", 1.0),
            ("certauth_reloads_total{result=\"ok\"}", 1.0),
            ("certauth_reloads_total{result=\"error\"}", 1.0),
            ("certauth_decision_seconds_count", 8.0),
            ("certauth_decision_seconds_bucket{le=\"+Inf\"}", 8.0),
            ("certauth_connections_dropped_total{reason=\"shed\"}", 0.0),
        ] {
            assert_eq!(metric(&text, name), Some(want), "{runtime}: {name}\n{text}");
        }
        drop(ws);
    }
}

/// `GET /healthz` on the operations listener (`--metrics ADDR --health`): the status line
/// and body.
fn healthz(addr: SocketAddr) -> String {
    let Ok(mut tcp) = TcpStream::connect(addr) else {
        return "no connection".into();
    };
    let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tcp)).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim();
    format!("{status} {body}")
}

#[test]
fn health_answers_without_a_certificate_until_the_drain() {
    let pki = Pki::new();
    let dir = Dir::new("health");
    let maddr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let metrics_arg = maddr.to_string();
    let extra = ["--metrics", &metrics_arg, "--health", "--grace", "4"];
    let (server, addr) = serve(&pki, &dir, &extra, None);
    let started = Instant::now();
    let mut got = healthz(maddr);
    while got == "no connection" && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        got = healthz(maddr);
    }
    assert_eq!(got, "HTTP/1.1 200 OK ok");
    // A WebSocket that never answers the 1001 close holds the drain for the grace period.
    let tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    let (_ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let mut got = healthz(maddr);
    while got != "HTTP/1.1 503 Service Unavailable draining"
        && started.elapsed() < Duration::from_secs(3)
    {
        std::thread::sleep(Duration::from_millis(50));
        got = healthz(maddr);
    }
    assert_eq!(got, "HTTP/1.1 503 Service Unavailable draining");
    // --health needs the operations listener.
    let out = Command::new(env!("CARGO_BIN_EXE_certauth"))
        .args(["serve", "--health"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--metrics"));
}
