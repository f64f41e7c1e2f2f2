//! The per-request harness (loopback only; stops by itself): server CPU per keep-alive
//! request, all servers as processes pinned to CPU 0, clients on CPU 1.
//!
//! `requests run [ROUNDS] [REQUESTS]` drives, in each round and in rotating order, four
//! keep-alive connections sending `REQUESTS` requests in all (`GET /whoami`, answered
//! `hello`) to:
//!
//! - `hyper-noauth`: the axum app on `certauth_hyper::serve_with`, no layer (baseline);
//! - `hyper`: the same with `CertAuthLayer`, a client issued by the root, and a client
//!   issued by a P-384 intermediate;
//! - `node`: Node's https server reading `getPeerCertificate()` per request, as
//!   client-certificate-auth does (warmed up with 10,000 requests first);
//! - `nginx`: `ssl_verify_client on` returning `hello` (when nginx is installed);
//! - `header`: the layer in header mode behind a "proxy" (RFC 9440 `Client-Cert` and
//!   `Client-Cert-Chain`, the chain verified again against the CA) with a chain of one and
//!   of three, and `header-nocache`, the same verifying every request (what certauth did
//!   before it remembered results).
//!
//! `requests serve KIND PORT DIR` is the server side.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::as_conversions,
    missing_docs
)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certauth_benches::{cpu_seconds, quartiles};
use certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth_core::{
    Authenticator, ChainVerifier, Limits, Preset, ProxyHeaderConfig, TrustAnchors,
};
use certauth_testkit::suite::{self, Pki};
use certauth_testkit::{Issued, KeyKind, Leaf, encode};
use certauth_tokio::ServeOptions;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1], args[2].parse().unwrap(), Path::new(&args[3])),
        Some("run") => run(
            args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5),
            args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4000),
        ),
        _ => {
            eprintln!("usage: requests run [ROUNDS] [REQUESTS] | requests serve KIND PORT DIR");
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------- servers

fn serve(kind: &str, port: u16, dir: &Path) {
    let provider = Arc::new(certauth_testkit::ring_provider());
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let anchors = TrustAnchors::from_pem(&read("ca.pem")).unwrap();
    let (chain, key) = load_server_identity(&read("server.pem"), &read("server.key")).unwrap();
    let verifier = ChainVerifier::new(
        anchors.clone(),
        provider.signature_verification_algorithms.all,
    );
    let tls = server_config(provider, chain, key, &anchors, ClientAuthMode::Deferred).unwrap();
    let hello = axum::routing::get(|| async { "hello" });
    let (tls, app) = match kind {
        "hyper-noauth" => (Some(tls), axum::Router::new().route("/whoami", hello)),
        "hyper" => {
            let auth = Authenticator::builder().verifier(verifier).build().unwrap();
            let layer = certauth_hyper::CertAuthLayer::new(auth);
            (
                Some(tls),
                axum::Router::new().route("/whoami", hello).layer(layer),
            )
        }
        "header" | "header-nocache" => {
            let verifier = if kind == "header" {
                verifier
            } else {
                verifier.with_cache_entries(0)
            };
            let proxy = ProxyHeaderConfig::preset(Preset::Rfc9440)
                .with_trusted_proxies(["127.0.0.1"])
                .unwrap();
            let auth = Authenticator::builder()
                .verifier(verifier)
                .proxy_header(proxy)
                .build()
                .unwrap();
            let layer = certauth_hyper::CertAuthLayer::new(auth);
            (
                None,
                axum::Router::new().route("/whoami", hello).layer(layer),
            )
        }
        other => panic!("unknown server kind {other}"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let tls = tls.map(Arc::new);
        let (limits, options) = (Limits::DEFAULT, ServeOptions::DEFAULT);
        certauth_hyper::serve_with(
            l,
            tls.map(Into::into),
            limits,
            options,
            app,
            std::future::pending(),
        )
        .await
        .unwrap();
    });
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

fn nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn start(kind: &str, dir: &Path) -> Running {
    let port = free_port();
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"]);
    match kind {
        "node" => {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node/https-server.js");
            cmd.arg("node").arg(script).arg(port.to_string()).arg(dir);
        }
        "nginx" => {
            let tmp = dir.join("nginx-tmp");
            std::fs::create_dir_all(&tmp).unwrap();
            let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
            let t = tmp.to_string_lossy();
            let conf = format!(
                "master_process off;\npid {pid};\nerror_log {err} warn;\nevents {{}}\nhttp {{\n\
                 access_log off;\nclient_body_temp_path {t}; proxy_temp_path {t};\n\
                 fastcgi_temp_path {t}; uwsgi_temp_path {t}; scgi_temp_path {t};\n\
                 keepalive_requests 10000000; keepalive_timeout 600s;\n\
                 server {{\n listen 127.0.0.1:{port} ssl;\n ssl_certificate {cert};\n\
                 ssl_certificate_key {key};\n ssl_client_certificate {ca};\n\
                 ssl_verify_client on;\n ssl_verify_depth 3;\n\
                 location / {{ return 200 \"hello\"; }}\n }}\n}}\n",
                pid = p("nginx.pid"),
                err = p("nginx-error.log"),
                cert = p("server.pem"),
                key = p("server.key"),
                ca = p("ca.pem"),
            );
            std::fs::write(dir.join("nginx.conf"), conf).unwrap();
            cmd.arg(nginx().unwrap()).args([
                "-c",
                &p("nginx.conf"),
                "-p",
                &p(""),
                "-g",
                "daemon off;",
            ]);
        }
        _ => {
            cmd.arg(std::env::current_exe().unwrap())
                .args(["serve", kind, &port.to_string()])
                .arg(dir);
        }
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

// ---------------------------------------------------------------- clients

/// How a measurement's client connects and what it sends with each request.
#[derive(Clone)]
enum Client {
    Tls(Arc<rustls::ClientConfig>),
    /// Plain HTTP with these extra header lines (header mode).
    Plain(String),
}

fn requests(s: &mut (impl std::io::Read + std::io::Write), headers: &str, n: usize) -> usize {
    let request = format!("GET /whoami HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n");
    let mut ok = 0;
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        if s.write_all(request.as_bytes())
            .and_then(|()| s.flush())
            .is_err()
        {
            break;
        }
        // Each response ends with its body, `hello` (Content-Length 5).
        let mut got = Vec::new();
        while !got.ends_with(b"hello") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return ok,
                Ok(k) => got.extend_from_slice(&buf[..k]),
            }
        }
        ok += usize::from(got.starts_with(b"HTTP/1.1 200"));
    }
    ok
}

/// Server CPU per request over `total` requests on four connections, in µs; the failures.
fn measure(server: &Running, client: &Client, total: usize) -> (f64, usize) {
    let addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
    let per = total / 4;
    // Connect first, so that handshakes are not counted: each thread opens its connection,
    // waits, then sends.
    let barrier = Arc::new(std::sync::Barrier::new(5));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (client, barrier) = (client.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                // One warm-up request opens the connection and authenticates it.
                let conn = Warm::open(addr, &client);
                barrier.wait();
                barrier.wait();
                conn.map_or(0, |mut c| c.send(per))
            })
        })
        .collect();
    barrier.wait();
    let cpu0 = cpu_seconds(server.child.id());
    barrier.wait();
    let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let cpu = cpu_seconds(server.child.id()) - cpu0;
    (cpu * 1e6 / (per * 4) as f64, per * 4 - answered)
}

/// A connection that has served one request already.
enum Warm {
    Tls(Box<suite::Tls>),
    Plain(TcpStream, String),
}

impl Warm {
    fn open(addr: SocketAddr, client: &Client) -> Option<Self> {
        let mut w = match client {
            Client::Tls(c) => Self::Tls(Box::new(suite::connect(addr, Arc::clone(c)).ok()?)),
            Client::Plain(h) => {
                let tcp = TcpStream::connect(addr).ok()?;
                tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
                tcp.set_nodelay(true).ok()?;
                Self::Plain(tcp, h.clone())
            }
        };
        (w.send(1) == 1).then_some(w)
    }

    fn send(&mut self, n: usize) -> usize {
        match self {
            Self::Tls(t) => requests(&mut **t, "", n),
            Self::Plain(t, h) => requests(t, h, n),
        }
    }
}

fn tls_client(pki: &Pki, chain: &[&Issued]) -> Client {
    let key = &chain[0].key;
    let ders = chain.iter().map(|c| c.der.clone()).collect();
    let mut config = certauth_testkit::handshake::presenting(
        &pki.server_root.cert.der,
        ders,
        key,
        rustls::DEFAULT_VERSIONS,
    );
    Arc::make_mut(&mut config).alpn_protocols = vec![b"http/1.1".to_vec()];
    Client::Tls(config)
}

fn header_client(leaf: &Issued, chain: &[&Issued]) -> Client {
    let mut h = format!("Client-Cert: {}\r\n", encode::sf_binary(&leaf.der));
    if !chain.is_empty() {
        let list: Vec<String> = chain.iter().map(|c| encode::sf_binary(&c.der)).collect();
        h.push_str(&format!("Client-Cert-Chain: {}\r\n", list.join(", ")));
    }
    Client::Plain(h)
}

fn run(rounds: usize, total: usize) {
    let _ = Command::new("taskset")
        .args(["-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    let pki = Pki::new();
    let inter = pki
        .root
        .intermediate_with_key("Bench P-384 Intermediate", KeyKind::P384);
    let from_inter = inter.issue(&Leaf::client("trusted-client").around_wall_clock());
    let dir = std::env::temp_dir().join(format!("certauth-requests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |n: &str, t: String| std::fs::write(dir.join(n), t).unwrap();
    write("ca.pem", pki.root.cert.pem());
    write("server.pem", pki.server.pem());
    write("server.key", pki.server.key_pem());

    let mut kinds = vec!["hyper-noauth", "hyper", "node", "header", "header-nocache"];
    if nginx().is_some() {
        kinds.push("nginx");
    }
    let servers: Vec<(&str, Running)> = kinds.iter().map(|k| (*k, start(k, &dir))).collect();
    let server = |k: &str| &servers.iter().find(|(n, _)| *n == k).unwrap().1;
    let root_client = tls_client(&pki, &[&pki.trusted]);
    let inter_client = tls_client(&pki, &[&from_inter, &inter.cert]);
    let mut cases: Vec<(&str, &str, Client)> = vec![
        (
            "(a) hyper, no auth (baseline)",
            "hyper-noauth",
            root_client.clone(),
        ),
        (
            "(b) certauth-hyper, root-issued client",
            "hyper",
            root_client.clone(),
        ),
        (
            "(c) certauth-hyper, P-384 intermediate-issued client",
            "hyper",
            inter_client.clone(),
        ),
        (
            "(d) Node https, getPeerCertificate() + CN",
            "node",
            root_client.clone(),
        ),
        (
            "header mode, chain of one, verified again",
            "header",
            header_client(&pki.trusted, &[]),
        ),
        (
            "header mode, chain of three, verified again",
            "header",
            header_client(&from_inter, &[&inter.cert, &pki.root.cert]),
        ),
        (
            "header mode, chain of three, verified every request (no cache)",
            "header-nocache",
            header_client(&from_inter, &[&inter.cert, &pki.root.cert]),
        ),
    ];
    if nginx().is_some() {
        cases.push((
            "(e) nginx, ssl_verify_client on",
            "nginx",
            root_client.clone(),
        ));
    }
    println!(
        "per-request harness: {rounds} rounds x {total} keep-alive requests on 4 connections; \
         servers on CPU 0, clients on CPU 1"
    );
    // Node's JIT needs about 10,000 requests before its per-request cost settles.
    let (_, failed) = measure(server("node"), &root_client, 12_000);
    assert_eq!(failed, 0, "node warm-up failed");
    for (_, kind, client) in &cases {
        let _ = measure(server(kind), client, 400);
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut failures = vec![0usize; cases.len()];
    for round in 0..rounds {
        for i in 0..cases.len() {
            let k = (i + round) % cases.len();
            let (_, kind, client) = &cases[k];
            let (us, failed) = measure(server(kind), client, total);
            samples[k].push(us);
            failures[k] += failed;
        }
        eprintln!("round {round} done");
    }
    println!(
        "\n| server, client | server CPU per request, µs: median (quartiles) | vs (a), paired | failures |"
    );
    println!("|---|---|---|---|");
    for (k, (name, _, _)) in cases.iter().enumerate() {
        let (q1, m, q3) = quartiles(samples[k].clone());
        let ratio = quartiles(
            samples[k]
                .iter()
                .zip(&samples[0])
                .map(|(s, b)| s / b)
                .collect(),
        );
        println!(
            "| {name} | {m:.1} ({q1:.1}–{q3:.1}) | {:.2}x | {} |",
            ratio.1, failures[k]
        );
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
    println!("- (c) / (b): {:.2}x (target <= 1.25)", pair(2, 1));
    println!(
        "- (b) - (a): {:.1} µs, (b) / (a): {:.2}x (target (b) <= 1.15 x (a) + 5 µs)",
        quartiles(
            samples[1]
                .iter()
                .zip(&samples[0])
                .map(|(x, y)| x - y)
                .collect()
        )
        .1,
        pair(1, 0)
    );
    println!("- (c) / (d): {:.2}x (target <= 0.6)", pair(2, 3));
    println!(
        "- header chain of three / chain of one: {:.2}x (target <= 1.3)",
        pair(5, 4)
    );
    println!(
        "- header chain of three, no cache / cached: {:.2}x",
        pair(6, 5)
    );
    if nginx().is_some() {
        println!("- (b) / (e): {:.2}x", pair(1, 7));
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
