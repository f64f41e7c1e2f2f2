//! A raw gate decides one request (issue 25, finding 5): what it hands on ends with that
//! request. The cases, for every runtime's gate in header mode behind the nginx preset: what
//! a trusted proxy sends in one write (a decided request, then another that carries no
//! certificate), and exactly what the caller's HTTP server may read of it.

use certauth_core::proxy::{Preset, ProxyHeaderConfig};
use certauth_core::{Authenticator, ChainVerifier, TrustAnchors};

use crate::encode::nginx_escaped;
use crate::{Authority, Leaf};

/// One case: the bytes sent at once, and the stream the caller's server reads (the first
/// request as sent, then EOF). `switch`: the caller answers 101 and then reads on.
pub struct Case {
    /// What it shows.
    pub name: &'static str,
    /// The bytes the proxy writes, in one write.
    pub sent: Vec<u8>,
    /// What the caller may read through `Accepted::into_stream`, to EOF.
    pub stream: Vec<u8>,
    /// For an upgrade: what the caller reads after writing its 101.
    pub after_switch: Option<Vec<u8>>,
}

/// A header-mode authenticator (nginx preset, 127.0.0.1 trusted, verify header required)
/// and the cases; each case's first request carries a valid certificate header, and what
/// follows it carries none.
fn builder(anchors: TrustAnchors) -> certauth_core::AuthenticatorBuilder {
    Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            crate::ring_provider().signature_verification_algorithms.all,
        ))
        .proxy_header(
            ProxyHeaderConfig::preset(Preset::Nginx)
                .with_trusted_proxies(["127.0.0.1"])
                .unwrap()
                .with_verify_header("X-SSL-Client-Verify", "SUCCESS")
                .unwrap(),
        )
}

pub fn setup() -> (Authenticator, Vec<Case>) {
    setup_with(|b| b)
}

/// `setup`, with the header-mode builder adjusted before `build()` (a policy, limits).
pub fn setup_with(
    adjust: impl FnOnce(certauth_core::AuthenticatorBuilder) -> certauth_core::AuthenticatorBuilder,
) -> (Authenticator, Vec<Case>) {
    let root = Authority::root("First Request Root");
    let client = root.issue(&Leaf::client("trusted-client"));
    let anchors = TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    let auth = adjust(builder(anchors)).build().unwrap();
    let cert = format!(
        "X-SSL-Client-Cert: {}\r\nX-SSL-Client-Verify: SUCCESS\r\n",
        nginx_escaped(&client.pem())
    );
    let head = |request_line: &str, extra: &str| {
        format!("{request_line}\r\nHost: backend\r\n{cert}{extra}\r\n").into_bytes()
    };
    let next: &[u8] = b"GET /admin HTTP/1.1\r\nHost: backend\r\n\r\n";
    let case = |name, first: Vec<u8>, after: &[u8]| Case {
        name,
        sent: [&first[..], after].concat(),
        stream: first,
        after_switch: None,
    };
    let get = head("GET /public HTTP/1.1", "");
    let post = [
        head("POST /public HTTP/1.1", "Content-Length: 5\r\n"),
        b"hello".to_vec(),
    ]
    .concat();
    let chunked = [
        head("POST /public HTTP/1.1", "Transfer-Encoding: chunked\r\n"),
        b"5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n".to_vec(),
    ]
    .concat();
    let upgrade = head(
        "GET /ws HTTP/1.1",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    let frame: &[u8] = b"\x81\x85\x00\x00\x00\x00hello";
    let cases = vec![
        case("a GET, then another request", get.clone(), next),
        case("a body by Content-Length, then a request", post, next),
        case(
            "a chunked body with trailers, then a request",
            chunked,
            next,
        ),
        case("a GET, then half a request", get, b"GET /adm"),
        Case {
            name: "an upgrade answered 101: the WebSocket's bytes follow",
            sent: [&upgrade[..], frame].concat(),
            stream: upgrade,
            after_switch: Some(frame.to_vec()),
        },
    ];
    (auth, cases)
}

/// What the caller writes to switch protocols in the upgrade case.
pub const SWITCHING: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

/// Requests whose framing servers read differently: refused with 400, never handed on.
pub fn smuggling() -> Vec<(&'static str, Vec<u8>)> {
    [
        (
            "Content-Length with Transfer-Encoding",
            "POST /public HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
        ),
        (
            "two Content-Lengths",
            "POST /public HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
        ),
        (
            "a Transfer-Encoding that is not chunked",
            "POST /public HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: identity\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
        ),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.as_bytes().to_vec()))
    .collect()
}
