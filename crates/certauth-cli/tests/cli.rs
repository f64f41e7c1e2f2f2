//! The `certauth` command as outside tools use it: outputs, formats and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use certauth_testkit::suite::{self, Pki};
use certauth_testkit::{Authority, Leaf, encode, node, proxies};

fn certauth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certauth"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("certauth-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn demo_shows_every_client_and_exits_zero() {
    let dir = Dir::new("demo");
    let out = certauth(&["demo", "--keep", &dir.path("pki")]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for row in [
        "echo received (\"Echo: hello\")",
        "200 OK, CN=trusted-client",
        "401 UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        "401 CERT_HAS_EXPIRED",
        "401 POLICY_DENIED",
        "401 NO_CERTIFICATE",
    ] {
        assert!(text.contains(row), "missing {row:?} in\n{text}");
    }
    assert!(!text.contains("UNEXPECTED"), "{text}");
    for f in [
        "ca.pem",
        "server.pem",
        "server.key",
        "trusted.pem",
        "trusted.key",
    ] {
        assert!(Path::new(&dir.path(&format!("pki/{f}"))).is_file(), "{f}");
    }
}

#[test]
fn inspect_json_is_nodes_legacy_object() {
    let root = Authority::root("Inspect Root");
    let mut leaf = Leaf::client("inspected");
    leaf.sans = vec![rcgen::SanType::URI(
        "spiffe://example.org/x".try_into().unwrap(),
    )];
    let leaf = root.issue(&leaf);
    let dir = Dir::new("inspect");
    let both = dir.file("both.pem", &format!("{}{}", leaf.pem(), root.cert.pem()));
    let out = certauth(&["inspect", "--json", &both]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let node = node::legacy_objects(&[leaf.der.to_vec(), root.cert.der.to_vec()]);
    assert_eq!(ours.len(), 2);
    assert_eq!(node.len(), 2);
    for (o, n) in ours.iter().zip(&node) {
        for (k, v) in o.as_object().unwrap() {
            assert_eq!(Some(v), n.get(k), "key {k}");
        }
    }
    // DER works; the readable form names what matters.
    let der = dir.0.join("leaf.der");
    std::fs::write(&der, &leaf.der).unwrap();
    let out = certauth(&["inspect", der.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("Subject:       CN=inspected"), "{text}");
    assert!(
        text.contains("SPIFFE ID:     spiffe://example.org/x"),
        "{text}"
    );
    assert!(text.contains("expires in"), "{text}");
    let signed = certauth_core::ClientCertificate::from_der(&leaf.der)
        .unwrap()
        .tbs_sha256_hex();
    assert!(
        text.contains(&format!("Signed SHA-256: {signed}\n")),
        "{text}"
    );
    // Malformed input: one line, exit 1.
    let bad = dir.file(
        "bad.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let out = certauth(&["inspect", "--json", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = certauth(&["inspect", &dir.path("missing.pem")]);
    assert_eq!(out.status.code(), Some(2), "unreadable file");
}

#[test]
fn verify_prints_ok_or_the_code() {
    let root = Authority::root("Verify Root");
    let inter = root.intermediate("Verify Intermediate");
    let good = inter.issue(&Leaf::client("good").around_wall_clock());
    let revoked = inter.issue(&Leaf::client("revoked").around_wall_clock());
    let mut e = Leaf::client("expired");
    e.not_before = 1_600_000_000;
    e.not_after = 1_700_000_000;
    let expired = root.issue(&e);
    let dir = Dir::new("verify");
    let ca = dir.file("ca.pem", &root.cert.pem());
    let chain = dir.file("chain.pem", &inter.cert.pem());
    let crl = dir.file(
        "crl.pem",
        &certauth_testkit::pem("X509 CRL", &inter.crl(&[&revoked])),
    );
    let good_path = dir.file("good.pem", &good.pem());
    let with_chain = dir.file(
        "good-chain.pem",
        &format!("{}{}", good.pem(), inter.cert.pem()),
    );
    let revoked_path = dir.file("revoked.pem", &revoked.pem());
    let expired_path = dir.file("expired.pem", &expired.pem());

    let run = |args: &[&str]| {
        let o = certauth(args);
        (stdout(&o).trim().to_owned(), o.status.code())
    };
    assert_eq!(
        run(&["verify", "--ca", &ca, &with_chain]),
        ("ok".into(), Some(0))
    );
    assert_eq!(
        run(&["verify", "--ca", &ca, &good_path]),
        ("UNABLE_TO_VERIFY_LEAF_SIGNATURE".into(), Some(1))
    );
    assert_eq!(
        run(&["verify", "--ca", &ca, "--chain", &chain, &good_path]),
        ("ok".into(), Some(0))
    );
    assert_eq!(
        run(&[
            "verify",
            "--ca",
            &ca,
            "--chain",
            &chain,
            "--crl",
            &crl,
            &revoked_path
        ]),
        ("CERT_REVOKED".into(), Some(1))
    );
    assert_eq!(
        run(&["verify", "--ca", &ca, &expired_path]),
        ("CERT_HAS_EXPIRED".into(), Some(1))
    );
    // Before the root's own notBefore (five years before the test's now), the root is not
    // valid yet, as OpenSSL says too.
    assert_eq!(
        run(&[
            "verify",
            "--ca",
            &ca,
            "--at",
            "2020-10-01T00:00:00Z",
            &expired_path
        ]),
        ("CERT_NOT_YET_VALID".into(), Some(1))
    );
    assert_eq!(
        run(&[
            "verify",
            "--ca",
            &ca,
            "--at",
            "2022-01-01T00:00:00Z",
            &expired_path
        ]),
        ("ok".into(), Some(0))
    );
    assert_eq!(
        run(&["verify", "--ca", &ca, "--at", "yesterday", &expired_path]).1,
        Some(2)
    );
    assert_eq!(
        run(&["verify", "--ca", &good_path, &good_path]).1,
        Some(2),
        "a leaf as CA"
    );
    assert_eq!(run(&["verify", &good_path]).1, Some(2), "missing --ca");
}

#[test]
fn check_prints_allow_or_deny() {
    let root = Authority::root("Check Root");
    let alice = root.issue(&Leaf::client("alice").around_wall_clock());
    let dir = Dir::new("check");
    let cert = dir.file("alice.pem", &alice.pem());
    let ca = dir.file("ca.pem", &root.cert.pem());
    let allow = dir.file("allow.toml", "[allow]\ncn = [\"alice\"]\n");
    let forbid = dir.file("forbid.toml", "status = 403\n[allow]\ncn = [\"bob\"]\n");
    let broken = dir.file(
        "broken.toml",
        "[allow]\nany_of = [\n  { cn = \"alice\" },\n]\n",
    );

    // Without --ca, nothing was verified, and it says so (on stderr: stdout is the answer).
    let out = certauth(&["check", "--policy", &allow, &cert]);
    assert_eq!((stdout(&out).trim(), out.status.code()), ("allow", Some(0)));
    assert!(
        stderr(&out).contains("not verified; only the policy was evaluated"),
        "{}",
        stderr(&out)
    );
    let out = certauth(&["check", "--policy", &allow, "--ca", &ca, &cert]);
    assert_eq!((stdout(&out).trim(), out.status.code()), ("allow", Some(0)));
    assert_eq!(stderr(&out), "", "verified: no note");
    let out = certauth(&["check", "--policy", &forbid, &cert]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("deny 403: CN not allowed"),
        "{}",
        stdout(&out)
    );
    let out = certauth(&["check", "--policy", &broken, &cert]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
}

/// Issue 27: `certauth check --crl` checks revocation (with --ca; without it, a usage
/// error).
#[test]
fn check_takes_crls() {
    let root = Authority::root("Check CRL Root");
    let alice = root.issue(&Leaf::client("alice").around_wall_clock());
    let bob = root.issue(&Leaf::client("bob").around_wall_clock());
    let dir = Dir::new("check-crl");
    let alice_pem = dir.file("alice.pem", &alice.pem());
    let bob_pem = dir.file("bob.pem", &bob.pem());
    let ca = dir.file("ca.pem", &root.cert.pem());
    let crl = dir.file(
        "crl.pem",
        &certauth_testkit::pem("X509 CRL", &root.crl(&[&alice])),
    );
    let policy = dir.file("allow.toml", "[allow]\nallow_any = true\n");
    let out = certauth(&[
        "check", "--policy", &policy, "--ca", &ca, "--crl", &crl, &alice_pem,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("deny 401: CERT_REVOKED"),
        "{}",
        stdout(&out)
    );
    let out = certauth(&[
        "check", "--policy", &policy, "--ca", &ca, "--crl", &crl, &bob_pem,
    ]);
    assert_eq!((stdout(&out).trim(), out.status.code()), ("allow", Some(0)));
    let out = certauth(&["check", "--policy", &policy, "--crl", &crl, &bob_pem]);
    assert_eq!(out.status.code(), Some(2), "--crl without --ca");
}

/// Issue 27: the policy file's `forbid` refuses the clients it names, through `certauth
/// check` and a running `certauth serve`; a file written for the old meaning is refused
/// at load by both, saying what changed.
#[test]
fn forbid_refuses_the_clients_it_names_in_check_and_serve() {
    let pki = Pki::new();
    let dir = Dir::new("forbid");
    let (ca, cert, key) = pki_files(&pki, &dir);
    let mut contractor = Leaf::client("contractor").around_wall_clock();
    contractor
        .extra_dn
        .push((rcgen::DnType::OrganizationName, "Contractors".into()));
    let contractor = pki.root.issue(&contractor);
    let contractor_pem = dir.file("contractor.pem", &contractor.pem());
    let trusted_pem = dir.file("trusted.pem", &pki.trusted.pem());
    let policy = dir.file(
        "forbid.toml",
        "[allow]\nforbid = [{ organization = [\"contractors\"] }]\n",
    );
    // The README's example before issue 27: it let contractors in.
    let old = dir.file(
        "old.toml",
        "[allow]\nany_of = [\n  { cn = [\"trusted-client\"] },\n  { forbid = { organization = [\"Contractors\"] } },\n]\n",
    );

    let out = certauth(&["check", "--policy", &policy, "--ca", &ca, &contractor_pem]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("deny 403: "), "{}", stdout(&out));
    let out = certauth(&["check", "--policy", &policy, "--ca", &ca, &trusted_pem]);
    assert_eq!((stdout(&out).trim(), out.status.code()), ("allow", Some(0)));
    let out = certauth(&["check", "--policy", &old, "--ca", &ca, &contractor_pem]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("line 4") && stderr(&out).contains("forbid_unless"),
        "{}",
        stderr(&out)
    );

    let args: Vec<String> = [
        "--ca", &ca, "--cert", &cert, "--key", &key, "--policy", &policy,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (_server, port) = serve(&args);
    let refused = whoami_over_tls(port, &pki, &contractor);
    assert!(
        refused.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{refused}"
    );
    let allowed = whoami_over_tls(port, &pki, &pki.trusted);
    assert!(allowed.starts_with("HTTP/1.1 200 OK\r\n"), "{allowed}");

    let out = certauth(&[
        "serve", "--ca", &ca, "--cert", &cert, "--key", &key, "--policy", &old,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("forbid_unless"), "{}", stderr(&out));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `certauth serve ARGS` on a port the system picks: the server and its port.
fn serve(args: &[String]) -> (proxies::Proc, u16) {
    proxies::certauth_serve(env!("CARGO_BIN_EXE_certauth"), args)
}

fn pki_files(pki: &Pki, dir: &Dir) -> (String, String, String) {
    (
        dir.file("ca.pem", &pki.root.cert.pem()),
        dir.file("server.pem", &pki.server.pem()),
        dir.file("server.key", &pki.server.key_pem()),
    )
}

#[test]
fn serve_on_both_runtimes() {
    let pki = Pki::new();
    let dir = Dir::new("serve");
    let (ca, cert, key) = pki_files(&pki, &dir);
    for runtime in ["tokio", "smol"] {
        let args: Vec<String> = [
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--allow-cn",
            "trusted-client",
            "--runtime",
            runtime,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let (_server, port) = serve(&args);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();

        // WebSocket echo.
        let tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
        ws.send(tungstenite::Message::text("hi")).unwrap();
        assert_eq!(ws.read().unwrap().to_string(), "Echo: hi", "{runtime}");
        let _ = ws.close(None);

        // GET /whoami answers the inspect --json object. A client offering h2 and
        // http/1.1 by ALPN is told http/1.1, what the raw gates speak.
        let mut alpn = (*suite::tls_client(&pki, Some(&pki.trusted))).clone();
        alpn.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut tls = suite::connect(addr, std::sync::Arc::new(alpn)).unwrap();
        tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let text = String::from_utf8(suite::read_to_close(&mut tls)).unwrap();
        assert_eq!(
            tls.conn.alpn_protocol(),
            Some(&b"http/1.1"[..]),
            "{runtime}"
        );
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{runtime}: {text}");
        let body = text.split_once("\r\n\r\n").unwrap().1;
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["subject"]["CN"], "trusted-client");
        assert_eq!(json["fingerprint256"], pki.trusted_fingerprint());

        // Rejections on the raw socket.
        let mut tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.denied))).unwrap();
        tls.write_all(suite::UPGRADE.as_bytes()).unwrap();
        let text = String::from_utf8(suite::read_to_close(&mut tls)).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
            "{runtime}: {text}"
        );
    }
}

#[test]
fn serve_behind_a_proxy_header() {
    let pki = Pki::new();
    let dir = Dir::new("proxy");
    let (ca, _, _) = pki_files(&pki, &dir);
    let args: Vec<String> = [
        "--source",
        "nginx",
        "--trusted-proxy",
        "127.0.0.1",
        "--ca",
        &ca,
        "--verify-header",
        "X-SSL-Client-Verify=SUCCESS",
        "--expose-reasons",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (_server, port) = serve(&args);
    let get = |headers: &str| {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "GET /whoami HTTP/1.1\r\nHost: backend\r\n{headers}\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = tcp.read_to_string(&mut out);
        out
    };
    let cert = encode::nginx_escaped(&pki.trusted.pem());
    let ok = get(&format!(
        "X-SSL-Client-Cert: {cert}\r\nX-SSL-Client-Verify: SUCCESS\r\n"
    ));
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.contains("\"CN\":\"trusted-client\""), "{ok}");
    let unverified = get(&format!(
        "X-SSL-Client-Cert: {cert}\r\nX-SSL-Client-Verify: FAILED\r\n"
    ));
    assert!(
        unverified.ends_with("Certificate verification failed (FAILED)"),
        "{unverified}"
    );
    let none = get("");
    assert!(none.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{none}");

    // Header mode without trusted proxies is a usage error.
    let out = certauth(&["serve", "--source", "nginx", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--trusted-proxy"), "{}", stderr(&out));

    // Header mode that would believe any forwarded certificate refuses to start: one line
    // naming both ways out, exit 2; --allow-unverified-proxy is the explicit opt-in.
    let base = ["serve", "--source", "nginx", "--trusted-proxy", "127.0.0.1"];
    let out = certauth(&[&base[..], &["--listen", "127.0.0.1:0"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--ca") && err.contains("--verify-header"),
        "{err}"
    );
    assert!(err.contains("--allow-unverified-proxy"), "{err}");
    let args: Vec<String> = [&base[1..], &["--allow-unverified-proxy"]]
        .concat()
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let (_unverified, _) = serve(&args);
}

#[test]
fn serve_errors_are_one_clear_line() {
    let pki = Pki::new();
    let dir = Dir::new("serve-errors");
    let (ca, cert, key) = pki_files(&pki, &dir);
    let wrong_key = dir.file("wrong.key", &pki.trusted.key_pem());
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let listen = format!("127.0.0.1:{port}");

    let out = certauth(&[
        "serve", "--ca", &ca, "--cert", &cert, "--key", &key, "--listen", &listen,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot listen on"),
        "{}",
        stderr(&out)
    );

    let out = certauth(&[
        "serve",
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &wrong_key,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("does the key belong to the certificate"),
        "{}",
        stderr(&out)
    );

    let out = certauth(&["serve", "--cert", &cert, "--key", &key]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--ca"), "{}", stderr(&out));

    for o in [
        certauth(&[
            "serve",
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--policy",
            &dir.path("nope.toml"),
        ]),
        certauth(&["bogus"]),
    ] {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

#[test]
fn serve_socketio() {
    let pki = Pki::new();
    let dir = Dir::new("sio");
    let (ca, cert, key) = pki_files(&pki, &dir);
    let server_ca = dir.file("server-ca.pem", &pki.server_root.cert.pem());
    let trusted = (
        dir.file("t.pem", &pki.trusted.pem()),
        dir.file("t.key", &pki.trusted.key_pem()),
    );
    let other = (
        dir.file("o.pem", &pki.other_ca.pem()),
        dir.file("o.key", &pki.other_ca.key_pem()),
    );
    let args: Vec<String> = [
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--allow-cn",
        "trusted-client",
        "--socketio",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (_server, port) = serve(&args);
    let node = suite::node_peers_dir();
    let client = |who: &(String, String)| {
        let out = Command::new("node")
            .arg(node.join("sio-client.js"))
            .arg(format!("https://localhost:{port}"))
            .arg(&server_ca)
            .arg(&who.0)
            .arg(&who.1)
            .output()
            .unwrap();
        stdout(&out).trim().to_owned()
    };
    assert_eq!(client(&trusted), "MESSAGE Echo: hello");
    assert_eq!(
        client(&other),
        "CONNECT_ERROR Authentication failed (UNABLE_TO_VERIFY_LEAF_SIGNATURE)"
    );
    // The Socket.IO server is hyper's: clients negotiate HTTP/2 by ALPN.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args([
            "--cacert", &server_ca, "--cert", &trusted.0, "--key", &trusted.1,
        ])
        .arg(format!("https://localhost:{port}/whoami"))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "2 200", "{}", stderr(&out));

    let out = certauth(&[
        "serve",
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--socketio",
        "--runtime",
        "smol",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_shuts_down_gracefully_on_ctrl_c() {
    let pki = Pki::new();
    let dir = Dir::new("sigint");
    let (ca, cert, key) = pki_files(&pki, &dir);
    for runtime in ["tokio", "smol"] {
        let args: Vec<String> = [
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--runtime",
            runtime,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let (mut server, port) = serve(&args);
        // An open WebSocket when the signal arrives.
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let tls = suite::connect(addr, suite::tls_client(&pki, Some(&pki.trusted))).unwrap();
        let (mut ws, _) = tungstenite::client::client("wss://localhost/chat", tls).unwrap();
        ws.send(tungstenite::Message::text("before")).unwrap();
        assert_eq!(ws.read().unwrap().to_string(), "Echo: before");
        let pid = server.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let started = Instant::now();
        let status = loop {
            if let Some(s) = server.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{runtime}: still running after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{runtime}: {status}");
        // New connections are refused once it has stopped.
        assert!(
            TcpStream::connect(addr).is_err(),
            "{runtime}: still accepting"
        );
        server.0.kill().ok();
    }
}

#[test]
fn serve_logs_to_stderr_without_colours_when_piped() {
    let pki = Pki::new();
    let dir = Dir::new("plain-logs");
    let (ca, cert, key) = pki_files(&pki, &dir);
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_certauth"))
        .args(["serve", "--ca", &ca, "--cert", &cert, "--key", &key])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listening on 127.0.0.1:"), "{err}");
    assert!(err.contains("received SIGTERM"), "{err}");
    assert!(!err.contains('\x1b'), "ANSI escapes in piped logs: {err:?}");
    assert!(out.stdout.is_empty(), "logs on stdout");
}

/// The provider decides which client keys prove possession: P-521 is verified (and let in)
/// with aws-lc-rs, and finishes the handshake to a 401 UNSUPPORTED_KEY_TYPE with ring; an
/// RSA-1024 key is WEAK_KEY with either, on both TLS versions. (aws-lc-rs is the CLI's
/// `aws-lc-rs` feature: CI builds with every feature.)
#[cfg(feature = "aws-lc-rs")]
#[test]
fn serve_provider_decides_which_client_keys_are_verified() {
    use certauth_testkit::keytypes;
    let pki = Pki::new();
    let dir = Dir::new("serve-provider");
    let (ca, cert, key) = pki_files(&pki, &dir);
    keytypes::prepare(&pki, &dir.0);
    for (provider, p521) in [
        ("ring", "HTTP/1.1 401 Unauthorized"),
        ("aws-lc-rs", "HTTP/1.1 200 OK"),
    ] {
        let args: Vec<String> = [
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--provider",
            provider,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let (_server, port) = serve(&args);
        for version in ["1.2", "1.3"] {
            for (name, want) in [
                ("p521", p521),
                ("p256", "HTTP/1.1 200 OK"),
                ("rsa1024", "HTTP/1.1 401 Unauthorized"),
            ] {
                let got = keytypes::curl(&dir.0, port, "/whoami", name, version);
                assert_eq!(got, want, "{provider} {name} TLS {version}");
            }
        }
    }
}

/// Without the `aws-lc-rs` feature, `--provider aws-lc-rs` is a configuration error that
/// says how to get it (exit 2, one line), not a panic or a silent ring.
#[cfg(not(feature = "aws-lc-rs"))]
#[test]
fn serve_provider_aws_lc_rs_needs_its_feature() {
    let pki = Pki::new();
    let dir = Dir::new("serve-provider-off");
    let (ca, cert, key) = pki_files(&pki, &dir);
    let out = certauth(&[
        "serve",
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--listen",
        "127.0.0.1:0",
        "--provider",
        "aws-lc-rs",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features aws-lc-rs"), "{err}");
}

/// `GET /whoami` over TLS with `client`: the response up to the close.
fn whoami_over_tls(port: u16, pki: &Pki, client: &certauth_testkit::Issued) -> String {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut tls = suite::connect(addr, suite::tls_client(pki, Some(client))).unwrap();
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned()
}

#[test]
fn serve_checks_revocation_with_crl_files() {
    let pki = Pki::new();
    let dir = Dir::new("serve-crl");
    let (ca, cert, key) = pki_files(&pki, &dir);
    let revoking = dir.file(
        "revoking.pem",
        &certauth_testkit::pem("X509 CRL", &pki.root.crl(&[&pki.forbidden])),
    );
    let start = |crl: &str, extra: &[&str]| {
        let mut args: Vec<String> = ["--ca", &ca, "--cert", &cert, "--key", &key, "--crl", crl]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.push("--expose-reasons".into());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        serve(&args)
    };
    let (_server, port) = start(&revoking, &[]);
    assert!(whoami_over_tls(port, &pki, &pki.trusted).starts_with("HTTP/1.1 200 OK"));
    let revoked = whoami_over_tls(port, &pki, &pki.forbidden);
    assert!(revoked.ends_with("(CERT_REVOKED)"), "{revoked}");

    // DER works as well as PEM; a CRL past its nextUpdate refuses, unless allowed.
    let past = i64::try_from(certauth_testkit::wall_clock().as_secs()).unwrap() - 3600;
    let expired = dir.path("expired.crl");
    std::fs::write(&expired, pki.root.crl_until(&[], past).as_ref()).unwrap();
    let (_server, port) = start(&expired, &[]);
    let got = whoami_over_tls(port, &pki, &pki.trusted);
    assert!(got.ends_with("(CRL_HAS_EXPIRED)"), "{got}");
    let (_server, port) = start(&expired, &["--allow-expired-crl"]);
    assert!(whoami_over_tls(port, &pki, &pki.trusted).starts_with("HTTP/1.1 200 OK"));

    // Unreadable or malformed CRLs stop the server at start, naming the file.
    let junk = dir.file("junk.pem", "not a crl");
    let out = certauth(&[
        "serve", "--ca", &ca, "--cert", &cert, "--key", &key, "--crl", &junk,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("junk.pem"), "{}", stderr(&out));
}

/// `openssl verify -crl_check_all` on the same files, if openssl runs: its last line.
fn openssl_verify(ca: &str, crls: &str, cert: &str) -> Option<String> {
    let out = Command::new("openssl")
        .args([
            "verify",
            "-crl_check_all",
            "-CAfile",
            ca,
            "-CRLfile",
            crls,
            cert,
        ])
        .output()
        .ok()?;
    let text = format!("{}{}", stdout(&out), stderr(&out));
    Some(text)
}

/// Issue 29 through the CLI: an intermediate in `--ca` revoked by its root's CRL is refused
/// by `verify` and by a running `serve` (as `openssl verify -crl_check_all` refuses it), so
/// is one given with `serve --chain`; the newest CRL decides whatever the order; `verify`
/// takes `--allow-expired-crl` and `--deny-unknown-revocation`, and warns of a CRL that
/// names no configured CA.
#[test]
fn revoked_intermediates_and_crl_choices_through_verify_and_serve() {
    let pki = Pki::new();
    let dir = Dir::new("crl-29");
    let (root_pem, cert, key) = pki_files(&pki, &dir);
    let inter = pki.root.intermediate("Suite Intermediate 29");
    let leaf = inter.issue(&Leaf::client("inter-client").around_wall_clock());
    let crl_pem = |c: &[u8]| certauth_testkit::pem("X509 CRL", c);
    let bundle = dir.file(
        "bundle.pem",
        &format!("{}{}", pki.root.cert.pem(), inter.cert.pem()),
    );
    let inter_pem = dir.file("inter.pem", &inter.cert.pem());
    let leaf_pem = dir.file("leaf.pem", &leaf.pem());
    let revoking = dir.file(
        "revoking.pem",
        &format!(
            "{}{}",
            crl_pem(&pki.root.crl(&[&inter.cert])),
            crl_pem(&inter.crl(&[]))
        ),
    );
    let clean = dir.file(
        "clean.pem",
        &format!(
            "{}{}",
            crl_pem(&pki.root.crl(&[])),
            crl_pem(&inter.crl(&[]))
        ),
    );
    let verify = |ca: &str, extra: &[&str], cert: &str| {
        let mut args = vec!["verify", "--ca", ca];
        args.extend(extra);
        args.push(cert);
        certauth(&args)
    };
    let out = verify(&bundle, &["--crl", &revoking], &leaf_pem);
    assert_eq!(stdout(&out).trim(), "CERT_REVOKED", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
    if let Some(openssl) = openssl_verify(&bundle, &revoking, &leaf_pem) {
        assert!(openssl.contains("certificate revoked"), "{openssl}");
    }
    let out = verify(&bundle, &["--crl", &clean], &leaf_pem);
    assert_eq!(stdout(&out).trim(), "ok", "{}", stderr(&out));
    if let Some(openssl) = openssl_verify(&bundle, &clean, &leaf_pem) {
        assert!(openssl.contains(": OK"), "{openssl}");
    }

    // The same through a running server, the client sending only its leaf.
    let start = |ca: &str, extra: &[&str]| {
        let mut args: Vec<String> = ["--ca", ca, "--cert", &cert, "--key", &key]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.push("--expose-reasons".into());
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        serve(&args)
    };
    let (_server, port) = start(&bundle, &["--crl", &revoking]);
    let got = whoami_over_tls(port, &pki, &leaf);
    assert!(got.ends_with("(CERT_REVOKED)"), "{got}");
    let (_server, port) = start(&root_pem, &["--chain", &inter_pem, "--crl", &revoking]);
    let got = whoami_over_tls(port, &pki, &leaf);
    assert!(got.ends_with("(CERT_REVOKED)"), "{got}");
    let (_server, port) = start(&root_pem, &["--chain", &inter_pem, "--crl", &clean]);
    let got = whoami_over_tls(port, &pki, &leaf);
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");

    // The newest CRL decides, in either order (OpenSSL agrees: the latest lastUpdate).
    let t = i64::try_from(certauth_testkit::wall_clock().as_secs()).unwrap();
    let old = crl_pem(&pki.root.crl_numbered(&[], 1, t - 7200, t + 86_400));
    let new = crl_pem(
        &pki.root
            .crl_numbered(&[&pki.forbidden], 2, t - 3600, t + 86_400),
    );
    let forbidden = dir.file("forbidden.pem", &pki.forbidden.pem());
    for (name, crls) in [
        ("old-new.pem", format!("{old}{new}")),
        ("new-old.pem", format!("{new}{old}")),
    ] {
        let crls = dir.file(name, &crls);
        let out = verify(&root_pem, &["--crl", &crls], &forbidden);
        assert_eq!(
            stdout(&out).trim(),
            "CERT_REVOKED",
            "{name}: {}",
            stderr(&out)
        );
        if let Some(openssl) = openssl_verify(&root_pem, &crls, &forbidden) {
            assert!(openssl.contains("certificate revoked"), "{name}: {openssl}");
        }
    }

    // --allow-expired-crl and --deny-unknown-revocation, as serve takes them.
    let trusted = dir.file("trusted.pem", &pki.trusted.pem());
    let expired = dir.file(
        "expired.pem",
        &crl_pem(&pki.root.crl_numbered(&[], 1, t - 7200, t - 3600)),
    );
    let out = verify(&root_pem, &["--crl", &expired], &trusted);
    assert_eq!(stdout(&out).trim(), "CRL_HAS_EXPIRED");
    let out = verify(
        &root_pem,
        &["--crl", &expired, "--allow-expired-crl"],
        &trusted,
    );
    assert_eq!(stdout(&out).trim(), "ok", "{}", stderr(&out));
    let only_inter = dir.file("only-inter.pem", &crl_pem(&inter.crl(&[])));
    let out = verify(&bundle, &["--crl", &only_inter], &leaf_pem);
    assert_eq!(stdout(&out).trim(), "ok", "{}", stderr(&out));
    let out = verify(
        &bundle,
        &["--crl", &only_inter, "--deny-unknown-revocation"],
        &leaf_pem,
    );
    assert_eq!(stdout(&out).trim(), "UNABLE_TO_GET_CRL");

    // A CRL that names no configured CA: loaded, and said so on stderr.
    let stray = dir.file("stray.pem", &crl_pem(&pki.other_root.crl(&[])));
    let out = verify(&root_pem, &["--crl", &stray], &trusted);
    assert_eq!(stdout(&out).trim(), "ok", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning") && stderr(&out).contains("Suite Other CA"),
        "{}",
        stderr(&out)
    );

    // serve logs the same at start, and says that clients no CRL covers are let in (it then
    // stops: its address is taken).
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = certauth(&[
        "serve", "--ca", &root_pem, "--cert", &cert, "--key", &key, "--crl", &stray, "--listen",
        &addr,
    ]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("Suite Other CA"), "{err}");
    assert!(err.contains("--deny-unknown-revocation"), "{err}");
}

/// A CA bundle with a root that cannot be a trust anchor: `serve` refuses to start with one
/// line naming it and the rule; with `--skip-bad-roots` it leaves that root out, says so,
/// and serves the clients of the others.
#[test]
fn serve_refuses_a_bad_root_or_skips_it_when_asked() {
    use certauth_testkit::{Crafted, der};
    let pki = Pki::new();
    let dir = Dir::new("serve-bad-root");
    let (_, cert, key) = pki_files(&pki, &dir);
    let odd_key = certauth_testkit::key(certauth_testkit::KeyKind::P256);
    let mut odd = Crafted::new(der::simple_name(&[("CN", "Odd Root")]));
    odd.extensions.push((
        "2.5.29.19".into(),
        true,
        der::seq(&[der::tlv(0x01, &[0xFF])]),
    ));
    odd.extensions
        .push(("1.3.6.1.4.1.55738.666.1".into(), true, der::tlv(0x05, &[])));
    let odd = certauth_testkit::pem("CERTIFICATE", &odd.sign(&odd_key, &odd_key));
    let bundle = dir.file("bundle.pem", &format!("{}{odd}", pki.root.cert.pem()));

    let out = certauth(&[
        "serve",
        "--ca",
        &bundle,
        "--cert",
        &cert,
        "--key",
        &key,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("CN=Odd Root"), "{err}");
    assert!(
        err.contains("unknown critical extension 1.3.6.1.4.1.55738.666.1"),
        "{err}"
    );
    assert!(err.contains("--skip-bad-roots"), "{err}");

    let args: Vec<String> = [
        "--ca",
        &bundle,
        "--cert",
        &cert,
        "--key",
        &key,
        "--skip-bad-roots",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (_server, port) = serve(&args);
    let text = whoami_over_tls(port, &pki, &pki.trusted);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
}

/// `GET /whoami` with `client`: the status line, and the body.
fn whoami_as(addr: SocketAddr, pki: &Pki, client: &certauth_testkit::Issued) -> String {
    let mut tls = suite::connect(addr, suite::tls_client(pki, Some(client))).unwrap();
    tls.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tls)).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    format!("{} {body}", head.lines().next().unwrap_or(""))
}

/// `serve --ocsp-required` against OpenSSL's responder on tokio, `--crl-fetch
/// --deny-unknown-revocation` against a CRL server on smol (the fetches run on a runtime
/// of their own), and the soft fail counted on `--metrics` (issue 33).
#[test]
fn serve_checks_revocation_online() {
    use certauth_testkit::revocation::{Files, Responder, client, responder_cert};
    let pki = Pki::new();
    let dir = Dir::new("revocation");
    let (ca, cert, key) = pki_files(&pki, &dir);
    let crls = TcpListener::bind("127.0.0.1:0").unwrap();
    let crl_url = |p: &str| format!("http://{}{p}", crls.local_addr().unwrap());
    let ocsp_port = free_port();
    let ocsp_url = format!("http://127.0.0.1:{ocsp_port}/");
    let good = client(
        &pki.root,
        "good",
        Some(&ocsp_url),
        Some(&crl_url("/ca.crl")),
    );
    let revoked = client(
        &pki.root,
        "revoked",
        Some(&ocsp_url),
        Some(&crl_url("/ca.crl")),
    );
    let unlisted = client(&pki.root, "unlisted", None, Some(&crl_url("/missing.crl")));
    let responder = Responder::start(
        &dir.0,
        "ocsp",
        ocsp_port,
        &pki.root,
        &responder_cert(&pki.root, "Responder"),
        &[&good],
        &[&revoked],
        &good,
    );
    let _files = Files::start(crls, vec![("/ca.crl", pki.root.crl(&[&revoked]).to_vec())]);
    let args = |extra: &[&str]| -> Vec<String> {
        [
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--expose-reasons",
        ]
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect()
    };

    let (server, port) = serve(&args(&["--ocsp", "--ocsp-required"]));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let before = responder.requests();
    assert!(whoami_as(addr, &pki, &good).starts_with("HTTP/1.1 200 OK"));
    let refused = whoami_as(addr, &pki, &revoked);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("CERT_REVOKED"), "{refused}");
    assert!(whoami_as(addr, &pki, &good).starts_with("HTTP/1.1 200 OK"));
    assert_eq!(
        responder.requests() - before,
        2,
        "one request per certificate"
    );
    drop(server);

    let (server, port) = serve(&args(&[
        "--crl-fetch",
        "--deny-unknown-revocation",
        "--runtime",
        "smol",
    ]));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(whoami_as(addr, &pki, &good).starts_with("HTTP/1.1 200 OK"));
    assert!(whoami_as(addr, &pki, &revoked).contains("CERT_REVOKED"));
    let unknown = whoami_as(addr, &pki, &unlisted);
    assert!(unknown.contains("UNABLE_TO_GET_CRL"), "{unknown}");
    drop(server);

    let metrics = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics}");
    let (_server, port) = serve(&args(&["--crl-fetch", "--metrics", &metrics_addr]));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(whoami_as(addr, &pki, &unlisted).starts_with("HTTP/1.1 200 OK"));
    let mut tcp = TcpStream::connect(("127.0.0.1", metrics)).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let text = String::from_utf8_lossy(&suite::read_to_close(&mut tcp)).into_owned();
    assert!(
        text.contains("certauth_revocation_soft_fail_total{check=\"crl\"} 1"),
        "{text}"
    );

    // `certauth verify` asks the same: the responder, and the distribution point's CRL.
    let (good_pem, revoked_pem) = (
        dir.file("good.pem", &good.pem()),
        dir.file("revoked.pem", &revoked.pem()),
    );
    for (flags, cert, answer) in [
        (&["--ocsp", "--ocsp-required"][..], &good_pem, "ok"),
        (
            &["--ocsp", "--ocsp-required"][..],
            &revoked_pem,
            "CERT_REVOKED",
        ),
        (
            &["--crl-fetch", "--deny-unknown-revocation"][..],
            &revoked_pem,
            "CERT_REVOKED",
        ),
    ] {
        let mut argv = vec!["verify", "--ca", &ca];
        argv.extend(flags);
        argv.push(cert);
        let out = certauth(&argv);
        assert_eq!(stdout(&out).trim(), answer, "{flags:?}: {}", stderr(&out));
    }

    // --deny-unknown-revocation needs a source of CRLs.
    let out = certauth(&[
        "serve",
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--deny-unknown-revocation",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--crl-fetch"), "{}", stderr(&out));

    // A fetch allowed to outlast the head's limit would never fail into the cache.
    let out = certauth(&[
        "serve",
        "--ca",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "--ocsp",
        "--revocation-timeout",
        "10",
        "--head-timeout",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("must be shorter than --head-timeout"),
        "{}",
        stderr(&out)
    );

    // Zero would close every connection as it is accepted.
    for flag in ["--head-timeout", "--handshake-timeout"] {
        let out = certauth(&[
            "serve", "--ca", &ca, "--cert", &cert, "--key", &key, flag, "0",
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let expected = format!("{flag} must be more than 0 seconds");
        assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    }
}
