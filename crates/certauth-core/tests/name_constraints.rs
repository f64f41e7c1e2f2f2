//! Name constraints rustls-webpki does not implement, enforced by certauth when they sit in
//! a trust anchor: a SPIFFE CA limited to its trust domain, an enterprise CA limited to its
//! mail domain or its directory subtree. Through real (in-memory) TLS handshakes and through
//! header mode, as a client would meet them.
#![cfg(feature = "rustls")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;

use certauth_core::proxy::{Encoding, ProxyHeaderConfig};
use certauth_core::tls::{ClientAuthMode, load_server_identity, peer_chain, server_config};
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{Authenticator, CertificateDer, Decision, PeerInfo, RequestHead};
use certauth_testkit::handshake::{self, TLS12, TLS13, presenting};
use certauth_testkit::{Authority, KeyKind, Leaf, der, key};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair, SanType,
};

/// A root whose nameConstraints extension (critical) holds `permitted` subtrees
/// (GeneralName DER each).
fn constrained_root(cn: &str, permitted: &[Vec<u8>]) -> (CertificateParams, KeyPair, Vec<u8>) {
    let key = key(KeyKind::P256);
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let subtrees: Vec<Vec<u8>> = permitted
        .iter()
        .map(|g| der::seq(std::slice::from_ref(g)))
        .collect();
    let nc = der::seq(&[der::tlv(0xA0, &subtrees.concat())]);
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], nc);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let der = p.self_signed(&key).unwrap().der().to_vec();
    (p, key, der)
}

fn client(
    root: &(CertificateParams, KeyPair, Vec<u8>),
    sans: Vec<SanType>,
) -> (CertificateDer<'static>, KeyPair) {
    let mut leaf = Leaf::client("workload").around_wall_clock();
    leaf.sans = sans;
    let key = key(KeyKind::P256);
    let issuer = Issuer::from_params(&root.0, &root.1);
    let der = leaf
        .params()
        .signed_by(&key, &issuer)
        .unwrap()
        .der()
        .clone();
    (der, key)
}

fn uri(u: &str) -> SanType {
    SanType::URI(u.try_into().unwrap())
}

fn verifier(root_der: &[u8]) -> ChainVerifier {
    let anchors = TrustAnchors::from_der([CertificateDer::from(root_der.to_vec())]).unwrap();
    ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS)
}

fn head(extra: &str) -> RequestHead {
    let text = format!("GET / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    certauth_testkit::head(text.as_bytes())
}

fn outcome(auth: &Authenticator, peer: &PeerInfo<'_>, head: &RequestHead) -> String {
    match auth
        .decide(peer, head, certauth_testkit::wall_clock())
        .ready()
    {
        Some(Decision::Allow(_)) => "ALLOW".into(),
        Some(Decision::Deny(d)) => d.code().into(),
        None => "PENDING".into(),
    }
}

#[test]
fn a_spiffe_ca_limited_to_its_trust_domain_over_tls_and_behind_a_proxy() {
    let root = constrained_root("SPIFFE CA", &[der::tlv(0x86, b"example.org")]);
    let v = verifier(&root.2);
    let auth = Authenticator::builder()
        .verifier(v.clone())
        .build()
        .unwrap();
    let server_root = Authority::root("NC Server CA");
    let mut server = Leaf::client("localhost");
    server.eku = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    server.sans = vec![SanType::DnsName("localhost".try_into().unwrap())];
    let server = server_root.issue(&server);
    let (chain, server_key) =
        load_server_identity(server.pem().as_bytes(), server.key_pem().as_bytes()).unwrap();
    let tls = Arc::new(
        server_config(
            Arc::new(certauth_testkit::ring_provider()),
            chain,
            server_key,
            v.anchors(),
            ClientAuthMode::Deferred,
        )
        .unwrap(),
    );
    let proxied = Authenticator::builder()
        .verifier(v)
        .proxy_header(
            ProxyHeaderConfig::custom("X-Client-Cert", Encoding::Base64Der)
                .unwrap()
                .with_trusted_proxies(["127.0.0.1"])
                .unwrap(),
        )
        .build()
        .unwrap();
    for (san, want) in [
        ("spiffe://example.org/api", "ALLOW"),
        ("spiffe://evil.example/api", "NAME_CONSTRAINTS_VIOLATION"),
        (
            "spiffe://example.org.evil/api",
            "NAME_CONSTRAINTS_VIOLATION",
        ),
    ] {
        let (cert, cert_key) = client(&root, vec![uri(san)]);
        // Over TLS 1.2 and 1.3, the handshake finishes and the decision says.
        for versions in [TLS12, TLS13] {
            let conn = handshake::handshake(
                Arc::clone(&tls),
                presenting(
                    &server_root.cert.der,
                    vec![cert.clone()],
                    &cert_key,
                    versions,
                ),
            )
            .unwrap_or_else(|_| panic!("{san}: handshake"));
            let chain = peer_chain(&conn);
            let got = outcome(&auth, &PeerInfo::new(&chain, None), &head(""));
            assert_eq!(got, want, "{san} over TLS");
        }
        // Behind a proxy, the forwarded chain is verified again with the same rules.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&cert);
        let from_proxy: IpAddr = [127, 0, 0, 1].into();
        let got = outcome(
            &proxied,
            &PeerInfo::new(&[], Some(from_proxy)),
            &head(&format!("X-Client-Cert: {b64}\r\n")),
        );
        assert_eq!(got, want, "{san} behind a proxy");
    }
}

#[test]
fn mail_and_directory_constraints_in_a_root() {
    let mail = constrained_root("Mail CA", &[der::tlv(0x81, b"example.org")]);
    let v = verifier(&mail.2);
    for (email, want) in [
        ("alice@example.org", Ok(())),
        ("alice@EXAMPLE.org", Ok(())),
        ("alice@mail.example.org", Err("NAME_CONSTRAINTS_VIOLATION")),
        ("mallory@evil.example", Err("NAME_CONSTRAINTS_VIOLATION")),
    ] {
        let (cert, _) = client(&mail, vec![SanType::Rfc822Name(email.try_into().unwrap())]);
        let got = v.verify(&[cert], certauth_testkit::wall_clock());
        match (got, want) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(code)) => {
                assert_eq!(e.code(), code, "{email}");
                assert!(e.to_string().contains(email), "{e}");
                assert!(e.to_string().contains("CN=Mail CA"), "{e}");
            }
            (got, _) => panic!("{email}: {:?}", got.map(|_| ())),
        }
    }
    // The subject's emailAddress is held to the constraint, with or without SANs: OpenSSL
    // checks it regardless, and `allow_email` admits a client by it (issue 25, finding 1).
    let subject_email = |email: &str, sans: Vec<SanType>| {
        let mut leaf = Leaf::client("mailer").around_wall_clock();
        leaf.sans = sans;
        leaf.extra_dn = vec![(
            DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
            email.into(),
        )];
        let key = key(KeyKind::P256);
        let issuer = Issuer::from_params(&mail.0, &mail.1);
        let cert = leaf
            .params()
            .signed_by(&key, &issuer)
            .unwrap()
            .der()
            .clone();
        v.verify(&[cert], certauth_testkit::wall_clock())
            .map(|_| ())
            .map_err(|e| e.code())
    };
    assert_eq!(subject_email("alice@example.org", vec![]), Ok(()));
    assert_eq!(
        subject_email("mallory@evil.example", vec![]),
        Err("NAME_CONSTRAINTS_VIOLATION")
    );
    let dns = || SanType::DnsName("host.example".try_into().unwrap());
    assert_eq!(
        subject_email("mallory@evil.example", vec![dns()]),
        Err("NAME_CONSTRAINTS_VIOLATION")
    );
    assert_eq!(subject_email("alice@example.org", vec![dns()]), Ok(()));

    // A directoryName subtree: O=Example under C=US. The client's subject must be below it.
    let base = der::name(&[
        &[der::atv("2.5.4.6", der::string(der::PRINTABLE, "US"))],
        &[der::atv("2.5.4.10", der::string(der::UTF8, "Example"))],
    ]);
    let dir = constrained_root("Directory CA", &[der::tlv(0xA4, &base)]);
    let v = verifier(&dir.2);
    for (org, want) in [("Example", true), ("Evil", false)] {
        let mut leaf = Leaf::client("alice").around_wall_clock();
        leaf.extra_dn = vec![
            (DnType::CountryName, "US".into()),
            (DnType::OrganizationName, org.into()),
        ];
        let key = key(KeyKind::P256);
        let issuer = Issuer::from_params(&dir.0, &dir.1);
        let mut params = leaf.params();
        // rcgen orders the name as pushed: C, O, then CN.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "US");
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
        params.distinguished_name.push(DnType::CommonName, "alice");
        let cert = params.signed_by(&key, &issuer).unwrap().der().clone();
        let got = v.verify(&[cert], certauth_testkit::wall_clock());
        assert_eq!(got.is_ok(), want, "O={org}: {:?}", got.err());
    }
    // A directoryName SAN is held to it too.
    let root_name = certauth_core::ClientCertificate::from_der(&dir.2)
        .unwrap()
        .subject()
        .raw()
        .to_vec();
    let inside = der::name(&[
        &[der::atv("2.5.4.6", der::string(der::PRINTABLE, "US"))],
        &[der::atv("2.5.4.10", der::string(der::UTF8, "Example"))],
        &[der::atv("2.5.4.3", der::string(der::UTF8, "alice"))],
    ]);
    let outside = der::name(&[
        &[der::atv("2.5.4.6", der::string(der::PRINTABLE, "US"))],
        &[der::atv("2.5.4.10", der::string(der::UTF8, "Evil"))],
    ]);
    let mut c = certauth_testkit::Crafted::new(inside);
    c.issuer = root_name;
    c.not_before = der::generalized_time("20200101000000Z");
    c.not_after = der::generalized_time("20491231000000Z");
    c.extensions.push((
        "2.5.29.17".into(),
        false,
        der::san::extension(&[der::san::dir_name(&outside)]),
    ));
    let cert = CertificateDer::from(c.sign(&key(KeyKind::P256), &dir.1));
    let err = v
        .verify(&[cert], certauth_testkit::wall_clock())
        .unwrap_err();
    assert!(err.to_string().contains("O=Evil"), "{err}");
}

/// In an intermediate, webpki refuses these forms before certauth can act: the code says
/// so, and what to do.
#[test]
fn the_same_constraint_in_an_intermediate_is_named_unsupported() {
    let root = Authority::root("Plain Root");
    let key = key(KeyKind::P256);
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "SPIFFE Intermediate");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let nc = der::seq(&[der::tlv(0xA0, &der::seq(&[der::tlv(0x86, b"example.org")]))]);
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], nc);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let root_issuer = Issuer::from_params(&root.cert.params, &root.cert.key);
    let inter_der = p.signed_by(&key, &root_issuer).unwrap().der().clone();
    let inter = (p, key, inter_der.to_vec());
    let (leaf, _) = client(&inter, vec![uri("spiffe://example.org/api")]);
    let anchors = TrustAnchors::from_der([root.cert.der.clone()]).unwrap();
    let v = ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS);
    let err = v
        .verify(&[leaf, inter_der], certauth_testkit::wall_clock())
        .unwrap_err();
    assert_eq!(err.code(), "UNSUPPORTED_NAME_CONSTRAINT");
    assert!(err.to_string().contains("CN=SPIFFE Intermediate"), "{err}");
    assert!(err.to_string().contains("in the root"), "{err}");
}

/// A root's directoryName constraint holds over its intermediates too (each one not
/// self-issued, RFC 5280 4.2.1.10), not only over the client's certificate.
#[test]
fn a_root_directory_constraint_holds_over_intermediates() {
    let base = der::name(&[
        &[der::atv("2.5.4.6", der::string(der::PRINTABLE, "US"))],
        &[der::atv("2.5.4.10", der::string(der::UTF8, "Example"))],
    ]);
    let dir = constrained_root("Directory Root", &[der::tlv(0xA4, &base)]);
    let v = verifier(&dir.2);
    let dn = |org: &str, cn: &str| {
        let mut name = rcgen::DistinguishedName::new();
        name.push(DnType::CountryName, "US");
        name.push(DnType::OrganizationName, org);
        name.push(DnType::CommonName, cn);
        name
    };
    for (org, want) in [("Example", true), ("Evil", false)] {
        let inter_key = key(KeyKind::P256);
        let mut inter = CertificateParams::new(vec![]).unwrap();
        inter.distinguished_name = dn(org, "Sub CA");
        inter.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let inter_der = inter
            .signed_by(&inter_key, &Issuer::from_params(&dir.0, &dir.1))
            .unwrap()
            .der()
            .clone();
        let mut leaf = Leaf::client("alice").around_wall_clock().params();
        leaf.distinguished_name = dn("Example", "alice");
        let leaf_der = leaf
            .signed_by(
                &key(KeyKind::P256),
                &Issuer::from_params(&inter, &inter_key),
            )
            .unwrap()
            .der()
            .clone();
        let got = v.verify(&[leaf_der, inter_der], certauth_testkit::wall_clock());
        assert_eq!(got.is_ok(), want, "intermediate O={org}: {:?}", got.err());
        if let Err(e) = got {
            assert_eq!(e.code(), "NAME_CONSTRAINTS_VIOLATION");
            assert!(e.to_string().contains("O=Evil"), "{e}");
        }
    }
}

/// Issue 25, findings 1 and 9, as an operator meets them: a sub-CA (an anchor here) limited
/// to its own mail domain, and a CA excluding one address, behind `allow_email`.
#[test]
fn allow_email_never_admits_an_address_the_constraints_refuse() {
    let issue =
        |root: &(CertificateParams, KeyPair, Vec<u8>), subject_email: Option<&str>, sans| {
            let mut leaf = Leaf::client("mailer").around_wall_clock();
            leaf.sans = sans;
            if let Some(e) = subject_email {
                leaf.extra_dn = vec![(
                    DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
                    e.into(),
                )];
            }
            let key = key(KeyKind::P256);
            let issuer = Issuer::from_params(&root.0, &root.1);
            leaf.params()
                .signed_by(&key, &issuer)
                .unwrap()
                .der()
                .clone()
        };
    let auth = |root: &(CertificateParams, KeyPair, Vec<u8>), who: &str| {
        Authenticator::builder()
            .verifier(verifier(&root.2))
            .policy(certauth_core::policy::allow_email([who]))
            .build()
            .unwrap()
    };
    let decide = |auth: &Authenticator, cert: CertificateDer<'static>| {
        let chain = [cert];
        outcome(auth, &PeerInfo::new(&chain, None), &head(""))
    };

    // Permitted: example.com mail only. A DNS SAN beside a foreign subject email.
    let sub_ca = constrained_root("Example Mail Sub-CA", &[der::tlv(0x81, b"example.com")]);
    let dns = SanType::DnsName("host.example.com".try_into().unwrap());
    let forged = issue(&sub_ca, Some("ceo@victim.com"), vec![dns.clone()]);
    assert_eq!(
        decide(&auth(&sub_ca, "ceo@victim.com"), forged),
        "NAME_CONSTRAINTS_VIOLATION"
    );
    let own = issue(&sub_ca, Some("ops@example.com"), vec![dns]);
    assert_eq!(decide(&auth(&sub_ca, "ops@example.com"), own), "ALLOW");

    // Excluded: one mailbox, whatever the case of its local part.
    let excluding = excluding_root("Excluding CA", &der::tlv(0x81, b"ceo@victim.com"));
    for sent in ["ceo@victim.com", "CEO@victim.com", "Ceo@VICTIM.com"] {
        let san = SanType::Rfc822Name(sent.try_into().unwrap());
        let cert = issue(&excluding, None, vec![san]);
        assert_eq!(
            decide(&auth(&excluding, "ceo@victim.com"), cert),
            "NAME_CONSTRAINTS_VIOLATION",
            "{sent}"
        );
    }
    let other = SanType::Rfc822Name("cfo@victim.com".try_into().unwrap());
    let cert = issue(&excluding, None, vec![other]);
    assert_eq!(decide(&auth(&excluding, "cfo@victim.com"), cert), "ALLOW");
}

/// A root whose nameConstraints (critical) hold one excluded subtree.
fn excluding_root(cn: &str, excluded: &[u8]) -> (CertificateParams, KeyPair, Vec<u8>) {
    let key = key(KeyKind::P256);
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let nc = der::seq(&[der::tlv(0xA1, &der::seq(&[excluded.to_vec()]))]);
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], nc);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let der = p.self_signed(&key).unwrap().der().to_vec();
    (p, key, der)
}

/// Issue 25, finding 8: two anchors with one subject and key (a constrained, valid copy and
/// an unconstrained, expired one). Whichever comes first in `--ca`, each path is judged by
/// the anchor it was built through: its validity, its constraints.
#[test]
fn twin_anchors_are_each_judged_by_their_own_validity_and_constraints() {
    let key = key(KeyKind::P256);
    let twin = |constrained: bool, expired: bool| {
        let mut p = CertificateParams::new(vec![]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "Twin CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        if constrained {
            let subtree = der::seq(&[der::tlv(0x81, b"example.org")]);
            let nc = der::seq(&[der::tlv(0xA0, &subtree)]);
            let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], nc);
            ext.set_criticality(true);
            p.custom_extensions.push(ext);
        }
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let der = CertificateDer::from(p.self_signed(&key).unwrap().der().to_vec());
        (p, der)
    };
    let (constrained_valid, a) = twin(true, false);
    let (_, b_expired) = twin(false, true);
    let (_, b_valid) = twin(false, false);
    let issuer = Issuer::from_params(&constrained_valid, &key);
    let leaf = |email: &str| {
        let mut leaf = Leaf::client("mailer").around_wall_clock();
        leaf.sans = vec![SanType::Rfc822Name(email.try_into().unwrap())];
        let k = certauth_testkit::key(KeyKind::P256);
        leaf.params().signed_by(&k, &issuer).unwrap().der().clone()
    };
    let verify = |anchors: &[&CertificateDer<'static>], email: &str| {
        let anchors = TrustAnchors::from_der(anchors.iter().map(|c| (*c).clone())).unwrap();
        ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS)
            .verify(&[leaf(email)], certauth_testkit::wall_clock())
            .map(|_| ())
            .map_err(|e| e.code())
    };
    for order in [[&a, &b_expired], [&b_expired, &a]] {
        // Inside A's constraints: A is valid, so the client is in, whatever the order.
        assert_eq!(verify(&order, "alice@example.org"), Ok(()));
        // Outside them: A refuses it, and B, which would not, has expired.
        assert!(verify(&order, "mallory@evil.example").is_err());
    }
    // A valid unconstrained twin admits what the constrained one refuses.
    for order in [[&a, &b_valid], [&b_valid, &a]] {
        assert_eq!(verify(&order, "mallory@evil.example"), Ok(()));
    }
}

/// Issue 25, finding 10: a violation quotes the client's name; a CR/LF in it must not
/// reach the log line the adapters write (`client rejected: {denial}`).
#[test]
fn a_violation_quoting_a_forged_uri_cannot_forge_a_log_line() {
    let root = constrained_root("URI CA", &[der::tlv(0x86, b"example.org")]);
    let forged = "https://evil.example/\r\nINFO client authenticated subject=CN=admin";
    let (cert, _) = client(&root, vec![uri(forged)]);
    let auth = Authenticator::builder()
        .verifier(verifier(&root.2))
        .build()
        .unwrap();
    let chain = [cert];
    let decision = auth
        .decide(
            &PeerInfo::new(&chain, None),
            &head(""),
            certauth_testkit::wall_clock(),
        )
        .ready();
    let Some(Decision::Deny(denial)) = decision else {
        panic!("the constraint must refuse")
    };
    assert_eq!(denial.code(), "NAME_CONSTRAINTS_VIOLATION");
    let logged = format!("client rejected: {denial}");
    assert!(!logged.contains(['\r', '\n']), "{logged:?}");
    assert!(logged.contains("evil.example/\\u{d}\\u{a}INFO"), "{logged}");
}

/// Attack review of findings 1 and 9: an anchor's *excluded* mail, URI and directory
/// subtrees against every spelling a policy would still match (case, subject emails beside
/// SANs, several subject emails, userinfo and ports in URIs, spaces and case in names).
#[test]
fn excluded_subtrees_hold_against_every_spelling_a_policy_matches() {
    let ca_key = key(KeyKind::P256);
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "Excluding CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let o_victim = der::seq(&[der::tlv(
        0x31,
        &der::seq(&[
            der::tlv(0x06, &[0x55, 0x04, 0x0A]),
            der::tlv(0x13, b"Victim"),
        ]),
    )]);
    let excluded = [
        der::seq(&[der::tlv(0x81, b"victim.com")]),
        der::seq(&[der::tlv(0x86, b"victim.org")]),
        der::seq(&[der::tlv(0xA4, &o_victim)]),
    ]
    .concat();
    let mut ext =
        CustomExtension::from_oid_content(&[2, 5, 29, 30], der::seq(&[der::tlv(0xA1, &excluded)]));
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let root_der = p.self_signed(&ca_key).unwrap().der().to_vec();
    let issuer = Issuer::from_params(&p, &ca_key);
    let email_oid = DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]);
    let issue = |sans: Vec<SanType>, dn: Vec<(DnType, &str)>| {
        let mut leaf = Leaf::client("workload").around_wall_clock();
        leaf.sans = sans;
        leaf.extra_dn = dn.into_iter().map(|(t, v)| (t, v.to_owned())).collect();
        let mut params = leaf.params();
        // An O given comes first (the subtree is a prefix of the name, RDN by RDN).
        if let Some(o) = params
            .distinguished_name
            .get(&DnType::OrganizationName)
            .cloned()
        {
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(DnType::OrganizationName, o);
            dn.push(DnType::CommonName, "workload");
            params.distinguished_name = dn;
        }
        let k = key(KeyKind::P256);
        params.signed_by(&k, &issuer).unwrap().der().clone()
    };
    let dns = || SanType::DnsName("host.example".try_into().unwrap());
    let mail = |e: &str| SanType::Rfc822Name(e.try_into().unwrap());
    let v = verifier(&root_der);
    let cases: Vec<(&str, CertificateDer<'static>)> = vec![
        (
            "subject email in capitals beside a DNS SAN",
            issue(vec![dns()], vec![(email_oid.clone(), "CEO@VICTIM.COM")]),
        ),
        (
            "second subject email",
            issue(
                vec![dns()],
                vec![
                    (email_oid.clone(), "ok@example.com"),
                    (email_oid.clone(), "ceo@Victim.com"),
                ],
            ),
        ),
        (
            "SAN email mixed case",
            issue(vec![mail("Ceo@Victim.Com")], vec![]),
        ),
        (
            "SAN email beside an allowed one",
            issue(vec![mail("ok@example.com"), mail("ceo@victim.com")], vec![]),
        ),
        (
            "URI host in capitals",
            issue(vec![uri("spiffe://VICTIM.org/x")], vec![]),
        ),
        (
            "URI with userinfo",
            issue(vec![uri("spiffe://a@victim.org/x")], vec![]),
        ),
        (
            "URI with port",
            issue(vec![uri("https://victim.org:8443/x")], vec![]),
        ),
        (
            "organization in capitals, padded",
            issue(vec![dns()], vec![(DnType::OrganizationName, "  VICTIM ")]),
        ),
    ];
    let mut passed = Vec::new();
    for (name, leaf) in cases {
        if let Ok(c) = v.verify(&[leaf], certauth_testkit::wall_clock()) {
            passed.push(format!("{name}: {}", c.leaf().subject().to_rfc4514()));
        }
    }
    assert!(
        passed.is_empty(),
        "past the excluded subtrees:\n{}",
        passed.join("\n")
    );
    // And a client outside every excluded subtree still passes.
    let fine = issue(
        vec![mail("ceo@example.com"), uri("spiffe://example.org/x")],
        vec![],
    );
    assert!(v.verify(&[fine], certauth_testkit::wall_clock()).is_ok());
}

/// Attack review of finding 10: a violation quotes the name it judged; a terminal escape in
/// a URI SAN (IA5String allows ESC) is escaped in the error's text (`certauth verify`
/// prints it, adapters log it).
#[test]
fn a_violation_quotes_a_uri_with_its_control_characters_escaped() {
    let root = constrained_root("SPIFFE CA", &[der::tlv(0x86, b"example.org")]);
    let (leaf, _) = client(&root, vec![uri("spiffe://x\u{1b}]0;owned\u{7}/")]);
    let err = verifier(&root.2)
        .verify(&[leaf], certauth_testkit::wall_clock())
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(['\u{1b}', '\u{7}']), "{text:?}");
    assert!(text.contains("spiffe://x\\u{1b}]0;owned\\u{7}/"), "{text}");
}
