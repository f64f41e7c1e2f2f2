//! The seed's Socket.IO pattern: connections whose certificate fails are refused by connect
//! middleware (the client gets a connect error); handlers reach the certificate
//! (`socket.clientCert` in the seed) and answer each `message` with `Echo: <data>`.
//!
//! `cargo run --example socketio --features socketio [-- CA.pem SERVER.pem SERVER.key [ADDR]]`
//! then `node` with socket.io-client, e.g. `tests/node/sio-client.js URL CA CERT KEY`.

mod common;

use std::sync::Arc;

use axum::Router;
use certauth::hyper::{
    CertAuthLayer, SocketIoSessions, default_provider, require_client_cert, serve,
};
use certauth::policy::allow_cn;
use certauth::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth::{Authenticated, Authenticator, ChainVerifier, TrustAnchors};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler as _;

async fn on_message(s: SocketRef, Data(data): Data<String>) {
    let _ = s.emit("message", &format!("Echo: {data}"));
}

/// Registers the socket's events in a connect middleware, not in the connect handler:
/// socketioxide acknowledges the connection before it spawns the handler, so an event the
/// client emits at once could otherwise arrive before `s.on` ran, and be dropped.
async fn listen(s: SocketRef) -> Result<(), std::convert::Infallible> {
    s.on("message", on_message);
    Ok(())
}

async fn on_connect(s: SocketRef) {
    if let Some(client) = s.extensions.get::<Authenticated>() {
        println!(
            "Client connected: {}",
            client.certificate().subject().to_rfc4514()
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let setup = common::setup()?;
    let provider = default_provider(); // rustls' ring provider, re-exported
    let anchors = TrustAnchors::from_pem(&setup.ca_pem)?;
    let (chain, key) = load_server_identity(&setup.server_pem, &setup.server_key)?;
    let tls = server_config(
        provider.clone(),
        chain,
        key,
        &anchors,
        ClientAuthMode::Deferred,
    )?;
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            provider.signature_verification_algorithms.all,
        ))
        .policy(allow_cn(["trusted-client"]))
        .build()?;

    // 1 MiB messages (the raw gates' WebSocket limit) and 16 queued packets per socket,
    // instead of socketioxide's 64 MiB and 128.
    let (layer, io) = SocketIo::builder()
        .max_payload(1 << 20)
        .ws_max_message_size(1 << 20)
        .ws_max_frame_size(1 << 20)
        .max_buffer_size(16)
        .build_layer();
    // The last middleware added runs first: authenticate, then register the events.
    io.ns("/", on_connect.with(listen).with(require_client_cert));
    // annotate_only: let socket.io refuse in its own protocol (a connect error) rather than
    // answering the engine.io request with a bare 401.
    // SocketIoSessions: an Engine.IO sid reaches its session only with the certificate
    // that opened it.
    let app = Router::new()
        .layer(layer)
        .layer(SocketIoSessions::new())
        .layer(CertAuthLayer::new(auth).annotate_only());
    let listener = tokio::net::TcpListener::bind(&setup.listen).await?;
    println!("Socket.IO on https://{}/socket.io/", setup.listen);
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, Some(Arc::new(tls)), app, ctrl_c).await?;
    Ok(())
}
