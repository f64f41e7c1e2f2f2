//! Where the request a gate decided ends. A raw gate decides one request head; the stream
//! it hands on must carry that request and nothing after it, or a second request pipelined
//! on the same connection (a proxy reusing its backend connection for another user, a
//! client writing `GET /public` and `GET /admin` at once) would reach the caller's HTTP
//! server undecided. [`FirstRequest`] follows the request's body framing (RFC 9112 §6.3) over
//! the bytes read after the head and says how many belong to it; the adapter ends the stream
//! there. The stream goes on only where the caller switched protocols: a `101` written in
//! answer to an upgrade request (a WebSocket the decision admitted).
//!
//! Framing a server behind could read differently (the request-smuggling cases) is refused
//! with 400 before anything is decided: `Content-Length` with `Transfer-Encoding`, two
//! different `Content-Length`s, one that is not a number, a `Transfer-Encoding` whose last
//! coding is not `chunked`. A chunked body that breaks the grammar ends the request where it
//! breaks: the caller's parser then sees a truncated body and fails, and nothing past it is
//! ever read.

use super::{Head, HeadError, RequestHead};

/// The longest chunk-size line (size, extensions) or trailer line a chunked body may hold;
/// past it the body ends there (a parser behind sees it truncated).
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;

/// The first request on a connection, as its bytes arrive: which of them belong to it, and
/// whether the caller switched protocols after it. Sans-IO: the adapter feeds what it read
/// and what it wrote.
#[derive(Clone, Debug)]
pub struct FirstRequest {
    body: Body,
    upgrade_requested: bool,
    response: ResponseWatch,
}

impl FirstRequest {
    /// The framing of `head`'s body, or 400 for framing that servers read differently.
    pub fn new(head: &RequestHead) -> Result<Self, HeadError> {
        Ok(Self {
            body: Body::of(head)?,
            upgrade_requested: head.header("upgrade").is_some()
                && head.has_token("connection", "upgrade"),
            response: ResponseWatch::default(),
        })
    }

    /// Of `bytes`, read from the client next, how many belong to the request (a prefix).
    /// Fewer than `bytes.len()` means the request ended inside them: the rest is another
    /// request's (or a protocol's after a switch) and must not be handed on as this one.
    pub fn take(&mut self, bytes: &[u8]) -> usize {
        self.body.take(bytes)
    }

    /// Whether the request has been read to its end.
    pub fn is_complete(&self) -> bool {
        self.body.is_complete()
    }

    /// Notes `bytes` the caller wrote to the client (in order), to see whether it answered
    /// an upgrade request with `101 Switching Protocols`.
    pub fn wrote(&mut self, bytes: &[u8]) {
        self.response.wrote(bytes);
    }

    /// Whether the connection switched protocols: the request asked to upgrade and the
    /// caller answered 101. From then on every byte is the new protocol's, not HTTP.
    pub fn switched(&self) -> bool {
        self.upgrade_requested && self.response.is_switching_protocols()
    }
}

/// 400 for framing that servers read differently (the smuggling cases [`FirstRequest::new`]
/// refuses), for any head: the forwarding proxy refuses them on every request it would
/// pass on (`crate::forward`).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn refuse_ambiguous_framing<H: Head>(head: &H) -> Result<(), HeadError> {
    Body::of(head).map(drop)
}

/// The body's framing and how far it has been read (also the framing watch's,
/// [`super::RequestFraming`]).
#[derive(Clone, Debug)]
pub(super) enum Body {
    /// `remaining` bytes to go (none for a request without a body).
    Length {
        remaining: u64,
    },
    Chunked(Chunked),
}

impl Body {
    /// The framing `head` declares, or 400 for framing that servers read differently.
    pub(super) fn of<H: Head>(head: &H) -> Result<Self, HeadError> {
        let malformed = |reason| Err(HeadError::Malformed { reason });
        let mut codings = head.header_all("transfer-encoding").peekable();
        let chunked = match codings.peek() {
            None => None,
            Some(_) => {
                let last = codings
                    .flat_map(|v| v.split(|b| *b == b','))
                    .map(<[u8]>::trim_ascii)
                    .filter(|c| !c.is_empty())
                    .last();
                Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")))
            }
        };
        let mut length = None;
        for value in head.header_all("content-length") {
            for part in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                let Some(n) = decimal(part) else {
                    return malformed("Content-Length is not a number");
                };
                if length.is_some_and(|l| l != n) {
                    return malformed("two different Content-Lengths");
                }
                length = Some(n);
            }
        }
        match (chunked, length) {
            (Some(_), Some(_)) => malformed("Content-Length with Transfer-Encoding"),
            (Some(false), None) => malformed("Transfer-Encoding does not end in chunked"),
            (Some(true), None) => Ok(Self::Chunked(Chunked::Size {
                value: 0,
                digits: 0,
            })),
            (None, length) => Ok(Self::Length {
                remaining: length.unwrap_or(0),
            }),
        }
    }

    /// Whether the body has been read to its end (or broke its grammar, which ends it).
    pub(super) fn is_complete(&self) -> bool {
        match self {
            Self::Length { remaining } => *remaining == 0,
            Self::Chunked(c) => matches!(c, Chunked::Done | Chunked::Broken),
        }
    }

    /// Whether a chunked body ended by breaking its grammar: where it ends then is this
    /// reader's guess, which another server's need not match.
    pub(super) fn is_broken(&self) -> bool {
        matches!(self, Self::Chunked(Chunked::Broken))
    }

    /// Of `bytes`, read next, how many belong to the body (a prefix).
    pub(super) fn take(&mut self, bytes: &[u8]) -> usize {
        match self {
            Self::Length { remaining } => {
                let n = usize::try_from(*remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                *remaining = remaining.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
                n
            }
            Self::Chunked(c) => {
                // A step takes what it can of the rest (a byte at least), nothing once the
                // bytes or the body end (or it breaks): at most one step a byte, and one
                // more to see the end.
                let mut used = 0;
                for _ in 0..=bytes.len() {
                    let n = c.step(bytes.get(used..).unwrap_or_default());
                    if n == 0 {
                        break;
                    }
                    used += n;
                }
                used
            }
        }
    }
}

/// `1*DIGIT`, within u64.
fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, b| {
        let d = char::from(*b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Where a chunked body's reader is (RFC 9112 §7.1).
#[derive(Clone, Debug)]
pub(super) enum Chunked {
    /// In a chunk-size line: the size so far and its digit count.
    Size {
        value: u64,
        digits: u8,
    },
    /// In the line's extensions, after `;`, until CR.
    Extension {
        value: u64,
        line: usize,
    },
    /// After the size line's CR.
    SizeLf {
        value: u64,
    },
    /// In a chunk's data.
    Data {
        remaining: u64,
    },
    /// After a chunk's data: CR, then LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// In a trailer field line.
    Trailer {
        line: usize,
    },
    /// After a trailer line's CR.
    TrailerLf,
    /// After the final empty line's CR.
    EndLf,
    /// The body ended.
    Done,
    /// The body broke its grammar, which ends it too.
    Broken,
}

impl Chunked {
    /// Consumes a prefix of `bytes` and moves on: at least one byte, unless the body is
    /// done or the next byte breaks the grammar (the body then ends before it).
    fn step(&mut self, bytes: &[u8]) -> usize {
        let Some(&b) = bytes.first() else {
            return 0;
        };
        let size_line = |value, digits| Self::Size { value, digits };
        let next = match *self {
            Self::Size { value, digits } => match (char::from(b).to_digit(16), b) {
                (Some(d), _) if digits < 16 => {
                    Some(size_line((value << 4) | u64::from(d), digits + 1))
                }
                // Extensions, and the whitespace RFC 9112 lets stand before them.
                (None, b';' | b' ' | b'\t') if digits > 0 => Some(Self::Extension {
                    value,
                    line: usize::from(digits) + 1,
                }),
                (None, b'\r') if digits > 0 => Some(Self::SizeLf { value }),
                _ => None,
            },
            Self::Extension { value, line } => match b {
                b'\r' => Some(Self::SizeLf { value }),
                b'\n' => None,
                _ if line >= MAX_CHUNK_LINE_BYTES => None,
                _ => Some(Self::Extension {
                    value,
                    line: line + 1,
                }),
            },
            Self::SizeLf { value } => match b {
                b'\n' if value == 0 => Some(Self::TrailerStart),
                b'\n' => Some(Self::Data { remaining: value }),
                _ => None,
            },
            Self::Data { remaining } => {
                let n = usize::try_from(remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                let left = remaining.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
                *self = if left == 0 {
                    Self::DataCr
                } else {
                    Self::Data { remaining: left }
                };
                return n;
            }
            Self::DataCr => (b == b'\r').then_some(Self::DataLf),
            Self::DataLf => (b == b'\n').then(|| size_line(0, 0)),
            Self::TrailerStart => match b {
                b'\r' => Some(Self::EndLf),
                b'\n' => None,
                _ => Some(Self::Trailer { line: 1 }),
            },
            Self::Trailer { line } => match b {
                b'\r' => Some(Self::TrailerLf),
                b'\n' => None,
                _ if line >= MAX_CHUNK_LINE_BYTES => None,
                _ => Some(Self::Trailer { line: line + 1 }),
            },
            Self::TrailerLf => (b == b'\n').then_some(Self::TrailerStart),
            Self::EndLf => (b == b'\n').then_some(Self::Done),
            Self::Done | Self::Broken => return 0,
        };
        match next {
            Some(next) => {
                *self = next;
                1
            }
            None => {
                *self = Self::Broken;
                0
            }
        }
    }
}

/// The first bytes of the caller's response, up to what tells a 101 from anything else.
#[derive(Clone, Debug, Default)]
struct ResponseWatch {
    matched: usize,
    verdict: Option<bool>,
}

/// A response that switches protocols begins so (WebSocket and every HTTP/1.1 upgrade).
const SWITCHING: &[u8] = b"HTTP/1.1 101 ";

impl ResponseWatch {
    fn wrote(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.verdict.is_some() {
                return;
            }
            if SWITCHING.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == SWITCHING.len() {
                    self.verdict = Some(true);
                }
            } else {
                self.verdict = Some(false);
            }
        }
    }

    fn is_switching_protocols(&self) -> bool {
        self.verdict == Some(true)
    }
}

#[cfg(test)]
mod tests;
