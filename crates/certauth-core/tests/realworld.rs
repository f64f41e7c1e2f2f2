//! Real-world conformance: every certificate in `tests/data/realworld-certs` (2,238 files
//! that BoringSSL, rustls-webpki, x509-parser, asn1crypto, x509-limbo, zlint, pkilint,
//! OpenSSL and pyca keep as test data) gives exactly Node's legacy object, or is refused as
//! Node refuses it, or is listed in `tests/data/realworld-deviations.tsv` with the reason
//! certauth deliberately differs. A new difference fails; so does a listed one that no
//! longer differs.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/deviations.rs"]
mod deviations;

use std::collections::BTreeMap;

use certauth_core::ClientCertificate;
use certauth_core::pem;
use serde_json::Value;

/// The keys of the `inspect --json` contract (docs/DESIGN.md).
const CONTRACT: [&str; 11] = [
    "subject",
    "issuer",
    "subjectaltname",
    "serialNumber",
    "fingerprint",
    "fingerprint256",
    "fingerprint512",
    "valid_from",
    "valid_to",
    "ext_key_usage",
    "ca",
];

use deviations::data;

/// What certauth makes of certificate `index` of `file`: the contract keys, or the error.
fn ours(bytes: &[u8], index: usize) -> Result<Value, String> {
    // As `certauth inspect` reads a file: DER, or each certificate block of the PEM.
    let blocks = if bytes.first() == Some(&0x30) {
        vec![Ok(bytes.to_vec())]
    } else {
        pem::certificates(bytes)
    };
    let der = match blocks.get(index) {
        Some(Ok(der)) => der,
        Some(Err(e)) => return Err(format!("file: {e}")),
        None => return Err(format!("file: {} certificates, no #{index}", blocks.len())),
    };
    let cert = ClientCertificate::from_der(der).map_err(|e| format!("parse: {e}"))?;
    let mut v = serde_json::to_value(cert.to_legacy_object()).unwrap();
    v.as_object_mut()
        .unwrap()
        .retain(|k, _| CONTRACT.contains(&k.as_str()));
    Ok(v)
}

/// Node's view restricted to the contract keys it has.
fn nodes(node: &Value) -> Value {
    let keys: Vec<&str> = node["legacy_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let mut out = serde_json::Map::new();
    for k in CONTRACT {
        if keys.contains(&k) {
            out.insert(k.to_owned(), node.get(k).cloned().unwrap_or(Value::Null));
        }
    }
    Value::Object(out)
}

/// How one certificate came out.
fn outcome(ours: &Result<Value, String>, node: Option<&Value>) -> Option<String> {
    match (ours, node) {
        (Ok(o), Some(n)) => {
            let n = nodes(n);
            (o != &n).then(|| {
                let diff: Vec<String> = CONTRACT
                    .iter()
                    .filter(|k| o.get(**k) != n.get(**k))
                    .map(|k| (*k).to_owned())
                    .collect();
                format!("differs: {}", diff.join(","))
            })
        }
        (Err(e), Some(_)) => Some(format!("refused: {e}")),
        (Ok(_), None) => Some("accepted where Node refuses".into()),
        (Err(_), None) => None,
    }
}

#[test]
fn every_certificate_matches_node_or_is_a_listed_deviation() {
    let dir = data().join("realworld-certs");
    let lines = std::fs::read_to_string(dir.join("node-view.jsonl")).unwrap();
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    let mut checked = 0;
    for line in lines.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let file = entry["file"].as_str().unwrap();
        let index = usize::try_from(entry["index"].as_u64().unwrap()).unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let node = entry.get("node").filter(|n| !n.is_null());
        let ours = std::panic::catch_unwind(|| ours(&bytes, index))
            .unwrap_or_else(|_| Err("PANIC".into()));
        checked += 1;
        if let Some(o) = outcome(&ours, node) {
            got.insert(format!("{file}#{index}"), o);
        }
    }
    assert_eq!(checked, 2432, "every certificate of node-view.jsonl");
    let listed = deviations::table("realworld-deviations.tsv");
    let mut failures = deviations::compare(&got, &listed);
    deviations::check_docs("deviations", &listed, &mut failures);
    assert!(
        failures.is_empty(),
        "{} of {checked} certificates differ from Node without a listed reason:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
