//! Issue 28: apps built the way the README shows, with real rustls clients over loopback.
//! Each test builds the shape the docs recommend (or warn about) and checks that nothing a
//! decision did not allow is served.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use certauth_hyper::certauth_core::policy::{Policy, PolicyContext, Verdict, allow_any, allow_cn};
use certauth_hyper::certauth_core::tls::ClientAuthMode;
use certauth_hyper::certauth_core::{Authenticator, ChainVerifier, Limits, TrustAnchors};
use certauth_hyper::{CertAuthLayer, ClientCert};
use certauth_testkit::suite::{self, Pki};

/// A server on its own runtime, stopped when dropped.
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

/// Serves `app` over TLS with `certauth_hyper::serve` (HTTP/1.1 and HTTP/2 offered).
fn run(tls: Arc<rustls::ServerConfig>, app: impl FnOnce() -> Router + Send + 'static) -> Running {
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
            certauth_hyper::serve(listener, Some(tls), app(), stop)
                .await
                .unwrap();
        });
        rt.shutdown_timeout(Duration::from_secs(1));
    });
    Running {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// An authenticator over the suite's PKI with `policy`.
fn auth_with(pki: &Pki, policy: impl Policy + 'static) -> Authenticator {
    let provider = certauth_testkit::ring_provider();
    let anchors = TrustAnchors::from_der([pki.root.cert.der.clone()]).unwrap();
    Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            provider.signature_verification_algorithms.all,
        ))
        .policy(policy)
        .build()
        .unwrap()
}

/// Sends `head` (the request line and headers, without the final blank line) over
/// HTTP/1.1 with `client`'s certificate: the status line and the body.
fn send(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&certauth_testkit::Issued>,
    head: &str,
) -> (String, String) {
    let mut tls = suite::connect(addr, suite::tls_client(pki, client)).unwrap();
    write!(tls, "{head}\r\nConnection: close\r\n\r\n").unwrap();
    let response = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    let status = response.lines().next().unwrap_or("").to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `GET path` over HTTP/1.1 with `Host: localhost`.
fn get_path(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&certauth_testkit::Issued>,
    path: &str,
) -> (String, String) {
    send(
        addr,
        pki,
        client,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost"),
    )
}

async fn secrets(ClientCert(client): ClientCert) -> String {
    let cn = client.certificate().subject().common_names().next();
    format!("secrets for {}", cn.unwrap_or_default())
}

/// Issue 28, finding 2: an outer layer allows any verified client, a stricter inner layer in
/// `annotate_only` mode refuses `denied-client`. The outer Allow must not survive the inner
/// refusal: `ClientCert` answers 500 naming the refusal, never the secrets.
#[test]
fn an_inner_annotate_only_denial_removes_an_outer_allow() {
    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let any_verified = CertAuthLayer::new(auth_with(&pki, allow_any()));
    let strict = CertAuthLayer::new(auth_with(&pki, allow_cn(["trusted-client"])));
    let server = run(tls, move || {
        Router::new()
            .route("/admin/secrets", get(secrets))
            .route_layer(strict.annotate_only())
            .route("/whoami", get(secrets))
            .layer(any_verified)
    });
    let (status, body) = get_path(server.addr, &pki, Some(&pki.denied), "/admin/secrets");
    assert_eq!(status, "HTTP/1.1 500 Internal Server Error", "{body}");
    assert!(!body.contains("secrets for"), "{body}");
    assert!(body.contains("refused (POLICY_DENIED)"), "{body}");
    assert!(body.contains("annotate_only"), "{body}");
    // The outer layer still lets the verified client into the routes it alone guards, and
    // the client both allow reaches the secrets.
    let (status, body) = get_path(server.addr, &pki, Some(&pki.denied), "/whoami");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let (status, body) = get_path(server.addr, &pki, Some(&pki.trusted), "/admin/secrets");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "secrets for trusted-client")
    );
}

/// The other order: an outer layer in `annotate_only` mode refuses, an inner layer allows.
/// The inner Allow decides the route it guards, so no stale `AuthRejection` is left for the
/// handler to find.
#[test]
fn an_inner_allow_removes_an_outer_rejection() {
    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let strict = CertAuthLayer::new(auth_with(&pki, allow_cn(["trusted-client"])));
    let any_verified = CertAuthLayer::new(auth_with(&pki, allow_any()));
    let server = run(tls, move || {
        let rejected = |req: axum::extract::Request| async move {
            let r = req.extensions().get::<certauth_hyper::AuthRejection>();
            format!("rejection: {}", r.map_or("none", |r| r.0.code()))
        };
        Router::new()
            .route("/open-to-verified", get(rejected))
            .route_layer(any_verified)
            .layer(strict.annotate_only())
    });
    let (status, body) = get_path(server.addr, &pki, Some(&pki.denied), "/open-to-verified");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "rejection: none")
    );
}

/// "admin.example is for trusted-client only", whatever the protocol: the host a policy
/// judges is the request's authority.
fn admin_host_only_for_trusted(ctx: &PolicyContext<'_>) -> Verdict {
    let cn = ctx.cert.subject().common_names().next().unwrap_or_default();
    let admin = ctx
        .request
        .host()
        .is_some_and(|h| h.eq_ignore_ascii_case("admin.example"));
    if admin && cn != "trusted-client" {
        Verdict::forbid("admin.example is for trusted-client")
    } else {
        Verdict::Allow
    }
}

/// One HTTP/2 GET of `uri` over TLS (ALPN h2) presenting `client`: the status.
async fn h2_get(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&certauth_testkit::Issued>,
    uri: &str,
) -> u16 {
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
    let request = http::Request::get(uri).body(()).unwrap();
    let (response, _) = send
        .ready()
        .await
        .unwrap()
        .send_request(request, true)
        .unwrap();
    let status = response.await.unwrap().status().as_u16();
    task.abort();
    status
}

/// Issue 28, finding 1: a virtual-host policy gives the same answer over HTTP/1.1 (`Host`),
/// HTTP/1.1 absolute form with a different `Host` header (the authority wins, as hyper
/// routes), and HTTP/2 (`:authority`, no `Host` header).
#[test]
fn a_host_policy_answers_alike_over_http1_absolute_form_and_http2() {
    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let layer = CertAuthLayer::new(auth_with(&pki, admin_host_only_for_trusted));
    let server = run(tls, move || {
        Router::new().route("/x", get(secrets)).route_layer(layer)
    });
    let (addr, denied, trusted) = (server.addr, Some(&pki.denied), Some(&pki.trusted));
    let h1 = |client, head: &str| send(addr, &pki, client, head).0;
    let forbidden = "HTTP/1.1 403 Forbidden";
    assert_eq!(
        h1(denied, "GET /x HTTP/1.1\r\nHost: admin.example"),
        forbidden
    );
    assert_eq!(
        h1(denied, "GET /x HTTP/1.1\r\nHost: ADMIN.example:8443"),
        forbidden
    );
    let absolute = "GET https://admin.example/x HTTP/1.1\r\nHost: public.example";
    assert_eq!(h1(denied, absolute), forbidden);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h2 = |client, uri| rt.block_on(h2_get(addr, &pki, client, uri));
    assert_eq!(h2(denied, "https://admin.example/x"), 403);
    // The same clients elsewhere, and the trusted client everywhere, are served.
    let ok = "HTTP/1.1 200 OK";
    assert_eq!(h1(denied, "GET /x HTTP/1.1\r\nHost: public.example"), ok);
    let absolute_public = "GET https://public.example/x HTTP/1.1\r\nHost: admin.example";
    assert_eq!(h1(denied, absolute_public), ok);
    assert_eq!(h2(denied, "https://public.example/x"), 200);
    assert_eq!(h1(trusted, "GET /x HTTP/1.1\r\nHost: admin.example"), ok);
    assert_eq!(h2(trusted, "https://admin.example/x"), 200);
}

/// "/admin is for trusted-client only", by path.
fn admin_path_only_for_trusted(ctx: &PolicyContext<'_>) -> Verdict {
    let cn = ctx.cert.subject().common_names().next().unwrap_or_default();
    if ctx.request.path().starts_with("/admin") && cn != "trusted-client" {
        Verdict::forbid("/admin is for trusted-client")
    } else {
        Verdict::Allow
    }
}

/// Issue 28, finding 4: a layer inside a nested router judges the path that was requested
/// (`/admin/secrets`, axum's `OriginalUri`), not the one `nest` left (`/secrets`).
#[test]
fn a_path_policy_inside_nest_sees_the_whole_path() {
    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let layer = CertAuthLayer::new(auth_with(&pki, admin_path_only_for_trusted));
    let server = run(tls, move || {
        let admin = Router::new()
            .route("/secrets", get(secrets))
            .route_layer(layer);
        Router::new().nest("/admin", admin)
    });
    let get = |client| get_path(server.addr, &pki, client, "/admin/secrets").0;
    assert_eq!(get(Some(&pki.denied)), "HTTP/1.1 403 Forbidden");
    assert_eq!(get(Some(&pki.trusted)), "HTTP/1.1 200 OK");
}

/// Issue 28, finding 3: `Router::layer` over the whole app covers its fallback (and every
/// route, added before or after), which `route_layer` never does: the README's safe shape,
/// and the pitfall it warns about, pinned.
#[test]
fn layer_covers_the_fallback_and_route_layer_does_not() {
    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let auth = auth_with(&pki, allow_cn(["trusted-client"]));
    let (whole, routes) = (CertAuthLayer::new(auth.clone()), CertAuthLayer::new(auth));
    let fallback = || async { "the fallback's secret" };
    // The README's shape: the protected router (its routes, a nested router with its own
    // fallback, its fallback) under `Router::layer`, merged into an app of open routes.
    let safe = run(tls.clone(), move || {
        let ui = Router::new()
            .route("/index", get(secrets))
            .fallback(fallback);
        let protected = Router::new()
            .route("/admin/secrets", get(secrets))
            .nest("/admin/ui", ui)
            .fallback(fallback)
            .layer(whole);
        Router::new()
            .route("/public", get(|| async { "hello" }))
            .merge(protected)
    });
    let fetch = |addr, client, path| get_path(addr, &pki, client, path);
    let unauthorized = "HTTP/1.1 401 Unauthorized";
    for path in [
        "/admin/secrets",
        "/admin/ui/index",
        "/admin/ui/secret.json",
        "/nowhere",
    ] {
        assert_eq!(fetch(safe.addr, None, path).0, unauthorized, "{path}");
        let denied = fetch(safe.addr, Some(&pki.denied), path).0;
        assert_eq!(denied, unauthorized, "{path}");
    }
    assert_eq!(
        fetch(safe.addr, None, "/public"),
        ("HTTP/1.1 200 OK".to_owned(), "hello".to_owned())
    );
    let (status, body) = fetch(safe.addr, Some(&pki.trusted), "/admin/ui/secret.json");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "the fallback's secret")
    );
    // The pitfall: `route_layer` guards the routes added before it, never the fallback.
    let pitfall = run(tls, move || {
        Router::new()
            .route("/admin/secrets", get(secrets))
            .fallback(fallback)
            .route_layer(routes)
    });
    assert_eq!(
        fetch(pitfall.addr, None, "/admin/secrets").0,
        "HTTP/1.1 401 Unauthorized"
    );
    let (status, body) = fetch(pitfall.addr, None, "/admin/ui/secret.json");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "the fallback's secret")
    );
}

/// Issue 28, finding 5: `annotate_only` protects nothing by itself. The README's Socket.IO
/// app with an HTTP route guarded by its own layer (before the Socket.IO layers) refuses a
/// client the route's layer refuses, whatever the `annotate_only` layer above decided; the
/// same route without it reaches anyone (the pitfall, pinned).
#[test]
fn http_routes_beside_socketio_need_their_own_layer() {
    use socketioxide::SocketIo;
    use socketioxide::handler::ConnectHandler as _;

    let pki = Pki::new();
    let (tls, _) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let auth = auth_with(&pki, allow_cn(["trusted-client"]));
    let status = || async { "admin status" };
    let socketio_app = move |guarded: bool| {
        let (layer, io) = SocketIo::new_layer();
        let on_connect = async || ();
        io.ns("/", on_connect.with(certauth_hyper::require_client_cert));
        let app = Router::new().route("/admin/status", get(status));
        let app = if guarded {
            app.route_layer(CertAuthLayer::new(auth.clone()))
        } else {
            app
        };
        app.layer(layer)
            .layer(certauth_hyper::SocketIoSessions::new())
            .layer(CertAuthLayer::new(auth.clone()).annotate_only())
    };
    let (safe_app, open_app) = (socketio_app.clone(), socketio_app);
    let safe = run(tls.clone(), move || safe_app(true));
    let fetch = |addr, client| get_path(addr, &pki, client, "/admin/status").0;
    assert_eq!(fetch(safe.addr, None), "HTTP/1.1 401 Unauthorized");
    assert_eq!(
        fetch(safe.addr, Some(&pki.denied)),
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(fetch(safe.addr, Some(&pki.trusted)), "HTTP/1.1 200 OK");
    let open = run(tls, move || open_app(false));
    assert_eq!(fetch(open.addr, None), "HTTP/1.1 200 OK");
}
