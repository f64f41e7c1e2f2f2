use super::*;

#[test]
fn serial_hex_matches_openssl() {
    assert_eq!(serial_hex(&[0x05]), "05");
    assert_eq!(serial_hex(&[0x00, 0x80]), "80");
    assert_eq!(serial_hex(&[0x00]), "0");
    assert_eq!(serial_hex(&[0x01, 0x00]), "0100");
    assert_eq!(serial_hex(&[0xFF]), "-01");
    assert_eq!(serial_hex(&[0x80]), "-80");
}

#[test]
fn colon_hex_format() {
    assert_eq!(colon_hex(&[0xAB, 0x01]), "AB:01");
    assert_eq!(colon_hex(&[]), "");
}

#[test]
fn rejects_garbage_without_panicking() {
    for input in [
        &[][..],
        &[0x30],
        &[0x30, 0x00],
        &[0x30, 0x03, 0x30, 0x01, 0x00],
        &[0xFF; 40],
    ] {
        assert!(ClientCertificate::from_der(input).is_err());
    }
    let big = vec![0u8; CertLimits::DEFAULT.max_der_bytes + 1];
    assert!(matches!(
        ClientCertificate::from_der(&big),
        Err(X509Error::TooLarge { .. })
    ));
}
