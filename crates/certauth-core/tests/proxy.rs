//! Every preset and encoding, with header values made as each proxy documents them.
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

use certauth_core::proxy::{Encoding, Preset, ProxyHeaderConfig, ProxyHeaderError};
use certauth_core::{CertificateDer, ClientCertificate};
use certauth_testkit::{Authority, Issued, Leaf, encode};

struct Chain {
    leaf: Issued,
    inter: Authority,
}

fn chain() -> Chain {
    let root = Authority::root("Proxy Root");
    let inter = root.intermediate("Proxy Intermediate");
    let leaf = inter.issue(&Leaf::client("proxied-client"));
    Chain { leaf, inter }
}

fn cn(der: &CertificateDer<'_>) -> String {
    ClientCertificate::from_der(der)
        .unwrap()
        .subject()
        .common_names()
        .next()
        .unwrap()
        .into_owned()
}

fn decode(
    cfg: &ProxyHeaderConfig,
    value: &str,
) -> Result<Vec<CertificateDer<'static>>, ProxyHeaderError> {
    cfg.decode(value.as_bytes(), None)
}

#[test]
fn nginx_escaped_cert_with_chain() {
    let c = chain();
    let cfg = ProxyHeaderConfig::preset(Preset::Nginx);
    assert_eq!(cfg.header(), "X-SSL-Client-Cert");
    let value = encode::nginx_escaped(&format!("{}{}", c.leaf.pem(), c.inter.cert.pem()));
    assert!(value.contains("%0A") && !value.contains('\n'));
    let certs = decode(&cfg, &value).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(cn(&certs[0]), "proxied-client");
    assert_eq!(cn(&certs[1]), "Proxy Intermediate");
}

#[test]
fn aws_alb_leaves_plus_equals_slash_unescaped() {
    let c = chain();
    let cfg = ProxyHeaderConfig::preset(Preset::AwsAlb);
    assert_eq!(cfg.header(), "X-Amzn-Mtls-Clientcert");
    assert_eq!(cfg.encoding(), Encoding::UrlPemAws);
    // Find a certificate whose base64 has a `+` so the test means something.
    let pem = (0..20)
        .map(|_| chain().leaf.pem())
        .find(|p| p.contains('+'))
        .unwrap_or_else(|| c.leaf.pem());
    let value = encode::aws_alb(&pem);
    assert!(value.contains('+') || !pem.contains('+'));
    let certs = decode(&cfg, &value).unwrap();
    assert_eq!(cn(&certs[0]), "proxied-client");
    // Form-encoded armour (spaces as `+`) is understood too.
    let certs = decode(&cfg, &encode::form_encoded(&pem)).unwrap();
    assert_eq!(cn(&certs[0]), "proxied-client");
}

#[test]
fn cloudflare_and_haproxy_base64_der() {
    let c = chain();
    for preset in [Preset::Cloudflare, Preset::Haproxy] {
        let cfg = ProxyHeaderConfig::preset(preset);
        let certs = decode(&cfg, &encode::base64_der(&c.leaf.der)).unwrap();
        assert_eq!(certs[0].as_ref(), c.leaf.der.as_ref(), "{preset:?}");
    }
    assert_eq!(
        ProxyHeaderConfig::preset(Preset::Cloudflare).header(),
        "Cf-Client-Cert-Der-Base64"
    );
    let cfg = ProxyHeaderConfig::preset(Preset::Cloudflare);
    assert_eq!(
        decode(&cfg, "!!!").unwrap_err(),
        ProxyHeaderError::BadBase64
    );
    assert_eq!(decode(&cfg, "").unwrap_err(), ProxyHeaderError::Empty);
}

#[test]
fn traefik_query_escaped_comma_separated_chain() {
    let c = chain();
    let cfg = ProxyHeaderConfig::preset(Preset::Traefik);
    assert_eq!(cfg.header(), "X-Forwarded-Tls-Client-Cert");
    let value = encode::traefik(&[&c.leaf.der, &c.inter.cert.der]);
    assert!(value.contains("%2C"), "Traefik escapes the separator too");
    let certs = decode(&cfg, &value).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(cn(&certs[1]), "Proxy Intermediate");
    // Unescaped, comma-separated with spaces, also fine.
    let plain = format!(
        "{}, {}",
        encode::base64_der(&c.leaf.der),
        encode::base64_der(&c.inter.cert.der)
    );
    assert_eq!(decode(&cfg, &plain).unwrap().len(), 2);
}

#[test]
fn rfc9440_client_cert_and_chain() {
    let c = chain();
    let cfg = ProxyHeaderConfig::preset(Preset::Rfc9440);
    assert_eq!(cfg.header(), "Client-Cert");
    let leaf = encode::sf_binary(&c.leaf.der);
    let chain = format!(
        "{}, {}",
        encode::sf_binary(&c.inter.cert.der),
        encode::sf_binary(&c.inter.cert.der)
    );
    let certs = cfg.decode(leaf.as_bytes(), Some(chain.as_bytes())).unwrap();
    assert_eq!(certs.len(), 3);
    assert_eq!(certs[0].as_ref(), c.leaf.der.as_ref());
    assert_eq!(
        decode(&cfg, &encode::base64_der(&c.leaf.der)).unwrap_err(),
        ProxyHeaderError::BadStructuredField
    );
}

/// An XFCC element as Envoy writes it with `forward_client_cert_details` and every
/// `set_current_client_cert_details` option on.
fn xfcc_element(by: &str, leaf: &Issued, chain_pems: &str, hash_of: &[u8]) -> String {
    format!(
        "By={by};Hash={};Cert=\"{}\";Chain=\"{}\";Subject=\"CN=proxied-client,O=Org\\, Inc.;x=y\";URI=spiffe://example.org/client;DNS=client.example.org",
        encode::sha256_hex(hash_of),
        encode::nginx_escaped(&leaf.pem()),
        encode::nginx_escaped(chain_pems),
    )
}

#[test]
fn envoy_xfcc_multi_hop_with_quoted_separators() {
    let c = chain();
    let other = chain();
    let cfg = ProxyHeaderConfig::preset(Preset::Envoy);
    assert_eq!(cfg.header(), "X-Forwarded-Client-Cert");
    let first = xfcc_element(
        "spiffe://example.org/edge",
        &other.leaf,
        &format!("{}{}", other.leaf.pem(), other.inter.cert.pem()),
        &other.leaf.der,
    );
    let last = xfcc_element(
        "spiffe://example.org/sidecar",
        &c.leaf,
        &format!("{}{}", c.leaf.pem(), c.inter.cert.pem()),
        &c.leaf.der,
    );
    let value = format!("{first},{last}");

    // Default: the last element, written by the nearest proxy.
    let certs = decode(&cfg, &value).unwrap();
    assert_eq!(certs[0].as_ref(), c.leaf.der.as_ref());
    assert_eq!(certs.len(), 2, "Chain's copy of the leaf is not repeated");
    assert_eq!(cn(&certs[1]), "Proxy Intermediate");

    let first_cfg = cfg.clone().with_xfcc_first();
    assert_eq!(
        decode(&first_cfg, &value).unwrap()[0].as_ref(),
        other.leaf.der.as_ref()
    );
    let only = cfg.clone().with_xfcc_only();
    assert_eq!(
        decode(&only, &value).unwrap_err(),
        ProxyHeaderError::XfccElementCount { count: 2 }
    );
    assert!(decode(&only, &last).is_ok());
}

#[test]
fn envoy_xfcc_hash_must_match_cert() {
    let c = chain();
    let cfg = ProxyHeaderConfig::preset(Preset::Envoy);
    let bad = xfcc_element("spiffe://x/y", &c.leaf, &c.leaf.pem(), &c.inter.cert.der);
    let err = decode(&cfg, &bad).unwrap_err();
    assert_eq!(err, ProxyHeaderError::XfccHashMismatch);
    assert_eq!(err.code(), "XFCC_HASH_MISMATCH");
    // Envoy's documentation example: Hash and URI, no Cert.
    let doc = "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject=\"/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client\";URI=spiffe://lyft.com/test-team";
    assert_eq!(decode(&cfg, doc).unwrap_err(), ProxyHeaderError::XfccNoCert);
    // Broken quoting.
    assert!(matches!(
        decode(&cfg, "By=a;Cert=\"unterminated").unwrap_err(),
        ProxyHeaderError::Xfcc { .. }
    ));
}

#[test]
fn custom_header_and_encoding() {
    let c = chain();
    let cfg = ProxyHeaderConfig::custom("X-Client-Cert", Encoding::UrlPem).unwrap();
    assert_eq!(cfg.chain_header(), None);
    // RFC 9440's encoding brings its chain header, whatever the certificate header's name.
    assert_eq!(
        ProxyHeaderConfig::custom("X-Gclb-Cert", Encoding::Rfc9440)
            .unwrap()
            .chain_header(),
        Some("Client-Cert-Chain")
    );
    assert_eq!(
        ProxyHeaderConfig::preset(Preset::Rfc9440).chain_header(),
        Some("Client-Cert-Chain")
    );
    assert_eq!(
        ProxyHeaderConfig::preset(Preset::Nginx).chain_header(),
        None
    );
    assert_eq!(
        decode(&cfg, &encode::nginx_escaped(&c.leaf.pem()))
            .unwrap()
            .len(),
        1
    );
    let cfg = ProxyHeaderConfig::custom("X-Gclb-Cert", Encoding::Rfc9440)
        .unwrap()
        .with_chain_header("X-Gclb-Chain")
        .unwrap();
    assert_eq!(cfg.chain_header(), Some("X-Gclb-Chain"));
    assert_eq!(
        decode(&cfg, &encode::sf_binary(&c.leaf.der)).unwrap().len(),
        1
    );
}

#[test]
fn caps_apply_before_decoding() {
    let c = chain();
    // A value exactly at the cap is decoded; one byte over is refused, naming both.
    let value = encode::nginx_escaped(&c.leaf.pem());
    let at_cap = ProxyHeaderConfig::preset(Preset::Nginx).with_max_value_bytes(value.len());
    assert_eq!(decode(&at_cap, &value).unwrap().len(), 1);
    let under = ProxyHeaderConfig::preset(Preset::Nginx).with_max_value_bytes(value.len() - 1);
    let err = decode(&under, &value).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "certificate header is {} bytes, over the limit of {}",
            value.len(),
            value.len() - 1
        )
    );
    let cfg = ProxyHeaderConfig::preset(Preset::Nginx).with_max_value_bytes(100);
    let value = encode::nginx_escaped(&c.leaf.pem());
    assert!(matches!(
        decode(&cfg, &value).unwrap_err(),
        ProxyHeaderError::TooLarge { max: 100, .. }
    ));
    let cfg = ProxyHeaderConfig::preset(Preset::Traefik).with_max_chain_len(1);
    let value = encode::traefik(&[&c.leaf.der, &c.inter.cert.der]);
    assert_eq!(
        decode(&cfg, &value).unwrap_err(),
        ProxyHeaderError::ChainTooLong { max: 1 }
    );
}

/// Every refusal names what is wrong in words (the log line) and keeps its stable code.
#[test]
fn header_errors_say_what_is_wrong() {
    let rows = [
        (
            ProxyHeaderError::ChainTooLong { max: 4 },
            "certificate header holds more than 4 certificates",
            "CHAIN_TOO_LONG",
        ),
        (
            ProxyHeaderError::BadPercentEncoding,
            "certificate header has an invalid % escape",
            "MALFORMED_CERTIFICATE_HEADER",
        ),
        (
            ProxyHeaderError::XfccHashMismatch,
            "x-forwarded-client-cert Hash does not match its Cert",
            "XFCC_HASH_MISMATCH",
        ),
        (
            ProxyHeaderError::XfccElementCount { count: 2 },
            "x-forwarded-client-cert has 2 elements where exactly one was expected",
            "MALFORMED_CERTIFICATE_HEADER",
        ),
    ];
    for (err, message, code) in rows {
        assert_eq!(err.to_string(), message);
        assert_eq!(err.code(), code, "{err}");
    }
}
