//! Every policy helper and combinator, the policy file and its errors, and async policies.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use certauth_core::policy::{
    AsyncPolicy, OwnedPolicyContext, Policy, PolicyContext, PolicyExt, RequestInfo, Verdict,
    all_of, allow_any, allow_cn, allow_email, allow_fingerprints, allow_issuer, allow_organization,
    allow_ou, allow_san, allow_serial, allow_signed_fingerprints, allow_spiffe_id,
    allow_spiffe_trust_domain, allow_subject, any_of, not,
};
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{ClientCertificate, SetupError, Status};
use certauth_testkit::der::{self, san};
use certauth_testkit::{Authority, Crafted, KeyKind, Leaf, key, now};
use rcgen::{DnType, SanType};

/// A certificate with two CNs, two OUs, an O, an email attribute and one of each SAN.
fn rich_cert() -> ClientCertificate {
    let k = key(KeyKind::P256);
    let mut c = Crafted::new(der::name(&[
        &[der::atv("2.5.4.10", der::string(der::UTF8, "Acme"))],
        &[der::atv("2.5.4.11", der::string(der::UTF8, "eng"))],
        &[der::atv("2.5.4.11", der::string(der::UTF8, "ops"))],
        &[der::atv("2.5.4.3", der::string(der::UTF8, "alice"))],
        &[der::atv(
            "2.5.4.3",
            der::string(der::PRINTABLE, "alice-alt"),
        )],
        &[der::atv(
            "1.2.840.113549.1.9.1",
            der::string(der::IA5, "Alice@Acme.example"),
        )],
    ]));
    c.issuer = der::simple_name(&[("C", "US"), ("O", "Acme"), ("CN", "Acme Issuing CA")]);
    c.serial = vec![0x00, 0xAB, 0xCD];
    c.extensions.push((
        "2.5.29.17".into(),
        false,
        san::extension(&[
            san::dns("alice.acme.example"),
            san::email("alice@mail.acme.example"),
            san::uri("spiffe://acme.example/ns/prod/sa/alice"),
            san::ip("10.0.0.7".parse::<IpAddr>().unwrap()),
            san::ip("2001:db8::7".parse::<IpAddr>().unwrap()),
        ]),
    ));
    ClientCertificate::from_der(&c.sign(&k, &k)).unwrap()
}

fn eval(p: &impl Policy, cert: &ClientCertificate) -> Verdict {
    p.evaluate(&PolicyContext::new(
        cert,
        None,
        RequestInfo::new("GET", "/"),
    ))
}

fn allows(p: &impl Policy, cert: &ClientCertificate) -> bool {
    eval(p, cert).is_allow()
}

#[test]
fn attribute_helpers_judge_every_value_of_repeated_attributes() {
    let c = rich_cert();
    assert!(allows(&allow_cn(["alice", "alice-alt"]), &c));
    assert!(
        !allows(&allow_cn(["Alice", "alice-alt"]), &c),
        "CN is exact"
    );
    assert!(
        !allows(&allow_cn(Vec::<String>::new()), &c),
        "empty list allows no one"
    );
    assert!(allows(&allow_ou(["ops", "eng"]), &c));
    assert!(allows(&allow_ou(["OPS", "Eng"]), &c), "OU is caseless");
    assert!(!allows(&allow_ou(["sales"]), &c));
    assert!(allows(&allow_organization(["Acme"]), &c));
    assert!(allows(&allow_organization(["ACME"]), &c), "O is caseless");
    assert!(!allows(&allow_organization(["Other"]), &c));

    let Verdict::Deny(d) = eval(&allow_cn(["bob"]), &c) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Unauthorized);
    assert!(!d.is_indeterminate());
    assert!(
        d.reason().contains("\"alice\", \"alice-alt\""),
        "{}",
        d.reason()
    );
}

/// Issue 27: `CN=admin, CN=trusted-client` passed `allow_cn(["trusted-client"])` (any CN
/// matched) while the application read the first CN, "admin". Now every CN must be
/// allowed; some allowed is ambiguous, which `not` denies too.
#[test]
fn several_cns_pass_only_if_every_one_is_allowed() {
    let k = key(KeyKind::P256);
    let two = ClientCertificate::from_der(
        &Crafted::new(der::name(&[
            &[der::atv("2.5.4.3", der::string(der::UTF8, "admin"))],
            &[der::atv(
                "2.5.4.3",
                der::string(der::UTF8, "trusted-client"),
            )],
        ]))
        .sign(&k, &k),
    )
    .unwrap();
    assert_eq!(two.common_name().as_deref(), Some("admin"));
    let Verdict::Deny(d) = eval(&allow_cn(["trusted-client"]), &two) else {
        panic!("a second CN let in a certificate whose first CN is not allowed")
    };
    assert!(d.is_indeterminate(), "{}", d.reason());
    assert!(d.reason().contains("ambiguous"), "{}", d.reason());
    assert!(
        !allows(&not(allow_cn(["admin"])), &two),
        "a second CN escapes no ban"
    );
    assert!(
        !allows(&not(allow_cn(["trusted-client"])), &two),
        "either way"
    );
    assert!(allows(&allow_cn(["admin", "trusted-client"]), &two));
    assert!(allows(&not(allow_cn(["bob"])), &two));
    // The same for subject and issuer tables.
    assert!(!allows(
        &allow_subject([("CN", "trusted-client")]).unwrap(),
        &two
    ));
    assert!(!allows(
        &not(allow_subject([("CN", "admin")]).unwrap()),
        &two
    ));
}

/// Issue 27: `not = { ou = ["contractors"] }` let in `OU=Contractors`. O and OU compare
/// case-insensitively wherever they are matched.
#[test]
fn ou_and_organization_compare_caselessly_in_bans_too() {
    let k = key(KeyKind::P256);
    let c = ClientCertificate::from_der(
        &Crafted::new(der::simple_name(&[
            ("CN", "carol"),
            ("O", "Contractors"),
            ("OU", "Contractors"),
        ]))
        .sign(&k, &k),
    )
    .unwrap();
    assert!(!allows(&not(allow_ou(["contractors"])), &c));
    assert!(!allows(&not(allow_organization(["CONTRACTORS"])), &c));
    assert!(!allows(
        &not(allow_subject([("OU", "contractors")]).unwrap()),
        &c
    ));
    assert!(allows(&allow_issuer([("O", "contractors")]).unwrap(), &c));
    assert!(
        allows(&not(allow_cn(["Carol"])), &c),
        "CN stays exact (documented)"
    );
}

/// The P-256 group order.
const P256_N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// (header length, content length) of the DER element at the start of `b`.
fn der_header(b: &[u8]) -> (usize, usize) {
    if b[1] < 0x80 {
        (2, usize::from(b[1]))
    } else {
        let n = usize::from(b[1] & 0x7F);
        let len = b[2..2 + n]
            .iter()
            .fold(0usize, |a, x| a << 8 | usize::from(*x));
        (2 + n, len)
    }
}

/// The first element of `b` and what follows it.
fn der_split(b: &[u8]) -> (&[u8], &[u8]) {
    let (h, l) = der_header(b);
    b.split_at(h + l)
}

fn der_content(b: &[u8]) -> &[u8] {
    let (h, l) = der_header(b);
    &b[h..h + l]
}

/// The same certificate with its ECDSA P-256 signature's `s` replaced by `n − s`: a
/// signature as valid as the first, made without the CA's key.
fn ecdsa_twin(cert: &[u8]) -> Vec<u8> {
    let (tbs, rest) = der_split(der_content(cert));
    let (alg, rest) = der_split(rest);
    let bits = der_content(rest);
    let (r, rest) = der_split(der_content(&bits[1..]));
    let s = der_content(rest);
    let s = if s.len() == 33 { &s[1..] } else { s };
    let mut padded = [0u8; 32];
    padded[32 - s.len()..].copy_from_slice(s);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(P256_N[i]) - i16::from(padded[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = u8::try_from(d.rem_euclid(256)).unwrap();
    }
    let mut int: Vec<u8> = out.iter().copied().skip_while(|b| *b == 0).collect();
    if int[0] & 0x80 != 0 {
        int.insert(0, 0);
    }
    let sig = der::seq(&[r.to_vec(), der::tlv(0x02, &int)]);
    let mut bit_string = vec![0u8];
    bit_string.extend(sig);
    der::seq(&[tbs.to_vec(), alg.to_vec(), der::tlv(0x03, &bit_string)])
}

/// Issue 27: with an ECDSA CA, whoever holds a banned certificate rewrites `s` as `n − s`:
/// the certificate still verifies and its fingerprint changes. A ban on the signed
/// fingerprint (what the CA signed) holds; the fingerprint is for allow-lists.
#[test]
fn a_signed_fingerprint_ban_survives_re_encoding_the_signature() {
    let root = Authority::root("Twin Root");
    let banned = root.issue(&Leaf::client("banned"));
    let twin = ecdsa_twin(&banned.der);
    assert_ne!(twin, banned.der.as_ref());
    let v = ChainVerifier::new(
        TrustAnchors::from_der([root.cert.der.clone()]).unwrap(),
        webpki::ALL_VERIFICATION_ALGS,
    );
    let twin_der = rustls_pki_types::CertificateDer::from(twin.clone());
    v.verify(std::slice::from_ref(&twin_der), now())
        .expect("the rewritten certificate verifies");

    let original = ClientCertificate::from_der(&banned.der).unwrap();
    let twin = ClientCertificate::from_der(&twin).unwrap();
    assert_ne!(original.fingerprint_sha256(), twin.fingerprint_sha256());
    assert_eq!(original.tbs_sha256(), twin.tbs_sha256());
    assert_eq!(original.tbs_sha256_hex().len(), 95);

    let ban = not(allow_signed_fingerprints([original.tbs_sha256_hex()]).unwrap());
    assert!(!allows(&ban, &original));
    assert!(!allows(&ban, &twin), "the twin escaped the ban");
    let other = ClientCertificate::from_der(&root.issue(&Leaf::client("other")).der).unwrap();
    assert!(allows(&ban, &other));
    let allow =
        allow_signed_fingerprints([format!("SHA256:{}", original.tbs_sha256_hex())]).unwrap();
    assert!(allows(&allow, &twin) && !allows(&allow, &other));
    let Verdict::Deny(d) = eval(&allow, &other) else {
        panic!()
    };
    assert!(
        d.reason().contains(&other.tbs_sha256_hex()),
        "{}",
        d.reason()
    );
}

/// Issue 27: `not` let in what it could not evaluate. A SPIFFE ban denies certificates
/// whose SPIFFE ID cannot be read, and lets in those without one.
#[test]
fn not_denies_what_a_spiffe_rule_cannot_evaluate() {
    let ban = not(allow_spiffe_trust_domain("untrusted.example", "").unwrap());
    let with = |uris: &[&str]| {
        let k = key(KeyKind::P256);
        let mut c = Crafted::new(der::simple_name(&[("CN", "w")]));
        let names: Vec<Vec<u8>> = uris.iter().map(|u| san::uri(u)).collect();
        if !names.is_empty() {
            c.extensions
                .push(("2.5.29.17".into(), false, san::extension(&names)));
        }
        ClientCertificate::from_der(&c.sign(&k, &k)).unwrap()
    };
    for uris in [
        &["spiffe://UNTRUSTED.example/x"][..],
        &["SPIFFE://untrusted.example/x"],
        &["spiffe://untrusted.example/x/"],
        &["spiffe://untrusted.example/%78"],
        &["spiffe://untrusted.example"],
        &["spiffe://untrusted.example/x", "spiffe://fine.example/y"],
        &["spiffe://fine.example/y", "https://untrusted.example/x"],
        &["https://fine.example/y", "spiffe://untrusted.example/x"],
        &[
            "https://fine.example/y",
            "https://fine.example/z",
            "spiffe://untrusted.example/x",
        ],
    ] {
        let c = with(uris);
        assert_eq!(c.spiffe_id(), None, "{uris:?}");
        let Verdict::Deny(d) = eval(&ban, &c) else {
            panic!("{uris:?} passed a ban it cannot be checked against")
        };
        assert!(d.is_indeterminate(), "{uris:?}");
        assert!(
            d.reason().contains("cannot be evaluated"),
            "{uris:?}: {}",
            d.reason()
        );
    }
    assert!(!allows(&ban, &with(&["spiffe://untrusted.example/x"])));
    assert!(allows(&ban, &with(&["spiffe://fine.example/x"])));
    assert!(allows(&ban, &with(&[])), "no SPIFFE ID: not in the domain");
    assert!(allows(
        &ban,
        &with(&["https://a.example/", "https://b.example/"])
    ));
    // Inside any_of and all_of, "unknown" stays unknown unless another rule decides.
    let odd = with(&["spiffe://untrusted.example/x/"]);
    let unknown = || allow_spiffe_trust_domain("untrusted.example", "").unwrap();
    assert!(!allows(
        &not(any_of([unknown().boxed(), allow_cn(["nobody"]).boxed()])),
        &odd
    ));
    assert!(!allows(
        &not(any_of([unknown().boxed(), allow_cn(["w"]).boxed()])),
        &odd
    ));
    assert!(
        allows(
            &not(all_of([unknown().boxed(), allow_cn(["nobody"]).boxed()])),
            &odd
        ),
        "unknown and no is no"
    );
    assert!(!allows(
        &not(all_of([unknown().boxed(), allow_cn(["w"]).boxed()])),
        &odd
    ));
    assert!(!allows(&not(unknown().deny_with_403()), &odd));
}

/// Issue 27: SPIFFE rules follow the X.509-SVID spec: one URI SAN, a path, lower-case
/// `spiffe://`.
#[test]
fn spiffe_rules_follow_the_x509_svid_spec() {
    let with = |uris: &[&str]| {
        let k = key(KeyKind::P256);
        let mut c = Crafted::new(der::simple_name(&[("CN", "w")]));
        let names: Vec<Vec<u8>> = uris.iter().map(|u| san::uri(u)).collect();
        c.extensions
            .push(("2.5.29.17".into(), false, san::extension(&names)));
        ClientCertificate::from_der(&c.sign(&k, &k)).unwrap()
    };
    let domain = allow_spiffe_trust_domain("acme.example", "").unwrap();
    let exact = allow_spiffe_id(["spiffe://acme.example/api"]).unwrap();
    let good = with(&["spiffe://acme.example/api"]);
    assert!(allows(&domain, &good) && allows(&exact, &good));
    let two = with(&["spiffe://acme.example/api", "https://acme.example/"]);
    assert!(!allows(&domain, &two), "more than one URI SAN");
    assert!(!allows(&exact, &two), "more than one URI SAN");
    assert!(
        !allows(&domain, &with(&["spiffe://acme.example"])),
        "the trust domain's own ID is no workload"
    );
    assert!(!allows(&domain, &with(&["SPIFFE://acme.example/api"])));
    assert!(!allows(&exact, &with(&["SPIFFE://acme.example/api"])));
    assert!(allow_spiffe_id(["spiffe://acme.example"]).is_err());
    assert!(allow_spiffe_id(["SPIFFE://acme.example/api"]).is_err());
    for prefix in ["/ns/../x", "/ns//x", "/./x", "/..", "/ns/%78"] {
        assert!(
            allow_spiffe_trust_domain("acme.example", prefix).is_err(),
            "{prefix}"
        );
    }
    assert!(allow_spiffe_trust_domain("acme.example", "/").is_ok());
}

/// Issue 27: a serial ban can name a negative serial.
#[test]
fn negative_serials_can_be_named() {
    let k = key(KeyKind::P256);
    let mut c = Crafted::new(der::simple_name(&[("CN", "neg")]));
    c.serial = vec![0xFF];
    let c = ClientCertificate::from_der(&c.sign(&k, &k)).unwrap();
    assert_eq!(c.serial_hex(), "-01");
    assert!(allows(&allow_serial(["-01"]).unwrap(), &c));
    assert!(allows(&allow_serial(["-0x1"]).unwrap(), &c));
    assert!(!allows(&allow_serial(["01"]).unwrap(), &c));
    assert!(!allows(&not(allow_serial(["-01"]).unwrap()), &c));
    assert!(
        allows(&not(allow_serial(["01"]).unwrap()), &c),
        "−1 is not 1"
    );
    // Hex, always: "10" is sixteen.
    let rich = rich_cert();
    assert!(!allows(&allow_serial(["-ABCD"]).unwrap(), &rich));
}

/// Issue 27: the builder kept only the last policy. A second one is a build error.
#[test]
fn a_second_policy_is_a_build_error() {
    use certauth_core::Authenticator;
    let root = Authority::root("Builder Root");
    let verifier = || {
        ChainVerifier::new(
            TrustAnchors::from_der([root.cert.der.clone()]).unwrap(),
            webpki::ALL_VERIFICATION_ALGS,
        )
    };
    let twice = Authenticator::builder()
        .verifier(verifier())
        .policy(allow_cn(["a"]))
        .policy(allow_cn(["b"]));
    assert!(matches!(
        twice.build().err(),
        Some(SetupError::PolicySetTwice)
    ));
    let mixed = Authenticator::builder()
        .verifier(verifier())
        .policy(allow_cn(["a"]))
        .async_policy(|_: OwnedPolicyContext| async { Verdict::Allow });
    assert!(matches!(
        mixed.build().err(),
        Some(SetupError::PolicySetTwice)
    ));
    let mixed = Authenticator::builder()
        .verifier(verifier())
        .async_policy(|_: OwnedPolicyContext| async { Verdict::Allow })
        .policy(allow_cn(["a"]));
    let err = mixed.build().err().unwrap();
    assert!(err.to_string().contains("more than once"), "{err}");
    assert!(
        Authenticator::builder()
            .verifier(verifier())
            .policy(allow_cn(["a"]))
            .build()
            .is_ok()
    );
    assert!(
        Authenticator::builder()
            .verifier(verifier())
            .async_policy(|_: OwnedPolicyContext| async { Verdict::Allow })
            .build()
            .is_ok()
    );
}

#[test]
fn issuer_and_subject_require_every_named_field() {
    let c = rich_cert();
    assert!(allows(
        &allow_issuer([("CN", "Acme Issuing CA"), ("O", "Acme")]).unwrap(),
        &c
    ));
    assert!(!allows(
        &allow_issuer([("CN", "Acme Issuing CA"), ("O", "Evil")]).unwrap(),
        &c
    ));
    assert!(
        allows(&allow_issuer([("2.5.4.6", "US")]).unwrap(), &c),
        "dotted OID"
    );
    assert!(
        !allows(&allow_subject([("OU", "ops"), ("O", "Acme")]).unwrap(), &c),
        "the subject also has OU=eng"
    );
    assert!(allows(&allow_subject([("O", "Acme")]).unwrap(), &c));
    assert!(allows(
        &allow_subject([("emailAddress", "Alice@Acme.example")]).unwrap(),
        &c
    ));
    assert!(allows(
        &allow_subject([("E", "Alice@Acme.example")]).unwrap(),
        &c
    ));
    assert!(!allows(
        &allow_subject([("CN", "Acme Issuing CA")]).unwrap(),
        &c
    ));
    assert!(matches!(
        allow_subject([("Nope", "x")]).err(),
        Some(SetupError::UnknownAttribute { name }) if name == "Nope"
    ));
    let none: [(&str, &str); 0] = [];
    assert!(matches!(
        allow_issuer(none).err(),
        Some(SetupError::EmptyRule { rule: "issuer" })
    ));
    assert!(matches!(
        allow_subject(none).err(),
        Some(SetupError::EmptyRule { rule: "subject" })
    ));
}

#[test]
fn fingerprints_are_sha256_in_any_spelling() {
    let c = rich_cert();
    let hex: String = c
        .fingerprint_sha256()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let colon = c.fingerprint_sha256_hex();
    for pin in [hex.clone(), format!("SHA256:{colon}"), colon.to_lowercase()] {
        assert!(
            allows(&allow_fingerprints([pin.as_str()]).unwrap(), &c),
            "{pin}"
        );
    }
    // 10,000 pins: still one hash lookup.
    let many: Vec<String> = (0..10_000u32)
        .map(|i| format!("{i:064x}"))
        .chain([hex])
        .collect();
    assert!(allows(&allow_fingerprints(&many).unwrap(), &c));
    assert!(!allows(&allow_fingerprints(&many[..10_000]).unwrap(), &c));

    // The Node package's bug: a SHA-1 fingerprint is not a pin.
    let sha1: String = c
        .fingerprint_sha1()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(matches!(
        allow_fingerprints([sha1]),
        Err(SetupError::InvalidFingerprint { .. })
    ));
}

#[test]
fn serials_ignore_colons_case_and_leading_zeros() {
    let c = rich_cert();
    assert_eq!(c.serial_hex(), "ABCD");
    for s in ["abcd", "AB:CD", "00:ab:cd", "0xABCD"] {
        assert!(allows(&allow_serial([s]).unwrap(), &c), "{s}");
    }
    assert!(!allows(&allow_serial(["ABCE"]).unwrap(), &c));
    assert!(allow_serial(["not hex"]).is_err());
}

#[test]
fn san_patterns() {
    let c = rich_cert();
    for p in [
        "DNS:alice.acme.example",
        "DNS:ALICE.acme.example",
        "alice.acme.example",
        "email:Alice@mail.acme.example",
        "URI:spiffe://acme.example/ns/prod/sa/alice",
        "IP:10.0.0.7",
        "IP Address:2001:DB8:0:0:0:0:0:7",
        "2001:db8::7",
    ] {
        assert!(allows(&allow_san([p]).unwrap(), &c), "{p}");
    }
    for p in [
        "DNS:bob.acme.example",
        "URI:SPIFFE://acme.example/ns/prod/sa/alice",
        "IP:10.0.0.8",
        "email:alice.acme.example",
    ] {
        assert!(!allows(&allow_san([p]).unwrap(), &c), "{p}");
    }
    assert!(allow_san(["IP:nope"]).is_err());
}

#[test]
fn email_from_san_or_subject_case_insensitive() {
    let c = rich_cert();
    assert!(allows(&allow_email(["ALICE@mail.acme.example"]), &c), "SAN");
    assert!(
        allows(&allow_email(["alice@acme.example"]), &c),
        "subject emailAddress"
    );
    assert!(!allows(&allow_email(["bob@acme.example"]), &c));
}

#[test]
fn spiffe_ids_exact_and_by_trust_domain_prefix() {
    let c = rich_cert();
    assert_eq!(
        c.spiffe_id(),
        Some("spiffe://acme.example/ns/prod/sa/alice")
    );
    assert!(allows(
        &allow_spiffe_id(["spiffe://acme.example/ns/prod/sa/alice"]).unwrap(),
        &c
    ));
    assert!(!allows(
        &allow_spiffe_id(["spiffe://acme.example/ns/prod/sa/bob"]).unwrap(),
        &c
    ));
    assert!(allows(
        &allow_spiffe_trust_domain("acme.example", "").unwrap(),
        &c
    ));
    assert!(allows(
        &allow_spiffe_trust_domain("spiffe://acme.example", "/ns/prod").unwrap(),
        &c
    ));
    assert!(allows(
        &allow_spiffe_trust_domain("acme.example", "/ns/prod/").unwrap(),
        &c
    ));
    assert!(
        !allows(
            &allow_spiffe_trust_domain("acme.example", "/ns/pro").unwrap(),
            &c
        ),
        "segment boundary"
    );
    assert!(!allows(
        &allow_spiffe_trust_domain("other.example", "").unwrap(),
        &c
    ));
    assert!(allow_spiffe_id(["https://acme.example/x"]).is_err());
    assert!(allow_spiffe_trust_domain("acme.example", "ns").is_err());

    // Two spiffe URIs: no single identity.
    let k = key(KeyKind::P256);
    let mut two = Crafted::new(der::simple_name(&[("CN", "two")]));
    two.extensions.push((
        "2.5.29.17".into(),
        false,
        san::extension(&[
            san::uri("spiffe://a.example/x"),
            san::uri("spiffe://a.example/y"),
        ]),
    ));
    let two = ClientCertificate::from_der(&two.sign(&k, &k)).unwrap();
    assert_eq!(two.spiffe_id(), None);
    assert!(!allows(
        &allow_spiffe_trust_domain("a.example", "").unwrap(),
        &two
    ));
}

#[test]
fn combinators() {
    let c = rich_cert();
    let yes = || allow_cn(["alice", "alice-alt"]);
    let no = || allow_cn(["bob"]);
    assert!(allows(
        &all_of([yes().boxed(), allow_ou(["eng", "ops"]).boxed()]),
        &c
    ));
    assert!(!allows(&all_of([yes().boxed(), no().boxed()]), &c));
    assert!(allows(&all_of([]), &c), "empty all_of allows");
    assert!(allows(&any_of([no().boxed(), yes().boxed()]), &c));
    assert!(!allows(&any_of([no().boxed(), no().boxed()]), &c));
    assert!(!allows(&any_of([]), &c), "empty any_of denies");
    assert!(allows(&not(no()), &c));
    assert!(!allows(&not(yes()), &c));
    assert!(allows(&yes().and(allow_ou(["ops", "eng"])), &c));
    assert!(allows(&no().or(yes()), &c));
    assert!(allows(&allow_any(), &c));

    let Verdict::Deny(d) = eval(&no().deny_with_403(), &c) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Forbidden);
    let Verdict::Deny(d) = eval(&any_of([no().boxed(), no().deny_with_403().boxed()]), &c) else {
        panic!()
    };
    assert_eq!(
        d.status(),
        Status::Forbidden,
        "any 403 alternative makes the denial 403"
    );
    assert_eq!(
        d.reason().matches("CN not allowed").count(),
        2,
        "{}",
        d.reason()
    );
    let Verdict::Deny(d) = eval(&any_of([no().boxed(), no().boxed()]), &c) else {
        panic!()
    };
    assert_eq!(
        d.status(),
        Status::Unauthorized,
        "alternatives that all answer 401 answer 401"
    );
}

#[test]
fn closures_see_the_certificate_chain_and_request() {
    let root = Authority::root("Policy Root");
    let mut leaf = Leaf::client("svc");
    leaf.extra_dn
        .push((DnType::OrganizationalUnitName, "payments".into()));
    leaf.sans = vec![SanType::DnsName("svc.example".try_into().unwrap())];
    let leaf = root.issue(&leaf);
    let v = ChainVerifier::new(
        TrustAnchors::from_der([root.cert.der.clone()]).unwrap(),
        webpki::ALL_VERIFICATION_ALGS,
    );
    let chain = v.verify(std::slice::from_ref(&leaf.der), now()).unwrap();

    let policy = |ctx: &PolicyContext<'_>| -> Verdict {
        let issuer_cn = ctx
            .chain
            .and_then(|c| c.issuer())
            .map(|i| i.subject().common_names().next().unwrap().into_owned());
        if issuer_cn.as_deref() != Some("Policy Root") {
            return Verdict::deny("wrong issuer");
        }
        if ctx.request.path().starts_with("/admin") && ctx.request.headers.get("x-admin").is_none()
        {
            return Verdict::forbid("admin needs x-admin");
        }
        Verdict::Allow
    };
    let headers: [(&str, &[u8]); 1] = [("X-Admin", b"1")];
    let ctx = |path| PolicyContext::new(chain.leaf(), Some(&chain), RequestInfo::new("GET", path));
    assert!(policy.evaluate(&ctx("/")).is_allow());
    let Verdict::Deny(d) = policy.evaluate(&ctx("/admin")) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Forbidden);
    let with_header = PolicyContext::new(
        chain.leaf(),
        Some(&chain),
        RequestInfo::new("GET", "/admin").with_headers(&headers),
    );
    assert!(policy.evaluate(&with_header).is_allow());
    // Boolean closures.
    assert!(allows(
        &|c: &PolicyContext<'_>| c
            .cert
            .subject()
            .organizational_units()
            .any(|o| o == "payments"),
        chain.leaf()
    ));
    assert!(!allows(&|_: &PolicyContext<'_>| false, chain.leaf()));
}

/// Polls a future that never waits (our async policies in these tests complete at once).
fn poll_ready<T>(mut f: std::pin::Pin<Box<dyn Future<Output = T> + Send>>) -> T {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("the future did not complete")
}

#[test]
fn async_policies_are_plain_futures() {
    let c = rich_cert();
    let allowed = Arc::new(vec!["alice".to_owned()]);
    let lookup = move |ctx: OwnedPolicyContext| {
        let allowed = Arc::clone(&allowed);
        async move {
            std::future::ready(()).await;
            ctx.cert
                .subject()
                .common_names()
                .any(|cn| allowed.contains(&cn.into_owned()))
        }
    };
    let ctx = PolicyContext::new(&c, None, RequestInfo::new("GET", "/"));
    let v = poll_ready(AsyncPolicy::evaluate(
        &lookup,
        OwnedPolicyContext::from_context(&ctx),
    ));
    assert!(v.is_allow());
    let deny = |_: OwnedPolicyContext| async { Verdict::forbid("db says no") };
    let v = poll_ready(AsyncPolicy::evaluate(
        &deny,
        OwnedPolicyContext::from_context(&ctx),
    ));
    assert_eq!(v, Verdict::forbid("db says no"));
}

#[test]
fn bare_san_patterns_match_uris_exactly_and_ips_by_value() {
    let c = rich_cert();
    assert!(allows(
        &allow_san(["spiffe://acme.example/ns/prod/sa/alice"]).unwrap(),
        &c
    ));
    assert!(!allows(
        &allow_san(["spiffe://ACME.example/ns/prod/sa/alice"]).unwrap(),
        &c
    ));
    assert!(allows(&allow_san(["10.0.0.7"]).unwrap(), &c));
    assert!(!allows(&allow_san(["10.0.0.8"]).unwrap(), &c));
    assert!(!allows(&allow_san(["not-an-ip-or-name"]).unwrap(), &c));
}

#[test]
fn spiffe_ids_with_a_trailing_slash_are_refused() {
    assert!(allow_spiffe_id(["spiffe://acme.example/ns/"]).is_err());
    assert!(allow_spiffe_id(["spiffe://acme.example/"]).is_err());
    assert!(allow_spiffe_id(["spiffe://acme.example/ns"]).is_ok());
}

#[test]
fn header_maps_status_codes_and_request_debug() {
    use certauth_core::policy::{HeaderMap, RequestInfo};
    let pairs: [(&str, &[u8]); 2] = [("Host", b"h"), ("X-A", b"1")];
    let slice: &[(&str, &[u8])] = &pairs;
    let vec: Vec<(&str, &[u8])> = pairs.to_vec();
    let maps: [&dyn HeaderMap; 3] = [&pairs, &slice, &vec];
    for map in maps {
        assert_eq!(map.get("x-a"), Some(&b"1"[..]));
        assert_eq!(map.get("host"), Some(&b"h"[..]));
        assert_eq!(map.get("missing"), None);
    }
    let info = RequestInfo::new("GET", "/p");
    let debug = format!("{info:?}");
    assert!(debug.contains("GET") && debug.contains("/p"), "{debug}");
}

/// Every header map lists its headers for the copy an async policy gets, in order; a map
/// that cannot list itself (a request without headers) lists none.
#[test]
fn every_kind_of_header_map_lists_its_headers() {
    use certauth_core::policy::HeaderMap;
    fn listed(map: &dyn HeaderMap) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        map.for_each(&mut |n, v| out.push((n.to_owned(), v.to_vec())));
        out
    }
    let pairs: [(&str, &[u8]); 2] = [("X-A", b"1"), ("x-b", b"2")];
    let want = vec![
        ("X-A".to_owned(), b"1".to_vec()),
        ("x-b".to_owned(), b"2".to_vec()),
    ];
    let slice: &[(&str, &[u8])] = &pairs;
    let vec: Vec<(&str, &[u8])> = pairs.to_vec();
    let head = certauth_testkit::head(b"GET / HTTP/1.1\r\nX-A: 1\r\nx-b: 2\r\n\r\n");
    let maps: [(&str, &dyn HeaderMap); 4] = [
        ("array", &pairs),
        ("slice", &slice),
        ("vec", &vec),
        ("head", &head),
    ];
    for (name, map) in maps {
        assert_eq!(listed(map), want, "{name}");
        assert_eq!(map.get("X-B"), Some(&b"2"[..]), "{name}");
    }
    #[cfg(feature = "http")]
    {
        let req = http::Request::builder()
            .uri("/")
            .header("X-A", "1")
            .header("x-b", "2")
            .body(())
            .unwrap();
        // The http crate lower-cases names.
        assert_eq!(
            listed(&certauth_core::http::head_of(&req, None)),
            vec![
                ("x-a".to_owned(), b"1".to_vec()),
                ("x-b".to_owned(), b"2".to_vec())
            ]
        );
    }
    assert!(listed(RequestInfo::new("GET", "/").headers).is_empty());
}
