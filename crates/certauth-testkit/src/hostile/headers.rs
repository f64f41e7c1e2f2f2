//! Hostile input against a running header-mode server (plain TCP behind a proxy): forged
//! certificate headers from addresses that are not trusted proxies, XFCC with broken
//! quoting and escapes, mismatched hashes, oversized values and chains, repeated headers,
//! verify headers that are missing, wrong or repeated, and TLS spoken to a plain listener.
//! Each case asserts the exact response and the reported code, then that a client sent by
//! the trusted proxy is still served.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use certauth_core::proxy::{Preset, ProxyHeaderConfig};
use certauth_core::{Authenticator, ChainVerifier, Limits, TrustAnchors};

use super::{error, limits};
use crate::Outcome;
use crate::encode::{nginx_escaped, sha256_hex};
use crate::suite::{self, Compare, Pki, PlainHarness, Server, UPGRADE};
use crate::{Authority, Issued, Leaf, pem};

/// Cap on a certificate header's value in these servers (the head allows more, so the
/// proxy-header cap is what answers).
const MAX_VALUE: usize = 8 * 1024;
/// Cap on a forwarded chain's length in these servers.
const MAX_CHAIN: usize = 4;

/// The hostile limits, with room in the head for a forwarded chain.
fn header_limits() -> Limits {
    limits()
        .with_max_header_bytes(16 * 1024)
        .with_max_head_bytes(32 * 1024)
}

fn authenticator(pki: &Pki, proxy: ProxyHeaderConfig) -> Authenticator {
    let provider = crate::ring_provider();
    let anchors = TrustAnchors::from_der([pki.root.cert.der.clone()]).unwrap();
    Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            provider.signature_verification_algorithms.all,
        ))
        .proxy_header(
            proxy
                .with_max_value_bytes(MAX_VALUE)
                .with_max_chain_len(MAX_CHAIN),
        )
        .policy(suite::policy)
        .limits(header_limits())
        .build()
        .unwrap()
}

/// An XFCC element as Envoy writes it: `By`, `Hash` of `hash_of`, the URL-escaped `Cert`
/// and `Chain`, a `Subject` with quoted separators.
fn xfcc(cert: &Issued, chain_pem: &str, hash_of: &[u8]) -> String {
    format!(
        "By=spiffe://example.org/edge;Hash={};Cert=\"{}\";Chain=\"{}\";Subject=\"CN=x,O=a\\, b;c=d\"",
        sha256_hex(hash_of),
        nginx_escaped(&cert.pem()),
        nginx_escaped(chain_pem),
    )
}

fn xfcc_of(cert: &Issued) -> String {
    xfcc(cert, &cert.pem(), &cert.der)
}

/// A plain TCP connection to `to` from `from` (127.0.0.1 is the trusted proxy; 127.0.0.2
/// is anyone else on the host).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(tcp)
}

/// `GET /http` with `headers` (each `Name: value`), from `from`; everything up to the close.
fn request(server: &Server, from: Ipv4Addr, headers: &[String]) -> String {
    request_bytes(server, from, &http_request(headers))
}

fn http_request(headers: &[String]) -> Vec<u8> {
    let mut head = String::from("GET /http HTTP/1.1\r\nHost: backend\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn request_bytes(server: &Server, from: Ipv4Addr, bytes: &[u8]) -> String {
    let Ok(mut tcp) = connect_from(from, server.addr) else {
        return "CONNECT FAILED".into();
    };
    let _ = tcp.write_all(bytes);
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The proxy forwards a trusted client's WebSocket: 101, one echo, an `ALLOW` report.
fn healthy(server: &Server, headers: &[String]) -> Result<(), String> {
    let mut tcp = connect_from(PROXY, server.addr).map_err(|e| e.to_string())?;
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let upgrade = UPGRADE.replacen("\r\n\r\n", &format!("\r\n{extra}\r\n"), 1);
    tcp.write_all(upgrade.as_bytes())
        .map_err(|e| e.to_string())?;
    let head = suite::read_until(&mut tcp, b"\r\n\r\n");
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "upgrade answered {:?}",
            String::from_utf8_lossy(&head)
        ));
    }
    tcp.write_all(&suite::client_text_frame("ping"))
        .map_err(|e| e.to_string())?;
    let echo = suite::read_until(&mut tcp, b"Echo: ping");
    let report = server.outcome();
    if !echo.ends_with(b"Echo: ping") || report != Outcome::trusted() {
        return Err(format!(
            "health check got {:?} / {report}",
            String::from_utf8_lossy(&echo)
        ));
    }
    Ok(())
}

const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const XFCC: &str = "X-Forwarded-Client-Cert";

/// Runs every header-mode case against a raw gate (exact bytes); panics listing the
/// failures.
pub fn run(harness: &impl PlainHarness) {
    run_with(harness, Compare::Exact);
}

/// Runs the header-mode cases comparing responses as `compare` says. With
/// [`Compare::Normalized`] (hyper, which parses heads itself) the case that is about head
/// parsing, a TLS ClientHello sent to the plain listener, is left out.
pub fn run_with(harness: &impl PlainHarness, compare: Compare) {
    let pki = Pki::new();
    let envoy = Server::start_plain(
        harness,
        authenticator(
            &pki,
            ProxyHeaderConfig::preset(Preset::Envoy)
                .with_trusted_proxies(["127.0.0.1/32"])
                .unwrap(),
        ),
    );
    let nginx = Server::start_plain(
        harness,
        authenticator(
            &pki,
            ProxyHeaderConfig::preset(Preset::Nginx)
                .with_trusted_proxies(["127.0.0.1"])
                .unwrap()
                .with_verify_header("X-SSL-Client-Verify", "SUCCESS")
                .unwrap(),
        ),
    );
    let envoy_ok = vec![format!("{XFCC}: {}", xfcc_of(&pki.trusted))];
    let nginx_cert = |c: &Issued| format!("X-SSL-Client-Cert: {}", nginx_escaped(&c.pem()));
    let nginx_ok = vec![
        nginx_cert(&pki.trusted),
        "X-SSL-Client-Verify: SUCCESS".to_owned(),
    ];

    let unauthorized = error("401 Unauthorized", "Unauthorized");
    let forbidden = error("403 Forbidden", "Forbidden");
    let bad_request = error("400 Bad Request", "Bad Request");
    let malformed = "MALFORMED_CERTIFICATE_HEADER";
    let refused = |code: &str| Outcome::denied(code);

    // A chain longer than the cap: the trusted leaf under five intermediates.
    let mut authorities = vec![Authority::root("Long Chain Root")];
    for i in 0..5 {
        let next = authorities[i].intermediate(&format!("Long Chain Intermediate {i}"));
        authorities.push(next);
    }
    let deep = authorities[5].issue(&Leaf::client("trusted-client").around_wall_clock());
    let deep_chain: String = std::iter::once(deep.pem())
        .chain(authorities[1..].iter().rev().map(|a| a.cert.pem()))
        .collect();
    let not_a_certificate = pem("CERTIFICATE", &[0x30, 0x03, 0x02, 0x01, 0x01]);

    struct Case<'a> {
        name: &'a str,
        server: &'a Server,
        from: Ipv4Addr,
        request: Vec<u8>,
        want: String,
        report: Outcome,
    }
    let case = |name, server, from, headers: Vec<String>, want: &String, code: &str| Case {
        name,
        server,
        from,
        request: http_request(&headers),
        want: want.clone(),
        report: refused(code),
    };
    let xfcc_header = |value: &str| vec![format!("{XFCC}: {value}")];
    let escaped = nginx_escaped(&pki.trusted.pem());
    let cases = vec![
        // Forged headers: trust is decided by the connection's address, before decoding.
        case(
            "forged XFCC from an address that is not a trusted proxy",
            &envoy,
            STRANGER,
            envoy_ok.clone(),
            &unauthorized,
            "UNTRUSTED_PROXY_HEADER",
        ),
        case(
            "forged XFCC with broken quoting from an untrusted address",
            &envoy,
            STRANGER,
            xfcc_header("Cert=\"%2D%2D%2D"),
            &unauthorized,
            "UNTRUSTED_PROXY_HEADER",
        ),
        case(
            "forged XFCC with X-Forwarded-For naming the proxy",
            &envoy,
            STRANGER,
            [envoy_ok.clone(), vec!["X-Forwarded-For: 127.0.0.1".into()]].concat(),
            &unauthorized,
            "UNTRUSTED_PROXY_HEADER",
        ),
        case(
            "forged nginx headers from an untrusted address",
            &nginx,
            STRANGER,
            nginx_ok.clone(),
            &unauthorized,
            "UNTRUSTED_PROXY_HEADER",
        ),
        // XFCC syntax, from the trusted proxy.
        case(
            "XFCC with an unterminated quote",
            &envoy,
            PROXY,
            xfcc_header(&format!("By=a;Cert=\"{escaped}")),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC with a quote inside an unquoted value",
            &envoy,
            PROXY,
            xfcc_header(&format!("By=a\"b;Cert=\"{escaped}\"")),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC ending in a backslash inside quotes",
            &envoy,
            PROXY,
            xfcc_header("By=a;Subject=\"CN=x\\"),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC with a key and no value",
            &envoy,
            PROXY,
            xfcc_header(&format!("By;Cert=\"{escaped}\"")),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC with text after a closing quote",
            &envoy,
            PROXY,
            xfcc_header(&format!("Cert=\"{escaped}\"junk")),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC with an invalid % escape in Cert",
            &envoy,
            PROXY,
            xfcc_header("Cert=\"%2D%ZZ\""),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC whose Cert is not PEM",
            &envoy,
            PROXY,
            xfcc_header("Cert=\"hello\""),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC without Cert (Envoy's documentation example)",
            &envoy,
            PROXY,
            xfcc_header(
                "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;URI=spiffe://lyft.com/test-team",
            ),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC whose last element has no Cert after a thousand hops",
            &envoy,
            PROXY,
            xfcc_header(&format!("{},By=a", "By=a,".repeat(1000))),
            &unauthorized,
            malformed,
        ),
        case(
            "XFCC whose Hash is another certificate's",
            &envoy,
            PROXY,
            xfcc_header(&xfcc(&pki.trusted, &pki.trusted.pem(), &pki.denied.der)),
            &unauthorized,
            "XFCC_HASH_MISMATCH",
        ),
        case(
            "XFCC whose Cert is not a certificate",
            &envoy,
            PROXY,
            xfcc_header(&format!("Cert=\"{}\"", nginx_escaped(&not_a_certificate))),
            &unauthorized,
            "MALFORMED_CERTIFICATE",
        ),
        // Caps and repetition.
        case(
            "XFCC over the value cap",
            &envoy,
            PROXY,
            xfcc_header(&format!("By={};Cert=\"{escaped}\"", "a".repeat(MAX_VALUE))),
            &unauthorized,
            "CERTIFICATE_HEADER_TOO_LARGE",
        ),
        case(
            "XFCC with a chain over the cap",
            &envoy,
            PROXY,
            xfcc_header(&format!(
                "Cert=\"{}\";Chain=\"{}\"",
                nginx_escaped(&deep.pem()),
                nginx_escaped(&deep_chain)
            )),
            &unauthorized,
            "CHAIN_TOO_LONG",
        ),
        case(
            "XFCC twice",
            &envoy,
            PROXY,
            [envoy_ok.clone(), envoy_ok.clone()].concat(),
            &bad_request,
            "REPEATED_CERTIFICATE_HEADER",
        ),
        // Decoded certificates still face verification and the policy.
        case(
            "XFCC with a certificate from another CA",
            &envoy,
            PROXY,
            xfcc_header(&xfcc_of(&pki.other_ca)),
            &unauthorized,
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        ),
        case(
            "XFCC with an expired certificate",
            &envoy,
            PROXY,
            xfcc_header(&xfcc_of(&pki.expired)),
            &unauthorized,
            "CERT_HAS_EXPIRED",
        ),
        case(
            "XFCC with a forbidden client",
            &envoy,
            PROXY,
            xfcc_header(&xfcc_of(&pki.forbidden)),
            &forbidden,
            "POLICY_DENIED",
        ),
        case(
            "no certificate header",
            &envoy,
            PROXY,
            Vec::new(),
            &unauthorized,
            "NO_CERTIFICATE",
        ),
        // nginx: the verify header must say SUCCESS, once.
        case(
            "nginx without the verify header",
            &nginx,
            PROXY,
            vec![nginx_cert(&pki.trusted)],
            &unauthorized,
            "PROXY_VERIFICATION_FAILED",
        ),
        case(
            "nginx verify header FAILED",
            &nginx,
            PROXY,
            vec![
                nginx_cert(&pki.trusted),
                "X-SSL-Client-Verify: FAILED:certificate has expired".into(),
            ],
            &unauthorized,
            "PROXY_VERIFICATION_FAILED",
        ),
        case(
            "nginx verify header twice, SUCCESS first",
            &nginx,
            PROXY,
            [
                nginx_ok.clone(),
                vec!["X-SSL-Client-Verify: FAILED:unable to verify".into()],
            ]
            .concat(),
            &bad_request,
            "REPEATED_CERTIFICATE_HEADER",
        ),
        case(
            "nginx certificate with an invalid % escape",
            &nginx,
            PROXY,
            vec![
                "X-SSL-Client-Cert: %2D%2D%2D%2D%2DBEGIN%G0".into(),
                "X-SSL-Client-Verify: SUCCESS".into(),
            ],
            &unauthorized,
            malformed,
        ),
        case(
            "nginx certificate cut before its END line",
            &nginx,
            PROXY,
            vec![
                format!("X-SSL-Client-Cert: {}", &escaped[..escaped.len() / 2]),
                "X-SSL-Client-Verify: SUCCESS".into(),
            ],
            &unauthorized,
            malformed,
        ),
    ];

    let mut failures: Vec<String> = Vec::new();
    let mut count = 0usize;
    let mut check = |name: &str,
                     got: String,
                     want: &str,
                     report: Outcome,
                     want_report: Outcome,
                     server: &Server,
                     ok: &[String]| {
        count += 1;
        if !compare.same(&got, want) || report != want_report {
            failures.push(format!(
                "{name}: got {got:?} / {report}, want {want:?} / {want_report}"
            ));
        }
        if let Err(e) = healthy(server, ok) {
            failures.push(format!("{name}: server unhealthy afterwards: {e}"));
        }
    };
    for c in cases {
        let got = request_bytes(c.server, c.from, &c.request);
        let ok = if std::ptr::eq(c.server, &nginx) {
            &nginx_ok
        } else {
            &envoy_ok
        };
        check(
            c.name,
            got,
            &c.want,
            c.server.outcome(),
            c.report,
            c.server,
            ok,
        );
    }

    // TLS spoken to the plain listener: a ClientHello is not an HTTP request.
    if compare == Compare::Exact {
        let hello = {
            let config = suite::tls_client(&pki, Some(&pki.trusted));
            let mut conn =
                rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
            let mut out = Vec::new();
            conn.write_tls(&mut out).unwrap();
            out
        };
        let got = request_bytes(&envoy, PROXY, &hello);
        check(
            "a TLS ClientHello to the plain listener",
            got,
            &bad_request,
            envoy.outcome(),
            Outcome::Head(400),
            &envoy,
            &envoy_ok,
        );
    }

    // The happy paths over plain HTTP, from the proxy.
    let got = request(&envoy, PROXY, &envoy_ok);
    check(
        "XFCC from the trusted proxy (HTTP)",
        got,
        &ok_response("Hello trusted-client"),
        envoy.outcome(),
        Outcome::trusted(),
        &envoy,
        &envoy_ok,
    );
    let got = request(&nginx, PROXY, &nginx_ok);
    check(
        "nginx headers from the trusted proxy (HTTP)",
        got,
        &ok_response("Hello trusted-client"),
        nginx.outcome(),
        Outcome::trusted(),
        &nginx,
        &nginx_ok,
    );

    assert!(
        failures.is_empty(),
        "{} of {count} header-mode cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let expected = if compare == Compare::Exact { 30 } else { 29 };
    assert!(count >= expected, "only {count} header-mode cases ran");
}

fn ok_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
