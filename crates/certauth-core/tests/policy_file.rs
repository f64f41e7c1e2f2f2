//! The TOML policy file: every helper, status, errors with positions, the depth limit.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::IpAddr;

use certauth_core::ClientCertificate;
use certauth_core::policy::file::{DEFAULT_MAX_DEPTH, PolicyFile};
use certauth_core::policy::{DenyStatus, Policy, PolicyContext, RequestInfo, Verdict};
use certauth_testkit::der::{self, san};
use certauth_testkit::{Crafted, KeyKind, key};

fn rich_cert() -> ClientCertificate {
    let k = key(KeyKind::P256);
    let mut c = Crafted::new(der::name(&[
        &[der::atv("2.5.4.10", der::string(der::UTF8, "Acme"))],
        &[der::atv("2.5.4.11", der::string(der::UTF8, "eng"))],
        &[der::atv("2.5.4.11", der::string(der::UTF8, "ops"))],
        &[der::atv("2.5.4.3", der::string(der::UTF8, "alice"))],
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
            san::uri("spiffe://acme.example/ns/prod/sa/alice"),
            san::ip("10.0.0.7".parse::<IpAddr>().unwrap()),
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
fn policy_file_expresses_every_helper() {
    let c = rich_cert();
    let fp = c.fingerprint_sha256_hex();
    let text = format!(
        r#"
[allow]
all_of = [
  {{ cn = ["alice", "bob"] }},
  {{ ou = ["ops"] }},
  {{ organization = ["Acme"] }},
  {{ fingerprint = ["SHA256:{fp}"] }},
  {{ serial = ["ab:cd"] }},
  {{ san = ["DNS:alice.acme.example"] }},
  {{ email = ["alice@acme.example"] }},
  {{ spiffe_id = ["spiffe://acme.example/ns/prod/sa/alice"] }},
  {{ spiffe_trust_domain = {{ trust_domain = "acme.example", path_prefix = "/ns/prod" }} }},
  {{ issuer = {{ CN = "Acme Issuing CA", O = "Acme" }} }},
  {{ subject = {{ O = "Acme" }} }},
  {{ any_of = [ {{ cn = ["nobody"] }}, {{ allow_any = true }} ] }},
  {{ not = {{ cn = ["mallory"] }} }},
]
"#
    );
    let file = PolicyFile::from_toml(&text).unwrap();
    assert!(allows(&file, &c));

    let file = PolicyFile::from_toml("status = 403\n[allow]\ncn = [\"bob\"]\n").unwrap();
    assert_eq!(file.status(), DenyStatus::Forbidden);
    let Verdict::Deny(d) = eval(&file, &c) else {
        panic!()
    };
    assert_eq!(d.status(), DenyStatus::Forbidden);

    let file = PolicyFile::from_toml("[allow]\nforbid = { cn = [\"bob\"] }\n").unwrap();
    let Verdict::Deny(d) = eval(&file, &c) else {
        panic!()
    };
    assert_eq!(d.status(), DenyStatus::Forbidden);
    let file = PolicyFile::from_toml("allow = { cn = [\"bob\"] }\n").unwrap();
    let Verdict::Deny(d) = eval(&file, &c) else {
        panic!()
    };
    assert_eq!(d.status(), DenyStatus::Unauthorized);
}

#[test]
fn policy_file_errors_point_at_the_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("[allow]\ncn = \"alice\"\n", 2, "sequence"),
        ("[allow]\ncnn = [\"a\"]\n", 2, "unknown variant"),
        (
            "[allow]\nany_of = [\n  { cn = [\"a\"] },\n  { fingerprint = [\"AB:CD\"] },\n]\n",
            4,
            "SHA-256",
        ),
        (
            "[allow]\nall_of = [\n  { issuer = { Nope = \"x\" } },\n]\n",
            3,
            "unknown attribute",
        ),
        (
            "[allow]\nall_of = [\n\n  { spiffe_id = [\"http://x\"] },\n]\n",
            4,
            "spiffe://",
        ),
        ("status = 500\n[allow]\ncn = [\"a\"]\n", 1, "not 401 or 403"),
        ("[allow]\ncn = [\"a\"]\nou = [\"b\"]\n", 1, ""),
        ("[alow]\ncn = [\"a\"]\n", 1, "unknown field"),
        ("[allow]\nallow_any = false\n", 1, "allows no one"),
        ("[allow\n", 1, ""),
        ("", 1, "missing field `allow`"),
    ];
    for (text, line, needle) in cases {
        let err = PolicyFile::from_toml(text)
            .err()
            .unwrap_or_else(|| panic!("accepted {text:?}"));
        assert_eq!(err.line, *line, "{text:?}: {err}");
        assert!(err.message.contains(needle), "{text:?}: {err}");
        assert!(err.to_string().starts_with("policy file line "), "{err}");
    }
}

#[test]
fn policy_file_depth_is_limited() {
    let nested = |depth: usize| {
        let mut rule = "{ cn = [\"alice\"] }".to_owned();
        for _ in 1..depth {
            rule = format!("{{ not = {{ not = {rule} }} }}");
        }
        format!("allow = {rule}\n")
    };
    // Each wrapping adds two levels.
    let ok = nested(DEFAULT_MAX_DEPTH / 2);
    assert!(PolicyFile::from_toml(&ok).is_ok());
    let deep = nested(DEFAULT_MAX_DEPTH / 2 + 1);
    let err = PolicyFile::from_toml(&deep).err().unwrap();
    assert!(err.message.contains("deeper than the limit of 16"), "{err}");
    assert!(PolicyFile::from_toml_with_max_depth(&deep, 64).is_ok());
    // Absurd nesting is refused by the TOML parser's own recursion guard, not a stack overflow.
    let absurd = nested(5_000);
    assert!(PolicyFile::from_toml_with_max_depth(&absurd, usize::MAX).is_err());
}
