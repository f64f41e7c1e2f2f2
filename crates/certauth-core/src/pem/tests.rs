use super::*;

const DER: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];
const B64: &str = "MAMCAQU=";

#[test]
fn every_certificate_label_and_nothing_else() {
    let text = format!(
        "junk before\n-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----\n\
         -----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n\
         -----BEGIN X509 CERTIFICATE-----\r\n{B64}\r\n-----END X509 CERTIFICATE-----\r\n\
         -----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n\
         AAAA\n-----END RSA PRIVATE KEY-----\ntext after\n"
    );
    assert_eq!(
        blocks(text.as_bytes()),
        [Ok(DER.to_vec()), Ok(DER.to_vec())]
    );
}

#[test]
fn a_trusted_certificate_is_its_first_element() {
    // The certificate, then OpenSSL's trust settings (an arbitrary SEQUENCE here).
    let aux = [DER, &[0x30, 0x02, 0x05, 0x00]].concat();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&aux);
    let text =
        format!("-----BEGIN TRUSTED CERTIFICATE-----\n{b64}\n-----END TRUSTED CERTIFICATE-----\n");
    assert_eq!(blocks(text.as_bytes()), [Ok(DER.to_vec())]);
}

#[test]
fn openssl_refusals() {
    let bom = format!("\u{feff}-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----\n");
    assert_eq!(
        blocks(bom.as_bytes()),
        [Ok(DER.to_vec())],
        "a byte-order mark is skipped"
    );
    let colon = format!("-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----:\n");
    assert_eq!(
        blocks(colon.as_bytes()),
        [Err(PemError::BadEndLine { line: 3 })]
    );
    let blank = "-----BEGIN CERTIFICATE-----\nMAMC\n\nAQU=\n-----END CERTIFICATE-----\n";
    assert_eq!(
        blocks(blank.as_bytes()),
        [Err(PemError::BlankLine { line: 1 })]
    );
    let open = format!(
        "-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nMAMC"
    );
    assert_eq!(
        blocks(open.as_bytes()),
        [Ok(DER.to_vec()), Err(PemError::Unterminated { line: 4 })]
    );
    let bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert_eq!(
        blocks(bad.as_bytes()),
        [Err(PemError::BadBase64 { line: 1 })]
    );
    assert!(blocks(b"no pem at all").is_empty());
    for e in [
        PemError::Unterminated { line: 1 },
        PemError::BadEndLine { line: 2 },
        PemError::BlankLine { line: 3 },
        PemError::BadBase64 { line: 4 },
    ] {
        assert!(e.to_string().contains("line"), "{e}");
    }
}
