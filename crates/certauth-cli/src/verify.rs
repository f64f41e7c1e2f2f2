//! `certauth verify` and `certauth check`.

use certauth_core::policy::{Policy, PolicyContext, RequestInfo, Verdict};
use certauth_core::verify::{ChainVerifier, TrustAnchors, certificates_from_pem_or_der};
use certauth_core::{CertificateDer, Time, UnixTime};
use rustls::pki_types::CertificateRevocationListDer;
use rustls::pki_types::pem::PemObject as _;

use crate::{Failure, FilePath, Outcome, read, shown};

#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// The trusted CA certificates (PEM or DER).
    #[arg(long, value_name = "ROOTS.pem")]
    ca: FilePath,
    /// Intermediates the client may not send (PEM).
    #[arg(long, value_name = "INTERMEDIATES.pem")]
    chain: Option<FilePath>,
    /// CRLs to check revocation against (PEM `X509 CRL` blocks or DER; repeatable).
    #[arg(long, value_name = "CRL.pem")]
    crl: Vec<FilePath>,
    /// Keep using a CRL past its nextUpdate instead of refusing with CRL_HAS_EXPIRED (as
    /// `serve --allow-expired-crl`).
    #[arg(long, requires = "crl")]
    allow_expired_crl: bool,
    /// Refuse a certificate no CRL covers with UNABLE_TO_GET_CRL instead of allowing it (as
    /// `serve --deny-unknown-revocation`).
    #[arg(long, requires = "crl")]
    deny_unknown_revocation: bool,
    /// Verify as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// The client certificate, optionally followed by its intermediates.
    #[arg(value_name = "CERT.pem")]
    cert: FilePath,
}

/// The ring provider's signature algorithms.
fn algorithms() -> &'static [&'static dyn rustls::pki_types::SignatureVerificationAlgorithm] {
    crate::ring_provider().signature_verification_algorithms.all
}

/// The verifier for `--ca`, `--chain` and `--crl` (each CRL file PEM or DER).
pub(crate) fn verifier(
    ca: &std::path::Path,
    chain: Option<&std::path::Path>,
    crls: &[FilePath],
    algorithms: &'static [&'static dyn rustls::pki_types::SignatureVerificationAlgorithm],
    skip_bad_roots: bool,
) -> Result<ChainVerifier, Failure> {
    let bytes = read(ca)?;
    let bad = |e: certauth_core::SetupError| Failure::Usage(format!("{}: {e}", shown(ca)));
    let anchors = if skip_bad_roots {
        let (anchors, skipped) = TrustAnchors::from_pem_skipping_bad(&bytes).map_err(bad)?;
        for e in skipped {
            tracing::warn!("{}: left out: {e}", shown(ca));
        }
        anchors
    } else {
        TrustAnchors::from_pem(&bytes).map_err(bad)?
    };
    let mut v = ChainVerifier::new(anchors, algorithms);
    if let Some(path) = chain {
        let certs = certificates_from_pem_or_der(&read(path)?)
            .map_err(|e| Failure::Usage(format!("{}: {e}", shown(path))))?;
        v = v
            .with_intermediates(certs)
            .map_err(|e| Failure::Usage(format!("{}: {e}", shown(path))))?;
    }
    if !crls.is_empty() {
        let mut ders = Vec::new();
        for path in crls {
            let bytes = read(path)?;
            let bad = |e: String| Failure::Usage(format!("{}: {e}", shown(path)));
            if bytes.first() == Some(&0x30) {
                ders.push(CertificateRevocationListDer::from(bytes));
                continue;
            }
            let found = CertificateRevocationListDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("malformed PEM: {e}")))?;
            if found.is_empty() {
                return Err(bad("no `X509 CRL` block (PEM) or DER CRL found".into()));
            }
            ders.extend(found);
        }
        v = v.with_crls(ders).map_err(|e| {
            Failure::Usage(format!(
                "{}: {e}",
                crls.iter().map(|p| shown(p)).collect::<Vec<_>>().join(", ")
            ))
        })?;
    }
    Ok(v)
}

/// What loading the CRLs found, on stderr (stdout is the answer scripts read).
fn print_crl_warnings(v: &ChainVerifier) {
    for w in v.crl_warnings() {
        eprintln!("certauth: warning: {w}");
    }
}

fn presented(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, Failure> {
    certificates_from_pem_or_der(&read(path)?)
        .map_err(|e| Failure::Rejected(format!("{}: {e}", shown(path))))
}

pub(crate) fn verify(args: VerifyArgs) -> Outcome {
    let mut v = verifier(
        &args.ca,
        args.chain.as_deref(),
        &args.crl,
        algorithms(),
        false,
    )?
    .with_crl_expiry_enforced(!args.allow_expired_crl);
    print_crl_warnings(&v);
    if args.deny_unknown_revocation {
        v = v.deny_unknown_revocation();
    }
    let now = match &args.at {
        Some(text) => Time::parse_rfc3339(text)
            .and_then(Time::to_unix_time)
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "--at {text:?} is not an RFC 3339 time after 1970 (e.g. 2026-11-27T12:00:00Z)"
                ))
            })?,
        None => UnixTime::now(),
    };
    match v.verify(&presented(&args.cert)?, now) {
        Ok(_) => {
            println!("ok");
            Ok(())
        }
        Err(e) => {
            println!("{}", e.code());
            eprintln!("certauth: {}: {e}", shown(&args.cert));
            Err(Failure::Answered)
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// The policy file (TOML).
    #[arg(long, value_name = "POLICY.toml")]
    policy: FilePath,
    /// Verify the chain against these CAs first (the policy then also sees the chain).
    /// Without it nothing is verified: only the policy is evaluated.
    #[arg(long, value_name = "ROOTS.pem")]
    ca: Option<FilePath>,
    /// CRLs to check revocation against, with --ca (PEM `X509 CRL` blocks or DER;
    /// repeatable).
    #[arg(long, value_name = "CRL.pem", requires = "ca")]
    crl: Vec<FilePath>,
    /// The client certificate (PEM or DER; with --ca, optionally followed by intermediates).
    #[arg(value_name = "CERT.pem")]
    cert: FilePath,
}

pub(crate) fn load_policy(
    path: &std::path::Path,
) -> Result<impl Policy + std::fmt::Debug + use<>, Failure> {
    let text = String::from_utf8(read(path)?)
        .map_err(|_| Failure::Usage(format!("{}: not UTF-8 text", shown(path))))?;
    certauth_core::policy::file::from_toml(&text)
        .map_err(|e| Failure::Usage(format!("{}: {e}", shown(path))))
}

pub(crate) fn check(args: CheckArgs) -> Outcome {
    let policy = load_policy(&args.policy)?;
    let certs = crate::inspect::load(&args.cert)?;
    let chain = match &args.ca {
        Some(ca) => {
            let v = verifier(ca, None, &args.crl, algorithms(), false)?;
            print_crl_warnings(&v);
            match v.verify(&presented(&args.cert)?, UnixTime::now()) {
                Ok(c) => Some(c),
                Err(e) => {
                    println!("deny 401: {} ({e})", e.code());
                    return Err(Failure::Answered);
                }
            }
        }
        None => {
            // stdout stays `allow` / `deny …` for scripts; the note goes to stderr.
            eprintln!(
                "certauth: note: no --ca: the certificate's chain, validity and revocation \
                 were not verified; only the policy was evaluated"
            );
            None
        }
    };
    let leaf = &certs[0];
    let ctx = PolicyContext::new(leaf, chain.as_ref(), RequestInfo::new("GET", "/"));
    match policy.evaluate(&ctx) {
        Verdict::Allow => {
            println!("allow");
            Ok(())
        }
        Verdict::Deny(d) => {
            println!("deny {}: {}", d.status().code(), d.reason());
            Err(Failure::Answered)
        }
    }
}
