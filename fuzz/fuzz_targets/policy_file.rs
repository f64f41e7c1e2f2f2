//! Any text as a policy file: an error with a position, or a policy, never a panic.
#![no_main]

use certauth_core::policy::file::PolicyFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = PolicyFile::from_toml(text) {
        assert!(e.line >= 1 && e.column >= 1);
    }
});
