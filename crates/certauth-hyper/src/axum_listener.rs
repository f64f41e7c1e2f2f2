//! `axum::serve` over TLS (feature `axum`): a listener that completes TLS handshakes
//! concurrently, each bounded by the handshake timeout, and yields every connection with its
//! [`ConnectionInfo`], which the layer reads from axum's `ConnectInfo`.
//!
//! ```no_run
//! # async fn run(app: axum::Router, tls: std::sync::Arc<rustls::ServerConfig>) -> std::io::Result<()> {
//! use certauth_hyper::{ConnectionInfo, TlsListener};
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let listener = TlsListener::new(tcp, tls, std::time::Duration::from_secs(10))?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<ConnectionInfo>()).await
//! # }
//! ```
//!
//! [`serve`](crate::serve) is the hardened path: it also caps and sheds connections still in
//! their handshake or head, and drains on shutdown. Use this listener where the app must run
//! under `axum::serve`.
//!
//! The layer also reads axum's `OriginalUri` here ([`requested_uri`]): the path before a
//! `nest` stripped its prefix.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use certauth_core::tls::{TlsConfig, TlsPeer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_rustls::server::TlsStream;

use crate::ConnectionInfo;

/// TLS connections for `axum::serve`, each with its [`ConnectionInfo`].
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, ConnectionInfo)>,
    local: SocketAddr,
    accepting: AbortHandle,
}

impl TlsListener {
    /// Accepts on `listener` and runs each handshake with the current `tls` configuration
    /// (a `TlsConfig` to reload it), giving up after `handshake_timeout`. Must be called on
    /// a tokio runtime.
    pub fn new(
        listener: TcpListener,
        tls: impl Into<TlsConfig>,
        handshake_timeout: Duration,
    ) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let tls = tls.into();
        let (done, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((tcp, addr)) = listener.accept().await else {
                    // Out of descriptors, most likely: let some close.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let config = tls.current();
                let done = done.clone();
                tokio::spawn(async move {
                    let data = certauth_core::tls::resumption_data(&config);
                    let handshake = tokio_rustls::TlsAcceptor::from(Arc::clone(&config))
                        .accept_with(tcp, |c| c.set_resumption_data(&data));
                    if let Ok(Ok(tls)) = tokio::time::timeout(handshake_timeout, handshake).await {
                        let peer = TlsPeer::of(&config, tls.get_ref().1);
                        let info = ConnectionInfo::from_tls(peer, Some(addr));
                        let _ = done.send((tls, info)).await;
                    }
                });
            }
        })
        .abort_handle();
        Ok(Self {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = ConnectionInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task ended (only when aborted): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<ConnectionInfo> {
        Ok(ConnectionInfo::new(Vec::new(), Some(self.local)))
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for ConnectionInfo {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// The [`ConnectionInfo`] axum put in a request's `ConnectInfo`.
pub(crate) fn from_connect_info<B>(req: &http::Request<B>) -> Option<ConnectionInfo> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<ConnectionInfo>>()
        .map(|c| c.0.clone())
}

/// The URI axum received the request with (its `OriginalUri`), when a router rewrote the
/// request's: inside `nest` the prefix is stripped, and a path policy must judge the path
/// that was requested.
pub(crate) fn requested_uri<B>(req: &http::Request<B>) -> Option<&http::Uri> {
    let original = req.extensions().get::<axum::extract::OriginalUri>();
    original.map(|o| &o.0)
}
