//! Hostile input against a running adapter: every limit, slow and broken clients, bytes
//! that are not TLS or not HTTP, malformed upgrades, oversized and over-long certificate
//! chains, churn. Each case asserts the exact response (or a close without one) and then
//! that a trusted client is still served.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certauth_core::Limits;
use rustls::ClientConfig;

use crate::der::{self, san};
use crate::suite::{self, Harness, Pki, Server, UPGRADE, connect, read_to_close, tls_client};
use crate::{Crafted, Issued, KeyKind, key};

pub mod headers;

/// The limits the hostile server runs with (small, so the cases stay quick).
pub fn limits() -> Limits {
    Limits::DEFAULT
        .with_max_head_bytes(8 * 1024)
        .with_max_headers(32)
        .with_max_header_bytes(4 * 1024)
        .with_head_read_timeout(Duration::from_secs(1))
        .with_handshake_timeout(Duration::from_secs(1))
}

fn error(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `bytes` over TLS as `client` and returns everything up to the close.
fn over_tls(addr: SocketAddr, config: Arc<ClientConfig>, bytes: &[u8]) -> String {
    match connect(addr, config) {
        Ok(mut t) => {
            let _ = t.write_all(bytes);
            let _ = t.flush();
            String::from_utf8_lossy(&read_to_close(&mut t)).into_owned()
        }
        Err(e) => format!("HANDSHAKE ERROR {e}"),
    }
}

/// Plain TCP: sends `bytes`, returns what came back before the close (and how long it took).
fn raw(addr: SocketAddr, bytes: &[u8]) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let Ok(mut tcp) = TcpStream::connect(addr) else {
        return (Vec::new(), started.elapsed());
    };
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = tcp.write_all(bytes);
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    (out, started.elapsed())
}

/// A client config presenting `cert` but signing with `key_of`'s key.
fn presenting_with_key(pki: &Pki, cert: &Issued, key_of: &Issued) -> Arc<ClientConfig> {
    presenting_unchecked(pki, vec![cert.der.clone()], &key_of.key)
}

/// A client config presenting `chain` and signing with `key`, without rustls' checks
/// (for crafted certificates and mismatched keys).
pub(crate) fn presenting_unchecked(
    pki: &Pki,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: &rcgen::KeyPair,
) -> Arc<ClientConfig> {
    crate::handshake::presenting(
        &pki.server_root.cert.der,
        chain,
        key,
        rustls::DEFAULT_VERSIONS,
    )
}

/// A client certificate issued by the suite's CA with extra extensions (crafted DER).
fn crafted_client(pki: &Pki, extensions: Vec<(String, bool, Vec<u8>)>) -> Issued {
    let root_cert = certauth_core::ClientCertificate::from_der(&pki.root.cert.der).unwrap();
    let k = key(KeyKind::P256);
    let mut c = Crafted::new(der::simple_name(&[("CN", "trusted-client")]));
    c.issuer = root_cert.subject().raw().to_vec();
    c.serial = vec![0x33];
    c.extensions = extensions;
    let der = c.sign(&k, &pki.root.cert.key);
    Issued::new(der.into(), k)
}

/// Runs every hostile case; panics listing the failures.
pub fn run(harness: &impl Harness) {
    let pki = Pki::new();
    let server = Server::start(harness, &pki, limits());
    let addr = server.addr;
    let trusted = || tls_client(&pki, Some(&pki.trusted));
    let mut failures: Vec<String> = Vec::new();
    let mut cases = 0usize;

    // The health check every case is followed by.
    let healthy = |server: &Server| -> Result<(), String> {
        let tls = connect(addr, trusted()).map_err(|e| e.to_string())?;
        let (mut ws, _) =
            tungstenite::client::client("wss://localhost/chat", tls).map_err(|e| e.to_string())?;
        ws.send(tungstenite::Message::text("ping"))
            .map_err(|e| e.to_string())?;
        let reply = ws.read().map_err(|e| e.to_string())?.to_string();
        let _ = ws.close(None);
        let report = server.outcome();
        if reply != "Echo: ping" || report != "ALLOW trusted-client" {
            return Err(format!("health check got {reply:?} / {report:?}"));
        }
        Ok(())
    };
    let mut check = |name: &str, ok: Result<(), String>, server: &Server| {
        cases += 1;
        if let Err(e) = ok {
            failures.push(format!("{name}: {e}"));
        }
        if let Err(e) = healthy(server) {
            failures.push(format!("{name}: server unhealthy afterwards: {e}"));
        }
    };
    let expect =
        |got: String, want: &str, report: String, want_report: &str| -> Result<(), String> {
            if got == want && report == want_report {
                Ok(())
            } else {
                Err(format!(
                    "got {got:?} / {report:?}, want {want:?} / {want_report:?}"
                ))
            }
        };
    let too_large = error(
        "431 Request Header Fields Too Large",
        "Request Header Fields Too Large",
    );
    let bad_request = error("400 Bad Request", "Bad Request");
    let unauthorized = error("401 Unauthorized", "Unauthorized");

    // Limits on the head.
    let heads: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "head over the limit",
            format!(
                "GET / HTTP/1.1\r\nX-A: {}\r\nX-B: {}\r\n\r\n",
                "a".repeat(4000),
                "b".repeat(4500)
            )
            .into_bytes(),
            &too_large,
            "HEAD 431",
        ),
        (
            "too many headers",
            format!(
                "GET / HTTP/1.1\r\n{}\r\n",
                (0..40).map(|i| format!("H{i}: v\r\n")).collect::<String>()
            )
            .into_bytes(),
            &too_large,
            "HEAD 431",
        ),
        (
            "one header too large",
            format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "x".repeat(5000)).into_bytes(),
            &too_large,
            "HEAD 431",
        ),
        (
            "1 MB header",
            [
                b"GET / HTTP/1.1\r\nX-Huge: ".as_slice(),
                &vec![b'z'; 1 << 20],
            ]
            .concat(),
            &too_large,
            "HEAD 431",
        ),
        (
            "garbage request line",
            b"GARBAGE\r\n\r\n".to_vec(),
            &bad_request,
            "HEAD 400",
        ),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            &bad_request,
            "HEAD 400",
        ),
        (
            "invalid UTF-8 in a header name",
            b"GET / HTTP/1.1\r\nX-\xff\xfe: v\r\n\r\n".to_vec(),
            &bad_request,
            "HEAD 400",
        ),
        (
            "NUL in a header value",
            b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n".to_vec(),
            &bad_request,
            "HEAD 400",
        ),
        (
            "space before a header colon",
            b"GET / HTTP/1.1\r\nX-A : v\r\n\r\n".to_vec(),
            &bad_request,
            "HEAD 400",
        ),
        (
            "HTTP/1.2",
            b"GET / HTTP/1.2\r\n\r\n".to_vec(),
            &bad_request,
            "HEAD 400",
        ),
    ];
    for (name, bytes, want, report) in heads {
        let got = over_tls(addr, trusted(), &bytes);
        check(name, expect(got, want, server.outcome(), report), &server);
    }

    // Malformed upgrades from an authenticated client.
    let upgrade_cases: Vec<(&str, String, String, &str)> = vec![
        (
            "upgrade without Connection",
            UPGRADE.replace("Connection: Upgrade\r\n", ""),
            bad_request.clone(),
            "UPGRADE 400",
        ),
        (
            "bad WebSocket key",
            UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
            bad_request.clone(),
            "UPGRADE 400",
        ),
        (
            "two WebSocket keys",
            UPGRADE.replace(
                "Version: 13\r\n",
                "Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            ),
            bad_request.clone(),
            "UPGRADE 400",
        ),
        (
            "POST upgrade",
            UPGRADE.replace("GET /chat", "POST /chat"),
            bad_request.clone(),
            "UPGRADE 400",
        ),
        (
            "HTTP/1.0 upgrade",
            UPGRADE.replace("HTTP/1.1", "HTTP/1.0"),
            bad_request.clone(),
            "UPGRADE 400",
        ),
        (
            "Upgrade: h2c",
            UPGRADE.replace("Upgrade: websocket", "Upgrade: h2c"),
            bad_request.clone(),
            "UPGRADE 400",
        ),
        (
            "WebSocket version 8",
            UPGRADE.replace("Version: 13", "Version: 8"),
            error("426 Upgrade Required", "Upgrade Required").replace(
                "Connection: close\r\n",
                "Connection: close\r\nSec-WebSocket-Version: 13\r\n",
            ),
            "UPGRADE 426",
        ),
    ];
    for (name, request, want, report) in upgrade_cases {
        let got = over_tls(addr, trusted(), request.as_bytes());
        check(name, expect(got, &want, server.outcome(), report), &server);
    }

    // Valid but odd heads still authenticate and upgrade.
    for (name, request) in [
        (
            "invalid UTF-8 in a header value",
            UPGRADE.replace("Host: localhost", "Host: localhost\r\nX-Odd: \u{fffd}"),
        ),
        ("bare LF line endings", UPGRADE.replace("\r\n", "\n")),
    ] {
        let mut bytes = request.into_bytes();
        if name.starts_with("invalid") {
            let pos = bytes
                .windows(3)
                .position(|w| w == "\u{fffd}".as_bytes())
                .unwrap();
            bytes.splice(pos..pos + 3, [0xC3, 0x28, 0xFF]);
        }
        let got = over_tls(
            addr,
            trusted(),
            &[bytes.as_slice(), &suite::client_text_frame("odd")].concat(),
        );
        let ok = if got.starts_with("HTTP/1.1 101 Switching Protocols\r\n")
            && got.contains("Echo: odd")
        {
            Ok(())
        } else {
            Err(format!("got {got:?}"))
        };
        check(
            name,
            ok.and_then(|()| expect(String::new(), "", server.outcome(), "ALLOW trusted-client")),
            &server,
        );
    }

    // Slow and silent clients: closed at the head deadline without a response.
    {
        let started = Instant::now();
        let got = match connect(addr, trusted()) {
            Ok(mut t) => {
                for b in b"GET / HT" {
                    if t.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                String::from_utf8_lossy(&read_to_close(&mut t)).into_owned()
            }
            Err(e) => e.to_string(),
        };
        let waited = started.elapsed();
        let ok = if got.is_empty() && waited < Duration::from_secs(4) {
            expect(String::new(), "", server.outcome(), "HEAD_TIMEOUT")
        } else {
            Err(format!("got {got:?} after {waited:?}"))
        };
        check("a byte every 300 ms", ok, &server);
    }
    {
        let started = Instant::now();
        let got = match connect(addr, trusted()) {
            Ok(mut t) => String::from_utf8_lossy(&read_to_close(&mut t)).into_owned(),
            Err(e) => e.to_string(),
        };
        let waited = started.elapsed();
        let ok = if got.is_empty()
            && waited >= Duration::from_millis(900)
            && waited < Duration::from_secs(4)
        {
            expect(String::new(), "", server.outcome(), "HEAD_TIMEOUT")
        } else {
            Err(format!("got {got:?} after {waited:?}"))
        };
        check("idle after the handshake", ok, &server);
    }

    // Bytes that are not TLS, or not complete.
    for (name, bytes) in [
        (
            "plaintext HTTP on the TLS port",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "random bytes",
            (0..1024u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        (
            "a truncated ClientHello",
            vec![
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ],
        ),
    ] {
        let (got, waited) = raw(addr, &bytes);
        let text = String::from_utf8_lossy(&got).into_owned();
        let ok = if !text.contains("HTTP/") && waited < Duration::from_secs(4) {
            expect(String::new(), "", server.outcome(), "HANDSHAKE")
        } else {
            Err(format!("got {text:?} after {waited:?}"))
        };
        check(name, ok, &server);
    }
    {
        // Connects and disconnects mid-handshake.
        let mut tcp = TcpStream::connect(addr).unwrap();
        let _ = tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x40]);
        let _ = tcp.shutdown(Shutdown::Both);
        drop(tcp);
        check(
            "disconnect mid-handshake",
            expect(String::new(), "", server.outcome(), "HANDSHAKE"),
            &server,
        );
    }

    // Certificates.
    let untrusted: Vec<(&str, Option<&Issued>, &str, &str)> = vec![
        ("no certificate", None, &unauthorized, "NO_CERTIFICATE"),
        (
            "other CA",
            Some(&pki.other_ca),
            &unauthorized,
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        ),
        (
            "expired",
            Some(&pki.expired),
            &unauthorized,
            "CERT_HAS_EXPIRED",
        ),
        (
            "policy deny",
            Some(&pki.denied),
            &unauthorized,
            "POLICY_DENIED",
        ),
    ];
    for (name, client, want, code) in untrusted {
        let got = over_tls(addr, tls_client(&pki, client), UPGRADE.as_bytes());
        check(name, expect(got, want, server.outcome(), code), &server);
    }
    let got = over_tls(
        addr,
        tls_client(&pki, Some(&pki.forbidden)),
        UPGRADE.as_bytes(),
    );
    check(
        "policy 403",
        expect(
            got,
            &error("403 Forbidden", "Forbidden"),
            server.outcome(),
            "POLICY_DENIED",
        ),
        &server,
    );
    {
        // A trusted certificate presented with another key: the handshake signature fails.
        let got = over_tls(
            addr,
            presenting_with_key(&pki, &pki.trusted, &pki.denied),
            UPGRADE.as_bytes(),
        );
        let report = server.outcome();
        let ok = if !got.contains("HTTP/") && report == "HANDSHAKE" {
            Ok(())
        } else {
            Err(format!("got {got:?} / {report:?}"))
        };
        check("a certificate without its key", ok, &server);
    }
    {
        // A second request pipelined behind the upgrade is WebSocket data, not HTTP.
        let bytes = [
            UPGRADE.as_bytes(),
            &suite::client_text_frame("one"),
            &suite::client_text_frame("two"),
        ]
        .concat();
        let got = over_tls(addr, trusted(), &bytes);
        let report = server.outcome();
        let ok = if got.contains("Echo: one")
            && got.contains("Echo: two")
            && report == "ALLOW trusted-client"
        {
            Ok(())
        } else {
            Err(format!("got {got:?} / {report:?}"))
        };
        check("two frames in the head's packet", ok, &server);
    }
    {
        let ca_leaf = pki.root.issue(&{
            let mut l = crate::Leaf::client("trusted-client").around_wall_clock();
            l.is_ca = true;
            l
        });
        let got = over_tls(
            addr,
            presenting_unchecked(&pki, vec![ca_leaf.der.clone()], &ca_leaf.key),
            UPGRADE.as_bytes(),
        );
        check(
            "a CA certificate as the client's",
            expect(
                got,
                &unauthorized,
                server.outcome(),
                "CA_USED_AS_END_ENTITY",
            ),
            &server,
        );
    }
    {
        let sans: Vec<Vec<u8>> = (0..1025)
            .map(|i| san::dns(&format!("h{i}.example")))
            .collect();
        let many = crafted_client(
            &pki,
            vec![("2.5.29.17".into(), false, san::extension(&sans))],
        );
        let got = over_tls(
            addr,
            presenting_unchecked(&pki, vec![many.der.clone()], &many.key),
            UPGRADE.as_bytes(),
        );
        check(
            "1,025 SANs (cap 1024)",
            expect(got, &unauthorized, server.outcome(), "CERT_TOO_LARGE"),
            &server,
        );
    }
    {
        let sans: Vec<Vec<u8>> = (0..10_000).map(|i| san::dns(&format!("h{i}.e"))).collect();
        let huge = crafted_client(
            &pki,
            vec![("2.5.29.17".into(), false, san::extension(&sans))],
        );
        let got = over_tls(
            addr,
            presenting_unchecked(&pki, vec![huge.der.clone()], &huge.key),
            UPGRADE.as_bytes(),
        );
        // About 90 KB: over certauth's caps, or refused by TLS framing first.
        let report = server.outcome();
        let ok = if got.starts_with("HTTP/1.1 101") {
            Err(format!("accepted: {got:?}"))
        } else if (got == unauthorized && report == "CERT_TOO_LARGE") || report == "HANDSHAKE" {
            Ok(())
        } else {
            Err(format!("got {got:?} / {report:?}"))
        };
        check("10,000 SANs", ok, &server);
    }
    {
        // 60 KB, under the 64 KiB cap (a TLS handshake message cannot carry much more).
        let big = crafted_client(
            &pki,
            vec![(
                "1.3.6.1.4.1.99999.7".into(),
                false,
                der::tlv(0x04, &vec![0u8; 60_000]),
            )],
        );
        let got = over_tls(
            addr,
            presenting_unchecked(&pki, vec![big.der.clone()], &big.key),
            UPGRADE.as_bytes(),
        );
        let report = server.outcome();
        check(
            "a 60 KB certificate (cap 64 KiB)",
            if got.starts_with("HTTP/1.1 101") && report == "ALLOW trusted-client" {
                Ok(())
            } else {
                Err(format!("got {got:?} / {report:?}"))
            },
            &server,
        );
    }
    {
        let inter = pki.root.intermediate("Suite Intermediate");
        let leaf = inter.issue(&crate::Leaf::client("trusted-client").around_wall_clock());
        let mut chain = vec![leaf.der.clone()];
        chain.extend(std::iter::repeat_n(inter.cert.der.clone(), 19));
        let got = over_tls(
            addr,
            presenting_unchecked(&pki, chain, &leaf.key),
            UPGRADE.as_bytes(),
        );
        check(
            "a chain of 20 (cap 8)",
            expect(got, &unauthorized, server.outcome(), "CHAIN_TOO_LONG"),
            &server,
        );
        let ok = over_tls(
            addr,
            presenting_unchecked(
                &pki,
                vec![leaf.der.clone(), inter.cert.der.clone()],
                &leaf.key,
            ),
            &[UPGRADE.as_bytes(), &suite::client_text_frame("deep")].concat(),
        );
        let report = server.outcome();
        check(
            "a chain of 3 still passes",
            if ok.contains("Echo: deep") && report == "ALLOW trusted-client" {
                Ok(())
            } else {
                Err(format!("got {ok:?} / {report:?}"))
            },
            &server,
        );
    }
    {
        let got = over_tls(
            addr,
            tls_client(&pki, None),
            UPGRADE
                .replace(
                    "Host: localhost",
                    &format!(
                        "Host: localhost\r\nX-Forwarded-Client-Cert: Cert=\"{}\"",
                        crate::encode::nginx_escaped(&pki.trusted.pem())
                    ),
                )
                .as_bytes(),
        );
        check(
            "a forged proxy header on the TLS port",
            expect(got, &unauthorized, server.outcome(), "NO_CERTIFICATE"),
            &server,
        );
    }

    // Churn: hundreds of connections opened and dropped.
    {
        for _ in 0..300 {
            drop(TcpStream::connect(addr));
        }
        for _ in 0..300 {
            let _ = server.outcome_within(Duration::from_millis(500));
        }
        for _ in 0..50 {
            drop(connect(addr, trusted()));
        }
        for _ in 0..50 {
            let _ = server.outcome_within(Duration::from_secs(3));
        }
        check("350 connections opened and dropped", Ok(()), &server);
    }

    drop(server);
    assert!(cases >= 40, "only {cases} hostile cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} hostile cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
