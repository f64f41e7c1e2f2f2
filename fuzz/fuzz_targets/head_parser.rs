//! The head parser over random bytes and random chunking: the result must not depend on
//! where the reads were split, and `consumed` never exceeds the buffer.
#![no_main]

use certauth_core::{HeadParser, HeadProgress, Limits};
use libfuzzer_sys::fuzz_target;

fn outcome(
    p: Result<HeadProgress, certauth_core::HeadError>,
) -> Option<Result<(Vec<u8>, usize), String>> {
    match p {
        Ok(HeadProgress::NeedMore) => None,
        Ok(HeadProgress::Complete { head, consumed }) => Some(Ok((head.raw().to_vec(), consumed))),
        Err(e) => Some(Err(e.to_string())),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, bytes)) = data.split_first() else {
        return;
    };
    let limits = Limits::DEFAULT
        .with_max_head_bytes(2048)
        .with_max_headers(16);
    let whole = outcome(HeadParser::new(&limits).parse(bytes));
    if let Some(Ok((_, consumed))) = &whole {
        assert!(*consumed <= bytes.len());
    }
    // Feed in chunks of a size derived from the first byte.
    let step = usize::from(split_seed % 17) + 1;
    let mut parser = HeadParser::new(&limits);
    let mut end = 0;
    let mut chunked = None;
    while end < bytes.len() {
        end = (end + step).min(bytes.len());
        if let Some(o) = outcome(parser.parse(&bytes[..end])) {
            chunked = Some(o);
            break;
        }
    }
    match (&whole, &chunked) {
        // The chunked parse may finish earlier (a head completes before the rest arrives);
        // the head itself must be the same.
        (Some(Ok((h1, c1))), Some(Ok((h2, c2)))) => assert_eq!((h1, c1), (h2, c2)),
        (Some(Err(_)), Some(Err(_))) | (None, None) => {}
        (w, c) => panic!("whole {w:?} vs chunked {c:?}"),
    }
});
