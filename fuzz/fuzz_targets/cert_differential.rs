//! Any bytes through certauth's certificate parser and x509-cert's: where both read a
//! certificate they read the same version, serial, names, validity, algorithms, key and
//! extensions. (Which one refuses what is held to explained gaps on the real-world corpus,
//! `crates/certauth-core/tests/differential.rs`.) Also exercises webpki's parser.
#![no_main]

#[path = "../../crates/certauth-core/tests/support/differential.rs"]
mod differential;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = differential::compare(data) {
        panic!("certauth and x509-cert disagree: {e}");
    }
    let _ = differential::webpki_reads(data);
});
