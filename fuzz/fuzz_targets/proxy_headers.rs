//! Every proxy-header decoder over random values: the first byte picks the encoding.
#![no_main]

use certauth_core::fuzzing::{percent_decode, xfcc_parse};
use certauth_core::proxy::{Encoding, ProxyHeaderConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, value)) = data.split_first() else {
        return;
    };
    let encoding = Encoding::ALL[usize::from(pick) % Encoding::ALL.len()];
    let cfg = ProxyHeaderConfig::custom("X-Cert", encoding)
        .unwrap()
        .with_max_value_bytes(4096)
        .with_max_chain_len(4);
    let (value, chain) = match value.iter().position(|b| *b == 0) {
        Some(i) => (&value[..i], Some(&value[i + 1..])),
        None => (value, None),
    };
    if let Ok(certs) = cfg.decode(value, chain) {
        assert!(!certs.is_empty() && certs.len() <= 4);
    }
    if let Ok(text) = std::str::from_utf8(value) {
        let _ = xfcc_parse(text);
    }
    let _ = percent_decode(value);
});
