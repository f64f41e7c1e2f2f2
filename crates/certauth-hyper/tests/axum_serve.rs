//! `axum::serve` over certauth's `TlsListener` (feature `axum`): the layer reads the
//! connection's information from axum's `ConnectInfo`; without it, the layer answers 500 and
//! says what is missing, never 401 to everyone.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use certauth_hyper::certauth_core::Limits;
use certauth_hyper::certauth_core::tls::ClientAuthMode;
use certauth_hyper::{CertAuthLayer, ClientCert, ConnectionInfo, TlsListener};
use certauth_testkit::suite::{self, Pki};

async fn whoami(ClientCert(c): ClientCert) -> String {
    format!(
        "hello {}",
        c.certificate().subject().common_names().next().unwrap()
    )
}

/// Serves the app with `axum::serve` on its own runtime, with or without connect info.
fn start(pki: &Pki, connect_info: bool) -> (SocketAddr, tokio::runtime::Runtime) {
    let (tls, auth) = suite::server_parts(pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = TlsListener::new(tcp, tls, Duration::from_secs(5)).unwrap();
        let app = Router::new()
            .route("/whoami", get(whoami))
            .layer(CertAuthLayer::new(auth));
        if connect_info {
            tokio::spawn(async move {
                let make = app.into_make_service_with_connect_info::<ConnectionInfo>();
                axum::serve(listener, make).await.unwrap();
            });
        } else {
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        }
        addr
    });
    (addr, rt)
}

fn status_and_body(
    addr: SocketAddr,
    pki: &Pki,
    client: Option<&certauth_testkit::Issued>,
) -> String {
    let mut tls = suite::connect(addr, suite::tls_client(pki, client)).unwrap();
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .trim()
        .to_owned();
    format!("{status} | {body}")
}

#[test]
fn axum_serve_with_the_tls_listener_and_connect_info() {
    let pki = Pki::new();
    let (addr, _rt) = start(&pki, true);
    assert_eq!(
        status_and_body(addr, &pki, Some(&pki.trusted)),
        "HTTP/1.1 200 OK | hello trusted-client"
    );
    assert!(status_and_body(addr, &pki, Some(&pki.other_ca)).starts_with("HTTP/1.1 401"));
    assert!(status_and_body(addr, &pki, None).starts_with("HTTP/1.1 401"));
}

#[test]
fn without_connect_info_the_layer_answers_500_and_says_why() {
    let pki = Pki::new();
    let (addr, _rt) = start(&pki, false);
    let got = status_and_body(addr, &pki, Some(&pki.trusted));
    assert!(got.starts_with("HTTP/1.1 500"), "{got}");
}
