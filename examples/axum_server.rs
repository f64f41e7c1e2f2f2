//! The axum REST API of `axum_rest.rs`, served by axum-server instead of certauth's `serve`:
//! certauth's acceptor terminates TLS and hands the layer the peer chain.
//!
//! `cargo run --example axum_server --features axum-server [-- CA.pem SERVER.pem SERVER.key [ADDR]]`

mod common;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use certauth::hyper::axum_server::Acceptor;
use certauth::hyper::{CertAuthLayer, ClientCert, default_provider};
use certauth::policy::allow_cn;
use certauth::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth::{Authenticator, ChainVerifier, TrustAnchors};

async fn whoami(ClientCert(client): ClientCert) -> String {
    format!("hello {}\n", client.certificate().subject().to_rfc4514())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let setup = common::setup()?;
    let provider = default_provider(); // rustls' ring provider, re-exported
    let anchors = TrustAnchors::from_pem(&setup.ca_pem)?;
    let (chain, key) = load_server_identity(&setup.server_pem, &setup.server_key)?;
    let mut tls = server_config(
        provider.clone(),
        chain,
        key,
        &anchors,
        ClientAuthMode::Deferred,
    )?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            provider.signature_verification_algorithms.all,
        ))
        .policy(allow_cn(["trusted-client"]))
        .build()?;

    let app = Router::new()
        .route("/admin/whoami", get(whoami))
        .route_layer(CertAuthLayer::new(auth))
        .route("/public", get(|| async { "anyone may read this\n" }));
    println!(
        "listening on https://{} (try /public and /admin/whoami)",
        setup.listen
    );
    // Reload later with `config.reload_from_config(..)`: new connections take it.
    let config = RustlsConfig::from_config(Arc::new(tls));
    let addr: std::net::SocketAddr = setup.listen.parse()?;
    axum_server::bind(addr)
        .acceptor(Acceptor::new(config))
        .serve(app.into_make_service())
        .await?;
    Ok(())
}
