//! The README's policy file is a valid policy file.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, missing_docs)]

#[test]
fn readme_policy_file_parses() {
    let readme = include_str!("../README.md");
    // The policy file is the README's TOML block that is not a Cargo.toml excerpt.
    let block = readme
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|block| !block.contains("version = "))
        .unwrap();
    assert!(block.contains("status = 403"), "{block}");
    certauth::policy::file::from_toml(block).unwrap();
}
