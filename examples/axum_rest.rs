//! An axum REST API with public and protected routes, as in client-certificate-auth's README:
//! `/public` is open; `/admin/*` needs a client certificate with CN `trusted-client`, and
//! `/admin/whoami` answers the certificate as Node's legacy object.
//!
//! `cargo run --example axum_rest --features axum,serde [-- CA.pem SERVER.pem SERVER.key [ADDR]]`

mod common;

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use certauth::hyper::{CertAuthLayer, ClientCert, default_provider, serve};
use certauth::policy::allow_cn;
use certauth::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth::{Authenticator, ChainVerifier, TrustAnchors};

async fn whoami(ClientCert(client): ClientCert) -> Json<certauth::legacy::LegacyObject> {
    Json(client.certificate().to_legacy_object())
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
        .route("/admin/status", get(|| async { "all systems go" }))
        .route_layer(CertAuthLayer::new(auth))
        .route("/public", get(|| async { "anyone may read this" }));
    let listener = tokio::net::TcpListener::bind(&setup.listen).await?;
    println!(
        "listening on https://{} (try /public and /admin/whoami)",
        setup.listen
    );
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, Some(Arc::new(tls)), app, ctrl_c).await?;
    Ok(())
}
