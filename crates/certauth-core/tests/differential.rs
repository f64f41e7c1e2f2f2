//! The differential test over the real-world corpus: every certificate of
//! `tests/data/realworld-certs` through certauth's parser and x509-cert's (and webpki's
//! acceptance), with the properties of `support/differential.rs`. The `cert_differential`
//! fuzz target checks the same properties on any bytes.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "support/differential.rs"]
mod differential;

use std::collections::BTreeMap;
use std::path::Path;

use certauth_core::pem;
use differential::{Verdict, compare, webpki_reads};

#[test]
fn certauth_and_x509_cert_read_every_real_world_certificate_alike() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/realworld-certs");
    let lines = std::fs::read_to_string(dir.join("node-view.jsonl")).unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut violations = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in lines.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = entry["file"].as_str().unwrap();
        if !seen.insert(file.to_owned()) {
            continue;
        }
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let ders: Vec<Vec<u8>> = if bytes.first() == Some(&0x30) {
            vec![bytes]
        } else {
            pem::certificates(&bytes).into_iter().flatten().collect()
        };
        for der in ders {
            let verdict = compare(&der);
            let webpki = if webpki_reads(&der) {
                "webpki reads"
            } else {
                "webpki refuses"
            };
            let key = match &verdict {
                Ok(Verdict::Agree) => format!("both read ({webpki})"),
                Ok(Verdict::BothRefuse) => format!("both refuse ({webpki})"),
                Ok(Verdict::OnlyCertauth(why)) => format!("only certauth: {why} ({webpki})"),
                Ok(Verdict::OnlyReference(_)) => format!("only x509-cert ({webpki})"),
                Ok(Verdict::OnlyCertauthUnexplained(e)) => {
                    violations.push(format!("{file}: only certauth reads it; x509-cert: {e}"));
                    "VIOLATION".into()
                }
                Err(e) => {
                    violations.push(format!("{file}: {e}"));
                    "VIOLATION".into()
                }
            };
            *counts.entry(key).or_default() += 1;
        }
    }
    eprintln!("{counts:#?}");
    assert!(
        violations.is_empty(),
        "{} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    assert!(counts.keys().any(|k| k.starts_with("both read")));
}
