use super::*;

#[test]
fn reads_short_and_long_lengths() {
    let mut r = Reader::new(&[0x04, 0x01, 0xAA, 0x04, 0x81, 0x80]);
    let t = r.read(tag::OCTET_STRING).unwrap();
    assert_eq!(t.value, &[0xAA]);
    // Long form claims 128 bytes that are not there.
    assert!(r.read_any().is_err());
}

#[test]
fn rejects_non_minimal_and_indefinite_lengths() {
    assert!(Reader::new(&[0x04, 0x81, 0x01, 0x00]).read_any().is_err());
    assert!(Reader::new(&[0x04, 0x82, 0x00, 0x80]).read_any().is_err());
    assert!(Reader::new(&[0x30, 0x80, 0x00, 0x00]).read_any().is_err());
    assert!(Reader::new(&[0x1F, 0x81, 0x01, 0x00]).read_any().is_err());
    assert!(
        Reader::new(&[0x04, 0x85, 1, 0, 0, 0, 0])
            .read_any()
            .is_err()
    );
}

#[test]
fn error_offsets_point_into_the_outer_input() {
    let outer = [0x30, 0x03, 0x04, 0x05, 0x00];
    let seq = Reader::new(&outer).read(tag::SEQUENCE).unwrap();
    let err = seq.reader().read_any().unwrap_err();
    assert_eq!(err.offset, 4);
}

#[test]
fn integers_must_be_minimal() {
    let t = |v: &'static [u8]| Tlv {
        tag: tag::INTEGER,
        value: v,
        raw: v,
        value_offset: 0,
    };
    assert!(integer_bytes(t(&[0x00, 0x01])).is_err());
    assert!(integer_bytes(t(&[0xFF, 0x80])).is_err());
    assert!(integer_bytes(t(&[])).is_err());
    assert_eq!(integer_bytes(t(&[0x00, 0x80])).unwrap(), &[0x00, 0x80]);
    assert_eq!(small_uint(t(&[0x02])).unwrap(), 2);
    assert!(small_uint(t(&[0x80])).is_err());
}
