//! Any prefix and any request target through a path policy (`policy::for_path`): a prefix
//! is refused with an error or makes a policy, never a panic; the policy decides any target
//! without a panic, and always applies to its own prefix (a stricter part of the site never
//! misses the path it names).
#![no_main]

use std::sync::LazyLock;

use certauth_core::policy::{PolicyExt, RequestInfo, for_path};
use certauth_core::{ClientCertificate, PolicyContext, Verdict};
use libfuzzer_sys::fuzz_target;

/// Any certificate serves: the policy under the prefix refuses everyone.
static ROOT: &[u8] = include_bytes!("../seeds/root.der");

fn cert() -> &'static ClientCertificate {
    static CERT: LazyLock<ClientCertificate> =
        LazyLock::new(|| ClientCertificate::from_der(ROOT).unwrap());
    &CERT
}

fn applies(policy: &dyn certauth_core::Policy, target: &str) -> bool {
    let ctx = PolicyContext::new(cert(), None, RequestInfo::new("GET", target));
    matches!(policy.evaluate(&ctx), Verdict::Deny(_))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the prefix, the rest the target.
    let (prefix, target) = text.split_once('\n').unwrap_or((text, "/"));
    let refuse = |_: &PolicyContext<'_>| false;
    let Ok(policy) = for_path(prefix, refuse.deny_with_403()) else {
        return;
    };
    let _ = applies(&policy, target);
    assert!(applies(&policy, prefix), "{prefix:?} does not apply to itself");
});
