//! Any text as a policy file: an error with a position, or a policy, never a panic.
#![no_main]

use certauth_core::SetupError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match certauth_core::policy::file::from_toml(text) {
        Err(SetupError::PolicyFile { line, column, .. }) => assert!(line >= 1 && column >= 1),
        Err(other) => panic!("a policy file error without a position: {other}"),
        Ok(_) => {}
    }
});
