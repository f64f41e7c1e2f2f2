//! Any bytes as a certificate: parse, then read every field and build the legacy object.
#![no_main]

use certauth_core::ClientCertificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(c) = ClientCertificate::from_der(data) else {
        return;
    };
    let _ = (
        c.subject().to_rfc4514(),
        c.issuer().to_rfc4514(),
        c.serial_hex(),
    );
    for a in c.subject().attributes() {
        let _ = (a.short_name(), a.value(), a.oid().to_string());
    }
    let _ = c.subject_alt_names().count();
    let _ = c.extensions().count();
    let _ = c.extended_key_usage().map(Iterator::count);
    let _ = (
        c.public_key_algorithm(),
        c.spiffe_id(),
        c.is_ca(),
        c.key_usage(),
    );
    let _ = (
        c.subject_key_id(),
        c.authority_key_id(),
        c.email_addresses().count(),
    );
    let _ = serde_json_like(&c);
});

fn serde_json_like(c: &ClientCertificate) -> usize {
    let o = c.to_legacy_object();
    o.subjectaltname.map_or(0, |s| s.len()) + o.valid_from.len()
}
