//! What a front door forwards to the application behind it (`certauth serve --upstream`,
//! certauth-hyper's `Upstream`): which request headers are removed, which are added, and
//! how the client's identity is written.
//!
//! The rules, in the order [`prepare_request`] applies them:
//!
//! 1. **Framing.** A request a server behind could frame differently (`Content-Length` with
//!    `Transfer-Encoding`, two different lengths, a coding list not ending in `chunked`) is
//!    refused with 400 and never forwarded: the request-smuggling cases, judged as the raw
//!    gates judge them ([`crate::http::FirstRequest`]). So are `CONNECT`, a request with
//!    more than one `Host` (decided for one, it could be routed by another) and a target
//!    with userinfo (`http://evil@admin.example/`: RFC 9110 §4.2.4).
//! 2. **Hop-by-hop headers** (RFC 9110 §7.6.1): `Connection`, `Proxy-Connection`,
//!    `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`, `HTTP2-Settings` and every header
//!    `Connection` names are removed (the upstream connection has its own framing, written
//!    by the client library). `Host` is never removed, whatever `Connection` names. A
//!    WebSocket upgrade keeps its `Upgrade` header with `Connection: upgrade` when the
//!    client is authenticated; no other upgrade is relayed ([`is_websocket_upgrade`]: a
//!    tunnel speaking `h2c` would carry requests no decision saw); on an open path it goes on as a plain request (a tunnel would outlive
//!    the limits an unauthenticated connection is held to: its deadline, shedding, its slot).
//! 3. **Identity headers** (Envoy's SANITIZE_SET, widened): whatever the client sent under
//!    any name a proxy uses for a client certificate ([`is_identity_header`]: every
//!    [`Preset`]'s header, `Client-Cert-Chain`, `X-SSL-Client-*`, …) is removed, in any
//!    letter case and with `_` for `-` (CGI and WSGI servers read `Client_Cert` as
//!    `Client-Cert`), on every request, open paths included. So is a `_` spelling of a
//!    header certauth writes or removes (`X_Forwarded_For`).
//! 4. **Address headers** ([`ADDRESS_HEADERS`]): what a proxy tells an application about the
//!    client's address or the original request (`Forwarded`, `X-Real-IP`,
//!    `X-Forwarded-Host`, `X-Original-URL`, …), sent by the client itself, is removed the
//!    same way: an application that trusts one would see a forged address, host or URL.
//!    `X-Forwarded-For` is kept, with the client's address appended (rule 5): its last
//!    entry is certauth's, and an application reading it from the right, as it must, sees
//!    the real client.
//! 5. **What certauth adds.** The authenticated client's certificate in the chosen preset's
//!    format ([`identity_headers`]; RFC 9440 by default), `X-Forwarded-For` with the
//!    client's address appended, `X-Forwarded-Proto: https`, and `Host` set to the
//!    target's authority when it has one (HTTP/2's `:authority`, an absolute-form target):
//!    the upstream sees the host the request was decided for. certauth does not write an
//!    RFC 7239 `Forwarded` (neither does Envoy by default, nor nginx unless configured):
//!    frameworks read `X-Forwarded-For`/`-Proto`, and a second header saying the same thing
//!    would be a second thing to keep true (a proxy in front that appends to one and not
//!    the other). The client's `Forwarded` is removed (rule 4), so none arrives.
//! 6. **Cookies.** An HTTP/2 client may split its cookies into several `cookie` fields
//!    (RFC 9113 §8.2.3); the upstream speaks HTTP/1.1, where they must be one field: they
//!    are joined with `"; "` (an HTTP/1.1 client's several `Cookie` lines too).
//!
//! A request's trailer fields lose the same names ([`prepare_trailers`]): a server may merge
//! trailers into the headers. Responses lose their hop-by-hop headers too ([`prepare_response`]), except a `101`'s
//! `Upgrade`.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::http::{HeadError, head_of, refuse_ambiguous_framing};
use crate::proxy::{Encoding, Preset};
use crate::{Authenticated, ClientCertificate, GeneralName};

mod relay;

pub use relay::going_away_frame;
// Plumbing between our own crates: certauth-hyper's upstream relay follows the frames of
// a relayed WebSocket with it.
#[doc(hidden)]
pub use relay::FrameCursor;

/// The hop-by-hop headers of RFC 9110 §7.6.1 (with `Proxy-Connection`, which clients still
/// send, and `HTTP2-Settings`, the h2c upgrade's, RFC 7540 §3.2.1): meaningful for one
/// connection only, never forwarded.
pub const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Name prefixes (lower case) under which proxies pass a client's certificate or its
/// verification result, or an authenticating proxy the user it let in. A request header
/// starting with one is removed before forwarding, whoever sent it: only certauth speaks for
/// the client. Covers every [`Preset`]'s header, HAProxy's documented `X-SSL*` examples
/// (`X-SSL`, `X-SSL-Issuer`, `X-SSL-Client-*`), and the user headers of authenticating
/// proxies an application may still trust after moving to certauth (oauth2-proxy's
/// `X-Forwarded-User`/`-Email`/`-Groups`/`-Preferred-Username`/`-Access-Token` and
/// `X-Auth-Request-*`, Apache's and others' `Remote-User`).
pub const IDENTITY_HEADER_PREFIXES: [&str; 25] = [
    "client-cert",
    "x-forwarded-client-cert",
    "x-forwarded-tls-client-cert",
    "x-ssl",
    "x-client-cert",
    "x-client-verify",
    "x-client-dn",
    "x-client-subject",
    "x-client-issuer",
    "x-tls-client",
    "x-peer-cert",
    "x-amzn-mtls-",
    "cf-client-cert",
    "ssl-client",
    "x-arr-clientcert",
    "remote-user",
    "x-remote-user",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-auth-request-",
    "x-webauth-",
    "x-authenticated-",
];

/// Whether `name` is a header under which a client's identity could be passed: in any
/// case, and with `_` for `-` (`Client_Cert`), which CGI and WSGI servers read as the same
/// header (both become `HTTP_CLIENT_CERT`; Python's `wsgiref` joins their values).
pub fn is_identity_header(name: &str) -> bool {
    let name = name.as_bytes();
    starts_one_of(name, &IDENTITY_STARTS)
        && IDENTITY_HEADER_PREFIXES
            .iter()
            .any(|p| name.len() >= p.len() && same_to_cgi(&name[..p.len()], p.as_bytes()))
}

/// Each byte that starts a name of a list, as CGI reads it ([`cgi_byte`]).
type Starts = [bool; 256];

const fn starts_of(list: &[&str]) -> Starts {
    let mut starts = [false; 256];
    // `at` indexes the table, `byte` is the same number as a byte (a const fn has no
    // conversion between them but `as`).
    let (mut at, mut byte) = (0, 0u8);
    while at < starts.len() {
        let mut i = 0;
        while i < list.len() {
            if let [first, ..] = list[i].as_bytes()
                && cgi_byte(*first) == byte
            {
                starts[at] = true;
            }
            i += 1;
        }
        (at, byte) = (at + 1, byte.wrapping_add(1));
    }
    starts
}

/// The first bytes of [`IDENTITY_HEADER_PREFIXES`] and of [`ADDRESS_HEADERS`]: a request's
/// usual headers (`host`, `accept`, `user-agent`) start none, and are passed over without
/// being compared to each of the 61 (this runs for every header of every forwarded request).
const IDENTITY_STARTS: Starts = starts_of(&IDENTITY_HEADER_PREFIXES);
const ADDRESS_STARTS: Starts = starts_of(&ADDRESS_HEADERS);

/// Whether `name` may be one of a list whose first bytes are `starts` (a first check: the
/// list's own decides).
fn starts_one_of(name: &[u8], starts: &Starts) -> bool {
    name.first()
        .is_some_and(|b| starts[usize::from(cgi_byte(*b))])
}

/// A byte of a header name as CGI reads it: lower case, `_` as `-`.
const fn cgi_byte(c: u8) -> u8 {
    if c == b'_' {
        b'-'
    } else {
        c.to_ascii_lowercase()
    }
}

/// Whether two header names are one to a server that reads them as CGI variables do: any
/// letter case, `_` the same as `-`.
fn same_to_cgi(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| cgi_byte(*x) == cgi_byte(*y))
}

/// Headers (lower case) in which proxies tell an application the client's address or the
/// request as the client made it: removed from every request, in any case and with `_` for
/// `-` ([`is_address_header`]), so that only certauth speaks for the client's address (in
/// `X-Forwarded-For`, which is kept and appended to). The list and where each comes from:
///
/// - `forwarded` (RFC 7239: `for=`, `host=`, `proto=`): Go's `httputil.ReverseProxy`
///   (with `Rewrite`) removes the client's, with `X-Forwarded-For`, `-Host` and `-Proto`;
///   `x-forwarded`, a pre-RFC spelling some libraries still parse.
/// - `x-forwarded-host`, `-port`, `-prefix`, `-server`, `-uri`, `-method`: Traefik removes
///   them from untrusted clients (its `forwardedHeaders`); frameworks build absolute URLs
///   and redirects from host, port and prefix (Django, Rails, Spring's
///   `ForwardedHeaderFilter`, ASP.NET).
/// - `x-forwarded-scheme`, `x-forwarded-ssl`: what Rack and nginx-ingress read besides
///   `X-Forwarded-Proto`, which certauth sets to `https`.
/// - `x-original-url`, `x-rewrite-url`: IIS/ASP.NET and Symfony (before 5) read the path
///   from them: a client could name a protected path in them while requesting an open
///   one.
/// - `x-original-forwarded-for`: nginx-ingress keeps the client's `X-Forwarded-For` there.
/// - `x-real-ip` (nginx's realip, Traefik), `x-client-ip`, `true-client-ip` (Akamai,
///   Cloudflare Enterprise), `cf-connecting-ip` (Cloudflare), `fastly-client-ip`,
///   `x-cluster-client-ip` (Rackspace, Riverbed), `x-envoy-external-address` (Envoy,
///   which removes it from external requests itself): one address each, which libraries
///   such as `request-ip` (Node) and Rails' `remote_ip` believe first.
///
/// - `client-ip` (Rails' `remote_ip` reads `HTTP_CLIENT_IP`), `forwarded-for`,
///   `x-appengine-user-ip`, `cf-pseudo-ipv4` (read by `request-ip`), `x-originating-ip`,
///   `x-remote-ip`, `x-remote-addr`: more single-address headers libraries believe.
/// - `x-original-uri`, `x-forwarded-path`, `x-envoy-original-path`, `x-host`,
///   `x-original-host`: the original path or host, as nginx-ingress, Envoy and PHP
///   frameworks pass them.
/// - `x-forwarded-protocol` (gunicorn's `secure_scheme_headers`), `x-url-scheme`,
///   `front-end-https`, `x-scheme`: the scheme, besides `X-Forwarded-Proto`.
///
/// nginx passes all of them through unless told otherwise; Envoy strips only its own
/// `x-envoy-*` headers; oauth2-proxy leaves them to the proxy in front. certauth is the
/// edge, so it removes them all. A list of names cannot be complete: an application should
/// trust only the headers its front door is documented to write (README, "In front of any
/// application"), and read `X-Forwarded-For` from the right (its last entry is certauth's;
/// the ones before it are the client's own claims, kept as Envoy and nginx keep them).
pub const ADDRESS_HEADERS: [&str; 36] = [
    "forwarded",
    "x-forwarded",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-original-url",
    "x-rewrite-url",
    "x-original-forwarded-for",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-envoy-external-address",
    "client-ip",
    "forwarded-for",
    "x-appengine-user-ip",
    "cf-pseudo-ipv4",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-original-uri",
    "x-forwarded-path",
    "x-envoy-original-path",
    "x-host",
    "x-original-host",
    "x-forwarded-protocol",
    "x-url-scheme",
    "front-end-https",
    "x-scheme",
];

/// Whether `name` is one of [`ADDRESS_HEADERS`], in any case and with `_` for `-`.
pub fn is_address_header(name: &str) -> bool {
    starts_one_of(name.as_bytes(), &ADDRESS_STARTS)
        && ADDRESS_HEADERS
            .iter()
            .any(|h| same_to_cgi(name.as_bytes(), h.as_bytes()))
}

/// Headers certauth writes itself (besides the identity's): a client's `_` spelling of one
/// is removed, so that a CGI-style server behind never merges it with certauth's.
const WRITTEN: [&str; 2] = ["x-forwarded-for", "x-forwarded-proto"];

/// Whether `name` spells with `_` a header certauth writes or removes (`X_Forwarded_For`,
/// `Transfer_Encoding`, a custom certificate header's).
fn is_underscore_alias(name: &str, also_remove: &[String]) -> bool {
    name.contains('_')
        && WRITTEN
            .iter()
            .chain(&HOP_BY_HOP)
            .copied()
            .chain(also_remove.iter().map(String::as_str))
            .any(|h| same_to_cgi(name.as_bytes(), h.as_bytes()))
}

/// Prepares a request for the upstream, in place (the module's rules 1-6): `client` is the
/// authenticated client whose identity is written in `identity`'s format (none on an open
/// path: no identity header then), `remote` the address appended to `X-Forwarded-For`
/// (none on a Unix socket), `also_remove` further header names to strip (a custom
/// `--header` of header mode). The error is the 400 to answer instead of forwarding.
pub fn prepare_request<B>(
    req: &mut http::Request<B>,
    client: Option<&Authenticated>,
    identity: Preset,
    remote: Option<IpAddr>,
    also_remove: &[String],
) -> Result<(), HeadError> {
    let encode = |client: &Authenticated| identity_header_values(client, identity);
    prepare_request_with(req, client, encode, remote, also_remove)
}

/// [`prepare_request`], the identity's headers given by `encode` (called at most once, for
/// an authenticated client): an adapter that keeps a connection's [`identity_header_values`]
/// (its requests all carry the same certificate) passes them instead of encoding them again.
pub fn prepare_request_with<B>(
    req: &mut http::Request<B>,
    client: Option<&Authenticated>,
    encode: impl FnOnce(&Authenticated) -> Vec<(HeaderName, HeaderValue)>,
    remote: Option<IpAddr>,
    also_remove: &[String],
) -> Result<(), HeadError> {
    refuse_ambiguous_framing(&head_of(req, None))?;
    // RFC 9112 §6.1: a transfer coding the proxy does not apply again is a 501. Only
    // `chunked` is decoded and written again on the way up: `gzip, chunked` went upstream as
    // `chunked`, its body still gzip and nothing saying so (the fifteenth attack review, I3).
    if !only_chunked(req.headers()) {
        return Err(HeadError::UnsupportedTransferCoding);
    }
    // RFC 9112 §3.2: more than one Host is a 400. The request was decided for the first;
    // forwarded, it could be routed by another.
    if req
        .headers()
        .get_all(http::header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(HeadError::Malformed {
            reason: "more than one Host header",
        });
    }
    // A tunnel to wherever the client names is a forward proxy's job, not a front door's.
    if req.method() == http::Method::CONNECT {
        return Err(HeadError::Malformed {
            reason: "CONNECT is not proxied",
        });
    }
    let upgrade = is_websocket_upgrade(req.headers());
    let upgrade_value = req.headers().get(http::header::UPGRADE).cloned();
    // The authority the request was decided for (`Head::authority`): the target's when it
    // has one (HTTP/2, an absolute-form target), which RFC 9112 §3.2.2 puts before `Host`.
    // RFC 9110 §4.2.4: userinfo in an http(s) URI is an error. The decision reads the host
    // past it; a server behind reading `Host: evil@admin.example` may not.
    if req
        .uri()
        .authority()
        .is_some_and(|a| a.as_str().contains('@'))
    {
        return Err(HeadError::Malformed {
            reason: "userinfo in the request target",
        });
    }
    if let Some(host) = req
        .uri()
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(http::header::HOST, host);
    }
    let headers = req.headers_mut();
    remove_hop_by_hop(headers);
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| {
            let n = n.as_str();
            is_identity_header(n) || is_address_header(n) || is_underscore_alias(n, also_remove)
        })
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
    for name in also_remove {
        headers.remove(name.as_str());
    }
    // Framing is the client library's: it writes the body it is given.
    headers.remove(http::header::CONTENT_LENGTH);
    join_cookies(headers);
    // A tunnel outlives its connection's lifecycle: an unauthenticated connection's head
    // deadline, shedding and slot end with the HTTP connection, not with the tunnel. So
    // only an authenticated client's upgrade goes on; an open path's is a plain request.
    if upgrade
        && client.is_some()
        && let Some(value) = upgrade_value
    {
        headers.insert(http::header::UPGRADE, value);
        headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
    }
    if let Some(client) = client {
        for (name, value) in encode(client) {
            headers.append(name, value);
        }
    }
    if let Some(ip) = remote {
        append_forwarded_for(headers, ip);
    }
    headers.insert(
        const { HeaderName::from_static("x-forwarded-proto") },
        HeaderValue::from_static("https"),
    );
    Ok(())
}

/// Prepares a request's trailer section (after a chunked or HTTP/2 body) for the upstream,
/// in place: a field certauth writes or removes in the head (an identity or address header,
/// `X-Forwarded-For`, `X-Forwarded-Proto`, hop-by-hop, `Host`, `also_remove`, in any case
/// and `_` spelling) is removed, so that a server that merges trailers into the headers
/// never reads one from the client.
pub fn prepare_trailers(trailers: &mut HeaderMap, also_remove: &[String]) {
    let names: Vec<HeaderName> = trailers
        .keys()
        .filter(|n| {
            let n = n.as_str();
            is_identity_header(n)
                || is_address_header(n)
                || WRITTEN
                    .iter()
                    .chain(&HOP_BY_HOP)
                    .chain(&["host"])
                    .copied()
                    .chain(also_remove.iter().map(String::as_str))
                    .any(|h| same_to_cgi(n.as_bytes(), h.as_bytes()))
        })
        .cloned()
        .collect();
    for name in names {
        trailers.remove(name);
    }
}

/// Whether a request (or a `101` response) switches to WebSocket: one `Upgrade` field that
/// is `websocket` (any case), with `Connection: upgrade`. The only upgrade a front door
/// relays: after a `101` the connection is a byte tunnel no decision sees, so a protocol
/// that carries requests (`h2c` above all, RFC 7540 §3.2, removed by RFC 9113) would let a
/// client send the upstream requests the policy never judged, under identity headers it
/// wrote itself (h2c smuggling). Any other upgrade goes on as a plain request, without
/// its `Upgrade`.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    upgrades_to_websocket(headers) && has_token(headers, "connection", "upgrade")
}

/// Whether a `101`'s (or a request's) one `Upgrade` field names WebSocket alone.
pub fn upgrades_to_websocket(headers: &HeaderMap) -> bool {
    let mut upgrade = headers.get_all(http::header::UPGRADE).iter();
    let websocket = upgrade
        .next()
        .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"websocket"));
    websocket && upgrade.next().is_none()
}

/// Prepares the upstream's response head for the client, in place: hop-by-hop headers and
/// those `Connection` names are removed; a `101 Switching Protocols` to WebSocket
/// ([`upgrades_to_websocket`]) keeps `Upgrade` with `Connection: upgrade` (a relay refuses
/// any other `101`).
pub fn prepare_response(status: http::StatusCode, headers: &mut HeaderMap) {
    // Only a 101 keeps its `Upgrade` (every response is prepared: look no further).
    let upgrade = (status == http::StatusCode::SWITCHING_PROTOCOLS
        && upgrades_to_websocket(headers))
    .then(|| headers.get(http::header::UPGRADE).cloned())
    .flatten();
    remove_hop_by_hop(headers);
    if let Some(value) = upgrade {
        headers.insert(http::header::UPGRADE, value);
        headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
    }
}

/// Removes [`HOP_BY_HOP`] and every header `Connection` names, except `Host`.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
        .filter(|n| n != http::header::HOST)
        .collect();
    // Only the names present: `remove` by `&str` parses the name, six times a request.
    let present = headers.keys().filter(|n| HOP_BY_HOP.contains(&n.as_str()));
    let named: Vec<HeaderName> = named.into_iter().chain(present.cloned()).collect();
    for name in named {
        headers.remove(name);
    }
}

/// Whether the request's `Transfer-Encoding`, if any, is `chunked` alone (once, in any
/// case), as nginx requires.
fn only_chunked(headers: &HeaderMap) -> bool {
    let mut codings = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty());
    match codings.next() {
        None => true,
        Some(first) => first.eq_ignore_ascii_case(b"chunked") && codings.next().is_none(),
    }
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Several `cookie` fields (HTTP/2 splits them, RFC 9113 §8.2.3) made one, joined with
/// `"; "`, as an HTTP/1.1 server expects.
fn join_cookies(headers: &mut HeaderMap) {
    let mut all = headers.get_all(http::header::COOKIE).iter();
    if all.nth(1).is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if let Ok(value) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
        headers.insert(http::header::COOKIE, value);
    }
}

/// Named once: a name given as `&str` is parsed at each use.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

fn append_forwarded_for(headers: &mut HeaderMap, ip: IpAddr) {
    let ip = address_text(ip.to_canonical());
    // One lookup for the usual request, which brings none.
    match headers.entry(X_FORWARDED_FOR) {
        http::header::Entry::Vacant(none) => {
            if let Ok(value) = HeaderValue::try_from(ip) {
                none.insert(value);
            }
        }
        http::header::Entry::Occupied(mut some) => {
            let before: Vec<&str> = some.iter().filter_map(|v| v.to_str().ok()).collect();
            let value = if before.is_empty() {
                ip
            } else {
                format!("{}, {ip}", before.join(", "))
            };
            if let Ok(value) = HeaderValue::try_from(value) {
                some.insert(value);
            }
        }
    }
}

/// `ip` as `Display` writes it; an IPv4 address digit by digit, without the formatting
/// machinery (once per forwarded request), in a string exactly as long as it holds: a
/// header value made of it keeps its allocation (one with room to spare takes another).
fn address_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let octets = v4.octets();
    // Where an octet's three decimal digits start.
    let first = |octet: u8| match octet {
        100.. => 0,
        10..=99 => 1,
        _ => 2,
    };
    let len = 3 + octets.iter().map(|&o| 3 - first(o)).sum::<usize>();
    let mut text = String::with_capacity(len);
    for (i, octet) in octets.into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        text.extend(digits[first(octet)..].iter().map(|d| char::from(b'0' + d)));
    }
    text
}

/// The headers that carry `client`'s certificate in `preset`'s format, the way that proxy
/// writes them (so `certauth serve --source PRESET` behind reads them back):
///
/// - `rfc9440`: `Client-Cert: :<base64 DER>:` and, when the verified path has
///   intermediates, `Client-Cert-Chain: :<base64>:, …` (RFC 9440 §2: byte sequences of
///   RFC 8941, the leaf not repeated; the trust anchor is not sent).
/// - `envoy`: `X-Forwarded-Client-Cert` with `Hash` (hex SHA-256 of the DER), `Cert` and
///   `Chain` (URL-encoded PEM; the chain starts with the leaf, as Envoy's does), `Subject`
///   (RFC 4514, quoted), and a `URI` and `DNS` pair per SAN. Values are quoted with `"` when
///   they hold `,` `;` `=` or a space, `"` and `\` escaped with `\`.
/// - `nginx`, `aws-alb`: URL-encoded PEM (nginx `$ssl_client_escaped_cert`: the leaf; the
///   ALB: leaf and intermediates, `+`, `=` and `/` left as they are).
/// - `cloudflare`, `traefik`, `haproxy`: base64 DER of the leaf.
///
/// Values hold only visible ASCII: whatever the certificate says, nothing it holds can
/// end the header or start another.
pub fn identity_headers(client: &Authenticated, preset: Preset) -> Vec<(HeaderName, String)> {
    let intermediates = client.chain().map_or(&[][..], |c| c.intermediates());
    identity_values(client.certificate(), intermediates, preset)
}

/// [`identity_headers`] as the header values [`prepare_request`] appends (a value that is
/// not a valid header value is left out: none is, see there).
pub fn identity_header_values(
    client: &Authenticated,
    preset: Preset,
) -> Vec<(HeaderName, HeaderValue)> {
    identity_headers(client, preset)
        .into_iter()
        .filter_map(|(name, value)| Some((name, HeaderValue::try_from(value).ok()?)))
        .collect()
}

fn identity_values(
    leaf: &ClientCertificate,
    intermediates: &[ClientCertificate],
    preset: Preset,
) -> Vec<(HeaderName, String)> {
    let name = |n: &str| HeaderName::from_bytes(n.as_bytes()).ok();
    let Some(header) = name(preset.header()) else {
        return Vec::new();
    };
    match preset.encoding() {
        Encoding::Rfc9440 => {
            let mut out = vec![(header, sf_binary(leaf.der()))];
            if !intermediates.is_empty()
                && let Some(chain) = name("client-cert-chain")
            {
                let items: Vec<String> = intermediates.iter().map(|c| sf_binary(c.der())).collect();
                out.push((chain, items.join(", ")));
            }
            out
        }
        Encoding::Xfcc => vec![(header, xfcc(leaf, intermediates))],
        Encoding::UrlPem => vec![(header, percent_encode(&pem(leaf.der()), b""))],
        Encoding::UrlPemAws => {
            let all: String = std::iter::once(leaf)
                .chain(intermediates)
                .map(|c| pem(c.der()))
                .collect();
            vec![(header, percent_encode(&all, b"+=/"))]
        }
        Encoding::Base64Der => vec![(header, BASE64.encode(leaf.der()))],
    }
}

/// An RFC 8941 byte sequence.
fn sf_binary(der: &[u8]) -> String {
    format!(":{}:", BASE64.encode(der))
}

/// A certificate as PEM, 64 columns.
fn pem(der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 60);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Percent-encodes every byte but RFC 3986's unreserved characters and `keep`.
fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Envoy's `X-Forwarded-Client-Cert` element for the client.
fn xfcc(leaf: &ClientCertificate, intermediates: &[ClientCertificate]) -> String {
    let hash: String = leaf
        .fingerprint_sha256()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cert = percent_encode(&pem(leaf.der()), b"");
    let chain: String = std::iter::once(leaf)
        .chain(intermediates)
        .map(|c| percent_encode(&pem(c.der()), b""))
        .collect();
    let mut pairs = vec![
        format!("Hash={hash}"),
        format!("Cert=\"{cert}\""),
        format!("Chain=\"{chain}\""),
        format!("Subject={}", xfcc_quoted(&leaf.subject().to_rfc4514())),
    ];
    for san in leaf.subject_alt_names() {
        match san {
            GeneralName::Uri(uri) => pairs.push(format!("URI={}", xfcc_value(uri))),
            GeneralName::Dns(dns) => pairs.push(format!("DNS={}", xfcc_value(dns))),
            _ => {}
        }
    }
    pairs.join(";")
}

/// A value bare when it can be, else quoted ([`xfcc_quoted`]).
fn xfcc_value(v: &str) -> String {
    if v.bytes()
        .all(|b| b.is_ascii_graphic() && !b",;=\"\\".contains(&b))
        && !v.is_empty()
    {
        v.to_owned()
    } else {
        xfcc_quoted(v)
    }
}

/// `"…"` with `"` and `\` escaped with `\`, and every byte outside visible ASCII (and
/// space) written as RFC 4514's `\XX` hex escape, so the value is one header line.
fn xfcc_quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for &b in v.as_bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b' ' | 0x21..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\\\{b:02X}")),
        }
    }
    out.push('"');
    out
}

/// Whether `path` lies under one of `prefixes` (`--open`): equal to one, or going on past it
/// at a `/` (`/health` opens `/health` and `/health/live`, not `/healthz`). A path a server
/// behind could read as another (a `.` or `..` segment, an empty segment, any `%` escape,
/// a `;` or a backslash) is never open: it is decided like any other request.
pub fn is_open_path<S: AsRef<str>>(prefixes: &[S], path: &str) -> bool {
    if !path.starts_with('/') || path_is_ambiguous(path) {
        return false;
    }
    prefixes.iter().any(|p| {
        let p = p.as_ref();
        match path.strip_prefix(p) {
            Some(rest) => rest.is_empty() || p.ends_with('/') || rest.starts_with('/'),
            None => false,
        }
    })
}

/// `%` (an encoded `/`, `.` or `\` reads differently behind), `;` (Tomcat's `..;`), `\`,
/// an empty, `.` or `..` segment: the same test as path policies' (`policy::for_path`),
/// which apply to such a path where `--open` does not.
fn path_is_ambiguous(path: &str) -> bool {
    crate::policy::path::is_ambiguous(path)
}

#[cfg(test)]
mod tests;
