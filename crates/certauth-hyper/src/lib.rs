//! # certauth-hyper
//!
//! certauth for hyper 1, tower and axum (the Express experience of client-certificate-auth):
//!
//! - [`serve`] (and [`serve_with`], for other limits) runs the connection lifecycle the core
//!   decides (`certauth_engine::lifecycle`, on certauth-engine's loop through certauth-tokio): it keeps accepting under
//!   load, sheds stalled connections until [`CertAuthLayer`] has allowed one of their
//!   requests (open routes and refusals do not count), bounds the TLS handshake, each
//!   request and head of a connection not yet allowed, and the keep-alive idle time;
//!   closes a connection whose request the layer refused (HTTP/2: GOAWAY); applies the core's head limits
//!   (the same 431 as the raw gates), and drains gracefully on shutdown. It serves HTTP/1.1
//!   and HTTP/2 (hyper-util's auto builder, upgrades on) and puts a [`ConnectionInfo`] (peer
//!   chain, remote address) in every request's extensions.
//! - [`CertAuthLayer`] (tower) asks [`certauth_core`]'s [`Authenticator`] about each
//!   request: a denial is answered with the core's status and body without calling the
//!   inner service; success puts the [`Authenticated`] client in the request's extensions
//!   (Node's `req.clientCertificate`). Apply it to some routes and not others: axum's
//!   `route_layer` covers only the routes added before it, never a fallback (the README's
//!   safe shape is `Router::layer` over a protected router). Stacked layers: the innermost
//!   decision replaces the others' in the extensions. The same layer serves TLS-peer mode
//!   and header mode (plain HTTP behind a proxy).
//! - [`upgrade_websocket`] authenticates before the 101 and hands you the WebSocket, with
//!   the raw gates' limits ([`default_websocket_config`]: 1 MiB messages).
//! - Feature `axum`: the `ClientCert` extractor. Feature `socketio`: Socket.IO connect
//!   middleware (`require_client_cert`) for socketioxide, and the layer that binds each
//!   Engine.IO session to the certificate that opened it (`SocketIoSessions`).
//!
//! ```no_run
//! # #[cfg(feature = "axum")] mod doc {
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use certauth_hyper::{CertAuthLayer, ClientCert, default_provider, serve};
//! use certauth_hyper::certauth_core::{Authenticator, ChainVerifier, TrustAnchors, policy::allow_cn};
//! use certauth_hyper::certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
//!
//! async fn whoami(ClientCert(client): ClientCert) -> String {
//!     client.certificate().subject().to_rfc4514()
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = default_provider(); // rustls' ring (feature `aws-lc-rs`: aws-lc-rs)
//! let anchors = TrustAnchors::from_pem(&std::fs::read("ca.pem")?)?;
//! let (chain, key) = load_server_identity(&std::fs::read("server.pem")?, &std::fs::read("server.key")?)?;
//! let tls = server_config(provider.clone(), chain, key, &anchors, ClientAuthMode::Deferred)?;
//! let auth = Authenticator::builder()
//!     .verifier(ChainVerifier::new(anchors, provider.signature_verification_algorithms.all))
//!     .policy(allow_cn(["trusted-client"]))
//!     .build()?;
//! let app = Router::new()
//!     .route("/admin/whoami", get(whoami))
//!     .route_layer(CertAuthLayer::new(auth))       // protected
//!     .route("/public", get(|| async { "hello" })); // open
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! serve(listener, Some(Arc::new(tls)), app, std::future::pending()).await?;
//! # Ok(()) } }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::protocol::Role;
use backpressure::Backpressure;
use certauth_core::http::{RequestFraming, check_head, head_of};
use certauth_core::tls::{ALPN_HTTP2_AND_HTTP1, TlsConfig, TlsPeer, resumption_data, with_alpn};
use certauth_core::{
    Authenticated, Authenticator, CertificateDer, Decision, Denial, Evaluation, Limits,
    ResponseHead, UnixTime,
};
use certauth_engine::lifecycle::{Identity, KeepAlive, Phase, Refusal};
use certauth_engine::{Drain, DrainingWebSocket, proxied_client};
use certauth_tokio::Tokio;
use http::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use linger::Lingering;
use sever::Severable;
use tokio::net::TcpListener;
use tracing::{debug, warn};

#[cfg(feature = "axum")]
mod axum_listener;
#[cfg(feature = "axum-server")]
pub mod axum_server;
mod backpressure;
mod framing;
mod linger;
mod sever;
#[cfg(feature = "socketio")]
mod socketio;
#[cfg(feature = "upstream")]
pub mod upstream;

#[cfg(feature = "axum")]
pub use axum_listener::TlsListener;
#[cfg(feature = "socketio")]
pub use socketio::{SessionBody, SessionGuard, SocketIoSessions, require_client_cert};
#[cfg(feature = "upstream")]
pub use upstream::{ProxyBody, Upstream};

pub use certauth_core::{self, ws::default_websocket_config};
pub use certauth_engine::lifecycle::ServeOptions;
pub use certauth_engine::load_pem_files;
pub use certauth_tokio::{Message, WebSocketConfig, default_provider, futures_util, tungstenite};
pub use rustls;

/// What the connection knows, in every request's extensions: the peer's chain and address,
/// and what the connection remembers of the chain's verification (so its keep-alive
/// requests and HTTP/2 streams do not verify it again). Under [`serve`] it also carries
/// the connection's place in the lifecycle, which [`CertAuthLayer`] moves: an Allow makes
/// the connection authenticated, a denial closes it.
#[derive(Clone, Debug, Default)]
pub struct ConnectionInfo {
    peer: TlsPeer,
    remote_addr: Option<SocketAddr>,
    lifecycle: Option<Lifecycle>,
}

impl ConnectionInfo {
    /// The chain the TLS peer presented (empty for none or plain HTTP) and its address, for
    /// a handshake whose provider verified the common key types
    /// ([`TlsPeer::presenting`]); [`Self::from_tls`] reads both from the connection.
    pub fn new(peer_chain: Vec<CertificateDer<'static>>, remote_addr: Option<SocketAddr>) -> Self {
        Self::from_tls(TlsPeer::presenting(peer_chain), remote_addr)
    }

    /// The TLS peer as the handshake left it (`TlsPeer::of(config, connection)`: its chain
    /// and the key types the `ServerConfig`'s provider verified) and its address.
    pub fn from_tls(peer: TlsPeer, remote_addr: Option<SocketAddr>) -> Self {
        Self {
            peer,
            remote_addr,
            lifecycle: None,
        }
    }

    /// The TLS peer's chain.
    pub fn peer_chain(&self) -> &[CertificateDer<'static>] {
        self.peer.chain()
    }

    /// The client's address: the TCP peer's, or under [`serve_with`] with
    /// [`ServeOptions::proxy_protocol`] the one its PROXY header names (the load balancer
    /// is then only in the connection's log span, `remote`). In header mode it is the
    /// address that must be a trusted proxy for the certificate header to be believed.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }
}

/// A request the layer denied in annotate mode (see [`CertAuthLayer::annotate_only`]).
#[derive(Clone, Debug)]
pub struct AuthRejection(pub Arc<Denial>);

/// The tower layer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CertAuthLayer {
    auth: Authenticator,
    annotate_only: bool,
}

impl CertAuthLayer {
    /// Denied requests get the core's response; the inner service never sees them. Logs
    /// the configuration's risks ([`Authenticator::warnings`]) once, here.
    pub fn new(auth: Authenticator) -> Self {
        auth.warnings().iter().for_each(|w| warn!("{w}"));
        Self {
            auth,
            annotate_only: false,
        }
    }

    /// Every request reaches the inner service, with [`Authenticated`] or an
    /// [`AuthRejection`] in its extensions: for services that refuse in their own protocol
    /// (Socket.IO's connect error, see `require_client_cert`). It protects nothing by
    /// itself: a route behind it that does not check needs its own layer. A refusal removes
    /// an outer layer's [`Authenticated`]; an Allow (in either mode) an outer [`AuthRejection`].
    pub fn annotate_only(mut self) -> Self {
        self.annotate_only = true;
        self
    }
}

impl<S> tower_layer::Layer<S> for CertAuthLayer {
    type Service = CertAuth<S>;

    fn layer(&self, inner: S) -> CertAuth<S> {
        CertAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`CertAuthLayer`] makes.
#[derive(Clone, Debug)]
pub struct CertAuth<S> {
    inner: S,
    layer: CertAuthLayer,
}

/// The core's response as an `http::Response` for a request of `version`: hyper frames
/// the body; `Connection` headers are kept for HTTP/1.x (so a rejected client's connection
/// is closed, as on the raw socket) and dropped for HTTP/2, which forbids them.
pub fn to_response<B: From<String>>(head: &ResponseHead, version: http::Version) -> Response<B> {
    let mut builder = Response::builder().status(head.status().code());
    let http1 = version <= http::Version::HTTP_11;
    for (name, value) in head.headers() {
        let connection = name.eq_ignore_ascii_case("connection");
        if (!connection || http1) && !name.eq_ignore_ascii_case("content-length") {
            builder = builder.header(name, value);
        }
    }
    builder
        .body(B::from(head.body().to_owned()))
        .unwrap_or_else(|_| Response::new(B::from(String::new())))
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResBody> tower_service::Service<Request<B>> for CertAuth<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let info = connection_info(&req);
        let evaluation = match &info {
            Some(info) => {
                let remote = info.remote_addr.map(|a| a.ip());
                let peer = info.peer.info(remote);
                // Inside `nest`, the path that was requested, not the one left after the prefix.
                #[cfg(feature = "axum")]
                let routed = axum_listener::requested_uri(&req);
                #[cfg(not(feature = "axum"))]
                let routed = None;
                let head = head_of(&req, routed);
                self.layer.auth.decide(&peer, &head, UnixTime::now())
            }
            // Without the connection's chain and address nothing can be decided: say so,
            // rather than refuse everyone as if they had no certificate.
            None => Evaluation::from(Decision::Deny(self.layer.auth.misconfigured(NO_INFO))),
        };
        let remote = info.as_ref().and_then(|i| i.remote_addr);
        let lifecycle = info.and_then(|i| i.lifecycle);
        // The clone that was driven to readiness serves this call (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let annotate = self.layer.annotate_only;
        Box::pin(async move {
            match evaluation.await {
                Decision::Allow(client) => {
                    debug!(reused = client.reused(), "client authenticated");
                    // Past the per-identity cap the connection is refused (429), not served.
                    if let Some(refused) = lifecycle.as_ref().and_then(Lifecycle::authenticated) {
                        warn!(remote = ?remote, code = refused.code(), "request refused: {refused}");
                        return Ok(to_response(&refused.response(), req.version()));
                    }
                    // A layer further in decides last: its Allow replaces an outer refusal.
                    req.extensions_mut().remove::<AuthRejection>();
                    req.extensions_mut().insert(client);
                    inner.call(req).await
                }
                Decision::Deny(denial) => {
                    let version = req.version();
                    warn!(code = denial.code(), status = denial.status().code(), remote = ?remote, "client rejected: {denial}");
                    if annotate {
                        // The app answers in its own protocol; the connection stays
                        // unauthenticated (sheddable, under its head deadline). An outer
                        // layer's Allow no longer stands: `ClientCert` must not find it.
                        req.extensions_mut().remove::<Authenticated>();
                        req.extensions_mut().insert(AuthRejection(Arc::new(denial)));
                        inner.call(req).await
                    } else {
                        // HTTP/1.x closes on the response's `Connection: close`; HTTP/2
                        // has none, so the connection is shut down (GOAWAY) after it.
                        lifecycle.inspect(|l| l.refused());
                        Ok(to_response(denial.response(), version))
                    }
                }
            }
        })
    }
}

/// Why a request without [`ConnectionInfo`] cannot be decided.
const NO_INFO: &str = "no ConnectionInfo on the request: serve the app with certauth_hyper::serve, \
axum::serve over a TlsListener (with connect info), or axum-server with axum_server::Acceptor";

/// The connection's information: put by [`serve`] or an axum-server acceptor, or by axum's
/// `ConnectInfo` under a [`TlsListener`].
fn connection_info<B>(req: &Request<B>) -> Option<ConnectionInfo> {
    let info = req.extensions().get::<ConnectionInfo>().cloned();
    #[cfg(feature = "axum")]
    let info = info.or_else(|| axum_listener::from_connect_info(req));
    info
}

/// A WebSocket over a hyper upgrade. Opened under [`serve`], it closes itself with 1001
/// (going away) as the server drains.
pub type WebSocket =
    DrainingWebSocket<WebSocketStream<TokioAdapter<TokioIo<hyper::upgrade::Upgraded>>>>;

/// Answers a WebSocket upgrade on a request the layer authenticated: the core validates it
/// and the 101 (or 400/426) is returned; on 101, `handler` runs with the WebSocket in a new
/// task, which [`serve`]'s shutdown waits for (within its grace period). Without the layer
/// in front, answers 500. The WebSocket has certauth's limits ([`default_websocket_config`]:
/// 1 MiB messages, as the raw gates); [`upgrade_websocket_with`] takes others.
pub fn upgrade_websocket<B, ResBody, F, Fut>(req: Request<B>, handler: F) -> Response<ResBody>
where
    B: Send + 'static,
    ResBody: From<String>,
    F: FnOnce(WebSocket, Authenticated) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    upgrade_websocket_with(req, default_websocket_config(), handler)
}

/// [`upgrade_websocket`] with your WebSocket settings (message and frame limits).
pub fn upgrade_websocket_with<B, ResBody, F, Fut>(
    req: Request<B>,
    config: WebSocketConfig,
    handler: F,
) -> Response<ResBody>
where
    B: Send + 'static,
    ResBody: From<String>,
    F: FnOnce(WebSocket, Authenticated) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(client) = req.extensions().get::<Authenticated>().cloned() else {
        return missing_layer();
    };
    let version = req.version();
    let served = ConnState::of(&req).cloned();
    let drain = served
        .as_ref()
        .map_or_else(Drain::default, |c| c.conn.drain().clone());
    let limits = served.as_ref().map_or_else(Limits::default, |c| c.limits);
    match certauth_core::ws::accept_http_websocket(&req) {
        Err(e) => to_response(&e.response(), version),
        Ok(response) => {
            // The connection keeps its place in the lifecycle while the WebSocket is open.
            let hold = (drain.hold(), served);
            // Taken out here: the task keeps the upgrade, not the request, for its life.
            let upgrade = hyper::upgrade::on(req);
            tokio::spawn(async move {
                let _hold = hold;
                match upgrade.await {
                    Ok(upgraded) => {
                        let io = TokioAdapter::new(TokioIo::new(upgraded));
                        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config));
                        let ws = DrainingWebSocket::new(ws.await, &drain)
                            .with_deadlines(&limits, certauth_tokio::CLOCK);
                        tokio::select! {
                            () = handler(ws, client) => {}
                            () = drain.cancelled() => debug!("grace period over: websocket cancelled"),
                        }
                    }
                    Err(e) => debug!(error = %e, "websocket upgrade failed"),
                }
            });
            to_response(&response, version)
        }
    }
}

const NO_LAYER: &str = "certauth: CertAuthLayer is not installed in front of this handler";

fn missing_layer<B: From<String>>() -> Response<B> {
    let mut r = Response::new(B::from(NO_LAYER.to_owned()));
    *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    r
}

/// [`serve_with`] with the default limits ([`Limits::DEFAULT`]) and serve options
/// ([`ServeOptions::DEFAULT`]). A `tls` without ALPN protocols is served with `h2` and
/// `http/1.1` offered (`certauth_core::tls::with_alpn`), so clients negotiate HTTP/2.
pub async fn serve<S, ResBody>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: tower_service::Service<Request<hyper::body::Incoming>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: hyper::body::Body + From<String> + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (limits, options) = (Limits::DEFAULT, ServeOptions::DEFAULT);
    let tls = tls.map(|c| TlsConfig::from(with_alpn(c, &ALPN_HTTP2_AND_HTTP1)));
    serve_with(listener, tls, limits, options, service, shutdown).await
}

/// Accepts connections until `shutdown` completes, with the core's lifecycle
/// (certauth-engine's [`serve_connections`](certauth_engine::serve_connections), on tokio): the TLS
/// handshake (when `tls` is given, with its current configuration for each connection, so it
/// can be replaced while serving; plain HTTP behind a proxy otherwise) and the first
/// request head within `limits`' timeouts, shedding under `options`' caps; then hyper's
/// HTTP/1.1 + HTTP/2 server with upgrades, with [`ConnectionInfo`] in every request, every
/// head checked against `limits` (431 as the raw gates answer it), and a graceful shutdown
/// after [`Limits::idle_timeout`] without a request. On `shutdown`, requests in flight
/// finish and upgraded WebSockets get a 1001 close, within `options.grace`.
///
/// With [`ServeOptions::proxy_protocol`] (behind a TCP load balancer), each connection
/// starts with a PROXY-protocol header, read by certauth-engine before the TLS handshake
/// ([`certauth_engine::proxied_client`]) and accepted only from the proxies named there
/// (others are closed unanswered, logged); the client it names is the
/// [`ConnectionInfo::remote_addr`] every request carries: the address logs, the cap per
/// address, policies, axum's `ConnectInfo`, the `upstream` module's `X-Forwarded-For` and header mode's trusted-proxy
/// check see.
pub async fn serve_with<S, ResBody>(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    limits: Limits,
    options: ServeOptions,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: tower_service::Service<Request<hyper::body::Incoming>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: hyper::body::Body + From<String> + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let first = tls.as_ref().map_or(Phase::Head, |_| Phase::Handshake);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // hyper buffers at most twice the head limit; below that the core's check answers.
    let buffer = limits.max_head_bytes.saturating_mul(2).max(8192);
    builder.http1().max_buf_size(buffer);
    if limits.max_headers >= 100 {
        builder
            .http1()
            .max_headers(limits.max_headers.saturating_mul(2));
    }
    builder
        .http2()
        .max_header_list_size(u32::try_from(buffer).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let proxies = options.proxy_protocol.clone();
    certauth_engine::serve_connections::<Tokio, _, _>(
        listener,
        limits,
        options,
        first,
        shutdown,
        move |tcp, addr, conn| {
            let config = tls.as_ref().map(TlsConfig::current);
            let (service, builder, proxies) =
                (service.clone(), Arc::clone(&builder), proxies.clone());
            async move {
                // The engine reads (and logs a refused) PROXY header: `addr` is the client.
                let read = proxied_client::<Tokio>(proxies.as_deref(), tcp, addr, &conn).await;
                let Ok((tcp, addr)) = read else { return };
                let (io, peer): (Box<dyn Io>, _) = match config {
                    // Boxed: the handshake's state is freed once it is done.
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&config));
                        let data = resumption_data(&config);
                        let tls = acceptor.accept_with(tcp, |c| c.set_resumption_data(&data));
                        match Box::pin(tls).await {
                            Ok(tls) => {
                                conn.advance(Phase::Head, Instant::now());
                                let peer = TlsPeer::of(&config, tls.get_ref().1);
                                (Box::new(tls), peer)
                            }
                            Err(e) => return debug!(error = %e, "TLS handshake failed"),
                        }
                    }
                    None => (Box::new(tcp), TlsPeer::default()),
                };
                let drain = conn.drain().clone();
                let state = Arc::new(ConnState {
                    keep: Mutex::new(KeepAlive::new(&limits, Instant::now())),
                    close: tokio::sync::Notify::new(),
                    upgraded: Arc::new(AtomicBool::new(false)),
                    identity: Identity::of_chain(peer.chain()),
                    conn,
                    limits,
                    #[cfg(feature = "upstream")]
                    proxied: Arc::default(),
                    #[cfg(feature = "upstream")]
                    forwarded: upstream::IdentityMemo::default(),
                });
                let watch = Arc::new(Mutex::new(RequestFraming::new(&limits)));
                let mut info = ConnectionInfo::from_tls(peer, Some(addr));
                info.lifecycle = Some(Lifecycle(Arc::clone(&state)));
                let service = Tracked {
                    inner: service,
                    info,
                    state: Arc::clone(&state),
                    limits,
                    framing: Arc::clone(&watch),
                };
                let hyper_service = hyper_util::service::TowerToHyperService::new(service);
                let io = Backpressure::new(io, Arc::clone(&state.upgraded));
                let io = framing::Watched::new(io, watch, Arc::clone(&state.upgraded));
                let (io, line) = Severable::new(Lingering::new(io, &limits));
                let served = builder.serve_connection_with_upgrades(TokioIo::new(io), hyper_service);
                let mut served = std::pin::pin!(served);
                let mut closing = false;
                // Made once and reset only when the next look moves: the loop turns when one
                // of them fires (a look while a request is in flight, a close, the drain),
                // and a timer made anew each turn was registered and removed each time.
                // On the timer thread (`certauth_tokio::Deadline`): a pending tokio timer
                // costs each wait of this thread on its sockets a kernel timer.
                let mut sleep = certauth_tokio::Deadline::at(Instant::now());
                let mut close = std::pin::pin!(state.close.notified());
                let mut draining = std::pin::pin!(drain.draining());
                loop {
                    let set = sleep.deadline();
                    let next = state.keep().next_look(set, Instant::now());
                    if set != next {
                        sleep.reset(next);
                    }
                    tokio::select! {
                        r = served.as_mut() => {
                            if let Err(e) = r {
                                debug!(error = %e, "connection ended with an error");
                            }
                            // Upgraded before any request was allowed, it keeps its slot
                            // until it closes, and is closed with the slot (sever.rs).
                            let pending = !state.keep().is_authenticated();
                            return line.held(state.upgraded.load(Ordering::Acquire) && pending).await;
                        }
                        () = &mut sleep, if !closing => {
                            closing = state.keep().expired(Instant::now());
                            if closing {
                                served.as_mut().graceful_shutdown();
                            }
                        }
                        () = &mut close, if !closing => {
                            closing = true;
                            served.as_mut().graceful_shutdown();
                        }
                        () = &mut draining, if !closing => {
                            closing = true;
                            served.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        },
    )
    .await
}

/// What a connection's requests share: its keep-alive clock and its place in the lifecycle.
#[derive(Debug)]
struct ConnState {
    /// Also whether the layer has allowed a request: one lock, so that a request's progress
    /// never moves an authenticated connection back to pending.
    keep: Mutex<KeepAlive>,
    /// Set when a denial asks the connection to close.
    close: tokio::sync::Notify,
    /// Set when a response switches protocols (`backpressure.rs`).
    upgraded: Arc<AtomicBool>,
    /// The TLS peer's leaf, counted against `max_connections_per_identity` once the layer
    /// allows a request (none in header mode: one proxy connection carries many clients).
    identity: Option<Identity>,
    conn: Conn,
    /// The limits it is served with.
    limits: Limits,
    /// Its requests in flight to an `Upstream` (the per-connection caps).
    #[cfg(feature = "upstream")]
    proxied: Arc<upstream::limit::PerConnection>,
    /// The identity headers the `upstream` module last wrote for this connection.
    #[cfg(feature = "upstream")]
    forwarded: upstream::IdentityMemo,
}

/// A connection's place in the engine's lifecycle: dropping it frees its slot.
type Conn = certauth_engine::Slot<tokio::task::AbortHandle>;

impl ConnState {
    /// The state of the connection `req` came on, under [`serve_with`] (through its
    /// [`ConnectionInfo`]).
    fn of<B>(req: &Request<B>) -> Option<&Arc<Self>> {
        let info = req.extensions().get::<ConnectionInfo>()?;
        info.lifecycle.as_ref().map(|l| &l.0)
    }

    fn keep(&self) -> std::sync::MutexGuard<'_, KeepAlive> {
        self.keep
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reports the phase the keep-alive clock named (pending until the layer allows a
    /// request: see `KeepAlive`), under its lock.
    fn update(&self, step: impl FnOnce(&mut KeepAlive) -> Option<Phase>) {
        let mut keep = self.keep();
        match step(&mut keep) {
            Some(Phase::Open) => drop(self.conn.open(self.identity, Instant::now())),
            Some(phase) => self.conn.advance(phase, Instant::now()),
            None => {}
        }
    }
}

/// The handle the layer reports a connection's decisions through (in [`ConnectionInfo`]).
#[derive(Clone, Debug)]
struct Lifecycle(Arc<ConnState>);

impl Lifecycle {
    /// The layer allowed a request: the connection is authenticated (never shed, no head
    /// deadline; the keep-alive clock still applies).
    /// The refusal if the client's identity already holds `max_connections_per_identity`
    /// connections.
    fn authenticated(&self) -> Option<Refusal> {
        self.0.update(KeepAlive::authenticated);
        self.0.conn.refused().copied()
    }

    /// The layer refused a request: close the connection once the requests in flight
    /// are answered (HTTP/2: GOAWAY).
    fn refused(&self) {
        self.0.close.notify_one();
    }
}

/// A request in flight on the keep-alive clock, counted until it is dropped: hyper drops
/// the service's future when the response is ready, and also when the client resets the
/// stream (HTTP/2) or leaves, and either must restart the idle clock.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: &Arc<ConnState>) -> Self {
        state.update(KeepAlive::request_started);
        Self(Arc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|keep| keep.request_finished(Instant::now()));
    }
}

/// The service [`serve_with`] runs per connection: checks the head against the limits,
/// counts the request on the keep-alive clock, and adds [`ConnectionInfo`] and the drain
/// signal to the request.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    info: ConnectionInfo,
    state: Arc<ConnState>,
    limits: Limits,
    /// Each request's framing as the client sent it (hyper hides `Content-Length` with
    /// `Transfer-Encoding`): 400 for ambiguous framing, as the raw gates answer it.
    framing: framing::Watch,
}

impl<S, ResBody> tower_service::Service<Request<hyper::body::Incoming>> for Tracked<S>
where
    S: tower_service::Service<Request<hyper::body::Incoming>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(Err(e)) = framing::lock(&self.framing).next_request() {
            warn!(remote = ?self.info.remote_addr, "request refused: {e}");
            let response = to_response(&e.response(), req.version());
            return Box::pin(async move { Ok(response) });
        }
        if let Some(refused) = self.state.conn.refused() {
            warn!(remote = ?self.info.remote_addr, code = refused.code(), "request refused: {refused}");
            let response = to_response(&refused.response(), req.version());
            return Box::pin(async move { Ok(response) });
        }
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()));
        if let Err(e) = check_head(&self.limits, req.method().as_str(), target, headers) {
            warn!(remote = ?self.info.remote_addr, "request refused: {e}");
            let response = to_response(&e.response(), req.version());
            return Box::pin(async move { Ok(response) });
        }
        // One extension for what the connection knows: its state (drain signal, limits,
        // caps) is reached through it (`ConnState::of`), each insertion being an allocation.
        req.extensions_mut().insert(self.info.clone());
        // axum apps read the peer's address with `ConnectInfo<SocketAddr>`: keep it working.
        #[cfg(feature = "axum")]
        if let Some(addr) = self.info.remote_addr {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(addr));
        }
        let in_flight = InFlight::start(&self.state);
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await;
            if let Ok(r) = &response
                && r.status() == http::StatusCode::SWITCHING_PROTOCOLS
            {
                in_flight.0.upgraded.store(true, Ordering::Release);
            }
            drop(in_flight);
            response
        })
    }
}

/// A connection's byte stream, TLS or plain.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Io for T {}

/// axum extractor for the authenticated client; otherwise a 500 naming the cause: a layer
/// in `annotate_only` mode refused the client (its code; check [`AuthRejection`] first), or
/// no layer is installed in front of the handler.
#[cfg(feature = "axum")]
#[derive(Clone, Debug)]
pub struct ClientCert(pub Authenticated);

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientCert {
    type Rejection = (http::StatusCode, String);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let ext = &parts.extensions;
        let why = |r: &AuthRejection| {
            format!(
                "certauth: the client was refused ({}) by a CertAuthLayer in annotate_only mode: check AuthRejection before ClientCert",
                r.0.code()
            )
        };
        let cause = ext
            .get::<AuthRejection>()
            .map_or_else(|| NO_LAYER.to_owned(), why);
        let cert = ext.get::<Authenticated>().cloned().map(ClientCert);
        cert.ok_or((http::StatusCode::INTERNAL_SERVER_ERROR, cause))
    }
}
