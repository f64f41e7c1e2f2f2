//! What certauth reads of a CRL itself, before believing it: webpki checks a CRL's
//! signature and dates, but not the rules OpenSSL applies to it (RFC 5280 section 5):
//! a critical extension it does not handle, and an issuer whose key usage does not allow
//! CRL signing.

use crate::asn1::{Reader, tag};
use crate::cert::{ClientCertificate, KeyUsage};
use crate::oid::Oid;
use crate::time::Time;

/// CRL extensions OpenSSL handles when critical: issuingDistributionPoint,
/// authorityKeyIdentifier, deltaCRLIndicator. (CRLNumber MUST be non-critical, 5.2.3.)
const HANDLED_CRITICAL: [&[u8]; 3] = [
    &[0x55, 0x1D, 0x1C],
    &[0x55, 0x1D, 0x23],
    &[0x55, 0x1D, 0x1B],
];

/// The parts of a CRL certauth checks.
#[derive(Clone, Debug)]
pub(super) struct CrlFacts {
    /// The issuer Name, DER.
    pub(super) issuer: Vec<u8>,
    /// nextUpdate, Unix seconds.
    pub(super) next_update: i64,
    /// The first critical extension OpenSSL would not handle (dotted OID).
    pub(super) unhandled_critical: Option<String>,
}

impl CrlFacts {
    /// Reads a CRL's DER; `None` if its structure is not a CertificateList with a
    /// nextUpdate.
    pub(super) fn read(der: &[u8]) -> Option<Self> {
        let list = Reader::new(der).read(tag::SEQUENCE).ok()?;
        let tbs = list.reader().read(tag::SEQUENCE).ok()?;
        let mut t = tbs.reader();
        t.read_optional(tag::INTEGER).ok()?;
        t.read(tag::SEQUENCE).ok()?;
        let issuer = t.read(tag::SEQUENCE).ok()?.raw.to_vec();
        t.read_any().ok()?;
        let next_update = Time::from_der(t.read_any().ok()?)?.unix_seconds();
        t.read_optional(tag::SEQUENCE).ok()?;
        let mut unhandled_critical = None;
        if let Some(wrapper) = t.read_optional(tag::context_constructed(0)).ok()? {
            let exts = wrapper.reader().read(tag::SEQUENCE).ok()?;
            let mut e = exts.reader();
            while !e.is_empty() {
                let ext = e.read(tag::SEQUENCE).ok()?;
                let mut x = ext.reader();
                let oid = Oid::from_der_contents(x.read(tag::OID).ok()?.value)?;
                let critical = match x.read_optional(tag::BOOLEAN).ok()? {
                    Some(b) => crate::asn1::boolean(b).ok()?,
                    None => false,
                };
                if critical
                    && unhandled_critical.is_none()
                    && !HANDLED_CRITICAL.contains(&oid.as_bytes())
                {
                    unhandled_critical = Some(oid.to_string());
                }
            }
        }
        Some(Self {
            issuer,
            next_update,
            unhandled_critical,
        })
    }

    /// Whether `ca` issued this CRL (by name) though its key usage does not allow CRL
    /// signing (RFC 5280 4.2.1.3: cRLSign).
    pub(super) fn issuer_lacks_crl_sign(&self, ca: &ClientCertificate) -> bool {
        ca.subject().raw() == self.issuer.as_slice()
            && ca
                .key_usage()
                .is_some_and(|ku| !ku.contains(KeyUsage::CRL_SIGN))
    }
}
