//! Clients issued by an intermediate CA, a CRL, and a reload from library code.
//!
//! The PKI most deployments have: a root CA (the trust anchor), an intermediate that issues
//! the client certificates, and the intermediate's CRL. Clients may send only their own
//! certificate: the server holds the intermediate (`with_intermediates`). A client the CRL
//! lists gets `401 CERT_REVOKED`. The CRL file is read again every ten seconds and the
//! authenticator reloaded: a CRL that does not load is logged and the one in force stays,
//! and the reload keeps `expose_reasons` (a reload's builder keeps what it does not set).
//!
//! `cargo run --example intermediates_crls --features axum`
//!
//! It makes the PKI in a temporary directory and prints the `curl` commands to try.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use certauth::hyper::{CertAuthLayer, ClientCert, default_provider, serve};
use certauth::policy::allow_cn;
use certauth::tls::{ClientAuthMode, load_server_identity, server_config};
use certauth::verify::certificates_from_pem_or_der;
use certauth::{Authenticator, ChainVerifier, TrustAnchors};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber, date_time_ymd,
};

async fn whoami(ClientCert(client): ClientCert) -> String {
    format!("hello {}\n", client.certificate().subject().to_rfc4514())
}

/// The verifier from the files: the root as the trust anchor, the intermediate the clients
/// may leave out, the intermediate's CRL.
fn verifier(dir: &Path) -> Result<ChainVerifier, Box<dyn std::error::Error>> {
    let provider = default_provider();
    let anchors = TrustAnchors::from_pem(&std::fs::read(dir.join("root.pem"))?)?;
    let intermediates =
        certificates_from_pem_or_der(&std::fs::read(dir.join("intermediate.pem"))?)?;
    let verifier = ChainVerifier::new(anchors, provider.signature_verification_algorithms.all)
        .with_intermediates(intermediates)?
        .with_crls_pem(&std::fs::read(dir.join("crl.pem"))?)?;
    for warning in verifier.crl_warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(verifier)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let dir = make_pki()?;

    let provider = default_provider();
    let anchors = TrustAnchors::from_pem(&std::fs::read(dir.join("root.pem"))?)?;
    let (chain, key) = load_server_identity(
        &std::fs::read(dir.join("server.pem"))?,
        &std::fs::read(dir.join("server.key"))?,
    )?;
    // The CertificateRequest names the root: clients pick a certificate that chains to it.
    let tls = server_config(provider, chain, key, &anchors, ClientAuthMode::Deferred)?;
    let policy = || allow_cn(["trusted-client", "revoked-client"]);
    let auth = Authenticator::builder()
        .verifier(verifier(&dir)?)
        .policy(policy())
        .expose_reasons(true) // the code in the body, for curl to show
        .build()?;

    // Reloading from library code: new anchors, intermediates, CRLs or policy take effect
    // for the next decision; decisions under way finish with the old configuration.
    let reloading = auth.clone();
    let crl_dir = dir.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let next =
                verifier(&crl_dir).map(|v| Authenticator::builder().verifier(v).policy(policy()));
            match next.map(|builder| reloading.reload(builder)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("reload refused, keeping the configuration: {e}"),
                Err(e) => eprintln!("cannot read the files, keeping the configuration: {e}"),
            }
        }
    });

    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(CertAuthLayer::new(auth));
    let listen = "127.0.0.1:8443";
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let curl = |who: &str| {
        let p = |name: &str| dir.join(name).display().to_string();
        format!(
            "curl --cacert {} --cert {} --key {} https://localhost:8443/whoami",
            p("root.pem"),
            p(&format!("{who}.pem")),
            p(&format!("{who}.key"))
        )
    };
    println!("listening on https://{listen}; try:");
    println!(
        "  {}  # 200 hello CN=trusted-client",
        curl("trusted-client")
    );
    println!("  {}  # 401 CERT_REVOKED", curl("revoked-client"));
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, Some(Arc::new(tls)), app, ctrl_c).await?;
    Ok(())
}

/// A root, an intermediate under it, the server's certificate (from the root), two clients
/// of the intermediate and the intermediate's CRL revoking one of them, as PEM files.
fn make_pki() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("certauth-crl-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text);
    let ca = |cn: &str| -> Result<CertificateParams, rcgen::Error> {
        let mut p = CertificateParams::new(vec![])?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(p)
    };

    let root_key = KeyPair::generate()?;
    let root_params = ca("Example Root CA")?;
    write("root.pem", &root_params.self_signed(&root_key)?.pem())?;
    let root = Issuer::new(root_params, &root_key);

    let intermediate_key = KeyPair::generate()?;
    let intermediate_params = ca("Example Client CA")?;
    let intermediate_cert = intermediate_params.signed_by(&intermediate_key, &root)?;
    write("intermediate.pem", &intermediate_cert.pem())?;
    let intermediate = Issuer::new(intermediate_params, &intermediate_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_owned()])?;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    write("server.pem", &server.signed_by(&server_key, &root)?.pem())?;
    write("server.key", &server_key.serialize_pem())?;

    for (serial, cn) in [(1_u64, "trusted-client"), (2, "revoked-client")] {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(vec![])?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(SerialNumber::from(serial));
        write(
            &format!("{cn}.pem"),
            &p.signed_by(&key, &intermediate)?.pem(),
        )?;
        write(&format!("{cn}.key"), &key.serialize_pem())?;
    }

    let crl = CertificateRevocationListParams {
        this_update: date_time_ymd(2025, 1, 1),
        next_update: date_time_ymd(2099, 1, 1),
        crl_number: SerialNumber::from(1_u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(2_u64),
            revocation_time: date_time_ymd(2025, 1, 1),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    };
    write("crl.pem", &crl.signed_by(&intermediate)?.pem()?)?;
    Ok(dir)
}
