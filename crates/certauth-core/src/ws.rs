//! The server side of the WebSocket opening handshake (RFC 6455 §4.2).

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest as _, Sha1};

use crate::http::{RequestHead, Version};
use crate::response::{ResponseHead, Status, sanitize_header_value};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID.as_bytes());
    BASE64.encode(h.finalize())
}

/// Why a request is not an acceptable WebSocket upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeError {
    /// Not `GET`. 400.
    NotGet,
    /// Not HTTP/1.1. 400.
    NotHttp11,
    /// No `Upgrade: websocket`. 400.
    NotAnUpgrade,
    /// `Connection` does not hold `upgrade`. 400.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` is absent, repeated, or not 16 bytes in base64. 400.
    BadKey,
    /// `Sec-WebSocket-Version` is not 13. 426 with `Sec-WebSocket-Version: 13`.
    UnsupportedVersion,
    /// The path is not one the WebSocket helper serves ([`WebSocketPaths`]). 404.
    NotFound,
}

impl UpgradeError {
    /// 426 for a version mismatch, 400 otherwise.
    pub fn status(&self) -> Status {
        match self {
            Self::UnsupportedVersion => Status::UpgradeRequired,
            Self::NotFound => Status::NotFound,
            _ => Status::BadRequest,
        }
    }

    /// The response to write before closing.
    pub fn response(&self) -> ResponseHead {
        let r = ResponseHead::generic(self.status());
        match self {
            Self::UnsupportedVersion => r.with_header("Sec-WebSocket-Version", "13"),
            _ => r,
        }
    }
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotGet => "websocket upgrade must use GET",
            Self::NotHttp11 => "websocket upgrade must use HTTP/1.1",
            Self::NotAnUpgrade => "request is not a websocket upgrade (no `Upgrade: websocket`)",
            Self::MissingConnectionUpgrade => "`Connection` header does not hold `upgrade`",
            Self::BadKey => "`Sec-WebSocket-Key` must be one base64 value of 16 bytes",
            Self::UnsupportedVersion => "`Sec-WebSocket-Version` must be 13",
            Self::NotFound => "no websocket is served at this path",
        })
    }
}

impl std::error::Error for UpgradeError {}

/// Which request paths a WebSocket helper upgrades (`serve_websocket`,
/// `Gate::accept_websocket`): every path (the default), or only those listed. Paths are
/// compared exactly, without the query (`/ws?token=1` is `/ws`); a request for any other
/// path is answered 404 ([`UpgradeError::NotFound`]). The check runs after the client is
/// authenticated, so an unauthenticated client cannot map the routes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebSocketPaths {
    only: Option<Arc<[String]>>,
}

impl WebSocketPaths {
    /// Every path.
    pub fn any() -> Self {
        Self::default()
    }

    /// Only these paths (for example `["/ws"]`). An empty list serves no path.
    pub fn only<P: Into<String>>(paths: impl IntoIterator<Item = P>) -> Self {
        Self {
            only: Some(paths.into_iter().map(Into::into).collect()),
        }
    }

    /// Whether `head`'s path is served: `Ok`, or [`UpgradeError::NotFound`].
    pub fn check(&self, head: &RequestHead) -> Result<(), UpgradeError> {
        match &self.only {
            Some(paths) if !paths.iter().any(|p| p == head.path()) => Err(UpgradeError::NotFound),
            _ => Ok(()),
        }
    }
}

/// Whether a request asks for a WebSocket upgrade (`Upgrade: websocket`), valid or not.
pub fn is_upgrade_request(head: &RequestHead) -> bool {
    head.has_token("upgrade", "websocket")
}

/// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order.
pub fn offered_protocols(head: &RequestHead) -> Vec<&str> {
    head.header_all("sec-websocket-protocol")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Validates the upgrade and returns the 101 to write, selecting no subprotocol.
pub fn accept_websocket(head: &RequestHead) -> Result<ResponseHead, UpgradeError> {
    accept_websocket_with(head, |_| None)
}

/// [`accept_websocket`] for a request the `http` crate holds (hyper's; feature `http`).
#[cfg(feature = "http")]
pub fn accept_http_websocket<B>(
    request: &::http::Request<B>,
) -> Result<ResponseHead, UpgradeError> {
    let version = if request.version() == ::http::Version::HTTP_10 {
        Version::Http10
    } else {
        Version::Http11
    };
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()));
    let head = RequestHead::from_parts(request.method().as_str(), target, version, headers);
    accept_websocket(&head)
}

/// Validates the upgrade and returns the 101 to write. `select` sees the offered
/// subprotocols and returns the one to use, if any; a choice the client did not offer is
/// ignored.
pub fn accept_websocket_with(
    head: &RequestHead,
    select: impl FnOnce(&[&str]) -> Option<String>,
) -> Result<ResponseHead, UpgradeError> {
    if head.method() != "GET" {
        return Err(UpgradeError::NotGet);
    }
    if head.version() != Version::Http11 {
        return Err(UpgradeError::NotHttp11);
    }
    if !is_upgrade_request(head) {
        return Err(UpgradeError::NotAnUpgrade);
    }
    if !head.has_token("connection", "upgrade") {
        return Err(UpgradeError::MissingConnectionUpgrade);
    }
    if head.header("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
        return Err(UpgradeError::UnsupportedVersion);
    }
    let mut keys = head.header_all("sec-websocket-key");
    let key = keys
        .next()
        .map(<[u8]>::trim_ascii)
        .ok_or(UpgradeError::BadKey)?;
    if keys.next().is_some() || BASE64.decode(key).map(|k| k.len()) != Ok(16) {
        return Err(UpgradeError::BadKey);
    }
    let offered = offered_protocols(head);
    let protocol = if offered.is_empty() {
        None
    } else {
        select(&offered)
            .filter(|p| offered.contains(&p.as_str()))
            .map(|p| sanitize_header_value(&p))
    };
    Ok(ResponseHead::switching_protocols(accept_key(key), protocol))
}

/// The largest message (and frame) [`default_websocket_config`] lets a client send: 1 MiB.
pub const MAX_WEBSOCKET_MESSAGE: usize = 1 << 20;

/// What [`default_websocket_config`]'s write buffer may hold: the largest message (an echo
/// of one, with a prefix) and 64 KiB of room for control frames and headers.
pub const MAX_WEBSOCKET_WRITE_BUFFER: usize = MAX_WEBSOCKET_MESSAGE + 64 * 1024;

/// WebSocket settings for servers holding many idle connections (feature `websocket`): a
/// 2 KiB read buffer (tungstenite's default 128 KiB costs about 150 KiB per idle connection
/// once touched; an idle connection keeps its read buffer, and a larger message is read in
/// 2 KiB steps into room reserved for its whole frame), messages up to 1 MiB ([`MAX_WEBSOCKET_MESSAGE`]), in one frame or many
/// (browsers send a message as one frame, so the frame limit is the message limit), and a
/// write buffer bounded by [`MAX_WEBSOCKET_WRITE_BUFFER`]: tungstenite's default is
/// unbounded, so a client that sends pings and never reads made the server queue one pong
/// per ping for as long as it kept sending. Past the bound tungstenite keeps one pong
/// waiting (the newest), a send fails with `WriteBufferFull`, and the ping check of
/// `certauth_engine::DrainingWebSocket` closes the connection. The bound also caps each message
/// the server sends: one over [`MAX_WEBSOCKET_WRITE_BUFFER`] fails with `WriteBufferFull`
/// however fast the client reads; a server that sends larger messages passes its own
/// configuration with a larger `max_write_buffer_size` (`Gate::websocket_config`,
/// `upgrade_websocket_with`). Every adapter uses it by default;
/// tungstenite's own default allows 64 MiB messages. A client over the limit gets close
/// code 1009 (`certauth_engine::DrainingWebSocket`).
#[cfg(feature = "websocket")]
pub fn default_websocket_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WEBSOCKET_WRITE_BUFFER)
        .max_message_size(Some(MAX_WEBSOCKET_MESSAGE))
        .max_frame_size(Some(MAX_WEBSOCKET_MESSAGE))
}

#[cfg(test)]
mod tests;
