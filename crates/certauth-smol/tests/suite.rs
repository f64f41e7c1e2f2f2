//! The shared behaviour suite (certauth-testkit::suite) against the smol adapter, and the
//! serve helper's shutdown.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::mpsc::Sender;
use std::time::Duration;

use std::future::Future;

use certauth_smol::certauth_core::{Authenticator, Limits};
use certauth_smol::{
    AcceptError, Accepted, Gate, ServeOptions, default_websocket_config, gate, serve_websocket,
    upgrade,
};
use certauth_testkit::suite::{self, Outcome, PlainSetup, RunningServer, ServerSetup};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::{AsyncWriteExt as _, StreamExt as _};
use smol::net::{TcpListener, TcpStream};

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
        io.close().await.unwrap();
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
    Fut: Future<Output = ()> + 'static,
{
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        let ex = smol::LocalExecutor::new();
        smol::block_on(ex.run(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let next = async { Some(listener.accept().await.unwrap().0) };
                let stop = async {
                    let _ = stop_rx.recv().await;
                    None
                };
                let Some(tcp) = smol::future::or(next, stop).await else {
                    break;
                };
                ex.spawn(on_connection(tcp)).detach();
            }
        }));
    });
    RunningServer {
        addr: addr_rx.recv().unwrap(),
        stop: Box::new(move || {
            let _ = stop_tx.try_send(());
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
    let harness = |setup: ServerSetup| {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            smol::block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let report = setup.report.clone();
                serve_websocket(
                    listener,
                    Gate::new(setup.auth, setup.tls),
                    ServeOptions::DEFAULT
                        .with_max_pending(4)
                        .with_grace(Duration::from_millis(200)),
                    async move {
                        let _ = stop_rx.recv().await;
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
                let _ = stop_tx.try_send(());
                thread.join().unwrap();
            }),
        }
    };
    let server = suite::Server::start(&harness, &pki, Limits::DEFAULT);
    let tls = suite::connect(server.addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
    ws.send(tungstenite::Message::text("hi")).unwrap();
    assert_eq!(ws.read().unwrap().to_string(), "Echo: hi");
    assert_eq!(server.outcome(), Outcome::trusted());
    let started = std::time::Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
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
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        smol::block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let stop = async move {
                let _ = stop_rx.recv().await;
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
                            let _ = futures_util::SinkExt::send(&mut ws, reply.into()).await;
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
            let _ = stop_tx.try_send(());
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
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        smol::block_on(async move {
            let listener = smol::net::unix::UnixListener::bind(&path).unwrap();
            let report = setup.report;
            let stop = async move {
                let _ = stop_rx.recv().await;
            };
            certauth_smol::serve_plain(
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
        let _ = stop_tx.try_send(());
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
    use certauth_smol::certauth_core::policy::allow_cn;
    certauth_testkit::lifecycle::short_path(&serving, |ca, cert, key| {
        let gate = Gate::from_pem_files(ca, cert, key, allow_cn(["trusted-client"]))?;
        Ok((gate.tls().current(), gate.authenticator().clone()))
    });
}

/// `Gate::new` offers `http/1.1` by ALPN as the short path does, and so does a reload with
/// a configuration that offers nothing.
#[test]
fn gate_new_and_the_short_path_agree_on_alpn() {
    use certauth_smol::certauth_core::tls::ClientAuthMode;
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
