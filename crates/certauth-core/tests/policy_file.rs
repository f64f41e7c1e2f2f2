//! The TOML policy file: every helper, status, errors with positions, the depth limit.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::IpAddr;

use certauth_core::policy::file::{self, DEFAULT_MAX_DEPTH};
use certauth_core::policy::{Policy, PolicyContext, RequestInfo, Verdict};
use certauth_core::{ClientCertificate, Status};
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
    let tbs = c.tbs_sha256_hex();
    let text = format!(
        r#"
[allow]
all_of = [
  {{ cn = ["alice", "bob"] }},
  {{ ou = ["ops", "ENG"] }},
  {{ organization = ["Acme"] }},
  {{ fingerprint = ["SHA256:{fp}"] }},
  {{ signed_fingerprint = ["SHA256:{tbs}"] }},
  {{ serial = ["ab:cd"] }},
  {{ san = ["DNS:alice.acme.example"] }},
  {{ email = ["alice@acme.example"] }},
  {{ spiffe_id = ["spiffe://acme.example/ns/prod/sa/alice"] }},
  {{ spiffe_trust_domain = {{ trust_domain = "acme.example", path_prefix = "/ns/prod" }} }},
  {{ issuer = {{ CN = "Acme Issuing CA", O = "Acme" }} }},
  {{ subject = {{ O = "Acme" }} }},
  {{ any_of = [ {{ cn = ["nobody"] }}, {{ allow_any = true }} ] }},
  {{ not = {{ cn = ["mallory"] }} }},
  {{ not = {{ signed_fingerprint = ["{fp}"] }} }},
  {{ forbid = [ {{ cn = ["mallory"] }}, {{ ou = ["sales"] }} ] }},
  {{ forbid_unless = {{ cn = ["alice"] }} }},
]
"#
    );
    let file = file::from_toml(&text).unwrap();
    assert!(allows(&file, &c));

    let file = file::from_toml("status = 403\n[allow]\ncn = [\"bob\"]\n").unwrap();
    let Verdict::Deny(d) = eval(&file, &c) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Forbidden);

    let file = file::from_toml("[allow]\nforbid_unless = { cn = [\"bob\"] }\n").unwrap();
    let Verdict::Deny(d) = eval(&file, &c) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Forbidden);
    let file = file::from_toml("allow = { cn = [\"bob\"] }\n").unwrap();
    let Verdict::Deny(d) = eval(&file, &c) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Unauthorized);
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
        (
            "[allow]\nall_of = [\n  { spiffe_trust_domain = { trust_domain = \"a.example\", path_prefix = \"/ns/../x\" } },\n]\n",
            3,
            "..",
        ),
        ("[allow\n", 1, ""),
        ("", 1, "missing field `allow`"),
    ];
    for (text, line, needle) in cases {
        let err = file::from_toml(text)
            .err()
            .unwrap_or_else(|| panic!("accepted {text:?}"));
        assert_eq!(line_of(&err), *line, "{text:?}: {err}");
        assert!(message_of(&err).contains(needle), "{text:?}: {err}");
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
    assert!(file::from_toml(&ok).is_ok());
    let deep = nested(DEFAULT_MAX_DEPTH / 2 + 1);
    let err = file::from_toml(&deep).err().unwrap();
    assert!(
        message_of(&err).contains("deeper than the limit of 16"),
        "{err}"
    );
    assert!(file::from_toml_with_max_depth(&deep, 64).is_ok());
    // Absurd nesting is refused by the TOML parser's own recursion guard, not a stack overflow.
    let absurd = nested(5_000);
    assert!(file::from_toml_with_max_depth(&absurd, usize::MAX).is_err());
}

/// Issue 27: `forbid` admitted the clients it named (`forbid = X` was X with 403
/// denials). It now refuses them with 403; the old single-rule form is refused at load,
/// saying what changed.
#[test]
fn forbid_refuses_what_it_names() {
    let c = rich_cert();
    let file = file::from_toml(
        "[allow]\nall_of = [\n  { cn = [\"alice\"] },\n  { forbid = [{ organization = [\"acme\"] }] },\n]\n",
    )
    .unwrap();
    let Verdict::Deny(d) = eval(&file, &c) else {
        panic!("forbid let in the organization it names")
    };
    assert_eq!(d.status(), Status::Forbidden);
    let file = file::from_toml(
        "[allow]\nall_of = [\n  { cn = [\"alice\"] },\n  { forbid = [{ organization = [\"Contractors\"] }] },\n]\n",
    )
    .unwrap();
    assert!(allows(&file, &c), "others pass");

    // The README's old example, a file written for the old meaning: refused at load.
    let old = "[allow]\nany_of = [\n  { cn = [\"trusted-client\"] },\n  { forbid = { organization = [\"Contractors\"] } },\n]\n";
    let err = file::from_toml(old).expect_err("the old form loaded");
    assert_eq!(line_of(&err), 4, "{err}");
    for needle in ["forbid_unless", "opposite", "takes a list"] {
        assert!(message_of(&err).contains(needle), "{needle}: {err}");
    }
    // What it meant is still expressible.
    let file =
        file::from_toml("[allow]\nforbid_unless = { organization = [\"Contractors\"] }\n").unwrap();
    let Verdict::Deny(d) = eval(&file, &c) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Forbidden);
}

/// Issue 27: empty rules (`all_of = []`, `issuer = {}`) let everyone in while others let
/// no one in; every empty rule is refused at load.
#[test]
fn empty_rules_are_refused_at_load() {
    for rule in [
        "all_of = []",
        "any_of = []",
        "forbid = []",
        "cn = []",
        "ou = []",
        "organization = []",
        "fingerprint = []",
        "signed_fingerprint = []",
        "serial = []",
        "san = []",
        "email = []",
        "spiffe_id = []",
        "issuer = {}",
        "subject = {}",
    ] {
        let text = format!("[allow]\nany_of = [\n  {{ cn = [\"x\"] }},\n  {{ {rule} }},\n]\n");
        let err = file::from_toml(&text)
            .err()
            .unwrap_or_else(|| panic!("{rule} loaded"));
        assert_eq!(line_of(&err), 4, "{rule}: {err}");
        assert!(message_of(&err).contains("is empty"), "{rule}: {err}");
    }
    let err = file::from_toml("allow = { not = { all_of = [] } }\n")
        .err()
        .unwrap();
    assert!(message_of(&err).contains("`all_of` is empty"), "{err}");
}

/// Issue 27: a fingerprint cannot ban (re-encoding the signature changes it); the file
/// refuses it under `not` or `forbid` and points at what can.
#[test]
fn fingerprints_cannot_ban() {
    let c = rich_cert();
    let fp = c.fingerprint_sha256_hex();
    for allow in [
        format!("{{ not = {{ fingerprint = [\"{fp}\"] }} }}"),
        format!("{{ forbid = [{{ fingerprint = [\"{fp}\"] }}] }}"),
        format!("{{ all_of = [{{ not = {{ any_of = [{{ fingerprint = [\"{fp}\"] }}] }} }}] }}"),
    ] {
        let err = file::from_toml(&format!("allow = {allow}\n"))
            .err()
            .unwrap_or_else(|| panic!("{allow} loaded"));
        assert!(message_of(&err).contains("signed_fingerprint"), "{err}");
        assert!(message_of(&err).contains("allow-lists"), "{err}");
    }
    // Under two negations it is an allow-list again; a signed fingerprint bans.
    let twice = format!("allow = {{ not = {{ not = {{ fingerprint = [\"{fp}\"] }} }} }}\n");
    assert!(allows(&file::from_toml(&twice).unwrap(), &c));
    let forbid_unless = format!("allow = {{ forbid_unless = {{ fingerprint = [\"{fp}\"] }} }}\n");
    assert!(allows(&file::from_toml(&forbid_unless).unwrap(), &c));
    let ban = format!(
        "allow = {{ forbid = [{{ signed_fingerprint = [\"{}\"] }}] }}\n",
        c.tbs_sha256_hex()
    );
    let Verdict::Deny(d) = eval(&file::from_toml(&ban).unwrap(), &c) else {
        panic!()
    };
    assert_eq!(d.status(), Status::Forbidden);
}

/// Issue 27: a negative serial can be named in a file.
#[test]
fn negative_serials_load() {
    assert!(file::from_toml("allow = { not = { serial = [\"-01\"] } }\n").is_ok());
}

/// The README's policy file, taken from the README: it loads, refuses a contractor with
/// 403 even when another rule would let it in, and lets in `trusted-client`.
#[test]
fn the_readme_policy_file_means_what_it_says() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("```toml\nstatus = 403")
        .expect("the README's policy block");
    let block = &readme[start + "```toml\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    let file = file::from_toml(block).unwrap();
    let k = key(KeyKind::P256);
    let cert = |pairs: &[(&str, &str)]| {
        ClientCertificate::from_der(&Crafted::new(der::simple_name(pairs)).sign(&k, &k)).unwrap()
    };
    assert!(allows(&file, &cert(&[("CN", "trusted-client")])));
    let Verdict::Deny(d) = eval(
        &file,
        &cert(&[("CN", "trusted-client"), ("O", "Contractors")]),
    ) else {
        panic!("the README's forbid let a contractor in")
    };
    assert_eq!(d.status(), Status::Forbidden);
    assert!(!allows(&file, &cert(&[("CN", "someone")])));
}

/// Every way of nesting counts towards the depth limit: lists (`all_of`, `any_of`,
/// `forbid`) and single rules (`not`, `forbid_unless`).
#[test]
fn every_nesting_counts_towards_the_depth() {
    let wrappers: [(&str, &str); 5] = [
        ("{ all_of = [", "] }"),
        ("{ any_of = [", "] }"),
        ("{ forbid = [{ not = ", "}] }"),
        ("{ not = ", " }"),
        ("{ forbid_unless = ", " }"),
    ];
    for (open, close) in wrappers {
        let nested = |levels: usize| {
            let mut rule = "{ cn = [\"alice\"] }".to_owned();
            for _ in 0..levels {
                rule = format!("{open}{rule}{close}");
            }
            format!("allow = {rule}\n")
        };
        // `forbid` adds two levels (its list and the `not` inside, so that the rule is an
        // allow again); the others one.
        let per = if open.contains("forbid = [") { 2 } else { 1 };
        let deepest = (DEFAULT_MAX_DEPTH - 1) / per;
        assert!(
            file::from_toml(&nested(deepest)).is_ok(),
            "{open}: {}",
            file::from_toml(&nested(deepest)).unwrap_err()
        );
        let err = file::from_toml(&nested(deepest + 1)).unwrap_err();
        assert!(
            message_of(&err).contains("deeper than the limit"),
            "{open}: {err}"
        );
    }
}

/// `forbid` with neither a list nor a table says what it takes.
#[test]
fn forbid_says_it_takes_a_list() {
    let err = file::from_toml("allow = { forbid = \"cn\" }\n").unwrap_err();
    assert!(message_of(&err).contains("a list of rules"), "{err}");
}

/// The line of a policy file error.
fn line_of(err: &certauth_core::SetupError) -> usize {
    match err {
        certauth_core::SetupError::PolicyFile { line, .. } => *line,
        other => panic!("not a policy file error: {other}"),
    }
}

/// The message of a policy file error (without its position).
fn message_of(err: &certauth_core::SetupError) -> &str {
    match err {
        certauth_core::SetupError::PolicyFile { message, .. } => message,
        other => panic!("not a policy file error: {other}"),
    }
}
