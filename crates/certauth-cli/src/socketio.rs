//! `certauth serve --socketio`: the seed's Socket.IO pattern on certauth-hyper and
//! socketioxide. Authentication runs in `annotate_only` mode so that Socket.IO refuses
//! failed clients in its own protocol (a connect error) through connect middleware.

use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::get;
use certauth_core::Authenticated;
use certauth_hyper::{
    AuthRejection, CertAuthLayer, SocketIoSessions, require_client_cert, to_response,
};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler as _;
use tracing::{info, warn};

use crate::serve::Server;
use crate::{Failure, Outcome};

async fn on_message(s: SocketRef, Data(data): Data<String>) {
    if let Err(e) = s.emit("message", &format!("Echo: {data}")) {
        // Its queue is full (QUEUED_PACKETS): it sends without reading. The echo is dropped
        // rather than queued, and the socket disconnected when there is room to say so.
        warn!(error = %e, "socket.io client not reading its messages: echo dropped, disconnecting");
        let _ = s.disconnect();
    }
}

/// Packets queued for one socket before its emits fail (engineioxide's default is 128):
/// with messages of up to 1 MiB, a client that never reads pins at most this many MiB.
const QUEUED_PACKETS: usize = 16;

/// Registers the socket's events. A connect middleware rather than the connect handler:
/// socketioxide sends the connect acknowledgement and only then spawns the handler, so an
/// event a client emits at once (socket.io-client from its `connect` callback) can arrive
/// before a handler's `s.on` has run, and socketioxide drops it without a word.
async fn listen(s: SocketRef) -> Result<(), std::convert::Infallible> {
    s.on("message", on_message);
    Ok(())
}

async fn on_connect(s: SocketRef) {
    if let Some(client) = s.extensions.get::<Authenticated>() {
        // `Authenticated`'s Display: the subject with control and bidi characters escaped;
        // quoted (Debug), so its spaces and `=` cannot forge fields of the text log.
        info!(subject = ?client.to_string(), "socket.io client connected");
    }
}

/// GET /whoami: the certificate as Node's legacy object, or the denial's response.
/// The page for people (`crate::page`): a browser's `GET /`. A refused browser's page is
/// the rejection's body (the authenticator's `deny_body` hook wrote it).
async fn page(req: Request) -> Response {
    let head = certauth_core::http::head_of(&req, None);
    if !crate::page::wants_page(req.method().as_str(), head_target(&req), &head) {
        let mut r = Response::new(Body::from("Not Found: try GET /whoami or Socket.IO\n"));
        *r.status_mut() = http::StatusCode::NOT_FOUND;
        return r;
    }
    if let Some(client) = req.extensions().get::<Authenticated>() {
        let html = crate::page::render(
            Some(client.certificate()),
            &crate::page::Decision::Allowed,
            crate::page::Echo::SocketIo,
        );
        let mut r = Response::new(Body::from(html));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(crate::page::CONTENT_TYPE),
        );
        return r;
    }
    match req.extensions().get::<AuthRejection>() {
        Some(rejection) => to_response(rejection.0.response(), req.version()),
        None => Response::new(Body::from("certauth layer missing")),
    }
}

fn head_target(req: &Request) -> &str {
    req.uri().path_and_query().map_or("/", |p| p.as_str())
}

async fn whoami(req: Request) -> Response {
    if let Some(client) = req.extensions().get::<Authenticated>() {
        let json =
            serde_json::to_string(&client.certificate().to_legacy_object()).unwrap_or_default();
        let mut r = Response::new(Body::from(format!("{json}\n")));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return r;
    }
    match req.extensions().get::<AuthRejection>() {
        Some(rejection) => to_response(rejection.0.response(), req.version()),
        None => Response::new(Body::from("certauth layer missing")),
    }
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    server: Server,
    max_open_sessions: usize,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    let limits = *server.auth.limits();
    // The raw gates' WebSocket limits (1 MiB messages and frames), for Engine.IO's payloads
    // (the maxPayload it advertises, enforced on polling) and its WebSocket transport alike.
    let ws = certauth_core::ws::default_websocket_config();
    let message = ws.max_message_size.unwrap_or(1 << 20);
    let (layer, io) = SocketIo::builder()
        .max_payload(u64::try_from(message).unwrap_or(u64::MAX))
        .ws_max_message_size(message)
        .ws_max_frame_size(ws.max_frame_size.unwrap_or(message))
        .max_buffer_size(QUEUED_PACKETS)
        // A client that never joins the namespace (refused, or silent) is closed as a head
        // that never comes is.
        .connect_timeout(limits.head_read_timeout)
        .build_layer();
    // Middleware runs last-added first: authenticate, then register the events.
    io.ns("/", on_connect.with(listen).with(require_client_cert));
    // Socket.IO clients are disconnected in their own protocol when the drain starts.
    let shutdown = async move {
        shutdown.await;
        io.close().await;
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/whoami", get(whoami))
        .layer(layer)
        // An Engine.IO sid is not a bearer token: only its owner's certificate reaches it.
        // Sessions without a certificate: capped, and reachable as long as socketioxide
        // keeps a socket that joins no namespace.
        .layer(
            SocketIoSessions::new()
                .unauthenticated_sessions(max_open_sessions, limits.head_read_timeout),
        )
        .layer(CertAuthLayer::new(server.auth).annotate_only());
    certauth_hyper::serve_with(listener, server.tls, limits, server.options, app, shutdown)
        .await
        .map_err(|e| Failure::Rejected(e.to_string()))
}
