//! axum-server (feature `axum-server`): an acceptor that terminates TLS with rustls and puts
//! the connection's [`ConnectionInfo`] (peer chain, address, the handshake's key support)
//! in every request, so [`CertAuthLayer`](crate::CertAuthLayer) decides under
//! `axum_server::bind(..).acceptor(..)` as under [`serve`](crate::serve).
//!
//! ```no_run
//! # async fn run(app: axum::Router, tls: std::sync::Arc<rustls::ServerConfig>) -> std::io::Result<()> {
//! use axum_server::tls_rustls::RustlsConfig;
//! let acceptor = certauth_hyper::axum_server::Acceptor::new(RustlsConfig::from_config(tls));
//! axum_server::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 8443)))
//!     .acceptor(acceptor)
//!     .serve(app.into_make_service())
//!     .await
//! # }
//! ```
//!
//! `RustlsConfig::reload_from_config` and friends keep working: each connection takes the
//! configuration current when it arrives, and its handshake and its key support both come
//! from that one snapshot (a reload between them could otherwise let the decision trust a
//! key whose possession the handshake did not check).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use axum_server::tls_rustls::RustlsConfig;
use certauth_core::tls::TlsPeer;
use http::Request;
use tokio::net::TcpStream;

use crate::ConnectionInfo;

/// The acceptor: rustls, then [`ConnectionInfo`] in each request's extensions.
#[derive(Clone)]
pub struct Acceptor {
    config: RustlsConfig,
    handshake_timeout: Duration,
}

impl Acceptor {
    /// Terminates TLS with `config` (build its `ServerConfig` with
    /// `certauth_core::tls::server_config`, then `RustlsConfig::from_config`), each
    /// handshake within 10 s (as axum-server's own acceptor).
    pub fn new(config: RustlsConfig) -> Self {
        Self {
            config,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// With another time limit for the TLS handshake.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for Acceptor {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;
    type Service = WithConnectionInfo<S>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let remote = stream.peer_addr().ok();
        // One snapshot for the handshake and its key support.
        let config = self.config.get_inner();
        let data = certauth_core::tls::resumption_data(&config);
        let handshake = tokio_rustls::TlsAcceptor::from(Arc::clone(&config))
            .accept_with(stream, |c| c.set_resumption_data(&data));
        let limit = self.handshake_timeout;
        Box::pin(async move {
            let tls = tokio::time::timeout(limit, handshake).await.map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
            let peer = TlsPeer::of(&config, tls.get_ref().1);
            let info = ConnectionInfo::from_tls(peer, remote);
            Ok((
                tls,
                WithConnectionInfo {
                    inner: service,
                    info,
                },
            ))
        })
    }
}

/// A connection's service, adding its [`ConnectionInfo`] to each request.
#[derive(Clone, Debug)]
pub struct WithConnectionInfo<S> {
    inner: S,
    info: ConnectionInfo,
}

impl<S: tower_service::Service<Request<B>>, B> tower_service::Service<Request<B>>
    for WithConnectionInfo<S>
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        req.extensions_mut().insert(self.info.clone());
        self.inner.call(req)
    }
}

#[cfg(test)]
#[cfg(feature = "aws-lc-rs")]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use certauth_core::TrustAnchors;
    use certauth_core::tls::{ClientAuthMode, TlsPeer, load_server_identity, server_config};
    use certauth_testkit::suite::{self, Pki};

    use super::*;

    /// Issue 25: a reload between `accept` and the handshake. The connection's key support
    /// must be that of the configuration whose certificate the client saw. Before, it was
    /// computed from the configuration current at `accept`, while axum-server's acceptor
    /// read the configuration again for the handshake.
    #[tokio::test]
    async fn a_reload_during_accept_keeps_the_handshake_and_its_key_support_together() {
        let pki = Pki::new();
        let anchors = TrustAnchors::from_der([pki.root.cert.der.clone()]).unwrap();
        let mut second = certauth_testkit::Leaf::client("localhost").around_wall_clock();
        second.eku = vec![certauth_testkit::rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        second.sans = vec![certauth_testkit::rcgen::SanType::DnsName(
            "localhost".try_into().unwrap(),
        )];
        let second = pki.server_root.issue(&second);
        let config = |provider: rustls::crypto::CryptoProvider, leaf: &certauth_testkit::Issued| {
            let (chain, key) =
                load_server_identity(leaf.pem().as_bytes(), leaf.key_pem().as_bytes()).unwrap();
            Arc::new(
                server_config(
                    Arc::new(provider),
                    chain,
                    key,
                    &anchors,
                    ClientAuthMode::Deferred,
                )
                .unwrap(),
            )
        };
        let ring = config(certauth_testkit::ring_provider(), &pki.server);
        let aws = config(rustls::crypto::aws_lc_rs::default_provider(), &second);
        let chain = vec![pki.trusted.der.clone()];
        assert_ne!(
            TlsPeer::new(&ring, chain.clone()),
            TlsPeer::new(&aws, chain)
        );

        let rustls_config = RustlsConfig::from_config(Arc::clone(&ring));
        let acceptor = Acceptor::new(rustls_config.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let connector =
                tokio_rustls::TlsConnector::from(suite::tls_client(&pki, Some(&pki.trusted)));
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = connector.connect(name, tcp).await.unwrap();
            let seen = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            (seen, pki.server.der.clone())
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let accepting = Accept::<TcpStream, ()>::accept(&acceptor, tcp, ());
        rustls_config.reload_from_config(Arc::clone(&aws));
        let (_, service) = accepting.await.unwrap();
        let (seen, first) = client.await.unwrap();
        let handshake_config = if seen == first { &ring } else { &aws };
        let peer = &service.info.peer;
        assert_eq!(*peer, TlsPeer::new(handshake_config, peer.chain().to_vec()));
    }
}
