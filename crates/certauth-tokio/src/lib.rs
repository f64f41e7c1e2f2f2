//! # certauth-tokio
//!
//! Mutual-TLS client authentication for tokio servers: a [`Gate`] runs the TLS handshake,
//! reads the request head, asks [`certauth_core`]'s [`Authenticator`] and either writes its
//! `HTTP/1.1 4xx` and closes, or hands you the authenticated client with a WebSocket
//! ([`Gate::accept_websocket`]) or the stream, head and leftover bytes for your own HTTP
//! server ([`Gate::authenticate`]). Every decision is the core's; this crate only moves
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
//! [`serve_websocket`], [`serve`] and [`serve_plain`] run the connection lifecycle the core
//! decides ([`certauth_core::lifecycle`]): they keep accepting under load, shed stalled
//! connections before authentication, bound each phase by [`Limits`], back off on accept
//! errors and drain on shutdown (WebSockets get a 1001 close). [`serve_connections`] is that
//! lifecycle for any per-connection work (certauth-hyper runs on it).
//!
//! Features: `ring` (default) and `aws-lc-rs` enable that rustls provider; pass the provider
//! you want to `server_config` and `ChainVerifier` as a value.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::protocol::Role;
use certauth_core::http::FirstRequest;
use certauth_core::keys::KeySupport;
use certauth_core::lifecycle::{
    Accept, Admission, Clock, Drain, DrainingWebSocket, Identity, Phase, Shed, Slot, Table,
};
use certauth_core::policy::Policy;
use certauth_core::tls::TlsConfig;
use certauth_core::{
    Authenticated, Authenticator, CertificateDer, Decision, HeadParser, HeadProgress, Limits,
    MutualTls, PeerInfo, PemFile, RequestHead, ResponseHead, SetupError, UnixTime, WebSocketPaths,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::AbortHandle;
use tracing::{Instrument as _, debug, info, warn};

mod fetch;
mod one_request;
pub use fetch::Fetcher;
pub use one_request::OneRequest;

// What users touch and nothing more: the core, rustls (its provider and ServerConfig), the
// WebSocket types the handlers see, and futures-util for `StreamExt`/`SinkExt` on them.
pub use async_tungstenite::tungstenite::{self, Message, protocol::WebSocketConfig};
pub use certauth_core;
pub use certauth_core::lifecycle::{AcceptError, ServeOptions};
pub use certauth_core::ws::default_websocket_config;
pub use futures_util;
pub use rustls;

/// The TLS stream a [`Gate`] produces.
pub type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;
/// A server-side WebSocket over `S` (by default the gate's TLS stream). When it was opened by
/// a serve helper, it closes itself with 1001 (going away) as the server drains.
pub type WebSocket<S = TlsStream> = DrainingWebSocket<WebSocketStream<TokioAdapter<S>>>;

/// A connection that passed the gate: the stream, the request head, the bytes read after
/// the head, and the authenticated client. The decision was about this one request: `io`
/// ends (EOF) where its body ends, so nothing after it on the connection reaches you
/// undecided (a client's or a proxy's next request); answer it and close.
#[derive(Debug)]
#[non_exhaustive]
pub struct Accepted<S> {
    /// The rest of the request's body, after `leftover`, then EOF; writes go to the client.
    pub io: OneRequest<S>,
    /// The request head.
    pub head: RequestHead,
    /// The start of the request's body, read with the head.
    pub leftover: Vec<u8>,
    /// Who the client is.
    pub client: Authenticated,
    limits: Limits,
    drain: Drain,
}

impl<S> Accepted<S> {
    /// The server's shutdown signal (one that never fires outside a serve helper).
    pub fn drain(&self) -> &Drain {
        &self.drain
    }
}

/// tokio's clock and timer, for the core's WebSocket deadlines.
pub const CLOCK: Clock = Clock::new(Instant::now, |at| {
    Box::pin(tokio::time::sleep_until(at.into()))
});

/// Runs `fut`, bounded by `limit` if there is one.
async fn within<T>(limit: Option<Duration>, fut: impl Future<Output = T>) -> Option<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// The rustls crypto provider this crate's features select: `ring` (the default), else
/// `aws-lc-rs`.
///
/// # Panics
///
/// With neither feature enabled (the crate then has no provider to offer: pass yours to
/// `certauth_core::MutualTls::from_pem`).
pub fn default_provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(feature = "ring")]
    return Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
    return Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    panic!("certauth-tokio: enable the `ring` or `aws-lc-rs` feature for a default provider")
}

/// The short path ([`certauth_core::MutualTls`]): reads the client CA, the server's
/// certificate chain and its key (PEM files) and builds an authenticator with `policy` and
/// a TLS configuration, with [`default_provider`]. Errors name the file to fix.
pub fn load_pem_files(
    client_ca: impl AsRef<std::path::Path>,
    server_cert: impl AsRef<std::path::Path>,
    server_key: impl AsRef<std::path::Path>,
    policy: impl Policy + 'static,
) -> Result<MutualTls, SetupError> {
    let read = |file, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| SetupError::read(file, path, e))
    };
    let ca = read(PemFile::ClientCa, client_ca.as_ref())?;
    let cert = read(PemFile::ServerCertificate, server_cert.as_ref())?;
    let key = read(PemFile::ServerKey, server_key.as_ref())?;
    MutualTls::from_pem(default_provider(), &ca, &cert, &key, policy)
}

/// The gate: a TLS acceptor and an authenticator. Cheap to clone.
#[derive(Clone)]
pub struct Gate {
    auth: Authenticator,
    tls: TlsConfig,
    ws: WebSocketConfig,
    paths: WebSocketPaths,
}

/// The short path's gate: its TLS configuration offers `http/1.1` by ALPN (what the gate
/// speaks), unless it already offers protocols.
impl From<MutualTls> for Gate {
    fn from(m: MutualTls) -> Self {
        let tls = certauth_core::tls::with_alpn(m.server_config, &certauth_core::tls::ALPN_HTTP1);
        Self::new(m.authenticator, tls)
    }
}

impl Gate {
    /// The short path: a gate from three PEM files and a policy ([`load_pem_files`]).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), certauth_tokio::certauth_core::SetupError> {
    /// use certauth_tokio::Gate;
    /// use certauth_tokio::certauth_core::policy::allow_cn;
    /// let gate = Gate::from_pem_files("ca.pem", "server.pem", "server.key", allow_cn(["trusted-client"]))?;
    /// # Ok(()) }
    /// ```
    pub fn from_pem_files(
        client_ca: impl AsRef<std::path::Path>,
        server_cert: impl AsRef<std::path::Path>,
        server_key: impl AsRef<std::path::Path>,
        policy: impl Policy + 'static,
    ) -> Result<Self, SetupError> {
        load_pem_files(client_ca, server_cert, server_key, policy).map(Self::from)
    }

    /// A gate terminating TLS with `tls` (see `certauth_core::tls::server_config`; an
    /// `Arc<ServerConfig>`, or a [`TlsConfig`] to replace it while serving).
    pub fn new(auth: Authenticator, tls: impl Into<TlsConfig>) -> Self {
        Self {
            auth,
            tls: tls.into(),
            ws: default_websocket_config(),
            paths: WebSocketPaths::any(),
        }
    }

    /// The paths [`Self::accept_websocket`] and [`serve_websocket`] upgrade (default: every
    /// path). An authenticated client asking for another gets 404.
    pub fn websocket_paths(mut self, paths: WebSocketPaths) -> Self {
        self.paths = paths;
        self
    }

    /// The TLS configuration, to replace while serving ([`TlsConfig::reload`]).
    pub fn tls(&self) -> &TlsConfig {
        &self.tls
    }

    /// The current configuration's acceptor, and the key types its provider verifies.
    fn acceptor(&self) -> (tokio_rustls::TlsAcceptor, KeySupport) {
        let config = self.tls.current();
        let keys = certauth_core::tls::key_support(&config);
        (tokio_rustls::TlsAcceptor::from(config), keys)
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

    /// TLS handshake, request head, decision, each bounded by the authenticator's limits.
    /// For your own HTTP handling.
    pub async fn authenticate(&self, tcp: TcpStream) -> Result<Accepted<TlsStream>, AcceptError> {
        let (limits, (acceptor, keys)) = (self.auth.limits(), self.acceptor());
        let tls = within(Some(limits.handshake_timeout), acceptor.accept(tcp))
            .await
            .ok_or(AcceptError::HandshakeTimeout)?
            .map_err(AcceptError::Handshake)?;
        self.after_handshake(tls, keys, Some(limits.head_read_timeout))
            .await
    }

    async fn after_handshake(
        &self,
        tls: TlsStream,
        keys: KeySupport,
        head_timeout: Option<Duration>,
    ) -> Result<Accepted<TlsStream>, AcceptError> {
        let remote = tls.get_ref().0.peer_addr().ok().map(|a| a.ip());
        let chain = certauth_core::tls::peer_chain(tls.get_ref().1);
        let peer = PeerInfo::new(&chain, remote).with_key_support(keys);
        decide_on(&self.auth, tls, peer, head_timeout).await
    }

    /// [`Self::authenticate`], then the WebSocket handshake.
    pub async fn accept_websocket(
        &self,
        tcp: TcpStream,
    ) -> Result<(WebSocket, Authenticated), AcceptError> {
        upgrade_at(self.authenticate(tcp).await?, self.ws, &self.paths).await
    }
}

/// The gate over a stream you set up yourself: plain TCP behind a proxy (header mode), or a
/// TLS stream you accepted (pass its peer chain). The head is bounded by the limits.
pub async fn gate<S: AsyncRead + AsyncWrite + Unpin>(
    auth: &Authenticator,
    io: S,
    peer_chain: &[CertificateDer<'_>],
    remote: Option<IpAddr>,
) -> Result<Accepted<S>, AcceptError> {
    let limit = Some(auth.limits().head_read_timeout);
    decide_on(auth, io, PeerInfo::new(peer_chain, remote), limit).await
}

/// Reads the head (within `head_timeout`, when the caller does not bound it itself), asks
/// the core, writes a refusal.
async fn decide_on<S: AsyncRead + AsyncWrite + Unpin>(
    auth: &Authenticator,
    mut io: S,
    peer: PeerInfo<'_>,
    head_timeout: Option<Duration>,
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
                Ok(HeadProgress::Complete { head, consumed }) => {
                    let request = FirstRequest::new(&head).map_err(AcceptError::Head)?;
                    return Ok((head, consumed, request));
                }
                Err(e) => return Err(AcceptError::Head(e)),
            }
        }
    };
    let (head, consumed, request) = match within(head_timeout, read).await {
        None => return Err(AcceptError::HeadTimeout),
        Some(Err(AcceptError::Head(e))) => {
            reject(&mut io, &e.response(), auth.limits()).await;
            return Err(e.into());
        }
        Some(r) => r?,
    };
    match auth.decide(&peer, &head, UnixTime::now()).await {
        Decision::Allow(client) => {
            buf.drain(..consumed);
            Ok(Accepted {
                io: OneRequest::new(io, &mut buf, request),
                head,
                leftover: buf,
                client,
                limits: *auth.limits(),
                drain: Drain::default(),
            })
        }
        Decision::Deny(denial) => {
            reject(&mut io, denial.response(), auth.limits()).await;
            Err(AcceptError::Denied(Box::new(denial)))
        }
    }
}

/// Completes the WebSocket handshake for an accepted connection (writes the core's 101, or
/// its 400/426 and closes), whatever its path.
pub async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    accepted: Accepted<S>,
    config: WebSocketConfig,
) -> Result<(WebSocket<S>, Authenticated), AcceptError> {
    upgrade_at(accepted, config, &WebSocketPaths::any()).await
}

async fn upgrade_at<S: AsyncRead + AsyncWrite + Unpin>(
    accepted: Accepted<S>,
    config: WebSocketConfig,
    paths: &WebSocketPaths,
) -> Result<(WebSocket<S>, Authenticated), AcceptError> {
    let Accepted {
        io,
        head,
        mut leftover,
        client,
        limits,
        drain,
    } = accepted;
    // The core validates the upgrade below and the 101 is written here: the connection is
    // the WebSocket's from then on, past the request's end.
    let mut io = io.into_parts(&mut leftover);
    match paths
        .check(&head)
        .and_then(|()| certauth_core::accept_websocket(&head))
    {
        Ok(response) => {
            io.write_all(&response.to_bytes()).await?;
            io.flush().await?;
            let io = TokioAdapter::new(io);
            let ws = WebSocketStream::from_partially_read(io, leftover, Role::Server, Some(config));
            let ws = DrainingWebSocket::new(ws.await, &drain).with_deadlines(&limits, CLOCK);
            Ok((ws, client))
        }
        Err(e) => {
            reject(&mut io, &e.response(), &limits).await;
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
    limits: &Limits,
) {
    let _ = io.write_all(&response.to_bytes()).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left = limits.max_linger_bytes;
    let _ = within(Some(limits.linger_timeout), async {
        while left > 0 {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// After the gate, in a serve helper: logs the outcome (`tracing`; a refusal with its
/// code); a client let in leaves the pre-authentication phase and runs `handler`.
async fn run_admitted<S: AsyncRead + AsyncWrite + Unpin, Fut>(
    result: Result<Accepted<S>, AcceptError>,
    conn: &Conn,
    handler: impl FnOnce(Accepted<S>) -> Fut,
) where
    Fut: Future<Output = ()>,
{
    match result {
        Ok(mut accepted) => {
            let client = &accepted.client;
            info!(%client, reused = client.reused(), "client authenticated");
            if let Err(refused) = conn.open(Some(Identity::of(client)), Instant::now()) {
                warn!(code = refused.code(), "client refused: {refused}");
                return reject(&mut accepted.io, &refused.response(), &accepted.limits).await;
            }
            accepted.drain = conn.drain().clone();
            // Boxed, like the phases before it: the task keeps only what is live.
            Box::pin(handler(accepted)).await;
        }
        Err(AcceptError::Denied(d)) => warn!(
            code = d.code(),
            status = d.status().code(),
            subject = d.subject(),
            "client rejected: {d}"
        ),
        Err(e) => debug!(error = %e, "connection closed before authentication"),
    }
}

/// Serves authenticated TLS clients: runs the lifecycle ([`serve_connections`]) and, for
/// each client the gate lets in, `handler` in the connection's task. Rejected clients get
/// the core's response and are logged (`tracing`, with the code).
pub async fn serve<F, Fut>(
    listener: TcpListener,
    gate: Gate,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    F: Fn(Accepted<TlsStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let limits = *gate.auth.limits();
    serve_connections(
        listener,
        limits,
        options,
        Phase::Handshake,
        shutdown,
        move |tcp, _, conn| {
            let (gate, handler) = (gate.clone(), Arc::clone(&handler));
            async move {
                // Boxed: the handshake's and the head's state is freed once the client is
                // in, instead of sizing the connection's task for its whole life.
                let accepted = Box::pin(async {
                    let (acceptor, keys) = gate.acceptor();
                    let tls = acceptor.accept(tcp).await.map_err(AcceptError::Handshake)?;
                    conn.advance(Phase::Head, Instant::now());
                    gate.after_handshake(tls, keys, None).await
                })
                .await;
                run_admitted(accepted, &conn, &*handler).await;
            }
        },
    )
    .await
}

/// [`serve`] for clients behind a TLS-terminating proxy (header mode): plain TCP, the
/// certificate from the proxy's headers, the remote address for the trusted-proxy check.
pub async fn serve_plain<F, Fut>(
    listener: TcpListener,
    auth: Authenticator,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    F: Fn(Accepted<TcpStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_header_mode(listener, auth, options, shutdown, handler).await
}

/// [`serve_plain`] on a Unix-domain socket, for a proxy on the same host (nginx
/// `proxy_pass http://unix:/run/app.sock:`): the socket is the trust boundary, so the
/// authenticator's proxy configuration must trust it
/// ([`ProxyHeaderConfig::trust_unix_socket`](certauth_core::ProxyHeaderConfig::trust_unix_socket)).
/// Make the socket file writable by the proxy alone.
pub async fn serve_plain_unix<F, Fut>(
    listener: UnixListener,
    auth: Authenticator,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    F: Fn(Accepted<UnixStream>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_header_mode(listener, auth, options, shutdown, handler).await
}

/// Header mode on any listener: the peer (its address, or the Unix socket) for the
/// trusted-proxy check, the certificate from the proxy's headers.
async fn serve_header_mode<L, F, Fut>(
    listener: L,
    auth: Authenticator,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    L: Listen,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Accepted<L::Io>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    auth.warnings().iter().for_each(|w| warn!("{w}"));
    let limits = *auth.limits();
    lifecycle(
        listener,
        limits,
        options,
        Phase::Head,
        shutdown,
        move |io, addr, conn| {
            let (auth, handler) = (auth.clone(), Arc::clone(&handler));
            async move {
                let result = decide_on(&auth, io, L::peer(addr), None).await;
                run_admitted(result, &conn, &*handler).await;
            }
        },
    )
    .await
}

/// [`serve`] for WebSocket clients: each authenticated client runs `handler` with its
/// WebSocket, which on shutdown is sent a 1001 close.
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
    let (ws, paths) = (gate.ws, gate.paths.clone());
    serve(listener, gate, options, shutdown, move |accepted| {
        let (handler, paths) = (Arc::clone(&handler), paths.clone());
        async move {
            match Box::pin(upgrade_at(accepted, ws, &paths)).await {
                Ok((ws, client)) => Box::pin(handler(ws, client)).await,
                Err(e) => debug!(error = %e, "not a WebSocket upgrade"),
            }
        }
    })
    .await
}

/// A connection's place in [`serve_connections`]: report progress with `advance`; dropping
/// it (the task ending or being cancelled) frees its slot.
pub type Conn = Slot<AbortHandle>;

fn cancel(shed: Shed<AbortHandle>) {
    if let Some(notice) = &shed.log {
        warn!("{notice}");
    }
    if let Some(h) = &shed.handle {
        h.abort();
    }
}

/// The connection lifecycle on tokio: accepts on `listener` until `shutdown` completes, asks
/// the core's [`Connections`](certauth_core::lifecycle::Connections) whom to admit, shed and
/// time out (connections start in `first`), and runs `connection` for each admitted one in
/// its own task. On shutdown the listener is closed at once, connections not yet
/// authenticated are closed, the others get `options.grace` (their drain signal fires) and
/// are then cancelled.
pub async fn serve_connections<F, Fut>(
    listener: TcpListener,
    limits: Limits,
    options: ServeOptions,
    first: Phase,
    shutdown: impl Future<Output = ()>,
    connection: F,
) -> io::Result<()>
where
    F: Fn(TcpStream, SocketAddr, Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    lifecycle(listener, limits, options, first, shutdown, connection).await
}

/// What the lifecycle accepts from: a TCP or a Unix-domain listener.
trait Listen {
    type Io;
    type Addr: Copy + std::fmt::Display + Send + 'static;
    fn next(&self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send;
    /// The peer as the core sees it in header mode (no TLS chain).
    fn peer(addr: Self::Addr) -> PeerInfo<'static>;
}

impl Listen for TcpListener {
    type Io = TcpStream;
    type Addr = SocketAddr;
    fn next(&self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        self.accept()
    }
    fn peer(addr: SocketAddr) -> PeerInfo<'static> {
        PeerInfo::new(&[], Some(addr.ip()))
    }
}

/// A Unix-domain peer is logged as `unix` (the proxy's end has no address worth logging).
impl Listen for UnixListener {
    type Io = UnixStream;
    type Addr = &'static str;
    async fn next(&self) -> io::Result<(UnixStream, &'static str)> {
        self.accept().await.map(|(io, _)| (io, "unix"))
    }
    fn peer(_: &'static str) -> PeerInfo<'static> {
        PeerInfo::unix_socket()
    }
}

async fn lifecycle<L: Listen, F, Fut>(
    listener: L,
    limits: Limits,
    options: ServeOptions,
    first: Phase,
    shutdown: impl Future<Output = ()>,
    connection: F,
) -> io::Result<()>
where
    F: Fn(L::Io, L::Addr, Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let table = Table::new(options, &limits);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let poll = table.lock().poll(Instant::now());
        poll.expired.into_iter().for_each(cancel);
        if let Some(notice) = poll.full {
            warn!("{notice}");
        }
        let sleep = async {
            match poll.timeout {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            () = sleep => continue,
            () = table.woken() => continue,
            r = listener.next(), if poll.accept == Accept::Now => r,
        };
        let now = Instant::now();
        let (tcp, addr) = match accepted {
            Ok(c) => c,
            Err(e) => {
                let failed = table.lock().accept_failed(&e, now);
                if let Some(notice) = failed.log {
                    warn!("{notice}");
                }
                failed.shed.into_iter().for_each(cancel);
                tokio::time::sleep(failed.retry_after).await;
                continue;
            }
        };
        let admission = table.lock().admit(L::peer(addr).remote_addr, first, now);
        match admission {
            Admission::Refused {
                log: Some(notice), ..
            } => warn!(remote = %addr, "{notice}"),
            Admission::Admitted { id, shed } => {
                shed.into_iter().for_each(cancel);
                let span = tracing::info_span!("certauth", remote = %addr);
                let task = tokio::spawn(connection(tcp, addr, table.slot(id)).instrument(span));
                let _ = table.lock().set_handle(id, task.abort_handle());
            }
            _ => {}
        }
    }
    drop(listener);
    let pending = table.lock().drain();
    pending.iter().for_each(AbortHandle::abort);
    info!(
        open = table.lock().len(),
        "shutting down: draining connections"
    );
    table.drain().signal();
    let finished = async {
        while !table.lock().is_empty() {
            table.woken().await;
        }
        table.drain().released().await;
    };
    if tokio::time::timeout(options.grace, finished).await.is_err() {
        warn!(
            left = table.lock().len(),
            "grace period over: cancelling connections"
        );
        table.drain().cancel();
        let tasks = table.lock().cancel_all();
        tasks.iter().for_each(AbortHandle::abort);
    }
    Ok(())
}

/// The crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
