//! The per-session harness (issue 31; loopback only; stops by itself): server CPU per TLS
//! session (connect, handshake, one request, close), `certauth serve` against nginx, both
//! pinned to CPU 0, clients on CPU 1, in rotating turns.
//!
//! `sessions run [ROUNDS] [SESSIONS]` measures, in each round, `SESSIONS` sessions on four
//! client threads for each case:
//!
//! - resumed: each client thread resumes with a ticket the server sealed with the shared
//!   key (`--session-ticket-key` / `ssl_session_ticket_key`, the same 80-byte file);
//! - cold full: a full handshake with a client certificate never presented before (a fleet
//!   of devices reconnecting: certauth's verified-chain cache misses every time);
//! - warm full (certauth only): a full handshake, the same client certificate every time.
//!
//! Both servers ask for and verify the client certificate (nginx `ssl_verify_client on`).
//! The request is `GET /`: nginx answers `hello` (200), `certauth serve` its 404 text after
//! authenticating (its cheapest answer behind the decision). Needs `certauth` built next to
//! this binary: `cargo build --release -p certauth-cli -p certauth-benches`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::as_conversions,
    missing_docs
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certauth_benches::{cpu_seconds, quartiles};
use certauth_testkit::suite::Pki;
use certauth_testkit::{Issued, Leaf};
use rustls::ClientConfig;
use rustls::client::Resumption;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(
            args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5),
            args.get(2).and_then(|a| a.parse().ok()).unwrap_or(400),
        ),
        _ => {
            eprintln!("usage: sessions run [ROUNDS] [SESSIONS]");
            std::process::exit(2);
        }
    }
}

struct Running {
    child: Child,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(kind: &str, dir: &Path) -> Running {
    let port = free_port();
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]);
    if kind == "nginx" {
        let tmp = dir.join("nginx-tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let t = tmp.to_string_lossy();
        let conf = format!(
            "master_process off;\npid {pid};\nerror_log {err} warn;\nevents {{}}\nhttp {{\n\
             access_log off;\nclient_body_temp_path {t}; proxy_temp_path {t};\n\
             fastcgi_temp_path {t}; uwsgi_temp_path {t}; scgi_temp_path {t};\n\
             server {{\n listen 127.0.0.1:{port} ssl;\n ssl_certificate {cert};\n\
             ssl_certificate_key {key};\n ssl_client_certificate {ca};\n\
             ssl_verify_client on;\n ssl_verify_depth 3;\n\
             ssl_session_tickets on;\n ssl_session_ticket_key {ticket};\n\
             ssl_session_cache off;\n\
             location / {{ return 200 \"hello\"; }}\n }}\n}}\n",
            pid = p("nginx.pid"),
            err = p("nginx-error.log"),
            cert = p("server.pem"),
            key = p("server.key"),
            ca = p("ca.pem"),
            ticket = p("ticket.key"),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        cmd.arg("/usr/sbin/nginx").args([
            "-c",
            &p("nginx.conf"),
            "-p",
            &p(""),
            "-g",
            "daemon off;",
        ]);
    } else {
        let certauth = std::env::current_exe().unwrap().with_file_name("certauth");
        assert!(
            certauth.is_file(),
            "build certauth next to this binary: cargo build --release -p certauth-cli"
        );
        cmd.arg(certauth).args([
            "serve",
            "--ca",
            &p("ca.pem"),
            "--cert",
            &p("server.pem"),
            "--key",
            &p("server.key"),
            "--session-ticket-key",
            &p("ticket.key"),
            "--no-watch",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        cmd.env("RUST_LOG", "error");
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{kind} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running { child, port }
}

fn client_config(pki: &Pki, leaf: &Issued, resume: bool) -> Arc<ClientConfig> {
    let mut config = certauth_testkit::handshake::presenting(
        &pki.server_root.cert.der,
        vec![leaf.der.clone()],
        &leaf.key,
        rustls::DEFAULT_VERSIONS,
    );
    let c = Arc::make_mut(&mut config);
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        c.resumption = Resumption::disabled();
    }
    config
}

/// One session: whether it resumed, and whether the server answered as authenticated.
fn session(addr: SocketAddr, config: &Arc<ClientConfig>) -> (bool, bool) {
    let Ok(mut tcp) = TcpStream::connect(addr) else {
        return (false, false);
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return (false, false);
        }
    }
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let sent = tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while sent.is_ok() {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    // nginx's hello, or certauth's 404 (only an authenticated client gets that far).
    let ok = got.starts_with(b"HTTP/1.1 200") || got.starts_with(b"HTTP/1.1 404");
    (resumed, ok)
}

/// How each client thread connects.
#[derive(Clone)]
enum Sessions {
    /// One configuration per thread, resuming after a first full handshake.
    Resumed(Vec<Arc<ClientConfig>>),
    /// A configuration per session, each with its own certificate, no resumption.
    Cold(Vec<Arc<ClientConfig>>),
    /// The same certificate every session, no resumption.
    Warm(Arc<ClientConfig>),
}

/// Server CPU per session over `total` sessions on four threads, in µs; sessions that did
/// not resume (when they should) or were not answered.
fn measure(server: &Running, sessions: &Sessions, total: usize) -> (f64, usize) {
    let addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
    let per = total / 4;
    let barrier = Arc::new(std::sync::Barrier::new(5));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (sessions, barrier) = (sessions.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                if let Sessions::Resumed(configs) = &sessions {
                    // The first full handshake brings the ticket.
                    let _ = session(addr, &configs[t]);
                }
                barrier.wait();
                barrier.wait();
                let mut bad = 0;
                for i in 0..per {
                    let (resumed, ok) = match &sessions {
                        Sessions::Resumed(c) => session(addr, &c[t]),
                        Sessions::Cold(c) => session(addr, &c[t * per + i]),
                        Sessions::Warm(c) => session(addr, c),
                    };
                    let should_resume = matches!(sessions, Sessions::Resumed(_));
                    bad += usize::from(!ok || resumed != should_resume);
                }
                bad
            })
        })
        .collect();
    barrier.wait();
    let cpu0 = cpu_seconds(server.child.id());
    barrier.wait();
    let bad: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let cpu = cpu_seconds(server.child.id()) - cpu0;
    (cpu * 1e6 / (per * 4) as f64, bad)
}

fn run(rounds: usize, total: usize) {
    let _ = Command::new("taskset")
        .args(["-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    let pki = Pki::new();
    let dir: PathBuf =
        std::env::temp_dir().join(format!("certauth-sessions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |n: &str, t: &[u8]| std::fs::write(dir.join(n), t).unwrap();
    write("ca.pem", pki.root.cert.pem().as_bytes());
    write("server.pem", pki.server.pem().as_bytes());
    write("server.key", pki.server.key_pem().as_bytes());
    let mut key = [0u8; 80];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut key)
        .unwrap();
    write("ticket.key", &key);

    let servers = [
        ("certauth", start("certauth", &dir)),
        ("nginx", start("nginx", &dir)),
    ];
    let server = |k: &str| &servers.iter().find(|(n, _)| *n == k).unwrap().1;
    // Fresh client certificates: every cold session of every round presents a new one.
    let per_case = total / 4 * 4;
    let fresh = |n: usize| -> Vec<Arc<ClientConfig>> {
        (0..n)
            .map(|i| {
                let leaf = pki
                    .root
                    .issue(&Leaf::client(&format!("device-{i}")).around_wall_clock());
                client_config(&pki, &leaf, false)
            })
            .collect()
    };
    let resumed = || {
        Sessions::Resumed(
            (0..4)
                .map(|_| client_config(&pki, &pki.trusted, true))
                .collect(),
        )
    };
    let cases: [(&str, &str); 5] = [
        (
            "(a) certauth serve, resumed (shared ticket key)",
            "certauth",
        ),
        ("(b) nginx, resumed (shared ticket key)", "nginx"),
        (
            "(c) certauth serve, cold full (a new client certificate each)",
            "certauth",
        ),
        (
            "(d) nginx, cold full (a new client certificate each)",
            "nginx",
        ),
        (
            "(e) certauth serve, warm full (the same client certificate)",
            "certauth",
        ),
    ];
    println!(
        "per-session harness: {rounds} rounds x {per_case} sessions per case on 4 client \
         threads; servers on CPU 0, clients on CPU 1; TLS 1.3"
    );
    // Warm-up: both servers and their caches' code paths, not the measured certificates.
    for (_, kind) in &cases {
        let _ = measure(
            server(kind),
            &Sessions::Warm(client_config(&pki, &pki.trusted, false)),
            200,
        );
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut bad = vec![0usize; cases.len()];
    for round in 0..rounds {
        for i in 0..cases.len() {
            let k = (i + round) % cases.len();
            let sessions = match k {
                0 | 1 => resumed(),
                2 | 3 => Sessions::Cold(fresh(per_case)),
                _ => Sessions::Warm(client_config(&pki, &pki.trusted, false)),
            };
            let (us, failed) = measure(server(cases[k].1), &sessions, per_case);
            samples[k].push(us);
            bad[k] += failed;
        }
        eprintln!("round {round} done");
    }
    println!(
        "\n| server, sessions | server CPU per session, µs: median (quartiles) | not as expected |"
    );
    println!("|---|---|---|");
    for (k, (name, _)) in cases.iter().enumerate() {
        let (q1, m, q3) = quartiles(samples[k].clone());
        println!("| {name} | {m:.0} ({q1:.0}–{q3:.0}) | {} |", bad[k]);
    }
    let pair = |a: usize, b: usize| {
        quartiles(
            samples[a]
                .iter()
                .zip(&samples[b])
                .map(|(x, y)| x / y)
                .collect(),
        )
        .1
    };
    println!("\nPaired ratios (median over rounds):");
    println!(
        "- resumed, certauth / nginx: {:.2}x (target <= 0.8)",
        pair(0, 1)
    );
    println!(
        "- cold full, certauth / nginx: {:.2}x (target <= 1.0)",
        pair(2, 3)
    );
    println!("- warm full / cold full, certauth: {:.2}x", pair(4, 2));
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
