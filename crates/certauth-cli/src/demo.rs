//! `certauth demo`: a throw-away PKI, the server in-process on a free loopback port, and one
//! client of each kind over WebSocket and plain HTTPS, with what happened to each.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use certauth_core::Authenticator;
use certauth_core::policy::allow_cn;
use certauth_core::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::pki::{Client, Pki};
use crate::{Failure, FilePath, Outcome, write};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Also write the PKI here (ca.pem, server.pem, server.key, and a .pem/.key per
    /// client) for `certauth serve` and your own clients.
    #[arg(long, value_name = "DIR")]
    keep: Option<FilePath>,
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Rejected(e.to_string())
}

pub(crate) fn run(args: Args) -> Outcome {
    let pki = Pki::generate().map_err(fail)?;
    if let Some(dir) = &args.keep {
        keep(&pki, dir)?;
    }
    let provider = Arc::new(crate::ring_provider());
    let anchors = TrustAnchors::from_pem(pki.ca_pem.as_bytes()).map_err(fail)?;
    let (chain, key) =
        load_server_identity(pki.server_pem.as_bytes(), pki.server_key.as_bytes()).map_err(fail)?;
    let tls = server_config(
        Arc::clone(&provider),
        chain,
        key,
        &anchors,
        ClientAuthMode::Deferred,
    )
    .map_err(fail)?;
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            anchors,
            provider.signature_verification_algorithms.all,
        ))
        .policy(allow_cn(["trusted-client"]))
        .expose_reasons(true)
        .build()
        .map_err(fail)?;

    let rt = tokio::runtime::Runtime::new().map_err(fail)?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(fail)?;
    let addr = listener.local_addr().map_err(fail)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = crate::serve::Server {
        auth,
        tls: Some(Arc::new(tls).into()),
        listen: addr,
        options: certauth_tokio::ServeOptions::DEFAULT,
    };
    rt.spawn(crate::serve::serve_tokio(listener, server, async {
        let _ = stopped.await;
    }));

    println!(
        "certauth demo: a throw-away CA, a server on {addr} (tokio), policy allow_cn([\"trusted-client\"])."
    );
    println!(
        "Each client connects over WebSocket (wss://localhost/chat) and plain HTTPS (GET /whoami).\n"
    );
    println!(
        "{:<9} {:<36} {:<44} HTTPS GET /whoami",
        "client", "presented", "WebSocket"
    );
    let mut all_ok = true;
    for client in &pki.clients {
        let config = client_config(&pki, client)?;
        let ws = websocket(addr, Arc::clone(&config));
        let https = whoami(addr, config);
        let (ws_ok, https_ok) = if client.expect == "echo" {
            (
                ws == "echo received (\"Echo: hello\")",
                https == "200 OK, CN=trusted-client",
            )
        } else {
            let denied = format!("401 {}", client.expect);
            (ws == denied, https == denied)
        };
        let mark = |ok: bool| if ok { "" } else { "  <-- UNEXPECTED" };
        let ws_cell = format!("{ws}{}", mark(ws_ok));
        println!(
            "{:<9} {:<36} {ws_cell:<44} {https}{}",
            client.name,
            client.presents,
            mark(https_ok)
        );
        all_ok &= ws_ok && https_ok;
    }
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(1));
    println!();
    if all_ok {
        println!("Every client got the expected outcome. Rejections are HTTP responses with a");
        println!("stable code (shown because the demo sets expose_reasons; by default bodies are");
        println!("generic and the code goes to the logs).");
        if let Some(dir) = &args.keep {
            println!(
                "\nThe PKI is in {d}. Serve with it:\n  certauth serve --ca {d}/ca.pem --cert {d}/server.pem --key {d}/server.key --allow-cn trusted-client --listen 127.0.0.1:8443\n\
                 Then open https://localhost:8443/ in a browser holding the trusted client's \
                 certificate (import {d}/trusted.p12 after\n  openssl pkcs12 -export -in {d}/trusted.pem -inkey {d}/trusted.key -out {d}/trusted.p12 -passout pass:\n\
                 and trust {d}/ca.pem for websites): the page shows the certificate, the decision \
                 and a WebSocket echo button. README: \"Browsers\".",
                d = dir.display()
            );
        } else {
            println!(
                "Run `certauth demo --keep DIR` to keep the PKI and try the page for browsers \
                 (https://localhost:8443/ under `certauth serve`)."
            );
        }
        Ok(())
    } else {
        Err(Failure::Rejected(
            "some clients did not get the expected outcome".into(),
        ))
    }
}

fn keep(pki: &Pki, dir: &std::path::Path) -> Outcome {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Rejected(format!("cannot create {}: {e}", dir.display())))?;
    write(&dir.join("ca.pem"), &pki.ca_pem)?;
    write(&dir.join("server.pem"), &pki.server_pem)?;
    write(&dir.join("server.key"), &pki.server_key)?;
    for c in &pki.clients {
        if let Some((cert, key)) = &c.identity {
            write(&dir.join(format!("{}.pem", c.name)), cert)?;
            write(&dir.join(format!("{}.key", c.name)), key)?;
        }
    }
    Ok(())
}

fn client_config(pki: &Pki, client: &Client) -> Result<Arc<ClientConfig>, Failure> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(ca.map_err(fail)?).map_err(fail)?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(crate::ring_provider()))
        .with_safe_default_protocol_versions()
        .map_err(fail)?
        .with_root_certificates(roots);
    let config = match &client.identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(fail)?;
            builder.with_client_auth_cert(chain, key).map_err(fail)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    Ok(StreamOwned::new(conn, tcp))
}

/// `401 CODE` from an exposed-reason body (`Unauthorized: … (CODE)`).
fn denial(status: &str, body: &str) -> String {
    let code = body
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or_else(|| body.trim(), |(code, _)| code);
    format!("{status} {code}")
}

fn websocket(addr: SocketAddr, config: Arc<ClientConfig>) -> String {
    let tls = match connect(addr, config) {
        Ok(t) => t,
        Err(e) => return format!("connect failed: {e}"),
    };
    match tungstenite::client::client("wss://localhost/chat", tls) {
        Ok((mut ws, _)) => {
            let reply = ws
                .send(tungstenite::Message::text("hello"))
                .and_then(|()| ws.read());
            let _ = ws.close(None);
            match reply {
                Ok(m) => format!("echo received ({:?})", m.to_string()),
                Err(e) => format!("no echo: {e}"),
            }
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            denial(&resp.status().as_u16().to_string(), &body)
        }
        Err(e) => format!("failed: {e}"),
    }
}

fn whoami(addr: SocketAddr, config: Arc<ClientConfig>) -> String {
    let mut tls = match connect(addr, config) {
        Ok(t) => t,
        Err(e) => return format!("connect failed: {e}"),
    };
    let request = b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if let Err(e) = tls.write_all(request).and_then(|()| tls.flush()) {
        return format!("write failed: {e}");
    }
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap_or("?");
    if status == "200" {
        let cn = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["subject"]["CN"].as_str().map(str::to_owned))
            .unwrap_or_default();
        format!("200 OK, CN={cn}")
    } else {
        denial(status, body)
    }
}
