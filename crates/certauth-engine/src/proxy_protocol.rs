//! The PROXY protocol before the TLS handshake: reads what the core's `proxy::protocol`
//! asks for (never past the header, so the TLS bytes stay in the socket) and reports the
//! client's address to the lifecycle. Whom to believe and what the bytes mean is the core's.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use crate::lifecycle::ServeOptions;
use certauth_core::proxy::protocol::{ProxyProtocol, next_read};
use futures_util::AsyncReadExt as _;
use tracing::warn;

use crate::{AcceptError, Compat, Gate, Runtime, Slot};

impl<R> Gate<R> {
    /// Connections start with a PROXY protocol header (v1 or v2) from one of `proxies`
    /// (a TCP load balancer: HAProxy `send-proxy-v2`, AWS NLB): the serve helpers read it
    /// before the TLS handshake (within the handshake's time), and the client it names is
    /// the address the decision, the logs (`client_addr`) and the cap per address see. A
    /// connection from anyone else, or without a valid header, is closed unanswered and
    /// logged (rate-limited).
    pub fn proxy_protocol(mut self, proxies: ProxyProtocol) -> Self {
        self.proxy = Some(Arc::new(proxies));
        self
    }
}

/// The serve loop's options for `gate`: its PROXY protocol if it has one (admission then
/// leaves the per-address count to the header), else the one `options` name.
pub(crate) fn options<R>(gate: &Gate<R>, mut options: ServeOptions) -> ServeOptions {
    if let Some(proxies) = &gate.proxy {
        options.proxy_protocol = Some(Arc::clone(proxies));
    }
    options
}

/// A runtime whose TCP streams the engine reads before the TLS handshake (for the PROXY
/// protocol): every runtime with a [`Compat`] view of its TCP streams, which is every
/// runtime that serves header mode too.
pub trait ReadBeforeTls: Runtime {
    /// Reads a PROXY header from `tcp` (a peer at `peer`, believed if `proxies` trusts it),
    /// up to its end: the stream back, and the address the header names (`None`: the
    /// peer's own).
    fn read_proxy_header(
        tcp: Self::Tcp,
        peer: IpAddr,
        proxies: &ProxyProtocol,
    ) -> impl Future<Output = Result<(Self::Tcp, Option<SocketAddr>), AcceptError>> + Send;
}

impl<R> ReadBeforeTls for R
where
    R: Compat<<R as Runtime>::Tcp>,
    <R as Compat<<R as Runtime>::Tcp>>::Io: Send,
{
    async fn read_proxy_header(
        tcp: R::Tcp,
        peer: IpAddr,
        proxies: &ProxyProtocol,
    ) -> Result<(R::Tcp, Option<SocketAddr>), AcceptError> {
        let mut io = R::wrap(tcp);
        let mut buf = Vec::new();
        loop {
            if let Some(header) = proxies
                .read(peer, &buf)
                .map_err(AcceptError::ProxyProtocol)?
            {
                return Ok((R::unwrap(io), header.source));
            }
            let start = buf.len();
            buf.resize(start + next_read(&buf), 0);
            // A peer closing first (a health check that only connects) is no refusal.
            if io.read_exact(&mut buf[start..]).await.is_err() {
                return Err(AcceptError::Eof);
            }
        }
    }
}

/// The client's address (and the stream, read up to the end of the header): the peer's,
/// or with the PROXY protocol (`proxies`, [`ServeOptions::proxy_protocol`]) the one its
/// header names (a v2 `LOCAL` header, a balancer's health check, names none: the peer's).
/// A header refused (an untrusted peer, a malformed or missing header, the named client at
/// its cap per address) is logged here (rate-limited) and the connection is to be closed
/// unanswered; a peer that closes first is no refusal and is not logged. The connection's
/// span (`client_addr`) and its count per address then name the client. Read within the
/// handshake's deadline: the serve loop's timer bounds the connection's first phase.
pub async fn proxied_client<R: ReadBeforeTls>(
    proxies: Option<&ProxyProtocol>,
    tcp: R::Tcp,
    peer: SocketAddr,
    conn: &Slot<R::Task>,
) -> Result<(R::Tcp, SocketAddr), AcceptError> {
    let Some(proxies) = proxies else {
        return Ok((tcp, peer));
    };
    let refused = |e: AcceptError| {
        if !matches!(e, AcceptError::Eof)
            && let Some(suppressed) = conn.should_log_refusal(Instant::now())
        {
            warn!(suppressed, "connection closed: {e}");
        }
        e
    };
    let (tcp, named) = R::read_proxy_header(tcp, peer.ip(), proxies)
        .await
        .map_err(refused)?;
    let client = named.unwrap_or(peer);
    // The serve loop's span names the peer (the proxy); its lines name the client too.
    tracing::Span::current().record("client_addr", tracing::field::display(client.ip()));
    conn.readdress(client.ip())
        .map_err(|r| refused(AcceptError::Refused(r)))?;
    Ok((tcp, client))
}
