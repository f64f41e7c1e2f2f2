use super::*;

#[test]
fn cidrs() {
    let c: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(c.contains("10.1.2.3".parse().unwrap()));
    assert!(
        c.contains("::ffff:10.1.2.3".parse().unwrap()),
        "v4-mapped v6"
    );
    assert!(!c.contains("11.0.0.1".parse().unwrap()));
    let one: Cidr = "127.0.0.1".parse().unwrap();
    assert!(one.contains("127.0.0.1".parse().unwrap()));
    assert!(!one.contains("127.0.0.2".parse().unwrap()));
    let v6: Cidr = "fd00::/8".parse().unwrap();
    assert!(v6.contains("fd12::1".parse().unwrap()));
    assert!(!v6.contains("fe80::1".parse().unwrap()));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains("8.8.8.8".parse().unwrap()));
    for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad}");
    }
    assert_eq!(
        "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
        "10.0.0.0/8"
    );
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode(b"a%20b+c%2B").unwrap(), b"a b+c+");
    assert!(percent_decode(b"%2").is_err());
    assert!(percent_decode(b"%zz").is_err());
}

#[test]
fn sf_binary_items() {
    assert_eq!(sf_binary(b":aGk=:").unwrap(), b"hi");
    assert_eq!(sf_binary(b":aGk:").unwrap(), b"hi", "padding optional");
    assert!(sf_binary(b"aGk=").is_err());
    assert!(sf_binary(b":a*k=:").is_err());
    assert!(sf_binary(b":").is_err());
}

#[test]
fn names_parse() {
    assert_eq!("aws-alb".parse::<Preset>().unwrap(), Preset::AwsAlb);
    assert_eq!(
        "url-pem-aws".parse::<Encoding>().unwrap(),
        Encoding::UrlPemAws
    );
    assert!("nope".parse::<Preset>().is_err());
    assert!("nope".parse::<Encoding>().is_err());
    assert_eq!(Encoding::Base64Der.name(), "base64-der");
    assert!(ProxyHeaderConfig::custom("Bad Header", Encoding::UrlPem).is_err());
}

#[test]
fn the_preset_table_covers_every_preset_once() {
    let mut names = std::collections::HashSet::new();
    for p in Preset::ALL {
        assert_eq!(p.name().parse::<Preset>().ok(), Some(p), "{p:?}");
        assert_eq!(p.to_string(), p.name());
        assert!(names.insert(p.name()), "{} twice", p.name());
        assert!(
            !p.header().is_empty() && valid_header_name(p.header()),
            "{p:?}"
        );
    }
    assert_eq!(PRESETS.len(), Preset::ALL.len());
    assert_eq!("istio".parse::<Preset>().ok(), Some(Preset::Envoy));
    assert_eq!("gcp".parse::<Preset>().ok(), Some(Preset::Rfc9440));
    assert_eq!(Preset::Nginx.encoding(), Encoding::UrlPem);
    assert_eq!(Preset::Haproxy.header(), "X-SSL-Client-Cert");
    let e = "apache".parse::<Preset>().unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown proxy preset `apache`: use one of aws-alb, envoy, cloudflare, traefik, nginx, \
         haproxy, rfc9440"
    );
}

#[test]
fn the_encoding_table_covers_every_encoding_once() {
    for e in Encoding::ALL {
        assert_eq!(e.name().parse::<Encoding>().ok(), Some(e), "{e:?}");
        assert_eq!(e.to_string(), e.name());
    }
    assert_eq!(ENCODINGS.len(), Encoding::ALL.len());
    assert_eq!(
        Encoding::names(),
        "url-pem, url-pem-aws, xfcc, base64-der, rfc9440"
    );
    assert!("pem".parse::<Encoding>().is_err());
}

#[test]
fn preset_aliases() {
    assert_eq!(Preset::Envoy.aliases(), ["istio"]);
    assert_eq!(Preset::Rfc9440.aliases(), ["gcp"]);
    assert!(Preset::Nginx.aliases().is_empty());
}
