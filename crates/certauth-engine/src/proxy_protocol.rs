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

/// The serve loop's options for `gate`: with the PROXY protocol, admission leaves the
/// per-address count to the header (and without it, counts the peer whatever `options`
/// say: nothing else would count it).
pub(crate) fn options<R>(gate: &Gate<R>, options: ServeOptions) -> ServeOptions {
    options.with_proxy_protocol(gate.proxy.is_some())
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
/// or with the PROXY protocol the one its header names.
pub(crate) async fn client<R: ReadBeforeTls>(
    gate: &Gate<R>,
    tcp: R::Tcp,
    peer: SocketAddr,
    conn: &Slot<R::Task>,
) -> Result<(R::Tcp, Option<IpAddr>), AcceptError> {
    let Some(proxies) = &gate.proxy else {
        return Ok((tcp, Some(peer.ip())));
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
    let client = named.map_or_else(|| peer.ip(), |a| a.ip());
    // The serve loop's span names the peer (the proxy); its lines name the client too.
    tracing::Span::current().record("client_addr", tracing::field::display(client));
    conn.readdress(client)
        .map_err(|r| refused(AcceptError::Refused(r)))?;
    Ok((tcp, Some(client)))
}
