//! Client keys of every kind through real handshakes: `curl` (OpenSSL) presents each key
//! over TLS 1.2 and TLS 1.3 to the adapter's server and, side by side, to Node's TLS server
//! (`requestCert: true, rejectUnauthorized: false`, as client-certificate-auth runs).
//!
//! Keys come from `openssl genpkey` (ring makes none of these), certificates from
//! [`Crafted`] with the key's SubjectPublicKeyInfo, issued by the suite's client CA.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certauth_core::Limits;

use crate::Outcome;
use crate::suite::{Harness, Pki, Server, node_peers_dir};
use crate::{Crafted, der};

/// A client key kind the test presents.
#[derive(Clone, Copy, Debug)]
pub struct ClientKey {
    /// For messages and file names.
    pub name: &'static str,
    /// `openssl genpkey` arguments.
    pub genpkey: &'static [&'static str],
}

/// The keys of the test: two every provider verifies, and the five the issue names.
pub const KEYS: [ClientKey; 7] = [
    ClientKey {
        name: "p256",
        genpkey: &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    },
    ClientKey {
        name: "rsa2048",
        genpkey: &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    },
    ClientKey {
        name: "rsa1024",
        genpkey: &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    },
    ClientKey {
        name: "p521",
        genpkey: &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
    },
    ClientKey {
        name: "ed448",
        genpkey: &["-algorithm", "ED448"],
    },
    ClientKey {
        name: "rsapss",
        genpkey: &["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
    },
    ClientKey {
        name: "ed25519",
        genpkey: &["-algorithm", "ED25519"],
    },
];

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl must be installed");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `YYYYMMDDHHMMSSZ` for Unix seconds.
fn generalized(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Writes `<name>.pem` and `<name>.key` into `dir`: a `trusted-client` certificate issued by
/// the suite's client CA for a fresh key of `kind`.
pub fn write_client(pki: &Pki, kind: ClientKey, dir: &Path) {
    let key_pem = openssl(&[&["genpkey"][..], kind.genpkey].concat(), None);
    let spki = openssl(&["pkey", "-pubout", "-outform", "DER"], Some(&key_pem));
    let root = certauth_core::ClientCertificate::from_der(&pki.root.cert.der).unwrap();
    let mut c = Crafted::new(der::simple_name(&[("CN", "trusted-client")]));
    c.issuer = root.subject().raw().to_vec();
    c.serial = vec![0x01, kind.name.len() as u8, kind.name.as_bytes()[0]];
    let now = crate::wall_clock().as_secs() as i64;
    c.not_before = der::generalized_time(&generalized(now - 86_400));
    c.not_after = der::generalized_time(&generalized(now + 86_400));
    c.extensions.push((
        "2.5.29.37".into(),
        false,
        der::seq(&[der::oid("1.3.6.1.5.5.7.3.2")]),
    ));
    c.spki = Some(spki);
    // The signature is the CA's; only the embedded key is the client's.
    let der = c.sign(&pki.root.cert.key, &pki.root.cert.key);
    std::fs::write(
        dir.join(format!("{}.pem", kind.name)),
        crate::pem("CERTIFICATE", &der),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{}.key", kind.name)), key_pem).unwrap();
}

/// An OpenSSL configuration at security level 0, for the clients.
const SECLEVEL_0: &str = "openssl_conf = conf\n[conf]\nssl_conf = ssl\n[ssl]\n\
                          system_default = sys\n[sys]\nCipherString = DEFAULT@SECLEVEL=0\n";

/// Writes what [`curl`] needs into `dir`: the server CA, an OpenSSL configuration at
/// security level 0, and a client certificate and key for each of [`KEYS`].
pub fn prepare(pki: &Pki, dir: &Path) {
    std::fs::write(dir.join("server-ca.pem"), pki.server_root.cert.pem()).unwrap();
    std::fs::write(dir.join("openssl.cnf"), SECLEVEL_0).unwrap();
    for kind in KEYS {
        write_client(pki, kind, dir);
    }
}

/// `curl` over TLS `version` ("1.2" or "1.3") for `path` on `port`, presenting `name`
/// (see [`prepare`]); the status line, or `TLS FAILURE: <curl's error>`.
pub fn curl(dir: &Path, port: u16, path: &str, name: &str, version: &str) -> String {
    let pin = match version {
        "1.2" => ["--tlsv1.2", "--tls-max", "1.2"],
        _ => ["--tlsv1.3", "--tls-max", "1.3"],
    };
    let out = Command::new("curl")
        .args(["-sS", "-i", "--http1.1", "--max-time", "10"])
        .args(pin)
        // The system OpenSSL's security level refuses to load an RSA-1024 key at all.
        .env("OPENSSL_CONF", dir.join("openssl.cnf"))
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(dir.join("server-ca.pem"))
        .arg("--cert")
        .arg(dir.join(format!("{name}.pem")))
        .arg("--key")
        .arg(dir.join(format!("{name}.key")))
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("curl must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().next() {
        Some(line) if !line.is_empty() => line.trim_end().to_owned(),
        _ => format!(
            "TLS FAILURE: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// Node's TLS server as client-certificate-auth runs it (`tests/node/https-server.js`),
/// stopped on drop.
pub struct NodeServer {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl NodeServer {
    /// Starts it with the suite's server identity and client CA; waits (up to 10 s) until
    /// it accepts connections.
    pub fn start(pki: &Pki, dir: &Path) -> Self {
        std::fs::write(dir.join("ca.pem"), pki.root.cert.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), pki.server.pem()).unwrap();
        std::fs::write(dir.join("server.key"), pki.server.key_pem()).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let node = node_peers_dir();
        let child = Command::new("node")
            .arg(node.join("https-server.js"))
            .arg(port.to_string())
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("node must be installed");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "Node's server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory for one run's files, removed on drop.
pub struct Dir(pub PathBuf);

impl Dir {
    /// Under the system temp directory.
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("certauth-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What certauth (ring provider) answers each key over TLS `version`: the keys every
/// provider verifies get in; the others finish the handshake and get a 401 with the precise
/// code, never a TLS alert and never authentication. One exception is rustls': its TLS 1.2
/// CertificateRequest cannot offer the rsa_pss_pss schemes, so a client with an RSA-PSS key
/// sends no certificate there.
pub fn want(name: &str, version: &str) -> (&'static str, Outcome) {
    const UNAUTHORIZED: &str = "HTTP/1.1 401 Unauthorized";
    match (name, version) {
        ("p256" | "rsa2048" | "ed25519", _) => ("HTTP/1.1 200 OK", Outcome::trusted()),
        ("rsa1024", _) => (UNAUTHORIZED, Outcome::denied("WEAK_KEY")),
        ("rsapss", "1.2") => (UNAUTHORIZED, Outcome::denied("NO_CERTIFICATE")),
        _ => (UNAUTHORIZED, Outcome::denied("UNSUPPORTED_KEY_TYPE")),
    }
}

/// Every key of [`KEYS`] over TLS 1.2 and 1.3 against the adapter's server (checked against
/// [`want`]) and against Node's (which lets all seven in: the differences are certauth's
/// deliberate `WEAK_KEY` and `UNSUPPORTED_KEY_TYPE`, docs/CONFORMANCE.md); then large
/// certificates (800 and 2,500 SANs) from a rustls client.
pub fn run_key_types(harness: &impl Harness) {
    let pki = Pki::new();
    let server = Server::start(harness, &pki, Limits::DEFAULT);
    let dir = Dir::new("keys");
    prepare(&pki, &dir.0);
    let node = NodeServer::start(&pki, &dir.0);
    let mut failures = Vec::new();
    for ClientKey { name, .. } in KEYS {
        for version in ["1.2", "1.3"] {
            let (status, report) = want(name, version);
            let got = curl(&dir.0, server.addr.port(), "/http", name, version);
            let outcome = server.outcome();
            if got != status || outcome != report {
                failures.push(format!(
                    "{name} TLS {version}: got {got:?} / {outcome}, want {status:?} / {report}"
                ));
            }
            let node_got = curl(&dir.0, node.port, "/", name, version);
            if node_got != "HTTP/1.1 200 OK" {
                failures.push(format!(
                    "{name} TLS {version}: Node answered {node_got:?}; the comparison assumes \
                     Node lets every key in"
                ));
            }
        }
    }
    // Sizes: 800 SANs (about 20 KB) are within the defaults; 2,500 (about 60 KB) are over
    // Limits::max_san_entries and get their own code.
    for (sans, status, report) in [
        (800, "HTTP/1.1 200 OK", Outcome::trusted()),
        (
            2500,
            "HTTP/1.1 401 Unauthorized",
            Outcome::denied("CERT_TOO_LARGE"),
        ),
    ] {
        let mut leaf = crate::Leaf::client("trusted-client").around_wall_clock();
        leaf.sans = (0..sans)
            .map(|i| rcgen::SanType::DnsName(format!("host-{i}.example").try_into().unwrap()))
            .collect();
        let issued = pki.root.issue(&leaf);
        let config = crate::suite::tls_client(&pki, Some(&issued));
        let got = match crate::suite::connect(server.addr, config) {
            Ok(mut tls) => {
                use std::io::Write as _;
                let _ = tls.write_all(b"GET /http HTTP/1.1\r\nHost: localhost\r\n\r\n");
                let text = crate::suite::read_to_close(&mut tls);
                let text = String::from_utf8_lossy(&text).into_owned();
                text.lines().next().unwrap_or("").to_owned()
            }
            Err(e) => format!("TLS FAILURE: {e}"),
        };
        let outcome = server.outcome();
        if got != status || outcome != report {
            failures.push(format!(
                "{sans} SANs ({} bytes): got {got:?} / {outcome}, want {status:?} / {report}",
                issued.der.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
