//! What a test server reports for each connection it handled, as a type: the suites compare
//! these, not strings.

use std::fmt;

use certauth_engine::AcceptError;

/// One connection's outcome, as the server under test reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Let in: the client certificate's common name.
    Allowed(String),
    /// Refused by the authenticator with this stable code (`NO_CERTIFICATE`, …).
    Denied(String),
    /// The request head was refused with this status (400, 431).
    Head(u16),
    /// The WebSocket upgrade was refused with this status (400, 404, 426).
    Upgrade(u16),
    /// The head did not arrive before its deadline.
    HeadTimeout,
    /// The client closed before sending a head.
    Eof,
    /// The TLS handshake failed or timed out.
    Handshake,
    /// Another I/O error.
    Io,
    /// The server reported nothing within the wait.
    NoReport,
}

impl Outcome {
    /// The suite's trusted client, let in.
    pub fn trusted() -> Self {
        Self::Allowed("trusted-client".into())
    }

    /// Refused with `code`.
    pub fn denied(code: &str) -> Self {
        Self::Denied(code.into())
    }
}

/// How the raw gates (tokio, smol) report a connection that did not pass.
impl From<&AcceptError> for Outcome {
    fn from(e: &AcceptError) -> Self {
        match e {
            AcceptError::Denied(d) => Self::denied(d.code()),
            AcceptError::Head(h) => Self::Head(h.status().code()),
            AcceptError::Upgrade(u) => Self::Upgrade(u.status().code()),
            AcceptError::HeadTimeout => Self::HeadTimeout,
            AcceptError::Eof => Self::Eof,
            AcceptError::Handshake(_) | AcceptError::HandshakeTimeout => Self::Handshake,
            _ => Self::Io,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allowed(cn) => write!(f, "ALLOW {cn}"),
            Self::Denied(code) => f.write_str(code),
            Self::Head(status) => write!(f, "HEAD {status}"),
            Self::Upgrade(status) => write!(f, "UPGRADE {status}"),
            Self::HeadTimeout => f.write_str("HEAD_TIMEOUT"),
            Self::Eof => f.write_str("EOF"),
            Self::Handshake => f.write_str("HANDSHAKE"),
            Self::Io => f.write_str("IO"),
            Self::NoReport => f.write_str("NO REPORT"),
        }
    }
}
