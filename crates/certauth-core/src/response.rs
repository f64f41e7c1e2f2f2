//! Responses as typed values: the only place status lines and headers are chosen.
//!
//! Raw adapters append [`ResponseHead::write_to`]'s bytes to the socket; the hyper adapter
//! turns the same value into an `http::Response`.

use std::borrow::Cow;
use std::fmt;

/// The statuses certauth answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// 101: the WebSocket handshake succeeded.
    SwitchingProtocols,
    /// 400: the request is malformed, or is not the WebSocket upgrade expected.
    BadRequest,
    /// 401: no acceptable client certificate.
    Unauthorized,
    /// 403: a known client that a policy does not allow here.
    Forbidden,
    /// 404: an authenticated client asked a WebSocket helper for a path it does not serve.
    NotFound,
    /// 426: an unsupported `Sec-WebSocket-Version`.
    UpgradeRequired,
    /// 429: an authenticated client already holds as many connections as it may
    /// (`ServeOptions::max_connections_per_identity`).
    TooManyRequests,
    /// 431: the request head or one of its fields is too large, or there are too many.
    RequestHeaderFieldsTooLarge,
    /// 500: certauth could not decide (for example, an async policy was dropped).
    InternalServerError,
    /// 501: a request the front door cannot forward as sent (a transfer coding other than
    /// `chunked`).
    NotImplemented,
    /// 503: the decision did not come in time (an async policy or an online revocation
    /// check still waiting when the head's time limit ran out).
    ServiceUnavailable,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::SwitchingProtocols => 101,
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::UpgradeRequired => 426,
            Self::TooManyRequests => 429,
            Self::RequestHeaderFieldsTooLarge => 431,
            Self::InternalServerError => 500,
            Self::NotImplemented => 501,
            Self::ServiceUnavailable => 503,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Self::SwitchingProtocols => "Switching Protocols",
            Self::BadRequest => "Bad Request",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not Found",
            Self::UpgradeRequired => "Upgrade Required",
            Self::TooManyRequests => "Too Many Requests",
            Self::RequestHeaderFieldsTooLarge => "Request Header Fields Too Large",
            Self::InternalServerError => "Internal Server Error",
            Self::NotImplemented => "Not Implemented",
            Self::ServiceUnavailable => "Service Unavailable",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.reason())
    }
}

/// A response head, and for errors a short plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    status: Status,
    headers: Vec<(&'static str, Cow<'static, str>)>,
    body: Cow<'static, str>,
}

impl ResponseHead {
    /// An error response: `Content-Type: text/plain`, `X-Content-Type-Options: nosniff`,
    /// `Content-Length`, `Connection: close` and the body. Adapters close the connection after
    /// writing it. (The engine's lifecycle answers its 429 with it.)
    pub fn error(status: Status, body: impl Into<Cow<'static, str>>) -> Self {
        let body = body.into();
        Self {
            status,
            headers: vec![
                ("Content-Type", Cow::Borrowed("text/plain; charset=utf-8")),
                // A refusal's body may be an application's page (`deny_body`): never let a
                // browser read it as another type than the one given.
                ("X-Content-Type-Options", Cow::Borrowed("nosniff")),
                ("Content-Length", Cow::Owned(body.len().to_string())),
                ("Connection", Cow::Borrowed("close")),
            ],
            body,
        }
    }

    /// An error response whose body is the reason phrase (`Unauthorized`), as
    /// client-certificate-auth answers.
    pub(crate) fn generic(status: Status) -> Self {
        Self::error(status, status.reason())
    }

    /// A 101 for a WebSocket upgrade.
    pub(crate) fn switching_protocols(accept: String, protocol: Option<String>) -> Self {
        let mut headers = vec![
            ("Upgrade", Cow::Borrowed("websocket")),
            ("Connection", Cow::Borrowed("Upgrade")),
            ("Sec-WebSocket-Accept", Cow::Owned(accept)),
        ];
        if let Some(p) = protocol {
            headers.push(("Sec-WebSocket-Protocol", Cow::Owned(p)));
        }
        Self {
            status: Status::SwitchingProtocols,
            headers,
            body: Cow::Borrowed(""),
        }
    }

    /// Adds a header (before writing).
    pub(crate) fn with_header(
        mut self,
        name: &'static str,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// This response with another body and its `Content-Type` (`Content-Length` follows);
    /// the status and the other headers stay. For
    /// [`AuthenticatorBuilder::deny_body`](crate::authenticator::AuthenticatorBuilder::deny_body).
    pub fn with_body(
        mut self,
        content_type: &'static str,
        body: impl Into<Cow<'static, str>>,
    ) -> Self {
        let body = body.into();
        for (name, value) in &mut self.headers {
            if name.eq_ignore_ascii_case("content-type") {
                *value = Cow::Borrowed(content_type);
            } else if name.eq_ignore_ascii_case("content-length") {
                *value = Cow::Owned(body.len().to_string());
            }
        }
        self.body = body;
        self
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.headers.iter().map(|(n, v)| (*n, &**v))
    }

    /// The body (empty for 101).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// Whether the connection must be closed after this response (every error response).
    pub fn closes_connection(&self) -> bool {
        self.status != Status::SwitchingProtocols
    }

    /// Appends the HTTP/1.1 bytes (status line, headers, blank line, body) to `out`.
    /// Never writes to any I/O.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(64 + self.body.len() + self.headers.len() * 32);
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.code().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.reason().as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body.as_bytes());
    }

    /// [`Self::write_to`] into a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

/// Makes a client-supplied value safe to echo in a header (the chosen WebSocket
/// subprotocol): control characters (CR, LF, NUL, …) become spaces.
pub(crate) fn sanitize_header_value(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
