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

/// `tag, lengths…, value` with a value of `len` zero bytes.
fn element(tag: u8, length: &[u8], len: usize) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(length);
    v.resize(1 + length.len() + len, 0);
    v
}

#[test]
fn length_forms_at_every_boundary() {
    // Short form up to 127; 128 needs the long form, which is then minimal.
    assert_eq!(
        Reader::new(&element(0x04, &[0x7F], 127))
            .read_any()
            .unwrap()
            .value
            .len(),
        127
    );
    assert_eq!(
        Reader::new(&element(0x04, &[0x81, 0x80], 128))
            .read_any()
            .unwrap()
            .value
            .len(),
        128
    );
    // 0x80 is the indefinite form, refused even with 128 bytes after it.
    assert!(
        Reader::new(&element(0x04, &[0x80], 128))
            .read_any()
            .is_err()
    );
    // Zero bytes inside a long length are fine; only a leading one is not minimal.
    assert_eq!(
        Reader::new(&element(0x04, &[0x82, 0x01, 0x00], 256))
            .read_any()
            .unwrap()
            .value
            .len(),
        256
    );
    // Four length bytes are allowed (16 MiB here), five are not.
    let big = element(0x04, &[0x84, 0x01, 0x00, 0x00, 0x00], 1 << 24);
    assert_eq!(Reader::new(&big).read_any().unwrap().value.len(), 1 << 24);
    // A high tag number (0x1F) is refused even when what follows would parse; tag 0 is not.
    assert!(Reader::new(&[0x1F, 0x01, 0x00]).read_any().is_err());
    assert_eq!(
        Reader::new(&[0x00, 0x01, 0x07]).read_any().unwrap().value,
        &[0x07]
    );
}

#[test]
fn context_tags() {
    assert_eq!(tag::context_constructed(3), 0xA3);
    assert_eq!(tag::context_primitive(6), 0x86);
}

fn tlv(tag_byte: u8, v: &[u8]) -> Tlv<'_> {
    Tlv {
        tag: tag_byte,
        value: v,
        raw: v,
        value_offset: 0,
    }
}

#[test]
fn booleans_are_00_or_ff() {
    assert_eq!(boolean(tlv(tag::BOOLEAN, &[0x00])), Ok(false));
    assert_eq!(boolean(tlv(tag::BOOLEAN, &[0xFF])), Ok(true));
    assert!(boolean(tlv(tag::BOOLEAN, &[0x01])).is_err());
    assert!(boolean(tlv(tag::BOOLEAN, &[])).is_err());
}

#[test]
fn negative_integers_and_small_uints_at_their_edges() {
    // -256 is 0xFF 0x00: minimal (the next byte's high bit is clear).
    assert_eq!(
        integer_bytes(tlv(tag::INTEGER, &[0xFF, 0x00])).unwrap(),
        &[0xFF, 0x00]
    );
    assert_eq!(
        integer_bytes(tlv(tag::INTEGER, &[0xFF, 0x7F])).unwrap(),
        &[0xFF, 0x7F]
    );
    assert_eq!(small_uint(tlv(tag::INTEGER, &[0x01, 0x00])).unwrap(), 256);
    assert_eq!(
        small_uint(tlv(tag::INTEGER, &[0x01, 0x02, 0x03])).unwrap(),
        0x0001_0203
    );
    // Five bytes: a leading zero and u32::MAX; past u32, or six bytes, refused.
    assert_eq!(
        small_uint(tlv(tag::INTEGER, &[0x00, 0xFF, 0xFF, 0xFF, 0xFF])).unwrap(),
        u32::MAX
    );
    assert!(small_uint(tlv(tag::INTEGER, &[0x01, 0x00, 0x00, 0x00, 0x00])).is_err());
    assert!(small_uint(tlv(tag::INTEGER, &[0x00, 0xFF, 0x00, 0x00, 0x00, 0x00])).is_err());
}

#[test]
fn bit_strings_count_unused_bits_only_when_there_are_bits() {
    assert_eq!(
        bit_string(tlv(tag::BIT_STRING, &[0x00])).unwrap(),
        (0, &[][..])
    );
    assert_eq!(
        bit_string(tlv(tag::BIT_STRING, &[0x07, 0x80])).unwrap(),
        (7, &[0x80][..])
    );
    assert!(
        bit_string(tlv(tag::BIT_STRING, &[0x03])).is_err(),
        "unused bits in nothing"
    );
    assert!(
        bit_string(tlv(tag::BIT_STRING, &[0x08, 0x00])).is_err(),
        "8 unused bits"
    );
    assert!(bit_string(tlv(tag::BIT_STRING, &[])).is_err());
}
