//! The README's policy file is a valid policy file.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, missing_docs)]

#[test]
fn readme_policy_file_parses() {
    let readme = include_str!("../README.md");
    let block = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let file = certauth::policy::file::PolicyFile::from_toml(block).unwrap();
    assert_eq!(file.status(), certauth::policy::DenyStatus::Forbidden);
}
