//! Shared by the examples: the server's files from the command line, or a throw-away PKI.
//!
//! `cargo run --example ws_echo_tokio --features tokio -- CA.pem SERVER.pem SERVER.key [ADDR]`
//! uses your files; with no arguments a PKI is made in a temporary directory and the
//! commands to try are printed.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// The server's inputs: the CA that issues client certificates, the server's own
/// certificate and key, and where to listen.
pub(crate) struct Setup {
    pub(crate) ca_pem: Vec<u8>,
    pub(crate) server_pem: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
    pub(crate) listen: String,
}

pub(crate) fn setup() -> Result<Setup, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() >= 3 {
        return Ok(Setup {
            ca_pem: std::fs::read(&args[0])?,
            server_pem: std::fs::read(&args[1])?,
            server_key: std::fs::read(&args[2])?,
            listen: args
                .get(3)
                .cloned()
                .unwrap_or_else(|| "127.0.0.1:8443".into()),
        });
    }
    let dir = std::env::temp_dir().join(format!("certauth-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(vec![])?;
    ca.distinguished_name
        .push(DnType::CommonName, "certauth example CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);
    let issue = |cn: &str, sans: Vec<String>, eku| -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(sans)?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![eku];
        Ok((p.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
    };
    let (server_pem, server_key) = issue(
        "localhost",
        vec!["localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text);
    write("ca.pem", &ca_cert.pem())?;
    for cn in ["trusted-client", "someone-else"] {
        let (pem, key) = issue(cn, vec![], ExtendedKeyUsagePurpose::ClientAuth)?;
        write(&format!("{cn}.pem"), &pem)?;
        write(&format!("{cn}.key"), &key)?;
    }
    let listen = "127.0.0.1:8443".to_owned();
    let p = |name: &str| -> PathBuf { dir.join(name) };
    println!("Throw-away PKI in {}. Try:", dir.display());
    println!(
        "  curl -i --http1.1 --cacert {ca} --cert {c} --key {k} https://localhost:8443/  \
         # 400: authenticated, but not a WebSocket upgrade",
        ca = p("ca.pem").display(),
        c = p("trusted-client.pem").display(),
        k = p("trusted-client.key").display(),
    );
    println!(
        "  curl -i --http1.1 --cacert {ca} https://localhost:8443/  # 401: no certificate",
        ca = p("ca.pem").display()
    );
    println!(
        "  node tests/node/ws-client.js wss://localhost:8443/ {ca} {c} {k}  # Echo: hello",
        ca = p("ca.pem").display(),
        c = p("trusted-client.pem").display(),
        k = p("trusted-client.key").display(),
    );
    Ok(Setup {
        ca_pem: ca_cert.pem().into_bytes(),
        server_pem: server_pem.into_bytes(),
        server_key: server_key.into_bytes(),
        listen,
    })
}
