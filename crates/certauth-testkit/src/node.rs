//! The Node.js reference, run through the `node` binary (present on every machine here).

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::Value;

fn run(script: &str, input: &Value) -> Value {
    let mut child = Command::new("node")
        .args(["-e", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node must be installed for the Node.js comparison tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("node printed JSON")
}

const LEGACY: &str = r#"
const { X509Certificate } = require('crypto');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(b64 => {
    try {
      const o = new X509Certificate(Buffer.from(b64, 'base64')).toLegacyObject();
      delete o.raw; delete o.pubkey;
      return o;
    } catch (e) { return { error: String(e) }; }
  });
  process.stdout.write(JSON.stringify(out));
});
"#;

/// `new X509Certificate(der).toLegacyObject()` for each certificate (without `raw` and
/// `pubkey`), or `{"error": …}` where Node refuses it.
pub fn legacy_objects(ders: &[Vec<u8>]) -> Vec<Value> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let input = Value::Array(ders.iter().map(|d| Value::String(b64.encode(d))).collect());
    match run(LEGACY, &input) {
        Value::Array(v) => v,
        other => panic!("unexpected node output {other}"),
    }
}

/// One TLS client-authentication case for Node.
pub struct TlsCase {
    /// Trusted CA certificates, PEM.
    pub ca_pem: String,
    /// The client's chain, PEM (leaf first).
    pub client_chain_pem: String,
    pub client_key_pem: String,
    /// CRLs, PEM (empty for none).
    pub crl_pem: String,
}

const TLS: &str = r#"
const tls = require('tls');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', async () => {
  const { server, cases } = JSON.parse(input);
  const results = [];
  for (const c of cases) {
    results.push(await new Promise((resolve, reject) => {
      const opts = { key: server.key, cert: server.cert, ca: c.ca, requestCert: true, rejectUnauthorized: false };
      if (c.crl) opts.crl = c.crl;
      const srv = tls.createServer(opts, sock => {
        resolve(sock.authorized ? 'OK' : String(sock.authorizationError));
        sock.end();
        srv.close();
      });
      srv.on('tlsClientError', e => { resolve('TLS_ERROR ' + e.message); srv.close(); });
      srv.listen(0, '127.0.0.1', () => {
        const cl = tls.connect({ port: srv.address().port, host: '127.0.0.1', cert: c.chain, key: c.key,
                                 rejectUnauthorized: false });
        cl.on('error', () => {});
        cl.on('data', () => {});
      });
      setTimeout(() => reject(new Error('timeout')), 10000).unref();
    }));
  }
  process.stdout.write(JSON.stringify(results));
});
"#;

/// What Node's TLS server reports in `socket.authorizationError` (or `OK`) for each case,
/// with `requestCert: true, rejectUnauthorized: false`.
pub fn authorization_errors(cases: &[TlsCase]) -> Vec<String> {
    // The server's own certificate comes from a separate CA.
    let server_ca = crate::Authority::root("node reference server CA");
    let mut leaf = crate::Leaf::client("localhost").around_wall_clock();
    leaf.eku = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server = server_ca.issue(&leaf);
    let input = serde_json::json!({
        "server": { "key": server.key_pem(), "cert": server.pem() },
        "cases": cases.iter().map(|c| serde_json::json!({
            "ca": c.ca_pem, "chain": c.client_chain_pem, "key": c.client_key_pem, "crl": c.crl_pem,
        })).collect::<Vec<_>>(),
    });
    match run(TLS, &input) {
        Value::Array(v) => v
            .into_iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        other => panic!("unexpected node output {other}"),
    }
}
