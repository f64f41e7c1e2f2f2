//! Why a connection did not pass an adapter's gate: one error type for every runtime.

use std::{fmt, io};

use certauth_core::{Denial, HeadError, UpgradeError};

/// Why a connection did not pass the gate. For `Denied`, `Head` and `Upgrade` the core's
/// response was written before the connection was closed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AcceptError {
    /// The socket failed.
    Io(io::Error),
    /// The TLS handshake failed (for example, the client could not prove it holds its
    /// certificate's key).
    Handshake(io::Error),
    /// The TLS handshake did not finish within the limit.
    HandshakeTimeout,
    /// No complete request head within the limit; closed without a response.
    HeadTimeout,
    /// The decision did not come within the head's time limit (an async policy or an online
    /// revocation check still waiting): 503 written.
    DecisionTimeout,
    /// The client closed before sending a complete head.
    Eof,
    /// The head was malformed or too large (400/431 written).
    Head(HeadError),
    /// Authentication denied (the denial's response written).
    Denied(Box<Denial>),
    /// Authenticated, but not a valid WebSocket upgrade (400/426 written).
    Upgrade(UpgradeError),
    /// On a PROXY-protocol listener: a peer that is not a trusted proxy, or no acceptable
    /// header (closed without a byte written).
    ProxyProtocol(certauth_core::proxy::protocol::ProxyProtocolError),
    /// Refused by the lifecycle's caps once the connection's client was known (the PROXY
    /// header named an address at its cap of pending connections); closed unanswered.
    Refused(crate::lifecycle::Refusal),
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            Self::HandshakeTimeout => f.write_str("TLS handshake timed out"),
            Self::HeadTimeout => f.write_str("no request head within the time limit"),
            Self::DecisionTimeout => f.write_str(
                "no decision within the head's time limit (an async policy or a revocation \
                 fetch was still waiting); 503 written",
            ),
            Self::Eof => f.write_str("client closed the connection before sending a request head"),
            Self::Head(e) => fmt::Display::fmt(e, f),
            Self::Denied(d) => fmt::Display::fmt(d, f),
            Self::Upgrade(e) => fmt::Display::fmt(e, f),
            Self::ProxyProtocol(e) => fmt::Display::fmt(e, f),
            Self::Refused(r) => write!(f, "connection refused: {r}"),
        }
    }
}

/// No `source()`: each message already prints its cause (adapters log one line, and a chain
/// would print it twice); the typed cause is the variant's value.
impl std::error::Error for AcceptError {}

impl From<io::Error> for AcceptError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<HeadError> for AcceptError {
    fn from(e: HeadError) -> Self {
        Self::Head(e)
    }
}

impl From<UpgradeError> for AcceptError {
    fn from(e: UpgradeError) -> Self {
        Self::Upgrade(e)
    }
}
