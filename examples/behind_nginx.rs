//! Behind nginx: nginx terminates TLS and verifies the client; this plain-HTTP backend takes
//! the certificate from `X-SSL-Client-Cert` (nginx's `$ssl_client_escaped_cert`), only from
//! nginx's address, requires `X-SSL-Client-Verify: SUCCESS`, and verifies the chain again.
//! The nginx side is in the README ("Behind a TLS-terminating proxy").
//!
//! `cargo run --example behind_nginx --features axum -- CA.pem [LISTEN] [NGINX_ADDR]`

use axum::Router;
use axum::routing::get;
use certauth::hyper::{CertAuthLayer, ClientCert, default_provider, serve};
use certauth::{Authenticator, ChainVerifier, Preset, ProxyHeaderConfig, TrustAnchors};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(ca) = args.first() else {
        eprintln!("usage: behind_nginx CA.pem [LISTEN (127.0.0.1:8080)] [NGINX_ADDR (127.0.0.1)]");
        std::process::exit(2);
    };
    let listen = args.get(1).map_or("127.0.0.1:8080", String::as_str);
    let nginx = args.get(2).map_or("127.0.0.1", String::as_str);

    let provider = default_provider(); // rustls' ring provider, re-exported
    let anchors = TrustAnchors::from_pem(&std::fs::read(ca)?)?;
    let proxy = ProxyHeaderConfig::preset(Preset::Nginx)
        .with_trusted_proxies([nginx])?
        .with_verify_header("X-SSL-Client-Verify", "SUCCESS")?;
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            provider.signature_verification_algorithms.all,
        ))
        .proxy_header(proxy)
        .build()?;
    let app = Router::new()
        .route(
            "/whoami",
            get(|ClientCert(c): ClientCert| async move { c.certificate().subject().to_rfc4514() }),
        )
        .layer(CertAuthLayer::new(auth));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("backend on http://{listen}, trusting headers from {nginx} only");
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, None, app, ctrl_c).await?;
    Ok(())
}
