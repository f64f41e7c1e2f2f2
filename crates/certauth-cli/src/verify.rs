//! `certauth verify` and `certauth check`.

use certauth_core::policy::file::PolicyFile;
use certauth_core::policy::{Policy, PolicyContext, RequestInfo, Verdict};
use certauth_core::verify::{
    ChainVerifier, TrustAnchors, UnknownRevocation, certificates_from_pem_or_der,
};
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
    /// `serve --deny-unknown-revocation`; with --crl-fetch, also when the distribution
    /// point's CRL cannot be had).
    #[arg(long)]
    deny_unknown_revocation: bool,
    /// Ask the certificate's OCSP responder, as `serve --ocsp` (a soft fail prints `ok` and
    /// a warning on stderr).
    #[arg(long)]
    ocsp: bool,
    /// As `serve --ocsp-required`.
    #[arg(long, requires = "ocsp")]
    ocsp_required: bool,
    /// Fetch the CRL at the certificate's distribution point, as `serve --crl-fetch`.
    #[arg(long)]
    crl_fetch: bool,
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
    let bad =
        |e: certauth_core::verify::TrustConfigError| Failure::Usage(format!("{}: {e}", shown(ca)));
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
        v = v.with_unknown_revocation(UnknownRevocation::Deny);
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
    if args.deny_unknown_revocation && args.crl.is_empty() && !args.crl_fetch {
        return Err(Failure::Usage(
            "--deny-unknown-revocation needs --crl CRL.pem or --crl-fetch".into(),
        ));
    }
    let chain = presented(&args.cert)?;
    let verified = v.verify(&chain, now);
    let online = revocation(
        args.ocsp,
        args.ocsp_required,
        args.crl_fetch,
        args.deny_unknown_revocation,
        certauth_core::revocation::DEFAULT_TIMEOUT,
        certauth_core::revocation::DEFAULT_MAX_CRL_BYTES,
        algorithms(),
    )?;
    let verified = match (verified, online) {
        (Ok(_), Some(online)) => check_online(v, online, &chain, now)?,
        (verified, _) => verified.map(|_| ()),
    };
    match verified {
        Ok(()) => {
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

/// The online checks of a chain that verified, as `serve` makes them; soft fails are
/// warnings on stderr.
fn check_online(
    v: ChainVerifier,
    online: certauth_core::revocation::Revocation,
    chain: &[CertificateDer<'static>],
    now: UnixTime,
) -> Result<Result<(), certauth_core::VerifyError>, Failure> {
    use certauth_core::{Authenticator, Decision, DenyReason, PeerInfo};
    struct Warn;
    impl certauth_core::observe::Observer for Warn {
        fn revocation_soft_fail(&self, _check: &'static str, detail: &str) {
            eprintln!(
                "certauth: warning: revocation unknown (soft fail): {}",
                certauth_core::escape::escape(detail)
            );
        }
    }
    let auth = Authenticator::builder()
        .observer(std::sync::Arc::new(Warn))
        .verifier(v)
        .revocation(online)
        .build()
        .map_err(|e| Failure::Rejected(e.to_string()))?;
    let Ok(certauth_core::HeadProgress::Complete { head, .. }) =
        certauth_core::HeadParser::new(auth.limits())
            .parse(b"GET / HTTP/1.1\r\nHost: certauth-verify\r\n\r\n")
    else {
        return Err(Failure::Rejected("internal: the request head".into()));
    };
    let decision = fetch_runtime()?
        .block_on(async { auth.decide(&PeerInfo::new(chain, None), &head, now).await });
    Ok(match decision {
        Decision::Allow(_) => Ok(()),
        Decision::Deny(d) => match d.reason() {
            DenyReason::Verify(e) => Err(e.clone()),
            other => return Err(Failure::Rejected(other.to_string())),
        },
    })
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

pub(crate) fn load_policy(path: &std::path::Path) -> Result<PolicyFile, Failure> {
    let text = String::from_utf8(read(path)?)
        .map_err(|_| Failure::Usage(format!("{}: not UTF-8 text", shown(path))))?;
    PolicyFile::from_toml(&text).map_err(|e| Failure::Usage(format!("{}: {e}", shown(path))))
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

/// The online revocation checks `--ocsp`, `--ocsp-required`, `--crl-fetch` and
/// `--deny-unknown-revocation` ask for, if any. Fetches run on a small tokio runtime of
/// their own, whichever runtime serves (`--runtime smol` included).
pub(crate) fn revocation(
    ocsp: bool,
    ocsp_required: bool,
    crl_fetch: bool,
    deny_unknown: bool,
    timeout: std::time::Duration,
    max_crl_bytes: usize,
    algorithms: &'static [&'static dyn rustls::pki_types::SignatureVerificationAlgorithm],
) -> Result<Option<certauth_core::revocation::Revocation>, Failure> {
    if !ocsp && !crl_fetch {
        return Ok(None);
    }
    let runtime = fetch_runtime()?;
    let fetcher = certauth_tokio::Fetcher::new(runtime.handle().clone());
    let mut r =
        certauth_core::revocation::Revocation::new(std::sync::Arc::new(fetcher), algorithms)
            .with_timeout(timeout)
            .with_max_crl_bytes(max_crl_bytes);
    if ocsp {
        r = r.ocsp(ocsp_required);
    }
    if crl_fetch {
        r = r.crl_fetch(deny_unknown);
    }
    Ok(Some(r))
}

/// The one-worker tokio runtime the revocation fetches run on.
fn fetch_runtime() -> Result<&'static tokio::runtime::Runtime, Failure> {
    static FETCHES: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = FETCHES.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("certauth-revocation")
        .enable_all()
        .build()
        .map_err(|e| Failure::Rejected(format!("cannot start the fetch runtime: {e}")))?;
    Ok(FETCHES.get_or_init(|| rt))
}
