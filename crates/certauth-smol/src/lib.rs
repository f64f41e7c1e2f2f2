//! # certauth-smol
//!
//! Mutual-TLS client authentication for smol, async-io and any runtime built on the
//! `futures-io` traits: the same [`Gate`] as `certauth-tokio`, over futures-rustls. It runs
//! the TLS handshake, reads the request head, asks [`certauth_core`]'s [`Authenticator`],
//! and either writes its `HTTP/1.1 4xx` and closes, or hands you the authenticated client
//! with a WebSocket ([`Gate::accept_websocket`]) or the stream, head and leftover bytes
//! ([`Gate::accept_http`]). Every decision is the core's; timeouts use smol's timer.
//!
//! ```no_run
//! use std::sync::Arc;
//! use certauth_smol::{Gate, ServeOptions, serve_websocket};
//! use certauth_smol::certauth_core::{Authenticator, ChainVerifier, TrustAnchors, policy::allow_cn};
//! use certauth_smol::certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
//! use futures_util::{SinkExt, StreamExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = Arc::new(rustls::crypto::ring::default_provider());
//! let anchors = TrustAnchors::from_pem(&std::fs::read("ca.pem")?)?;
//! let (chain, key) = load_server_identity(&std::fs::read("server.pem")?, &std::fs::read("server.key")?)?;
//! let tls = server_config(provider.clone(), chain, key, &anchors, ClientAuthMode::Deferred)?;
//! let auth = Authenticator::builder()
//!     .verifier(ChainVerifier::new(anchors, provider.signature_verification_algorithms.all))
//!     .policy(allow_cn(["trusted-client"]))
//!     .build()?;
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("0.0.0.0:8443").await?;
//!     serve_websocket(listener, Gate::new(auth, Arc::new(tls)), ServeOptions::default(),
//!         std::future::pending(), |mut ws, _client| async move {
//!             while let Some(Ok(msg)) = ws.next().await {
//!                 if msg.is_text() {
//!                     let reply = format!("Echo: {}", msg.into_text().unwrap_or_default());
//!                     if ws.send(reply.into()).await.is_err() { break; }
//!                 }
//!             }
//!         }).await
//! })?;
//! # Ok(()) }
//! ```
//!
//! Features: `ring` (default) and `aws-lc-rs` enable that rustls provider; pass the provider
//! you want as a value.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use certauth_core::{
    Authenticated, Authenticator, CertificateDer, Decision, Denial, HeadError, HeadParser,
    HeadProgress, PeerInfo, RequestHead, ResponseHead, UnixTime, UpgradeError,
};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::net::{TcpListener, TcpStream};
use tracing::{Instrument as _, debug, info, warn};

pub use async_tungstenite;
pub use certauth_core;
pub use futures_rustls;
pub use rustls;

/// The TLS stream a [`Gate`] produces.
pub type TlsStream = futures_rustls::server::TlsStream<TcpStream>;
/// A server-side WebSocket over `S` (by default the gate's TLS stream).
pub type WebSocket<S = TlsStream> = WebSocketStream<S>;

/// WebSocket settings for servers holding many idle connections: a 4 KiB read buffer,
/// messages up to 1 MiB and frames up to 256 KiB (the same as certauth-tokio's).
pub fn default_websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(256 << 10))
}

/// A connection that passed the gate.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted<S> {
    /// The stream, positioned after `leftover`.
    pub io: S,
    /// The request head.
    pub head: RequestHead,
    /// Bytes the client sent after the head.
    pub leftover: Vec<u8>,
    /// Who the client is.
    pub client: Authenticated,
}

/// Why a connection did not pass the gate. For `Denied`, `Head` and `Upgrade` the core's
/// response was written before the connection was closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The TLS handshake did not finish within the limit.
    #[error("TLS handshake timed out")]
    HandshakeTimeout,
    /// No complete request head within the limit; closed without a response.
    #[error("no request head within the time limit")]
    HeadTimeout,
    /// The client closed before sending a complete head.
    #[error("client closed the connection before sending a request head")]
    Eof,
    /// The head was malformed or too large (400/431 written).
    #[error(transparent)]
    Head(#[from] HeadError),
    /// Authentication denied (the denial's response written).
    #[error(transparent)]
    Denied(Box<Denial>),
    /// Authenticated, but not a valid WebSocket upgrade (400/426 written).
    #[error(transparent)]
    Upgrade(#[from] UpgradeError),
}

/// Runs `fut`, or gives up after `limit`.
async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

/// The gate: a TLS acceptor and an authenticator. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    auth: Authenticator,
    acceptor: futures_rustls::TlsAcceptor,
    ws: WebSocketConfig,
}

impl Gate {
    /// A gate terminating TLS with `tls` (see `certauth_core::tls::server_config`).
    pub fn new(auth: Authenticator, tls: Arc<rustls::ServerConfig>) -> Self {
        Self {
            auth,
            acceptor: futures_rustls::TlsAcceptor::from(tls),
            ws: default_websocket_config(),
        }
    }

    /// WebSocket settings (default [`default_websocket_config`]).
    pub fn websocket_config(mut self, config: WebSocketConfig) -> Self {
        self.ws = config;
        self
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// TLS handshake, request head, decision. For your own HTTP handling.
    pub async fn accept_http(&self, tcp: TcpStream) -> Result<Accepted<TlsStream>, AcceptError> {
        let remote = tcp.peer_addr().ok().map(|a| a.ip());
        let limit = self.auth.limits().handshake_timeout;
        let tls = timeout(limit, self.acceptor.accept(tcp))
            .await
            .ok_or(AcceptError::HandshakeTimeout)?
            .map_err(AcceptError::Handshake)?;
        let chain = certauth_core::tls::peer_chain(tls.get_ref().1);
        gate(&self.auth, tls, &chain, remote).await
    }

    /// [`Self::accept_http`], then the WebSocket handshake.
    pub async fn accept_websocket(
        &self,
        tcp: TcpStream,
    ) -> Result<(WebSocket, Authenticated), AcceptError> {
        upgrade(self.accept_http(tcp).await?, self.ws).await
    }
}

/// The gate over a stream you set up yourself (plain TCP behind a proxy, or your own TLS).
pub async fn gate<S: AsyncRead + AsyncWrite + Unpin>(
    auth: &Authenticator,
    mut io: S,
    peer_chain: &[CertificateDer<'_>],
    remote: Option<IpAddr>,
) -> Result<Accepted<S>, AcceptError> {
    let mut parser = HeadParser::new(auth.limits());
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Err(AcceptError::Eof);
            }
            buf.extend_from_slice(&chunk[..n]);
            match parser.parse(&buf) {
                Ok(HeadProgress::NeedMore) => {}
                Ok(HeadProgress::Complete { head, consumed }) => return Ok((head, consumed)),
                Err(e) => return Err(AcceptError::Head(e)),
            }
        }
    };
    let (head, consumed) = match timeout(auth.limits().head_read_timeout, read).await {
        None => return Err(AcceptError::HeadTimeout),
        Some(Err(AcceptError::Head(e))) => {
            reject(&mut io, &e.response(), auth.limits()).await;
            return Err(e.into());
        }
        Some(r) => r?,
    };
    let peer = PeerInfo::new(peer_chain, remote);
    match auth.decide(&peer, &head, now()).await {
        Decision::Allow(client) => {
            buf.drain(..consumed);
            Ok(Accepted {
                io,
                head,
                leftover: buf,
                client,
            })
        }
        Decision::Deny(denial) => {
            reject(&mut io, denial.response(), auth.limits()).await;
            Err(AcceptError::Denied(Box::new(denial)))
        }
    }
}

/// Completes the WebSocket handshake for an accepted connection.
pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    accepted: Accepted<S>,
    config: WebSocketConfig,
) -> Result<(WebSocket<S>, Authenticated), AcceptError> {
    let Accepted {
        mut io,
        head,
        leftover,
        client,
    } = accepted;
    match certauth_core::accept_websocket(&head) {
        Ok(response) => {
            io.write_all(&response.to_bytes()).await?;
            io.flush().await?;
            let ws = WebSocketStream::from_partially_read(io, leftover, Role::Server, Some(config))
                .await;
            Ok((ws, client))
        }
        Err(e) => {
            reject(&mut io, &e.response(), &certauth_core::Limits::DEFAULT).await;
            Err(e.into())
        }
    }
}

/// Writes an error response, flushes, closes the write side, then lingers: reads and
/// discards what the client is still sending (bounded by the limits) so the close does not
/// reset the connection before the client reads the response.
async fn reject<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    response: &ResponseHead,
    limits: &certauth_core::Limits,
) {
    let _ = io.write_all(&response.to_bytes()).await;
    let _ = io.flush().await;
    let _ = io.close().await;
    let mut sink = [0u8; 4096];
    let mut left = limits.max_linger_bytes;
    let _ = timeout(limits.linger_timeout, async {
        while left > 0 {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

fn now() -> UnixTime {
    UnixTime::now()
}

/// Options for [`serve_websocket`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Most connections in the handshake/head/decision phase at once. Default 256.
    pub max_handshakes: usize,
    /// After shutdown, how long connection handlers may run before they are dropped.
    /// Default 5 s.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_handshakes: 256,
            grace: Duration::from_secs(5),
        }
    }
}

impl ServeOptions {
    /// With another [`Self::max_handshakes`].
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n.max(1);
        self
    }

    /// With another [`Self::grace`].
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }
}

/// Accepts connections until `shutdown` completes, on smol's global executor; each
/// authenticated WebSocket client runs `handler` in its own task; rejected clients get the
/// core's response and are logged with their code. On shutdown, stops accepting, then gives
/// running handlers `grace` to finish.
pub async fn serve_websocket<F, Fut>(
    listener: TcpListener,
    gate: Gate,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    F: Fn(WebSocket, Authenticated) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let permits = Arc::new(smol::lock::Semaphore::new(options.max_handshakes.max(1)));
    let mut tasks: Vec<smol::Task<()>> = Vec::new();
    let shutdown = async {
        shutdown.await;
        None
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let next = async {
            let permit = permits.acquire_arc().await;
            Some((permit, listener.accept().await))
        };
        let Some((permit, accepted)) = smol::future::or(next, shutdown.as_mut()).await else {
            break;
        };
        let (tcp, addr) = match accepted {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "accept failed");
                smol::Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (gate, handler) = (gate.clone(), Arc::clone(&handler));
        let span = tracing::info_span!("certauth", remote = %addr);
        tasks.retain(|t| !t.is_finished());
        tasks.push(smol::spawn(
            async move {
                let result = gate.accept_websocket(tcp).await;
                drop(permit);
                match result {
                    Ok((ws, client)) => {
                        info!(subject = %client.certificate().subject().to_rfc4514(), "client authenticated");
                        handler(ws, client).await;
                    }
                    Err(AcceptError::Denied(d)) => warn!(
                        code = d.code(),
                        status = d.status().code(),
                        subject = d.certificate().map(|c| c.subject().to_rfc4514()),
                        "client rejected: {d}"
                    ),
                    Err(e) => debug!(error = %e, "connection closed before authentication"),
                }
            }
            .instrument(span),
        ));
    }
    let all = async {
        for t in tasks.drain(..) {
            t.await;
        }
    };
    // Tasks still running after the grace period are dropped, which cancels them.
    let _ = timeout(options.grace, all).await;
    Ok(())
}
