//! The PROXY protocol (HAProxy's, versions 1 and 2): the client's address, sent by a TCP load
//! balancer in front of the connection's own bytes.
//!
//! Behind a TCP balancer every connection comes from the balancer's address; with the PROXY
//! protocol the balancer first writes a header naming the client's, and that is the address
//! logs, per-address caps, metrics and policies should see. A header is believed only from a
//! trusted proxy ([`ProxyProtocol`]): anyone else could name any address. The adapter
//! reads before the TLS handshake, under its deadline, [`next_read`] bytes at a time (never
//! past the header, so the TLS bytes stay in the socket), feeding [`ProxyProtocol::read`]
//! what has arrived until it answers.
//!
//! Bounded: a version 1 header is at most [`MAX_V1_BYTES`] (the specification's 107), a
//! version 2 header at most [`MAX_V2_BYTES`] (its 16-bit length would allow 65,551). The
//! answer comes as soon as the bytes decide it: a connection that does not start with a
//! header is refused at its first byte that differs. Version 2's TLVs are skipped unread.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::TrustedProxies;
use crate::error::SetupError;

/// The longest version 1 header, `\r\n` included (the specification's limit).
pub const MAX_V1_BYTES: usize = 107;

/// The longest version 2 header accepted, its 16-byte preamble included: the addresses and
/// room for a balancer's TLVs (ALPN, authority, unique ID, TLS details).
pub const MAX_V2_BYTES: usize = 4096;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
const V2_PREAMBLE: usize = 16;

/// A complete header.
// Plumbing between our own crates (with `parse`, `ProxyProtocol::read` and `next_read`): the
// engine's accept path reads the header with them; a user configures a `ProxyProtocol`.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Parsed {
    /// How many bytes the header took: the connection's own bytes follow.
    pub len: usize,
    /// The client's address. `None` when the proxy speaks for itself (version 1 `UNKNOWN`,
    /// version 2 `LOCAL`, as in its health checks) or names no IP address (version 2
    /// `UNSPEC` or a Unix socket): the connection's own peer address stands.
    pub source: Option<SocketAddr>,
}

/// Why the bytes are not an acceptable PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyProtocolError {
    /// The connection does not start with a PROXY header (a client connecting directly).
    Missing,
    /// Longer than [`MAX_V1_BYTES`] or [`MAX_V2_BYTES`].
    TooLong,
    /// A header that breaks the specification: the part that does.
    Malformed(&'static str),
    /// The peer is not a trusted proxy: its connection is closed unread.
    Untrusted,
}

impl std::fmt::Display for ProxyProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("the connection does not start with a PROXY header"),
            Self::TooLong => write!(
                f,
                "PROXY header longer than {MAX_V1_BYTES} bytes (v1) or {MAX_V2_BYTES} (v2)"
            ),
            Self::Malformed(what) => write!(f, "malformed PROXY header: {what}"),
            Self::Untrusted => f.write_str(
                "a PROXY-protocol listener accepts connections only from trusted proxies",
            ),
        }
    }
}

impl std::error::Error for ProxyProtocolError {}

/// Reads a PROXY header (version 1 or 2) from the first bytes of a connection: `Ok(None)`
/// while more bytes are needed to decide, the header once complete, an error as soon as the
/// bytes cannot be one. Feed it everything received so far.
#[doc(hidden)]
pub fn parse(bytes: &[u8]) -> Result<Option<Parsed>, ProxyProtocolError> {
    let starts_like = |prefix: &[u8]| {
        let n = bytes.len().min(prefix.len());
        bytes.get(..n) == prefix.get(..n)
    };
    if starts_like(V2_SIGNATURE) {
        return v2(bytes);
    }
    if starts_like(V1_PREFIX) {
        return v1(bytes);
    }
    Err(ProxyProtocolError::Missing)
}

/// A listener's PROXY protocol: which peers (the load balancers) may send a header, and
/// reading one from a connection's first bytes.
#[derive(Clone, Debug)]
pub struct ProxyProtocol {
    trusted: TrustedProxies,
}

impl ProxyProtocol {
    /// Headers believed from these addresses or CIDR ranges (`10.0.0.0/8`, `::1`), as
    /// `--trusted-proxy` takes them.
    pub fn new<S: AsRef<str>>(
        trusted_proxies: impl IntoIterator<Item = S>,
    ) -> Result<Self, SetupError> {
        Ok(Self {
            trusted: TrustedProxies::new(trusted_proxies)?,
        })
    }

    /// [`parse`] for a connection from `peer`, refused at once unless `peer` is trusted.
    #[doc(hidden)]
    pub fn read(&self, peer: IpAddr, bytes: &[u8]) -> Result<Option<Parsed>, ProxyProtocolError> {
        if !self.trusted.contains(Some(peer)) {
            return Err(ProxyProtocolError::Untrusted);
        }
        parse(bytes)
    }
}

/// The shortest header: `PROXY UNKNOWN\r\n`.
const MIN_BYTES: usize = 15;

/// How many more bytes an adapter may read after `bytes` without reading past a header
/// (at least 1): up to the shortest header, then a version 2 header's exact length, then
/// one at a time for version 1, whose end is found only by reading it.
#[doc(hidden)]
pub fn next_read(bytes: &[u8]) -> usize {
    if bytes.len() < MIN_BYTES {
        return MIN_BYTES - bytes.len();
    }
    if bytes.starts_with(V2_SIGNATURE) {
        let total = match bytes.get(V2_PREAMBLE - 2..V2_PREAMBLE) {
            Some(&[hi, lo]) => V2_PREAMBLE + usize::from(u16::from_be_bytes([hi, lo])),
            _ => V2_PREAMBLE,
        };
        return total.saturating_sub(bytes.len()).max(1);
    }
    1
}

fn malformed(what: &'static str) -> ProxyProtocolError {
    ProxyProtocolError::Malformed(what)
}

/// `PROXY TCP4 1.2.3.4 5.6.7.8 1234 443\r\n`, `PROXY TCP6 …`, `PROXY UNKNOWN…\r\n`.
fn v1(bytes: &[u8]) -> Result<Option<Parsed>, ProxyProtocolError> {
    let window = bytes.get(..bytes.len().min(MAX_V1_BYTES)).unwrap_or(bytes);
    let end = window.windows(2).position(|w| w == b"\r\n");
    // Printable ASCII up to the `\r\n` (a `\r` last may be its start): refused at the
    // first other byte, the same answer whether the rest has arrived or not.
    let line = window
        .get(..end.unwrap_or(window.len()))
        .unwrap_or_default();
    let pending_cr = end.is_none() && line.last() == Some(&b'\r');
    let checked = line
        .get(..line.len().saturating_sub(usize::from(pending_cr)))
        .unwrap_or_default();
    if checked.iter().any(|b| !(0x20..=0x7E).contains(b)) {
        return Err(malformed(
            "a byte that is not printable ASCII before `\\r\\n`",
        ));
    }
    let Some(end) = end else {
        if window.len() >= MAX_V1_BYTES {
            return Err(ProxyProtocolError::TooLong);
        }
        return Ok(None);
    };
    let line = window.get(V1_PREFIX.len()..end).unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| malformed("not ASCII"))?;
    let done = |source| {
        Ok(Some(Parsed {
            len: end + 2,
            source,
        }))
    };
    let mut fields = line.split(' ');
    let family = fields.next();
    if family == Some("UNKNOWN") {
        return done(None);
    }
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(malformed(
            "expected `TCP4|TCP6 SOURCE DESTINATION SPORT DPORT`",
        ));
    };
    let (src, dst): (IpAddr, IpAddr) = match family {
        Some("TCP4") => (
            src.parse::<Ipv4Addr>()
                .map_err(|_| malformed("TCP4 source"))?
                .into(),
            dst.parse::<Ipv4Addr>()
                .map_err(|_| malformed("TCP4 destination"))?
                .into(),
        ),
        Some("TCP6") => (
            src.parse::<Ipv6Addr>()
                .map_err(|_| malformed("TCP6 source"))?
                .into(),
            dst.parse::<Ipv6Addr>()
                .map_err(|_| malformed("TCP6 destination"))?
                .into(),
        ),
        _ => return Err(malformed("protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let _ = (dst, port(dport)?);
    done(Some(SocketAddr::new(src, port(sport)?)))
}

/// A port in version 1: decimal digits, no sign, no leading zero.
fn port(s: &str) -> Result<u16, ProxyProtocolError> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return Err(malformed("port"));
    }
    s.parse().map_err(|_| malformed("port"))
}

/// The 12-byte signature, version and command, family and transport, a 16-bit length, then
/// the addresses and TLVs.
fn v2(bytes: &[u8]) -> Result<Option<Parsed>, ProxyProtocolError> {
    let sig = V2_SIGNATURE.len();
    if let Some(&version_command) = bytes.get(sig) {
        if version_command >> 4 != 2 {
            return Err(malformed("version is not 2"));
        }
        if version_command & 0x0F > 1 {
            return Err(malformed("command is neither LOCAL nor PROXY"));
        }
    }
    let Some(&[version_command, family, hi, lo]) = bytes.get(sig..V2_PREAMBLE) else {
        return Ok(None);
    };
    let len = V2_PREAMBLE + usize::from(u16::from_be_bytes([hi, lo]));
    if len > MAX_V2_BYTES {
        return Err(ProxyProtocolError::TooLong);
    }
    let Some(body) = bytes.get(V2_PREAMBLE..len) else {
        return Ok(None);
    };
    let done = |source| Ok(Some(Parsed { len, source }));
    if version_command & 0x0F == 0 {
        // LOCAL: the proxy's own connection (a health check); the body is ignored.
        return done(None);
    }
    let source = match family {
        // UNSPEC, and AF_UNIX over a stream: no IP address to report.
        0x00 | 0x31 => None,
        0x11 => {
            let Some(&[a, b, c, d, _, _, _, _, p1, p2, _, _]) = body.get(..12) else {
                return Err(malformed("shorter than its IPv4 addresses"));
            };
            Some(SocketAddr::new(
                Ipv4Addr::new(a, b, c, d).into(),
                u16::from_be_bytes([p1, p2]),
            ))
        }
        0x21 => {
            let (Some(ip), Some(&[p1, p2])) = (body.get(..16), body.get(32..34)) else {
                return Err(malformed("shorter than its IPv6 addresses"));
            };
            let mut octets = [0; 16];
            octets.copy_from_slice(ip);
            Some(SocketAddr::new(
                Ipv6Addr::from(octets).into(),
                u16::from_be_bytes([p1, p2]),
            ))
        }
        _ => {
            return Err(malformed(
                "family and transport are not TCP over IPv4 or IPv6",
            ));
        }
    };
    done(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn v2_header(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    /// Every prefix of a complete header asks for more; the whole answers; what follows is
    /// left alone.
    fn complete(header: &[u8], source: Option<SocketAddr>) {
        for n in 0..header.len() {
            assert_eq!(parse(&header[..n]), Ok(None), "prefix of {n} bytes");
        }
        let mut with_hello = header.to_vec();
        with_hello.extend_from_slice(&[0x16, 0x03, 0x01]);
        let want = Parsed {
            len: header.len(),
            source,
        };
        assert_eq!(parse(header), Ok(Some(want)));
        assert_eq!(parse(&with_hello), Ok(Some(want)));
    }

    #[test]
    fn version_1() {
        complete(
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
            addr("192.0.2.1:56324"),
        );
        complete(
            b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 443\r\n",
            addr("[2001:db8::1]:65535"),
        );
        complete(b"PROXY UNKNOWN\r\n", None);
        complete(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None);
        // The longest: 107 bytes (the specification's example).
        let longest = format!(
            "PROXY UNKNOWN {0} {0} 65535 65535\r\n",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(longest.len(), MAX_V1_BYTES);
        complete(longest.as_bytes(), None);
        let mut endless = b"PROXY UNKNOWN ".to_vec();
        endless.resize(MAX_V1_BYTES - 1, b'a');
        assert_eq!(parse(&endless), Ok(None));
        endless.push(b'a');
        assert_eq!(parse(&endless), Err(ProxyProtocolError::TooLong));

        for bad in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 \r\n"[..],
            b"PROXY TCP4 192.0.2.1  198.51.100.2 56324 443\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.2 56324 443\r\n",
            b"PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 +80 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 080 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 80\r\n",
            b"PROXY UDP4 192.0.2.1 198.51.100.2 80 443\r\n",
            b"PROXY tcp4 192.0.2.1 198.51.100.2 80 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 80 443\n",
            b"PROXY TCP4 192.0.2.\xff 198.51.100.2 80 443\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 80 443\0\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 80\r443\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ProxyProtocolError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn version_2() {
        let ipv4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB];
        complete(&v2_header(1, 0x11, &ipv4), addr("192.0.2.1:56324"));
        // TLVs after the addresses are skipped.
        let mut with_tlvs = ipv4.to_vec();
        with_tlvs.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x00]);
        complete(&v2_header(1, 0x11, &with_tlvs), addr("192.0.2.1:56324"));
        let mut ipv6 = [0u8; 36];
        ipv6[..16].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        ipv6[32..].copy_from_slice(&[0x00, 0x50, 0x01, 0xBB]);
        complete(&v2_header(1, 0x21, &ipv6), addr("[2001:db8::1]:80"));
        complete(&v2_header(0, 0x00, &[]), None);
        complete(&v2_header(0, 0x11, &ipv4), None);
        complete(&v2_header(1, 0x00, &[]), None);
        complete(&v2_header(1, 0x31, &[0; 216]), None);

        let longest = v2_header(1, 0x11, &vec![0; MAX_V2_BYTES - V2_PREAMBLE]);
        assert!(parse(&longest).unwrap().is_some());
        let long = v2_header(1, 0x11, &vec![0; MAX_V2_BYTES - V2_PREAMBLE + 1]);
        assert_eq!(
            parse(&long[..V2_PREAMBLE]),
            Err(ProxyProtocolError::TooLong)
        );

        let mut bad_version = v2_header(1, 0x11, &ipv4);
        bad_version[12] = 0x11;
        assert!(matches!(
            parse(&bad_version[..13]),
            Err(ProxyProtocolError::Malformed(_))
        ));
        for bad in [
            v2_header(2, 0x11, &ipv4),
            v2_header(1, 0x11, &ipv4[..11]),
            v2_header(1, 0x21, &ipv4),
            v2_header(1, 0x12, &ipv4),
            v2_header(1, 0x41, &ipv4),
        ] {
            assert!(
                matches!(parse(&bad), Err(ProxyProtocolError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    /// Reading `next_read` bytes at a time never reads past the header.
    #[test]
    fn reads_stop_at_the_end_of_the_header() {
        let ipv4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x01, 0xBB];
        for header in [
            v2_header(1, 0x11, &ipv4),
            v2_header(0, 0x00, &[]),
            b"PROXY UNKNOWN\r\n".to_vec(),
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".to_vec(),
        ] {
            let mut stream = header.clone();
            stream.extend_from_slice(b"\x16\x03\x01 the ClientHello");
            let mut got = Vec::new();
            let proxy = ProxyProtocol::new(["127.0.0.1"]).unwrap();
            let peer = IpAddr::from([127, 0, 0, 1]);
            let parsed = loop {
                if let Some(p) = proxy.read(peer, &got).unwrap() {
                    break p;
                }
                let n = next_read(&got);
                assert!(n >= 1 && got.len() + n <= header.len(), "{header:?}");
                got.extend_from_slice(&stream[got.len()..got.len() + n]);
            };
            assert_eq!(parsed.len, header.len());
            assert_eq!(got, header);
            let other = IpAddr::from([127, 0, 0, 2]);
            assert_eq!(proxy.read(other, b""), Err(ProxyProtocolError::Untrusted));
        }
    }

    #[test]
    fn a_connection_without_a_header_is_refused_at_its_first_byte() {
        for direct in [
            &b"\x16\x03\x01"[..],
            b"GET / HTTP/1.1\r\n",
            b"PROXX",
            b"\r\n\r\n\0\r\nQUIT\r",
        ] {
            let differs = match parse(direct) {
                Err(ProxyProtocolError::Missing) => true,
                other => panic!("{direct:?}: {other:?}"),
            };
            assert!(differs);
        }
        assert_eq!(parse(b""), Ok(None));
        assert_eq!(parse(b"P"), Ok(None));
        assert_eq!(parse(b"PROX"), Ok(None));
        assert_eq!(parse(b"\r\n\r\n"), Ok(None));
    }
}
