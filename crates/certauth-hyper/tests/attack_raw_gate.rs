//! Attacks on the raw gate's one-request stream (issue 25, finding 5) and on the target
//! normalisation (finding 7), with hyper as the caller's HTTP server behind
//! certauth-tokio's `serve_plain` in header mode: a request pipelined after the decided
//! one must never be served, whatever framing tricks the first request's body plays, and
//! the path a policy judges must be the path hyper routes by.
#![allow(clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certauth_core::http::HeadParser;
use certauth_core::http::HeadProgress;
use certauth_core::policy::{PolicyContext, Verdict};
use certauth_core::proxy::{Preset, ProxyHeaderConfig};
use certauth_core::{Authenticator, ChainVerifier, Limits, TrustAnchors};
use certauth_testkit::encode::nginx_escaped;
use certauth_testkit::{Authority, Leaf};
use certauth_tokio::{ServeOptions, serve_plain};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// What the caller's service does with an upgrade request.
#[derive(Clone, Copy, Debug)]
enum OnUpgrade {
    /// Answers 101 and echoes what the upgraded connection carries, prefixed `TUNNEL:`.
    Switch,
    /// Answers 426 (no switch).
    Refuse,
}

struct Server {
    _runtime: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    header: String,
    /// The paths the policy judged, in order.
    judged: Arc<Mutex<Vec<String>>>,
}

fn start(on_upgrade: OnUpgrade) -> Server {
    let root = Authority::root("Attack Root");
    let client = root.issue(&Leaf::client("trusted-client"));
    let anchors = TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    let judged = Arc::new(Mutex::new(Vec::new()));
    let seen = judged.clone();
    let policy = move |ctx: &PolicyContext<'_>| {
        seen.lock().unwrap().push(ctx.request.path().to_owned());
        if ctx.request.path().starts_with("/admin") {
            Verdict::forbid("/admin is for nobody")
        } else {
            Verdict::Allow
        }
    };
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            certauth_testkit::ring_provider()
                .signature_verification_algorithms
                .all,
        ))
        .proxy_header(
            ProxyHeaderConfig::preset(Preset::Nginx)
                .with_trusted_proxies(["127.0.0.1"])
                .unwrap(),
        )
        .policy(policy)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(serve_plain(
        listener,
        auth,
        ServeOptions::default(),
        std::future::pending(),
        move |accepted| async move {
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| async move {
                    let path = req.uri().path().to_owned();
                    if req.headers().contains_key(hyper::header::UPGRADE) {
                        match on_upgrade {
                            OnUpgrade::Switch => {
                                let upgrade = hyper::upgrade::on(&mut req);
                                tokio::spawn(async move {
                                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                                    let Ok(up) = upgrade.await else { return };
                                    let mut io = TokioIo::new(up);
                                    let mut buf = vec![0u8; 4096];
                                    while let Ok(n) = io.read(&mut buf).await {
                                        if n == 0 {
                                            break;
                                        }
                                        let mut out = b"TUNNEL:".to_vec();
                                        out.extend_from_slice(&buf[..n]);
                                        if io.write_all(&out).await.is_err() {
                                            break;
                                        }
                                    }
                                    let _ = io.shutdown().await;
                                });
                                let mut r = hyper::Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
                                r.headers_mut()
                                    .insert(hyper::header::UPGRADE, "tunnel".parse().unwrap());
                                r.headers_mut()
                                    .insert(hyper::header::CONNECTION, "upgrade".parse().unwrap());
                                return Ok::<_, Infallible>(r);
                            }
                            OnUpgrade::Refuse => {
                                let mut r = hyper::Response::new(Full::new(Bytes::from_static(
                                    b"no upgrade here",
                                )));
                                *r.status_mut() = hyper::StatusCode::UPGRADE_REQUIRED;
                                return Ok(r);
                            }
                        }
                    }
                    // Read the whole body, so hyper goes on to the next request if there is one.
                    let body = req.into_body().collect().await.map(|b| b.to_bytes().len());
                    let text = format!("served {path} body={body:?}\n");
                    Ok(hyper::Response::new(Full::new(Bytes::from(text))))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(TokioIo::new(accepted.into_stream()), service)
                .with_upgrades()
                .await;
        },
    ));
    let header = format!("X-SSL-Client-Cert: {}", nginx_escaped(&client.pem()));
    Server {
        _runtime: runtime,
        addr,
        header,
        judged,
    }
}

/// Sends `bytes`, half-closes, reads to the close (bounded).
fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(bytes).unwrap();
    let _ = tcp.shutdown(Shutdown::Write);
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

const SMUGGLED: &str = "GET /admin HTTP/1.1\r\nHost: app\r\n\r\n";

/// First requests (head lines after the request line, then the body), each followed in
/// the same write by `GET /admin` without a certificate.
fn framings() -> Vec<(&'static str, String, String)> {
    let v = |name: &'static str, head: &str, body: &str| (name, head.to_owned(), body.to_owned());
    vec![
        v("no body", "", ""),
        v("CL 0", "Content-Length: 0\r\n", ""),
        v("CL 5", "Content-Length: 5\r\n", "hello"),
        v("CL 05", "Content-Length: 05\r\n", "hello"),
        v("CL list", "Content-Length: 5, 5\r\n", "hello"),
        v("CL list short", "Content-Length: 5,\r\n", "hello"),
        v(
            "CL dup",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "hello",
        ),
        v("CL plus", "Content-Length: +5\r\n", "hello"),
        v("CL spaces", "Content-Length:    5   \r\n", "hello"),
        v("CL tab", "Content-Length:\t5\t\r\n", "hello"),
        v("CL hex", "Content-Length: 0x5\r\n", "hello"),
        v("CL neg", "Content-Length: -5\r\n", "hello"),
        v(
            "CL huge",
            "Content-Length: 99999999999999999999999\r\n",
            "hello",
        ),
        v(
            "CL u64 max",
            "Content-Length: 18446744073709551615\r\n",
            "hello",
        ),
        v("CL empty", "Content-Length:\r\n", "hello"),
        v(
            "CL 0 then 5",
            "Content-Length: 0\r\nContent-Length: 5\r\n",
            "hello",
        ),
        v(
            "chunked",
            "Transfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked CHUNKED",
            "Transfer-Encoding: CHUNKED\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked ext",
            "Transfer-Encoding: chunked\r\n",
            "5;a=b\r\nhello\r\n0;x\r\n\r\n",
        ),
        v(
            "chunked ext quoted",
            "Transfer-Encoding: chunked\r\n",
            "5;a=\"\r\n0\r\n\r\n\"\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked lws",
            "Transfer-Encoding: chunked\r\n",
            "5 \r\nhello\r\n0\t\r\n\r\n",
        ),
        v(
            "chunked lws junk",
            "Transfer-Encoding: chunked\r\n",
            "5 x\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked 0x",
            "Transfer-Encoding: chunked\r\n",
            "0x5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked zeros",
            "Transfer-Encoding: chunked\r\n",
            "000000000000000000000005\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked 16 zeros",
            "Transfer-Encoding: chunked\r\n",
            "0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n",
        ),
        v(
            "chunked bare LF",
            "Transfer-Encoding: chunked\r\n",
            "5\nhello\n0\n\n",
        ),
        v(
            "chunked bare LF data",
            "Transfer-Encoding: chunked\r\n",
            "5\r\nhello\n0\r\n\r\n",
        ),
        v("chunked no size", "Transfer-Encoding: chunked\r\n", "\r\n"),
        v(
            "chunked empty size then data",
            "Transfer-Encoding: chunked\r\n",
            ";\r\n\r\n",
        ),
        v(
            "chunked trailer",
            "Transfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\nX-T: a\r\n\r\n",
        ),
        v(
            "chunked trailer LF",
            "Transfer-Encoding: chunked\r\n",
            "0\r\nX-T: a\n\r\n",
        ),
        v(
            "chunked trailer bare LF end",
            "Transfer-Encoding: chunked\r\n",
            "0\r\nX-T: a\r\n\n",
        ),
        v(
            "chunked last LF",
            "Transfer-Encoding: chunked\r\n",
            "0\r\n\n",
        ),
        v(
            "chunked huge",
            "Transfer-Encoding: chunked\r\n",
            "ffffffffffffffff\r\n",
        ),
        v(
            "chunked overflow",
            "Transfer-Encoding: chunked\r\n",
            "fffffffffffffffff\r\n",
        ),
        v(
            "chunked negative",
            "Transfer-Encoding: chunked\r\n",
            "-5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked plus",
            "Transfer-Encoding: chunked\r\n",
            "+5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked short data",
            "Transfer-Encoding: chunked\r\n",
            "a\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "chunked long data",
            "Transfer-Encoding: chunked\r\n",
            "3\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE trailing comma",
            "Transfer-Encoding: chunked,\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE trailing comma sp",
            "Transfer-Encoding: chunked , \r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE gzip, chunked",
            "Transfer-Encoding: gzip, chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE chunked, identity",
            "Transfer-Encoding: chunked, identity\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE two, chunked last",
            "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE two, chunked first",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v("TE empty", "Transfer-Encoding:\r\n", ""),
        v(
            "TE empty then chunked",
            "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE chunked then empty",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE quoted",
            "Transfer-Encoding: \"chunked\"\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE param",
            "Transfer-Encoding: chunked;q=1\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE obs-fold",
            "Transfer-Encoding:\r\n chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE space name",
            "Transfer-Encoding : chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE vtab",
            "Transfer-Encoding: \x0bchunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "TE and CL",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "CL and TE",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v(
            "expect",
            "Expect: 100-continue\r\nContent-Length: 5\r\n",
            "hello",
        ),
        v(
            "expect chunked",
            "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        v("upgrade", "Upgrade: tunnel\r\nConnection: upgrade\r\n", ""),
        v(
            "upgrade CL",
            "Upgrade: tunnel\r\nConnection: upgrade\r\nContent-Length: 5\r\n",
            "hello",
        ),
        v("upgrade no connection", "Upgrade: tunnel\r\n", ""),
        v(
            "upgrade h2c",
            "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n",
            "",
        ),
        v("connection close", "Connection: close\r\n", ""),
        v("keep-alive", "Connection: keep-alive\r\n", ""),
    ]
}

fn run_framings(on_upgrade: OnUpgrade) -> Vec<String> {
    let s = start(on_upgrade);
    let mut failures = Vec::new();
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        for method in ["POST /public", "GET /public", "CONNECT app:443"] {
            for (name, extra, body) in framings() {
                let first = format!(
                    "{method} {version}\r\nHost: app\r\n{}\r\n{extra}\r\n{body}",
                    s.header
                );
                let reply = exchange(s.addr, format!("{first}{SMUGGLED}").as_bytes());
                // Responses hyper wrote as HTTP (not echoed through a tunnel), interim
                // 100s aside.
                let http = reply.split("TUNNEL:").next().unwrap_or_default();
                let responses =
                    http.matches("HTTP/1.").count() - http.matches(" 100 Continue").count();
                if reply.contains("served /admin") || responses > 1 {
                    failures.push(format!(
                        "{on_upgrade:?} {method} {version} [{name}]: {reply:?}"
                    ));
                }
            }
        }
    }
    failures
}

#[test]
fn no_framing_lets_a_second_request_through() {
    let mut failures = run_framings(OnUpgrade::Refuse);
    failures.extend(run_framings(OnUpgrade::Switch));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A switch the decision admitted carries what follows to the tunnel, never to hyper's
/// HTTP parser.
#[test]
fn after_a_switch_the_rest_goes_to_the_tunnel_not_to_http() {
    let s = start(OnUpgrade::Switch);
    let reply = exchange(
        s.addr,
        format!(
            "GET /public HTTP/1.1\r\nHost: app\r\n{}\r\nUpgrade: tunnel\r\nConnection: upgrade\r\n\r\n{SMUGGLED}",
            s.header
        )
        .as_bytes(),
    );
    assert!(reply.starts_with("HTTP/1.1 101 "), "{reply:?}");
    assert!(reply.contains("TUNNEL:GET /admin"), "{reply:?}");
    assert!(!reply.contains("served /admin"), "{reply:?}");
}

/// The path the policy judged, for every target hyper serves, is the path hyper served.
#[test]
fn the_policy_judges_the_path_hyper_routes_by() {
    let s = start(OnUpgrade::Refuse);
    let mut mismatches = Vec::new();
    for target in targets() {
        s.judged.lock().unwrap().clear();
        let reply = exchange(
            s.addr,
            format!("GET {target} HTTP/1.1\r\nHost: app\r\n{}\r\n\r\n", s.header).as_bytes(),
        );
        let judged = s.judged.lock().unwrap().clone();
        let Some(served) = reply
            .split("served ")
            .nth(1)
            .and_then(|r| r.split(" body=").next())
        else {
            continue; // refused by the gate or by hyper
        };
        if served.is_empty() {
            continue; // authority form (`GET app:443`): hyper's path is empty, not a route
        }
        if judged.first().map(String::as_str) != Some(served) {
            mismatches.push(format!(
                "{target:?}: judged {judged:?}, hyper served {served:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn targets() -> Vec<String> {
    let mut t: Vec<String> = [
        "/admin",
        "/admin#x",
        "/admin?x#y",
        "/admin?#",
        "/pub#/admin",
        "http://app/admin",
        "HTTP://app/admin",
        "https://app/admin",
        "ws://app/admin",
        "wss://app/admin",
        "1ab://app/admin",
        "1://app/admin",
        "+x://app/admin",
        "-x://app/admin",
        ".x://app/admin",
        "://app/admin",
        "a://app/admin",
        "x-y.z+w://app/admin",
        "http://app?x/admin",
        "http://app#/admin",
        "http://a@app/admin",
        "http://a:b@app:80/admin",
        "http://[::1]/admin",
        "http://app:80/admin#x",
        "http:///admin",
        "http://app//admin",
        "//app/admin",
        "///admin",
        "/%61dmin",
        "/./admin",
        "/../admin",
        "*",
        "app:443",
        "app",
        "a:/admin",
        "http:/admin",
        "http:admin",
        "foo/admin",
        "/admin\\x",
        "http://app\\@evil/admin",
        "http://app\\/admin",
        "http://ap{p/admin",
        "http://app/ad|min",
        "/ad\"min",
        "http://app?/admin",
        "http://app/?/admin",
        "HtTpS://app/admin",
        "x://app#x/admin",
        "x://app/admin#",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let long_scheme = "a".repeat(70);
    t.push(format!("{long_scheme}://app/admin"));
    t.push(format!("{}://app/admin", "a".repeat(64)));
    t.push(format!("{}://app/admin", "a".repeat(65)));
    t
}

/// The same comparison without the network, over many generated targets: certauth's
/// `RequestHead::path` and `RequestHead::authority` against `http::Uri`'s (what hyper
/// parses the target with).
#[test]
fn head_path_agrees_with_http_uri_on_generated_targets() {
    let alphabet: &[&str] = &[
        "/", "a", "admin", ":", "//", "://", "?", "#", "@", "%2f", "1", "+", "-", ".", "[", "]",
        "http", "HTTP", "\\", "*", "x:", ";", "=", "&", "~", "!", "$", "'", "(", ")", ",", "^",
        "`", "{", "}", "|", "\"", "<", ">", "%", "%23", "%3f", "_", "é", "\u{202e}",
    ];
    let limits = Limits::default();
    let mut mismatches = Vec::new();
    let mut compared = 0u32;
    // A fixed xorshift, so the run is reproducible.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    // A number below `n`.
    let mut below = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % u64::try_from(n).unwrap()).unwrap()
    };
    let mut all: Vec<String> = targets();
    for _ in 0..150_000 {
        let n = 1 + below(7);
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(alphabet[below(alphabet.len())]);
        }
        all.push(s);
    }
    for target in all {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut parser = HeadParser::new(&limits);
        let Ok(HeadProgress::Complete { head, .. }) = parser.parse(raw.as_bytes()) else {
            continue;
        };
        let Ok(uri) = hyper::Uri::from_maybe_shared(Bytes::from(target.clone())) else {
            continue;
        };
        compared += 1;
        // Issue 28: the host a policy sees is the one hyper routes by (the URI's authority,
        // else the `Host` header).
        let hyper_authority = uri.authority().map_or("a", |a| a.as_str());
        if head.authority() != Some(hyper_authority) {
            mismatches.push(format!(
                "{target:?}: certauth authority {:?}, http::Uri {hyper_authority:?}",
                head.authority()
            ));
        }
        // Authority form (`CONNECT app:443`): hyper's path is empty, certauth gives the
        // authority; no path policy can be fooled into `/...` by it.
        if uri.path().is_empty() {
            continue;
        }
        if head.path() != uri.path() {
            mismatches.push(format!(
                "{target:?}: certauth {:?}, http::Uri {:?}",
                head.path(),
                uri.path()
            ));
        }
    }
    eprintln!("compared {compared} targets both parsers accept");
    mismatches.sort();
    mismatches.dedup();
    assert!(
        mismatches.is_empty(),
        "{} of {compared} differ:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(60)].join("\n")
    );
}
