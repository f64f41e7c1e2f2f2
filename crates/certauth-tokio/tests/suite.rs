//! The shared behaviour suite (certauth-testkit::suite) against the tokio adapter, and the
//! serve helper's shutdown.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::mpsc::Sender;
use std::time::Duration;

use std::future::Future;

use certauth_testkit::suite::{self, Outcome, PlainSetup, RunningServer, ServerSetup};
use certauth_tokio::certauth_core::{Authenticator, Limits};
use certauth_tokio::{
    AcceptError, Accepted, Gate, ServeOptions, default_websocket_config, gate, serve_websocket,
    upgrade,
};
use futures_util::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

async fn handle(gate: Gate, tcp: TcpStream, report: Sender<Outcome>) {
    respond(gate.authenticate(tcp).await, report).await;
}

/// Header mode: plain TCP, the certificate from the proxy's headers.
async fn handle_plain(auth: Authenticator, tcp: TcpStream, report: Sender<Outcome>) {
    let remote = tcp.peer_addr().ok().map(|a| a.ip());
    respond(gate(&auth, tcp, &[], remote).await, report).await;
}

async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    accepted: Result<Accepted<S>, AcceptError>,
    report: Sender<Outcome>,
) {
    let accepted = match accepted {
        Ok(a) => a,
        Err(e) => return drop(report.send(Outcome::from(&e))),
    };
    let cn = accepted
        .client
        .certificate()
        .subject()
        .common_names()
        .next()
        .unwrap()
        .into_owned();
    if accepted.head.path().starts_with("/http") {
        let mut io = accepted.io;
        let body = format!("Hello {cn}");
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        io.write_all(resp.as_bytes()).await.unwrap();
        io.shutdown().await.unwrap();
        let _ = report.send(Outcome::Allowed(cn));
        return;
    }
    match upgrade(accepted, default_websocket_config()).await {
        Ok((mut ws, _client)) => {
            let _ = report.send(Outcome::Allowed(cn));
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_text() {
                    let reply = format!("Echo: {}", msg.into_text().unwrap());
                    if ws.send(reply.into()).await.is_err() {
                        break;
                    }
                }
            }
        }
        Err(e) => drop(report.send(Outcome::from(&e))),
    }
}

fn start(setup: ServerSetup) -> RunningServer {
    let gate = Gate::new(setup.auth, setup.tls);
    let report = setup.report;
    run_server(move |tcp| handle(gate.clone(), tcp, report.clone()))
}

fn start_plain(setup: PlainSetup) -> RunningServer {
    let (auth, report) = (setup.auth, setup.report);
    run_server(move |tcp| handle_plain(auth.clone(), tcp, report.clone()))
}

/// Accepts on 127.0.0.1 and runs `on_connection` for each connection in its own task.
fn run_server<F, Fut>(on_connection: F) -> RunningServer
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let tcp = tokio::select! {
                    _ = &mut stop_rx => break,
                    r = listener.accept() => r.unwrap().0,
                };
                tokio::spawn(on_connection(tcp));
            }
        });
        rt.shutdown_timeout(Duration::from_secs(1));
    });
    let addr = addr_rx.recv().unwrap();
    RunningServer {
        addr,
        stop: Box::new(move || {
            let _ = stop_tx.send(());
            let _ = thread.join();
        }),
    }
}

#[test]
fn shared_behaviour_suite() {
    suite::run(&start);
}

#[test]
fn serve_websocket_echoes_and_shuts_down() {
    let pki = suite::Pki::new();
    let (setup_tx, setup_rx) = std::sync::mpsc::channel();
    let harness = move |setup: ServerSetup| {
        setup_tx.send(()).unwrap();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let gate = Gate::new(setup.auth, setup.tls);
                let report = setup.report.clone();
                serve_websocket(
                    listener,
                    gate,
                    ServeOptions::DEFAULT
                        .with_max_pending(4)
                        .with_grace(Duration::from_millis(200)),
                    async move {
                        let _ = stop_rx.await;
                    },
                    move |mut ws, client| {
                        let report = report.clone();
                        async move {
                            let cn = client
                                .certificate()
                                .subject()
                                .common_names()
                                .next()
                                .unwrap()
                                .into_owned();
                            let _ = report.send(Outcome::Allowed(cn));
                            while let Some(Ok(m)) = ws.next().await {
                                if m.is_text() {
                                    let reply = format!("Echo: {}", m.into_text().unwrap());
                                    let _ = ws.send(reply.into()).await;
                                }
                            }
                        }
                    },
                )
                .await
                .unwrap();
            });
        });
        RunningServer {
            addr: addr_rx.recv().unwrap(),
            stop: Box::new(move || {
                let _ = stop_tx.send(());
                thread.join().unwrap();
            }),
        }
    };
    let server = suite::Server::start(&harness, &pki, certauth_core_limits());
    setup_rx.recv().unwrap();
    let tls = suite::connect(server.addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    let (mut ws, _) = tungstenite_client(tls);
    ws.send(tungstenite::Message::text("hi")).unwrap();
    assert_eq!(ws.read().unwrap().to_string(), "Echo: hi");
    assert_eq!(server.outcome(), Outcome::trusted());
    // An idle handler is still running: shutdown must return within the grace period.
    let started = std::time::Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
}

fn certauth_core_limits() -> Limits {
    Limits::DEFAULT
}

fn tungstenite_client(
    tls: suite::Tls,
) -> (
    tungstenite::WebSocket<suite::Tls>,
    tungstenite::handshake::client::Response,
) {
    tungstenite::client::client("wss://localhost/chat", tls).unwrap()
}

#[test]
fn real_clients() {
    suite::run_real_clients(&start);
}

#[test]
fn key_types_through_real_handshakes_beside_node() {
    certauth_testkit::keytypes::run_key_types(&start);
}

#[test]
fn strict_mode() {
    suite::run_strict(&start);
}

#[test]
fn hostile_input() {
    certauth_testkit::hostile::run(&start);
}

#[test]
fn hostile_input_header_mode() {
    certauth_testkit::hostile::headers::run(&start_plain);
}

/// `serve_websocket` itself, with an echo handler, for the lifecycle cases.
fn serving(setup: certauth_testkit::lifecycle::ServeSetup) -> RunningServer {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let stop = async move {
                let _ = stop_rx.await;
            };
            let gate = Gate::new(setup.auth, setup.tls).websocket_paths(setup.paths);
            serve_websocket(
                listener,
                gate,
                setup.options,
                stop,
                |mut ws, _| async move {
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_text() {
                            let reply = format!("Echo: {}", m.into_text().unwrap());
                            let _ = ws.send(reply.into()).await;
                        }
                    }
                },
            )
            .await
            .unwrap();
        });
    });
    RunningServer {
        addr: addr_rx.recv().unwrap(),
        stop: Box::new(move || {
            let _ = stop_tx.send(());
            thread.join().unwrap();
        }),
    }
}

/// Idle, half-handshake, trickling and oversized-head crowds against `serve_websocket`: the
/// trusted client still gets in, every phase ends by its deadline.
#[test]
fn lifecycle_under_slow_clients() {
    certauth_testkit::lifecycle::run(&serving);
}

/// Header mode on a Unix socket (`serve_plain` on a `UnixListener`), for the shared nginx case.
fn serving_unix(setup: PlainSetup, path: &std::path::Path) -> Box<dyn FnOnce() + Send> {
    let path = path.to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::UnixListener::bind(&path).unwrap();
            let report = setup.report;
            let stop = async move {
                let _ = stop_rx.await;
            };
            certauth_tokio::serve_plain(
                listener,
                setup.auth,
                ServeOptions::DEFAULT,
                stop,
                move |a| respond(Ok(a), report.clone()),
            )
            .await
            .unwrap();
        });
    });
    Box::new(move || {
        let _ = stop_tx.send(());
        thread.join().unwrap();
    })
}

/// Header mode on a Unix socket behind nginx (the README's block).
#[test]
fn header_mode_on_a_unix_socket_behind_nginx() {
    certauth_testkit::proxies::unix_behind_nginx(&serving_unix);
}

/// `serve_websocket` restricted to `/ws`: 404 elsewhere, after authentication.
#[test]
fn serve_websocket_on_one_path() {
    certauth_testkit::lifecycle::websocket_paths(&serving);
}

/// The short path: a gate from three PEM files and a policy.
#[test]
fn the_short_path_from_three_pem_files() {
    use certauth_tokio::certauth_core::policy::allow_cn;
    certauth_testkit::lifecycle::short_path(&serving, |ca, cert, key| {
        let gate = Gate::from_pem_files(ca, cert, key, allow_cn(["trusted-client"]))?;
        Ok((gate.tls().current(), gate.authenticator().clone()))
    });
}

/// `Gate::new` offers `http/1.1` by ALPN as the short path does, and so does a reload with
/// a configuration that offers nothing.
#[test]
fn gate_new_and_the_short_path_agree_on_alpn() {
    use certauth_tokio::certauth_core::tls::ClientAuthMode;
    let pki = suite::Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    assert!(tls.alpn_protocols.is_empty());
    let gate = Gate::new(auth, std::sync::Arc::clone(&tls));
    let http1 = [b"http/1.1".to_vec()];
    assert_eq!(gate.tls().current().alpn_protocols, http1);
    gate.tls().reload(tls);
    assert_eq!(gate.tls().current().alpn_protocols, http1);
}

/// An authenticated client misbehaves (a ping flood that never reads, an idle WebSocket, one
/// certificate opening connection after connection)
/// against the serve helper: cut off within a generous memory bound.
#[test]
fn hostile_authenticated_clients() {
    certauth_testkit::hostile::authenticated::run(&serving);
}
