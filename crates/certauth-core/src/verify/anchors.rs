//! Trust anchors: the CA certificates client chains must lead to, held to the rules OpenSSL
//! applies to a root as to any certificate on the path. webpki keeps only an anchor's
//! subject, key and name constraints, so these checks are certauth's: at load time the
//! certificate rules below, at verification time the anchor's validity
//! ([`super::VerifyError::AnchorExpired`]).

use rustls_pki_types::{CertificateDer, Der, TrustAnchor};

use super::constraints::{self, Constraints};
use super::{SetupError, certificates_from_pem_or_der};
use crate::asn1::{Reader, tag};
use crate::cert::{ClientCertificate, KeyUsage};
use crate::oid::known;

/// Extensions OpenSSL handles when critical (`X509_supported_extension`), by their DER.
const HANDLED_CRITICAL: [&[u8]; 12] = [
    known::EXT_KEY_USAGE,
    known::EXT_SUBJECT_ALT_NAME,
    known::EXT_BASIC_CONSTRAINTS,
    known::EXT_EXTENDED_KEY_USAGE,
    known::EXT_NAME_CONSTRAINTS,
    known::EXT_CRL_DISTRIBUTION_POINTS,
    &[0x55, 0x1D, 0x20], // certificatePolicies
    &[0x55, 0x1D, 0x21], // policyMappings
    &[0x55, 0x1D, 0x24], // policyConstraints
    &[0x55, 0x1D, 0x36], // inhibitAnyPolicy
    &[0x60, 0x86, 0x48, 0x01, 0x86, 0xF8, 0x42, 0x01, 0x01], // netscape cert type
    &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0E], // proxyCertInfo
];

/// The first rule `cert` breaks as a trust anchor, described with its clause.
pub(super) fn broken_rule(cert: &ClientCertificate) -> Option<String> {
    if cert.subject().is_empty() {
        return Some(
            "its subject is empty (RFC 5280 4.1.2.6: a CA's subject MUST be non-empty)".into(),
        );
    }
    if let Some(oid) = cert.invalid_extension() {
        return Some(format!(
            "its extension {oid} does not decode (OpenSSL holds such a certificate invalid)"
        ));
    }
    for e in cert.raw_extensions().filter(|e| e.critical()) {
        let oid = e.oid();
        match oid.as_bytes() {
            known::EXT_AUTHORITY_KEY_ID => {
                return Some(
                    "its authority key identifier is critical (RFC 5280 4.2.1.1: MUST be \
                     non-critical)"
                        .into(),
                );
            }
            known::EXT_SUBJECT_KEY_ID => {
                return Some(
                    "its subject key identifier is critical (RFC 5280 4.2.1.2: MUST be \
                     non-critical)"
                        .into(),
                );
            }
            der if !HANDLED_CRITICAL.contains(&der) => {
                return Some(format!(
                    "it has an unknown critical extension {oid} (RFC 5280 4.2: a certificate \
                     with a critical extension it cannot process MUST be rejected)"
                ));
            }
            _ => {}
        }
    }
    if cert
        .key_usage_flags()
        .is_some_and(|ku| !ku.contains(KeyUsage::KEY_CERT_SIGN))
    {
        return Some(
            "its key usage lacks keyCertSign though basicConstraints says it is a CA (RFC 5280 \
             4.2.1.3, 4.2.1.9)"
                .into(),
        );
    }
    None
}

/// The CA certificates client chains must lead to.
#[derive(Clone, Debug)]
pub struct TrustAnchors {
    pub(super) anchors: Vec<TrustAnchor<'static>>,
    pub(super) certs: Vec<ClientCertificate>,
    /// Per anchor, the name constraints certauth enforces itself (`constraints`).
    pub(super) constraints: Vec<Constraints>,
}

/// The NameConstraints SEQUENCE contents of `cert`, if it has the extension.
pub(super) fn name_constraints(cert: &ClientCertificate) -> Option<&[u8]> {
    let ext = cert
        .raw_extensions()
        .find(|e| e.oid().as_bytes() == known::EXT_NAME_CONSTRAINTS)?;
    Reader::new(ext.value())
        .read(tag::SEQUENCE)
        .ok()
        .map(|t| t.value)
}

impl TrustAnchors {
    /// From PEM (one or more `CERTIFICATE` blocks) or one DER certificate. Every
    /// certificate must be a CA certificate that keeps the rules of a trust anchor
    /// ([`SetupError::BadAnchor`]).
    pub fn from_pem(input: &[u8]) -> Result<Self, SetupError> {
        Self::from_der(certificates_from_pem_or_der(input)?)
    }

    /// From DER certificates. Every certificate must be a CA certificate that keeps the
    /// rules of a trust anchor.
    pub fn from_der(
        certs: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, SetupError> {
        let (anchors, skipped) = Self::load(certs)?;
        match skipped.into_iter().next() {
            Some(first) => Err(first),
            None => Ok(anchors),
        }
    }

    /// As [`Self::from_pem`], but a certificate that breaks a trust-anchor rule is left out
    /// rather than failing the whole bundle (a system bundle with one odd root): the
    /// anchors, and why each left-out certificate was. Fails if none is left, or on input
    /// that is not a certificate at all.
    pub fn from_pem_skipping_bad(input: &[u8]) -> Result<(Self, Vec<SetupError>), SetupError> {
        Self::load(certificates_from_pem_or_der(input)?)
    }

    /// As [`Self::from_pem_skipping_bad`], from DER certificates.
    pub fn from_der_skipping_bad(
        certs: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<(Self, Vec<SetupError>), SetupError> {
        Self::load(certs)
    }

    /// Every anchor that keeps the rules, and a `BadAnchor` for each that does not.
    fn load(
        certs: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<(Self, Vec<SetupError>), SetupError> {
        let mut anchors = Vec::new();
        let mut parsed = Vec::new();
        let mut constraints = Vec::new();
        let mut skipped = Vec::new();
        for (index, der) in certs.into_iter().enumerate() {
            let cert = ClientCertificate::from_der(&der)
                .map_err(|source| SetupError::Malformed { index, source })?;
            let subject = || cert.subject().to_rfc4514();
            if !cert.basic_constraints().is_some_and(|(ca, _)| ca) {
                return Err(SetupError::NotCa {
                    index,
                    subject: subject(),
                });
            }
            if let Some(rule) = broken_rule(&cert) {
                skipped.push(SetupError::BadAnchor {
                    index,
                    subject: subject(),
                    rule,
                });
                continue;
            }
            let mut anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| SetupError::Rejected {
                    what: format!("trust anchor {index}"),
                    reason: super::webpki_reason(&e),
                })?
                .to_owned();
            // webpki gets the subtrees it implements; certauth enforces the rest.
            let ours = match name_constraints(&cert).and_then(constraints::split) {
                Some(split) => {
                    anchor.name_constraints = split.for_webpki.map(Der::from);
                    split.ours
                }
                None => Constraints::default(),
            };
            anchors.push(anchor);
            parsed.push(cert);
            constraints.push(ours);
        }
        if anchors.is_empty() {
            return Err(skipped
                .into_iter()
                .next()
                .unwrap_or(SetupError::NoCertificates));
        }
        Ok((
            Self {
                anchors,
                certs: parsed,
                constraints,
            },
            skipped,
        ))
    }

    /// Which of these anchors `anchor` is. webpki hands back a reference into
    /// [`Self::anchors`], so the anchor a path was built through is found by identity: two
    /// anchors with one subject and key (a constrained and an unconstrained copy, a valid
    /// and an expired one) are told apart. By subject and key only for a foreign reference.
    fn index_of(&self, anchor: &TrustAnchor<'_>) -> Option<usize> {
        self.anchors
            .iter()
            .position(|a| std::ptr::eq(a, anchor))
            .or_else(|| {
                self.anchors.iter().position(|a| {
                    a.subject == anchor.subject
                        && a.subject_public_key_info == anchor.subject_public_key_info
                })
            })
    }

    /// The certificate `anchor` was made from.
    pub(super) fn certificate_of(&self, anchor: &TrustAnchor<'_>) -> Option<&ClientCertificate> {
        self.index_of(anchor).and_then(|i| self.certs.get(i))
    }

    /// The name constraints of `anchor` that certauth enforces itself.
    pub(super) fn constraints_of(&self, anchor: &TrustAnchor<'_>) -> Option<&Constraints> {
        self.index_of(anchor)
            .and_then(|i| self.constraints.get(i))
            .filter(|c| !c.is_empty())
    }

    /// The CA certificates.
    pub fn certificates(&self) -> &[ClientCertificate] {
        &self.certs
    }

    /// The CA subjects as DER Names, e.g. for the TLS CertificateRequest hints.
    pub fn subjects(&self) -> impl Iterator<Item = &[u8]> {
        self.certs.iter().map(|c| c.subject().raw())
    }

    /// How many anchors there are (never zero).
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Always false: an empty set cannot be built.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}
