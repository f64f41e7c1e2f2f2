//! What to fetch, as bytes, and what came back: the HTTP/1.0 of OCSP (RFC 6960 appendix
//! A.1, POST) and CRL distribution points (RFC 5280 4.2.1.13, GET).
//!
//! The core writes the whole request and reads the whole response; a [`Fetch`]
//! implementation only connects to [`FetchRequest::host`] and [`FetchRequest::port`],
//! writes [`FetchRequest::wire`] and reads until the server closes. HTTP/1.0 because a
//! server then closes after its answer and never chunks it, so reading to the end is the
//! whole protocol. Only `http:` URLs are fetched: OCSP answers and CRLs are signed, and
//! RFC 5280 and 6960 publish them over plain HTTP (an `https:` responder would need the
//! client to check revocation of the responder's own certificate first).

use std::time::Duration;

use crate::policy::BoxFuture;

/// Fetches what a revocation check needs, for the core: connect to
/// [`FetchRequest::host`]:[`FetchRequest::port`] within [`FetchRequest::timeout`], write
/// [`FetchRequest::wire`], read until the server closes, and answer every byte read. Stop
/// reading, and answer what you hold, once you hold more than
/// [`FetchRequest::max_response_bytes`]: the core refuses it as too large. The whole fetch
/// must end within [`FetchRequest::timeout`] (an error otherwise). `certauth_tokio::Fetcher`
/// is one, usable from any runtime.
pub trait Fetch: Send + Sync + 'static {
    /// The response's bytes, head included, or why there are none.
    fn fetch(&self, request: FetchRequest) -> BoxFuture<Result<Vec<u8>, std::io::Error>>;
}

/// One HTTP request a revocation check needs. Built by the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    url: String,
    host: String,
    port: u16,
    wire: Vec<u8>,
    max_response_bytes: usize,
    timeout: Duration,
}

impl FetchRequest {
    /// The URL (from the certificate), for logs: quote it, it is the CA's text.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The host to connect to: a DNS name or an IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request's bytes, head and body.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// The most response bytes (head included) the core accepts.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// How long the whole fetch may take, connect included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The parts of an `http:` URL certauth fetches from.
struct Url<'a> {
    host: &'a str,
    /// As written in the URL (brackets kept), for the Host header.
    authority: &'a str,
    port: u16,
    path: &'a str,
}

/// Reads `http://host[:port][/path]`: a DNS name, IPv4 address or bracketed IPv6 address,
/// no user info, a path of visible ASCII. Anything else is not fetched (the URL is the
/// CA's text and goes onto the wire).
fn parse_url(url: &str) -> Option<Url<'_>> {
    let scheme = url.get(..7)?;
    if !scheme.eq_ignore_ascii_case("http://") {
        return None;
    }
    let rest = &url[7..];
    if !rest.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        (host, after)
    } else {
        let colon = authority.find(':').unwrap_or(authority.len());
        let host = &authority[..colon];
        let name_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !name_ok {
            return None;
        }
        (host, &authority[colon..])
    };
    let port = match port {
        "" => 80,
        p => p.strip_prefix(':')?.parse().ok().filter(|p| *p != 0)?,
    };
    let path = match path {
        "" => "/",
        p if p.starts_with('?') => return None,
        p => p,
    };
    Some(Url {
        host,
        authority,
        port,
        path,
    })
}

/// Whether certauth would fetch `url`.
pub(crate) fn is_http_url(url: &str) -> bool {
    parse_url(url).is_some()
}

impl FetchRequest {
    /// A GET of `url` (a CRL).
    pub(crate) fn get(url: &str, max_response_bytes: usize, timeout: Duration) -> Option<Self> {
        let u = parse_url(url)?;
        let wire = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: certauth\r\nConnection: close\r\n\r\n",
            u.path, u.authority
        );
        Some(Self::new(
            url,
            &u,
            wire.into_bytes(),
            max_response_bytes,
            timeout,
        ))
    }

    /// A POST of an OCSP request to `url`.
    pub(crate) fn post_ocsp(
        url: &str,
        body: &[u8],
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Option<Self> {
        let u = parse_url(url)?;
        let mut wire = format!(
            "POST {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: certauth\r\nConnection: close\r\n\
             Content-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
            u.path,
            u.authority,
            body.len()
        )
        .into_bytes();
        wire.extend_from_slice(body);
        Some(Self::new(url, &u, wire, max_response_bytes, timeout))
    }

    fn new(
        url: &str,
        u: &Url<'_>,
        wire: Vec<u8>,
        max_response_bytes: usize,
        timeout: Duration,
    ) -> Self {
        Self {
            url: url.to_owned(),
            host: u.host.to_owned(),
            port: u.port,
            wire,
            max_response_bytes,
            timeout,
        }
    }
}

/// The body of a `200` response read to its end, or why not.
pub(crate) fn response_body(response: &[u8], max: usize) -> Result<&[u8], String> {
    if response.len() > max {
        return Err(format!(
            "the response is larger than the limit of {max} bytes"
        ));
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut headers);
    let consumed = match head.parse(response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err("the connection closed before the response head ended".into());
        }
        Err(e) => return Err(format!("the response head is malformed ({e})")),
    };
    if head.code != Some(200) {
        return Err(format!(
            "the server answered {}, not 200",
            head.code.unwrap_or_default()
        ));
    }
    let mut length = None;
    for h in head.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("the server sent a Transfer-Encoding to an HTTP/1.0 request".into());
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("the Content-Length is not a number")?;
            if length.is_some_and(|l| l != n) {
                return Err("the response has two Content-Lengths".into());
            }
            length = Some(n);
        }
    }
    let body = &response[consumed..];
    match length {
        Some(n) if body.len() < n => Err(format!(
            "the connection closed after {} of {n} body bytes",
            body.len()
        )),
        Some(n) => Ok(&body[..n]),
        None => Ok(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_strictly() {
        let u = parse_url("http://ocsp.example.com:8080/a/b?c").unwrap();
        assert_eq!(
            (u.host, u.port, u.path),
            ("ocsp.example.com", 8080, "/a/b?c")
        );
        assert_eq!(u.authority, "ocsp.example.com:8080");
        let u = parse_url("HTTP://[::1]:81").unwrap();
        assert_eq!(
            (u.host, u.port, u.path, u.authority),
            ("::1", 81, "/", "[::1]:81")
        );
        assert_eq!(parse_url("http://127.0.0.1/x").unwrap().port, 80);
        assert!(is_http_url("http://a/crl") && !is_http_url("https://a/crl"));
        for bad in [
            "https://a/",
            "http://",
            "http://user@a/",
            "http://a:0/",
            "http://a:99999/",
            "http://a b/",
            "http://a/\r\nX: y",
            "http://[::1/",
            "http://[zz]/",
            "http://a?x",
            "ftp://a/",
            "http:/a",
        ] {
            assert!(parse_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn requests_are_http_1_0() {
        let r = FetchRequest::post_ocsp("http://h:9/p", b"\x30\x00", 10, Duration::from_secs(1))
            .unwrap();
        assert_eq!(
            r.wire(),
            b"POST /p HTTP/1.0\r\nHost: h:9\r\nUser-Agent: certauth\r\nConnection: close\r\n\
              Content-Type: application/ocsp-request\r\nContent-Length: 2\r\n\r\n\x30\x00"
        );
        assert_eq!((r.host(), r.port(), r.url()), ("h", 9, "http://h:9/p"));
        let g = FetchRequest::get("http://h/c.crl", 10, Duration::from_secs(1)).unwrap();
        assert!(g.wire().starts_with(b"GET /c.crl HTTP/1.0\r\nHost: h\r\n"));
        assert_eq!(
            (g.max_response_bytes(), g.timeout()),
            (10, Duration::from_secs(1))
        );
    }

    #[test]
    fn responses_are_read_to_their_length() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(response_body(ok, 100).unwrap(), b"abc");
        // Exactly the limit is within it.
        assert_eq!(response_body(ok, ok.len()).unwrap(), b"abc");
        assert!(
            response_body(ok, ok.len() - 1)
                .unwrap_err()
                .contains("limit")
        );
        let close = b"HTTP/1.1 200 OK\r\n\r\nabc";
        assert_eq!(response_body(close, 100).unwrap(), b"abc");
        for (bad, why) in [
            (&b"HTTP/1.0 404 Not Found\r\n\r\n"[..], "404"),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nab", "2 of 5"),
            (
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding",
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: x\r\n\r\n", "number"),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                "two",
            ),
            (b"HTTP/1.0 200 OK\r\n", "closed before"),
            (b"\x00garbage\r\n\r\n", "malformed"),
        ] {
            let e = response_body(bad, 100).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
