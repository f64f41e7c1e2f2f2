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
