//! The gate: TLS handshake, request head, the core's decision, and the response it writes
//! (a refusal's 4xx, or the WebSocket upgrade's 101), on any runtime.

use std::future::Future;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use certauth_core::http::FirstRequest;
use certauth_core::policy::Policy;
use certauth_core::tls::{TlsConfig, TlsPeer};
use certauth_core::ws::default_websocket_config;
use certauth_core::{
    Authenticated, Authenticator, CertificateDer, Decision, HeadParser, HeadProgress, Limits,
    MutualTls, PeerInfo, RequestHead, ResponseHead, SetupError, Status, UnixTime, WebSocketPaths,
};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{AcceptError, Compat, Drain, DrainingWebSocket, OneRequest, Runtime};

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
    pub(crate) limits: Limits,
    pub(crate) drain: Drain,
}

impl<S> Accepted<S> {
    /// The server's shutdown signal (one that never fires outside a serve helper).
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// The same connection over another view of its stream.
    pub(crate) fn map_io<T>(self, f: impl FnOnce(S) -> T) -> Accepted<T> {
        Accepted {
            io: self.io.map(f),
            head: self.head,
            leftover: self.leftover,
            client: self.client,
            limits: self.limits,
            drain: self.drain,
        }
    }
}

/// Runs `fut`, bounded by `limit` if there is one, on `R`'s timer.
pub(crate) async fn within<R: Runtime, T>(
    limit: Option<Duration>,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let Some(deadline) = limit.and_then(|l| Instant::now().checked_add(l)) else {
        return Some(fut.await);
    };
    let fut = std::pin::pin!(fut);
    match futures_util::future::select(fut, R::sleep_until(deadline)).await {
        futures_util::future::Either::Left((out, _)) => Some(out),
        futures_util::future::Either::Right(_) => None,
    }
}

/// The rustls crypto provider the enabled features select: `ring`, else `aws-lc-rs`.
///
/// # Panics
///
/// With neither feature enabled (there is then no provider to offer: pass yours to
/// `certauth_core::MutualTls::from_pem`).
// rustls 0.23.48 deprecates ring's `default_provider` (no post-quantum key exchange); ring
// stays the default, so the deprecation stops here instead of in users' builds.
#[allow(deprecated)]
pub fn default_provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(feature = "ring")]
    return Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
    return Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    panic!("certauth: enable the `ring` or `aws-lc-rs` feature for a default provider")
}

/// The short path ([`certauth_core::MutualTls`]): reads the client CA, the server's
/// certificate chain and its key (PEM files) and builds an authenticator with `policy` and
/// a TLS configuration, with [`default_provider`]. Errors name the file to fix.
pub fn load_pem_files(
    client_ca: impl AsRef<Path>,
    server_cert: impl AsRef<Path>,
    server_key: impl AsRef<Path>,
    policy: impl Policy + 'static,
) -> Result<MutualTls, SetupError> {
    let (ca, cert, key) = (
        client_ca.as_ref(),
        server_cert.as_ref(),
        server_key.as_ref(),
    );
    let ca = std::fs::read(ca).map_err(|e| SetupError::read_client_ca(ca, e))?;
    let cert = std::fs::read(cert).map_err(|e| SetupError::read_server_certificate(cert, e))?;
    let key = std::fs::read(key).map_err(|e| SetupError::read_server_key(key, e))?;
    MutualTls::from_pem(default_provider(), &ca, &cert, &key, policy)
}

/// The gate on runtime `R`: a TLS acceptor and an authenticator. Cheap to clone.
pub struct Gate<R> {
    pub(crate) auth: Authenticator,
    tls: TlsConfig,
    pub(crate) ws: WebSocketConfig,
    pub(crate) paths: WebSocketPaths,
    /// With the PROXY protocol: the proxies whose headers are read (`proxy_protocol.rs`).
    pub(crate) proxy: Option<Arc<certauth_core::proxy::protocol::ProxyProtocol>>,
    runtime: PhantomData<fn() -> R>,
}

impl<R> Clone for Gate<R> {
    fn clone(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            tls: self.tls.clone(),
            ws: self.ws,
            paths: self.paths.clone(),
            proxy: self.proxy.clone(),
            runtime: PhantomData,
        }
    }
}

/// The short path's gate: its TLS configuration offers `http/1.1` by ALPN (what the gate
/// speaks), unless it already offers protocols.
impl<R> From<MutualTls> for Gate<R> {
    fn from(m: MutualTls) -> Self {
        let tls = certauth_core::tls::with_alpn(m.server_config, &certauth_core::tls::ALPN_HTTP1);
        Self::new(m.authenticator, tls)
    }
}

impl<R> Gate<R> {
    /// The short path: a gate from three PEM files and a policy ([`load_pem_files`]).
    pub fn from_pem_files(
        client_ca: impl AsRef<Path>,
        server_cert: impl AsRef<Path>,
        server_key: impl AsRef<Path>,
        policy: impl Policy + 'static,
    ) -> Result<Self, SetupError> {
        load_pem_files(client_ca, server_cert, server_key, policy).map(Self::from)
    }

    /// A gate terminating TLS with `tls` (see `certauth_core::tls::server_config`; an
    /// `Arc<ServerConfig>`, or a [`TlsConfig`] to replace it while serving).
    pub fn new(auth: Authenticator, tls: impl Into<TlsConfig>) -> Self {
        Self {
            auth,
            tls: tls.into().offering(&certauth_core::tls::ALPN_HTTP1),
            ws: default_websocket_config(),
            paths: WebSocketPaths::any(),
            proxy: None,
            runtime: PhantomData,
        }
    }

    /// The paths [`Self::accept_websocket`] and the WebSocket serve helper upgrade (default:
    /// every path). An authenticated client asking for another gets 404.
    pub fn websocket_paths(mut self, paths: WebSocketPaths) -> Self {
        self.paths = paths;
        self
    }

    /// The TLS configuration, to replace while serving ([`TlsConfig::reload`]).
    pub fn tls(&self) -> &TlsConfig {
        &self.tls
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
}

impl<R: Runtime + Compat<<R as Runtime>::Tls>> Gate<R>
where
    R::Io: Send,
{
    /// TLS handshake, request head, decision, each bounded by the authenticator's limits.
    /// For your own HTTP handling.
    pub async fn authenticate(&self, tcp: R::Tcp) -> Result<Accepted<R::Tls>, AcceptError> {
        let limits = self.auth.limits();
        let tls = within::<R, _>(Some(limits.handshake_timeout), self.handshake(tcp))
            .await
            .ok_or(AcceptError::HandshakeTimeout)??;
        let (head_timeout, remote) = (Some(limits.head_read_timeout), R::tls_remote(&tls.0));
        let accepted = self.after_handshake(tls, head_timeout, remote).await?;
        Ok(accepted.map_io(R::unwrap))
    }

    /// [`Self::authenticate`], then the WebSocket handshake.
    pub async fn accept_websocket(
        &self,
        tcp: R::Tcp,
    ) -> Result<(DrainingWebSocket<WebSocketStream<R::Io>>, Authenticated), AcceptError> {
        let limits = self.auth.limits();
        let tls = within::<R, _>(Some(limits.handshake_timeout), self.handshake(tcp))
            .await
            .ok_or(AcceptError::HandshakeTimeout)??;
        let remote = R::tls_remote(&tls.0);
        let accepted = self
            .after_handshake(tls, Some(limits.head_read_timeout), remote)
            .await?;
        upgrade_at::<R, _>(accepted, self.ws, self.paths.clone()).await
    }

    /// The TLS handshake with the current configuration, and what the decision needs of
    /// the peer (read once, while the configuration is at hand).
    pub(crate) async fn handshake(&self, tcp: R::Tcp) -> Result<(R::Tls, TlsPeer), AcceptError> {
        let config = self.tls.current();
        let tls = R::tls_accept(Arc::clone(&config), tcp).await;
        let tls = tls.map_err(AcceptError::Handshake)?;
        let peer = TlsPeer::of(&config, R::tls_connection(&tls));
        Ok((tls, peer))
    }

    /// After the handshake: the head, within `head_timeout` when the caller does not bound
    /// it itself, and the decision about the client at `remote` (the TCP peer, or the one a
    /// PROXY header named).
    pub(crate) async fn after_handshake(
        &self,
        (tls, peer): (R::Tls, TlsPeer),
        head_timeout: Option<Duration>,
        remote: Option<IpAddr>,
    ) -> Result<Accepted<R::Io>, AcceptError> {
        decide_on::<R, _>(&self.auth, R::wrap(tls), peer.info(remote), head_timeout).await
    }
}

/// The gate over a stream you set up yourself: plain TCP behind a proxy (header mode), or a
/// TLS stream you accepted (pass its peer chain). The head is bounded by the limits.
pub async fn gate<R: Compat<S>, S>(
    auth: &Authenticator,
    io: S,
    peer_chain: &[CertificateDer<'_>],
    remote: Option<IpAddr>,
) -> Result<Accepted<S>, AcceptError> {
    let limit = Some(auth.limits().head_read_timeout);
    let peer = PeerInfo::new(peer_chain, remote);
    let accepted = decide_on::<R, _>(auth, R::wrap(io), peer, limit).await?;
    Ok(accepted.map_io(R::unwrap))
}

/// Reads the head (within `head_timeout`, when the caller does not bound it itself), asks
/// the core, writes a refusal.
pub(crate) async fn decide_on<R: Runtime, S: AsyncRead + AsyncWrite + Unpin>(
    auth: &Authenticator,
    mut io: S,
    peer: PeerInfo<'_>,
    head_timeout: Option<Duration>,
) -> Result<Accepted<S>, AcceptError> {
    let mut parser = HeadParser::new(auth.limits());
    let mut buf = Vec::new();
    let read = async {
        loop {
            // Read into the buffer's spare room, grown 1 KiB at a time as the head needs.
            let len = buf.len();
            buf.resize(len + 1024, 0);
            let n = io.read(&mut buf[len..]).await;
            buf.truncate(len + *n.as_ref().unwrap_or(&0));
            if n? == 0 {
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
    let (head, consumed, request) = match within::<R, _>(head_timeout, read).await {
        None => return Err(AcceptError::HeadTimeout),
        Some(Err(AcceptError::Head(e))) => {
            reject::<R, _>(&mut io, &e.response(), auth.limits()).await;
            return Err(e.into());
        }
        Some(r) => r?,
    };
    // A decision can wait (an async policy, an OCSP answer or a CRL being fetched): it is
    // bounded as the head is, so a client whose decision never comes holds nothing for long.
    let decided = within::<R, _>(head_timeout, auth.decide(&peer, &head, UnixTime::now()));
    let Some(decision) = decided.await else {
        let busy = ResponseHead::error(
            Status::ServiceUnavailable,
            "certauth could not decide in time; try again.\n",
        );
        reject::<R, _>(&mut io, &busy, auth.limits()).await;
        return Err(AcceptError::DecisionTimeout);
    };
    match decision {
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
            reject::<R, _>(&mut io, denial.response(), auth.limits()).await;
            Err(AcceptError::Denied(Box::new(denial)))
        }
    }
}

/// Completes the WebSocket handshake for an accepted connection (writes the core's 101, or
/// its 400/426 and closes), whatever its path.
pub async fn upgrade<R: Compat<S>, S>(
    accepted: Accepted<S>,
    config: WebSocketConfig,
) -> Result<(DrainingWebSocket<WebSocketStream<R::Io>>, Authenticated), AcceptError> {
    upgrade_at::<R, _>(accepted.map_io(R::wrap), config, WebSocketPaths::any()).await
}

pub(crate) async fn upgrade_at<R: Runtime, S: AsyncRead + AsyncWrite + Unpin>(
    accepted: Accepted<S>,
    config: WebSocketConfig,
    paths: WebSocketPaths,
) -> Result<(DrainingWebSocket<WebSocketStream<S>>, Authenticated), AcceptError> {
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
            let ws = WebSocketStream::from_partially_read(io, leftover, Role::Server, Some(config));
            let ws = DrainingWebSocket::new(ws.await, &drain).with_deadlines(&limits, R::clock());
            Ok((ws, client))
        }
        Err(e) => {
            reject::<R, _>(&mut io, &e.response(), &limits).await;
            Err(e.into())
        }
    }
}

/// Writes an error response, flushes, closes the write side, then lingers: reads and
/// discards what the client is still sending (bounded by the limits) so the close does not
/// reset the connection before the client reads the response. Failures are ignored: the
/// connection is closed either way.
pub(crate) async fn reject<R: Runtime, S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    response: &ResponseHead,
    limits: &Limits,
) {
    let _ = io.write_all(&response.to_bytes()).await;
    let _ = io.flush().await;
    let _ = io.close().await;
    let mut sink = [0u8; 4096];
    let mut left = limits.max_linger_bytes;
    let _ = within::<R, _>(Some(limits.linger_timeout), async {
        while left > 0 {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}
