//! The seed's `ws` server on tokio: a client whose certificate has CN `trusted-client` gets
//! `Echo: <message>` for each message; everyone else gets `HTTP/1.1 401` on the raw socket.
//!
//! `cargo run --example ws_echo_tokio --features tokio [-- CA.pem SERVER.pem SERVER.key [ADDR]]`

mod common;

use std::sync::Arc;

use certauth::policy::allow_cn;
use certauth::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth::tokio::{Gate, ServeOptions, serve_websocket};
use certauth::{Authenticator, ChainVerifier, TrustAnchors};
use futures_util::StreamExt as _;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let setup = common::setup()?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
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

    let listener = tokio::net::TcpListener::bind(&setup.listen).await?;
    println!("listening on wss://{}", setup.listen);
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve_websocket(
        listener,
        Gate::new(auth, Arc::new(tls)),
        ServeOptions::default(),
        ctrl_c,
        |mut ws, client| async move {
            // req.clientCertificate in the Node package.
            println!(
                "Client connected: {}",
                client
                    .certificate()
                    .subject()
                    .common_names()
                    .next()
                    .unwrap_or_default()
            );
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_text() {
                    let reply = format!("Echo: {}", msg.into_text().unwrap_or_default());
                    if ws.send(reply.into()).await.is_err() {
                        break;
                    }
                }
            }
        },
    )
    .await?;
    Ok(())
}
