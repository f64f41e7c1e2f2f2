//! # certauth-tokio
//!
//! Mutual-TLS client authentication for tokio servers: a [`Gate`] runs the TLS handshake,
//! reads the request head, asks [`certauth_core`]'s [`Authenticator`] and either writes its
//! `HTTP/1.1 4xx` and closes, or hands you the authenticated client with a WebSocket
//! ([`Gate::accept_websocket`]) or the stream, head and leftover bytes for your own HTTP
//! server ([`Gate::accept_http`]). Every decision is the core's; this crate only moves
//! bytes and enforces the core's timeouts with tokio's timer.
//!
//! ```no_run
//! use std::sync::Arc;
//! use certauth_tokio::{Gate, ServeOptions, serve_websocket};
//! use certauth_tokio::certauth_core::{Authenticator, ChainVerifier, TrustAnchors, policy::allow_cn};
//! use certauth_tokio::certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
//! use futures_util::{SinkExt, StreamExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = Arc::new(rustls::crypto::ring::default_provider());
//! let anchors = TrustAnchors::from_pem(&std::fs::read("ca.pem")?)?;
//! let (chain, key) = load_server_identity(&std::fs::read("server.pem")?, &std::fs::read("server.key")?)?;
//! let tls = server_config(provider.clone(), chain, key, &anchors, ClientAuthMode::Deferred)?;
//! let auth = Authenticator::builder()
//!     .verifier(ChainVerifier::new(anchors, provider.signature_verification_algorithms.all))
//!     .policy(allow_cn(["trusted-client"]))
//!     .build()?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! serve_websocket(listener, Gate::new(auth, Arc::new(tls)), ServeOptions::default(),
//!     std::future::pending(), |mut ws, client| async move {
//!         println!("{} connected", client.certificate().subject().to_rfc4514());
//!         while let Some(Ok(msg)) = ws.next().await {
//!             if msg.is_text() {
//!                 let reply = format!("Echo: {}", msg.into_text().unwrap_or_default());
//!                 if ws.send(reply.into()).await.is_err() { break; }
//!             }
//!         }
//!     }).await?;
//! # Ok(()) }
//! ```
//!
//! Features: `ring` (default) and `aws-lc-rs` enable that rustls provider; pass the provider
//! you want to `server_config` and `ChainVerifier` as a value.
#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use certauth_core::{
    Authenticated, Authenticator, CertificateDer, Decision, Denial, HeadError, HeadParser,
    HeadProgress, PeerInfo, RequestHead, ResponseHead, UnixTime, UpgradeError,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tracing::{Instrument as _, debug, info, warn};

pub use async_tungstenite;
pub use certauth_core;
pub use rustls;
pub use tokio_rustls;

/// The TLS stream a [`Gate`] produces.
pub type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;
/// A server-side WebSocket over `S` (by default the gate's TLS stream).
pub type WebSocket<S = TlsStream> = WebSocketStream<TokioAdapter<S>>;

/// WebSocket settings for servers holding many idle connections: a 4 KiB read buffer
/// (tungstenite's default 128 KiB costs about 150 KiB per idle connection once touched),
/// messages up to 1 MiB and frames up to 256 KiB. Override with
/// [`Gate::websocket_config`].
pub fn default_websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(256 << 10))
}

/// A connection that passed the gate: the stream, the request head, the bytes read after
/// the head, and the authenticated client.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted<S> {
    /// The stream, positioned after `leftover`.
    pub io: S,
    /// The request head.
    pub head: RequestHead,
    /// Bytes the client sent after the head (a body's start, or a first WebSocket frame).
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
    /// The TLS handshake failed (for example, the client could not prove it holds its
    /// certificate's key).
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

/// The gate: a TLS acceptor and an authenticator. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    auth: Authenticator,
    acceptor: tokio_rustls::TlsAcceptor,
    ws: WebSocketConfig,
}

impl Gate {
    /// A gate terminating TLS with `tls` (see `certauth_core::tls::server_config`).
    pub fn new(auth: Authenticator, tls: Arc<rustls::ServerConfig>) -> Self {
        Self {
            auth,
            acceptor: tokio_rustls::TlsAcceptor::from(tls),
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
            .map_err(|_| AcceptError::HandshakeTimeout)?
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

/// The gate over a stream you set up yourself: plain TCP behind a proxy (header mode), or a
/// TLS stream you accepted (pass its peer chain).
pub async fn gate<S: AsyncRead + AsyncWrite + Unpin>(
    auth: &Authenticator,
    mut io: S,
    peer_chain: &[CertificateDer<'_>],
    remote: Option<IpAddr>,
) -> Result<Accepted<S>, AcceptError> {
    let mut parser = HeadParser::new(auth.limits());
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        loop {
            if io.read_buf(&mut buf).await? == 0 {
                return Err(AcceptError::Eof);
            }
            match parser.parse(&buf) {
                Ok(HeadProgress::NeedMore) => {}
                Ok(HeadProgress::Complete { head, consumed }) => return Ok((head, consumed)),
                Err(e) => return Err(AcceptError::Head(e)),
            }
        }
    };
    let (head, consumed) = match timeout(auth.limits().head_read_timeout, read).await {
        Err(_) => return Err(AcceptError::HeadTimeout),
        Ok(Err(AcceptError::Head(e))) => {
            reject(&mut io, &e.response(), auth.limits()).await;
            return Err(e.into());
        }
        Ok(r) => r?,
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

/// Completes the WebSocket handshake for an accepted connection (writes the core's 101, or
/// its 400/426 and closes).
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
            let ws = WebSocketStream::from_partially_read(
                TokioAdapter::new(io),
                leftover,
                Role::Server,
                Some(config),
            )
            .await;
            Ok((ws, client))
        }
        Err(e) => {
            reject(&mut io, &e.response(), &certauth_core::Limits::DEFAULT).await;
            Err(e.into())
        }
    }
}

/// Writes an error response, flushes, shuts the write side down, then lingers: reads and
/// discards what the client is still sending (bounded by the limits) so the close does not
/// reset the connection before the client reads the response. Failures are ignored: the
/// connection is closed either way.
async fn reject<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    response: &ResponseHead,
    limits: &certauth_core::Limits,
) {
    let _ = io.write_all(&response.to_bytes()).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
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
    /// Most connections in the handshake/head/decision phase at once; further accepts wait.
    /// Default 256.
    pub max_handshakes: usize,
    /// After shutdown, how long connection handlers may run before they are aborted.
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

/// Accepts connections until `shutdown` completes; each authenticated WebSocket client runs
/// `handler` in its own task; rejected clients get the core's response and are logged
/// (`tracing`, with the code). On shutdown, stops accepting, then gives running handlers
/// `grace` to finish.
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
    let permits = Arc::new(tokio::sync::Semaphore::new(options.max_handshakes.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = Arc::clone(&permits).acquire_owned() => p.map_err(io::Error::other)?,
        };
        let (tcp, addr) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (gate, handler) = (gate.clone(), Arc::clone(&handler));
        let span = tracing::info_span!("certauth", remote = %addr);
        tasks.spawn(
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
        );
        while tasks.try_join_next().is_some() {}
    }
    if timeout(options.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tasks.abort_all();
    }
    Ok(())
}
