//! [`ClientCertificate`]: a parsed, validated, cheaply cloned view over a certificate's DER.
//!
//! Parsing walks the whole structure once without allocating (beyond keeping the DER) and
//! records where each field is. Nothing is decoded into owned values until asked for, so a
//! connection whose policy reads only the CN pays only for the walk and that one value.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::asn1::{self, DerError, Reader, Tlv, tag};
use crate::limits::Limits;
use crate::name::NameError;
use crate::oid::{Oid, known};
use crate::time::Time;

mod error;
mod extensions;
mod general_name;

/// A certificate's names (subject, issuer, directory-name SANs) and their attributes.
pub use crate::name::{Attribute, Name, short_name};
pub use error::*;
pub(crate) use extensions::*;
pub use general_name::*;

/// Caps applied while parsing a certificate ([`Limits`]'s certificate fields). Every one is
/// checked before the work it bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CertLimits {
    pub(crate) max_der_bytes: usize,
    pub(crate) max_name_attributes: usize,
    pub(crate) max_san_entries: usize,
    pub(crate) max_extensions: usize,
}

impl CertLimits {
    /// [`Limits::DEFAULT`]'s.
    pub(crate) const DEFAULT: Self = Limits::DEFAULT.cert_limits();
}

/// Where a TLV sits in the DER, so it can be re-borrowed without re-parsing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    tag: u8,
    start: u32,
    value_start: u32,
    end: u32,
}

impl Span {
    fn of(tlv: &Tlv<'_>, base: &[u8]) -> Self {
        // The reader tracks offsets from the start of the certificate; the DER is capped
        // far below 4 GiB, so these fit.
        let value_start = tlv.value_offset;
        let start = value_start.saturating_sub(tlv.raw.len() - tlv.value.len());
        debug_assert!(value_start + tlv.value.len() <= base.len());
        let to32 = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            tag: tlv.tag,
            start: to32(start),
            value_start: to32(value_start),
            end: to32(value_start + tlv.value.len()),
        }
    }

    fn tlv<'a>(&self, der: &'a [u8]) -> Tlv<'a> {
        let idx = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
        let (s, v, e) = (idx(self.start), idx(self.value_start), idx(self.end));
        Tlv {
            tag: self.tag,
            value: der.get(v..e).unwrap_or_default(),
            raw: der.get(s..e).unwrap_or_default(),
            value_offset: v,
        }
    }
}

/// Key usage bits (RFC 5280 §4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct KeyUsage(u16);

impl KeyUsage {
    /// digitalSignature.
    pub(crate) const DIGITAL_SIGNATURE: Self = Self(1 << 0);
    /// keyCertSign.
    pub(crate) const KEY_CERT_SIGN: Self = Self(1 << 5);
    /// cRLSign.
    pub(crate) const CRL_SIGN: Self = Self(1 << 6);

    /// Whether every bit of `other` is set.
    pub(crate) fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The basicConstraints extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BasicConstraints {
    /// `cA`.
    pub(crate) ca: bool,
    /// `pathLenConstraint`.
    pub(crate) path_len: Option<u32>,
}

/// A subject public key's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKeyAlgorithm {
    /// RSA, with the modulus size in bits.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// RSA restricted to PSS signatures (id-RSASSA-PSS), with the modulus size in bits.
    RsaPss {
        /// Modulus size in bits.
        bits: u32,
    },
    /// ECDSA on NIST P-256 (prime256v1, secp256r1).
    P256,
    /// ECDSA on NIST P-384 (secp384r1).
    P384,
    /// ECDSA on NIST P-521 (secp521r1).
    P521,
    /// An elliptic-curve key on another curve, or with explicit parameters.
    OtherCurve,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
    /// Anything else.
    Other,
}

impl PublicKeyAlgorithm {
    /// The key size in bits, where it has a conventional one.
    pub fn bits(&self) -> Option<u32> {
        match self {
            Self::Rsa { bits } | Self::RsaPss { bits } => Some(*bits),
            Self::P256 => Some(256),
            Self::P384 => Some(384),
            Self::P521 => Some(521),
            Self::Ed25519 => Some(256),
            Self::Ed448 => Some(456),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Index {
    /// The TBSCertificate: what the issuer signed.
    tbs: Span,
    version: u8,
    serial: Span,
    signature_algorithm: Span,
    issuer: Span,
    subject: Span,
    not_before: i64,
    not_after: i64,
    spki: Span,
    extensions: Option<Span>,
    san: Option<Span>,
    eku: Option<Span>,
    key_usage: Option<KeyUsage>,
    basic_constraints: Option<BasicConstraints>,
    /// The first of the extensions OpenSSL decodes as it caches a certificate (subject and
    /// authority key identifiers, name constraints, CRL distribution points) that does not
    /// decode, if any.
    invalid_extension: Option<Span>,
}

#[derive(Debug, Default)]
struct Digests {
    sha1: OnceLock<[u8; 20]>,
    sha256: OnceLock<[u8; 32]>,
    sha512: OnceLock<[u8; 64]>,
    tbs_sha256: OnceLock<[u8; 32]>,
}

/// A client certificate: the DER as presented, validated and indexed.
///
/// Cloning is cheap (a reference count). Hashes are computed over the original bytes on
/// first use, once, and shared by every clone.
///
/// ```
/// # let mut params = rcgen::CertificateParams::new(vec![])?;
/// # params.distinguished_name.push(rcgen::DnType::CommonName, "trusted-client");
/// # let key = rcgen::KeyPair::generate()?;
/// # let der = params.self_signed(&key)?.der().to_vec();
/// use certauth_core::ClientCertificate;
///
/// let cert = ClientCertificate::from_der(&der)?;
/// assert_eq!(cert.subject().common_names().next().as_deref(), Some("trusted-client"));
/// println!("{}", cert.fingerprint_sha256_hex());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ClientCertificate {
    inner: Arc<Inner>,
}

struct Inner {
    der: Arc<[u8]>,
    index: Index,
    digests: Digests,
    limits: CertLimits,
    /// The key table's judgement of this certificate's key, on first use.
    key: OnceLock<crate::keys::KeyVerdict>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject().to_rfc4514())
            .field("issuer", &self.issuer().to_rfc4514())
            .field("serial", &self.serial_hex())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.inner.der == other.inner.der
    }
}

impl Eq for ClientCertificate {}

impl ClientCertificate {
    /// Parses DER with the default [`Limits`].
    pub fn from_der(der: &[u8]) -> Result<Self, X509Error> {
        Self::from_shared(Arc::from(der), CertLimits::DEFAULT)
    }

    /// Parses DER with `limits`' certificate caps ([`Limits::max_cert_bytes`],
    /// [`Limits::max_name_attributes`], [`Limits::max_san_entries`],
    /// [`Limits::max_extensions`]).
    pub fn from_der_with_limits(der: &[u8], limits: &Limits) -> Result<Self, X509Error> {
        Self::from_shared(Arc::from(der), limits.cert_limits())
    }

    /// Parses DER already held in an `Arc`, without copying it.
    pub(crate) fn from_shared(der: Arc<[u8]>, limits: CertLimits) -> Result<Self, X509Error> {
        if der.len() > limits.max_der_bytes {
            return Err(X509Error::TooLarge {
                len: der.len(),
                max: limits.max_der_bytes,
            });
        }
        let index = parse(&der, &limits)?;
        Ok(Self {
            inner: Arc::new(Inner {
                der,
                index,
                digests: Digests::default(),
                limits,
                key: OnceLock::new(),
            }),
        })
    }

    /// The DER exactly as presented.
    pub fn der(&self) -> &[u8] {
        &self.inner.der
    }

    /// The DER as a shared buffer.
    pub fn der_shared(&self) -> &Arc<[u8]> {
        &self.inner.der
    }

    /// The X.509 version: 1, 2 or 3.
    pub fn version(&self) -> u8 {
        self.inner.index.version
    }

    /// The subject.
    pub fn subject(&self) -> Name<'_> {
        self.name_at(self.inner.index.subject)
    }

    /// The subject's common name, the first if there are several (Node's
    /// `cert.subject.CN` for the usual one): borrowed when the bytes are already UTF-8.
    /// A CN rule (`policy::allow_cn`) admits a subject with several CNs only if it allows
    /// every one, so the name read here is one the policy judged.
    pub fn common_name(&self) -> Option<Cow<'_, str>> {
        self.subject().common_names().next()
    }

    /// The issuer, as written in this certificate.
    pub fn issuer(&self) -> Name<'_> {
        self.name_at(self.inner.index.issuer)
    }

    fn name_at(&self, span: Span) -> Name<'_> {
        // The span was validated at parse time; iteration over it stops (rather than
        // panicking) at anything unexpected.
        Name::from_validated(span.tlv(&self.inner.der))
    }

    /// The serial number's DER INTEGER contents (big-endian two's complement, possibly with
    /// a leading zero byte).
    pub fn serial_bytes(&self) -> &[u8] {
        self.inner.index.serial.tlv(&self.inner.der).value
    }

    /// The serial number in upper-case hex without leading zero bytes, as Node.js and
    /// OpenSSL print it (`0A1B…`; `0` for zero; `-…` for a negative, non-conforming serial).
    pub fn serial_hex(&self) -> String {
        serial_hex(self.serial_bytes())
    }

    /// notBefore.
    pub fn not_before(&self) -> Time {
        Time::from_unix_seconds(self.inner.index.not_before)
    }

    /// notAfter.
    pub fn not_after(&self) -> Time {
        Time::from_unix_seconds(self.inner.index.not_after)
    }

    /// Whether `now` lies within the validity period (inclusive).
    pub fn is_valid_at(&self, now: Time) -> bool {
        self.inner.index.not_before <= now.unix_seconds()
            && now.unix_seconds() <= self.inner.index.not_after
    }

    /// The signature algorithm OID named in the TBS certificate.
    pub fn signature_algorithm(&self) -> Oid<'_> {
        let alg = self.inner.index.signature_algorithm.tlv(&self.inner.der);
        let oid = alg
            .reader()
            .read(tag::OID)
            .ok()
            .and_then(|o| Oid::from_der_contents(o.value));
        // Validated at parse time; the fallback is unreachable.
        oid.unwrap_or(Oid::UNKNOWN)
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn subject_public_key_info(&self) -> &[u8] {
        self.inner.index.spki.tlv(&self.inner.der).raw
    }

    /// The public key's algorithm and size.
    pub fn public_key_algorithm(&self) -> PublicKeyAlgorithm {
        public_key_algorithm(self.inner.index.spki.tlv(&self.inner.der))
            .unwrap_or(PublicKeyAlgorithm::Other)
    }

    /// What the key table ([`crate::keys`]) makes of this certificate's key: judged on
    /// first use, once, and shared by every clone (the verified leaf a connection's memo and
    /// the verifier's cache keep, so chain verification and the decision read one verdict).
    pub(crate) fn key_verdict(&self) -> crate::keys::KeyVerdict {
        *self
            .inner
            .key
            .get_or_init(|| crate::keys::judge(self.public_key_algorithm()))
    }

    /// Every extension, in order: its OID, whether it is marked critical, and its extnValue
    /// contents (the DER inside the OCTET STRING).
    pub fn extensions(&self) -> impl Iterator<Item = (Oid<'_>, bool, &[u8])> + Clone + fmt::Debug {
        self.raw_extensions().map(|e| (e.oid, e.critical, e.value))
    }

    /// Every extension, in order, as the parser holds it.
    pub(crate) fn raw_extensions(
        &self,
    ) -> impl Iterator<Item = Extension<'_>> + Clone + fmt::Debug {
        let reader = match self.inner.index.extensions {
            Some(span) => span.tlv(&self.inner.der).reader(),
            None => Reader::new(&[]),
        };
        Extensions { reader }
    }

    /// The subject alternative names (empty without the extension).
    pub fn subject_alt_names(&self) -> impl Iterator<Item = GeneralName<'_>> + Clone + fmt::Debug {
        let reader = match self.inner.index.san {
            Some(span) => span.tlv(&self.inner.der).reader(),
            None => Reader::new(&[]),
        };
        SubjectAltNames {
            reader,
            max_name_attributes: self.inner.limits.max_name_attributes,
        }
    }

    /// Whether the certificate carries a subjectAltName extension.
    pub fn has_subject_alt_names(&self) -> bool {
        self.inner.index.san.is_some()
    }

    /// The SPIFFE ID of an X.509-SVID: the certificate's only URI SAN, when it is a valid
    /// leaf SPIFFE ID (`spiffe://` in lower case, a lower-case trust domain and a non-empty
    /// path of `[A-Za-z0-9.-_]` segments), as the X.509-SVID spec and go-spiffe read it.
    /// `None` for a certificate with no such URI, with more than one URI SAN (an SVID has
    /// exactly one), or with a malformed one: the same reading the SPIFFE policy rules judge.
    pub fn spiffe_id(&self) -> Option<&str> {
        match crate::policy::spiffe::read(self) {
            crate::policy::spiffe::Svid::Id(_, text) => Some(text),
            _ => None,
        }
    }

    /// Email addresses: the rfc822Name SANs, then the subject's `emailAddress` attributes.
    pub fn email_addresses(&self) -> impl Iterator<Item = Cow<'_, str>> + '_ {
        let sans = self.subject_alt_names().filter_map(|g| match g {
            GeneralName::Email(e) => Some(Cow::Borrowed(e)),
            _ => None,
        });
        sans.chain(self.subject().email_addresses())
    }

    /// The key usage extension's bits, if present, numbered as RFC 5280 §4.2.1.3 does: bit 0
    /// (`1`) digitalSignature, 1 nonRepudiation, 2 keyEncipherment, 3 dataEncipherment, 4
    /// keyAgreement, 5 (`0x20`) keyCertSign, 6 cRLSign, 7 encipherOnly, 8 (`0x100`)
    /// decipherOnly.
    pub fn key_usage(&self) -> Option<u16> {
        self.inner.index.key_usage.map(|ku| ku.0)
    }

    /// The key usage extension, if present.
    pub(crate) fn key_usage_flags(&self) -> Option<KeyUsage> {
        self.inner.index.key_usage
    }

    /// The extended key usage OIDs, if the extension is present.
    pub fn extended_key_usage(&self) -> Option<impl Iterator<Item = Oid<'_>> + '_> {
        let span = self.inner.index.eku?;
        let mut r = span.tlv(&self.inner.der).reader();
        Some(core::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            r.read(tag::OID)
                .ok()
                .and_then(|t| Oid::from_der_contents(t.value))
        }))
    }

    /// The subjectKeyIdentifier extension's key identifier, if present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        let ext = self
            .raw_extensions()
            .find(|e| e.oid.as_bytes() == known::EXT_SUBJECT_KEY_ID)?;
        Reader::new(ext.value)
            .read(tag::OCTET_STRING)
            .ok()
            .map(|t| t.value)
    }

    /// The authorityKeyIdentifier extension's `keyIdentifier`, if present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        let ext = self
            .raw_extensions()
            .find(|e| e.oid.as_bytes() == known::EXT_AUTHORITY_KEY_ID)?;
        let seq = Reader::new(ext.value).read(tag::SEQUENCE).ok()?;
        seq.reader()
            .read_optional(tag::context_primitive(0))
            .ok()
            .flatten()
            .map(|t| t.value)
    }

    /// The basicConstraints extension, if present: `cA`, and `pathLenConstraint` (a value
    /// above `u32::MAX`, valid DER and no limit in practice, reads as `u32::MAX`; a negative
    /// one as `None`, with the certificate marked invalid: [`Self::invalid_extension`]).
    pub fn basic_constraints(&self) -> Option<(bool, Option<u32>)> {
        self.inner
            .index
            .basic_constraints
            .map(|bc| (bc.ca, bc.path_len))
    }

    /// Whether this is a CA certificate as OpenSSL's `X509_check_ca` (and so Node's `ca`)
    /// sees it: basicConstraints `cA` set, keyCertSign set if key usage is present, and no
    /// [`Self::invalid_extension`].
    pub fn is_ca(&self) -> bool {
        if self.invalid_extension().is_some() {
            return false;
        }
        let ca = self.inner.index.basic_constraints.is_some_and(|bc| bc.ca);
        let ku_ok = self
            .inner
            .index
            .key_usage
            .is_none_or(|ku| ku.contains(KeyUsage::KEY_CERT_SIGN));
        ca && ku_ok
    }

    /// The first subject or authority key identifier, name constraints or CRL distribution
    /// points extension that does not decode, or basic constraints with a negative
    /// pathLenConstraint (its OID), if any. OpenSSL reads such a
    /// certificate but holds it invalid: never a CA, and a chain holding it never verifies.
    pub fn invalid_extension(&self) -> Option<Oid<'_>> {
        let span = self.inner.index.invalid_extension?;
        let der = &self.inner.der;
        self.raw_extensions()
            .find(|e| e.value().as_ptr() == span.tlv(der).value.as_ptr())
            .map(|e| e.oid())
    }

    /// SHA-256 of the DER, computed once.
    pub fn fingerprint_sha256(&self) -> &[u8; 32] {
        self.inner
            .digests
            .sha256
            .get_or_init(|| Sha256::digest(&*self.inner.der).into())
    }

    /// SHA-1 of the DER, computed once (for parity with Node's `fingerprint`; do not pin it).
    pub fn fingerprint_sha1(&self) -> &[u8; 20] {
        self.inner
            .digests
            .sha1
            .get_or_init(|| Sha1::digest(&*self.inner.der).into())
    }

    /// SHA-256 of the TBSCertificate (the part the issuer signed), computed once: the
    /// signed fingerprint. Unlike [`Self::fingerprint_sha256`], whoever holds the
    /// certificate cannot change it without the CA (re-encoding the signature, such as an
    /// ECDSA `s` replaced by `n − s`, leaves it as it is), so it is the one to ban by.
    pub fn tbs_sha256(&self) -> &[u8; 32] {
        self.inner
            .digests
            .tbs_sha256
            .get_or_init(|| Sha256::digest(self.inner.index.tbs.tlv(&self.inner.der).raw).into())
    }

    /// The signed fingerprint ([`Self::tbs_sha256`]) as colon-separated upper-case hex.
    pub fn tbs_sha256_hex(&self) -> String {
        colon_hex(self.tbs_sha256())
    }

    /// SHA-512 of the DER, computed once.
    pub fn fingerprint_sha512(&self) -> &[u8; 64] {
        self.inner
            .digests
            .sha512
            .get_or_init(|| Sha512::digest(&*self.inner.der).into())
    }

    /// SHA-256 fingerprint as colon-separated upper-case hex (`AB:CD:…`), as Node prints it.
    pub fn fingerprint_sha256_hex(&self) -> String {
        colon_hex(self.fingerprint_sha256())
    }

    /// SHA-1 fingerprint as colon-separated upper-case hex, as Node prints `fingerprint`
    /// (for display and lookups only: pin certificates by SHA-256).
    pub fn fingerprint_sha1_hex(&self) -> String {
        colon_hex(self.fingerprint_sha1())
    }

    /// Node.js's legacy object for this certificate (feature `serde`).
    #[cfg(feature = "serde")]
    pub fn to_legacy_object(&self) -> crate::legacy::LegacyObject {
        crate::legacy::LegacyObject::new(self)
    }

    /// The limits this certificate was parsed with.
    pub(crate) fn limits(&self) -> CertLimits {
        self.inner.limits
    }
}

/// Bytes as colon-separated upper-case hex (`AB:CD:EF`).
pub(crate) fn colon_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(hex_digit(b >> 4));
        s.push(hex_digit(b & 0xF));
    }
    s
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n & 0xF)])
}

fn serial_hex(bytes: &[u8]) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let magnitude: Vec<u8> = if negative {
        // Two's complement: invert and add one.
        let mut m: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        m
    } else {
        bytes.to_vec()
    };
    let digits: Vec<u8> = magnitude.into_iter().skip_while(|&b| b == 0).collect();
    let mut s = String::with_capacity(digits.len() * 2 + 1);
    if negative {
        s.push('-');
    }
    if digits.is_empty() {
        s.push('0');
    }
    for b in digits {
        s.push(hex_digit(b >> 4));
        s.push(hex_digit(b & 0xF));
    }
    s
}

/// The modulus size of an RSAPublicKey in a BIT STRING.
fn rsa_bits(key: Tlv<'_>) -> Option<u32> {
    let (_, bits) = asn1::bit_string(key).ok()?;
    let rsa = Reader::new(bits).read(tag::SEQUENCE).ok()?;
    let modulus = asn1::integer_bytes(rsa.reader().read(tag::INTEGER).ok()?).ok()?;
    let m: &[u8] = match modulus {
        [0, rest @ ..] => rest,
        m => m,
    };
    let first = m.first()?;
    let len = u32::try_from(m.len()).ok()?;
    Some((len - 1) * 8 + (8 - first.leading_zeros()))
}

fn public_key_algorithm(spki: Tlv<'_>) -> Option<PublicKeyAlgorithm> {
    let mut r = spki.reader();
    let alg = r.read(tag::SEQUENCE).ok()?;
    let key = r.read(tag::BIT_STRING).ok()?;
    let mut a = alg.reader();
    let oid = a.read(tag::OID).ok()?.value;
    Some(match oid {
        known::RSA_ENCRYPTION => PublicKeyAlgorithm::Rsa {
            bits: rsa_bits(key)?,
        },
        known::RSASSA_PSS => PublicKeyAlgorithm::RsaPss {
            bits: rsa_bits(key)?,
        },
        known::EC_PUBLIC_KEY => match a.read_optional(tag::OID).ok()? {
            Some(c) if c.value == known::CURVE_P256 => PublicKeyAlgorithm::P256,
            Some(c) if c.value == known::CURVE_P384 => PublicKeyAlgorithm::P384,
            Some(c) if c.value == known::CURVE_P521 => PublicKeyAlgorithm::P521,
            _ => PublicKeyAlgorithm::OtherCurve,
        },
        known::ED25519 => PublicKeyAlgorithm::Ed25519,
        known::ED448 => PublicKeyAlgorithm::Ed448,
        _ => PublicKeyAlgorithm::Other,
    })
}

/// The single walk over the certificate.
fn parse(der: &[u8], limits: &CertLimits) -> Result<Index, X509Error> {
    let mut outer = Reader::new(der);
    let cert = outer.read(tag::SEQUENCE)?;
    outer.finish()?;
    let mut c = cert.reader();
    let tbs = c.read(tag::SEQUENCE)?;
    let sig_alg = c.read(tag::SEQUENCE)?;
    let sig_alg_oid = sig_alg.reader().read(tag::OID)?;
    Oid::from_der_contents(sig_alg_oid.value).ok_or_else(|| sig_alg_oid.error())?;
    asn1::bit_string(c.read(tag::BIT_STRING)?)?;
    c.finish()?;

    let mut t = tbs.reader();
    let mut index = Index {
        tbs: Span::of(&tbs, der),
        version: 1,
        ..Index::default()
    };
    if let Some(v) = t.read_optional(tag::context_constructed(0))? {
        let mut vr = v.reader();
        let n = asn1::small_uint(vr.read(tag::INTEGER)?)?;
        vr.finish()?;
        index.version = match n {
            0 => 1,
            1 => 2,
            2 => 3,
            _ => return Err(v.error().into()),
        };
    }
    let serial = t.read(tag::INTEGER)?;
    asn1::integer_bytes(serial)?;
    index.serial = Span::of(&serial, der);

    let alg = t.read(tag::SEQUENCE)?;
    let alg_oid = alg.reader().read(tag::OID)?;
    Oid::from_der_contents(alg_oid.value).ok_or_else(|| alg_oid.error())?;
    index.signature_algorithm = Span::of(&alg, der);

    let max = limits.max_name_attributes;
    let issuer =
        crate::name::read_name(&mut t, max).map_err(name_error(name_field::ISSUER, max))?;
    index.issuer = Span::of(&issuer.tlv(), der);

    let validity = t.read(tag::SEQUENCE)?;
    let mut v = validity.reader();
    for slot in [&mut index.not_before, &mut index.not_after] {
        let time = v.read_any()?;
        *slot = Time::from_der(time)
            .ok_or(X509Error::InvalidTime {
                offset: time.value_offset,
            })?
            .unix_seconds();
    }
    v.finish()?;

    let subject =
        crate::name::read_name(&mut t, max).map_err(name_error(name_field::SUBJECT, max))?;
    index.subject = Span::of(&subject.tlv(), der);

    let spki = t.read(tag::SEQUENCE)?;
    {
        let mut s = spki.reader();
        let alg = s.read(tag::SEQUENCE)?;
        let oid = alg.reader().read(tag::OID)?;
        Oid::from_der_contents(oid.value).ok_or_else(|| oid.error())?;
        asn1::bit_string(s.read(tag::BIT_STRING)?)?;
        s.finish()?;
    }
    index.spki = Span::of(&spki, der);

    // issuerUniqueID [1] and subjectUniqueID [2] (v2+), rarely seen; skipped.
    t.read_optional(tag::context_primitive(1))?;
    t.read_optional(tag::context_primitive(2))?;
    t.read_optional(tag::context_constructed(1))?;
    t.read_optional(tag::context_constructed(2))?;

    if let Some(exts) = t.read_optional(tag::context_constructed(3))? {
        let mut er = exts.reader();
        let seq = er.read(tag::SEQUENCE)?;
        er.finish()?;
        index.extensions = Some(Span::of(&seq, der));
        parse_extensions(seq, der, limits, &mut index)?;
    }
    t.finish()?;
    Ok(index)
}

#[cfg(test)]
mod tests;
