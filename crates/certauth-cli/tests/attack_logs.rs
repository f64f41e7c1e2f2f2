//! Attack review of issue 25, finding 10: a client's certificate names reach `certauth
//! serve`'s log lines with their control and bidi characters escaped, in both log formats,
//! on every path that logs one (a denial on the raw gate, a Socket.IO connection).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use certauth_testkit::Leaf;
use certauth_testkit::proxies;
use certauth_testkit::suite::{self, Pki};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("certauth-attack-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Characters a log line must never carry raw from a client: line breaks of every kind,
/// C1 controls, bidi overrides.
const HOSTILE: [char; 5] = ['\r', '\n', '\u{85}', '\u{2028}', '\u{202e}'];

/// Runs `certauth serve` with `args`, stderr to a file; `client` talks to it; returns the
/// log.
fn logged(dir: &Dir, args: &[&str], client: impl FnOnce(u16)) -> String {
    let log = dir.0.join(format!("serve-{}.log", proxies::next_id()));
    let (child, port) = proxies::start_certauth(
        Command::new(env!("CARGO_BIN_EXE_certauth"))
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "debug"),
        &log,
    );
    let served = Served(child);
    client(port);
    std::thread::sleep(Duration::from_millis(300));
    drop(served);
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn certificate_names_never_reach_a_log_line_raw() {
    let pki = Pki::new();
    let dir = Dir::new("logs");
    let ca = dir.file("ca.pem", &pki.root.cert.pem());
    let cert = dir.file("server.pem", &pki.server.pem());
    let key = dir.file("server.key", &pki.server.key_pem());
    let server_ca = dir.file("server-ca.pem", &pki.server_root.cert.pem());
    let forger = pki
        .root
        .issue(&Leaf::client("evil\u{202e}nimda\u{85}\u{2028}x").around_wall_clock());
    let forger_cert = dir.file("forger.pem", &forger.pem());
    let forger_key = dir.file("forger.key", &forger.key_pem());
    let node = suite::node_peers_dir();
    let sio = |port: u16| {
        let out = Command::new("node")
            .arg(node.join("sio-client.js"))
            .arg(format!("https://localhost:{port}"))
            .arg(&server_ca)
            .arg(&forger_cert)
            .arg(&forger_key)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let curl = |port: u16| {
        let _ = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-o", "/dev/null"])
            .arg("--resolve")
            .arg(format!("localhost:{port}:127.0.0.1"))
            .args([
                "--cacert",
                &server_ca,
                "--cert",
                &forger_cert,
                "--key",
                &forger_key,
            ])
            .arg(format!("https://localhost:{port}/whoami"))
            .output()
            .unwrap();
    };
    let mut failures = Vec::new();
    for format in ["text", "json"] {
        // Socket.IO: the client is allowed and its connection is logged.
        let log = logged(
            &dir,
            &[
                "--ca",
                &ca,
                "--cert",
                &cert,
                "--key",
                &key,
                "--socketio",
                "--log-format",
                format,
            ],
            |port| {
                let reply = sio(port);
                assert_eq!(reply, "MESSAGE Echo: hello", "socket.io client: {reply}");
            },
        );
        for line in log.lines().filter(|l| l.contains("evil")) {
            if line.contains(HOSTILE) {
                failures.push(format!("{format} socket.io: {line:?}"));
            }
        }
        // The raw gate: the client is denied by the policy, and the denial logged.
        let log = logged(
            &dir,
            &[
                "--ca",
                &ca,
                "--cert",
                &cert,
                "--key",
                &key,
                "--allow-cn",
                "trusted-client",
                "--log-format",
                format,
            ],
            curl,
        );
        assert!(
            log.contains("evil"),
            "{format}: the denial was not logged: {log}"
        );
        for line in log.lines().filter(|l| l.contains("evil")) {
            if line.contains(HOSTILE) {
                failures.push(format!("{format} denial: {line:?}"));
            }
        }
        // Allowed on the raw gate: `client authenticated`.
        let log = logged(
            &dir,
            &[
                "--ca",
                &ca,
                "--cert",
                &cert,
                "--key",
                &key,
                "--log-format",
                format,
            ],
            curl,
        );
        for line in log.lines().filter(|l| l.contains("evil")) {
            if line.contains(HOSTILE) {
                failures.push(format!("{format} allowed: {line:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `certauth verify` and `certauth inspect` print what a certificate holds to a terminal:
/// an ESC in a URI SAN (IA5String allows it) must not reach it raw (a terminal escape
/// sequence could rewrite the screen or the window title), nor a bidi override in a name.
#[test]
fn verify_and_inspect_never_print_a_certificates_escape_sequences() {
    use certauth_testkit::rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, SanType,
    };
    use certauth_testkit::{KeyKind, der, key, pem};
    let dir = Dir::new("term");
    let ca_key = key(KeyKind::P256);
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "URI CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Permitted: URI example.org, directoryName O=Example.
    let o_example = der::seq(&[der::tlv(
        0x31,
        &der::seq(&[
            der::tlv(0x06, &[0x55, 0x04, 0x0A]),
            der::tlv(0x0C, b"Example"),
        ]),
    )]);
    let subtrees = [
        der::seq(&[der::tlv(0x86, b"example.org")]),
        der::seq(&[der::tlv(0xA4, &o_example)]),
    ]
    .concat();
    let mut ext =
        CustomExtension::from_oid_content(&[2, 5, 29, 30], der::seq(&[der::tlv(0xA0, &subtrees)]));
    ext.set_criticality(true);
    ca.custom_extensions.push(ext);
    let ca_pem = pem("CERTIFICATE", ca.self_signed(&ca_key).unwrap().der());
    let issuer = Issuer::from_params(&ca, &ca_key);
    let mut failures = Vec::new();
    let hostile = ['\u{1b}', '\u{7}', '\u{202e}', '\u{85}'];
    for (name, uri, cn) in [
        (
            "uri",
            "spiffe://x\u{1b}]0;owned\u{7}\u{1b}[2J/",
            "plain".to_owned(),
        ),
        (
            "dn",
            "spiffe://example.org/ok",
            "evil\u{202e}nimda\u{85}".to_owned(),
        ),
    ] {
        let mut leaf = Leaf::client(&cn).around_wall_clock();
        leaf.sans = vec![SanType::URI(uri.try_into().unwrap())];
        let k = key(KeyKind::P256);
        let leaf_pem = pem(
            "CERTIFICATE",
            leaf.params().signed_by(&k, &issuer).unwrap().der(),
        );
        let ca_file = dir.file("uri-ca.pem", &ca_pem);
        let leaf_file = dir.file(&format!("{name}.pem"), &leaf_pem);
        for args in [
            vec!["verify", "--ca", &ca_file, &leaf_file],
            vec!["inspect", &leaf_file],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_certauth"))
                .args(&args)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if text.contains(hostile) {
                failures.push(format!("{name} `certauth {}`: {text:?}", args[0]));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
