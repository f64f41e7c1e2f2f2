//! The PROXY protocol parser over random first bytes of a connection: it never panics,
//! never claims more bytes than it was given or than a header may take, and answers the
//! same whether the bytes come at once or one by one (it is fed everything so far).
#![no_main]

use certauth_core::proxy::protocol::{MAX_V1_BYTES, MAX_V2_BYTES, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Ok(Some(header)) = whole {
        assert!(header.len <= data.len());
        assert!(header.len <= MAX_V1_BYTES.max(MAX_V2_BYTES));
        // The same header, with nothing after it.
        assert_eq!(parse(&data[..header.len]), whole);
    }
    // Byte by byte: more is asked for until the answer, and that answer is the whole's.
    for n in 0..data.len() {
        match parse(&data[..n]) {
            Ok(None) => {}
            Ok(Some(h)) => {
                assert_eq!(whole, Ok(Some(h)));
                break;
            }
            Err(e) => {
                assert_eq!(whole, Err(e));
                break;
            }
        }
    }
});
