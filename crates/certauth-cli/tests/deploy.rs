//! The Kubernetes example in `deploy/` stays true to the binary: its manifests are well-formed
//! (a line-based check of the YAML subset they use: no YAML crate is a dependency), every
//! flag it passes to `certauth serve` exists, every file it passes is under a mounted volume,
//! and the pod's timings match the drain (`terminationGracePeriodSeconds` covers the preStop
//! pause and `--grace`; readiness on `/healthz` at the `--metrics` port Prometheus scrapes).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// A content line: its indentation and text (comments and blank lines are not lines here).
struct Line<'a> {
    number: usize,
    indent: usize,
    text: &'a str,
}

/// The lines of one document, block scalars (`key: |`) left out, after checking the
/// structure: spaces only, even indentation, a deeper line only under a `key:` opening a
/// block, a shallower one back at an indentation in use, every line a `key: value`,
/// `key:`, or a `- ` item.
fn structure(doc: &str, name: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut lines = Vec::new();
    let mut scalar_above: Option<usize> = None;
    for (i, raw) in doc.lines().enumerate() {
        assert!(!raw.contains('\t'), "{name}:{}: a tab", i + 1);
        let text = raw.trim_start_matches(' ');
        let indent = raw.len() - text.len();
        if let Some(key_indent) = scalar_above {
            if text.is_empty() || indent > key_indent {
                continue;
            }
            scalar_above = None;
        }
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        assert!(raw.trim_end() == raw, "{name}:{}: trailing spaces", i + 1);
        assert_eq!(indent % 2, 0, "{name}:{}: odd indentation", i + 1);
        lines.push(Line {
            number: i + 1,
            indent,
            text,
        });
        if text.ends_with(": |") || text.ends_with(": >") {
            scalar_above = Some(indent + if text.starts_with("- ") { 2 } else { 0 });
        }
    }
    let mut open: Vec<usize> = vec![0];
    let mut previous: Option<&Line<'_>> = None;
    for line in &lines {
        let at = format!("{name}:{}", line.number);
        let item = line.text.starts_with("- ");
        let body = line.text.strip_prefix("- ").unwrap_or(line.text);
        let keyed = body
            .split_once(": ")
            .map(|(k, _)| k)
            .or_else(|| body.strip_suffix(':'));
        assert!(
            item || keyed.is_some_and(|k| !k.is_empty() && !k.contains(' ')),
            "{at}: neither `key: value`, `key:` nor `- item`: {:?}",
            line.text
        );
        if let Some(prev) = previous {
            let opens = prev.text.ends_with(':');
            if line.indent > prev.indent {
                assert!(
                    opens || prev.text.starts_with("- "),
                    "{at}: indented under a line that opens nothing"
                );
                open.push(line.indent);
            } else {
                if opens && !(item && line.indent == prev.indent) {
                    panic!("{at}: `{}` opens a block with nothing in it", prev.text);
                }
                while open.last().is_some_and(|i| *i > line.indent) {
                    open.pop();
                }
                assert_eq!(
                    open.last(),
                    Some(&line.indent),
                    "{at}: back to an indentation not in use"
                );
            }
        }
        out.push((line.number, line.indent, line.text.to_owned()));
        previous = Some(line);
    }
    out
}

/// The value of the first `key: value` line whose key is `key`, in one document.
fn value<'a>(lines: &'a [(usize, usize, String)], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|(_, _, text)| {
        let body = text.strip_prefix("- ").unwrap_or(text);
        body.strip_prefix(key)?
            .strip_prefix(": ")
            .map(|v| v.trim_matches('"'))
    })
}

#[test]
fn the_kubernetes_example_names_only_what_exists_and_drains_in_time() {
    let help = Command::new(env!("CARGO_BIN_EXE_certauth"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let mut manifests = 0;
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text.split("\n---\n") {
            manifests += 1;
            let lines = structure(doc, &name);
            let top = |key: &str| {
                lines
                    .iter()
                    .any(|(_, indent, t)| *indent == 0 && t.starts_with(&format!("{key}:")))
            };
            assert!(
                top("apiVersion") && top("kind") && top("metadata"),
                "{name}"
            );
            if value(&lines, "kind") != Some("Deployment") {
                continue;
            }
            let args: Vec<&str> = lines
                .iter()
                .filter_map(|(_, _, t)| t.strip_prefix("- --"))
                .collect();
            assert!(!args.is_empty(), "{name}: no certauth arguments found");
            let arg = |flag: &str| {
                args.iter()
                    .find_map(|a| a.strip_prefix(flag)?.strip_prefix('='))
            };
            for a in &args {
                let flag = a.split('=').next().unwrap();
                assert!(
                    help.contains(&format!("--{flag} ")) || help.contains(&format!("--{flag}\n")),
                    "{name}: `--{flag}` is not a flag of `certauth serve`"
                );
            }
            // Every file passed is under a volume mounted in the container.
            let mounts: Vec<&str> = lines
                .iter()
                .filter_map(|(_, _, t)| t.strip_prefix("mountPath: "))
                .collect();
            for flag in ["ca", "crl", "policy", "cert", "key", "session-ticket-key"] {
                for (f, file) in args.iter().filter_map(|a| a.split_once('=')) {
                    if f == flag {
                        assert!(
                            mounts.iter().any(|m| file.starts_with(&format!("{m}/"))),
                            "{name}: --{flag}={file} is under no mountPath"
                        );
                    }
                }
            }
            // Drain: Kubernetes' SIGKILL comes after the preStop pause and the grace.
            let number = |key: &str| -> f64 { value(&lines, key).unwrap().parse().unwrap() };
            let grace: f64 = arg("grace").unwrap().parse().unwrap();
            let pause = number("seconds");
            let kill = number("terminationGracePeriodSeconds");
            assert!(
                pause + grace < kill,
                "{name}: terminationGracePeriodSeconds {kill} does not cover preStop {pause} \
                 + --grace {grace}"
            );
            // Readiness on /healthz at the metrics port, which Prometheus scrapes.
            assert!(args.contains(&"health"), "{name}: /healthz needs --health");
            let port = arg("metrics").unwrap().rsplit(':').next().unwrap();
            assert_eq!(value(&lines, "prometheus.io/port"), Some(port), "{name}");
            assert_eq!(
                value(&lines, "prometheus.io/scrape"),
                Some("true"),
                "{name}"
            );
            assert_eq!(value(&lines, "path"), Some("/healthz"), "{name}");
            assert!(
                lines
                    .iter()
                    .any(|(_, _, t)| t == &format!("containerPort: {port}")),
                "{name}: the metrics port is not a containerPort"
            );
        }
    }
    assert!(
        manifests >= 3,
        "deploy/kubernetes holds {manifests} manifests"
    );
}

/// The checker refuses what a YAML parser would (or what would mean something else).
#[test]
fn the_line_check_refuses_broken_yaml() {
    for broken in [
        "kind: A\n  spec: 1\n",
        "kind: A\nspec:\nmetadata: x\n",
        "kind: A\nspec:\n    a: 1\n  b: 2\n",
        "kind: A\n\tspec: 1\n",
        "kind: A\nspec:\n   a: 1\n",
        "kind A\n",
    ] {
        let refused = std::panic::catch_unwind(|| structure(broken, "test")).is_err();
        assert!(refused, "{broken:?}");
    }
    structure(
        "kind: A\nspec:\n- a\n- b: 1\n  c: 2\ndata:\n  x: |\n    [ any\n   text:\n",
        "ok",
    );
}
