use super::*;

#[test]
fn displays_dotted_form() {
    let oid = Oid::from_der_contents(known::EMAIL_ADDRESS).unwrap();
    assert_eq!(oid.to_string(), "1.2.840.113549.1.9.1");
    let oid = Oid::from_der_contents(known::CN).unwrap();
    assert_eq!(oid.to_string(), "2.5.4.3");
    let oid = Oid::from_der_contents(known::MS_UPN).unwrap();
    assert_eq!(oid.to_string(), "1.3.6.1.4.1.311.20.2.3");
}

#[test]
fn round_trips_dotted_text() {
    for text in [
        "2.5.4.3",
        "1.2.840.113549.1.9.1",
        "2.999.1",
        "0.9.2342.19200300.100.1.25",
    ] {
        let der = encode_dotted(text).unwrap();
        assert_eq!(Oid::from_der_contents(&der).unwrap().to_string(), text);
    }
    assert_eq!(encode_dotted("2.5.4.3").unwrap(), known::CN);
    for bad in ["", "2", "3.1", "1.40", "2.05", "2..1", "x.1"] {
        assert!(encode_dotted(bad).is_none(), "{bad}");
    }
}

#[test]
fn rejects_invalid_encodings() {
    assert!(Oid::from_der_contents(&[]).is_none());
    assert!(Oid::from_der_contents(&[0x55, 0x84]).is_none());
    assert!(Oid::from_der_contents(&[0x55, 0x80, 0x01]).is_none());
    assert!(Oid::from_der_contents(&[0x80, 0x01]).is_none());
}

#[test]
fn arcs_at_the_first_subidentifier_edges_and_long_continuations() {
    let show = |b: &'static [u8]| Oid::from_der_contents(b).unwrap().to_string();
    assert_eq!(show(&[0x27]), "0.39");
    assert_eq!(show(&[0x28]), "1.0");
    assert_eq!(show(&[0x4F]), "1.39");
    assert_eq!(show(&[0x50]), "2.0");
    // 0x80 in the middle of an arc (16384 = 81 80 00) is not a leading zero.
    assert_eq!(show(&[0x2A, 0x81, 0x80, 0x00]), "1.2.16384");
    assert!(
        Oid::from_der_contents(&[0x2A, 0x80, 0x01]).is_none(),
        "leading zero digit"
    );
    assert_eq!(
        format!("{:?}", Oid::from_der_contents(&[0x2A, 0x03]).unwrap()),
        "Oid(1.2.3)"
    );
}
