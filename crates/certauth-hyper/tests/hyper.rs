//! The hyper adapter with real clients: axum routes (public and protected), the extractor,
//! WebSocket upgrades, header mode on plain HTTP, and Socket.IO with Node's socket.io-client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::as_conversions,
    missing_docs
)]

use std::future::Future;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::get;
use certauth_hyper::ServeOptions;
use certauth_hyper::certauth_core::tls::{ALPN_HTTP2_AND_HTTP1, ClientAuthMode, with_alpn};
use certauth_hyper::certauth_core::{
    Authenticated, Authenticator, Limits, Preset, ProxyHeaderConfig,
};
use certauth_hyper::{AuthRejection, CertAuthLayer, ClientCert, to_response, upgrade_websocket};
use certauth_testkit::suite::{self, Outcome, Pki};
use certauth_testkit::{encode, suite::UPGRADE};
use futures_util::StreamExt as _;

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `app` (built on the server's runtime) with or without TLS.
fn run(
    tls: Option<Arc<rustls::ServerConfig>>,
    app: impl FnOnce() -> Router + Send + 'static,
) -> Running {
    run_with(tls, Limits::DEFAULT, app)
}

/// [`run`] with other limits (`serve_with`).
fn run_with(
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    app: impl FnOnce() -> Router + Send + 'static,
) -> Running {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let stop = async {
                let _ = stopped.await;
            };
            // The defaults go through `serve` (which also offers h2 by ALPN), the rest
            // through `serve_with`.
            if limits == Limits::DEFAULT {
                certauth_hyper::serve(listener, tls, app(), stop)
                    .await
                    .unwrap();
            } else {
                let options = ServeOptions::DEFAULT;
                let tls = tls.map(Into::into);
                certauth_hyper::serve_with(listener, tls, limits, options, app(), stop)
                    .await
                    .unwrap();
            }
        });
        rt.shutdown_timeout(Duration::from_secs(1));
    });
    Running {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    }
}

async fn whoami(ClientCert(client): ClientCert) -> String {
    let cn = client
        .certificate()
        .subject()
        .common_names()
        .next()
        .unwrap()
        .into_owned();
    format!("Hello {cn}")
}

async fn ws(req: Request) -> axum::response::Response {
    upgrade_websocket::<_, Body, _, _>(req, |mut ws, _client| async move {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_text() {
                let reply = format!("Echo: {}", m.into_text().unwrap());
                if ws.send(reply.into()).await.is_err() {
                    break;
                }
            }
        }
    })
}

fn app(auth: Authenticator) -> Router {
    Router::new()
        .route("/admin/whoami", get(whoami))
        .route("/ws", get(ws))
        .route_layer(CertAuthLayer::new(auth))
        .route("/public", get(|| async { "hello" }))
        .route("/forgot-the-layer", get(whoami))
}

fn get_over(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&certauth_testkit::Issued>,
    path: &str,
) -> String {
    let mut tls = suite::connect(addr, suite::tls_client(pki, client)).unwrap();
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned()
}

fn status_and_body(response: &str) -> (String, String) {
    let status = response.lines().next().unwrap_or("").to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn protected_and_public_routes() {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let server = run(Some(tls), move || app(auth));
    let get = |c, p| status_and_body(&get_over(server.addr, &pki, c, p));

    assert_eq!(
        get(None, "/public"),
        ("HTTP/1.1 200 OK".into(), "hello".into())
    );
    assert_eq!(
        get(Some(&pki.trusted), "/admin/whoami"),
        ("HTTP/1.1 200 OK".into(), "Hello trusted-client".into())
    );
    for (client, status, body) in [
        (None, "HTTP/1.1 401 Unauthorized", "Unauthorized"),
        (
            Some(&pki.other_ca),
            "HTTP/1.1 401 Unauthorized",
            "Unauthorized",
        ),
        (
            Some(&pki.expired),
            "HTTP/1.1 401 Unauthorized",
            "Unauthorized",
        ),
        (
            Some(&pki.denied),
            "HTTP/1.1 401 Unauthorized",
            "Unauthorized",
        ),
        (Some(&pki.forbidden), "HTTP/1.1 403 Forbidden", "Forbidden"),
    ] {
        assert_eq!(get(client, "/admin/whoami"), (status.into(), body.into()));
    }
    let (status, body) = get(Some(&pki.trusted), "/forgot-the-layer");
    assert_eq!(status, "HTTP/1.1 500 Internal Server Error");
    assert!(body.contains("CertAuthLayer is not installed"), "{body}");
}

#[test]
fn websocket_upgrades_are_authenticated_before_the_101() {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let server = run(Some(tls), move || app(auth));
    let conn = suite::connect(server.addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    let (mut ws, resp) = tungstenite::client::client("wss://localhost/ws", conn).unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(tungstenite::Message::text("over hyper")).unwrap();
    assert_eq!(ws.read().unwrap().to_string(), "Echo: over hyper");

    let upgrade = UPGRADE.replace("/chat", "/ws");
    let mut tls = suite::connect(server.addr, suite::tls_client(&pki, None)).unwrap();
    tls.write_all(upgrade.as_bytes()).unwrap();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");

    let v8 = upgrade.replace("Version: 13", "Version: 8");
    let mut tls = suite::connect(server.addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    tls.write_all(v8.as_bytes()).unwrap();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{text}"
    );
    assert!(text.contains("sec-websocket-version: 13\r\n"), "{text}");
}

/// `upgrade_websocket` without a config has the raw gates' limits: a 512 KiB message is
/// echoed, a 2 MiB one is refused with close code 1009 (message too big), where
/// tungstenite's own default would take 64 MiB.
#[test]
fn websocket_upgrades_default_to_certauths_message_limit() {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let server = run(Some(tls), move || app(auth));
    let conn = suite::connect(server.addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    let (mut ws, _) = tungstenite::client::client("wss://localhost/ws", conn).unwrap();
    let half_mib = "a".repeat(512 * 1024);
    ws.send(tungstenite::Message::text(half_mib.clone()))
        .unwrap();
    assert_eq!(ws.read().unwrap().to_string(), format!("Echo: {half_mib}"));

    // 2 MiB in two 1 MiB frames (each within the frame limit): the server refuses the
    // message once it has read the second frame, so the whole message is on the wire and
    // the close is not lost to a reset. (A single 2 MiB frame is refused at its header;
    // the client may then still be writing when the server closes.)
    use tungstenite::protocol::frame::Frame;
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    let mib = "b".repeat(1024 * 1024);
    ws.send(tungstenite::Message::Frame(Frame::message(
        mib.clone(),
        OpCode::Data(Data::Text),
        false,
    )))
    .unwrap();
    ws.send(tungstenite::Message::Frame(Frame::message(
        mib,
        OpCode::Data(Data::Continue),
        true,
    )))
    .unwrap();
    let frame = match ws.read() {
        Ok(tungstenite::Message::Close(frame)) => frame,
        Ok(other) => panic!("expected a close, got {} bytes", other.len()),
        Err(e) => panic!("expected a close frame, got {e}"),
    };
    let frame = frame.expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
}

#[test]
fn header_mode_on_plain_http() {
    let pki = Pki::new();
    let (_, with_anchors) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let verifier = with_anchors.verifier().unwrap();
    let proxy = ProxyHeaderConfig::preset(Preset::Nginx)
        .with_trusted_proxies(["127.0.0.1"])
        .unwrap()
        .with_verify_header("X-SSL-Client-Verify", "SUCCESS")
        .unwrap();
    let auth = Authenticator::builder()
        .verifier(verifier)
        .proxy_header(proxy)
        .policy(suite::policy)
        .build()
        .unwrap();
    let server = run(None, move || app(auth));
    let get = |headers: String| {
        let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "GET /admin/whoami HTTP/1.1\r\nHost: backend\r\nConnection: close\r\n{headers}\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = tcp.read_to_string(&mut out);
        status_and_body(&out)
    };
    let cert = encode::nginx_escaped(&pki.trusted.pem());
    assert_eq!(
        get(format!(
            "X-SSL-Client-Cert: {cert}\r\nX-SSL-Client-Verify: SUCCESS\r\n"
        )),
        ("HTTP/1.1 200 OK".into(), "Hello trusted-client".into())
    );
    assert_eq!(get(String::new()).0, "HTTP/1.1 401 Unauthorized");
    assert_eq!(
        get(format!(
            "X-SSL-Client-Cert: {cert}\r\nX-SSL-Client-Verify: NONE\r\n"
        ))
        .0,
        "HTTP/1.1 401 Unauthorized"
    );
}

async fn on_message(
    s: socketioxide::extract::SocketRef,
    socketioxide::extract::Data(data): socketioxide::extract::Data<String>,
) {
    // The seed's socket.clientCert.
    let cn = s
        .extensions
        .get::<Authenticated>()
        .map(|c| {
            c.certificate()
                .subject()
                .common_names()
                .next()
                .unwrap()
                .into_owned()
        })
        .unwrap_or_default();
    let _ = s.emit("message", &format!("Echo: {data} ({cn})"));
}

/// Registers the events: a connect middleware, which runs before the acknowledgement (see
/// `socketio_events_emitted_at_connect_are_not_lost`).
async fn listen(s: socketioxide::extract::SocketRef) -> Result<(), std::convert::Infallible> {
    s.on("message", on_message);
    Ok(())
}

/// A Socket.IO server as the README builds it; without `SocketIoSessions` when `sessions`
/// is false (a misconfiguration `require_client_cert` must refuse loudly).
fn socketio_app(auth: Authenticator, sessions: bool) -> Router {
    use socketioxide::SocketIo;
    use socketioxide::handler::ConnectHandler as _;

    let (layer, io) = SocketIo::new_layer();
    let on_connect = async || ();
    io.ns(
        "/",
        on_connect
            .with(listen)
            .with(certauth_hyper::require_client_cert),
    );
    let app = Router::new().layer(layer);
    let app = if sessions {
        app.layer(certauth_hyper::SocketIoSessions::new())
    } else {
        app
    };
    app.layer(CertAuthLayer::new(auth).annotate_only())
}

/// Node's socket.io-client over `transports` (comma-separated) presenting `who`: its line.
fn sio_client(
    addr: SocketAddr,
    pki: &Pki,
    who: Option<&certauth_testkit::Issued>,
    transports: &str,
) -> String {
    let files = std::env::temp_dir().join(format!(
        "certauth-sio-{}-{}",
        std::process::id(),
        addr.port()
    ));
    std::fs::create_dir_all(&files).unwrap();
    let write = |n: &str, t: String| {
        let p = files.join(n);
        std::fs::write(&p, t).unwrap();
        p.to_string_lossy().into_owned()
    };
    let node = suite::node_peers_dir();
    let mut cmd = std::process::Command::new("node");
    cmd.env("SIO_TRANSPORTS", transports)
        .arg(node.join("sio-client.js"))
        .arg(format!("https://localhost:{}", addr.port()))
        .arg(write("ca.pem", pki.server_root.cert.pem()));
    if let Some(c) = who {
        cmd.arg(write("c.pem", c.pem()))
            .arg(write("c.key", c.key_pem()));
    }
    let out = String::from_utf8_lossy(&cmd.output().unwrap().stdout)
        .trim()
        .to_owned();
    let _ = std::fs::remove_dir_all(&files);
    out
}

/// Issue 25, finding 4, with the library's integration and a real client: sessions bound
/// to their certificate still work over every transport socket.io-client uses (polling,
/// polling upgraded to a WebSocket, WebSocket), and `require_client_cert` refuses every
/// connection when the binding layer is missing rather than serve unguarded sessions.
#[test]
fn socketio_sessions_work_over_every_transport_and_are_required() {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let server = run(Some(tls), move || socketio_app(auth, true));
    for transports in ["polling", "polling,websocket", "websocket"] {
        assert_eq!(
            sio_client(server.addr, &pki, Some(&pki.trusted), transports),
            "MESSAGE Echo: hello (trusted-client)",
            "{transports}"
        );
    }
    // Without a certificate, over every transport: the connect error with its code.
    for transports in ["polling", "polling,websocket", "websocket"] {
        assert_eq!(
            sio_client(server.addr, &pki, None, transports),
            "CONNECT_ERROR Authentication failed (NO_CERTIFICATE)",
            "{transports}"
        );
    }
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let unguarded = run(Some(tls), move || socketio_app(auth, false));
    assert_eq!(
        sio_client(unguarded.addr, &pki, Some(&pki.trusted), "websocket"),
        "CONNECT_ERROR Authentication failed (certauth SocketIoSessions layer missing)"
    );
}

#[test]
fn socketio_connections_are_refused_by_connect_middleware() {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let server = run(Some(tls), move || socketio_app(auth, true));
    let files = std::env::temp_dir().join(format!("certauth-sio-{}", std::process::id()));
    std::fs::create_dir_all(&files).unwrap();
    let write = |n: &str, t: String| {
        let p = files.join(n);
        std::fs::write(&p, t).unwrap();
        p.to_string_lossy().into_owned()
    };
    let ca = write("ca.pem", pki.server_root.cert.pem());
    let client = |who: Option<&certauth_testkit::Issued>| {
        let node = suite::node_peers_dir();
        let mut cmd = std::process::Command::new("node");
        cmd.arg(node.join("sio-client.js"))
            .arg(format!("https://localhost:{}", server.addr.port()))
            .arg(&ca);
        if let Some(c) = who {
            cmd.arg(write("c.pem", c.pem()))
                .arg(write("c.key", c.key_pem()));
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout)
            .trim()
            .to_owned()
    };
    assert_eq!(
        client(Some(&pki.trusted)),
        "MESSAGE Echo: hello (trusted-client)"
    );
    assert_eq!(
        client(Some(&pki.other_ca)),
        "CONNECT_ERROR Authentication failed (UNABLE_TO_VERIFY_LEAF_SIGNATURE)"
    );
    assert_eq!(
        client(None),
        "CONNECT_ERROR Authentication failed (NO_CERTIFICATE)"
    );
    let _ = std::fs::remove_dir_all(&files);
}

/// The shared suite's server on hyper: the layer in `annotate_only` mode so the handler can
/// report each outcome (it answers a rejection with the same `to_response` the layer uses),
/// `/http…` answers `Hello <CN>`, anything else is a WebSocket echo.
async fn suite_handler(
    axum::extract::State(report): axum::extract::State<std::sync::mpsc::Sender<Outcome>>,
    req: Request,
) -> axum::response::Response {
    let version = req.version();
    if let Some(AuthRejection(denial)) = req.extensions().get::<AuthRejection>().cloned() {
        let _ = report.send(Outcome::denied(denial.code()));
        return to_response(denial.response(), version);
    }
    let cn = req
        .extensions()
        .get::<Authenticated>()
        .and_then(|c| c.certificate().subject().common_names().next())
        .map(|c| c.into_owned())
        .unwrap_or_default();
    if req.uri().path().starts_with("/http") {
        let _ = report.send(Outcome::Allowed(cn.clone()));
        return axum::response::Response::builder()
            .header("content-type", "text/plain")
            .header("connection", "close")
            .body(Body::from(format!("Hello {cn}")))
            .unwrap();
    }
    let response = ws(req).await;
    let _ = report.send(match response.status().as_u16() {
        101 => Outcome::Allowed(cn),
        status => Outcome::Upgrade(status),
    });
    response
}

/// The suite's app: every path through the layer (annotating) to [`suite_handler`].
fn suite_app(auth: Authenticator, report: std::sync::mpsc::Sender<Outcome>) -> Router {
    Router::new()
        .fallback(suite_handler)
        .with_state(report)
        .layer(CertAuthLayer::new(auth).annotate_only())
}

fn as_suite_server(mut running: Running) -> suite::RunningServer {
    let (stop, thread) = (running.stop.take(), running.thread.take());
    suite::RunningServer {
        addr: running.addr,
        stop: Box::new(move || {
            if let Some(s) = stop {
                let _ = s.send(());
            }
            if let Some(t) = thread {
                let _ = t.join();
            }
        }),
    }
}

/// Over TLS, as the shared suite starts it.
fn suite_server(setup: suite::ServerSetup) -> suite::RunningServer {
    let suite::ServerSetup { tls, auth, report } = setup;
    as_suite_server(run(Some(tls), move || suite_app(auth, report)))
}

/// Over plain HTTP (header mode), as the header-mode hostile suite starts it.
fn suite_server_plain(setup: suite::PlainSetup) -> suite::RunningServer {
    let suite::PlainSetup { auth, report } = setup;
    as_suite_server(run(None, move || suite_app(auth, report)))
}

/// The cases every integration shares, on hyper (responses compared without hyper's header
/// casing and `date`).
#[test]
fn shared_behaviour_suite() {
    suite::run_shared(&suite_server, suite::Compare::Normalized);
}

/// Node's `ws`, curl and openssl against the same server.
#[test]
fn real_clients() {
    suite::run_real_clients(&suite_server);
}

/// Every client key type through curl's real handshakes, beside Node's server, as on tokio
/// and smol: the same codes (`WEAK_KEY`, `UNSUPPORTED_KEY_TYPE`) through hyper's acceptor.
#[test]
fn key_types_through_real_handshakes_beside_node() {
    certauth_testkit::keytypes::run_key_types(&suite_server);
}

/// The header-mode hostile cases on hyper: plain HTTP behind a "proxy" on 127.0.0.1, with
/// forged headers from 127.0.0.2.
#[test]
fn hostile_input_header_mode() {
    certauth_testkit::hostile::headers::run_with(&suite_server_plain, suite::Compare::Normalized);
}

/// `serve_with` itself, the layer in front of a WebSocket echo, for the lifecycle cases.
fn serving(setup: certauth_testkit::lifecycle::ServeSetup) -> suite::RunningServer {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let limits = *setup.auth.limits();
            let app = Router::new()
                .fallback(ws)
                .layer(CertAuthLayer::new(setup.auth));
            let stop = async {
                let _ = stopped.await;
            };
            certauth_hyper::serve_with(
                listener,
                Some(setup.tls.into()),
                limits,
                setup.options,
                app,
                stop,
            )
            .await
            .unwrap();
        });
        rt.shutdown_timeout(Duration::from_secs(1));
    });
    as_suite_server(Running {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Idle, half-handshake, trickling and oversized-head crowds against `serve_with`: the
/// trusted client still gets in, every phase ends by its deadline.
#[test]
fn lifecycle_under_slow_clients() {
    certauth_testkit::lifecycle::run(&serving);
}

/// Sends `request` over TLS without a certificate; the answer up to the close.
fn exchange(addr: SocketAddr, pki: &Pki, request: &[u8]) -> String {
    let mut tls = suite::connect(addr, suite::tls_client(pki, None)).unwrap();
    let _ = tls.write_all(request);
    let _ = tls.flush();
    String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned()
}

/// The lingering close is bounded: past `max_linger_bytes` (1 MiB by default) the server
/// stops reading and closes, and a client still sending 8 MiB is cut off.
#[test]
fn head_limits_linger_is_bounded() {
    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let server = run(Some(tls), || {
        Router::new().route("/public", get(|| async { "hello" }))
    });
    let request = format!(
        "GET /public HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(8 << 20)
    );
    let got = exchange(server.addr, &pki, request.as_bytes());
    assert_eq!(got, "", "the server read past max_linger_bytes");
}

/// `Duration::MAX` for the handshake, head and idle timeouts means none (the WebSocket
/// limits document it so): the server answers, where it panicked overflowing an `Instant`.
#[test]
fn timeouts_of_duration_max_are_no_timeouts() {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let never = Limits::DEFAULT
        .with_handshake_timeout(Duration::MAX)
        .with_head_read_timeout(Duration::MAX)
        .with_idle_timeout(Duration::MAX);
    let server = run_with(Some(tls), never, move || app(auth));
    for _ in 0..2 {
        let got = status_and_body(&get_over(
            server.addr,
            &pki,
            Some(&pki.trusted),
            "/admin/whoami",
        ));
        assert_eq!(
            got,
            ("HTTP/1.1 200 OK".into(), "Hello trusted-client".into())
        );
    }
}

/// The core's head limits apply on hyper as on the raw gates, on every route (431 with the
/// core's body); an idle keep-alive connection is closed after the idle timeout; a request
/// in flight at shutdown is answered while new connections are refused.
#[test]
fn head_limits_idle_timeout_and_graceful_shutdown() {
    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let limits = Limits::DEFAULT
        .with_idle_timeout(Duration::from_secs(1))
        .with_max_linger_bytes(64 << 20);
    let mut server = run_with(Some(tls), limits, || {
        Router::new()
            .route("/public", get(|| async { "hello" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "done"
                }),
            )
    });
    let addr = server.addr;
    let too_large = "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; \
charset=utf-8\r\nx-content-type-options: nosniff\r\nconnection: close\r\ncontent-length: 31\r\n\r\nRequest Header Fields Too Large";
    let line = |n: usize| {
        format!(
            "GET /public HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "a".repeat(n)
        )
    };
    let many = |n: usize| {
        let headers: String = (0..n).map(|i| format!("X-{i}: v\r\n")).collect();
        format!("GET /public HTTP/1.1\r\n{headers}\r\n")
    };
    let big_head = {
        let headers: String = (0..30)
            .map(|i| format!("X-{i}: {}\r\n", "b".repeat(1400)))
            .collect();
        format!("GET /public HTTP/1.1\r\n{headers}\r\n")
    };
    for (name, request) in [
        ("17 KB header line", line(17 * 1024)),
        ("65 headers", many(65)),
        ("42 KB head", big_head),
    ] {
        let got = exchange(addr, &pki, request.as_bytes());
        assert!(
            suite::Compare::Normalized.same(&got, too_large),
            "{name}: {got:?}"
        );
    }
    // Past hyper's buffer (twice the head limit) hyper refuses it itself, with its own 431;
    // the close lingers (here up to 64 MiB), so a client still sending 8 MiB reads the 431.
    // Without the linger the close resets the connection under the client's writes, and the
    // client never sees an answer.
    for _ in 0..3 {
        let got = exchange(addr, &pki, line(8 << 20).as_bytes());
        assert!(
            got.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "8 MiB header line: {got:?}"
        );
    }
    // Within the limits, answered.
    let got = exchange(addr, &pki, many(64).as_bytes());
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");

    // Keep-alive: answered, then closed once idle for a second.
    let mut tls = suite::connect(addr, suite::tls_client(&pki, None)).unwrap();
    tls.write_all(b"GET /public HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let first = suite::read_until(&mut tls, b"hello");
    assert!(first.starts_with(b"HTTP/1.1 200 OK"));
    let started = std::time::Instant::now();
    let rest = suite::read_to_close(&mut tls);
    let idle = started.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_secs(4),
        "idle connection closed after {idle:?}, idle timeout 1 s"
    );

    // Shutdown with a request in flight: it is answered; new connections are refused.
    let mut slow = suite::connect(addr, suite::tls_client(&pki, None)).unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let stop = server.stop.take().unwrap();
    let _ = stop.send(());
    let answer = String::from_utf8_lossy(&suite::read_to_close(&mut slow)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting"
    );
}

/// The suite's PKI (no ALPN set: `serve` offers h2 and http/1.1 itself) and an
/// authenticator that exposes reasons and lets any verified client in.
fn verifying_server(pki: &Pki) -> (Arc<rustls::ServerConfig>, Authenticator) {
    let (tls, with_anchors) = suite::server_parts(pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    assert!(tls.alpn_protocols.is_empty());
    let auth = Authenticator::builder()
        .verifier(with_anchors.verifier().unwrap())
        .expose_reasons(true)
        .build()
        .unwrap();
    (tls, auth)
}

/// One connection, many requests: the chain is verified once, on HTTP/2 (curl multiplexing
/// 100 requests over one connection) and on HTTP/1.1 keep-alive alike.
#[test]
fn a_connection_verifies_its_chain_once() {
    let pki = Pki::new();
    let (tls, auth) = verifying_server(&pki);
    let counted = auth.clone();
    let server = run(Some(tls), move || app(auth));
    let stats = || {
        let v = counted.verifier().unwrap();
        (v.verifications(), v.cache_hits())
    };
    let files = suite::PemFiles::new(&pki);
    let port = server.addr.port();
    let url = format!("https://localhost:{port}/admin/whoami");
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "--max-time",
            "20",
            "-w",
            " %{http_version}\n",
        ])
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(files.path("server-ca.pem"))
        .arg("--cert")
        .arg(files.path("trusted.pem"))
        .arg("--key")
        .arg(files.path("trusted.key"))
        .args(std::iter::repeat_n(url.as_str(), 100))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| *l == "Hello trusted-client 2")
            .count(),
        100,
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stats(), (1, 99), "HTTP/2");

    // HTTP/1.1 keep-alive on a new connection: the chain is known (the verifier's cache
    // answers the first request), and the connection remembers it for the rest.
    let mut tls = suite::connect(server.addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
    for _ in 0..100 {
        tls.write_all(b"GET /admin/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let got = suite::read_until(&mut tls, b"Hello trusted-client");
        assert!(got.starts_with(b"HTTP/1.1 200 OK"), "{got:?}");
    }
    assert_eq!(stats(), (1, 199), "keep-alive");
}

/// A keep-alive connection whose certificate expires between two requests gets
/// CERT_HAS_EXPIRED on the second: what the connection remembers never outlives notAfter.
#[test]
fn a_certificate_expiring_mid_connection_is_refused_on_the_next_request() {
    let pki = Pki::new();
    let (tls, auth) = verifying_server(&pki);
    let now = certauth_testkit::wall_clock().as_secs() as i64;
    let mut short = certauth_testkit::Leaf::client("short-lived");
    short.not_before = now - 60;
    short.not_after = now + 2;
    let short = pki.root.issue(&short);
    let server = run(Some(tls), move || app(auth));
    let mut tls = suite::connect(server.addr, suite::tls_client(&pki, Some(&short))).unwrap();
    tls.write_all(b"GET /admin/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let first = suite::read_until(&mut tls, b"Hello short-lived");
    assert!(first.starts_with(b"HTTP/1.1 200 OK"), "{first:?}");
    // notAfter is inclusive to the second: wait until it is past.
    while (certauth_testkit::wall_clock().as_secs() as i64) <= now + 2 {
        std::thread::sleep(Duration::from_millis(100));
    }
    tls.write_all(b"GET /admin/whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let second = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    assert!(second.starts_with("HTTP/1.1 401 Unauthorized"), "{second}");
    assert!(
        second.ends_with("Unauthorized: Client certificate rejected (CERT_HAS_EXPIRED)"),
        "{second}"
    );
}

/// axum's `ConnectInfo<SocketAddr>` keeps working under certauth's serve; under
/// `axum::serve`, which gives the layer no connection information, the layer answers 500
/// naming what is missing instead of refusing everyone with 401.
#[test]
fn axum_connect_info_works_and_a_missing_connection_info_is_a_500() {
    use axum::extract::ConnectInfo;
    let pki = Pki::new();
    let (tls, auth) = verifying_server(&pki);
    let server = run(Some(tls), move || {
        Router::new()
            .route(
                "/peer",
                get(|ConnectInfo(addr): ConnectInfo<SocketAddr>| async move { addr.ip().to_string() }),
            )
            .layer(CertAuthLayer::new(auth))
    });
    let got = get_over(server.addr, &pki, Some(&pki.trusted), "/peer");
    assert_eq!(
        status_and_body(&got),
        ("HTTP/1.1 200 OK".into(), "127.0.0.1".into())
    );

    let (_, auth) = verifying_server(&pki);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route("/admin", get(|| async { "secret" }))
                .layer(CertAuthLayer::new(auth));
            let _ = axum::serve(listener, app).await;
        });
    });
    let addr = addr_rx.recv().unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET /admin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    let (status, body) = status_and_body(&out);
    assert_eq!(status, "HTTP/1.1 500 Internal Server Error", "{out}");
    assert!(body.contains("ConnectionInfo"), "{body}");
    assert!(body.contains("certauth_hyper::serve"), "{body}");
}

/// Engine.IO 4 over a WebSocket by hand: connects to `/` and emits `message` the instant
/// the connect acknowledgement arrives, as socket.io-client does from its `connect` callback.
/// Returns the first event the server sends back, or what went wrong (`wait` bounds each read).
fn socketio_echo_once(addr: SocketAddr, pki: &Pki, wait: Duration) -> String {
    use tungstenite::Message;
    let tls = suite::connect(addr, suite::tls_client(pki, Some(&pki.trusted))).unwrap();
    tls.sock.set_read_timeout(Some(wait)).unwrap();
    let url = "wss://localhost/socket.io/?EIO=4&transport=websocket";
    let (mut ws, _) = tungstenite::client::client(url, tls).unwrap();
    let mut connected = false;
    loop {
        let packet = match ws.read() {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(_) => continue,
            Err(e) => return format!("connected={connected}, then: {e}"),
        };
        let reply = match packet.as_bytes().first() {
            Some(b'0') => "40", // Engine.IO open: connect to `/`
            Some(b'2') => "3",  // ping
            Some(b'4') if packet.starts_with("40") => {
                // connected: emit at once
                connected = true;
                r#"42["message","now"]"#
            }
            _ => return packet,
        };
        ws.send(Message::text(reply)).unwrap();
    }
}

/// The README's pattern keeps an event a client emits the instant it is connected: the
/// events are registered by a middleware, which runs before the acknowledgement. The connect
/// handler here is deliberately slow (socketioxide spawns it after acknowledging), which is
/// what a loaded machine does to a handler that registers them itself: its events drop.
#[test]
fn socketio_events_emitted_at_connect_are_not_lost() {
    use socketioxide::SocketIo;
    use socketioxide::extract::SocketRef;
    use socketioxide::handler::ConnectHandler as _;

    async fn slow_handler(s: SocketRef, registers: bool) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if registers {
            s.on("message", on_message);
        }
    }

    let pki = Pki::new();
    let echo = r#"42["message","Echo: now (trusted-client)"]"#;
    for (in_middleware, want_echo) in [(true, true), (false, false)] {
        let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
        let server = run(Some(tls), move || {
            let (layer, io) = SocketIo::new_layer();
            if in_middleware {
                let handler = async |s: SocketRef| slow_handler(s, false).await;
                io.ns(
                    "/",
                    handler
                        .with(listen)
                        .with(certauth_hyper::require_client_cert),
                );
            } else {
                let handler = async |s: SocketRef| slow_handler(s, true).await;
                io.ns("/", handler.with(certauth_hyper::require_client_cert));
            }
            Router::new()
                .layer(layer)
                .layer(certauth_hyper::SocketIoSessions::new())
                .layer(CertAuthLayer::new(auth).annotate_only())
        });
        let got = socketio_echo_once(server.addr, &pki, Duration::from_secs(3));
        // The control case shows the test can fail: registered in the handler, the event
        // is gone and nothing answers.
        assert_eq!(
            got == echo,
            want_echo,
            "in_middleware={in_middleware}: {got}"
        );
    }
}

/// An authenticated client misbehaves (a ping flood that never reads, an idle WebSocket, one
/// certificate opening connection after connection)
/// against the serve helper: cut off within a generous memory bound.
#[test]
fn hostile_authenticated_clients() {
    certauth_testkit::hostile::authenticated::run(&serving);
}

/// An HTTP/2 client over TLS (ALPN h2) presenting `client`: its request handle, and the
/// connection's task, which ends when the server closes the connection.
async fn h2_client(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&certauth_testkit::Issued>,
) -> (
    h2::client::SendRequest<hyper::body::Bytes>,
    tokio::task::JoinHandle<()>,
) {
    let mut config = (*suite::tls_client(pki, client)).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (send, connection) = h2::client::handshake(tls).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (send, task)
}

/// One HTTP/2 GET on `send`: the status.
async fn h2_get(send: &mut h2::client::SendRequest<hyper::body::Bytes>, path: &str) -> u16 {
    let request = http::Request::get(format!("https://localhost{path}"))
        .body(())
        .unwrap();
    let (response, _) = send
        .clone()
        .ready()
        .await
        .unwrap()
        .send_request(request, true)
        .unwrap();
    response.await.unwrap().status().as_u16()
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Issue 25, finding 2, over HTTP/2: a request the layer refuses closes the connection
/// (GOAWAY after the 401) as `Connection: close` does on HTTP/1.1; an open route (no layer)
/// keeps it, and an allowed client keeps it.
#[test]
fn a_refused_http2_connection_is_closed() {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let server = run(Some(tls), move || app(auth));
    block_on(async {
        let (mut send, connection) = h2_client(server.addr, &pki, None).await;
        assert_eq!(h2_get(&mut send, "/public").await, 200);
        assert_eq!(
            h2_get(&mut send, "/public").await,
            200,
            "an open route closed it"
        );
        assert_eq!(h2_get(&mut send, "/admin/whoami").await, 401);
        // The idle timeout is 60 s: only the refusal closes it this soon. (`send` stays
        // alive: an h2 client whose handles are all gone closes the connection itself.)
        tokio::time::timeout(Duration::from_secs(10), connection)
            .await
            .expect("the refused HTTP/2 connection is still open")
            .unwrap();

        drop(send);
        let (mut send, _connection) = h2_client(server.addr, &pki, Some(&pki.trusted)).await;
        for _ in 0..2 {
            assert_eq!(h2_get(&mut send, "/admin/whoami").await, 200);
        }
    });
}

/// Issue 25, finding 2: connections that never authenticate stay pending (sheddable) however
/// many requests they make, so three keep-alive clients polling an open route every second
/// under `--max-connections 3` do not keep a trusted client out. Before, the first request
/// made a connection `Open` (never shed) and they held every slot.
#[test]
fn unauthenticated_keep_alive_connections_do_not_hold_the_slots() {
    let pki = Arc::new(Pki::new());
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let limits = Limits::DEFAULT.with_idle_timeout(Duration::from_secs(3));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let options = ServeOptions::DEFAULT.with_max_connections(3);
            let stop = async {
                let _ = stopped.await;
            };
            certauth_hyper::serve_with(
                listener,
                Some(tls.into()),
                limits,
                options,
                app(auth),
                stop,
            )
            .await
            .unwrap();
        });
    });
    let server = Running {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    };
    let polling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let crowd: Vec<_> = (0..3)
        .map(|_| {
            let (pki, polling, addr) = (Arc::clone(&pki), Arc::clone(&polling), server.addr);
            std::thread::spawn(move || {
                let Ok(mut tls) = suite::connect(addr, suite::tls_client(&pki, None)) else {
                    return;
                };
                // Bounded: 20 requests at most, one a second.
                for _ in 0..20 {
                    if !polling.load(std::sync::atomic::Ordering::Relaxed)
                        || tls
                            .write_all(b"GET /public HTTP/1.1\r\nHost: a\r\n\r\n")
                            .is_err()
                        || !suite::read_until(&mut tls, b"hello").ends_with(b"hello")
                    {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let got = get_over(server.addr, &pki, Some(&pki.trusted), "/admin/whoami");
    polling.store(false, std::sync::atomic::Ordering::Relaxed);
    for c in crowd {
        c.join().unwrap();
    }
    assert_eq!(
        status_and_body(&got),
        ("HTTP/1.1 200 OK".into(), "Hello trusted-client".into())
    );
}

/// Issue 25, finding 3: a request the client resets (HTTP/2 RST_STREAM) no longer counts as
/// in flight, so the connection idles out. Before, only a completed response restarted the
/// idle clock and the connection stayed open for good.
#[test]
fn a_reset_http2_stream_restarts_the_idle_clock() {
    let pki = Pki::new();
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let limits = Limits::DEFAULT.with_idle_timeout(Duration::from_secs(1));
    let tls = Arc::new(rustls::ServerConfig::clone(&tls));
    let server = run_with(
        Some(with_alpn(tls, &ALPN_HTTP2_AND_HTTP1)),
        limits,
        move || {
            Router::new()
                .route("/hang", get(std::future::pending::<String>))
                .route_layer(CertAuthLayer::new(auth))
        },
    );
    block_on(async {
        // `send` stays alive: an h2 client whose handles are all gone closes by itself.
        let (send, connection) = h2_client(server.addr, &pki, Some(&pki.trusted)).await;
        let request = http::Request::get("https://localhost/hang")
            .body(())
            .unwrap();
        let (response, mut stream) = send
            .clone()
            .ready()
            .await
            .unwrap()
            .send_request(request, true)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.send_reset(h2::Reason::CANCEL);
        drop((response, stream));
        tokio::time::timeout(Duration::from_secs(10), connection)
            .await
            .expect("the connection never idled out after its stream was reset")
            .unwrap();
        drop(send);
    });
}

/// Issue 32: framing a server behind could read differently is answered 400 on every
/// route `serve` serves (hyper reads `Content-Length` with `Transfer-Encoding` as chunked and
/// hides the `Content-Length` from the application), and the handler never sees the request
/// nor what it hides; pipelined requests framed plainly are each served.
#[test]
fn ambiguous_framing_is_refused_before_the_application() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let server = run(Some(tls), move || {
        Router::new().route(
            "/public",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "hello" }
            }),
        )
    });
    let hidden = "POST /public HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    for head in [
        format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked",
            5 + hidden.len()
        ),
        "Transfer-Encoding: chunked\r\nContent-Length: 3".to_owned(),
        format!("Content-Length: 0\r\nContent-Length: {}", hidden.len()),
    ] {
        let request =
            format!("POST /public HTTP/1.1\r\nHost: a\r\n{head}\r\n\r\n0\r\n\r\n{hidden}");
        let got = exchange(server.addr, &pki, request.as_bytes());
        assert!(got.starts_with("HTTP/1.1 400"), "{head:?}: {got:?}");
        assert!(!got.contains("hello"), "{head:?}: {got:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Plain framing, pipelined: each request is served.
    let two = "POST /public HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab\
               POST /public HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nx\r\n0\r\n\r\n";
    let got = exchange(server.addr, &pki, two.as_bytes());
    assert_eq!(got.matches("HTTP/1.1 200").count(), 2, "{got:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// An open route that takes the connection over (101) and holds it until the client leaves
/// (or the stream ends), as socketioxide holds a client it refused.
async fn holding_upgrade(req: Request) -> axum::response::Response {
    use tokio::io::AsyncReadExt as _;
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buf = [0u8; 64];
            while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
        }
    });
    axum::response::Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "hold")
        .body(Body::empty())
        .unwrap()
}

/// A client without a certificate whose connection `holding_upgrade` took over.
fn held_upgrade(addr: SocketAddr, pki: &Pki) -> suite::Tls {
    let mut tls = suite::connect(addr, suite::tls_client(pki, None)).unwrap();
    tls.write_all(b"GET /hold HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: hold\r\n\r\n")
        .unwrap();
    let head = suite::read_until(&mut tls, b"\r\n\r\n");
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    tls
}

/// Whether the server closed `tls` within `wait` (`closed`) or left it open (`open`).
fn closed_within(tls: &mut suite::Tls, wait: Duration) -> &'static str {
    tls.sock.set_read_timeout(Some(wait)).unwrap();
    match tls.read(&mut [0u8; 64]) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            "open"
        }
        Ok(n) if n > 0 => "open",
        _ => "closed",
    }
}

/// A connection upgraded before any request was authenticated keeps its slot as a pending
/// connection, and is closed when that slot is shed: with 2 slots, of 4 such connections the
/// first 2 are closed to admit the others (before, shedding one aborted a task that had
/// already ended and its stream lived on, uncounted, for as long as its owner kept it), and
/// a trusted client still gets in, closing another.
#[test]
fn an_unauthenticated_upgrade_is_closed_when_its_slot_is_shed() {
    let pki = Pki::new();
    let limits = Limits::DEFAULT.with_head_read_timeout(Duration::from_secs(120));
    let (tls, auth) = suite::server_parts(&pki, limits, ClientAuthMode::Deferred);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let app = Router::new()
                .route("/hold", get(holding_upgrade))
                .route("/whoami", get(whoami))
                .layer(CertAuthLayer::new(auth).annotate_only());
            let options = ServeOptions::DEFAULT.with_max_connections(2);
            let stop = async {
                let _ = stopped.await;
            };
            certauth_hyper::serve_with(listener, Some(tls.into()), limits, options, app, stop)
                .await
                .unwrap();
        });
        rt.shutdown_timeout(Duration::from_secs(1));
    });
    let server = Running {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    };
    let mut held: Vec<suite::Tls> = (0..4).map(|_| held_upgrade(server.addr, &pki)).collect();
    // Well under the head timeout: a stream left to its owner is still open after it.
    let wait = Duration::from_secs(20);
    let first: Vec<&str> = held[..2]
        .iter_mut()
        .map(|t| closed_within(t, wait))
        .collect();
    assert_eq!(
        first, ["closed"; 2],
        "the connections shed for the next two"
    );
    let (status, body) =
        status_and_body(&get_over(server.addr, &pki, Some(&pki.trusted), "/whoami"));
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "Hello trusted-client")
    );
    assert_eq!(
        closed_within(&mut held[2], wait),
        "closed",
        "shed for the trusted client"
    );
}
