//! The bounded load harness (loopback only; stops by itself).
//!
//! `load run [ROUNDS] [SESSIONS] [IDLE,IDLE…]` starts each server as its own process pinned to CPU 0 —
//! certauth on tokio, on smol, the hyper layer, a baseline tokio-rustls + async-tungstenite
//! server with rustls' own client verifier and no certauth, the same baseline on smol
//! (futures-rustls) and on hyper (the same axum app and serve helper without the layer),
//! and Node's `ws` with the seed's pattern — and, pinned to CPU 1, drives
//! full mTLS WebSocket sessions (handshake, upgrade, one echo, close) at concurrency 1, 16
//! and 64. It reports sessions per second and the server's CPU time per session (every
//! thread's run time from `/proc/PID/task/*/schedstat`), for accepted and for rejected
//! (401) clients, then the server's memory per idle authenticated connection at 1,000 and
//! 10,000 connections. All servers run at once; each round drives each of them in turn (the
//! order rotating), ratios are paired per round against the baseline and the median is
//! reported.
//!
//! `LOAD_KINDS=smol-baseline,smol load run …` measures only those servers (and the baseline).
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

use certauth_benches::{cpu_seconds, median, quartiles, rss_kib, switches};
use certauth_core::policy::allow_cn;
use certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth_core::{Authenticator, ChainVerifier, TrustAnchors};
use certauth_testkit::suite::{self, Pki, UPGRADE};
use futures_util::{SinkExt as _, StreamExt as _};

const KINDS: [&str; 7] = [
    "baseline",
    "tokio",
    "smol-baseline",
    "smol",
    "hyper-baseline",
    "hyper",
    "node",
];

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
    Arc::new(certauth_testkit::ring_provider())
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
    // rustls' own client verifier: the handshake itself rejects untrusted clients.
    let baseline_tls = || {
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
        Arc::new(config)
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
                            |ws, _| echo(ws),
                        )
                    }),
                )
                .layer(certauth_hyper::CertAuthLayer::new(auth()));
            certauth_hyper::serve(l, Some(tls()), app, std::future::pending())
                .await
                .unwrap();
        }),
        "hyper-baseline" => tokio_rt().block_on(async {
            // The same axum app and serve helper without the layer: rustls' own verifier
            // decides in the handshake, the route answers the upgrade itself.
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            let app = axum::Router::new().route(
                "/chat",
                axum::routing::get(|req: axum::extract::Request| async move {
                    let key = req
                        .headers()
                        .get("sec-websocket-key")
                        .map(|k| tungstenite::handshake::derive_accept_key(k.as_bytes()))
                        .unwrap_or_default();
                    tokio::spawn(async move {
                        if let Ok(upgraded) = hyper::upgrade::on(req).await {
                            let io = async_tungstenite::tokio::TokioAdapter::new(
                                hyper_util::rt::TokioIo::new(upgraded),
                            );
                            let ws = async_tungstenite::WebSocketStream::from_raw_socket(
                                io,
                                tungstenite::protocol::Role::Server,
                                Some(certauth_tokio::default_websocket_config()),
                            )
                            .await;
                            echo(ws).await;
                        }
                    });
                    axum::response::Response::builder()
                        .status(101)
                        .header("connection", "Upgrade")
                        .header("upgrade", "websocket")
                        .header("sec-websocket-accept", key)
                        .body(axum::body::Body::empty())
                        .unwrap()
                }),
            );
            certauth_hyper::serve(l, Some(baseline_tls()), app, std::future::pending())
                .await
                .unwrap();
        }),
        "baseline" => tokio_rt().block_on(async {
            // No certauth: rustls' own WebPkiClientVerifier decides in the handshake, then
            // async-tungstenite's own server handshake.
            let acceptor = tokio_rustls::TlsAcceptor::from(baseline_tls());
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
        "smol-baseline" => smol::block_on(async {
            // The same baseline on smol: futures-rustls with rustls' own verifier, then
            // async-tungstenite's own handshake, tasks on smol's global executor.
            let acceptor = futures_rustls::TlsAcceptor::from(baseline_tls());
            let l = smol::net::TcpListener::bind(addr).await.unwrap();
            loop {
                let Ok((tcp, _)) = l.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                smol::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Ok(ws) = async_tungstenite::accept_async_with_config(
                        tls,
                        Some(certauth_smol::default_websocket_config()),
                    )
                    .await
                    {
                        echo(ws).await;
                    }
                })
                .detach();
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
    /// How this server refuses an untrusted client.
    refusal: Refusal,
}

/// What a rejected session must see, exactly: a wrong answer is a failure, never a
/// rejection.
#[derive(Clone, Copy)]
enum Refusal {
    /// The TLS handshake fails (rustls' own verifier in the baselines): the connection
    /// fails or closes without a byte.
    Handshake,
    /// These bytes, then the close (the raw gates; Node's seed pattern).
    Exact(&'static str),
    /// This response, compared as the behaviour suite compares hyper's (status line, body
    /// and header set without `date`).
    Normalized(&'static str),
}

/// certauth's generic 401, as the raw gates write it.
const CERTAUTH_401: &str = "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
Content-Length: 12\r\nConnection: close\r\n\r\nUnauthorized";

fn refusal(kind: &str) -> Refusal {
    match kind {
        "tokio" | "smol" => Refusal::Exact(CERTAUTH_401),
        "hyper" => Refusal::Normalized(CERTAUTH_401),
        "node" => Refusal::Exact("HTTP/1.1 401 Unauthorized\r\n\r\n"),
        _ => Refusal::Handshake,
    }
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
    Running {
        child,
        port,
        refusal: refusal(kind),
    }
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

/// One session: handshake, upgrade, one echo, close (or, for an untrusted client, the
/// server's exact refusal). True if it ended as expected.
fn session(addr: SocketAddr, config: &Arc<rustls::ClientConfig>, expect: Option<Refusal>) -> bool {
    let Ok(mut tls) = suite::connect(addr, Arc::clone(config)) else {
        return matches!(expect, Some(Refusal::Handshake));
    };
    let Some(refusal) = expect else {
        let ok = open_ws(&mut tls).ends_with(b"Echo: x");
        let _ = tls.write_all(&[0x88, 0x80, 0, 0, 0, 0]);
        let _ = tls.flush();
        return ok;
    };
    let _ = tls.write_all(UPGRADE.as_bytes()).and_then(|()| tls.flush());
    let got = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    match refusal {
        Refusal::Handshake => got.is_empty(),
        Refusal::Exact(want) => got == want,
        Refusal::Normalized(want) => suite::Compare::Normalized.same(&got, want),
    }
}

struct Sample {
    per_sec: f64,
    cpu_ms: f64,
    /// The server's context switches per session.
    switches: f64,
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
    let expect = (!expect_echo).then_some(server.refusal);
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds(server.child.id());
    let sw0 = switches(server.child.id());
    let t = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, failures, config) =
                (Arc::clone(&next), Arc::clone(&failures), Arc::clone(config));
            std::thread::spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < sessions {
                    if !session(addr, &config, expect) {
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
    let sw = switches(server.child.id()) - sw0;
    Sample {
        per_sec: sessions as f64 / secs,
        cpu_ms: cpu * 1000.0 / sessions as f64,
        switches: sw as f64 / sessions as f64,
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

/// The servers to measure: all of [`KINDS`], or those named in `LOAD_KINDS` (comma-separated;
/// the baseline is always included, since every ratio is against it).
fn selected_kinds() -> Vec<&'static str> {
    let wanted = std::env::var("LOAD_KINDS").unwrap_or_default();
    if wanted.trim().is_empty() {
        return KINDS.to_vec();
    }
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    for w in &wanted {
        assert!(
            KINDS.contains(w),
            "LOAD_KINDS: unknown server {w:?}; known: {KINDS:?}"
        );
    }
    KINDS
        .into_iter()
        .filter(|k| *k == "baseline" || wanted.contains(k))
        .collect()
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
    let kinds = selected_kinds();
    let measurements: [(&str, &Arc<rustls::ClientConfig>, bool, usize); 4] = [
        ("accepted", &trusted, true, 1),
        ("accepted", &trusted, true, 16),
        ("accepted", &trusted, true, 64),
        ("rejected", &untrusted, false, 16),
    ];
    // Every server runs for the whole measurement (idle while others are driven), so each
    // round measures all of them within a few seconds of each other: the ratios are paired
    // against the same machine state. The order rotates each round.
    let servers: Vec<Running> = kinds.iter().map(|k| start(k, &dir)).collect();
    for server in &servers {
        drive(server, &trusted, true, 100, 16); // warm-up, not recorded
    }
    let mut table: Vec<(String, String, Vec<Sample>)> = Vec::new();
    for &kind in &kinds {
        for (label, _, _, concurrency) in measurements {
            table.push((
                kind.to_owned(),
                format!("{label} c={concurrency}"),
                Vec::new(),
            ));
        }
    }
    for round in 0..rounds {
        for (m, (label, config, echo, concurrency)) in measurements.into_iter().enumerate() {
            let n = if concurrency == 1 {
                sessions / 3
            } else {
                sessions
            };
            for i in 0..kinds.len() {
                let k = (i + round) % kinds.len();
                let s = drive(&servers[k], config, echo, n, concurrency);
                table[k * measurements.len() + m].2.push(s);
            }
            eprintln!("round {round}: {label} c={concurrency} done");
        }
    }
    drop(servers);
    println!(
        "\n| server | sessions | sessions/s (median) | server CPU per session, ms (median) | CPU vs baseline, paired: median (quartiles) | CPU vs its runtime's baseline, paired | context switches per session (median) | failures |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // Paired per round: the median of this server's CPU over `base`'s accepted path.
    let ratio = |samples: &[Sample], base: &str, key: &str| -> Option<(f64, f64, f64)> {
        let accepted = key.replace("rejected", "accepted");
        let (_, _, b) = table.iter().find(|(k, l, _)| k == base && *l == accepted)?;
        Some(quartiles(
            samples
                .iter()
                .zip(b)
                .map(|(s, b)| s.cpu_ms / b.cpu_ms)
                .collect(),
        ))
    };
    for (kind, key, samples) in &table {
        let own = match kind.as_str() {
            "smol" | "smol-baseline" => Some("smol-baseline"),
            "hyper" | "hyper-baseline" => Some("hyper-baseline"),
            "tokio" | "baseline" => Some("baseline"),
            _ => None,
        };
        let show = |r: Option<(f64, f64, f64)>| {
            r.map_or_else(
                || "–".to_owned(),
                |(q1, m, q3)| format!("{m:.2}x ({q1:.2}–{q3:.2})"),
            )
        };
        println!(
            "| {kind} | {key} | {:.0} | {:.3} | {} | {} | {:.1} | {} |",
            median(samples.iter().map(|s| s.per_sec).collect()),
            median(samples.iter().map(|s| s.cpu_ms).collect()),
            show(ratio(samples, "baseline", key)),
            show(own.and_then(|b| ratio(samples, b, key))),
            median(samples.iter().map(|s| s.switches).collect()),
            samples.iter().map(|s| s.failures).sum::<usize>(),
        );
    }
    println!("\n| server | idle connections | server memory per connection, KiB | failures |");
    println!("|---|---|---|---|");
    for &kind in &kinds {
        for &n in idle_counts {
            let server = start(kind, &dir);
            let (kib, failures) = idle(&server, &trusted, n);
            println!("| {kind} | {n} | {kib:.1} | {failures} |");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
