//! Chain verification: every outcome and error code, over PKIs made here, at a fixed time.
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

use certauth_core::verify::{
    ChainVerifier, RevocationDepth, TrustAnchors, TrustConfigError, UnknownRevocation, VerifyError,
};
use certauth_core::{CertificateDer, ClientCertificate, Time};
use certauth_testkit::der;
use certauth_testkit::{Authority, Crafted, Issued, KeyKind, Leaf, NOW_SECS, now};
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use rustls_pki_types::CertificateRevocationListDer;

fn verifier(root: &Authority) -> ChainVerifier {
    let anchors = TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS)
}

fn chain(certs: &[&Issued]) -> Vec<CertificateDer<'static>> {
    certs.iter().map(|c| c.der.clone()).collect()
}

fn code(v: &ChainVerifier, certs: &[&Issued]) -> &'static str {
    match v.verify(&chain(certs), now()) {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

#[test]
fn leaf_under_root_verifies_and_exposes_the_path() {
    let root = Authority::root("Root A");
    let leaf = root.issue(&Leaf::client("alice"));
    let v = verifier(&root);
    let verified = v.verify(&chain(&[&leaf]), now()).unwrap();
    assert_eq!(verified.leaf().der(), &leaf.der[..]);
    assert!(verified.intermediates().is_empty());
    assert_eq!(verified.anchor().unwrap().der(), &root.cert.der[..]);
    assert_eq!(verified.issuer().unwrap().der(), &root.cert.der[..]);
    assert_eq!(verified.iter().count(), 2);
}

#[test]
fn chain_of_three_verifies_presented_or_configured() {
    let root = Authority::root("Root B");
    let inter = root.intermediate("Intermediate B");
    let leaf = inter.issue(&Leaf::client("bob"));
    let v = verifier(&root);
    let verified = v.verify(&chain(&[&leaf, &inter.cert]), now()).unwrap();
    assert_eq!(verified.intermediates().len(), 1);
    assert_eq!(verified.issuer().unwrap().der(), &inter.cert.der[..]);
    let subjects: Vec<String> = verified
        .iter()
        .map(|c| c.subject().common_names().next().unwrap().into_owned())
        .collect();
    assert_eq!(subjects, ["bob", "Intermediate B", "Root B"]);

    // A client that sends only its leaf: unknown issuer, unless the server knows the
    // intermediate.
    assert_eq!(code(&v, &[&leaf]), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    let v = verifier(&root)
        .with_intermediates([inter.cert.der.clone()])
        .unwrap();
    assert_eq!(code(&v, &[&leaf]), "OK");
}

#[test]
fn validity_period_is_checked_against_the_given_time() {
    let root = Authority::root("Root C");
    let mut expired = Leaf::client("old");
    expired.not_before = NOW_SECS as i64 - 20 * 86_400;
    expired.not_after = NOW_SECS as i64 - 10 * 86_400;
    let expired = root.issue(&expired);
    let mut future = Leaf::client("new");
    future.not_before = NOW_SECS as i64 + 10 * 86_400;
    let future = root.issue(&future);
    let v = verifier(&root);

    let err = v.verify(&chain(&[&expired]), now()).unwrap_err();
    assert_eq!(err.code(), "CERT_HAS_EXPIRED");
    assert_eq!(
        err,
        VerifyError::Expired {
            now: Time::from_unix_seconds(NOW_SECS as i64),
            not_after: Time::from_unix_seconds(NOW_SECS as i64 - 10 * 86_400),
        }
    );
    assert!(
        err.to_string().contains("expired at 2026-05-22T00:00:00Z"),
        "{err}"
    );
    let err = v.verify(&chain(&[&future]), now()).unwrap_err();
    assert_eq!(err.code(), "CERT_NOT_YET_VALID");

    // The same certificates at other times.
    let then = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        NOW_SECS - 15 * 86_400,
    ));
    assert!(v.verify(&chain(&[&expired]), then).is_ok());
}

#[test]
fn validity_ends_are_inclusive_to_the_second() {
    // RFC 5280 4.1.2.5: valid from notBefore through notAfter, both included.
    let root = Authority::root("Root Window");
    let leaf = root.issue(&Leaf::client("window"));
    let v = verifier(&root);
    let nb = NOW_SECS - 365 * 86_400;
    let na = NOW_SECS + 365 * 86_400;
    let at =
        |s: u64| rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(s));
    for (secs, want) in [
        (nb - 1, "CERT_NOT_YET_VALID"),
        (nb, "OK"),
        (na, "OK"),
        (na + 1, "CERT_HAS_EXPIRED"),
    ] {
        let got = match v.verify(&chain(&[&leaf]), at(secs)) {
            Ok(_) => "OK",
            Err(e) => e.code(),
        };
        assert_eq!(got, want, "at {secs}");
    }
}

#[test]
fn unknown_issuers_are_named_as_openssl_names_them() {
    let root = Authority::root("Root D");
    let other = Authority::root("Other Root");
    let other_inter = other.intermediate("Other Intermediate");
    let v = verifier(&root);

    let foreign = other.issue(&Leaf::client("mallory"));
    assert_eq!(code(&v, &[&foreign]), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");

    let foreign_deep = other_inter.issue(&Leaf::client("mallory"));
    assert_eq!(
        code(&v, &[&foreign_deep, &other_inter.cert]),
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    );
    assert_eq!(
        code(&v, &[&foreign_deep, &other_inter.cert, &other.cert]),
        "SELF_SIGNED_CERT_IN_CHAIN"
    );
    // The same when the intermediates are configured (`--chain`) rather than presented.
    let configured = verifier(&root)
        .with_intermediates([other_inter.cert.der.clone(), other.cert.der.clone()])
        .unwrap();
    assert_eq!(
        code(&configured, &[&foreign_deep]),
        "SELF_SIGNED_CERT_IN_CHAIN"
    );
    let configured = verifier(&root)
        .with_intermediates([other_inter.cert.der.clone()])
        .unwrap();
    assert_eq!(
        code(&configured, &[&foreign_deep]),
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    );

    // A self-signed leaf.
    let key = certauth_testkit::key(KeyKind::P256);
    let mut params = rcgen::CertificateParams::new(vec!["self.example".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "self-signed");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let der = params.self_signed(&key).unwrap().der().clone();
    let err = v.verify(&[der], now()).unwrap_err();
    assert_eq!(err.code(), "DEPTH_ZERO_SELF_SIGNED_CERT");
}

#[test]
fn a_forged_signature_is_refused() {
    let root = Authority::root("Root E");
    let v = verifier(&root);
    // A real certificate with one bit of its signature flipped.
    let real = root.issue(&Leaf::client("eve"));
    let mut der = real.der.to_vec();
    *der.last_mut().unwrap() ^= 1;
    let corrupted = Issued::new(der.into(), real.key);
    assert_eq!(code(&v, &[&corrupted]), "CERT_SIGNATURE_FAILURE");

    // Issued by an imposter with the real root's name but another key: OpenSSL (and so
    // Node) never considers the real root its issuer, because the key identifiers differ.
    let imposter = Authority::root("Root E");
    let forged = imposter.issue(&Leaf::client("eve"));
    assert_eq!(code(&v, &[&forged]), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
}

#[test]
fn purpose_and_ca_flag_are_enforced() {
    let root = Authority::root("Root F");
    let v = verifier(&root);
    let mut server_only = Leaf::client("server");
    server_only.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
    assert_eq!(code(&v, &[&root.issue(&server_only)]), "INVALID_PURPOSE");

    let mut no_eku = Leaf::client("no eku");
    no_eku.eku = vec![];
    assert_eq!(code(&v, &[&root.issue(&no_eku)]), "OK");

    let mut ca_leaf = Leaf::client("ca as leaf");
    ca_leaf.is_ca = true;
    assert_eq!(code(&v, &[&root.issue(&ca_leaf)]), "CA_USED_AS_END_ENTITY");
}

#[test]
fn v1_sha1_and_unknown_critical_extensions_are_refused() {
    let root = Authority::root("Root G");
    let v = verifier(&root);
    let root_cert = ClientCertificate::from_der(&root.cert.der).unwrap();
    let issuer = root_cert.subject().raw().to_vec();
    let subject_key = certauth_testkit::key(KeyKind::P256);
    let base = || {
        let mut c = Crafted::new(der::simple_name(&[("CN", "crafted")]));
        c.issuer = issuer.clone();
        c.serial = vec![0x42];
        c
    };
    let sign = |c: &Crafted| CertificateDer::from(c.sign(&subject_key, &root.cert.key));

    assert_eq!(v.verify(&[sign(&base())], now()).map(|_| ()), Ok(()));

    let mut v1 = base();
    v1.version = 1;
    assert_eq!(
        v.verify(&[sign(&v1)], now()).unwrap_err().code(),
        "UNSUPPORTED_CERT_VERSION"
    );

    let mut critical = base();
    critical
        .extensions
        .push(("1.3.6.1.4.1.99999.1".into(), true, der::tlv(0x05, &[])));
    assert_eq!(
        v.verify(&[sign(&critical)], now()).unwrap_err().code(),
        "UNHANDLED_CRITICAL_EXTENSION"
    );
    let mut non_critical = base();
    non_critical
        .extensions
        .push(("1.3.6.1.4.1.99999.1".into(), false, der::tlv(0x05, &[])));
    assert!(v.verify(&[sign(&non_critical)], now()).is_ok());

    // Rewrite both signature algorithm identifiers to ecdsa-with-SHA1: refused before any
    // signature is checked, with OpenSSL's code at security level 1 (Node's default;
    // `openssl verify -auth_level 1` says CA_MD_TOO_WEAK too).
    let good = sign(&base()).to_vec();
    let sha256 = der::seq(&[der::oid("1.2.840.10045.4.3.2")]);
    let sha1 = der::seq(&[der::oid("1.2.840.10045.4.1")]);
    let reencoded = replace_all(&good, &sha256, &sha1);
    let err = v
        .verify(&[CertificateDer::from(reencoded)], now())
        .unwrap_err();
    assert_eq!(err.code(), "CA_MD_TOO_WEAK", "{err:?}");
    // sha1WithRSAEncryption, and an algorithm no provider offers that is not a weak digest.
    let rsa_sha1 = der::seq(&[der::oid("1.2.840.113549.1.1.5"), der::tlv(0x05, &[])]);
    let reencoded = replace_all(&good, &sha256, &rsa_sha1);
    let err = v
        .verify(&[CertificateDer::from(reencoded)], now())
        .unwrap_err();
    assert_eq!(err.code(), "CA_MD_TOO_WEAK", "{err:?}");
    let ecdsa_sha3 = der::seq(&[der::oid("2.16.840.1.101.3.4.3.10")]);
    let reencoded = replace_all(&good, &sha256, &ecdsa_sha3);
    let err = v
        .verify(&[CertificateDer::from(reencoded)], now())
        .unwrap_err();
    assert_eq!(err.code(), "UNSUPPORTED_SIGNATURE_ALGORITHM", "{err:?}");
}

/// Replaces every occurrence of `from` with `to` and fixes the lengths of the certificate's
/// outer SEQUENCE and TBS (the only enclosing elements of an AlgorithmIdentifier).
fn replace_all(cert: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    // Re-split: outer SEQUENCE { tbs, alg, sig }.
    let (outer_body, _) = split_tlv(cert);
    let (tbs_body, rest) = split_tlv(outer_body);
    let (tbs, alg_and_sig) = (tbs_body, rest);
    let tbs = der::tlv(0x30, &replace_bytes(tbs, from, to));
    let alg_and_sig = replace_bytes(alg_and_sig, from, to);
    der::tlv(0x30, &[tbs, alg_and_sig].concat())
}

/// (contents of the first TLV, bytes after it)
fn split_tlv(input: &[u8]) -> (&[u8], &[u8]) {
    let len_byte = input[1];
    let (len, hdr) = if len_byte < 0x80 {
        (usize::from(len_byte), 2)
    } else {
        let n = usize::from(len_byte & 0x7F);
        let mut len = 0usize;
        for b in &input[2..2 + n] {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    (&input[hdr..hdr + len], &input[hdr + len..])
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn crls_revoke_and_unknown_status_is_configurable() {
    let root = Authority::root("Root H");
    let inter = root.intermediate("Intermediate H");
    let good = inter.issue(&Leaf::client("good"));
    let bad = inter.issue(&Leaf::client("bad"));
    let crl = inter.crl(&[&bad]);
    let root_crl = root.crl(&[]);

    let v = verifier(&root).with_crls([crl.clone()]).unwrap();
    assert_eq!(code(&v, &[&good, &inter.cert]), "OK");
    assert_eq!(code(&v, &[&bad, &inter.cert]), "CERT_REVOKED");

    // The intermediate itself is not covered by any CRL: allowed by default...
    let strict = verifier(&root)
        .with_crls([crl.clone()])
        .unwrap()
        .with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&strict, &[&good, &inter.cert]), "UNABLE_TO_GET_CRL");
    // ...fine when only the end entity is checked, or when the root's CRL is present too.
    let ee_only = verifier(&root)
        .with_crls([crl.clone()])
        .unwrap()
        .with_unknown_revocation(UnknownRevocation::Deny)
        .with_revocation_depth(RevocationDepth::EndEntity);
    assert_eq!(code(&ee_only, &[&good, &inter.cert]), "OK");
    let full = verifier(&root)
        .with_crls([crl, root_crl])
        .unwrap()
        .with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&full, &[&good, &inter.cert]), "OK");
    assert_eq!(code(&full, &[&bad, &inter.cert]), "CERT_REVOKED");
}

#[test]
fn chain_length_and_malformed_input() {
    let root = Authority::root("Root I");
    let leaf = root.issue(&Leaf::client("long"));
    assert_eq!(verifier(&root).max_chain_len(), 8);
    let v = verifier(&root).with_max_chain_len(3);
    assert_eq!(v.max_chain_len(), 3);
    let shown = format!("{v:?}");
    assert!(
        shown.starts_with("ChainVerifier {") && shown.contains("max_chain_len: 3"),
        "{shown}"
    );
    let long: Vec<_> = std::iter::repeat_n(leaf.der.clone(), 4).collect();
    assert_eq!(
        v.verify(&long, now()).unwrap_err(),
        VerifyError::ChainTooLong { len: 4, max: 3 }
    );
    assert_eq!(code(&v, &[&leaf]), "OK");
    assert_eq!(v.verify(&[], now()).unwrap_err().code(), "NO_CERTIFICATE");
    let err = v
        .verify(&[CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01])], now())
        .unwrap_err();
    assert_eq!(err.code(), "MALFORMED_CERTIFICATE");
    let err = v
        .verify(&[leaf.der.clone(), CertificateDer::from(vec![0x01])], now())
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::Malformed { index: 1, .. }),
        "{err:?}"
    );
    // The parser's reason is the source; the message names the position.
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
}

#[test]
fn trust_anchor_loading_errors_are_clear() {
    let root = Authority::root("Root J");
    let leaf = root.issue(&Leaf::client("not a ca"));
    let err = TrustAnchors::from_pem(leaf.pem().as_bytes()).unwrap_err();
    assert!(matches!(err, TrustConfigError::NotCa { index: 0, .. }));
    assert!(err.to_string().contains("CN=not a ca"), "{err}");
    assert!(err.to_string().contains("fingerprint"), "{err}");

    // A certificate that does not parse: the message names it, the parser's reason is the
    // source.
    let err = TrustAnchors::from_der([CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01])])
        .unwrap_err();
    assert!(
        matches!(err, TrustConfigError::Malformed { index: 0, .. }),
        "{err:?}"
    );
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");

    let err = TrustAnchors::from_pem(b"hello").unwrap_err();
    assert!(matches!(err, TrustConfigError::NoCertificates), "{err:?}");
    let err = TrustAnchors::from_pem(leaf.key_pem().as_bytes()).unwrap_err();
    assert!(matches!(err, TrustConfigError::NoCertificates), "{err:?}");

    let two = format!(
        "{}{}",
        root.cert.pem(),
        Authority::root("Root K").cert.pem()
    );
    let anchors = TrustAnchors::from_pem(two.as_bytes()).unwrap();
    assert_eq!(anchors.len(), 2);
    assert!(!anchors.is_empty());
    assert_eq!(anchors.subjects().count(), 2);
    // DER works too.
    assert_eq!(TrustAnchors::from_pem(&root.cert.der).unwrap().len(), 1);
}

#[test]
fn verifier_is_send_sync_and_cheap_to_share() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<ChainVerifier>();
    assert_send_sync::<ClientCertificate>();
}

fn at(secs: u64) -> rustls_pki_types::UnixTime {
    rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
}

fn outcome(v: &ChainVerifier, chain: &[CertificateDer<'_>], secs: u64) -> &'static str {
    match v.verify(chain, at(secs)) {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

#[test]
fn a_cached_result_holds_only_inside_every_validity_window() {
    let root = Authority::root("Cache Root");
    let mut leaf = Leaf::client("short-lived");
    leaf.not_before = NOW_SECS as i64 - 10;
    leaf.not_after = NOW_SECS as i64 + 100;
    let leaf = root.issue(&leaf);
    let v = verifier(&root);
    let c = chain(&[&leaf]);
    assert!(!v.verify(&c, at(NOW_SECS)).unwrap().reused());
    assert_eq!(v.cache_stats().verifications, 1);
    assert!(v.verify(&c, at(NOW_SECS)).unwrap().reused());
    for secs in [NOW_SECS + 1, NOW_SECS + 100, NOW_SECS - 10] {
        assert_eq!(outcome(&v, &c, secs), "OK", "at {secs}");
    }
    let s = v.cache_stats();
    assert_eq!((s.verifications, s.hits, s.entries), (1, 4, 1));
    // Outside the window the cache does not answer: the full verification does.
    assert_eq!(outcome(&v, &c, NOW_SECS + 101), "CERT_HAS_EXPIRED");
    assert_eq!(outcome(&v, &c, NOW_SECS - 11), "CERT_NOT_YET_VALID");
    assert_eq!(v.cache_stats().verifications, 3);
    // An intermediate's window counts too.
    let inter = root.intermediate("Cache Intermediate");
    let under = inter.issue(&Leaf::client("under"));
    let v = verifier(&root);
    let c = chain(&[&under, &inter.cert]);
    let inter_end = ClientCertificate::from_der(&inter.cert.der)
        .unwrap()
        .not_after()
        .unix_seconds() as u64;
    let leaf_end = ClientCertificate::from_der(&under.der)
        .unwrap()
        .not_after()
        .unix_seconds() as u64;
    assert_eq!(outcome(&v, &c, NOW_SECS), "OK");
    let end = inter_end.min(leaf_end);
    assert_eq!(outcome(&v, &c, end), "OK");
    assert_eq!(outcome(&v, &c, end + 1), "CERT_HAS_EXPIRED");
}

#[test]
fn new_anchors_or_crls_never_see_old_results_and_failures_are_not_kept() {
    let root = Authority::root("Cache Root 2");
    let leaf = root.issue(&Leaf::client("revoked-later"));
    let c = chain(&[&leaf]);
    let v = verifier(&root);
    assert_eq!(outcome(&v, &c, NOW_SECS), "OK");
    // A clone shares the results; any reconfiguration starts afresh.
    let clone = v.clone();
    assert_eq!(outcome(&clone, &c, NOW_SECS), "OK");
    assert_eq!(v.cache_stats().hits, 1);
    let with_crl = v.clone().with_crls([root.crl(&[&leaf])]).unwrap();
    assert_eq!(outcome(&with_crl, &c, NOW_SECS), "CERT_REVOKED");
    assert_eq!(with_crl.cache_stats().entries, 0, "failures are not kept");
    assert_eq!(outcome(&with_crl, &c, NOW_SECS), "CERT_REVOKED");
    assert_eq!(with_crl.cache_stats().verifications, 2);
    let other = Authority::root("Cache Other Root");
    let v_other = verifier(&other);
    assert_eq!(
        outcome(&v_other, &c, NOW_SECS),
        "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    );
    // A CRL's nextUpdate ends the result's window.
    let next = NOW_SECS as i64 + 50;
    let fresh = verifier(&root)
        .with_crls([root.crl_until(&[], next)])
        .unwrap();
    assert_eq!(outcome(&fresh, &c, NOW_SECS), "OK");
    assert_eq!(outcome(&fresh, &c, NOW_SECS + 49), "OK");
    assert_eq!(fresh.cache_stats().hits, 1);
    assert_eq!(outcome(&fresh, &c, NOW_SECS + 50), "CRL_HAS_EXPIRED");
    // Without the expiry enforced, the CRL does not bound it.
    let lax = verifier(&root)
        .with_crls([root.crl_until(&[], next)])
        .unwrap()
        .with_crl_expiry_enforced(false);
    assert_eq!(outcome(&lax, &c, NOW_SECS + 50), "OK");
}

#[test]
fn different_chains_with_the_same_leaf_are_different_entries() {
    let root = Authority::root("Cache Root 3");
    let inter = root.intermediate("Cache Inter 3");
    let stranger = Authority::root("Stranger").intermediate("Cache Inter 3");
    let leaf = inter.issue(&Leaf::client("same-leaf"));
    let v = verifier(&root);
    assert_eq!(outcome(&v, &chain(&[&leaf, &inter.cert]), NOW_SECS), "OK");
    assert_eq!(
        outcome(&v, &chain(&[&leaf, &inter.cert, &root.cert]), NOW_SECS),
        "OK"
    );
    assert_eq!(v.cache_stats().entries, 2);
    // The same leaf with an intermediate of the same name but another key is not answered
    // from the entries above.
    assert_ne!(
        outcome(&v, &chain(&[&leaf, &stranger.cert]), NOW_SECS),
        "OK"
    );
    assert_eq!(v.cache_stats().verifications, 3);
    // A bounded cache, and one that keeps nothing.
    let small = verifier(&root).with_cache_entries(1);
    assert_eq!(
        outcome(&small, &chain(&[&leaf, &inter.cert]), NOW_SECS),
        "OK"
    );
    assert_eq!(
        outcome(&small, &chain(&[&leaf, &inter.cert, &root.cert]), NOW_SECS),
        "OK"
    );
    assert_eq!(small.cache_stats().entries, 1);
    let none = verifier(&root).with_cache_entries(0);
    assert_eq!(
        outcome(&none, &chain(&[&leaf, &inter.cert]), NOW_SECS),
        "OK"
    );
    assert_eq!(
        outcome(&none, &chain(&[&leaf, &inter.cert]), NOW_SECS),
        "OK"
    );
    assert_eq!(none.cache_stats().verifications, 2);
}

/// A client certificate signs the handshake: a key usage without digitalSignature is not
/// for client authentication (OpenSSL and Node say INVALID_PURPOSE too).
#[test]
fn key_usage_must_allow_signing() {
    let root = Authority::root("Root KU");
    let v = verifier(&root);
    for (usages, want) in [
        (vec![KeyUsagePurpose::KeyEncipherment], "INVALID_PURPOSE"),
        (vec![KeyUsagePurpose::ContentCommitment], "INVALID_PURPOSE"),
        (
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            "OK",
        ),
        (vec![], "OK"),
    ] {
        let mut leaf = Leaf::client("ku");
        leaf.key_usages = usages.clone();
        assert_eq!(code(&v, &[&root.issue(&leaf)]), want, "{usages:?}");
    }
}

/// A leaf that issued another leaf is not a CA: OpenSSL's INVALID_CA, not CERT_REJECTED.
#[test]
fn a_leaf_issued_by_a_leaf_is_invalid_ca() {
    let root = Authority::root("Root IC");
    let v = verifier(&root);
    let not_a_ca = Authority {
        cert: root.issue(&Leaf::client("not a ca")),
    };
    let child = not_a_ca.issue(&Leaf::client("child"));
    let err = v
        .verify(&chain(&[&child, &not_a_ca.cert]), now())
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_CA", "{err:?}");
    assert!(err.to_string().contains("not a CA"), "{err}");
}

/// An extension OpenSSL holds invalid (here an undecodable subject key identifier, and a
/// CRL distribution point with only reasons) fails verification wherever it sits.
#[test]
fn an_invalid_extension_anywhere_on_the_path_is_invalid_extension() {
    let root = Authority::root("Root IE");
    let v = verifier(&root);
    let root_cert = ClientCertificate::from_der(&root.cert.der).unwrap();
    let ca_key = certauth_testkit::key(KeyKind::P256);
    let leaf_key = certauth_testkit::key(KeyKind::P256);
    let ca_name = der::simple_name(&[("CN", "Crafted CA")]);
    let intermediate = |extra: Option<(&str, Vec<u8>)>| {
        let mut c = Crafted::new(ca_name.clone());
        c.issuer = root_cert.subject().raw().to_vec();
        c.extensions.push((
            "2.5.29.19".into(),
            true,
            der::seq(&[der::tlv(0x01, &[0xFF])]),
        ));
        c.extensions
            .extend(extra.map(|(o, v)| (o.to_owned(), false, v)));
        CertificateDer::from(c.sign(&ca_key, &root.cert.key))
    };
    let leaf = |extra: Option<(&str, Vec<u8>)>| {
        let mut c = Crafted::new(der::simple_name(&[("CN", "crafted leaf")]));
        c.issuer = ca_name.clone();
        c.extensions
            .extend(extra.map(|(o, v)| (o.to_owned(), false, v)));
        CertificateDer::from(c.sign(&leaf_key, &ca_key))
    };
    let bad_ski = ("2.5.29.14", der::tlv(0x05, &[]));
    let reasons_only = (
        "2.5.29.31",
        der::seq(&[der::seq(&[der::tlv(0x81, &[0x06, 0x40])])]),
    );
    assert!(v.verify(&[leaf(None), intermediate(None)], now()).is_ok());
    let err = v
        .verify(&[leaf(Some(bad_ski)), intermediate(None)], now())
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::InvalidExtension {
            index: 0,
            oid: "2.5.29.14".into()
        }
    );
    assert_eq!(err.code(), "INVALID_EXTENSION");
    let bad_intermediate = intermediate(Some(reasons_only));
    let err = v
        .verify(&[leaf(None), bad_intermediate.clone()], now())
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::InvalidExtension {
            index: 1,
            oid: "2.5.29.31".into()
        }
    );
    // The same intermediate configured rather than presented (webpki's
    // client_auth_revocation/invalid_dp_chain, which OpenSSL cannot build either).
    let configured = verifier(&root)
        .with_intermediates([bad_intermediate.clone()])
        .unwrap();
    assert_eq!(
        configured.verify(&[leaf(None)], now()).unwrap_err().code(),
        "INVALID_EXTENSION"
    );
    // A presented certificate off the path is not judged, as in OpenSSL.
    assert!(
        v.verify(&[leaf(None), intermediate(None), bad_intermediate], now())
            .is_ok()
    );
}

/// A notBefore before 1970 is a past date, satisfied now, as OpenSSL reads it (`openssl
/// verify` says OK), though rustls-webpki cannot represent it: in the leaf and in an
/// intermediate, as UTCTime and as GeneralizedTime. The signature is still checked over the
/// original bytes, and a notAfter before 1970 has expired.
#[test]
fn a_not_before_before_1970_is_in_the_past() {
    let root = Authority::root("Root 1969");
    let v = verifier(&root);
    let root_cert = ClientCertificate::from_der(&root.cert.der).unwrap();
    let key = certauth_testkit::key(KeyKind::P256);
    let mut c = Crafted::new(der::simple_name(&[("CN", "old")]));
    c.issuer = root_cert.subject().raw().to_vec();
    c.not_before = der::generalized_time("19691231000000Z");
    let old = CertificateDer::from(c.sign(&key, &root.cert.key));
    let verified = v.verify(std::slice::from_ref(&old), now()).unwrap();
    assert_eq!(verified.leaf().der(), old.as_ref());
    assert_eq!(verified.leaf().not_before().unix_seconds(), -86_400);
    // The same certificate with one byte of its subject changed: the signature fails.
    let mut tampered = old.to_vec();
    let at = tampered.windows(3).position(|w| w == b"old").unwrap();
    tampered[at] = b'O';
    assert_eq!(
        v.verify(&[CertificateDer::from(tampered)], now())
            .unwrap_err()
            .code(),
        "CERT_SIGNATURE_FAILURE"
    );

    // An intermediate from 1969 (UTCTime), presented and configured, under a root.
    let inter_key = certauth_testkit::key(KeyKind::P256);
    let mut i = Crafted::new(der::simple_name(&[("CN", "Intermediate 1969")]));
    i.issuer = root_cert.subject().raw().to_vec();
    i.not_before = der::tlv(0x17, b"690101000000Z");
    i.extensions.push((
        "2.5.29.19".into(),
        true,
        der::seq(&[der::tlv(0x01, &[0xFF])]),
    ));
    let inter = CertificateDer::from(i.sign(&inter_key, &root.cert.key));
    let mut l = Crafted::new(der::simple_name(&[("CN", "under 1969")]));
    l.issuer = der::simple_name(&[("CN", "Intermediate 1969")]);
    let leaf = CertificateDer::from(l.sign(&key, &inter_key));
    let verified = v.verify(&[leaf.clone(), inter.clone()], now()).unwrap();
    assert_eq!(verified.intermediates()[0].der(), inter.as_ref());
    let configured = verifier(&root).with_intermediates([inter]).unwrap();
    assert!(configured.verify(&[leaf], now()).is_ok());

    // notAfter before 1970: expired.
    let mut c = Crafted::new(der::simple_name(&[("CN", "older")]));
    c.issuer = root_cert.subject().raw().to_vec();
    c.not_before = der::generalized_time("19600101000000Z");
    c.not_after = der::generalized_time("19691231000000Z");
    let older = CertificateDer::from(c.sign(&key, &root.cert.key));
    let err = v.verify(&[older], now()).unwrap_err();
    assert_eq!(err.code(), "CERT_HAS_EXPIRED", "{err:?}");
}

/// A self-signed CA made DER by DER: cA set, critical, plus `extra` extensions.
fn crafted_root(
    cn: &str,
    extra: Vec<(String, bool, Vec<u8>)>,
) -> (CertificateDer<'static>, rcgen::KeyPair) {
    let key = certauth_testkit::key(KeyKind::P256);
    let mut c = Crafted::new(der::simple_name(&[("CN", cn)]));
    c.extensions.push((
        "2.5.29.19".into(),
        true,
        der::seq(&[der::tlv(0x01, &[0xFF])]),
    ));
    c.extensions.extend(extra);
    (CertificateDer::from(c.sign(&key, &key)), key)
}

/// The rules OpenSSL applies to a root and webpki does not: each refuses the bundle with
/// the rule and its clause, or (for a large bundle) leaves the root out.
#[test]
fn trust_anchors_keep_the_rules_of_a_ca_certificate() {
    type Extensions = Vec<(String, bool, Vec<u8>)>;
    let rows: Vec<(&str, Extensions, Option<&[u8]>, &str)> = vec![
        ("good", vec![], None, ""),
        (
            "unknown critical",
            vec![("1.3.6.1.4.1.55738.666.1".into(), true, der::tlv(0x05, &[]))],
            None,
            "unknown critical extension 1.3.6.1.4.1.55738.666.1",
        ),
        (
            "critical aki",
            vec![(
                "2.5.29.35".into(),
                true,
                der::seq(&[der::tlv(0x80, &[1, 2])]),
            )],
            None,
            "authority key identifier is critical (RFC 5280 4.2.1.1",
        ),
        (
            "critical ski",
            vec![("2.5.29.14".into(), true, der::tlv(0x04, &[1, 2]))],
            None,
            "subject key identifier is critical (RFC 5280 4.2.1.2",
        ),
        (
            "no keyCertSign",
            vec![("2.5.29.15".into(), true, der::tlv(0x03, &[0x07, 0x80]))],
            None,
            "lacks keyCertSign",
        ),
        (
            "empty subject",
            vec![],
            Some(&[0x30, 0x00]),
            "subject is empty",
        ),
        (
            "invalid aki",
            vec![("2.5.29.35".into(), false, der::tlv(0x05, &[]))],
            None,
            "2.5.29.35 does not decode",
        ),
    ];
    let good = crafted_root("good", vec![]).0;
    for (name, extra, subject, rule) in rows {
        let der = match subject {
            Some(empty) => {
                let key = certauth_testkit::key(KeyKind::P256);
                let mut c = Crafted::new(empty.to_vec());
                c.extensions.push((
                    "2.5.29.19".into(),
                    true,
                    der::seq(&[der::tlv(0x01, &[0xFF])]),
                ));
                CertificateDer::from(c.sign(&key, &key))
            }
            None => crafted_root(name, extra).0,
        };
        let strict = TrustAnchors::from_der([good.clone(), der.clone()]);
        let (lenient, skipped) =
            TrustAnchors::from_der_skipping_bad([good.clone(), der.clone()]).unwrap();
        if rule.is_empty() {
            assert_eq!(strict.unwrap().len(), 2, "{name}");
            assert!(skipped.is_empty());
            continue;
        }
        let err = strict.unwrap_err();
        assert!(
            matches!(err, TrustConfigError::BadAnchor { index: 1, .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(rule), "{name}: {err}");
        assert!(err.to_string().contains("--skip-bad-roots"), "{err}");
        assert_eq!(lenient.len(), 1, "{name}");
        assert_eq!(skipped.len(), 1, "{name}");
        // Alone, nothing is left: the rule is the error.
        assert!(matches!(
            TrustAnchors::from_der_skipping_bad([der]).unwrap_err(),
            TrustConfigError::BadAnchor { .. }
        ));
    }
}

/// webpki does not look at an anchor's validity; OpenSSL does, and so does certauth, naming
/// the anchor.
#[test]
fn an_anchor_outside_its_validity_refuses_its_chains() {
    let key = certauth_testkit::key(KeyKind::P256);
    let leaf_key = certauth_testkit::key(KeyKind::P256);
    let name = der::simple_name(&[("CN", "Old Root")]);
    let root_at = |not_before: &str, not_after: &str| {
        let mut c = Crafted::new(name.clone());
        c.not_before = der::utc_time(not_before);
        c.not_after = der::utc_time(not_after);
        c.extensions.push((
            "2.5.29.19".into(),
            true,
            der::seq(&[der::tlv(0x01, &[0xFF])]),
        ));
        CertificateDer::from(c.sign(&key, &key))
    };
    let mut l = Crafted::new(der::simple_name(&[("CN", "under old root")]));
    l.issuer = name.clone();
    let leaf = CertificateDer::from(l.sign(&leaf_key, &key));
    for (root, want) in [
        (root_at("200101000000Z", "350101000000Z"), "OK"),
        (
            root_at("200101000000Z", "260101000000Z"),
            "CERT_HAS_EXPIRED",
        ),
        (
            root_at("270101000000Z", "350101000000Z"),
            "CERT_NOT_YET_VALID",
        ),
    ] {
        let anchors = TrustAnchors::from_der([root]).unwrap();
        let v = ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS);
        match v.verify(std::slice::from_ref(&leaf), now()) {
            Ok(_) => assert_eq!(want, "OK"),
            Err(e) => {
                assert_eq!(e.code(), want, "{e:?}");
                assert!(e.to_string().contains("trust anchor CN=Old Root"), "{e}");
            }
        }
    }
}

/// A CRL is checked before it is believed, as OpenSSL does: a critical extension a CRL may
/// not mark critical, or an issuer whose key usage lacks cRLSign, refuses it at load.
#[test]
fn crls_that_openssl_would_not_believe_are_refused_at_load() {
    use certauth_testkit::CraftedCrl;
    let root = Authority::root("Root CRL");
    let name = ClientCertificate::from_der(&root.cert.der)
        .unwrap()
        .subject()
        .raw()
        .to_vec();
    let load = |crl: CraftedCrl, anchors: TrustAnchors| {
        ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS)
            .with_crls([crl.sign(&root.cert.key)])
    };
    let anchors = || TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    assert!(load(CraftedCrl::new(name.clone()), anchors()).is_ok());
    // A critical CRLNumber (RFC 5280 5.2.3), and an unknown critical extension.
    for (oid, value) in [
        ("2.5.29.20", der::tlv(0x02, &[1])),
        ("1.3.6.1.4.1.55738.666.2", der::tlv(0x05, &[])),
    ] {
        let mut crl = CraftedCrl::new(name.clone());
        crl.extensions = vec![(oid.into(), true, value)];
        let err = load(crl, anchors()).unwrap_err();
        assert!(
            matches!(
                err,
                TrustConfigError::BadCrl {
                    code: "UNHANDLED_CRITICAL_CRL_EXTENSION",
                    ..
                }
            ),
            "{oid}: {err:?}"
        );
        assert!(err.to_string().contains(oid), "{err}");
    }
    // A critical issuingDistributionPoint is fine (webpki reads it).
    let mut idp = CraftedCrl::new(name.clone());
    idp.extensions.push((
        "2.5.29.28".into(),
        true,
        der::seq(&[der::tlv(
            0xA0,
            &der::tlv(0xA0, &der::tlv(0x86, b"http://crl.example/root.crl")),
        )]),
    ));
    let loaded = load(idp, anchors());
    assert!(loaded.is_ok(), "{:?}", loaded.err());
    // An anchor whose key usage lacks cRLSign cannot vouch for a CRL.
    let key = certauth_testkit::key(KeyKind::P256);
    let mut c = Crafted::new(der::simple_name(&[("CN", "No CRL Sign")]));
    c.extensions.push((
        "2.5.29.19".into(),
        true,
        der::seq(&[der::tlv(0x01, &[0xFF])]),
    ));
    c.extensions
        .push(("2.5.29.15".into(), true, der::tlv(0x03, &[0x02, 0x04])));
    let no_crl_sign = CertificateDer::from(c.sign(&key, &key));
    let lacking = TrustAnchors::from_der([no_crl_sign]).unwrap();
    let crl = CraftedCrl::new(der::simple_name(&[("CN", "No CRL Sign")])).sign(&key);
    let err = ChainVerifier::new(lacking, webpki::ALL_VERIFICATION_ALGS)
        .with_crls([crl])
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrustConfigError::BadCrl {
                code: "KEYUSAGE_NO_CRL_SIGN",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("CN=No CRL Sign"), "{err}");

    // A presented intermediate lacking cRLSign, whose CRL covers the leaf: refused when the
    // chain is verified, with OpenSSL's name.
    let ica_key = certauth_testkit::key(KeyKind::P256);
    let leaf_key = certauth_testkit::key(KeyKind::P256);
    let ica_name = der::simple_name(&[("CN", "ICA No CRL Sign")]);
    let mut ica = Crafted::new(ica_name.clone());
    ica.issuer = name.clone();
    ica.extensions.push((
        "2.5.29.19".into(),
        true,
        der::seq(&[der::tlv(0x01, &[0xFF])]),
    ));
    ica.extensions
        .push(("2.5.29.15".into(), true, der::tlv(0x03, &[0x02, 0x04])));
    let ica = CertificateDer::from(ica.sign(&ica_key, &root.cert.key));
    let mut leaf = Crafted::new(der::simple_name(&[("CN", "under ica")]));
    leaf.issuer = ica_name.clone();
    let leaf = CertificateDer::from(leaf.sign(&leaf_key, &ica_key));
    let v = ChainVerifier::new(anchors(), webpki::ALL_VERIFICATION_ALGS)
        .with_crls([CraftedCrl::new(ica_name).sign(&ica_key)])
        .unwrap();
    assert_eq!(
        v.verify(&[leaf, ica], now()).unwrap_err().code(),
        "KEYUSAGE_NO_CRL_SIGN"
    );
}

/// A CA key rollover below a path-length limit: root -> CA (pathLen 0) -> the same CA under
/// a new key (self-issued) -> leaf. RFC 5280 does not count the self-issued certificate
/// against pathLenConstraint, so the path is valid; rustls-webpki counts it, and the code
/// names the cause instead of blaming a signature or the limit.
#[test]
fn a_self_issued_intermediate_is_named() {
    let root = Authority::root("Root Rolling");
    let root_name = ClientCertificate::from_der(&root.cert.der)
        .unwrap()
        .subject()
        .raw()
        .to_vec();
    let (old_key, new_key, leaf_key) = (
        certauth_testkit::key(KeyKind::P256),
        certauth_testkit::key(KeyKind::P256),
        certauth_testkit::key(KeyKind::P256),
    );
    let name = der::simple_name(&[("CN", "Rolling CA")]);
    let ca = |issuer: &[u8], key: &rcgen::KeyPair, signer: &rcgen::KeyPair| {
        let mut c = Crafted::new(name.clone());
        c.issuer = issuer.to_vec();
        c.extensions.push((
            "2.5.29.19".into(),
            true,
            der::seq(&[der::tlv(0x01, &[0xFF]), der::tlv(0x02, &[0])]),
        ));
        CertificateDer::from(c.sign(key, signer))
    };
    let old = ca(&root_name, &old_key, &root.cert.key);
    let rollover = ca(&name, &new_key, &old_key);
    let mut l = Crafted::new(der::simple_name(&[("CN", "under the new key")]));
    l.issuer = name.clone();
    let leaf = CertificateDer::from(l.sign(&leaf_key, &new_key));
    let v = verifier(&root);
    let err = v.verify(&[leaf, rollover, old], now()).unwrap_err();
    assert_eq!(
        err,
        VerifyError::SelfIssuedIntermediate {
            subject: "CN=Rolling CA".into()
        }
    );
    assert_eq!(err.code(), "SELF_ISSUED_INTERMEDIATE");
    assert!(err.to_string().contains("key rollover"), "{err}");
}

/// Two anchors with one name and two keys (a root re-keyed): the chain leads to the second,
/// and its own validity is the one that counts.
#[test]
fn the_anchor_a_path_ends_at_is_the_one_judged() {
    let name = der::simple_name(&[("CN", "Twin Root")]);
    let root = |key: &rcgen::KeyPair, not_after: &str| {
        let mut c = Crafted::new(name.clone());
        c.not_after = der::utc_time(not_after);
        c.extensions.push((
            "2.5.29.19".into(),
            true,
            der::seq(&[der::tlv(0x01, &[0xFF])]),
        ));
        CertificateDer::from(c.sign(key, key))
    };
    let (k1, k2, leaf_key) = (
        certauth_testkit::key(KeyKind::P256),
        certauth_testkit::key(KeyKind::P256),
        certauth_testkit::key(KeyKind::P256),
    );
    let valid = root(&k1, "350101000000Z");
    let expired = root(&k2, "260101000000Z");
    let mut l = Crafted::new(der::simple_name(&[("CN", "under the second key")]));
    l.issuer = name.clone();
    let leaf = CertificateDer::from(l.sign(&leaf_key, &k2));
    let v = ChainVerifier::new(
        TrustAnchors::from_der([valid, expired]).unwrap(),
        webpki::ALL_VERIFICATION_ALGS,
    );
    let err = v.verify(&[leaf], now()).unwrap_err();
    assert_eq!(err.code(), "CERT_HAS_EXPIRED", "{err:?}");
}

/// Deeper than rustls-webpki builds (six intermediates) but within the chain cap: refused as
/// too long, with the presented length.
#[test]
fn a_path_deeper_than_webpki_builds_is_too_long() {
    let root = Authority::root("Deep Root");
    let mut cas = vec![root.intermediate("Deep 0")];
    for i in 1..7 {
        let next = cas[i - 1].intermediate(&format!("Deep {i}"));
        cas.push(next);
    }
    let leaf = cas[6].issue(&Leaf::client("deep"));
    let mut chain = vec![leaf.der.clone()];
    chain.extend(cas.iter().rev().map(|a| a.cert.der.clone()));
    assert_eq!(chain.len(), 8);
    let err = verifier(&root).verify(&chain, now()).unwrap_err();
    assert_eq!(err, VerifyError::ChainTooLong { len: 8, max: 8 }, "{err}");
    // One intermediate fewer is a path webpki builds.
    let short = cas[5].issue(&Leaf::client("deep"));
    let mut chain = vec![short.der.clone()];
    chain.extend(cas[..6].iter().rev().map(|a| a.cert.der.clone()));
    assert!(verifier(&root).verify(&chain, now()).is_ok());
}

/// Issue 25, finding 11: a parsed leaf that is not the chain's first certificate must not
/// have its verdict cached under the chain's bytes.
#[test]
fn verify_parsed_cannot_cache_one_leaf_under_another_chain() {
    let root = Authority::root("Root Parsed");
    let good = root.issue(&Leaf::client("good"));
    let stranger = Authority::root("Stranger Root").issue(&Leaf::client("stranger"));
    let v = verifier(&root);
    let parsed_good = ClientCertificate::from_der(&good.der).unwrap();
    let got = v.verify_parsed(parsed_good, &chain(&[&stranger]), now());
    assert_eq!(
        got.map(|c| c.leaf().der().to_vec()).map_err(|e| e.code()),
        Err("UNABLE_TO_VERIFY_LEAF_SIGNATURE")
    );
    assert_eq!(code(&v, &[&stranger]), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    // The matching pair still verifies (and is cached as itself).
    let parsed_good = ClientCertificate::from_der(&good.der).unwrap();
    assert!(
        v.verify_parsed(parsed_good, &chain(&[&good]), now())
            .is_ok()
    );
    assert_eq!(code(&v, &[&good]), "OK");
}

/// Attack review of finding 11: `verify_parsed` verifies the leaf as the caller parsed it,
/// with the caller's certificate limits, and caches the result under the chain: a verifier
/// whose own limits refuse the leaf then accepts it from `verify` (a cache hit).
#[test]
fn verify_parsed_does_not_lend_looser_limits_to_verify() {
    let root = Authority::root("Root Limits");
    let mut many = Leaf::client("many-sans");
    many.sans = (0..8)
        .map(|i| rcgen::SanType::DnsName(format!("h{i}.example").try_into().unwrap()))
        .collect();
    let leaf = root.issue(&many);
    let strict = verifier(&root)
        .with_cert_limits(certauth_core::CertLimits::DEFAULT.with_max_san_entries(2));
    assert_eq!(code(&strict, &[&leaf]), "CERT_TOO_LARGE", "fresh: refused");
    let strict = verifier(&root)
        .with_cert_limits(certauth_core::CertLimits::DEFAULT.with_max_san_entries(2));
    let loose = ClientCertificate::from_der(&leaf.der).unwrap();
    let parsed = strict.verify_parsed(loose, &chain(&[&leaf]), now());
    assert!(
        parsed.is_err(),
        "verify_parsed accepted a leaf over the verifier's limits"
    );
    assert_eq!(
        code(&strict, &[&leaf]),
        "CERT_TOO_LARGE",
        "after verify_parsed"
    );
}

// Issue 29: CRLs revoke what they list.

fn anchors_of(cas: &[&Authority]) -> TrustAnchors {
    TrustAnchors::from_der(cas.iter().map(|a| a.cert.der.clone())).unwrap()
}

fn with_crls(cas: &[&Authority], crls: &[&CertificateRevocationListDer<'static>]) -> ChainVerifier {
    ChainVerifier::new(anchors_of(cas), webpki::ALL_VERIFICATION_ALGS)
        .with_crls(crls.iter().map(|c| (*c).clone()))
        .unwrap()
}

fn subject_of(a: &Authority) -> Vec<u8> {
    ClientCertificate::from_der(&a.cert.der)
        .unwrap()
        .subject()
        .raw()
        .to_vec()
}

/// An intermediate in the trust set whose issuer is there too is revocation-checked against
/// its issuer's CRL (webpki ends the path at it and would never look), as OpenSSL's
/// `-crl_check_all` does; only the end entity when the depth says so.
#[test]
fn a_revoked_intermediate_in_the_trust_set_is_revoked() {
    let root = Authority::root("Root 29-1");
    let inter = root.intermediate("Intermediate 29-1");
    let leaf = inter.issue(&Leaf::client("leaf"));
    let revoking = root.crl(&[&inter.cert]);
    let clean = root.crl(&[]);
    let inter_crl = inter.crl(&[]);
    let v = with_crls(&[&root, &inter], &[&revoking, &inter_crl]);
    assert_eq!(code(&v, &[&leaf]), "CERT_REVOKED");
    assert_eq!(code(&v, &[&leaf, &inter.cert]), "CERT_REVOKED");
    let v = with_crls(&[&inter, &root], &[&inter_crl, &revoking]);
    assert_eq!(code(&v, &[&leaf]), "CERT_REVOKED");
    let ee_only = with_crls(&[&root, &inter], &[&revoking, &inter_crl])
        .with_revocation_depth(RevocationDepth::EndEntity);
    assert_eq!(code(&ee_only, &[&leaf]), "OK");
    let v = with_crls(&[&root, &inter], &[&clean, &inter_crl])
        .with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&v, &[&leaf]), "OK");
    // Denying unknown status asks for the root's CRL too, now that the intermediate is judged.
    let v =
        with_crls(&[&root, &inter], &[&inter_crl]).with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&v, &[&leaf]), "UNABLE_TO_GET_CRL");
    // The intermediate alone in the trust set stays an anchor: nothing above it to ask.
    let v = with_crls(&[&inter], &[&inter_crl]).with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&v, &[&leaf]), "OK");
}

/// The newest CRL covering a certificate decides (cRLNumber, then thisUpdate), whatever the
/// order: an older one listed first does not un-revoke, an expired older one does not
/// refuse everyone.
#[test]
fn the_newest_crl_decides_whatever_the_order() {
    let root = Authority::root("Root 29-2");
    let bad = root.issue(&Leaf::client("bad"));
    let good = root.issue(&Leaf::client("good"));
    let t = NOW_SECS as i64;
    let year = 365 * 86_400;
    let old = root.crl_numbered(&[], 1, t - 2 * year, t + year);
    let new = root.crl_numbered(&[&bad], 2, t - year, t + year);
    for order in [[&old, &new], [&new, &old]] {
        let v = with_crls(&[&root], &order);
        assert_eq!(code(&v, &[&bad]), "CERT_REVOKED");
        assert_eq!(code(&v, &[&good]), "OK");
    }
    let expired = root.crl_numbered(&[], 1, t - 2 * year, t - year);
    for order in [[&expired, &new], [&new, &expired]] {
        let v = with_crls(&[&root], &order);
        assert_eq!(code(&v, &[&good]), "OK");
        assert_eq!(code(&v, &[&bad]), "CERT_REVOKED");
        let lax = with_crls(&[&root], &order).with_crl_expiry_enforced(false);
        assert_eq!(code(&lax, &[&bad]), "CERT_REVOKED");
    }
    let v = with_crls(&[&root], &[&expired]);
    assert_eq!(code(&v, &[&good]), "CRL_HAS_EXPIRED");
    // A higher cRLNumber wins over a later thisUpdate; 256 is more than 255.
    let n255 = root.crl_numbered(&[], 255, t - 10, t + year);
    let n256 = root.crl_numbered(&[&bad], 256, t - year, t + year);
    assert_eq!(
        code(&with_crls(&[&root], &[&n255, &n256]), &[&bad]),
        "CERT_REVOKED"
    );
    // Equals (one cRLNumber, one thisUpdate): the first listed.
    let plain = root.crl_numbered(&[], 5, t - year, t + year);
    let listing = root.crl_numbered(&[&bad], 5, t - year, t + year);
    assert_eq!(
        code(&with_crls(&[&root], &[&plain, &listing]), &[&bad]),
        "OK"
    );
    assert_eq!(
        code(&with_crls(&[&root], &[&listing, &plain]), &[&bad]),
        "CERT_REVOKED"
    );
    // One cRLNumber: the later thisUpdate wins.
    let earlier = root.crl_numbered(&[], 7, t - year, t + year);
    let later = root.crl_numbered(&[&bad], 7, t - 10, t + year);
    assert_eq!(
        code(&with_crls(&[&root], &[&earlier, &later]), &[&bad]),
        "CERT_REVOKED"
    );
    assert_eq!(
        code(&with_crls(&[&root], &[&later, &earlier]), &[&bad]),
        "CERT_REVOKED"
    );
}

/// A CRL's issuer is matched as RFC 5280 7.1 compares names (string type, case, spaces),
/// and a CRL that names no configured CA is reported.
#[test]
fn crl_issuers_match_as_names_and_strays_are_reported() {
    use certauth_testkit::CraftedCrl;
    let root = Authority::root("Root 29-3");
    let bad = root.issue(&Leaf::client("bad"));
    let serial = ClientCertificate::from_der(&bad.der)
        .unwrap()
        .serial_bytes()
        .to_vec();
    let printable = der::name(&[
        &[der::atv(
            "2.5.4.3",
            der::string(der::PRINTABLE, "ROOT  29-3"),
        )],
        &[der::atv(
            "2.5.4.10",
            der::string(der::PRINTABLE, "certauth tests"),
        )],
    ]);
    assert_ne!(printable, subject_of(&root));
    let mut crl = CraftedCrl::new(printable);
    crl.revoked = vec![serial];
    let crl = crl.sign(&root.cert.key);
    let v = with_crls(&[&root], &[&crl]);
    assert_eq!(code(&v, &[&bad]), "CERT_REVOKED");
    assert!(v.crl_warnings().is_empty(), "{:?}", v.crl_warnings());

    let stranger = Authority::root("Stranger 29-3");
    let v = with_crls(&[&root], &[&stranger.crl(&[])]);
    assert_eq!(v.crl_warnings().len(), 1);
    assert!(
        v.crl_warnings()[0].contains("CN=Stranger 29-3"),
        "{:?}",
        v.crl_warnings()
    );
}

/// Two CAs of one name (a key rollover), each with its CRL: each CA's clients are judged by
/// its own CRL. A CRL of a configured CA's name that none of them signed is refused at
/// load; one naming a presented intermediate does not block the real one.
#[test]
fn same_name_cas_are_judged_by_their_own_crls() {
    use certauth_testkit::CraftedCrl;
    let old = Authority::root("Root 29-4");
    let new = Authority::root("Root 29-4");
    assert_eq!(subject_of(&old), subject_of(&new));
    let a = old.issue(&Leaf::client("a"));
    let b = new.issue(&Leaf::client("b"));
    let b_bad = new.issue(&Leaf::client("b-bad"));
    let old_crl = old.crl(&[]);
    let new_crl = new.crl(&[&b_bad]);
    for order in [[&old_crl, &new_crl], [&new_crl, &old_crl]] {
        let v = with_crls(&[&old, &new], &order).with_unknown_revocation(UnknownRevocation::Deny);
        assert_eq!(code(&v, &[&a]), "OK");
        assert_eq!(code(&v, &[&b]), "OK");
        assert_eq!(code(&v, &[&b_bad]), "CERT_REVOKED");
    }
    // A forgery in a configured CA's name: refused at load.
    let forger = Authority::root("Root 29-4");
    let forged = forger.crl(&[]);
    let err = ChainVerifier::new(anchors_of(&[&old, &new]), webpki::ALL_VERIFICATION_ALGS)
        .with_crls([forged, new_crl.clone()])
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrustConfigError::BadCrl {
                code: "CRL_SIGNATURE_FAILURE",
                index: 0,
                ..
            }
        ),
        "{err:?}"
    );
    // A forgery in a presented intermediate's name, listed first: the real CRL still rules.
    let root = Authority::root("Root 29-4b");
    let inter = root.intermediate("Intermediate 29-4b");
    let good = inter.issue(&Leaf::client("good"));
    let bad = inter.issue(&Leaf::client("bad"));
    let forged = CraftedCrl::new(subject_of(&inter)).sign(&forger.cert.key);
    let real = inter.crl(&[&bad]);
    let v = with_crls(&[&root], &[&forged, &real, &root.crl(&[])])
        .with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&v, &[&bad, &inter.cert]), "CERT_REVOKED");
    assert_eq!(code(&v, &[&good, &inter.cert]), "OK");
    let v = with_crls(&[&root], &[&forged, &root.crl(&[])])
        .with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&v, &[&good, &inter.cert]), "UNABLE_TO_GET_CRL");
}

/// A revoked serial that is not DER (−5 as `FF FB`) could never match: the CRL is refused.
#[test]
fn a_crl_with_a_non_der_serial_is_refused() {
    use certauth_testkit::CraftedCrl;
    let root = Authority::root("Root 29-5");
    let mut crl = CraftedCrl::new(subject_of(&root));
    crl.revoked = vec![vec![0x05], vec![0xFF, 0xFB]];
    let err = ChainVerifier::new(anchors_of(&[&root]), webpki::ALL_VERIFICATION_ALGS)
        .with_crls([crl.sign(&root.cert.key)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrustConfigError::BadCrl {
                code: "CRL_ENTRY_SERIAL_NOT_DER",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("FF:FB"), "{err}");
    crl.revoked = vec![vec![0x05], vec![0xFB]];
    assert!(
        ChainVerifier::new(anchors_of(&[&root]), webpki::ALL_VERIFICATION_ALGS)
            .with_crls([crl.sign(&root.cert.key)])
            .is_ok()
    );
}

/// A CRL's scope (issuingDistributionPoint) decides which certificates it speaks for, as
/// webpki judged it: the role it is limited to, and a distribution-point URI the
/// certificate names.
#[test]
fn a_crl_speaks_only_for_the_certificates_in_its_scope() {
    use certauth_testkit::CraftedCrl;
    let root = Authority::root("Root 29-scope");
    let issuer = subject_of(&root);
    let leaf_key = certauth_testkit::key(KeyKind::P256);
    let dp = |uri: &str, extra: Vec<Vec<u8>>| {
        let mut point = vec![der::tlv(
            0xA0,
            &der::tlv(0xA0, &der::tlv(0x86, uri.as_bytes())),
        )];
        point.extend(extra);
        (
            "2.5.29.31".to_string(),
            false,
            der::seq(&[der::seq(&point)]),
        )
    };
    let leaf = |serial: u8, dps: Option<(String, bool, Vec<u8>)>| {
        let mut c = Crafted::new(der::simple_name(&[("CN", "scoped")]));
        c.issuer = issuer.clone();
        c.serial = vec![serial];
        c.extensions.extend(dps);
        Issued::new(
            CertificateDer::from(c.sign(&leaf_key, &root.cert.key)),
            certauth_testkit::key(KeyKind::P256),
        )
    };
    // webpki refuses an issuingDistributionPoint without a fullName.
    let idp = |uri: &str, flags: &[u8]| {
        let mut parts = vec![der::tlv(
            0xA0,
            &der::tlv(0xA0, &der::tlv(0x86, uri.as_bytes())),
        )];
        for tag in flags {
            parts.push(der::tlv(*tag, &[0xFF]));
        }
        ("2.5.29.28".to_string(), true, der::seq(&parts))
    };
    let crl = |serial: u8, scope: (String, bool, Vec<u8>)| {
        let mut c = CraftedCrl::new(issuer.clone());
        c.revoked = vec![vec![serial]];
        c.extensions.push(scope);
        c.sign(&root.cert.key)
    };
    let judge = |cert: &Issued, crl: CertificateRevocationListDer<'static>| {
        let v = with_crls(&[&root], &[&crl]);
        let strict = with_crls(&[&root], &[&crl]).with_unknown_revocation(UnknownRevocation::Deny);
        (code(&v, &[cert]), code(&strict, &[cert]))
    };
    let a = "http://crl.example/a.crl";
    let b = "http://crl.example/b.crl";
    let revoked = ("CERT_REVOKED", "CERT_REVOKED");
    let outside = ("OK", "UNABLE_TO_GET_CRL");
    // The certificate's distribution point is the CRL's.
    assert_eq!(
        judge(&leaf(2, Some(dp(a, vec![]))), crl(2, idp(a, &[]))),
        revoked
    );
    assert_eq!(
        judge(&leaf(2, Some(dp(a, vec![]))), crl(2, idp(b, &[]))),
        outside
    );
    // The role flags narrow a matching distribution point.
    assert_eq!(
        judge(&leaf(2, Some(dp(a, vec![]))), crl(2, idp(a, &[0x81]))),
        revoked
    );
    assert_eq!(
        judge(&leaf(2, Some(dp(a, vec![]))), crl(2, idp(a, &[0x82]))),
        outside
    );
    // A distribution point for some reasons only, or another CRL issuer: never this CRL.
    let reasons = dp(a, vec![der::tlv(0x81, &[0x07, 0x80])]);
    assert_eq!(judge(&leaf(2, Some(reasons)), crl(2, idp(a, &[]))), outside);
    // Without distribution points, the role decides.
    assert_eq!(judge(&leaf(3, None), crl(3, idp(b, &[]))), revoked);
    assert_eq!(judge(&leaf(3, None), crl(3, idp(b, &[0x81]))), revoked);
    assert_eq!(judge(&leaf(3, None), crl(3, idp(b, &[0x82]))), outside);
    // An intermediate is a CA: a CA-only CRL speaks for it, a user-only one does not.
    let inter = root.intermediate("Intermediate 29-scope");
    let below = inter.issue(&Leaf::client("below"));
    let inter_serial = ClientCertificate::from_der(&inter.cert.der)
        .unwrap()
        .serial_bytes()
        .to_vec();
    for (flag, want) in [(0x82, "CERT_REVOKED"), (0x81, "OK")] {
        let mut c = CraftedCrl::new(issuer.clone());
        c.revoked = vec![inter_serial.clone()];
        c.extensions.push(idp(a, &[flag]));
        let v = with_crls(&[&root], &[&c.sign(&root.cert.key)]);
        assert_eq!(code(&v, &[&below, &inter.cert]), want, "flag {flag:#x}");
    }
}

/// The CA certificates of a trust set chain up by signature: an anchor of its issuer's name
/// but signed by another key is not judged by that CA's CRL.
#[test]
fn a_trust_set_intermediate_is_judged_by_the_ca_that_signed_it() {
    let root = Authority::root("Root 29-1b");
    let twin = Authority::root("Root 29-1b");
    let inter = root.intermediate("Intermediate 29-1b");
    let leaf = inter.issue(&Leaf::client("leaf"));
    // The twin has the root's name but not its key: its CRL revokes nothing of root's.
    let twin_crl = twin.crl(&[&inter.cert]);
    let root_crl = root.crl(&[]);
    let v = with_crls(&[&twin, &root, &inter], &[&twin_crl, &root_crl])
        .with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&v, &[&leaf]), "UNABLE_TO_GET_CRL");
    let v = with_crls(
        &[&twin, &root, &inter],
        &[&twin_crl, &root_crl, &inter.crl(&[])],
    )
    .with_unknown_revocation(UnknownRevocation::Deny);
    assert_eq!(code(&v, &[&leaf]), "OK");
    let v = with_crls(
        &[&twin, &root, &inter],
        &[&root.crl(&[&inter.cert]), &inter.crl(&[])],
    );
    assert_eq!(code(&v, &[&leaf]), "CERT_REVOKED");
}

/// A self-issued CA in the trust set (a key-rollover link: the new key under the old name,
/// signed by the old key) is an anchor, not an intermediate: the old CA's CRL is not asked
/// about it (issue 29 defines a trust-set intermediate as not self-issued).
#[test]
fn a_self_issued_ca_in_the_trust_set_stays_an_anchor() {
    let old = Authority::root("Root 29-link");
    let name = subject_of(&old);
    let new_key = certauth_testkit::key(KeyKind::P256);
    let mut link = Crafted::new(name.clone());
    link.serial = vec![0x29];
    link.extensions.push((
        "2.5.29.19".into(),
        true,
        der::seq(&[der::tlv(0x01, &[0xFF])]),
    ));
    link.extensions
        .push(("2.5.29.15".into(), true, der::tlv(0x03, &[0x01, 0x06])));
    let link = Issued::new(
        CertificateDer::from(link.sign(&new_key, &old.cert.key)),
        certauth_testkit::key(KeyKind::P256),
    );
    let mut leaf = Crafted::new(der::simple_name(&[("CN", "linked")]));
    leaf.issuer = name;
    leaf.serial = vec![0x30];
    let leaf = Issued::new(
        CertificateDer::from(leaf.sign(&certauth_testkit::key(KeyKind::P256), &new_key)),
        certauth_testkit::key(KeyKind::P256),
    );
    let anchors = TrustAnchors::from_der([old.cert.der.clone(), link.der.clone()]).unwrap();
    let v = ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS)
        .with_crls([{
            let mut crl = certauth_testkit::CraftedCrl::new(subject_of(&old));
            crl.revoked = vec![vec![0x29]];
            crl.sign(&old.cert.key)
        }])
        .unwrap();
    assert_eq!(code(&v, &[&leaf]), "OK");
}
