//! Certificates whose notBefore is before 1970, shown to webpki as starting at 1970.
//!
//! rustls-webpki counts time in seconds since 1970 and refuses an earlier validity date
//! outright (`BadDerTime`), where OpenSSL (so Node) reads it as the past date it is: a
//! notBefore in 1969 is satisfied by any time certauth can be asked about. So webpki is
//! handed a copy of such a certificate whose notBefore reads 1970-01-01T00:00:00Z, encoded
//! in the same type and length (the validity judgement is the same for every `now` from
//! 1970 on), and its signatures are checked over the original bytes: [`Substituting`] wraps
//! each signature algorithm and, when webpki asks it to verify the copy's TBSCertificate,
//! verifies the original's instead. Nothing else about the certificate changes.

use std::borrow::Cow;

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

use crate::asn1::{Reader, tag};
use crate::cert::ClientCertificate;

/// 1970-01-01T00:00:00Z as UTCTime and GeneralizedTime contents.
const EPOCH_UTC: &[u8; 13] = b"700101000000Z";
const EPOCH_GENERALIZED: &[u8; 15] = b"19700101000000Z";

/// The bytes webpki is given for `cert`: its own, or (notBefore before 1970, notAfter from
/// 1970 on) a copy whose notBefore reads 1970. `None`: a validity webpki cannot be shown
/// (a notAfter before 1970, which this does not rewrite).
pub(super) fn webpki_view(cert: &ClientCertificate) -> Option<Cow<'_, [u8]>> {
    if cert.not_before().to_unix_time().is_some() {
        return Some(Cow::Borrowed(cert.der()));
    }
    cert.not_after().to_unix_time()?;
    let der = cert.der();
    let (offset, tag) = not_before(der)?;
    let epoch: &[u8] = match tag {
        tag::UTC_TIME => EPOCH_UTC,
        _ => EPOCH_GENERALIZED,
    };
    let mut copy = der.to_vec();
    copy.get_mut(offset..offset + epoch.len())?
        .copy_from_slice(epoch);
    Some(Cow::Owned(copy))
}

/// Where notBefore's contents start in a certificate's DER, and its tag. The parse that
/// built the `ClientCertificate` accepted only 13-byte UTCTime and 15-byte GeneralizedTime.
fn not_before(der: &[u8]) -> Option<(usize, u8)> {
    let cert = Reader::new(der).read(tag::SEQUENCE).ok()?;
    let tbs = cert.reader().read(tag::SEQUENCE).ok()?;
    let mut t = tbs.reader();
    t.read_optional(tag::context_constructed(0)).ok()?;
    t.read(tag::INTEGER).ok()?; // serial
    t.read(tag::SEQUENCE).ok()?; // signature
    t.read(tag::SEQUENCE).ok()?; // issuer
    let validity = t.read(tag::SEQUENCE).ok()?;
    let time = validity.reader().read_any().ok()?;
    Some((time.value_offset, time.tag))
}

/// The TBSCertificate of a certificate's DER.
fn tbs(der: &[u8]) -> Option<&[u8]> {
    let cert = Reader::new(der).read(tag::SEQUENCE).ok()?;
    Some(cert.reader().read(tag::SEQUENCE).ok()?.raw)
}

/// For each rewritten certificate: its copy's TBSCertificate and the original's.
#[derive(Debug, Default)]
pub(super) struct Rewrites {
    tbs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Rewrites {
    /// Records that webpki sees `view` for `original` (no-op when they are the same).
    pub(super) fn record(&mut self, original: &[u8], view: &[u8]) {
        if original == view {
            return;
        }
        if let (Some(o), Some(v)) = (tbs(original), tbs(view)) {
            self.tbs.push((v.to_vec(), o.to_vec()));
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tbs.is_empty()
    }

    /// The original TBSCertificate behind `message`, or `message` itself.
    fn original<'a>(&'a self, message: &'a [u8]) -> &'a [u8] {
        self.tbs
            .iter()
            .find(|(view, _)| view.as_slice() == message)
            .map_or(message, |(_, original)| original.as_slice())
    }
}

/// A signature algorithm that verifies a rewritten certificate's signature over the
/// original's TBSCertificate (which is what its issuer signed).
#[derive(Debug)]
pub(super) struct Substituting<'a> {
    pub(super) inner: &'static dyn SignatureVerificationAlgorithm,
    pub(super) rewrites: &'a Rewrites,
}

impl SignatureVerificationAlgorithm for Substituting<'_> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        self.inner
            .verify_signature(public_key, self.rewrites.original(message), signature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}
