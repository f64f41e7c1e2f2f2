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
//! configuration current when it arrives, with the key support of its provider.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use http::Request;
use tokio::net::TcpStream;

use crate::ConnectionInfo;

/// The acceptor: rustls, then [`ConnectionInfo`] in each request's extensions.
#[derive(Clone)]
pub struct Acceptor {
    config: RustlsConfig,
    inner: RustlsAcceptor<DefaultAcceptor>,
}

impl Acceptor {
    /// Terminates TLS with `config` (build its `ServerConfig` with
    /// `certauth_core::tls::server_config`, then `RustlsConfig::from_config`).
    pub fn new(config: RustlsConfig) -> Self {
        Self {
            inner: RustlsAcceptor::new(config.clone()),
            config,
        }
    }
}

impl<S: Send + 'static> Accept<TcpStream, S> for Acceptor {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;
    type Service = WithConnectionInfo<S>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let remote = stream.peer_addr().ok();
        // The key support of the configuration this handshake runs with.
        let keys = certauth_core::tls::key_support(&self.config.get_inner());
        let handshake = self.inner.accept(stream, service);
        Box::pin(async move {
            let (tls, service) = handshake.await?;
            let chain = certauth_core::tls::peer_chain(tls.get_ref().1);
            let info = ConnectionInfo::new(chain, remote).with_key_support(keys);
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
