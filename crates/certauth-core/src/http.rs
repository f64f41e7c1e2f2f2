//! The request head: an incremental parser fed whatever the socket gave so far.
//!
//! [`HeadParser::parse`] is called with the whole buffer read so far (the adapter owns the
//! buffer). It scans only the bytes it has not scanned before for the blank line ending the
//! head, so feeding a head one byte at a time costs O(n), and calls httparse once, when the
//! head is complete. Bytes after the head are the caller's leftover (`buf[consumed..]`): a
//! WebSocket client may send its first frame in the same packet.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::Range;

use crate::limits::Limits;
use crate::response::{ResponseHead, Status};

/// HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// A parsed request head. Owns a copy of the head's bytes; `Send + 'static`.
#[derive(Clone)]
pub struct RequestHead {
    raw: Box<[u8]>,
    method: Range<usize>,
    target: Range<usize>,
    version: Version,
    headers: Vec<(Range<usize>, Range<usize>)>,
    /// The target in origin form when it was sent in absolute form (`http://host/path`).
    origin: Option<Box<str>>,
}

impl fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl RequestHead {
    /// Parses a complete head in one go (`bytes` may hold more after the head). Returns the
    /// head and how many bytes it took, `Ok(None)` if the head is incomplete. For tests: the
    /// one public entry point is [`HeadParser`].
    #[cfg(test)]
    pub(crate) fn parse(bytes: &[u8], limits: &Limits) -> Result<Option<(Self, usize)>, HeadError> {
        match HeadParser::new(limits).parse(bytes)? {
            HeadProgress::Complete { head, consumed } => Ok(Some((head, consumed))),
            HeadProgress::NeedMore => Ok(None),
        }
    }

    /// A head from parts an HTTP library already parsed (hyper's `http::request::Parts`):
    /// for adapters whose server parses requests itself. Header names must be tokens and
    /// values must not hold CR or LF (the `http` crate guarantees both); others are skipped.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn from_parts<'a>(
        method: &str,
        target: &str,
        version: Version,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Self {
        let mut raw = Vec::with_capacity(256);
        let push = |raw: &mut Vec<u8>, b: &[u8]| {
            let start = raw.len();
            raw.extend_from_slice(b);
            start..raw.len()
        };
        let method = push(&mut raw, method.as_bytes());
        raw.push(b' ');
        let target = push(&mut raw, target.as_bytes());
        raw.extend_from_slice(match version {
            Version::Http10 => b" HTTP/1.0\r\n",
            Version::Http11 => b" HTTP/1.1\r\n",
        });
        let mut ranges = Vec::new();
        for (name, value) in headers {
            let ok_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !ok_name || value.iter().any(|b| *b == b'\r' || *b == b'\n') {
                continue;
            }
            let n = push(&mut raw, name.as_bytes());
            raw.extend_from_slice(b": ");
            let v = push(&mut raw, value);
            raw.extend_from_slice(b"\r\n");
            ranges.push((n, v));
        }
        raw.extend_from_slice(b"\r\n");
        let origin = raw
            .get(target.clone())
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(origin_form);
        Self {
            raw: raw.into_boxed_slice(),
            method,
            target,
            version,
            headers: ranges,
            origin,
        }
    }

    fn str_at(&self, r: &Range<usize>) -> &str {
        // Method, target and header names were checked to be ASCII (httparse tokens).
        self.raw
            .get(r.clone())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The method (`GET`).
    pub fn method(&self) -> &str {
        self.str_at(&self.method)
    }

    /// The request target in origin form (`/path?query`). A target sent in absolute form
    /// (`GET http://host/path`, which RFC 9112 §3.2.2 says a server must accept) is given
    /// without its scheme and authority, as hyper gives it, so routes and path policies see
    /// the same path on every adapter; [`Self::raw`] keeps what was sent.
    pub fn target(&self) -> &str {
        match &self.origin {
            Some(o) => o,
            None => self.str_at(&self.target),
        }
    }

    /// The authority the request names (`host[:port]`): the one in an absolute-form target
    /// (`GET https://admin.example/x`, which [`Self::target`] strips) or an authority-form
    /// one (`CONNECT admin.example:443`), else the `Host` header, as hyper routes a request
    /// (its URI's authority first). `None` without either. Policies see it as
    /// [`RequestInfo::authority`](crate::policy::RequestInfo).
    pub fn authority(&self) -> Option<&str> {
        let sent = self.str_at(&self.target);
        let sent = sent.split_once('#').map_or(sent, |(t, _)| t);
        let in_target = match after_scheme(sent) {
            Some(rest) => rest.find(['/', '?']).map_or(rest, |i| &rest[..i]),
            None if sent.starts_with('/') || sent == "*" => "",
            None => sent,
        };
        Some(in_target)
            .filter(|a| !a.is_empty())
            .or_else(|| host_header(self))
    }

    /// The path of the target, without the query.
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The HTTP version.
    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// Every header, in order, with its name as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (self.str_at(n), self.raw.get(v.clone()).unwrap_or_default()))
    }

    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let bytes = |r: &Range<usize>| self.raw.get(r.clone()).unwrap_or_default();
        self.headers
            .iter()
            .find(|(n, _)| bytes(n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| bytes(v))
    }

    /// Every value of a header (name case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        // Names compared as bytes: they are httparse tokens (ASCII), and looking one up
        // runs for every header of every request the framing watch follows.
        let bytes = |r: &Range<usize>| self.raw.get(r.clone()).unwrap_or_default();
        self.headers
            .iter()
            .filter(move |(n, _)| bytes(n).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |(_, v)| bytes(v))
    }

    /// The head's bytes as received, up to and including the blank line: hand them to an
    /// HTTP server that wants to parse the request itself.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Whether a header holds `token` in its comma-separated list (case-insensitive), e.g.
    /// `Connection: keep-alive, Upgrade` holds `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_all(name).any(|v| {
            v.split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }
}

/// Access to request headers by name (case-insensitive).
pub trait HeaderMap: Sync {
    /// The first value of a header, if present.
    fn get(&self, name: &str) -> Option<&[u8]>;

    /// Calls `each` with every header, in order (what an [`OwnedPolicyContext`](crate::policy::OwnedPolicyContext) copies for async
    /// policies). The default visits none: implement it for a map that can list itself.
    fn for_each(&self, each: &mut dyn FnMut(&str, &[u8])) {
        let _ = each;
    }
}

fn find_header<'v>(pairs: &[(&str, &'v [u8])], name: &str) -> Option<&'v [u8]> {
    pairs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

impl HeaderMap for &[(&str, &[u8])] {
    fn get(&self, name: &str) -> Option<&[u8]> {
        find_header(self, name)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &[u8])) {
        self.iter().for_each(|(n, v)| each(n, v));
    }
}

impl<const N: usize> HeaderMap for [(&str, &[u8]); N] {
    fn get(&self, name: &str) -> Option<&[u8]> {
        find_header(self, name)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &[u8])) {
        self.iter().for_each(|(n, v)| each(n, v));
    }
}

impl HeaderMap for Vec<(&str, &[u8])> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        find_header(self, name)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &[u8])) {
        self.iter().for_each(|(n, v)| each(n, v));
    }
}

/// No headers at all ([`RequestInfo::new`](crate::policy::RequestInfo::new)'s; a list of
/// pairs, even empty, is a [`HeaderMap`] too).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoHeaders;

impl HeaderMap for NoHeaders {
    fn get(&self, _: &str) -> Option<&[u8]> {
        None
    }
}

impl HeaderMap for RequestHead {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.header(name)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &[u8])) {
        self.headers().for_each(|(n, v)| each(n, v));
    }
}

/// A request head as [`Authenticator::decide`](crate::Authenticator::decide) reads it:
/// certauth's own [`RequestHead`], or a request an HTTP library parsed already (certauth-hyper
/// reads hyper's request through it, without copying its head).
pub trait Head: HeaderMap {
    /// The method (`GET`).
    fn method(&self) -> &str;
    /// The target in origin form (`/path?query`; see [`RequestHead::target`]).
    fn target(&self) -> &str;
    /// Every value of a header (name case-insensitive), in order.
    fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;
    /// The authority the request is for (`host[:port]`), the one an HTTP server routes by:
    /// the target's (HTTP/2's `:authority`, an HTTP/1.1 absolute-form target's) when it has
    /// one, else the `Host` header. The default reads the `Host` header only: a head that
    /// knows its target's authority overrides it ([`head_of`]'s, [`RequestHead`]).
    fn authority(&self) -> Option<&str> {
        host_header(self)
    }
}

/// The `Host` header's value, when it is one valid UTF-8 string.
fn host_header<H: HeaderMap + ?Sized>(head: &H) -> Option<&str> {
    head.get("host")
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|h| !h.is_empty())
}

/// A request the `http` crate holds (hyper's), read as a [`Head`] in place, without copying
/// its head (feature `http`). `routed_uri`: the URI the application routes by, when a router
/// handed over a rewritten one: axum's `nest` strips its prefix (`/admin/secrets` reaches a
/// layer inside the nested router as `/secrets`) and keeps the request's own in its
/// `OriginalUri`, which certauth-hyper passes here, so a path policy judges the path that
/// was requested. `None`: the request's own.
#[cfg(feature = "http")]
pub fn head_of<'a, B>(
    request: &'a ::http::Request<B>,
    routed_uri: Option<&'a ::http::Uri>,
) -> impl Head + Copy + fmt::Debug + 'a {
    HttpHead {
        method: request.method(),
        uri: routed_uri.unwrap_or_else(|| request.uri()),
        headers: request.headers(),
    }
}

/// [`head_of`]'s head.
#[cfg(feature = "http")]
#[derive(Clone, Copy, Debug)]
struct HttpHead<'a> {
    method: &'a ::http::Method,
    uri: &'a ::http::Uri,
    headers: &'a ::http::HeaderMap,
}

#[cfg(feature = "http")]
impl HeaderMap for HttpHead<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        let value = match framing_name(name) {
            Some(known) => self.headers.get(known),
            None => self.headers.get(name),
        };
        value.map(::http::HeaderValue::as_bytes)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &[u8])) {
        self.headers
            .iter()
            .for_each(|(n, v)| each(n.as_str(), v.as_bytes()));
    }
}

#[cfg(feature = "http")]
impl Head for HttpHead<'_> {
    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn target(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }

    /// The URI's authority (HTTP/2's `:authority`, an HTTP/1.1 absolute-form target's), as
    /// hyper and axum route by it; else the `Host` header.
    fn authority(&self) -> Option<&str> {
        self.uri
            .authority()
            .map(::http::uri::Authority::as_str)
            .or_else(|| host_header(self))
    }

    fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let all = match framing_name(name) {
            Some(known) => self.headers.get_all(known),
            None => self.headers.get_all(name),
        };
        all.iter().map(::http::HeaderValue::as_bytes)
    }
}

/// `name` as `http`'s constant, for the names every request is looked up by (its framing
/// and authority): a lookup by `&str` parses and lower-cases the name first. Any other
/// spelling is looked up as given (the same header: the map's names are lower case).
#[cfg(feature = "http")]
fn framing_name(name: &str) -> Option<&'static ::http::HeaderName> {
    use ::http::header;
    Some(match name {
        "transfer-encoding" => &header::TRANSFER_ENCODING,
        "content-length" => &header::CONTENT_LENGTH,
        "host" => &header::HOST,
        "connection" => &header::CONNECTION,
        "upgrade" => &header::UPGRADE,
        _ => return None,
    })
}

impl Head for RequestHead {
    fn method(&self) -> &str {
        Self::method(self)
    }

    fn target(&self) -> &str {
        Self::target(self)
    }

    fn authority(&self) -> Option<&str> {
        Self::authority(self)
    }

    fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        Self::header_all(self, name)
    }
}

/// Why a request head was refused. [`HeadError::response`] is the answer to write.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// The head is larger than [`Limits::max_head_bytes`]. 431.
    TooLarge {
        /// The cap.
        max: usize,
    },
    /// More header fields than [`Limits::max_headers`]. 431.
    TooManyHeaders {
        /// The cap.
        max: usize,
    },
    /// One header field is larger than [`Limits::max_header_bytes`]. 431.
    HeaderTooLarge {
        /// The header's name.
        name: String,
        /// The cap.
        max: usize,
    },
    /// Not an HTTP/1.x request head. 400.
    Malformed {
        /// What httparse reported.
        reason: &'static str,
    },
    /// A transfer coding other than `chunked`, which a proxy cannot pass on: only `chunked`
    /// is decoded and applied again on the way (RFC 9112 §6.1: 501). Only
    /// [`forward::prepare_request`](crate::forward::prepare_request) refuses it.
    UnsupportedTransferCoding,
}

impl HeadError {
    /// The status: 431 for limits, 400 for malformed requests, 501 for a transfer coding
    /// other than `chunked`.
    pub fn status(&self) -> Status {
        match self {
            Self::TooLarge { .. } | Self::TooManyHeaders { .. } | Self::HeaderTooLarge { .. } => {
                Status::RequestHeaderFieldsTooLarge
            }
            Self::Malformed { .. } => Status::BadRequest,
            Self::UnsupportedTransferCoding => Status::NotImplemented,
        }
    }

    /// The response to write before closing.
    pub fn response(&self) -> ResponseHead {
        ResponseHead::generic(self.status())
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { max } => write!(f, "request head is larger than {max} bytes"),
            Self::TooManyHeaders { max } => write!(f, "request has more than {max} header fields"),
            Self::HeaderTooLarge { name, max } => {
                write!(f, "header field {name:?} is larger than {max} bytes")
            }
            Self::Malformed { reason } => write!(f, "malformed request head: {reason}"),
            Self::UnsupportedTransferCoding => {
                f.write_str("a transfer coding other than chunked (only chunked is forwarded)")
            }
        }
    }
}

impl std::error::Error for HeadError {}

/// Checks a head that an HTTP library parsed itself (hyper) against the same limits
/// [`HeadParser`] applies while reading, so every adapter answers the same 431: the head's
/// size as sent on HTTP/1.1 (request line, `name: value` lines, blank line), the number of
/// header fields, and each field's name and value together.
pub fn check_head<'a>(
    limits: &Limits,
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), HeadError> {
    // "METHOD TARGET HTTP/1.1\r\n" ... "\r\n"
    let mut size = method.len() + 1 + target.len() + 11 + 2;
    let mut count = 0usize;
    for (name, value) in headers {
        count += 1;
        if count > limits.max_headers {
            return Err(HeadError::TooManyHeaders {
                max: limits.max_headers,
            });
        }
        if name.len() + value.len() > limits.max_header_bytes {
            return Err(HeadError::HeaderTooLarge {
                name: name.to_owned(),
                max: limits.max_header_bytes,
            });
        }
        size += name.len() + 2 + value.len() + 2;
    }
    if size > limits.max_head_bytes {
        return Err(HeadError::TooLarge {
            max: limits.max_head_bytes,
        });
    }
    Ok(())
}

/// Progress of [`HeadParser::parse`].
#[must_use]
#[derive(Debug)]
#[expect(
    clippy::exhaustive_enums,
    reason = "a head is either complete or not; matches should stay total"
)]
pub enum HeadProgress {
    /// Read more bytes and call again with the whole buffer.
    NeedMore,
    /// The head is complete: it took `consumed` bytes; the rest of the buffer is leftover.
    Complete {
        /// The head.
        head: RequestHead,
        /// How many bytes of the buffer the head took.
        consumed: usize,
    },
}

/// Header slots [`HeadParser`] keeps on the stack (4 KiB): twice the default
/// `max_headers`; a larger limit takes them from the heap.
const STACK_HEADERS: usize = 128;

/// Incremental request-head parser. One per connection.
#[derive(Clone, Debug)]
pub struct HeadParser {
    limits: Limits,
    /// How far the buffer has been scanned for the end of the head.
    scanned: usize,
    /// Where the request line starts, once a byte other than CR and LF has arrived: the
    /// empty lines before it (which httparse, and so hyper, skip, any number of them) are
    /// no end of a head.
    line: Option<usize>,
    /// How far the request line's method has been checked; `None` once it ended in a space.
    method: Option<MethodScan>,
}

#[derive(Clone, Copy, Debug)]
struct MethodScan {
    next: usize,
    in_token: bool,
}

impl HeadParser {
    /// A parser applying these limits.
    pub fn new(limits: &Limits) -> Self {
        Self {
            limits: *limits,
            scanned: 0,
            line: None,
            method: Some(MethodScan {
                next: 0,
                in_token: false,
            }),
        }
    }

    /// Looks for a complete head in `buf`, which must start with the same bytes as the
    /// previous call's (the adapter appends to one buffer).
    ///
    /// Bytes that cannot begin a request line (a TLS handshake sent to a plain-HTTP
    /// listener, binary noise) are refused as soon as they arrive, not after a timeout.
    pub fn parse(&mut self, buf: &[u8]) -> Result<HeadProgress, HeadError> {
        Ok(match self.parse_with(buf, owned_head)? {
            Parsed::NeedMore => HeadProgress::NeedMore,
            Parsed::Complete { read, consumed } => HeadProgress::Complete {
                head: read,
                consumed,
            },
        })
    }

    /// [`Self::parse`], handing the complete head to `read` in place (httparse's view of
    /// `buf`) instead of copying it into a [`RequestHead`]: what a caller that needs only
    /// part of the head (the framing watch: two headers of every request) keeps of it.
    /// Every check `parse` makes is made (the limits, the method, httparse's grammar).
    pub(crate) fn parse_with<R>(
        &mut self,
        buf: &[u8],
        read: impl FnOnce(&ParsedHead<'_, '_, '_>) -> R,
    ) -> Result<Parsed<R>, HeadError> {
        let max = self.limits.max_head_bytes;
        if let Some(scan) = self.method {
            self.method = check_method(buf, buf.len().min(max), scan)?;
        }
        let window_end = buf.len().min(max);
        // Empty lines before the request line are skipped, not taken for the blank line
        // that ends a head (the thirteenth attack review: with two of them the framing watch
        // saw an empty head, could not parse it and stopped following the connection, while
        // hyper skipped them and served what the watch would have refused). Every byte
        // before `scanned` is CR or LF while `line` is unknown.
        if self.line.is_none() {
            let from = self.scanned.min(window_end);
            let lead = buf.get(from..window_end).unwrap_or_default();
            self.line = lead
                .iter()
                .position(|b| !matches!(b, b'\r' | b'\n'))
                .map(|at| from + at);
        }
        let found = self.line.and_then(|line| {
            // A terminator may straddle the previous end: back up three bytes.
            let start = self.scanned.saturating_sub(3).max(line).min(buf.len());
            find_head_end(buf, line, start, window_end)
        });
        match found {
            Some(end) => {
                self.scanned = end;
                self.complete(&buf[..end], read)
            }
            None if buf.len() >= max => Err(HeadError::TooLarge { max }),
            None => {
                self.scanned = buf.len();
                Ok(Parsed::NeedMore)
            }
        }
    }

    fn complete<R>(
        &self,
        head: &[u8],
        read: impl FnOnce(&ParsedHead<'_, '_, '_>) -> R,
    ) -> Result<Parsed<R>, HeadError> {
        // Room for `max_headers` (httparse's TooManyHeaders past it): on the stack for the
        // usual limits, uninitialised (httparse writes what it returns), as hyper does.
        let max = self.limits.max_headers;
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        let mut heap = Vec::new();
        let storage = if max <= STACK_HEADERS {
            &mut stack[..max]
        } else {
            heap.resize(max, MaybeUninit::uninit());
            &mut heap[..]
        };
        let mut req = httparse::Request::new(&mut []);
        let status = req
            .parse_with_uninit_headers(head, storage)
            .map_err(|e| match e {
                httparse::Error::TooManyHeaders => HeadError::TooManyHeaders {
                    max: self.limits.max_headers,
                },
                other => HeadError::Malformed {
                    reason: error_reason(other),
                },
            })?;
        let consumed = match status {
            httparse::Status::Complete(n) => n,
            // A blank line httparse does not see as the end (e.g. leading empty lines it
            // skips): treat as malformed rather than loop.
            httparse::Status::Partial => {
                return Err(HeadError::Malformed {
                    reason: "incomplete request head",
                });
            }
        };
        if let Some(h) = req
            .headers
            .iter()
            .find(|h| h.name.len() + h.value.len() > self.limits.max_header_bytes)
        {
            return Err(HeadError::HeaderTooLarge {
                name: h.name.to_owned(),
                max: self.limits.max_header_bytes,
            });
        }
        let parsed = ParsedHead {
            bytes: &head[..consumed],
            req: &req,
        };
        Ok(Parsed::Complete {
            read: read(&parsed),
            consumed,
        })
    }
}

/// What [`HeadParser::parse_with`] found.
#[derive(Debug)]
pub(crate) enum Parsed<R> {
    /// Read more bytes and call again with the whole buffer.
    NeedMore,
    /// A complete head, as the reader read it, and how many bytes of the buffer it took.
    Complete { read: R, consumed: usize },
}

/// A complete head as httparse parsed it, in place in the reader's buffer (every slice
/// points into `bytes`): read by [`HeadParser::parse_with`]'s reader, never kept.
pub(crate) struct ParsedHead<'p, 'h, 'b> {
    /// The head's bytes, request line to blank line.
    bytes: &'b [u8],
    req: &'p httparse::Request<'h, 'b>,
}

impl HeaderMap for ParsedHead<'_, '_, '_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        let mut headers = self.req.headers.iter();
        headers
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

impl Head for ParsedHead<'_, '_, '_> {
    fn method(&self) -> &str {
        self.req.method.unwrap_or_default()
    }

    fn target(&self) -> &str {
        self.req.path.unwrap_or_default()
    }

    fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.req
            .headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// [`HeadParser::parse`]'s reader: the head copied into a [`RequestHead`].
fn owned_head(parsed: &ParsedHead<'_, '_, '_>) -> RequestHead {
    let (head, req) = (parsed.bytes, parsed.req);
    let base = head.as_ptr();
    let offset = |s: &[u8]| -> usize {
        // Every slice httparse returns points into `head`.
        s.as_ptr().addr().saturating_sub(base.addr())
    };
    let range = |s: &[u8]| {
        let o = offset(s);
        o..o + s.len()
    };
    let method = req.method.map(str::as_bytes).map(range).unwrap_or_default();
    let target = req.path.map(str::as_bytes).map(range).unwrap_or_default();
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let headers = req
        .headers
        .iter()
        .map(|h| (range(h.name.as_bytes()), range(h.value)))
        .collect();
    RequestHead {
        raw: head.into(),
        method,
        target,
        version,
        headers,
        origin: req.path.and_then(origin_form),
    }
}

/// The target as hyper routes it, when that differs from what was sent: without a fragment
/// (`/admin#x` is `/admin`), and an absolute-form target (`scheme://authority/path?q`, any
/// scheme: `ws://a/admin` is `/admin`) in origin form (`/path?q`; `/` for an empty path).
/// `None` when the target is already what hyper sees (origin form, `*`, authority form).
/// A path policy must judge the path the application is routed by.
fn origin_form(target: &str) -> Option<Box<str>> {
    let unfragmented = target.split_once('#').map_or(target, |(t, _)| t);
    let Some(rest) = after_scheme(unfragmented) else {
        return (unfragmented.len() != target.len()).then(|| unfragmented.into());
    };
    let tail = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
    Some(if tail.starts_with('/') {
        tail.into()
    } else {
        format!("/{tail}").into()
    })
}

/// What follows `scheme://`, with a scheme as hyper's `http::Uri` reads one: any run of
/// letters, digits, `+`, `-`, `.` and `~`, empty or starting with a digit included (looser
/// than RFC 3986 §3.1, which wants a letter first): hyper routes `1ab://a/admin` and
/// `://a/admin` as `/admin`, so a path policy must see `/admin` too.
fn after_scheme(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    scheme
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '~'))
        .then_some(rest)
}

/// Checks the request line's method in `buf[scan.next..limit]`: optional empty lines, then
/// a token, then a space. `None` once the space is seen (nothing more to check).
fn check_method(
    buf: &[u8],
    limit: usize,
    scan: MethodScan,
) -> Result<Option<MethodScan>, HeadError> {
    let MethodScan {
        mut next,
        mut in_token,
    } = scan;
    while next < limit {
        let b = buf[next];
        match b {
            b' ' if in_token => return Ok(None),
            // httparse skips empty lines before the request line.
            b'\r' | b'\n' if !in_token => {}
            _ if is_tchar(b) => in_token = true,
            0x16 if next == 0 => {
                return Err(HeadError::Malformed {
                    reason: "a TLS handshake sent to a plain-HTTP listener",
                });
            }
            _ => {
                return Err(HeadError::Malformed {
                    reason: "invalid method",
                });
            }
        }
        next += 1;
    }
    Ok(Some(MethodScan { next, in_token }))
}

/// RFC 9110 `tchar`: the bytes of a method token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Finds the end of the head (just past the blank line) in `buf[start..limit]`: an empty
/// line terminated by CRLF or a bare LF, as httparse accepts, after the request line, which
/// starts at `line`.
fn find_head_end(buf: &[u8], line: usize, start: usize, limit: usize) -> Option<usize> {
    // From line feed to line feed (no bounds check per byte: every head of every request is
    // scanned). "\n\n" or "\n\r\n" ends the head; the bytes from `line` on before `start`
    // count, the empty lines before `line` do not.
    let window = buf.get(start..limit)?;
    let line_feeds = window.iter().enumerate().filter(|(_, b)| **b == b'\n');
    line_feeds
        .map(|(at, _)| start + at)
        .find(|&i| {
            let before = buf.get(line..i).unwrap_or_default();
            before.ends_with(b"\n") || before.ends_with(b"\n\r")
        })
        .map(|i| i + 1)
}

fn error_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token in the request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "not HTTP/1.0 or HTTP/1.1",
    }
}

mod first_request;
mod framing;

#[cfg(feature = "http")]
pub(crate) use first_request::refuse_ambiguous_framing;
// Plumbing between our own crates: the engine's one-request stream (`OneRequest`) and the
// fuzz target drive it; a user meets it only through the engine's raw gates.
#[doc(hidden)]
pub use first_request::{FirstRequest, MAX_CHUNK_LINE_BYTES};
// Plumbing between our own crates: certauth-hyper's serve watches each connection's
// request framing with it (hyper does not report the framing it accepted).
#[doc(hidden)]
pub use framing::{MAX_PENDING_VERDICTS, RequestFraming};

#[cfg(test)]
mod tests;
