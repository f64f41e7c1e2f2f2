//! The bounded load harness (loopback only; stops by itself).
//!
//! `load run [ROUNDS] [SESSIONS] [IDLE,IDLE…]` starts each server as its own process pinned to CPU 0 —
//! certauth on tokio, on smol, the hyper layer, a baseline tokio-rustls + async-tungstenite
//! server with rustls' own client verifier and no certauth, and Node's `ws` with the seed's
//! pattern — and, pinned to CPU 1, drives full mTLS WebSocket sessions (handshake, upgrade,
//! one echo, close) at concurrency 1, 16 and 64. It reports sessions per second and the
//! server's CPU time per session (utime + stime from /proc), for accepted and for rejected
//! (401) clients, then the server's memory per idle authenticated connection at 1,000 and
//! 10,000 connections. Servers alternate round by round; ratios are paired per round
//! against the baseline and the median is reported.
//!
//! `load serve KIND PORT DIR` is the server side (used by `run`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::as_conversions,
    missing_docs
)]

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use certauth_core::policy::allow_cn;
use certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth_core::{Authenticator, ChainVerifier, TrustAnchors};
use certauth_testkit::suite::{self, Pki, UPGRADE};
use futures_util::{SinkExt as _, StreamExt as _};

const KINDS: [&str; 5] = ["baseline", "tokio", "smol", "hyper", "node"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1], args[2].parse().unwrap(), Path::new(&args[3])),
        Some("run") => run(
            args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3),
            args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1500),
            &args.get(3).map_or_else(
                || vec![1_000, 10_000],
                |a| a.split(',').filter_map(|n| n.parse().ok()).collect(),
            ),
        ),
        _ => {
            eprintln!(
                "usage: load run [ROUNDS] [SESSIONS] [IDLE,IDLE…] | load serve KIND PORT DIR"
            );
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------- servers

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn serve(kind: &str, port: u16, dir: &Path) {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let anchors = TrustAnchors::from_pem(&read("ca.pem")).unwrap();
    let (chain, key) = load_server_identity(&read("server.pem"), &read("server.key")).unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let auth = || {
        Authenticator::builder()
            .verifier(ChainVerifier::new(
                anchors.clone(),
                provider().signature_verification_algorithms.all,
            ))
            .policy(allow_cn(["trusted-client"]))
            .build()
            .unwrap()
    };
    let tls = || {
        Arc::new(
            server_config(
                provider(),
                chain.clone(),
                key.clone_key(),
                &anchors,
                ClientAuthMode::Deferred,
            )
            .unwrap(),
        )
    };
    match kind {
        "tokio" => tokio_rt().block_on(async {
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            let gate = certauth_tokio::Gate::new(auth(), tls());
            certauth_tokio::serve_websocket(
                l,
                gate,
                Default::default(),
                std::future::pending(),
                |ws, _| echo(ws),
            )
            .await
            .unwrap();
        }),
        "smol" => smol::block_on(async {
            let l = smol::net::TcpListener::bind(addr).await.unwrap();
            let gate = certauth_smol::Gate::new(auth(), tls());
            certauth_smol::serve_websocket(
                l,
                gate,
                Default::default(),
                std::future::pending(),
                |ws, _| echo(ws),
            )
            .await
            .unwrap();
        }),
        "hyper" => tokio_rt().block_on(async {
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            let app = axum::Router::new()
                .route(
                    "/chat",
                    axum::routing::get(|req: axum::extract::Request| async move {
                        certauth_hyper::upgrade_websocket::<_, axum::body::Body, _, _>(
                            req,
                            certauth_tokio::default_websocket_config(),
                            |ws, _| echo(ws),
                        )
                    }),
                )
                .layer(certauth_hyper::CertAuthLayer::new(auth()));
            certauth_hyper::serve(l, Some(tls()), app, std::future::pending())
                .await
                .unwrap();
        }),
        "baseline" => tokio_rt().block_on(async {
            // No certauth: rustls' own WebPkiClientVerifier decides in the handshake, then
            // async-tungstenite's own server handshake.
            let mut roots = rustls::RootCertStore::empty();
            for c in anchors.certificates() {
                roots
                    .add(rustls::pki_types::CertificateDer::from(c.der().to_vec()))
                    .unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .unwrap();
            let config = rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain.clone(), key.clone_key())
                .unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            loop {
                let Ok((tcp, _)) = l.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let io = async_tungstenite::tokio::TokioAdapter::new(tls);
                    if let Ok(ws) = async_tungstenite::accept_async_with_config(
                        io,
                        Some(certauth_tokio::default_websocket_config()),
                    )
                    .await
                    {
                        echo(ws).await;
                    }
                });
            }
        }),
        other => panic!("unknown server kind {other}"),
    }
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

async fn echo<S>(mut ws: S)
where
    S: futures_util::Stream<Item = Result<tungstenite::Message, tungstenite::Error>>
        + futures_util::Sink<tungstenite::Message>
        + Unpin,
{
    while let Some(Ok(m)) = ws.next().await {
        if let tungstenite::Message::Text(t) = m
            && ws
                .send(tungstenite::Message::text(format!("Echo: {t}")))
                .await
                .is_err()
        {
            break;
        }
    }
}

// ---------------------------------------------------------------- measuring

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

fn start(kind: &str, dir: &Path) -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]);
    if kind == "node" {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node/ws-server.js");
        cmd.arg("node").arg(script).arg(port.to_string()).arg(dir);
    } else {
        cmd.arg(std::env::current_exe().unwrap())
            .args(["serve", kind, &port.to_string()])
            .arg(dir);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{kind} server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running { child, port }
}

/// The server's (pid's) CPU time in seconds: utime + stime.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after_comm
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // Fields after the command: state(0, not numeric, skipped) ... utime is field 14, stime 15
    // of the full line; here (state dropped) they are at 10 and 11.
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    ticks as f64 / 100.0
}

fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

/// Opens a WebSocket the way ordinary clients do (the upgrade, then after the 101 one text
/// frame) and reads the echo. (async-tungstenite's own server handshake stalls when the
/// first frame arrives in the same read as the head, so the harness never sends them
/// together; certauth's gates handle that case, see the behaviour suite.)
fn open_ws(tls: &mut suite::Tls) -> Vec<u8> {
    if tls
        .write_all(UPGRADE.as_bytes())
        .and_then(|()| tls.flush())
        .is_err()
    {
        return Vec::new();
    }
    let head = suite::read_until(tls, b"\r\n\r\n");
    if !head.starts_with(b"HTTP/1.1 101") {
        return head;
    }
    if tls
        .write_all(&suite::client_text_frame("x"))
        .and_then(|()| tls.flush())
        .is_err()
    {
        return head;
    }
    [head, suite::read_until(tls, b"Echo: x")].concat()
}

/// One session: handshake, upgrade, one echo, close. True if it ended as expected.
fn session(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, expect_echo: bool) -> bool {
    let Ok(mut tls) = suite::connect(addr, Arc::clone(config)) else {
        return !expect_echo;
    };
    let got = open_ws(&mut tls);
    let ok = if expect_echo {
        got.ends_with(b"Echo: x")
    } else {
        got.starts_with(b"HTTP/1.1 401") || got.is_empty()
    };
    let _ = tls.write_all(&[0x88, 0x80, 0, 0, 0, 0]);
    let _ = tls.flush();
    ok
}

struct Sample {
    per_sec: f64,
    cpu_ms: f64,
    failures: usize,
}

fn drive(
    server: &Running,
    config: &Arc<rustls::ClientConfig>,
    expect_echo: bool,
    sessions: usize,
    concurrency: usize,
) -> Sample {
    let addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds(server.child.id());
    let t = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, failures, config) =
                (Arc::clone(&next), Arc::clone(&failures), Arc::clone(config));
            std::thread::spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < sessions {
                    if !session(addr, &config, expect_echo) {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    let cpu = cpu_seconds(server.child.id()) - cpu0;
    Sample {
        per_sec: sessions as f64 / secs,
        cpu_ms: cpu * 1000.0 / sessions as f64,
        failures: failures.load(Ordering::Relaxed),
    }
}

/// Server memory per idle authenticated WebSocket connection, in KiB.
fn idle(server: &Running, config: &Arc<rustls::ClientConfig>, n: usize) -> (f64, usize) {
    let addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(server.child.id());
    let mut held = Vec::with_capacity(n);
    let mut failures = 0;
    for _ in 0..n {
        match suite::connect(addr, Arc::clone(config)) {
            Ok(mut tls) => {
                let got = open_ws(&mut tls);
                if !got.ends_with(b"Echo: x") {
                    failures += 1;
                }
                held.push(tls);
            }
            Err(_) => failures += 1,
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(server.child.id());
    drop(held);
    ((after - before) / n as f64, failures)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn run(rounds: usize, sessions: usize, idle_counts: &[usize]) {
    // The client side runs on CPU 1, the servers on CPU 0.
    let _ = Command::new("taskset")
        .args(["-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    let pki = Pki::new();
    let dir = std::env::temp_dir().join(format!("certauth-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |n: &str, t: String| std::fs::write(dir.join(n), t).unwrap();
    write("ca.pem", pki.root.cert.pem());
    write("server.pem", pki.server.pem());
    write("server.key", pki.server.key_pem());
    // Fresh sessions every time: no TLS resumption, so every session is a full handshake.
    let no_resume = |mut c: Arc<rustls::ClientConfig>| {
        Arc::make_mut(&mut c).resumption = rustls::client::Resumption::disabled();
        c
    };
    let trusted = no_resume(suite::tls_client(&pki, Some(&pki.trusted)));
    let untrusted = no_resume(suite::tls_client(&pki, Some(&pki.other_ca)));

    println!(
        "load harness: {rounds} rounds, {sessions} sessions per measurement; servers pinned to CPU 0, clients to CPU 1"
    );
    let mut table: Vec<(String, String, Vec<Sample>)> = Vec::new();
    for round in 0..rounds {
        for kind in KINDS {
            let server = start(kind, &dir);
            for (label, config, echo) in [
                ("accepted", &trusted, true),
                ("rejected", &untrusted, false),
            ] {
                for concurrency in [1, 16, 64] {
                    if label == "rejected" && concurrency != 16 {
                        continue;
                    }
                    let n = if concurrency == 1 {
                        sessions / 3
                    } else {
                        sessions
                    };
                    let s = drive(&server, config, echo, n, concurrency);
                    let key = format!("{label} c={concurrency}");
                    match table.iter_mut().find(|(k, l, _)| k == kind && *l == key) {
                        Some((_, _, v)) => v.push(s),
                        None => table.push((kind.to_owned(), key, vec![s])),
                    }
                }
            }
            eprintln!("round {round}: {kind} done");
        }
    }
    println!(
        "\n| server | sessions | sessions/s (median) | server CPU per session, ms (median) | CPU vs baseline (paired median) | failures |"
    );
    println!("|---|---|---|---|---|---|");
    for (kind, key, samples) in &table {
        let base = table
            .iter()
            .find(|(k, l, _)| k == "baseline" && l == key.replace("rejected", "accepted").as_str())
            .map(|(_, _, v)| v);
        let ratio = base.map_or(f64::NAN, |b| {
            median(
                samples
                    .iter()
                    .zip(b)
                    .map(|(s, b)| s.cpu_ms / b.cpu_ms)
                    .collect(),
            )
        });
        println!(
            "| {kind} | {key} | {:.0} | {:.3} | {:.2}x | {} |",
            median(samples.iter().map(|s| s.per_sec).collect()),
            median(samples.iter().map(|s| s.cpu_ms).collect()),
            ratio,
            samples.iter().map(|s| s.failures).sum::<usize>(),
        );
    }
    println!("\n| server | idle connections | server memory per connection, KiB | failures |");
    println!("|---|---|---|---|");
    for kind in KINDS {
        for &n in idle_counts {
            let server = start(kind, &dir);
            let (kib, failures) = idle(&server, &trusted, n);
            println!("| {kind} | {n} | {kib:.1} | {failures} |");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
