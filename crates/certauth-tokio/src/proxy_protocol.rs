//! The PROXY protocol before the TLS handshake: glue that reads what the core's
//! `proxy::protocol` asks for (never past the header) and reports the client's address to
//! the lifecycle. Whom to believe and what the bytes mean is the core's.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use certauth_core::proxy::TrustedProxies;
use certauth_core::proxy::protocol::{next_read, read_from};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tracing::warn;

use crate::{AcceptError, Conn, Gate, ServeOptions};

impl Gate {
    /// Connections start with a PROXY protocol header (v1 or v2) from one of `trusted`:
    /// [`serve`](crate::serve) reads it before the TLS handshake (within the handshake's
    /// time) and the client it names is the address the decision, the logs and the cap per
    /// address see. A connection from anyone else, or without a valid header, is closed
    /// unanswered (logged, rate-limited).
    pub fn proxy_protocol(mut self, trusted: TrustedProxies) -> Self {
        self.proxy = Some(Arc::new(trusted));
        self
    }
}

/// The serve loop's options for `gate`: admission leaves the per-address count to the header.
pub(crate) fn options(gate: &Gate, options: ServeOptions) -> ServeOptions {
    options.with_proxy_protocol(options.proxy_protocol || gate.proxy.is_some())
}

/// The client's address: the peer's, or with the PROXY protocol the one its header names.
pub(crate) async fn client(
    gate: &Gate,
    tcp: &mut TcpStream,
    peer: SocketAddr,
    conn: &Conn,
) -> Result<Option<IpAddr>, AcceptError> {
    let Some(trusted) = &gate.proxy else {
        return Ok(Some(peer.ip()));
    };
    let refused = |e: AcceptError| {
        if let Some(suppressed) = conn.should_log_refusal(Instant::now()) {
            warn!(suppressed, "connection closed: {e}");
        }
        e
    };
    let mut buf = Vec::new();
    let header = loop {
        match read_from(trusted, peer.ip(), &buf) {
            Ok(Some(header)) => break header,
            Ok(None) => {}
            Err(e) => return Err(refused(AcceptError::ProxyProtocol(e))),
        }
        let start = buf.len();
        buf.resize(start + next_read(&buf), 0);
        // A peer closing first (a health check that only connects) is not worth a warning.
        if tcp.read_exact(&mut buf[start..]).await.is_err() {
            return Err(AcceptError::Eof);
        }
    };
    let client = header.source.map_or_else(|| peer.ip(), |a| a.ip());
    // The serve loop's span names the peer (the proxy); its lines name the client too.
    tracing::Span::current().record("client_addr", tracing::field::display(client));
    conn.readdress(client)
        .map_err(|r| refused(AcceptError::Refused(r)))?;
    Ok(Some(client))
}
