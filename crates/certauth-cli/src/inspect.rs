//! `certauth inspect [--json] FILE…`

use certauth_core::verify::certificates_from_pem_or_der;
use certauth_core::{ClientCertificate, Time};

use crate::{Failure, FilePath, Outcome, read, shown};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// One JSON object per certificate, per line, with the keys and formatting of Node's
    /// `X509Certificate#toLegacyObject()`.
    #[arg(long)]
    json: bool,
    /// PEM (any number of certificates) or DER files.
    #[arg(required = true)]
    files: Vec<FilePath>,
}

/// Every certificate in a file, or a one-line error.
pub(crate) fn load(path: &std::path::Path) -> Result<Vec<ClientCertificate>, Failure> {
    let bytes = read(path)?;
    let ders = certificates_from_pem_or_der(&bytes)
        .map_err(|e| Failure::Rejected(format!("{}: {e}", shown(path))))?;
    ders.iter()
        .enumerate()
        .map(|(i, d)| {
            ClientCertificate::from_der(d)
                .map_err(|e| Failure::Rejected(format!("{}: certificate {i}: {e}", shown(path))))
        })
        .collect()
}

pub(crate) fn run(args: Args) -> Outcome {
    let now = Time::from_unix_time(rustls::pki_types::UnixTime::now());
    for path in &args.files {
        for (i, cert) in load(path)?.iter().enumerate() {
            if args.json {
                let json = serde_json::to_string(&cert.to_legacy_object())
                    .map_err(|e| Failure::Rejected(e.to_string()))?;
                println!("{json}");
            } else {
                if i > 0 || args.files.len() > 1 {
                    println!("== {} #{i}", shown(path));
                }
                print!("{}", describe(cert, now));
            }
        }
    }
    Ok(())
}

fn eku_name(oid: &str) -> &str {
    match oid {
        "1.3.6.1.5.5.7.3.1" => "serverAuth",
        "1.3.6.1.5.5.7.3.2" => "clientAuth",
        "1.3.6.1.5.5.7.3.3" => "codeSigning",
        "1.3.6.1.5.5.7.3.4" => "emailProtection",
        "1.3.6.1.5.5.7.3.8" => "timeStamping",
        "1.3.6.1.5.5.7.3.9" => "OCSPSigning",
        other => other,
    }
}

/// The human-readable view.
pub(crate) fn describe(cert: &ClientCertificate, now: Time) -> String {
    let mut out = String::new();
    // Values come from the certificate: control and bidi characters escaped, so none
    // reaches the terminal (an ESC in a URI SAN would start an escape sequence).
    let mut line = |k: &str, v: String| {
        out.push_str(&format!("{k:<14} {}\n", certauth_core::escape::escape(&v)));
    };
    line("Subject:", cert.subject().to_rfc4514());
    line("Issuer:", cert.issuer().to_rfc4514());
    if cert.has_subject_alt_names() {
        line("SANs:", certauth_core::legacy::subjectaltname(cert));
    }
    if let Some(id) = cert.spiffe_id() {
        line("SPIFFE ID:", id.to_owned());
    }
    for upn in cert.subject_alt_names().filter_map(|g| g.upn()) {
        line("UPN:", upn.to_owned());
    }
    line("Serial:", cert.serial_hex());
    line("Not before:", cert.not_before().to_string());
    let days = now.seconds_until(cert.not_after()) / 86_400;
    let when = if now > cert.not_after() {
        format!("expired {} days ago", -days)
    } else if now < cert.not_before() {
        "not valid yet".to_owned()
    } else {
        format!("expires in {days} days")
    };
    line("Not after:", format!("{} ({when})", cert.not_after()));
    let alg = cert.public_key_algorithm();
    line(
        "Public key:",
        match alg.bits() {
            Some(b) => format!("{alg:?} ({b} bits)"),
            None => format!("{alg:?}"),
        },
    );
    if let Some(eku) = cert.extended_key_usage() {
        let names: Vec<String> = eku.map(|o| eku_name(&o.to_string()).to_owned()).collect();
        line("Ext key usage:", names.join(", "));
    }
    line("CA:", cert.is_ca().to_string());
    line("SHA-256:", cert.fingerprint_sha256_hex());
    // What the CA signed: the value a `signed_fingerprint` ban holds, which re-encoding the
    // signature does not change.
    line("Signed SHA-256:", cert.tbs_sha256_hex());
    line("SHA-1:", cert.fingerprint_sha1_hex());
    out
}
