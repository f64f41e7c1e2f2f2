//! The same per-certificate decision in Node.js, timed the same way in the same run: Node's
//! `new X509Certificate(der).toLegacyObject()` plus a CN check (what client-certificate-auth
//! does per request), against certauth's parse + `allow_cn`, and x509-parser's parse + CN.
//!
//! `cargo bench -p certauth-benches --bench node` (needs `node`)
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use certauth_core::ClientCertificate;
use certauth_core::policy::{Policy, PolicyContext, RequestInfo, allow_cn};
use certauth_testkit::{Authority, Leaf};

const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Nanoseconds per iteration of `f`, median of ROUNDS rounds of `n` iterations.
fn time(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..n {
                    f();
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect(),
    )
}

const NODE: &str = r#"
const { X509Certificate } = require('crypto');
const der = require('fs').readFileSync(process.argv[1]);
const n = 20000, rounds = 5, out = [];
const once = () => { const o = new X509Certificate(der).toLegacyObject(); if (o.subject.CN !== 'trusted-client') throw 1; };
for (let i = 0; i < 2000; i++) once();
for (let r = 0; r < rounds; r++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) once();
  out.push(Number(process.hrtime.bigint() - t) / n);
}
out.sort((a, b) => a - b);
console.log(out[Math.floor(out.length / 2)]);
"#;

fn main() {
    let root = Authority::root("Bench Root");
    let inter = root.intermediate("Bench Intermediate");
    let leaf = inter.issue(&Leaf::client("trusted-client"));
    let der = leaf.der.to_vec();
    let path = std::env::temp_dir().join(format!("certauth-bench-{}.der", std::process::id()));
    std::fs::write(&path, &der).unwrap();

    let policy = allow_cn(["trusted-client"]);
    let ours = time(200_000, || {
        let c = ClientCertificate::from_der(black_box(&der)).unwrap();
        let ctx = PolicyContext::new(&c, None, RequestInfo::new("GET", "/"));
        assert!(policy.evaluate(&ctx).is_allow());
    });
    let x509_parser = time(100_000, || {
        let (_, c) = x509_parser::parse_x509_certificate(black_box(&der)).unwrap();
        assert_eq!(
            c.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "trusted-client"
        );
    });
    let node = std::process::Command::new("node")
        .args(["-e", NODE])
        .arg(&path)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .unwrap_or(f64::NAN)
        })
        .unwrap_or(f64::NAN);
    let _ = std::fs::remove_file(&path);
    println!("per-certificate decision (parse + CN check), median of {ROUNDS} rounds:");
    println!(
        "  certauth parse + allow_cn              {:>9.0} ns   1.0x",
        ours
    );
    println!(
        "  x509-parser parse + CN                 {:>9.0} ns   {:.1}x",
        x509_parser,
        x509_parser / ours
    );
    println!(
        "  Node X509Certificate + legacy + CN     {:>9.0} ns   {:.1}x",
        node,
        node / ours
    );
}
