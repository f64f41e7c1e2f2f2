//! The seed's `ws` server on tokio: a client whose certificate has CN `trusted-client` gets
//! `Echo: <message>` for each message; everyone else gets `HTTP/1.1 401` on the raw socket.
//!
//! `cargo run --example ws_echo_tokio --features tokio [-- CA.pem SERVER.pem SERVER.key [ADDR]]`

mod common;

use certauth::MutualTls;
use certauth::policy::allow_cn;
use certauth::tokio::futures_util::{SinkExt as _, StreamExt as _};
use certauth::tokio::{Gate, ServeOptions, default_provider, serve_websocket};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let setup = common::setup()?;

    // The short path: three PEM files' contents and a policy (certauth::setup).
    let mtls = MutualTls::from_pem(
        default_provider(),
        &setup.ca_pem,
        &setup.server_pem,
        &setup.server_key,
        allow_cn(["trusted-client"]),
    )?;

    let listener = tokio::net::TcpListener::bind(&setup.listen).await?;
    println!("listening on wss://{}", setup.listen);
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve_websocket(
        listener,
        Gate::from(mtls),
        ServeOptions::default(),
        ctrl_c,
        |mut ws, client| async move {
            // req.clientCertificate in the Node package.
            println!(
                "Client connected: {}",
                client.certificate().common_name().unwrap_or_default()
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
