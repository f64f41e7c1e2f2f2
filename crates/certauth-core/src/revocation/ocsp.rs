//! OCSP (RFC 6960) for one client certificate: the request, and the judgement of the answer.
//!
//! Read and written with the core's own DER reader (`asn1.rs`) rather than RustCrypto's
//! `x509-ocsp`: the messages certauth needs are a request of one CertID and the walk of a
//! BasicOCSPResponse (about 150 lines here), while `x509-ocsp` would bring `der` and
//! `x509-cert` into the core's build (today only test dependencies) and decode the response
//! and its certificates into owned structures, only for certauth to hand the certificates
//! to its own parser and the signature to webpki's algorithms anyway. The reader is the one
//! the certificates and CRLs are already read, limited and fuzzed with.
//!
//! The request carries no nonce (RFC 5019's profile): answers are then cacheable, by the
//! responder's CDN and by certauth, and freshness comes from thisUpdate/nextUpdate.

use sha1::{Digest as _, Sha1};

use crate::asn1::{Reader, Tlv, encode, tag};
use crate::cert::ClientCertificate;
use crate::time::Time;
use crate::verify::SignatureAlgorithms;
use crate::verify::crl::signature_verifies;
use crate::verify::crl::signed_by;

/// id-sha1 (1.3.14.3.2.26): the CertID hash every responder answers (RFC 5019 2.1.1).
const SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
/// id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1).
const BASIC: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9).
const OCSP_SIGNING: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
/// authorityInfoAccess (1.3.6.1.5.5.7.1.1) and its id-ad-ocsp (1.3.6.1.5.5.7.48.1).
const AIA: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
const AD_OCSP: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
const ENUMERATED: u8 = 0x0A;

/// The first `http:` OCSP responder URL of `cert`'s authorityInfoAccess, if any.
pub(crate) fn responder_url(cert: &ClientCertificate) -> Option<&str> {
    let ext = cert.raw_extensions().find(|e| e.oid().as_bytes() == AIA)?;
    let mut list = Reader::new(ext.value()).read(tag::SEQUENCE).ok()?.reader();
    while let Ok(desc) = list.read(tag::SEQUENCE) {
        let mut d = desc.reader();
        let (Ok(method), Ok(location)) = (d.read(tag::OID), d.read_any()) else {
            continue;
        };
        if method.value == AD_OCSP
            && location.tag == tag::context_primitive(6)
            && let Ok(url) = std::str::from_utf8(location.value)
            && super::fetch::is_http_url(url)
        {
            return Some(url);
        }
    }
    None
}

/// The CertID fields of one certificate, as certauth asks for it (SHA-1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CertId {
    name_hash: [u8; 20],
    key_hash: [u8; 20],
    /// INTEGER contents.
    serial: Vec<u8>,
}

impl CertId {
    /// The CertID of `cert`, issued by `issuer`.
    pub(crate) fn new(cert: &ClientCertificate, issuer: &ClientCertificate) -> Option<Self> {
        let spki = Reader::new(issuer.subject_public_key_info())
            .read(tag::SEQUENCE)
            .ok()?;
        let mut s = spki.reader();
        s.read(tag::SEQUENCE).ok()?;
        let (_, key) = crate::asn1::bit_string(s.read(tag::BIT_STRING).ok()?).ok()?;
        Some(Self {
            name_hash: Sha1::digest(issuer.subject().raw()).into(),
            key_hash: Sha1::digest(key).into(),
            serial: cert.serial_bytes().to_vec(),
        })
    }

    fn der(&self) -> Vec<u8> {
        let algorithm = encode(
            tag::SEQUENCE,
            &[encode(tag::OID, SHA1), vec![0x05, 0x00]].concat(),
        );
        encode(
            tag::SEQUENCE,
            &[
                algorithm,
                encode(tag::OCTET_STRING, &self.name_hash),
                encode(tag::OCTET_STRING, &self.key_hash),
                encode(tag::INTEGER, &self.serial),
            ]
            .concat(),
        )
    }

    /// Whether a response's CertID (its SEQUENCE) names this certificate: the same hash
    /// algorithm (parameters absent or NULL), hashes and serial.
    fn matches(&self, cert_id: Tlv<'_>) -> bool {
        let read = || {
            let mut r = cert_id.reader();
            let alg = r.read(tag::SEQUENCE).ok()?;
            let mut a = alg.reader();
            let oid = a.read(tag::OID).ok()?;
            let params_ok = a.is_empty() || a.read_any().ok()?.raw == [0x05, 0x00];
            let name = r.read(tag::OCTET_STRING).ok()?;
            let key = r.read(tag::OCTET_STRING).ok()?;
            let serial = r.read(tag::INTEGER).ok()?;
            Some(
                oid.value == SHA1
                    && params_ok
                    && name.value == self.name_hash
                    && key.value == self.key_hash
                    && serial.value == self.serial.as_slice(),
            )
        };
        read() == Some(true)
    }

    /// An OCSPRequest for this one certificate (no nonce, unsigned).
    pub(crate) fn request(&self) -> Vec<u8> {
        let request = encode(tag::SEQUENCE, &self.der());
        let list = encode(tag::SEQUENCE, &request);
        let tbs = encode(tag::SEQUENCE, &list);
        encode(tag::SEQUENCE, &tbs)
    }
}

/// What a valid answer says of the certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CertStatus {
    Good,
    Revoked,
    Unknown,
}

/// How long an answer without nextUpdate holds after its thisUpdate (seconds). RFC 6960
/// 4.2.2.1 says newer information is then always available; an answer that old is not
/// believed (past the clock skew), since anyone on the path to a plain-HTTP responder can
/// replay an answer signed before the certificate was revoked.
pub(crate) const HOLD_WITHOUT_NEXT_UPDATE: i64 = 300;

/// A valid answer: the status and until when it holds (Unix seconds: its nextUpdate, or
/// [`HOLD_WITHOUT_NEXT_UPDATE`] after its thisUpdate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: CertStatus,
    pub(crate) next_update: i64,
}

/// responseStatus values (RFC 6960 4.2.1), for the message.
fn response_status_name(n: u8) -> &'static str {
    match n {
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "an unknown status",
    }
}

/// Judges an OCSPResponse for `id` (of a certificate issued by `issuer`) at `now` (Unix
/// seconds), allowing `skew` seconds of clock difference either way. `Err` says why the
/// answer is not believed.
pub(crate) fn judge(
    response: &[u8],
    id: &CertId,
    issuer: &ClientCertificate,
    now: i64,
    skew: i64,
    algorithms: SignatureAlgorithms,
) -> Result<Answer, String> {
    let malformed = || "the answer is not a DER OCSPResponse".to_owned();
    let outer = Reader::new(response)
        .read(tag::SEQUENCE)
        .map_err(|_| malformed())?;
    let mut o = outer.reader();
    let status = o.read(ENUMERATED).map_err(|_| malformed())?;
    if status.value != [0] {
        let n = status.value.first().copied().unwrap_or(0xFF);
        return Err(format!(
            "the responder answered {} ({n}), not successful",
            response_status_name(n)
        ));
    }
    let bytes = o
        .read(tag::context_constructed(0))
        .map_err(|_| malformed())?;
    let mut b = bytes
        .reader()
        .read(tag::SEQUENCE)
        .map_err(|_| malformed())?
        .reader();
    let kind = b.read(tag::OID).map_err(|_| malformed())?;
    if kind.value != BASIC {
        return Err("the answer is not a BasicOCSPResponse".into());
    }
    let basic = b.read(tag::OCTET_STRING).map_err(|_| malformed())?;
    let mut r = Reader::new(basic.value)
        .read(tag::SEQUENCE)
        .map_err(|_| malformed())?
        .reader();
    let tbs = r.read(tag::SEQUENCE).map_err(|_| malformed())?;
    let algorithm = r.read(tag::SEQUENCE).map_err(|_| malformed())?.value;
    let (unused, signature) = r
        .read(tag::BIT_STRING)
        .ok()
        .and_then(|b| crate::asn1::bit_string(b).ok())
        .ok_or_else(malformed)?;
    if unused != 0 {
        return Err(malformed());
    }
    let certs = r
        .read_optional(tag::context_constructed(0))
        .map_err(|_| malformed())?;

    // Signed by the CA itself, or by a responder the CA issued for OCSP signing (RFC 6960
    // 4.2.2.2); anything else is a forgery, whatever it says.
    let signed = |spki: &[u8]| signature_verifies(tbs.raw, algorithm, signature, spki, algorithms);
    if !signed(issuer.subject_public_key_info())
        && !certs.is_some_and(|c| delegated_signer(c, issuer, now, algorithms, &signed))
    {
        return Err(format!(
            "the answer is signed neither by {} nor by a responder it issued with \
             id-kp-OCSPSigning (a forged or misdirected answer)",
            issuer.subject().to_rfc4514()
        ));
    }

    let mut t = tbs.reader();
    t.read_optional(tag::context_constructed(0))
        .map_err(|_| malformed())?;
    t.read_any().map_err(|_| malformed())?; // responderID
    t.read(tag::GENERALIZED_TIME).map_err(|_| malformed())?; // producedAt
    let mut responses = t.read(tag::SEQUENCE).map_err(|_| malformed())?.reader();
    while !responses.is_empty() {
        let single = responses.read(tag::SEQUENCE).map_err(|_| malformed())?;
        let mut s = single.reader();
        let cert_id = s.read(tag::SEQUENCE).map_err(|_| malformed())?;
        if !id.matches(cert_id) {
            continue;
        }
        let status = match s.read_any().map_err(|_| malformed())?.tag {
            0x80 => CertStatus::Good,
            0xA1 => CertStatus::Revoked,
            0x82 => CertStatus::Unknown,
            _ => return Err(malformed()),
        };
        let time = |t: Tlv<'_>| Time::from_der(t).map(Time::unix_seconds);
        let this_update = s
            .read(tag::GENERALIZED_TIME)
            .ok()
            .and_then(time)
            .ok_or_else(malformed)?;
        let next_update = match s
            .read_optional(tag::context_constructed(0))
            .map_err(|_| malformed())?
        {
            Some(n) => Some(
                n.reader()
                    .read(tag::GENERALIZED_TIME)
                    .ok()
                    .and_then(time)
                    .ok_or_else(malformed)?,
            ),
            None => None,
        };
        if this_update > now.saturating_add(skew) {
            return Err(format!(
                "the answer's thisUpdate {} is in the future (now {})",
                Time::from_unix_seconds(this_update),
                Time::from_unix_seconds(now)
            ));
        }
        let holds_until =
            next_update.unwrap_or_else(|| this_update.saturating_add(HOLD_WITHOUT_NEXT_UPDATE));
        if holds_until < now.saturating_sub(skew) {
            return Err(match next_update {
                Some(next) => format!(
                    "the answer expired at its nextUpdate {} (now {})",
                    Time::from_unix_seconds(next),
                    Time::from_unix_seconds(now)
                ),
                None => format!(
                    "the answer has no nextUpdate and its thisUpdate {} is more than {} s \
                     old (now {}): a stale or replayed answer",
                    Time::from_unix_seconds(this_update),
                    HOLD_WITHOUT_NEXT_UPDATE,
                    Time::from_unix_seconds(now)
                ),
            });
        }
        return Ok(Answer {
            status,
            next_update: holds_until,
        });
    }
    Err("the answer says nothing of the certificate asked about".into())
}

/// Whether one of the response's certificates (`[0] SEQUENCE OF Certificate`) is a
/// responder `issuer` authorized, valid at `now`, whose key `signed` the answer.
fn delegated_signer(
    certs: Tlv<'_>,
    issuer: &ClientCertificate,
    now: i64,
    algorithms: SignatureAlgorithms,
    signed: &dyn Fn(&[u8]) -> bool,
) -> bool {
    let Ok(list) = certs.reader().read(tag::SEQUENCE) else {
        return false;
    };
    let mut l = list.reader();
    // Bounded by the response's size cap; a responder sends one or two.
    while let Ok(der) = l.read(tag::SEQUENCE) {
        let Ok(cert) = ClientCertificate::from_der(der.raw) else {
            continue;
        };
        let authorized = crate::verify::same_name(&cert.issuer(), &issuer.subject())
            && cert
                .extended_key_usage()
                .is_some_and(|mut eku| eku.any(|k| k.as_bytes() == OCSP_SIGNING))
            && cert.not_before().unix_seconds() <= now
            && now <= cert.not_after().unix_seconds()
            && signed_by(cert.der(), issuer.subject_public_key_info(), algorithms);
        if authorized && signed(cert.subject_public_key_info()) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::response_status_name;

    #[test]
    fn a_refusal_is_named_as_rfc_6960_names_it() {
        let named: Vec<&str> = (0..=7).map(response_status_name).collect();
        assert_eq!(
            named,
            [
                "an unknown status",
                "malformedRequest",
                "internalError",
                "tryLater",
                "an unknown status",
                "sigRequired",
                "unauthorized",
                "an unknown status",
            ]
        );
    }
}
