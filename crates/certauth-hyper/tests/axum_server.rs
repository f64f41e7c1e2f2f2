//! axum-server with certauth's acceptor (feature `axum-server`): real TLS clients against
//! `axum_server::bind(..).acceptor(Acceptor)` and the layer, which then decides as under
//! certauth's own `serve`: the trusted client in, others 401 with their code, keep-alive
//! requests verified once, and a configuration reload picked up by new connections.
#![cfg(feature = "axum-server")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use certauth_hyper::certauth_core::tls::ClientAuthMode;
use certauth_hyper::certauth_core::{Authenticated, Limits};
use certauth_hyper::{AuthRejection, CertAuthLayer, axum_server::Acceptor};
use certauth_testkit::suite::{self, Pki};

/// The request's outcome, as the annotate-mode layer left it.
async fn whoami_handler(req: axum::extract::Request) -> String {
    if let Some(AuthRejection(denial)) = req.extensions().get::<AuthRejection>() {
        return denial.code().to_owned();
    }
    match req.extensions().get::<Authenticated>() {
        Some(c) => format!(
            "ALLOW {} reused={}",
            c.certificate().subject().common_names().next().unwrap(),
            c.reused()
        ),
        None => "NOTHING".into(),
    }
}

/// Starts axum-server on a runtime of its own; returns the address, the config (to reload)
/// and a handle that stops it.
fn start(
    pki: &Pki,
) -> (
    SocketAddr,
    RustlsConfig,
    axum_server::Handle<SocketAddr>,
    std::thread::JoinHandle<()>,
) {
    let (tls, auth) = suite::server_parts(pki, certauth_core_limits(), ClientAuthMode::Deferred);
    let handle = axum_server::Handle::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = handle.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = RustlsConfig::from_config(tls);
            tx.send(config.clone()).unwrap();
            // Annotate mode, so the handler reports the denial's code.
            let app = Router::new()
                .route("/whoami", get(whoami_handler))
                .layer(CertAuthLayer::new(auth).annotate_only());
            axum_server::bind("127.0.0.1:0".parse().unwrap())
                .acceptor(Acceptor::new(config))
                .handle(h)
                .serve(app.into_make_service())
                .await
                .unwrap();
        });
    });
    let config = rx.recv().unwrap();
    let addr = listening_address(&handle);
    (addr, config, handle, thread)
}

fn certauth_core_limits() -> Limits {
    Limits::DEFAULT
}

/// Waits (up to 10 s) for the server's address.
fn listening_address(handle: &axum_server::Handle<SocketAddr>) -> SocketAddr {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), handle.listening())
            .await
            .unwrap()
            .unwrap()
    })
}

/// `GET /whoami` `n` times on one keep-alive connection: each body.
fn whoami(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&certauth_testkit::Issued>,
    n: usize,
) -> Vec<String> {
    let mut tls = suite::connect(addr, suite::tls_client(pki, client)).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..n {
        tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read one response: head, then Content-Length bytes.
        let body = loop {
            let k = tls.read(&mut chunk).unwrap();
            assert!(k > 0, "closed early: {}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..k]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if body.len() >= len {
                    break body[..len].to_owned();
                }
            }
        };
        bodies.push(body);
    }
    bodies
}

#[test]
fn the_acceptor_gives_the_layer_the_peer_chain() {
    let pki = Pki::new();
    let (addr, config, handle, thread) = start(&pki);
    assert_eq!(
        whoami(addr, &pki, Some(&pki.trusted), 3),
        [
            "ALLOW trusted-client reused=false",
            "ALLOW trusted-client reused=true",
            "ALLOW trusted-client reused=true"
        ]
    );
    assert_eq!(
        whoami(addr, &pki, Some(&pki.other_ca), 1),
        ["UNABLE_TO_VERIFY_LEAF_SIGNATURE"]
    );
    assert_eq!(whoami(addr, &pki, None, 1), ["NO_CERTIFICATE"]);
    // A reload (a new server configuration) is taken by the next connection.
    let (tls, _) = suite::server_parts(&pki, certauth_core_limits(), ClientAuthMode::Deferred);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async { config.reload_from_config(Arc::clone(&tls)) });
    assert_eq!(
        whoami(addr, &pki, Some(&pki.trusted), 1),
        ["ALLOW trusted-client reused=true"]
    );
    handle.shutdown();
    thread.join().unwrap();
}
