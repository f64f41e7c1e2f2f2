//! The front door against nginx (issue 32): server CPU per proxied keep-alive request and
//! the latency each adds, side by side in one run (loopback only; stops by itself).
//!
//! `front_door run [ROUNDS] [REQUESTS]` starts, pinned to CPU 0, `certauth serve --upstream`
//! (the binary in `CERTAUTH`, default `target/release/certauth`; once with one tokio worker,
//! once with tokio's default of one per CPU of the machine) and nginx doing the same
//! job (`ssl_verify_client on`, `proxy_pass` with `proxy_set_header X-SSL-Client-Cert
//! $ssl_client_escaped_cert` to an upstream block with `keepalive`, one process), and the
//! floor of a proxy on certauth's stack with nothing of certauth in it (`front_door bare`:
//! rustls, hyper's server and client, one thread), all in front of the same upstream (`front_door upstream PORT`: hyper, HTTP/1.1, a 3-byte body),
//! which runs with the clients on CPU 1. Each round drives each proxy in turn (the order
//! rotating): REQUESTS `GET`s over one keep-alive mTLS connection (each timed: p50, p99),
//! then REQUESTS over 8 connections at once, with the proxy's CPU time (every thread's, from
//! `/proc/PID/task/*/schedstat`) per request; the same GETs straight to the upstream (plain
//! HTTP) give the latency without a proxy. Medians over rounds are printed, and the
//! certauth/nginx CPU ratio paired per round.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::as_conversions,
    missing_docs
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certauth_benches::{cpu_seconds, median};
use certauth_testkit::suite::{self, Pki};

const REQUEST: &[u8] = b"GET /bench HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("upstream") => upstream(args[2].parse().unwrap()),
        Some("served") => served(
            args[2].parse().unwrap(),
            args[3].parse().unwrap(),
            Path::new(&args[4]),
        ),
        Some("bare") => bare(
            args[2].parse().unwrap(),
            args[3].parse().unwrap(),
            Path::new(&args[4]),
        ),
        Some("run") => {
            let rounds = args.get(2).map_or(5, |a| a.parse().unwrap());
            let requests = args.get(3).map_or(5000, |a| a.parse().unwrap());
            run(rounds, requests);
        }
        _ => eprintln!("usage: front_door run [ROUNDS] [REQUESTS] | front_door upstream PORT"),
    }
}

/// Runs `serve` with a listener on 127.0.0.1:`port`, on one current-thread tokio runtime
/// (every server of this harness: the upstream and the proxies certauth is compared to).
fn listening<F: Future<Output = ()>>(port: u16, serve: impl FnOnce(tokio::net::TcpListener) -> F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        serve(listener).await;
    });
}

/// The application: `ok\n` to every request, keep-alive.
fn upstream(port: u16) {
    listening(port, |listener| async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("ok\n")))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}

/// Diagnostic (not in `run`): `bare`'s forwarding served by `certauth_hyper::serve_with`
/// (the engine's connection table and deadlines, certauth's IO wrappers, hyper's auto
/// builder, the per-request limits check), through an axum fallback and a pool of upstream
/// connections; no `CertAuthLayer`, no `Upstream`. Between `bare` and certauth.
fn served(port: u16, upstream: u16, dir: &Path) {
    type Pool =
        Arc<std::sync::Mutex<Vec<hyper::client::conn::http1::SendRequest<axum::body::Body>>>>;
    async fn forward(
        axum::extract::State(pool): axum::extract::State<(Pool, u16)>,
        req: axum::extract::Request,
    ) -> axum::response::Response {
        let (pool, port) = pool;
        let ready = {
            let mut kept = pool.lock().unwrap();
            kept.retain(|s| !s.is_closed());
            let at = kept
                .iter()
                .position(hyper::client::conn::http1::SendRequest::is_ready);
            at.map(|i| kept.swap_remove(i))
        };
        let mut sender = match ready {
            Some(s) => s,
            None => {
                let up = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let _ = up.set_nodelay(true);
                let (s, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(up))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                s
            }
        };
        let response = sender.send_request(req).await.unwrap();
        pool.lock().unwrap().push(sender);
        response.map(axum::body::Body::new)
    }
    let tls = bare_tls(dir);
    listening(port, |listener| async move {
        let pool: Pool = Arc::default();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((pool, upstream));
        let limits = certauth_core::Limits::DEFAULT;
        let options = certauth_hyper::ServeOptions::DEFAULT;
        let tls = Some(certauth_core::tls::TlsConfig::from(tls));
        let never = std::future::pending::<()>();
        certauth_hyper::serve_with(listener, tls, limits, options, app, never)
            .await
            .unwrap();
    });
}

/// The TLS of `bare` (and `served`): the client certificate verified by webpki.
fn bare_tls(dir: &Path) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&read("server.pem"))
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&read("server.key")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read("ca.pem")) {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap()
}

/// The floor of a proxy built on the same stack, with nothing of certauth in it: rustls
/// (the client certificate verified by webpki in the handshake), hyper's HTTP/1.1 server and
/// client, one upstream connection per client connection (no pool, no caps, no decision,
/// no header rewriting but the certificate's, base64 once per connection), on one
/// current-thread tokio runtime. What certauth adds is the difference to this row.
fn bare(port: u16, upstream: u16, dir: &Path) {
    use hyper::body::Incoming;
    let config = bare_tls(dir);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    listening(port, |listener| async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let der = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
                let cert = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
                let cert = hyper::header::HeaderValue::try_from(cert).unwrap();
                let up = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
                    .await
                    .unwrap();
                let _ = up.set_nodelay(true);
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(up))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                let sender = Arc::new(tokio::sync::Mutex::new(sender));
                let service =
                    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                        let (sender, cert) = (Arc::clone(&sender), cert.clone());
                        async move {
                            req.headers_mut().insert("x-ssl-client-cert", cert);
                            let mut sender = sender.lock().await;
                            sender.ready().await?;
                            sender.send_request(req).await
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
}

struct Running {
    name: &'static str,
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

fn start(
    name: &'static str,
    cpu: &str,
    program: &Path,
    args: &[String],
    env: &[(&str, &str)],
) -> Running {
    let port: u16 = args
        .iter()
        .find_map(|a| a.strip_prefix("port=").map(|p| p.parse().unwrap()))
        .unwrap();
    let args: Vec<&String> = args.iter().filter(|a| !a.starts_with("port=")).collect();
    let child = Command::new("taskset")
        .args(["-c", cpu])
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{name} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running { name, child, port }
}

/// Reads one response (head and `Content-Length` body); false on a close or an error.
fn response(s: &mut impl Read, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return head.starts_with("http/1.1 200");
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// `n` requests over one keep-alive connection: each one's latency, in µs.
fn sequential(conn: &mut (impl Read + Write), n: usize) -> Vec<f64> {
    let mut buf = Vec::new();
    (0..n)
        .map(|_| {
            let t = Instant::now();
            conn.write_all(REQUEST).unwrap();
            assert!(response(conn, &mut buf), "request failed");
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect()
}

fn tls(port: u16, config: &Arc<rustls::ClientConfig>) -> suite::Tls {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let tls = suite::connect(addr, Arc::clone(config)).unwrap();
    tls.sock.set_nodelay(true).unwrap();
    tls
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Sample {
    p50: f64,
    p99: f64,
    /// Server CPU per request, µs: one connection, then 8.
    cpu1: f64,
    cpu8: f64,
}

fn measure(proxy: &Running, config: &Arc<rustls::ClientConfig>, n: usize) -> Sample {
    let pid = proxy.child.id();
    let mut conn = tls(proxy.port, config);
    sequential(&mut conn, 200); // the upstream connection and caches warm
    let cpu0 = cpu_seconds(pid);
    let lat = sequential(&mut conn, n);
    let cpu1 = (cpu_seconds(pid) - cpu0) * 1e6 / n as f64;
    drop(conn);
    let cpu0 = cpu_seconds(pid);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (port, config) = (proxy.port, Arc::clone(config));
            std::thread::spawn(move || {
                let mut conn = tls(port, &config);
                sequential(&mut conn, n / 8);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let cpu8 = (cpu_seconds(pid) - cpu0) * 1e6 / (n / 8 * 8) as f64;
    Sample {
        p50: percentile(lat.clone(), 0.5),
        p99: percentile(lat, 0.99),
        cpu1,
        cpu8,
    }
}

fn nginx_conf(dir: &Path, port: u16, upstream: u16) -> String {
    let p = |f: &str| dir.join(f).display().to_string();
    format!(
        "master_process off;\npid {pid};\nerror_log {err} warn;\nevents {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {tmp}; proxy_temp_path {tmp};\n  \
         fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n  \
         upstream app {{ server 127.0.0.1:{upstream}; keepalive 32; }}\n  \
         server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    \
         ssl_certificate_key {key};\n    ssl_client_certificate {ca};\n    ssl_verify_client on;\n    \
         keepalive_requests 1000000;\n    location / {{\n      proxy_pass http://app;\n      \
         proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      \
         proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;\n    }}\n  }}\n}}\n",
        pid = p("nginx.pid"),
        err = p("error.log"),
        tmp = p("tmp"),
        cert = p("server.pem"),
        key = p("server.key"),
        ca = p("ca.pem"),
    )
}

fn run(rounds: usize, requests: usize) {
    // The clients (and the upstream) on CPU 1, the proxies on CPU 0.
    let _ = Command::new("taskset")
        .args(["-p", "-c", "1", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    let certauth = std::env::var_os("CERTAUTH").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/certauth"),
        PathBuf::from,
    );
    let pki = Pki::new();
    let dir = std::env::temp_dir().join(format!("certauth-front-door-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let write = |n: &str, t: String| std::fs::write(dir.join(n), t).unwrap();
    write("ca.pem", pki.root.cert.pem());
    write("server.pem", pki.server.pem());
    write("server.key", pki.server.key_pem());
    let f = |n: &str| dir.join(n).display().to_string();

    let up_port = free_port();
    let this = std::env::current_exe().unwrap();
    let up = start(
        "upstream",
        "1",
        &this,
        &[
            "upstream".into(),
            up_port.to_string(),
            format!("port={up_port}"),
        ],
        &[],
    );
    // One tokio worker, as nginx runs one process on its CPU; and tokio's default (a worker
    // per CPU of the machine, here two on one CPU).
    let certauth_on = |name: &'static str, env: &[(&str, &str)]| {
        let port = free_port();
        let args: Vec<String> = [
            "serve",
            "--ca",
            &f("ca.pem"),
            "--cert",
            &f("server.pem"),
            "--key",
            &f("server.key"),
            "--allow-cn",
            "trusted-client",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &format!("http://127.0.0.1:{up_port}"),
            "--idle-timeout",
            "300",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("port={port}")])
        .collect();
        start(name, "0", &certauth, &args, env)
    };
    let ca = certauth_on("certauth (1 worker)", &[("TOKIO_WORKER_THREADS", "1")]);
    let ca2 = certauth_on("certauth (default workers)", &[]);
    let bare_port = free_port();
    let floor = start(
        "hyper proxy, no certauth (1 thread)",
        "0",
        &this,
        &[
            "bare".into(),
            bare_port.to_string(),
            up_port.to_string(),
            f(""),
            format!("port={bare_port}"),
        ],
        &[],
    );
    let ng_port = free_port();
    write("nginx.conf", nginx_conf(&dir, ng_port, up_port));
    let ng = start(
        "nginx",
        "0",
        Path::new("/usr/sbin/nginx"),
        &[
            "-c".into(),
            f("nginx.conf"),
            "-p".into(),
            f(""),
            "-g".into(),
            "daemon off;".into(),
            format!("port={ng_port}"),
        ],
        &[],
    );
    let config = suite::tls_client(&pki, Some(&pki.trusted));
    println!(
        "front door: {rounds} rounds, {requests} keep-alive GETs per measurement; proxies on CPU 0, clients and upstream on CPU 1"
    );
    // `FRONT_DOOR_SERVED=1`: also `served` (certauth's serving without its layer or proxy).
    let served = std::env::var_os("FRONT_DOOR_SERVED").map(|_| {
        let port = free_port();
        let args = [
            "served".into(),
            port.to_string(),
            up_port.to_string(),
            f(""),
        ];
        let args: Vec<String> = args.into_iter().chain([format!("port={port}")]).collect();
        start(
            "certauth_hyper::serve_with + axum, no layer",
            "0",
            &this,
            &args,
            &[],
        )
    });
    let mut proxies = vec![&ca, &ca2, &floor];
    proxies.extend(served.as_ref());
    proxies.push(&ng);
    let nginx = proxies.len() - 1;
    let mut samples: Vec<Vec<Sample>> = proxies.iter().map(|_| Vec::new()).collect();
    let mut direct = Vec::new();
    for round in 0..rounds {
        for k in 0..proxies.len() {
            let i = (k + round) % proxies.len();
            samples[i].push(measure(proxies[i], &config, requests));
        }
        let mut conn = TcpStream::connect(("127.0.0.1", up.port)).unwrap();
        conn.set_nodelay(true).unwrap();
        sequential(&mut conn, 200);
        let lat = sequential(&mut conn, requests);
        direct.push((percentile(lat.clone(), 0.5), percentile(lat, 0.99)));
    }
    let med = |v: Vec<f64>| median(v);
    println!(
        "| | CPU µs/request, 1 conn | CPU µs/request, 8 conns | latency p50 µs | latency p99 µs |"
    );
    println!("|---|---|---|---|---|");
    for (proxy, s) in proxies.iter().zip(&samples) {
        println!(
            "| {} | {:.1} | {:.1} | {:.0} | {:.0} |",
            proxy.name,
            med(s.iter().map(|s| s.cpu1).collect()),
            med(s.iter().map(|s| s.cpu8).collect()),
            med(s.iter().map(|s| s.p50).collect()),
            med(s.iter().map(|s| s.p99).collect()),
        );
    }
    println!(
        "| upstream direct (plain HTTP) | | | {:.0} | {:.0} |",
        med(direct.iter().map(|d| d.0).collect()),
        med(direct.iter().map(|d| d.1).collect())
    );
    let ratio = |i: usize, f: fn(&Sample) -> f64| {
        med(samples[i]
            .iter()
            .zip(&samples[nginx])
            .map(|(c, n)| f(c) / f(n))
            .collect())
    };
    for (i, proxy) in proxies.iter().enumerate().take(nginx) {
        println!(
            "{}/nginx CPU per request (median of per-round ratios): 1 conn {:.2}x, 8 conns {:.2}x",
            proxy.name,
            ratio(i, |s| s.cpu1),
            ratio(i, |s| s.cpu8)
        );
    }
    drop((ca, ca2, floor, served, ng, up));
    let _ = std::fs::remove_dir_all(&dir);
}
