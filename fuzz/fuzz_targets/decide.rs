//! The whole decision pipeline: random bytes split into a "peer chain" and a request head,
//! through the head parser, the authenticator (TLS peer; header mode as Envoy's XFCC, nginx
//! with its verify header, and RFC 9440 with a chain header) and the response
//! writer. Decisions are deterministic for a fixed `now`, and every response written parses
//! back as an HTTP/1.1 status line.
#![no_main]

use std::sync::LazyLock;

use certauth_core::policy::allow_cn;
use certauth_core::{
    Authenticator, CertificateDer, ChainVerifier, Decision, HeadParser, HeadProgress, Limits,
    PeerInfo, Preset, ProxyHeaderConfig, TrustAnchors, UnixTime,
};
use libfuzzer_sys::fuzz_target;

/// A fixed CA, made by `make-seeds.sh` (any CA works: the point is that verification runs).
static ROOT: &[u8] = include_bytes!("../seeds/root.der");

fn authenticators() -> &'static [Authenticator; 4] {
    static AUTH: LazyLock<[Authenticator; 4]> = LazyLock::new(|| {
        let verifier = || {
            ChainVerifier::new(
                TrustAnchors::from_der([CertificateDer::from(ROOT.to_vec())]).unwrap(),
                webpki::ALL_VERIFICATION_ALGS,
            )
        };
        let tls = Authenticator::builder()
            .verifier(verifier())
            .policy(allow_cn(["trusted-client"]))
            .build()
            .unwrap();
        let header = |proxy: ProxyHeaderConfig| {
            Authenticator::builder()
                .verifier(verifier())
                .proxy_header(proxy.with_trusted_proxies(["127.0.0.1"]).unwrap())
                .build()
                .unwrap()
        };
        [
            tls,
            header(ProxyHeaderConfig::preset(Preset::Envoy)),
            header(
                ProxyHeaderConfig::preset(Preset::Nginx)
                    .with_verify_header("X-SSL-Client-Verify", "SUCCESS")
                    .unwrap(),
            ),
            header(ProxyHeaderConfig::preset(Preset::Rfc9440)),
        ]
    });
    &AUTH
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let split = rest.iter().position(|b| *b == 0xFF).unwrap_or(0);
    let (chain_bytes, head_bytes) = rest.split_at(split);
    let chain: Vec<CertificateDer<'_>> = if chain_bytes.is_empty() {
        Vec::new()
    } else {
        vec![CertificateDer::from(chain_bytes)]
    };
    let auth = &authenticators()[usize::from(mode & 3)];
    let Ok(HeadProgress::Complete { head, .. }) =
        HeadParser::new(&Limits::DEFAULT).parse(head_bytes)
    else {
        return;
    };
    let peer = PeerInfo::new(&chain, Some([127, 0, 0, 1].into()));
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
    let first = auth.decide(&peer, &head, now).ready().unwrap();
    let second = auth.decide(&peer, &head, now).ready().unwrap();
    let bytes = |d: &Decision| match d {
        Decision::Allow(_) => Vec::new(),
        Decision::Deny(d) => d.response().to_bytes(),
    };
    assert_eq!(bytes(&first), bytes(&second), "decisions are deterministic");
    if let Decision::Deny(d) = &first {
        let out = d.response().to_bytes();
        assert!(out.starts_with(b"HTTP/1.1 4") || out.starts_with(b"HTTP/1.1 5"));
        assert!(out.windows(4).any(|w| w == b"\r\n\r\n"));
    }
});
