//! Test support for certauth (not published).
//!
//! - [`Authority`]: a CA made at test time with rcgen, issuing intermediates and leaves.
//! - [`Crafted`]: a certificate written DER by DER, for what rcgen cannot express (repeated
//!   and multi-valued name attributes, every string type, every SAN kind, odd serials),
//!   still properly signed.
//! - [`node`]: the Node.js reference (`X509Certificate#toLegacyObject()` and Node's TLS
//!   `authorizationError`), run through the `node` binary.
//!
//! Nothing here is a checked-in secret: every key and certificate is made when a test runs.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::as_conversions,
    reason = "test support: a failure here is a broken test, and panicking says so"
)]

pub mod der;
pub mod encode;
pub mod first_request;
pub mod handshake;
pub mod hostile;
pub mod keytypes;
pub mod lifecycle;
pub mod node;
pub mod outcome;
pub mod proxies;
pub mod revocation;
pub mod suite;

use std::sync::OnceLock;

pub use outcome::Outcome;
pub use rcgen;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use time::OffsetDateTime;

/// Key types the tests cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    P384,
    Ed25519,
    Rsa2048,
}

/// rustls' ring provider, for tests. rustls 0.23.48 deprecates `ring::default_provider` (no
/// post-quantum key exchange); the tests keep ring, so the deprecation is acknowledged here
/// once.
#[allow(deprecated)]
pub fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A fresh key. RSA keys come from `openssl genpkey` (ring cannot generate RSA keys); one
/// is made per process and reused.
pub fn key(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        KeyKind::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        KeyKind::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        KeyKind::Rsa2048 => {
            static PEM: OnceLock<String> = OnceLock::new();
            let pem = PEM.get_or_init(|| {
                let out = std::process::Command::new("openssl")
                    .args([
                        "genpkey",
                        "-algorithm",
                        "RSA",
                        "-pkeyopt",
                        "rsa_keygen_bits:2048",
                    ])
                    .output()
                    .expect("openssl must be installed to make RSA test keys");
                assert!(out.status.success(), "openssl genpkey failed");
                String::from_utf8(out.stdout).unwrap()
            });
            KeyPair::from_pem_and_sign_algo(pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        }
    }
}

/// A fixed "now" for deterministic tests: 2026-06-01T00:00:00Z.
pub const NOW_SECS: u64 = 1_780_272_000;

/// [`NOW_SECS`] as a `UnixTime`.
pub fn now() -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW_SECS))
}

/// The wall clock, for tests that talk to Node (whose TLS stack reads the real clock).
#[allow(
    clippy::disallowed_methods,
    reason = "comparing with a peer that reads the clock"
)]
pub fn wall_clock() -> UnixTime {
    UnixTime::now()
}

fn datetime(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

/// A certificate and its key.
pub struct Issued {
    pub der: CertificateDer<'static>,
    pub key: KeyPair,
    /// What it was made from (to issue under it with rcgen).
    pub params: CertificateParams,
}

impl Issued {
    /// Wraps a certificate made elsewhere.
    pub fn new(der: CertificateDer<'static>, key: KeyPair) -> Self {
        Self {
            der,
            key,
            params: CertificateParams::default(),
        }
    }

    /// The same certificate with a throw-away key: for chain members whose key the client
    /// never uses.
    pub fn cert_only(&self) -> Self {
        Self::new(self.der.clone(), key(KeyKind::P256))
    }

    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

/// PEM-armours DER.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// What a leaf should look like. `Leaf::client("name")` is a typical client certificate.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub cn: String,
    pub extra_dn: Vec<(DnType, String)>,
    pub sans: Vec<SanType>,
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub is_ca: bool,
    pub not_before: i64,
    pub not_after: i64,
    pub key: KeyKind,
    pub serial: Option<Vec<u8>>,
}

impl Leaf {
    /// A client certificate valid from a year before [`NOW_SECS`] to a year after it, with
    /// the clientAuth EKU.
    pub fn client(cn: &str) -> Self {
        let now = NOW_SECS as i64;
        Self {
            cn: cn.to_owned(),
            extra_dn: Vec::new(),
            sans: Vec::new(),
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            is_ca: false,
            not_before: now - 365 * 86_400,
            not_after: now + 365 * 86_400,
            key: KeyKind::P256,
            serial: None,
        }
    }

    /// Valid around the wall clock instead (for comparisons with Node).
    pub fn around_wall_clock(mut self) -> Self {
        let now = wall_clock().as_secs() as i64;
        self.not_before = now - 86_400;
        self.not_after = now + 86_400;
        self
    }

    /// The rcgen parameters this leaf stands for (to sign it with an issuer of your own).
    pub fn params(&self) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, self.cn.clone());
        for (t, v) in &self.extra_dn {
            p.distinguished_name.push(t.clone(), v.clone());
        }
        p.subject_alt_names = self.sans.clone();
        p.extended_key_usages = self.eku.clone();
        p.key_usages = self.key_usages.clone();
        p.not_before = datetime(self.not_before);
        p.not_after = datetime(self.not_after);
        p.use_authority_key_identifier_extension = true;
        p.key_identifier_method = KeyIdMethod::Sha256;
        if self.is_ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        p.serial_number = Some(match &self.serial {
            Some(s) => SerialNumber::from_slice(s),
            None => SerialNumber::from_slice(&random_serial()),
        });
        p
    }
}

fn random_serial() -> Vec<u8> {
    // Distinct serials per certificate without a randomness dependency: a key's public
    // bytes are random enough.
    let k = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut s = k.public_key_raw()[..16].to_vec();
    s[0] &= 0x7F;
    s[0] |= 0x01;
    s
}

/// A certificate authority made at test time.
pub struct Authority {
    pub cert: Issued,
}

impl Authority {
    /// A self-signed root valid for ten years around [`NOW_SECS`] and the wall clock.
    pub fn root(cn: &str) -> Self {
        Self::root_with_key(cn, KeyKind::P256)
    }

    pub fn root_with_key(cn: &str, kind: KeyKind) -> Self {
        let key = key(kind);
        let params = ca_params(cn);
        let der = params.self_signed(&key).unwrap().der().clone();
        Self {
            cert: Issued { der, key, params },
        }
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.cert.params, &self.cert.key)
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, cn: &str) -> Self {
        self.intermediate_with_key(cn, KeyKind::P256)
    }

    /// An intermediate CA with a key of `kind`, signed by this one.
    pub fn intermediate_with_key(&self, cn: &str, kind: KeyKind) -> Self {
        let key = key(kind);
        let params = ca_params(cn);
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .clone();
        Self {
            cert: Issued { der, key, params },
        }
    }

    /// Issues a leaf.
    pub fn issue(&self, leaf: &Leaf) -> Issued {
        let key = key(leaf.key);
        let params = leaf.params();
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .clone();
        Issued { der, key, params }
    }

    /// Issues a leaf whose public key is `key` (e.g. another certificate's).
    pub fn issue_with_key(&self, leaf: &Leaf, key: KeyPair) -> Issued {
        let params = leaf.params();
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .clone();
        Issued { der, key, params }
    }

    /// A CRL revoking the given certificates, valid around [`NOW_SECS`] and the wall clock.
    pub fn crl(&self, revoked: &[&Issued]) -> CertificateRevocationListDer<'static> {
        let next = wall_clock().as_secs().max(NOW_SECS) as i64 + 86_400 * 365;
        self.crl_until(revoked, next)
    }

    /// A CRL whose nextUpdate is `next_update` (Unix seconds).
    pub fn crl_until(
        &self,
        revoked: &[&Issued],
        next_update: i64,
    ) -> CertificateRevocationListDer<'static> {
        let now = wall_clock().as_secs().min(NOW_SECS) as i64;
        self.crl_numbered(revoked, 1, now - 86_400 * 30, next_update)
    }

    /// A CRL with this cRLNumber, thisUpdate and nextUpdate (Unix seconds).
    pub fn crl_numbered(
        &self,
        revoked: &[&Issued],
        number: u64,
        this_update: i64,
        next_update: i64,
    ) -> CertificateRevocationListDer<'static> {
        let now = wall_clock().as_secs().min(NOW_SECS) as i64;
        let params = CertificateRevocationListParams {
            this_update: datetime(this_update),
            next_update: datetime(next_update),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|c| RevokedCertParams {
                    serial_number: c.params.serial_number.clone().unwrap(),
                    revocation_time: datetime(now - 86_400),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer()).unwrap().der().clone()
    }
}

/// `n` self-signed roots (one key between them) with subjects of about 190 bytes, as the
/// roots of a public-CA bundle have: a `--ca` bundle too large for the CertificateRequest's
/// CA names past about 320 of them. PEM.
pub fn bundle_of_roots(n: usize) -> String {
    let key = key(KeyKind::P256);
    (0..n)
        .map(|i| {
            let mut p = ca_params(&format!(
                "Example Trust Services Root Certification Authority {i:04}"
            ));
            p.distinguished_name.push(
                DnType::OrganizationalUnitName,
                "Certification Authority Operations Division",
            );
            p.distinguished_name
                .push(DnType::LocalityName, "Somewhere Quite Far Away");
            p.distinguished_name
                .push(DnType::StateOrProvinceName, "Some Long Province Name");
            p.distinguished_name.push(DnType::CountryName, "ZZ");
            pem("CERTIFICATE", p.self_signed(&key).unwrap().der())
        })
        .collect()
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "certauth tests");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = wall_clock().as_secs().min(NOW_SECS) as i64;
    p.not_before = datetime(now - 5 * 365 * 86_400);
    p.not_after = datetime(wall_clock().as_secs().max(NOW_SECS) as i64 + 5 * 365 * 86_400);
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    p
}

/// A certificate written field by field, signed by `signer` (or self-signed).
#[derive(Clone, Debug)]
pub struct Crafted {
    /// 1, 2 or 3.
    pub version: u8,
    /// INTEGER contents, as written (so a caller can test odd encodings).
    pub serial: Vec<u8>,
    /// Name DER.
    pub issuer: Vec<u8>,
    pub subject: Vec<u8>,
    /// Time DER (tag included): use [`der::utc_time`] or [`der::generalized_time`].
    pub not_before: Vec<u8>,
    pub not_after: Vec<u8>,
    /// (dotted OID, critical, extnValue contents)
    pub extensions: Vec<(String, bool, Vec<u8>)>,
    /// Write the version field even for v1 (`[0] INTEGER 0`, which DER omits).
    pub explicit_version: bool,
    /// A SubjectPublicKeyInfo to embed instead of the subject key's (the signature then
    /// still verifies with the signer's key; only the embedded key is odd).
    pub spki: Option<Vec<u8>>,
}

impl Crafted {
    /// A v3 certificate with the given subject, issued by a name of the same value.
    pub fn new(subject: Vec<u8>) -> Self {
        Self {
            version: 3,
            serial: vec![0x01],
            issuer: subject.clone(),
            subject,
            not_before: der::utc_time("250101000000Z"),
            not_after: der::utc_time("350101000000Z"),
            extensions: Vec::new(),
            explicit_version: false,
            spki: None,
        }
    }

    /// Signs with `signer`, embedding `subject_key`'s public key.
    pub fn sign(&self, subject_key: &KeyPair, signer: &KeyPair) -> Vec<u8> {
        use rcgen::{PublicKeyData as _, SigningKey as _};
        let alg = sig_alg_der(signer);
        let mut tbs = Vec::new();
        if self.version > 1 || self.explicit_version {
            tbs.extend(der::tlv(0xA0, &der::tlv(0x02, &[self.version - 1])));
        }
        tbs.extend(der::tlv(0x02, &self.serial));
        tbs.extend(alg.clone());
        tbs.extend(self.issuer.clone());
        tbs.extend(der::seq(&[self.not_before.clone(), self.not_after.clone()]));
        tbs.extend(self.subject.clone());
        match &self.spki {
            Some(spki) => tbs.extend(spki.clone()),
            None => tbs.extend(subject_key.subject_public_key_info()),
        }
        if !self.extensions.is_empty() {
            let exts: Vec<Vec<u8>> = self
                .extensions
                .iter()
                .map(|(oid, critical, value)| {
                    let mut e = der::oid(oid);
                    if *critical {
                        e.extend(der::tlv(0x01, &[0xFF]));
                    }
                    e.extend(der::tlv(0x04, value));
                    der::tlv(0x30, &e)
                })
                .collect();
            tbs.extend(der::tlv(0xA3, &der::seq(&exts)));
        }
        let tbs = der::tlv(0x30, &tbs);
        let sig = signer.sign(&tbs).unwrap();
        let mut bits = vec![0u8];
        bits.extend(sig);
        der::seq(&[tbs, alg, der::tlv(0x03, &bits)])
    }
}

/// A CRL written DER by DER, for what rcgen cannot express (a critical CRLNumber, an
/// unknown critical extension).
pub struct CraftedCrl {
    /// Name DER.
    pub issuer: Vec<u8>,
    /// Time DER (tag included).
    pub this_update: Vec<u8>,
    pub next_update: Vec<u8>,
    /// Serial INTEGER contents of revoked certificates.
    pub revoked: Vec<Vec<u8>>,
    /// (dotted OID, critical, extnValue contents)
    pub extensions: Vec<(String, bool, Vec<u8>)>,
}

impl CraftedCrl {
    /// A v2 CRL from `issuer`, valid around the wall clock and [`NOW_SECS`], with a
    /// non-critical CRLNumber of 1.
    pub fn new(issuer: Vec<u8>) -> Self {
        Self {
            issuer,
            this_update: der::utc_time("250101000000Z"),
            next_update: der::utc_time("491231000000Z"),
            revoked: Vec::new(),
            extensions: vec![("2.5.29.20".into(), false, der::tlv(0x02, &[1]))],
        }
    }

    /// Signs it with `signer`.
    pub fn sign(&self, signer: &KeyPair) -> CertificateRevocationListDer<'static> {
        use rcgen::SigningKey as _;
        let alg = sig_alg_der(signer);
        let mut tbs = der::tlv(0x02, &[1]);
        tbs.extend(alg.clone());
        tbs.extend(self.issuer.clone());
        tbs.extend(self.this_update.clone());
        tbs.extend(self.next_update.clone());
        if !self.revoked.is_empty() {
            let entries: Vec<Vec<u8>> = self
                .revoked
                .iter()
                .map(|serial| der::seq(&[der::tlv(0x02, serial), self.this_update.clone()]))
                .collect();
            tbs.extend(der::seq(&entries));
        }
        if !self.extensions.is_empty() {
            let exts: Vec<Vec<u8>> = self
                .extensions
                .iter()
                .map(|(oid, critical, value)| {
                    let mut e = der::oid(oid);
                    if *critical {
                        e.extend(der::tlv(0x01, &[0xFF]));
                    }
                    e.extend(der::tlv(0x04, value));
                    der::tlv(0x30, &e)
                })
                .collect();
            tbs.extend(der::tlv(0xA0, &der::seq(&exts)));
        }
        let tbs = der::tlv(0x30, &tbs);
        let sig = signer.sign(&tbs).unwrap();
        let mut bits = vec![0u8];
        bits.extend(sig);
        CertificateRevocationListDer::from(der::seq(&[tbs, alg, der::tlv(0x03, &bits)]))
    }
}

fn sig_alg_der(key: &KeyPair) -> Vec<u8> {
    let alg = key.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        der::seq(&[der::oid("1.2.840.10045.4.3.2")])
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        der::seq(&[der::oid("1.2.840.10045.4.3.3")])
    } else if alg == &rcgen::PKCS_ED25519 {
        der::seq(&[der::oid("1.3.101.112")])
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        der::seq(&[der::oid("1.2.840.113549.1.1.11"), der::tlv(0x05, &[])])
    } else {
        panic!("no signature algorithm for this key in the testkit")
    }
}

/// A complete request head, parsed by the parser the adapters use ([`HeadParser`]); panics
/// if `bytes` hold no complete, valid head.
///
/// [`HeadParser`]: certauth_core::HeadParser
pub fn head(bytes: &[u8]) -> certauth_core::RequestHead {
    use certauth_core::{HeadParser, HeadProgress, Limits};
    match HeadParser::new(&Limits::DEFAULT).parse(bytes) {
        Ok(HeadProgress::Complete { head, .. }) => head,
        other => panic!("not a complete head: {other:?}"),
    }
}
