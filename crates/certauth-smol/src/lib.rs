//! # certauth-smol
//!
//! Mutual-TLS client authentication for smol, async-io and any runtime built on the
//! `futures-io` traits: the same [`Gate`] as `certauth-tokio`, over futures-rustls. It runs
//! the TLS handshake, reads the request head, asks [`certauth_core`]'s [`Authenticator`](certauth_core::Authenticator),
//! and either writes its `HTTP/1.1 4xx` and closes, or hands you the authenticated client
//! with a WebSocket ([`Gate::accept_websocket`]) or the stream, head and leftover bytes
//! ([`Gate::authenticate`]). Every decision is the core's; timeouts use smol's timer.
//!
//! ```no_run
//! use std::sync::Arc;
//! use certauth_smol::{Gate, ServeOptions, serve_websocket};
//! use certauth_smol::certauth_core::{Authenticator, ChainVerifier, TrustAnchors, policy::allow_cn};
//! use certauth_smol::certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
//! use certauth_smol::futures_util::{SinkExt, StreamExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = certauth_smol::default_provider();
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
//! decides ([`certauth_engine::lifecycle`]) on certauth-engine's serve loop, as
//! certauth-tokio's do: they keep accepting under load, shed stalled connections before
//! authentication, bound each phase by [`Limits`](certauth_core::Limits), back off on
//! accept errors and drain on shutdown (WebSockets get a 1001 close).
//! This crate is smol's side of the engine
//! ([`Smol`]): async-io's timer, smol's global executor and futures-rustls.
//!
//! Features: `ring` (default) and `aws-lc-rs` enable that rustls provider; pass the provider
//! you want as a value.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use async_tungstenite::WebSocketStream;
use certauth_engine::{Clock, Compat, DrainingWebSocket, Runtime, Sleep};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::FutureExt as _;
use smol::net::unix::{UnixListener, UnixStream};
use smol::net::{TcpListener, TcpStream};

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
pub type TlsStream = futures_rustls::server::TlsStream<TcpStream>;
/// A server-side WebSocket over `S` (by default the gate's TLS stream). When it was opened by
/// a serve helper, it closes itself with 1001 (going away) as the server drains.
pub type WebSocket<S = TlsStream> = DrainingWebSocket<WebSocketStream<S>>;

/// The gate: a TLS acceptor and an authenticator, on smol. Cheap to clone. Build it with
/// `Gate::new(authenticator, tls)` or the short path, `Gate::from_pem_files(ca, cert, key,
/// policy)`; [`Gate::authenticate`] runs the TLS handshake, the head
/// and the decision for your own HTTP, [`Gate::accept_websocket`] adds the upgrade.
///
/// ```no_run
/// # fn main() -> Result<(), certauth_smol::certauth_core::SetupError> {
/// use certauth_smol::Gate;
/// use certauth_smol::certauth_core::policy::allow_cn;
/// let gate = Gate::from_pem_files("ca.pem", "server.pem", "server.key", allow_cn(["trusted-client"]))?;
/// # Ok(()) }
/// ```
pub type Gate = certauth_engine::Gate<Smol>;

/// async-io's clock and timer, for the WebSocket deadlines.
pub const CLOCK: Clock = Clock::new(Instant::now, Smol::sleep_until);

/// smol as certauth-engine's runtime: tasks on smol's global executor (dropping one cancels
/// it), async-io's timer, futures-rustls; its streams are `futures-io` already.
#[derive(Clone, Copy, Debug)]
pub struct Smol;

impl Runtime for Smol {
    type TcpListener = TcpListener;
    type UnixListener = UnixListener;
    type Unix = UnixStream;
    type Task = smol::Task<()>;
    type Tcp = TcpStream;
    type Tls = TlsStream;

    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> smol::Task<()> {
        smol::spawn(task)
    }
    fn cancel(task: smol::Task<()>) {
        drop(task);
    }
    fn detach(task: smol::Task<()>) {
        task.detach();
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
        Box::pin(smol::Timer::at(deadline).map(drop))
    }
    async fn tls_accept(
        config: Arc<rustls::ServerConfig>,
        tcp: TcpStream,
    ) -> io::Result<TlsStream> {
        let data = certauth_core::tls::resumption_data(&config);
        let acceptor = futures_rustls::TlsAcceptor::from(config);
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

impl<S: AsyncRead + AsyncWrite + Unpin> Compat<S> for Smol {
    type Io = S;
    fn wrap(io: S) -> S {
        io
    }
    fn unwrap(io: S) -> S {
        io
    }
}

certauth_engine::entry_points! {
    runtime: Smol,
    tcp: TcpListener => TcpStream,
    unix: UnixListener => UnixStream,
}

/// The crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
