//! Where a decided request ends (`http::FirstRequest`, issue 25): over a random head and
//! random bytes after it, split at random, the bytes that belong to the request must not
//! depend on how reads were split, never exceed what was given, and a request that says it
//! is complete takes nothing more.
#![no_main]

use certauth_core::http::FirstRequest;
use certauth_core::{HeadParser, HeadProgress, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, bytes)) = data.split_first() else {
        return;
    };
    let limits = Limits::DEFAULT
        .with_max_head_bytes(2048)
        .with_max_headers(16);
    let Ok(HeadProgress::Complete { head, consumed }) = HeadParser::new(&limits).parse(bytes)
    else {
        return;
    };
    let Ok(mut whole) = FirstRequest::new(&head) else {
        return;
    };
    let rest = &bytes[consumed..];
    let taken = whole.take(rest);
    assert!(taken <= rest.len());
    if taken < rest.len() {
        assert!(whole.is_complete(), "stopped early without completing");
    }
    if whole.is_complete() {
        assert_eq!(whole.take(rest), 0, "a complete request takes no more");
    }
    // The same bytes in reads of a size derived from the first byte.
    let step = usize::from(split_seed % 13) + 1;
    let mut split = FirstRequest::new(&head).unwrap_or_else(|_| unreachable!());
    let mut total = 0;
    for chunk in rest.chunks(step) {
        let n = split.take(chunk);
        total += n;
        if n < chunk.len() {
            break;
        }
    }
    assert_eq!(taken, total, "split reads disagree");
    assert_eq!(whole.is_complete(), split.is_complete());
    // A 101 only switches an upgrade request.
    split.wrote(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    if split.switched() {
        assert!(head.header("upgrade").is_some());
    }
});
