//! Path validation against x509-limbo (C2SP's public suite, `tests/data/x509-limbo`): every
//! case through the core's chain verification, compared with its `expected_result`.
//!
//! SERVER cases run with `ChainVerifier::for_server_certificates` and, where they name a peer, webpki's name
//! check, here in the test: certauth authenticates clients and checks no server name, but
//! the case's verdict must reach the path-validation defect it is about. A case whose
//! verdict differs is listed in `tests/data/limbo-deviations.tsv` (`id`, what certauth says,
//! why); an unlisted difference fails, and so does a listed case that now agrees.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/deviations.rs"]
mod deviations;

use std::collections::BTreeMap;

use certauth_core::pem;
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{CertificateDer, Time};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateRevocationListDer, ServerName, UnixTime};
use serde_json::Value;

use deviations::data;

fn ders(pems: &Value) -> Vec<CertificateDer<'static>> {
    pems.as_array()
        .unwrap()
        .iter()
        .flat_map(|p| pem::certificates(p.as_str().unwrap().as_bytes()))
        .map(|c| CertificateDer::from(c.unwrap()))
        .collect()
}

/// What certauth says of one case: `OK` or the code (or why it could not be set up).
fn run(case: &Value) -> String {
    let trusted = ders(&case["trusted_certs"]);
    // As `certauth serve --skip-bad-roots` loads a bundle: a root that breaks a rule is left
    // out (strict loading refuses the bundle; tests/verify.rs covers that).
    let anchors = match TrustAnchors::from_der_skipping_bad(trusted) {
        Ok((a, _)) => a,
        Err(e) => return format!("ANCHORS: {e}"),
    };
    let mut v = ChainVerifier::new(anchors, webpki::ALL_VERIFICATION_ALGS);
    if case["validation_kind"] == "SERVER" {
        v = v.for_server_certificates();
    }
    if let Some(crls) = case["crls"].as_array().filter(|c| !c.is_empty()) {
        let ders: Vec<CertificateRevocationListDer<'static>> = crls
            .iter()
            .flat_map(|p| {
                CertificateRevocationListDer::pem_slice_iter(p.as_str().unwrap().as_bytes())
                    .map(Result::unwrap)
                    .collect::<Vec<_>>()
            })
            .collect();
        v = match v.with_crls(ders) {
            Ok(v) => v,
            Err(e) => return format!("CRLS: {e}"),
        };
    }
    if let Some(depth) = case["max_chain_depth"].as_u64() {
        // limbo counts intermediates between the leaf and the anchor; certauth counts the
        // certificates presented, leaf included.
        v = v.with_max_chain_len(usize::try_from(depth).unwrap() + 1);
    }
    let mut chain = ders(&Value::Array(vec![case["peer_certificate"].clone()]));
    chain.extend(ders(&case["untrusted_intermediates"]));
    let now = case["validation_time"]
        .as_str()
        .map(|t| Time::parse_rfc3339(t).expect("limbo time"))
        .and_then(Time::to_unix_time)
        .unwrap_or_else(|| {
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_704_067_200))
        });
    match v.verify(&chain, now) {
        Err(e) => e.code().to_owned(),
        Ok(_) => match peer_name(case) {
            Some(name) => {
                let ee = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
                match ee.verify_is_valid_for_subject_name(&name) {
                    Ok(()) => "OK".into(),
                    Err(_) => "NAME_MISMATCH".into(),
                }
            }
            None => "OK".into(),
        },
    }
}

/// The server name a SERVER case checks, if any.
fn peer_name(case: &Value) -> Option<ServerName<'static>> {
    if case["validation_kind"] != "SERVER" {
        return None;
    }
    let name = &case["expected_peer_name"];
    let value = name["value"].as_str()?;
    ServerName::try_from(value.to_owned()).ok()
}

#[test]
fn every_limbo_case_agrees_or_is_a_listed_deviation() {
    let text = std::fs::read_to_string(data().join("x509-limbo/limbo.json")).unwrap();
    let suite: Value = serde_json::from_str(&text).unwrap();
    let mut differ: BTreeMap<String, String> = BTreeMap::new();
    let mut agree = 0;
    for case in suite["testcases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap().to_owned();
        let got = std::panic::catch_unwind(|| run(case)).unwrap_or_else(|_| "PANIC".into());
        let want_ok = case["expected_result"] == "SUCCESS";
        if (got == "OK") == want_ok {
            agree += 1;
        } else {
            differ.insert(id, got);
        }
    }
    let listed = deviations::table("limbo-deviations.tsv");
    let mut failures = deviations::compare(&differ, &listed);
    deviations::check_docs("limbo", &listed, &mut failures);
    eprintln!("limbo: {agree} agree, {} differ", differ.len());
    assert!(
        failures.is_empty(),
        "{} limbo cases differ without a listed reason:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
