#![allow(clippy::unwrap_used)]

use certauth_testkit::{Authority, Leaf};
use rcgen::{DnType, SanType};

use super::*;
use crate::ProxyHeaderConfig;

/// A client with a hostile subject and SANs, under an intermediate.
fn chain() -> (ClientCertificate, Vec<ClientCertificate>) {
    let root = Authority::root("root");
    let inter = root.intermediate("inter \"ca\", ;=\\");
    let mut leaf = Leaf::client("client, \"quoted\";x=1\r\nX-Injected: 1 \u{e9}\\");
    leaf.extra_dn
        .push((DnType::OrganizationName, "O;=\"\\".into()));
    leaf.sans = vec![
        SanType::URI("spiffe://example.org/a;b=c".try_into().unwrap()),
        SanType::DnsName("client.example".try_into().unwrap()),
        SanType::DnsName("two.example".try_into().unwrap()),
    ];
    let issued = inter.issue(&leaf);
    let leaf = ClientCertificate::from_der(&issued.der).unwrap();
    let inter = ClientCertificate::from_der(&inter.cert.der).unwrap();
    (leaf, vec![inter])
}

fn headers_for(preset: Preset) -> (Vec<(HeaderName, String)>, ClientCertificate, Vec<Vec<u8>>) {
    let (leaf, inters) = chain();
    let ders = std::iter::once(&leaf)
        .chain(&inters)
        .map(|c| c.der().to_vec())
        .collect();
    (identity_values(&leaf, &inters, preset), leaf, ders)
}

/// Every preset's headers read back, through the core's own header mode, as the DER that
/// was presented (the leaf, and the intermediates where the format carries them); every
/// value is one visible-ASCII header line.
#[test]
fn identity_headers_read_back_as_presented() {
    for preset in Preset::ALL {
        let (headers, leaf, ders) = headers_for(preset);
        for (_, v) in &headers {
            assert!(
                v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
                "{preset}: {v}"
            );
            assert!(HeaderValue::from_str(v).is_ok());
        }
        let config = ProxyHeaderConfig::preset(preset);
        let value = headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(preset.header()))
            .unwrap();
        let chain = headers
            .iter()
            .find(|(n, _)| n.as_str() == "client-cert-chain")
            .map(|(_, v)| v.as_bytes());
        let got = config.decode(value.1.as_bytes(), chain).unwrap();
        assert_eq!(got[0].as_ref(), leaf.der(), "{preset}");
        let carries_chain = matches!(
            preset.encoding(),
            Encoding::Rfc9440 | Encoding::Xfcc | Encoding::UrlPemAws
        );
        if carries_chain {
            let got: Vec<Vec<u8>> = got.iter().map(|c| c.to_vec()).collect();
            assert_eq!(got, ders, "{preset}");
        }
    }
}

#[test]
fn rfc9440_is_colon_delimited_base64_of_the_der() {
    let (headers, leaf, ders) = headers_for(Preset::Rfc9440);
    assert_eq!(headers[0].0, "client-cert");
    assert_eq!(headers[0].1, format!(":{}:", BASE64.encode(leaf.der())));
    assert_eq!(headers[1].0, "client-cert-chain");
    assert_eq!(headers[1].1, format!(":{}:", BASE64.encode(&ders[1])));
}

#[test]
fn xfcc_has_envoys_keys_and_parses() {
    let (headers, leaf, _) = headers_for(Preset::Envoy);
    let value = &headers[0].1;
    let elements = crate::proxy::xfcc::parse(value).unwrap();
    assert_eq!(elements.len(), 1, "{value}");
    let e = &elements[0];
    assert_eq!(
        e.hash.as_deref().unwrap(),
        leaf.fingerprint_sha256()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert!(e.cert.is_some() && e.chain.is_some());
    assert_eq!(e.uri, ["spiffe://example.org/a;b=c"]);
    assert_eq!(e.dns, ["client.example", "two.example"]);
    // The subject as RFC 4514 with its escapes; the CR/LF and é as hex escapes.
    let subject = e.subject.as_deref().unwrap();
    assert!(
        subject.contains("CN=client\\, \\\"quoted\\\"\\;x=1\\0D\\0AX-Injected: 1 \\C3\\A9"),
        "{subject}"
    );
}

#[test]
fn identity_header_names_in_any_case() {
    for name in [
        "Client-Cert",
        "CLIENT-CERT-CHAIN",
        "x-forwarded-client-cert",
        "X-SSL-Client-Cert",
        "x-ssl-client-verify",
        "X-Amzn-Mtls-Clientcert",
        "cf-client-cert-der-base64",
        "X-Forwarded-Tls-Client-Cert-Info",
    ] {
        assert!(is_identity_header(name), "{name}");
    }
    for preset in Preset::ALL {
        assert!(is_identity_header(preset.header()), "{preset}");
    }
    // CGI and WSGI servers read `_` as `-`: `Client_Cert` is `HTTP_CLIENT_CERT` too.
    for name in [
        "client_cert",
        "Client_Cert_Chain",
        "X_Forwarded_Client_Cert",
        "x-ssl_client-cert",
    ] {
        assert!(is_identity_header(name), "{name}");
    }
    // HAProxy's `X-SSL*` examples and authenticating proxies' user headers.
    for name in [
        "X-SSL",
        "x-ssl-issuer",
        "X-SSL-Verified",
        "x-client-subject",
        "X-TLS-Client-Cert",
        "x-peer-cert",
        "Remote-User",
        "x_remote_user",
        "X-Forwarded-User",
        "x-forwarded-email",
        "X-Auth-Request-User",
    ] {
        assert!(is_identity_header(name), "{name}");
    }
    for name in [
        "host",
        "x-forwarded-for",
        "cookie",
        "client",
        "client_",
        "x-ss",
    ] {
        assert!(!is_identity_header(name), "{name}");
    }
}

fn request(head: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::builder().uri("/x");
    for (n, v) in head {
        b = b.header(*n, *v);
    }
    b.body(()).unwrap()
}

#[test]
fn request_loses_hop_by_hop_and_spoofed_identity_and_gains_forwarding() {
    let mut req = request(&[
        ("host", "app.example"),
        ("connection", "keep-alive, X-Secret, host"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("te", "trailers"),
        ("proxy-connection", "close"),
        ("upgrade", "h2c"),
        ("CLIENT-CERT", ":AAAA:"),
        ("client-cert-chain", ":AAAA:"),
        ("X-Forwarded-Client-Cert", "Hash=00"),
        ("x-ssl-client-verify", "SUCCESS"),
        ("x-custom-cert", "forged"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("content-length", "0"),
        ("accept", "*/*"),
        // `_` spellings a CGI-style server reads as certauth's own headers.
        ("client_cert", ":AAAA:"),
        ("X_Forwarded_Client_Cert", "Hash=00"),
        ("x_forwarded_for", "10.6.6.6"),
        ("X_Forwarded_Proto", "http"),
        ("x_custom_cert", "forged"),
        ("transfer_encoding", "chunked"),
    ]);
    let custom = ["x-custom-cert".to_owned()];
    prepare_request(
        &mut req,
        None,
        Preset::Rfc9440,
        Some("127.0.0.9".parse().unwrap()),
        &custom,
    )
    .unwrap();
    let mut names: Vec<&str> = req.headers().keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["accept", "host", "x-forwarded-for", "x-forwarded-proto"]
    );
    assert_eq!(req.headers()["host"], "app.example");
    assert_eq!(req.headers()["x-forwarded-for"], "10.0.0.1, 127.0.0.9");
    assert_eq!(req.headers()["x-forwarded-proto"], "https");
}

/// An authenticated client's upgrade keeps `Upgrade` (tests/upstream.rs, a real WebSocket
/// through the front door: only the core can make an `Authenticated`); an open path's goes
/// on as a plain request, since its tunnel would escape the unauthenticated connection's
/// limits.
#[test]
fn open_path_upgrade_is_plain_and_http2_gets_a_host() {
    let mut req = request(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "k"),
    ]);
    *req.uri_mut() = "https://app.example:8443/ws".parse().unwrap();
    prepare_request(&mut req, None, Preset::Envoy, None, &[]).unwrap();
    assert!(req.headers().get("upgrade").is_none());
    assert!(req.headers().get("connection").is_none());
    assert!(!is_websocket_upgrade(req.headers()));
    assert_eq!(req.headers()["host"], "app.example:8443");
    assert!(req.headers().get("x-forwarded-for").is_none());
}

/// Every address header, in any case and `_` spelling, is removed; the client's
/// `X-Forwarded-For` is kept and appended to; certauth writes no `Forwarded` of its own.
#[test]
fn address_headers_are_removed_and_forwarded_for_is_appended() {
    let mut head = vec![
        ("Forwarded".to_owned(), "for=10.6.6.6;proto=http;host=admin"),
        ("X_Real_IP".to_owned(), "10.6.6.6"),
        ("x-real-ip".to_owned(), "10.6.6.6"),
        ("X-Forwarded-For".to_owned(), "10.0.0.1"),
        ("accept".to_owned(), "*/*"),
    ];
    for name in ADDRESS_HEADERS {
        head.push((name.to_owned(), "forged"));
        head.push((name.to_ascii_uppercase().replace('-', "_"), "forged"));
    }
    let mut req = request(
        &head
            .iter()
            .map(|(n, v)| (n.as_str(), *v))
            .collect::<Vec<_>>(),
    );
    prepare_request(
        &mut req,
        None,
        Preset::Rfc9440,
        Some("192.0.2.7".parse().unwrap()),
        &[],
    )
    .unwrap();
    let mut names: Vec<&str> = req.headers().keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["accept", "x-forwarded-for", "x-forwarded-proto"]);
    assert_eq!(req.headers()["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
    for name in ADDRESS_HEADERS {
        assert!(is_address_header(name));
        assert!(is_address_header(&name.to_ascii_uppercase()));
        assert!(is_address_header(&name.replace('-', "_")));
    }
    for name in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "forwarded-x",
        "x-real-ipx",
    ] {
        assert!(!is_address_header(name), "{name}");
    }
}

/// HTTP/2's split cookie fields reach an HTTP/1.1 upstream as one, joined with `; `, in
/// order; one cookie field is left as it is.
#[test]
fn cookie_fields_are_joined() {
    let mut req = request(&[("cookie", "a=1"), ("cookie", "b=2; c=3"), ("cookie", "d=4")]);
    prepare_request(&mut req, None, Preset::Rfc9440, None, &[]).unwrap();
    let cookies: Vec<&[u8]> = req
        .headers()
        .get_all("cookie")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    assert_eq!(cookies, [&b"a=1; b=2; c=3; d=4"[..]]);
    let mut req = request(&[("cookie", "a=1")]);
    prepare_request(&mut req, None, Preset::Rfc9440, None, &[]).unwrap();
    assert_eq!(req.headers()["cookie"], "a=1");
}

#[test]
fn trailers_lose_what_the_head_would() {
    let mut trailers = HeaderMap::new();
    for (n, v) in [
        ("client-cert", ":AAAA:"),
        ("x_forwarded_client_cert", "Hash=00"),
        ("x-forwarded-for", "10.6.6.6"),
        ("x-forwarded-proto", "http"),
        ("host", "admin.example"),
        ("x-custom-cert", "forged"),
        ("connection", "close"),
        ("x_real_ip", "10.6.6.6"),
        ("forwarded", "for=10.6.6.6"),
        ("x-checksum", "abc"),
    ] {
        trailers.append(HeaderName::from_static(n), HeaderValue::from_static(v));
    }
    prepare_trailers(&mut trailers, &["X-Custom-Cert".to_owned()]);
    let names: Vec<&str> = trailers.keys().map(HeaderName::as_str).collect();
    assert_eq!(names, ["x-checksum"]);
}

#[test]
fn ambiguous_framing_is_refused() {
    for head in [
        &[("content-length", "5"), ("transfer-encoding", "chunked")][..],
        &[("content-length", "5"), ("content-length", "6")],
        &[("content-length", "5, 6")],
        &[("content-length", "+5")],
        &[("transfer-encoding", "chunked, gzip")],
    ] {
        let mut req = request(head);
        let err = prepare_request(&mut req, None, Preset::Rfc9440, None, &[]).unwrap_err();
        assert_eq!(err.status().code(), 400, "{head:?}");
    }
    let mut connect = request(&[]);
    *connect.method_mut() = http::Method::CONNECT;
    let err = prepare_request(&mut connect, None, Preset::Rfc9440, None, &[]).unwrap_err();
    assert_eq!(err.status().code(), 400);
    let mut req = request(&[("content-length", "5"), ("content-length", "5")]);
    prepare_request(&mut req, None, Preset::Rfc9440, None, &[]).unwrap();
    // Two Hosts (RFC 9112 §3.2): decided for one, the upstream could route by the other.
    let mut req = request(&[("host", "public.example"), ("host", "admin.example")]);
    let err = prepare_request(&mut req, None, Preset::Rfc9440, None, &[]).unwrap_err();
    assert_eq!(err.status().code(), 400);
    // Userinfo (RFC 9110 §4.2.4): decided for the host past it, it would reach the upstream
    // as `Host: evil@admin.example`.
    let mut req = request(&[("host", "public.example")]);
    *req.uri_mut() = "http://evil@admin.example/x".parse().unwrap();
    let err = prepare_request(&mut req, None, Preset::Rfc9440, None, &[]).unwrap_err();
    assert_eq!(err.status().code(), 400);
}

#[test]
fn a_transfer_coding_other_than_chunked_is_not_implemented() {
    // Each ends in chunked (its framing is clear, so not a 400), but only `chunked` is
    // decoded and applied again: the rest would reach the upstream unlabelled.
    for codings in [
        &["gzip, chunked"][..],
        &["gzip", "chunked"],
        &["chunked, chunked"],
        &["chunked", "chunked"],
        &["identity, chunked"],
        &["x-custom ,chunked"],
    ] {
        let head: Vec<_> = codings.iter().map(|c| ("transfer-encoding", *c)).collect();
        let mut req = request(&head);
        let err = prepare_request(&mut req, None, Preset::Rfc9440, None, &[]).unwrap_err();
        assert_eq!(err, HeadError::UnsupportedTransferCoding, "{codings:?}");
        assert_eq!(err.status().code(), 501);
        assert_eq!(err.response().status().code(), 501);
    }
    // `chunked` alone, in any case, with spaces or empty list elements: forwarded (the
    // client library writes its own `chunked`).
    for codings in [
        &["chunked"][..],
        &["Chunked"],
        &[" CHUNKED "],
        &[", chunked,"],
        &["chunked", ""],
    ] {
        let head: Vec<_> = codings.iter().map(|c| ("transfer-encoding", *c)).collect();
        let mut req = request(&head);
        prepare_request(&mut req, None, Preset::Rfc9440, None, &[])
            .unwrap_or_else(|e| panic!("{codings:?}: {e}"));
        assert!(!req.headers().contains_key("transfer-encoding"));
    }
}

#[test]
fn response_loses_hop_by_hop_but_a_101_keeps_its_upgrade() {
    let mut h = HeaderMap::new();
    h.insert("connection", HeaderValue::from_static("close, x-internal"));
    h.insert("x-internal", HeaderValue::from_static("1"));
    h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    h.insert("content-type", HeaderValue::from_static("text/plain"));
    let mut h2 = h.clone();
    prepare_response(http::StatusCode::OK, &mut h);
    assert_eq!(h.len(), 1);
    h2.insert("upgrade", HeaderValue::from_static("websocket"));
    prepare_response(http::StatusCode::SWITCHING_PROTOCOLS, &mut h2);
    assert_eq!(h2["upgrade"], "websocket");
    assert_eq!(h2["connection"], "upgrade");
}

#[test]
fn open_paths_match_whole_segments_and_refuse_ambiguity() {
    let open = ["/healthz", "/public/"];
    for p in ["/healthz", "/healthz/live", "/public/", "/public/a/b.css"] {
        assert!(is_open_path(&open, p), "{p}");
    }
    for p in [
        "/healthzx",
        "/public",
        "/admin",
        "/healthz/../admin",
        "/healthz/..;/admin",
        "/healthz/%2e%2e/admin",
        "/healthz%2f..%2fadmin",
        "/healthz/./x",
        "/healthz//x",
        "/healthz\\..\\admin",
        "/healthz.",
        "/public/x~",
        "/public/\u{e9}",
        "healthz",
        "",
    ] {
        assert!(!is_open_path(&open, p), "{p}");
    }
}

/// h2c smuggling: only a WebSocket upgrade is one the front door relays. An `h2c` upgrade
/// (or a list naming it, or two `Upgrade` fields) is not, loses its `Upgrade` and its
/// `HTTP2-Settings` (even when `Connection` does not name it), and a `101` to anything but
/// WebSocket keeps no `Upgrade` (the relay answers it 502).
#[test]
fn only_a_websocket_upgrade_is_relayed() {
    let headers = |pairs: &[(&str, &str)]| request(pairs).headers().clone();
    for yes in [
        &[("connection", "Upgrade"), ("upgrade", "websocket")][..],
        &[
            ("connection", "keep-alive, upgrade"),
            ("upgrade", " WebSocket "),
        ][..],
    ] {
        assert!(is_websocket_upgrade(&headers(yes)), "{yes:?}");
    }
    for no in [
        &[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
        ][..],
        &[("connection", "Upgrade"), ("upgrade", "websocket, h2c")][..],
        &[("connection", "Upgrade"), ("upgrade", "h2c, websocket")][..],
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("upgrade", "h2c"),
        ][..],
        &[("connection", "keep-alive"), ("upgrade", "websocket")][..],
        &[("connection", "Upgrade")][..],
    ] {
        assert!(!is_websocket_upgrade(&headers(no)), "{no:?}");
    }
    let mut req = request(&[
        ("connection", "Upgrade"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"),
    ]);
    prepare_request(&mut req, None, Preset::Rfc9440, None, &[]).unwrap();
    for gone in ["upgrade", "http2-settings", "connection"] {
        assert!(req.headers().get(gone).is_none(), "{gone}");
    }
    let mut h2c = headers(&[("connection", "Upgrade"), ("upgrade", "h2c")]);
    prepare_response(http::StatusCode::SWITCHING_PROTOCOLS, &mut h2c);
    assert!(h2c.get("upgrade").is_none() && h2c.get("connection").is_none());
    let mut ws = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
    prepare_response(http::StatusCode::SWITCHING_PROTOCOLS, &mut ws);
    assert_eq!(ws["upgrade"], "websocket");
    assert_eq!(ws["connection"], "upgrade");
}

#[test]
fn addresses_are_written_as_display_writes_them() {
    let mut addresses: Vec<IpAddr> = ["::1", "2001:db8::1", "::ffff:10.0.0.1"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    for octet in [0, 1, 9, 10, 42, 99, 100, 109, 110, 199, 200, 255] {
        addresses.push(IpAddr::from([octet, 255 - octet, 7, octet]));
    }
    for ip in addresses {
        let text = address_text(ip);
        assert_eq!(text, ip.to_string());
        if ip.is_ipv4() {
            assert_eq!(text.capacity(), text.len(), "{ip}: no room to spare");
        }
    }
}

/// [`identity_header_values`] (what the front door keeps per connection) are
/// [`identity_headers`] as header values, for a client the core let in, in every preset.
#[test]
fn identity_header_values_are_the_identity_headers() {
    use crate::{
        Authenticator, ChainVerifier, Decision, HeadParser, HeadProgress, Limits, PeerInfo,
        TrustAnchors,
    };
    let root = Authority::root("values root");
    let inter = root.intermediate("values inter");
    let leaf = inter.issue(&Leaf::client("values-client"));
    let anchors = TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS))
        .build()
        .unwrap();
    let head = match HeadParser::new(&Limits::DEFAULT).parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") {
        Ok(HeadProgress::Complete { head, .. }) => head,
        other => panic!("{other:?}"),
    };
    let chain = [leaf.der.clone(), inter.cert.der.clone()];
    let peer = PeerInfo::new(&chain, None);
    let decided = auth.decide(&peer, &head, certauth_testkit::now()).ready();
    let Some(Decision::Allow(client)) = decided else {
        panic!("{decided:?}")
    };
    for preset in Preset::ALL {
        let values = identity_header_values(&client, preset);
        let expected: Vec<_> = identity_headers(&client, preset)
            .into_iter()
            .map(|(n, v)| (n, HeaderValue::try_from(v).unwrap()))
            .collect();
        assert!(!values.is_empty(), "{preset}");
        assert_eq!(values, expected, "{preset}");
    }
}

/// The first-byte tables only pass names over faster: every name of both lists (in any
/// case, with `_` for `-`, and longer for the prefixes) is still found, and names that
/// start like none are compared to none. Against a plain scan of the lists.
#[test]
fn first_byte_tables_find_every_listed_name() {
    let plain_identity = |n: &str| {
        IDENTITY_HEADER_PREFIXES
            .iter()
            .any(|p| n.len() >= p.len() && same_to_cgi(&n.as_bytes()[..p.len()], p.as_bytes()))
    };
    let plain_address = |n: &str| {
        ADDRESS_HEADERS
            .iter()
            .any(|h| same_to_cgi(n.as_bytes(), h.as_bytes()))
    };
    let mut names: Vec<String> = Vec::new();
    for listed in IDENTITY_HEADER_PREFIXES.iter().chain(&ADDRESS_HEADERS) {
        assert!(!listed.is_empty());
        assert_eq!(
            listed.bytes().map(cgi_byte).collect::<Vec<_>>(),
            listed.as_bytes(),
            "{listed} is folded"
        );
        names.push((*listed).to_owned());
        names.push(listed.to_ascii_uppercase());
        names.push(listed.replace('-', "_"));
        names.push(format!("{listed}x"));
        names.push(listed[1..].to_owned());
    }
    for b in 0..=255u8 {
        names.push(format!("{}-ssl", char::from(b)));
    }
    names.extend(
        [
            "host",
            "accept",
            "user-agent",
            "",
            "_",
            "X_SSL_CLIENT",
            "Forwarded",
        ]
        .map(String::from),
    );
    let (mut identity, mut address) = (0, 0);
    for n in &names {
        assert_eq!(is_identity_header(n), plain_identity(n), "{n:?}");
        assert_eq!(is_address_header(n), plain_address(n), "{n:?}");
        identity += usize::from(is_identity_header(n));
        address += usize::from(is_address_header(n));
    }
    // Both ways: the lists' names are found, the others are not.
    assert!(identity >= 3 * IDENTITY_HEADER_PREFIXES.len(), "{identity}");
    assert!(address >= 3 * ADDRESS_HEADERS.len(), "{address}");
    for n in ["host", "accept", "user-agent", "", "x-sslx", "forwardedx"] {
        assert!(!is_address_header(n), "{n}");
    }
    assert!(
        !is_identity_header("host")
            && !is_identity_header("")
            && is_identity_header("X_SSL_CLIENT")
    );
}
