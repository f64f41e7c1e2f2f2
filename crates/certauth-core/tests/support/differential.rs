//! certauth's certificate parser against a second one: x509-cert (RustCrypto), and webpki's
//! acceptance. Shared by `tests/differential.rs` (the real-world corpus) and the
//! `cert_differential` fuzz target (any bytes).
//!
//! The properties:
//! - Where both parsers read a certificate, they read the same version, serial bytes,
//!   issuer and subject DER, validity seconds, signature algorithm, SubjectPublicKeyInfo
//!   and extensions (OID, criticality, value bytes).
//! - Where certauth reads one that x509-cert refuses, the reason is a known gap of
//!   x509-cert ([`explained_gap`]), not a certauth leniency. The corpus test holds every
//!   real certificate to this; the fuzz target does not, since mutated bytes find x509-cert
//!   quirks without end (OID arcs over 2^32, non-zero unused bits in the signature BIT
//!   STRING, …) that certauth has no reason to share.
//! - Where x509-cert reads one that certauth refuses, certauth is stricter on purpose (it
//!   decodes extension values and strings x509-cert leaves opaque, and enforces limits):
//!   counted, not judged.

use certauth_core::ClientCertificate;
use der::{Decode as _, Encode as _};
use x509_cert::Certificate;

/// What the parsers made of the bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Both refuse.
    BothRefuse,
    /// Both read it, identically.
    Agree,
    /// Only certauth reads it; the known x509-cert gap that explains it.
    OnlyCertauth(&'static str),
    /// Only certauth reads it, for no gap listed in [`explained_gap`]: x509-cert's error.
    OnlyCertauthUnexplained(String),
    /// Only x509-cert reads it; certauth's reason.
    OnlyReference(String),
}

/// Compares the parsers on `der`. `Err` is a field both read differently, described.
pub(crate) fn compare(der: &[u8]) -> Result<Verdict, String> {
    let ours = ClientCertificate::from_der(der);
    let theirs = Certificate::from_der(der);
    match (ours, theirs) {
        (Err(_), Err(_)) => Ok(Verdict::BothRefuse),
        (Err(e), Ok(_)) => Ok(Verdict::OnlyReference(e.to_string())),
        (Ok(_), Err(e)) => Ok(match explained_gap(der) {
            Some(why) => Verdict::OnlyCertauth(why),
            None => Verdict::OnlyCertauthUnexplained(e.to_string()),
        }),
        (Ok(o), Ok(t)) => same_fields(&o, &t).map(|()| Verdict::Agree),
    }
}

fn same_fields(o: &ClientCertificate, t: &Certificate) -> Result<(), String> {
    let tbs = &t.tbs_certificate;
    let check = |what: &str, a: &[u8], b: &[u8]| {
        if a == b {
            Ok(())
        } else {
            Err(format!("{what}: certauth {a:02X?}, x509-cert {b:02X?}"))
        }
    };
    let version = match tbs.version {
        x509_cert::certificate::Version::V1 => 1,
        x509_cert::certificate::Version::V2 => 2,
        x509_cert::certificate::Version::V3 => 3,
    };
    check("version", &[o.version()], &[version])?;
    check("serial", o.serial_bytes(), tbs.serial_number.as_bytes())?;
    for (what, ours, theirs) in [
        ("issuer", o.issuer(), &tbs.issuer),
        ("subject", o.subject(), &tbs.subject),
    ] {
        let (ours, theirs) = (rdns_of(&ours), their_rdns(theirs)?);
        if ours != theirs {
            return Err(format!("{what}: certauth {ours:?}, x509-cert {theirs:?}"));
        }
    }
    let secs = |t: &x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).ok();
    let validity = [
        (
            o.not_before().unix_seconds(),
            secs(&tbs.validity.not_before),
        ),
        (o.not_after().unix_seconds(), secs(&tbs.validity.not_after)),
    ];
    for (ours, theirs) in validity {
        if Some(ours) != theirs {
            return Err(format!("validity: certauth {ours}, x509-cert {theirs:?}"));
        }
    }
    // OIDs compare as their DER contents: const-oid prints an arc over 2^32 wrapped.
    check(
        "signature algorithm",
        o.signature_algorithm().as_bytes(),
        tbs.signature.oid.as_bytes(),
    )?;
    check(
        "SubjectPublicKeyInfo",
        o.subject_public_key_info(),
        &tbs.subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())?,
    )?;
    let theirs: Vec<(&[u8], bool, &[u8])> = tbs
        .extensions
        .iter()
        .flatten()
        .map(|e| (e.extn_id.as_bytes(), e.critical, e.extn_value.as_bytes()))
        .collect();
    let ours: Vec<(&[u8], bool, &[u8])> = o
        .extensions()
        .map(|(oid, critical, value)| (oid.as_bytes(), critical, value))
        .collect();
    if ours != theirs {
        return Err(format!(
            "extensions: certauth {ours:?}, x509-cert {theirs:?}"
        ));
    }
    Ok(())
}

/// A name as its RDNs, each a sorted list of (type, value contents): equal up to the order
/// inside a SET (x509-cert sorts it on encoding; certauth keeps it as written).
type Rdns = Vec<Vec<(Vec<u8>, Vec<u8>)>>;

fn rdns_of(name: &certauth_core::cert::Name<'_>) -> Rdns {
    let mut out: Rdns = Vec::new();
    let mut last = None;
    for a in name.attributes() {
        if last != Some(a.rdn_index()) {
            out.push(Vec::new());
            last = Some(a.rdn_index());
        }
        if let Some(rdn) = out.last_mut() {
            rdn.push((a.oid().as_bytes().to_vec(), a.contents().to_vec()));
        }
    }
    for rdn in &mut out {
        rdn.sort();
    }
    out
}

fn their_rdns(name: &x509_cert::name::Name) -> Result<Rdns, String> {
    let mut out: Rdns = Vec::new();
    for rdn in name.0.iter() {
        let mut atvs: Vec<(Vec<u8>, Vec<u8>)> = rdn
            .0
            .iter()
            .map(|atv| (atv.oid.as_bytes().to_vec(), atv.value.value().to_vec()))
            .collect();
        if atvs.is_empty() {
            // An empty RDN contributes nothing (certauth reads it as OpenSSL does).
            continue;
        }
        atvs.sort();
        out.push(atvs);
    }
    Ok(out)
}

/// Why x509-cert refuses a certificate certauth reads, when the reason is a known gap of
/// x509-cert's rather than a certauth leniency.
pub(crate) fn explained_gap(der: &[u8]) -> Option<&'static str> {
    let c = ClientCertificate::from_der(der).ok()?;
    // der's DateTime starts in 1970; X.509 times (UTCTime from 1950) do not.
    if c.not_before().unix_seconds() < 0 || c.not_after().unix_seconds() < 0 {
        return Some("a validity time before 1970, which der's DateTime cannot hold");
    }
    let names = [c.subject(), c.issuer()];
    let attributes = || names.iter().flat_map(|n| n.attributes());
    // The reason certauth reads DER itself (asn1.rs): der has no UniversalString.
    if attributes().any(|a| a.tag() == 0x1C) {
        return Some("a UniversalString in a name, which der cannot decode");
    }
    // Universal types OpenSSL reads in a name (B_ASN1_UNKNOWN) and der has no Tag for.
    if attributes().any(|a| [0x07, 0x08, 0x0B, 0x0D, 0x0E, 0x0F, 0x1D].contains(&a.tag())) {
        return Some("a name value of a universal type der has no tag for");
    }
    for n in &names {
        let rdns = rdns_of(n);
        if rdns.iter().any(|rdn| rdn.windows(2).any(|w| w[0] == w[1])) {
            return Some("an RDN holding one attribute twice, which x509-cert's SET OF refuses");
        }
    }
    if c.serial_bytes().len() > 20 {
        return Some(
            "a serial over RFC 5280's 20 octets, which x509-cert enforces (OpenSSL does not)",
        );
    }
    let short = |oid: certauth_core::Oid<'_>| oid.to_string().split('.').count() < 3;
    if short(c.signature_algorithm())
        || attributes().any(|a| short(a.oid()))
        || c.extensions().any(|(oid, _, _)| short(oid))
    {
        return Some("an OID of two arcs, which const-oid cannot hold");
    }
    if has_high_tag_number(der) {
        return Some("a tag number of 31 or more, which der's Tag cannot hold");
    }
    None
}

/// Whether the certificate's signatureAlgorithm or signatureValue holds an element in
/// the high-tag-number form (certauth reads AlgorithmIdentifier parameters as opaque bytes).
fn has_high_tag_number(der: &[u8]) -> bool {
    /// (header length, total length) of the TLV at the start of `input`.
    fn tlv(input: &[u8]) -> Option<(usize, usize)> {
        let mut i = 1;
        if input.first()? & 0x1F == 0x1F {
            while input.get(i)? & 0x80 != 0 {
                i += 1;
            }
            i += 1;
        }
        let first = *input.get(i)?;
        i += 1;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let mut len = 0usize;
            for _ in 0..(first & 0x7F) {
                len = len
                    .checked_mul(256)?
                    .checked_add(usize::from(*input.get(i)?))?;
                i += 1;
            }
            len
        };
        Some((i, i.checked_add(len)?))
    }
    /// The elements inside the TLV at the start of `input`.
    fn children(input: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let Some((header, total)) = tlv(input) else {
            return out;
        };
        let mut rest = input.get(header..total).unwrap_or_default();
        while let Some((_, len)) = tlv(rest) {
            let Some(child) = rest.get(..len) else { break };
            out.push(child);
            rest = &rest[len..];
        }
        out
    }
    children(der).iter().skip(1).any(|outer| {
        children(outer)
            .iter()
            .any(|inner| inner.first().is_some_and(|t| t & 0x1F == 0x1F))
    })
}

/// Whether webpki reads `der` as an end-entity certificate.
pub(crate) fn webpki_reads(der: &[u8]) -> bool {
    let der = rustls_pki_types::CertificateDer::from(der);
    webpki::EndEntityCert::try_from(&der).is_ok()
}
