//! CRLs, read and judged by certauth itself (RFC 5280 sections 5 and 6.3).
//!
//! webpki 0.103 checks revocation while it builds a path, and in ways that let revoked
//! clients in with ordinary configurations: it never checks a trust anchor (so an
//! intermediate in the trust set is never revocation-checked), takes the first CRL in the
//! list whose issuer bytes match (an older CRL listed first un-revokes, an expired one
//! refuses everyone, a forged one or the other key's in a CA key rollover blocks the real
//! one), and matches issuer names byte for byte (a CRL whose issuer is the same name as a
//! PrintableString covers nothing). So certauth gives webpki no CRLs, and checks every
//! certificate of the path webpki built here, from its path callback:
//!
//! - a CRL covers a certificate when its issuer is the certificate's issuer as RFC 5280 7.1
//!   compares names, its scope (issuingDistributionPoint) includes the certificate (as
//!   webpki judges scope), and its signature verifies with the key of the certificate's
//!   issuer on that path;
//! - of the CRLs that cover a certificate, the newest rules: highest cRLNumber, then latest
//!   thisUpdate (the first listed among equals).
//!
//! At load, a CRL is refused for what OpenSSL refuses (an unhandled critical extension, an
//! issuer without cRLSign, a revoked serial that is not DER), and for a signature no
//! configured CA of its issuer's name verifies.

use rustls_pki_types::CertificateRevocationListDer;
use webpki::{CertRevocationList, OwnedCertRevocationList};

use super::SignatureAlgorithms;
use super::constraints::same_name;
use crate::asn1::{Reader, Tlv, tag};
use crate::cert::{ClientCertificate, KeyUsage};
use crate::name::Name;
use crate::oid::{Oid, known};
use crate::time::Time;

/// CRL extensions OpenSSL handles when critical: issuingDistributionPoint,
/// authorityKeyIdentifier, deltaCRLIndicator. (CRLNumber MUST be non-critical, 5.2.3.)
const HANDLED_CRITICAL: [&[u8]; 3] = [
    &[0x55, 0x1D, 0x1C],
    &[0x55, 0x1D, 0x23],
    &[0x55, 0x1D, 0x1B],
];
const CRL_NUMBER: &[u8] = &[0x55, 0x1D, 0x14];
const ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1D, 0x1C];

/// Why a CRL is not believed at load.
pub(crate) enum Refusal {
    /// A rule certauth checks: OpenSSL's code and the rule.
    Rule { code: &'static str, rule: String },
    /// webpki could not parse it.
    Webpki(webpki::Error),
}

/// The signed parts of a certificate or CRL: the signed DER, the signature
/// AlgorithmIdentifier's contents, the signature bytes.
struct Signed<'a> {
    tbs: Tlv<'a>,
    algorithm: &'a [u8],
    signature: &'a [u8],
}

fn signed(der: &[u8]) -> Option<Signed<'_>> {
    let outer = Reader::new(der).read(tag::SEQUENCE).ok()?;
    let mut r = outer.reader();
    let tbs = r.read(tag::SEQUENCE).ok()?;
    let algorithm = r.read(tag::SEQUENCE).ok()?.value;
    let (unused, signature) = crate::asn1::bit_string(r.read(tag::BIT_STRING).ok()?).ok()?;
    r.finish().ok()?;
    (unused == 0).then_some(Signed {
        tbs,
        algorithm,
        signature,
    })
}

/// Whether `der` (a certificate or CRL) carries a signature by the key in `spki` (a
/// SubjectPublicKeyInfo), with one of `algorithms`, matched as webpki matches them.
pub(crate) fn signed_by(der: &[u8], spki: &[u8], algorithms: SignatureAlgorithms) -> bool {
    signed(der)
        .is_some_and(|s| signature_verifies(s.tbs.raw, s.algorithm, s.signature, spki, algorithms))
}

/// Whether `signature` over `message`, made with the algorithm whose AlgorithmIdentifier
/// contents are `algorithm`, verifies with the key in `spki` (a SubjectPublicKeyInfo).
pub(crate) fn signature_verifies(
    message: &[u8],
    algorithm: &[u8],
    signature: &[u8],
    spki: &[u8],
    algorithms: SignatureAlgorithms,
) -> bool {
    let Some(key_info) = Reader::new(spki).read(tag::SEQUENCE).ok() else {
        return false;
    };
    let mut k = key_info.reader();
    let (Some(key_alg), Some(key_bits)) = (
        k.read(tag::SEQUENCE).ok(),
        k.read(tag::BIT_STRING)
            .ok()
            .and_then(|b| crate::asn1::bit_string(b).ok()),
    ) else {
        return false;
    };
    key_bits.0 == 0
        && algorithms.iter().any(|a| {
            a.public_key_alg_id().as_ref() == key_alg.value
                && a.signature_alg_id().as_ref() == algorithm
                && a.verify_signature(key_bits.1, message, signature).is_ok()
        })
}

/// Whether `cert` is self-issued: its subject and issuer are one name (RFC 5280 7.1).
pub(super) fn self_issued(cert: &ClientCertificate) -> bool {
    same_name(&cert.subject(), &cert.issuer())
}

/// Which certificates a CRL speaks for, from its issuingDistributionPoint.
#[derive(Debug, Default)]
struct Scope {
    only_user: bool,
    only_ca: bool,
    /// The URIs of the distribution point's fullName (webpki refuses, at load, an IDP
    /// without a fullName).
    uris: Vec<Vec<u8>>,
    has_idp: bool,
}

/// The URIs in a `[0] DistributionPointName` whose contents are `dp`: those of its
/// fullName (`[0] GeneralNames`); `None` for a nameRelativeToCRLIssuer or garbage.
fn full_name_uris(dp: Tlv<'_>) -> Option<Vec<Vec<u8>>> {
    let full = dp.reader().read(tag::context_constructed(0)).ok()?;
    let mut names = full.reader();
    let mut uris = Vec::new();
    while !names.is_empty() {
        let n = names.read_any().ok()?;
        if n.tag == tag::context_primitive(6) {
            uris.push(n.value.to_vec());
        }
    }
    Some(uris)
}

impl Scope {
    fn read(idp: &[u8]) -> Option<Self> {
        let mut r = Reader::new(idp).read(tag::SEQUENCE).ok()?.reader();
        let mut s = Self {
            has_idp: true,
            ..Self::default()
        };
        if let Some(dp) = r.read_optional(tag::context_constructed(0)).ok()? {
            s.uris = full_name_uris(dp).unwrap_or_default();
        }
        let flag = |t: Option<Tlv<'_>>| t.is_some_and(|t| t.value == [0xFF]);
        s.only_user = flag(r.read_optional(tag::context_primitive(1)).ok()?);
        s.only_ca = flag(r.read_optional(tag::context_primitive(2)).ok()?);
        Some(s)
    }

    /// Whether a CRL of this scope speaks for `cert` (a CA when `is_ca`), as webpki's
    /// `authoritative` judges it.
    fn covers(&self, cert: &ClientCertificate, is_ca: bool) -> bool {
        if !self.has_idp {
            return true;
        }
        if (self.only_ca && !is_ca) || (self.only_user && is_ca) {
            return false;
        }
        let Some(ext) = cert
            .extensions()
            .find(|e| e.oid().as_bytes() == known::EXT_CRL_DISTRIBUTION_POINTS)
        else {
            return true;
        };
        let Some(dps) = Reader::new(ext.value()).read(tag::SEQUENCE).ok() else {
            return false;
        };
        let mut dps = dps.reader();
        while let Ok(dp) = dps.read(tag::SEQUENCE) {
            let mut d = dp.reader();
            let Ok(Some(name)) = d.read_optional(tag::context_constructed(0)) else {
                continue;
            };
            // Reasons or a cRLIssuer: a partitioned or indirect CRL, which never matches.
            if !d.is_empty() {
                continue;
            }
            if full_name_uris(name).is_some_and(|uris| uris.iter().any(|u| self.uris.contains(u))) {
                return true;
            }
        }
        false
    }
}

/// A loaded CRL and what certauth judges by.
pub(crate) struct Crl {
    der: Vec<u8>,
    /// webpki's parse: its checks at load, and the revoked-serial lookup.
    list: CertRevocationList<'static>,
    issuer: Vec<u8>,
    /// cRLNumber's magnitude (leading zero bytes removed); `None` without one.
    number: Option<Vec<u8>>,
    this_update: i64,
    pub(crate) next_update: i64,
    scope: Scope,
    /// The keys (SubjectPublicKeyInfo DER) of configured CAs that signed it, checked at load.
    signers: Vec<Vec<u8>>,
}

/// An INTEGER's magnitude for comparison: leading zero bytes removed.
fn magnitude(v: &[u8]) -> Vec<u8> {
    v.iter().copied().skip_while(|b| *b == 0).collect()
}

impl Crl {
    /// Reads and judges a CRL against the configured CAs. `Err(None)`: its structure is not
    /// a CertificateList with a nextUpdate.
    pub(crate) fn load(
        der: &CertificateRevocationListDer<'_>,
        cas: &[&ClientCertificate],
        algorithms: SignatureAlgorithms,
    ) -> Result<Self, Refusal> {
        let unreadable = || Refusal::Rule {
            code: "ERROR_IN_CRL_NEXT_UPDATE_FIELD",
            rule: "no readable nextUpdate (RFC 5280 5.1.2.5)".into(),
        };
        let s = signed(der).ok_or_else(unreadable)?;
        let mut t = s.tbs.reader();
        let read = (|| {
            t.read_optional(tag::INTEGER).ok()?;
            t.read(tag::SEQUENCE).ok()?;
            let issuer = t.read(tag::SEQUENCE).ok()?.raw.to_vec();
            let this_update = Time::from_der(t.read_any().ok()?)?.unix_seconds();
            let next_update = Time::from_der(t.read_any().ok()?)?.unix_seconds();
            Some((issuer, this_update, next_update))
        })();
        let (issuer, this_update, next_update) = read.ok_or_else(unreadable)?;
        if let Ok(Some(entries)) = t.read_optional(tag::SEQUENCE) {
            let mut e = entries.reader();
            while let Ok(entry) = e.read(tag::SEQUENCE) {
                let Ok(serial) = entry.reader().read(tag::INTEGER) else {
                    break;
                };
                if crate::asn1::integer_bytes(serial).is_err() {
                    return Err(Refusal::Rule {
                        code: "CRL_ENTRY_SERIAL_NOT_DER",
                        rule: format!(
                            "a revoked serial is not DER-encoded ({}): it could never match \
                             a certificate's serial (X.690 8.3.2; OpenSSL refuses it too)",
                            crate::cert::colon_hex(serial.value)
                        ),
                    });
                }
            }
        }
        let mut number = None;
        let mut scope = Scope::default();
        if let Ok(Some(wrapper)) = t.read_optional(tag::context_constructed(0))
            && let Ok(exts) = wrapper.reader().read(tag::SEQUENCE)
        {
            let mut e = exts.reader();
            while let Ok(ext) = e.read(tag::SEQUENCE) {
                let mut x = ext.reader();
                let (Ok(oid), Ok(critical), Ok(value)) = (
                    x.read(tag::OID),
                    x.read_optional(tag::BOOLEAN),
                    x.read(tag::OCTET_STRING),
                ) else {
                    return Err(unreadable());
                };
                let critical = critical.is_some_and(|b| crate::asn1::boolean(b) == Ok(true));
                if critical && !HANDLED_CRITICAL.contains(&oid.value) {
                    let oid = Oid::from_der_contents(oid.value).ok_or_else(unreadable)?;
                    return Err(Refusal::Rule {
                        code: "UNHANDLED_CRITICAL_CRL_EXTENSION",
                        rule: format!(
                            "its extension {oid} is critical and not one a CRL may mark \
                             critical (RFC 5280 5.2: CRLNumber MUST be non-critical)"
                        ),
                    });
                }
                if oid.value == CRL_NUMBER {
                    number = Reader::new(value.value)
                        .read(tag::INTEGER)
                        .ok()
                        .map(|n| magnitude(n.value));
                } else if oid.value == ISSUING_DISTRIBUTION_POINT {
                    scope = Scope::read(value.value).ok_or_else(unreadable)?;
                }
            }
        }
        let list = OwnedCertRevocationList::from_der(der).map_err(Refusal::Webpki)?;
        let mut crl = Self {
            der: der.to_vec(),
            list: CertRevocationList::from(list),
            issuer,
            number,
            this_update,
            next_update,
            scope,
            signers: Vec::new(),
        };
        let named: Vec<&ClientCertificate> = cas
            .iter()
            .copied()
            .filter(|ca| crl.names(&ca.subject()))
            .collect();
        for ca in &named {
            let spki = ca.subject_public_key_info();
            if signed_by(&crl.der, spki, algorithms) {
                if ca
                    .key_usage()
                    .is_some_and(|ku| !ku.contains(KeyUsage::CRL_SIGN))
                {
                    return Err(Refusal::Rule {
                        code: "KEYUSAGE_NO_CRL_SIGN",
                        rule: format!(
                            "its issuer {} has a key usage without cRLSign (RFC 5280 4.2.1.3)",
                            ca.subject().to_rfc4514()
                        ),
                    });
                }
                crl.signers.push(spki.to_vec());
            }
        }
        if !named.is_empty() && crl.signers.is_empty() {
            return Err(Refusal::Rule {
                code: "CRL_SIGNATURE_FAILURE",
                rule: format!(
                    "no configured CA named {} signed it (a forged CRL, or the CA that signed \
                     it is missing from the CAs)",
                    crl.issuer_name()
                ),
            });
        }
        Ok(crl)
    }

    /// The issuer as RFC 4514 text, escaped (or hex if it is not a valid Name).
    pub(super) fn issuer_name(&self) -> String {
        match self.issuer_as_name() {
            Some(n) => n.to_rfc4514(),
            None => crate::cert::colon_hex(&self.issuer),
        }
    }

    fn issuer_as_name(&self) -> Option<Name<'_>> {
        let tlv = Reader::new(&self.issuer).read_any().ok()?;
        Name::parse(tlv, usize::MAX).ok()
    }

    /// Whether this CRL's issuer is `name` (RFC 5280 7.1). An issuer that is not a valid
    /// Name names nothing: no certificate with such an issuer or subject parses.
    pub(super) fn names(&self, name: &Name<'_>) -> bool {
        self.issuer_as_name()
            .is_some_and(|issuer| same_name(&issuer, name))
    }

    /// Whether a configured CA signed it (checked at load).
    pub(crate) fn has_configured_signer(&self) -> bool {
        !self.signers.is_empty()
    }

    /// Whether this CRL speaks for `cert` (a CA when `is_ca`) issued by `issuer`.
    fn covers(
        &self,
        cert: &ClientCertificate,
        is_ca: bool,
        issuer: &ClientCertificate,
        algorithms: SignatureAlgorithms,
    ) -> bool {
        let key = issuer.subject_public_key_info();
        self.names(&cert.issuer())
            && self.scope.covers(cert, is_ca)
            && (self.signers.iter().any(|k| k == key) || signed_by(&self.der, key, algorithms))
    }

    /// Newer CRLs order after older: cRLNumber, then thisUpdate.
    fn recency(&self) -> (usize, &[u8], i64) {
        let n = self.number.as_deref().unwrap_or_default();
        (n.len(), n, self.this_update)
    }

    /// Whether it lists `serial` (INTEGER contents, as in the certificate).
    fn revokes(&self, serial: &[u8]) -> bool {
        // find_serial fails only on a malformed entry, which webpki refused at load; were
        // it to fail, the certificate is held revoked (fail closed).
        !matches!(self.list.find_serial(serial), Ok(None))
    }
}

/// What the CRLs say of one certificate.
pub(crate) enum Status {
    /// No CRL covers it.
    Unknown,
    /// The newest CRL covering it: does it list the certificate, and when it expires.
    Listed { revoked: bool, next_update: i64 },
}

/// What `crls` say of `cert` (a CA when `is_ca`), issued by `issuer`: by the newest CRL
/// that covers it (the first listed among equals).
pub(crate) fn status(
    crls: &[Crl],
    cert: &ClientCertificate,
    is_ca: bool,
    issuer: &ClientCertificate,
    algorithms: SignatureAlgorithms,
) -> Status {
    let mut newest: Option<&Crl> = None;
    for crl in crls
        .iter()
        .filter(|c| c.covers(cert, is_ca, issuer, algorithms))
    {
        if newest.is_none_or(|n| crl.recency() > n.recency()) {
            newest = Some(crl);
        }
    }
    match newest {
        None => Status::Unknown,
        Some(crl) => Status::Listed {
            revoked: crl.revokes(cert.serial_bytes()),
            next_update: crl.next_update,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_drops_leading_zero_bytes() {
        assert_eq!(magnitude(&[0, 0, 1, 0]), vec![1, 0]);
        assert_eq!(magnitude(&[0]), Vec::<u8>::new());
        assert_eq!(magnitude(&[0x80]), vec![0x80]);
    }
}
