//! # certauth-tokio
//!
//! Mutual-TLS client authentication for tokio servers: a [`Gate`] runs the TLS handshake,
//! reads the request head, asks [`certauth_core`]'s [`Authenticator`](certauth_core::Authenticator) and either writes its
//! `HTTP/1.1 4xx` and closes, or hands you the authenticated client with a WebSocket
//! ([`Gate::accept_websocket`]) or the stream, head and leftover bytes for your own HTTP
//! server ([`Gate::authenticate`]). Every decision is the core's; this crate only moves
//! bytes and enforces the core's timeouts (on certauth-engine's timer thread: [`Deadline`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use certauth_tokio::{Gate, ServeOptions, serve_websocket};
//! use certauth_tokio::certauth_core::{Authenticator, ChainVerifier, TrustAnchors, policy::allow_cn};
//! use certauth_tokio::certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
//! use certauth_tokio::futures_util::{SinkExt, StreamExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = certauth_tokio::default_provider();
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
//! One call per job:
//!
//! | job | call |
//! |---|---|
//! | a gate from three PEM files (client CA, server chain, key) and a policy | [`Gate::from_pem_files`](certauth_engine::Gate::from_pem_files) |
//! | a gate from your own authenticator and TLS configuration (intermediates, CRLs, limits: the example above) | [`Gate::new`](certauth_engine::Gate::new) |
//! | a WebSocket server | [`serve_websocket`] |
//! | your own HTTP over authenticated TLS connections | [`serve`] |
//! | behind a TLS-terminating proxy (header mode), on TCP or a Unix-domain socket | [`serve_plain`] |
//! | one connection from your own accept loop | [`Gate::authenticate`](certauth_engine::Gate::authenticate) (HTTP), [`Gate::accept_websocket`](certauth_engine::Gate::accept_websocket) (WebSocket) |
//! | a stream you set up yourself (your own TLS, or plain TCP behind a proxy) | [`gate`] |
//! | the WebSocket handshake for a client [`serve`] or [`gate`] let in | [`upgrade`] |
//!
//! [`serve_websocket`], [`serve`] and [`serve_plain`] run the connection lifecycle the core
//! decides ([`certauth_engine::lifecycle`]) on certauth-engine's serve loop: they keep
//! accepting under load, shed stalled connections before authentication, bound each phase by
//! [`Limits`](certauth_core::Limits), back off on accept errors and drain on shutdown
//! (WebSockets get a 1001 close). This crate is tokio's side of the engine
//! ([`Tokio`]): its timer, its tasks, tokio-rustls, and its streams seen as `futures-io`.
//!
//! Features: `ring` (default) and `aws-lc-rs` enable that rustls provider; pass the provider
//! you want to `server_config` and `ChainVerifier` as a value.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use certauth_engine::{Clock, Compat, DrainingWebSocket, Runtime, Sleep};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::AbortHandle;

mod fetch;
pub use fetch::Fetcher;

// What users touch and nothing more: the core, rustls (its provider and ServerConfig), the
// WebSocket types the handlers see, and futures-util for `StreamExt`/`SinkExt` on them.
pub use async_tungstenite::tungstenite::{self, Message, protocol::WebSocketConfig};
pub use certauth_core;
pub use certauth_core::ws::default_websocket_config;
pub use certauth_engine::lifecycle::ServeOptions;
pub use certauth_engine::{AcceptError, Accepted, OneRequest, default_provider};
pub use futures_util;
pub use rustls;

/// The TLS stream a [`Gate`] produces.
pub type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;
/// A server-side WebSocket over `S` (by default the gate's TLS stream). When it was opened by
/// a serve helper, it closes itself with 1001 (going away) as the server drains.
pub type WebSocket<S = TlsStream> = DrainingWebSocket<WebSocketStream<TokioAdapter<S>>>;

/// The gate: a TLS acceptor and an authenticator, on tokio. Cheap to clone. Build it with
/// `Gate::new(authenticator, tls)` or the short path, `Gate::from_pem_files(ca, cert, key,
/// policy)`; [`Gate::authenticate`] runs the TLS handshake, the head
/// and the decision for your own HTTP, [`Gate::accept_websocket`] adds the upgrade.
///
/// ```no_run
/// # fn main() -> Result<(), certauth_tokio::certauth_core::SetupError> {
/// use certauth_tokio::Gate;
/// use certauth_tokio::certauth_core::policy::allow_cn;
/// let gate = Gate::from_pem_files("ca.pem", "server.pem", "server.key", allow_cn(["trusted-client"]))?;
/// # Ok(()) }
/// ```
pub type Gate = certauth_engine::Gate<Tokio>;

/// A deadline as certauth keeps it on tokio: on certauth-engine's timer thread
/// ([`certauth_engine::timer_thread`]: tokio's workers then wait on their sockets without a
/// timeout, which costs the kernel a timer each wait), or on tokio's timer if that thread
/// could not be started. A future that is ready at [`Self::deadline`]; `Unpin`.
#[derive(Debug)]
pub struct Deadline(Kind);

#[derive(Debug)]
enum Kind {
    Thread(certauth_engine::timer_thread::Timer),
    Tokio(std::pin::Pin<Box<tokio::time::Sleep>>),
}

impl Deadline {
    /// Ready at `deadline`.
    pub fn at(deadline: Instant) -> Self {
        Self(match certauth_engine::timer_thread::TimerThread::global() {
            Some(thread) => Kind::Thread(thread.sleep_until(deadline)),
            None => Kind::Tokio(Box::pin(tokio::time::sleep_until(deadline.into()))),
        })
    }

    /// Ready `timeout` from now (one too long for the clock: in about 30 years, as tokio's
    /// `sleep`).
    pub fn after(timeout: std::time::Duration) -> Self {
        Self::at(later(timeout))
    }

    /// When it is ready.
    pub fn deadline(&self) -> Instant {
        match &self.0 {
            Kind::Thread(t) => t.deadline(),
            Kind::Tokio(t) => t.deadline().into_std(),
        }
    }

    /// Moves it to `deadline`.
    pub fn reset(&mut self, deadline: Instant) {
        match &mut self.0 {
            Kind::Thread(t) => t.reset(deadline),
            Kind::Tokio(t) => t.as_mut().reset(deadline.into()),
        }
    }
}

/// `timeout` from now, or about 30 years if that is past what an `Instant` holds.
fn later(timeout: std::time::Duration) -> Instant {
    const FAR: std::time::Duration = std::time::Duration::from_secs(86_400 * 365 * 30);
    let now = Instant::now();
    now.checked_add(timeout.min(FAR)).unwrap_or(now)
}

impl Future for Deadline {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match &mut self.0 {
            Kind::Thread(t) => std::pin::Pin::new(t).poll(cx),
            Kind::Tokio(t) => t.as_mut().poll(cx),
        }
    }
}

/// tokio's clock and timer, for the WebSocket deadlines.
pub const CLOCK: Clock = Clock::new(Instant::now, Tokio::sleep_until);

/// tokio as certauth-engine's runtime: its tasks, timer and tokio-rustls, its streams seen
/// as `futures-io` through async-tungstenite's `TokioAdapter`.
#[derive(Clone, Copy, Debug)]
pub struct Tokio;

impl Runtime for Tokio {
    type TcpListener = TcpListener;
    type UnixListener = UnixListener;
    type Unix = UnixStream;
    type Task = AbortHandle;
    type Tcp = TcpStream;
    type Tls = TlsStream;

    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        tokio::spawn(task).abort_handle()
    }
    fn cancel(task: AbortHandle) {
        task.abort();
    }
    fn detach(task: AbortHandle) {
        drop(task);
    }
    fn accept_tcp(
        listener: &TcpListener,
    ) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        listener.accept()
    }
    async fn accept_unix(listener: &UnixListener) -> io::Result<UnixStream> {
        listener.accept().await.map(|(io, _)| io)
    }
    fn sleep_until(deadline: Instant) -> Sleep {
        Box::pin(Deadline::at(deadline))
    }
    async fn tls_accept(
        config: Arc<rustls::ServerConfig>,
        tcp: TcpStream,
    ) -> io::Result<TlsStream> {
        let data = certauth_core::tls::resumption_data(&config);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        acceptor
            .accept_with(tcp, |c| c.set_resumption_data(&data))
            .await
    }
    fn tls_connection(tls: &TlsStream) -> &rustls::ServerConnection {
        tls.get_ref().1
    }
    fn tls_remote(tls: &TlsStream) -> Option<IpAddr> {
        tls.get_ref().0.peer_addr().ok().map(|a| a.ip())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Compat<S> for Tokio {
    type Io = TokioAdapter<S>;
    fn wrap(io: S) -> TokioAdapter<S> {
        TokioAdapter::new(io)
    }
    fn unwrap(io: TokioAdapter<S>) -> S {
        io.into_inner()
    }
}

certauth_engine::entry_points! {
    runtime: Tokio,
    tcp: TcpListener => TcpStream,
    unix: UnixListener => UnixStream,
}

/// The crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
