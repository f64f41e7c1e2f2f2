//! Plain HTTPS on smol: `GET /whoami` answers the client certificate's subject; a client
//! without an acceptable certificate gets the core's `HTTP/1.1 401` on the raw socket.
//!
//! `serve` hands each authenticated request to the handler: the head, the start of its body
//! and a stream that ends where the request's body ends (one decision, one request). Write
//! the response and close; an HTTP server of your own can take the stream instead.
//!
//! `cargo run --example https_smol --features smol [-- CA.pem SERVER.pem SERVER.key [ADDR]]`

mod common;

use certauth::MutualTls;
use certauth::policy::allow_cn;
use certauth::smol::futures_util::AsyncWriteExt as _;
use certauth::smol::{Gate, ServeOptions, default_provider, serve};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let setup = common::setup()?;
    let mtls = MutualTls::from_pem(
        default_provider(),
        &setup.ca_pem,
        &setup.server_pem,
        &setup.server_key,
        allow_cn(["trusted-client"]),
    )?;
    // Offers http/1.1 by ALPN, as every raw gate does.
    let gate = Gate::from(mtls);

    let listener = smol::net::TcpListener::bind(&setup.listen).await?;
    println!("listening on https://{} (try /whoami)", setup.listen);
    // smol has no signal handling of its own; stop with Ctrl-C (the process ends).
    let ctrl_c = std::future::pending::<()>();
    serve(
        listener,
        gate,
        ServeOptions::default(),
        ctrl_c,
        |mut accepted| async move {
            let (status, body) = match accepted.head.path() {
                "/whoami" => (
                    "200 OK",
                    format!(
                        "hello {}\n",
                        accepted.client.certificate().subject().to_rfc4514()
                    ),
                ),
                _ => ("404 Not Found", "not found\n".to_owned()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = accepted.io.write_all(response.as_bytes()).await;
            let _ = accepted.io.close().await;
        },
    )
    .await?;
    Ok(())
}
