//! Revocation servers for the online checks' tests (issue 33): OpenSSL's own OCSP
//! responder (`openssl ocsp -port`) and a plain HTTP server of CRLs, both on 127.0.0.1, and
//! client certificates that name them.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, ExtendedKeyUsagePurpose, Issuer,
    KeyUsagePurpose,
};

use crate::{Authority, Issued, Leaf, der, key};

/// authorityInfoAccess with one OCSP responder URL.
pub fn aia(url: &str) -> CustomExtension {
    let content = der::seq(&[der::seq(&[
        der::oid("1.3.6.1.5.5.7.48.1"),
        der::tlv(0x86, url.as_bytes()),
    ])]);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], content)
}

pub fn issue(ca: &Authority, leaf: &Leaf, edit: impl FnOnce(&mut CertificateParams)) -> Issued {
    let k = key(leaf.key);
    let mut params = leaf.params();
    edit(&mut params);
    let issuer = Issuer::from_params(&ca.cert.params, &ca.cert.key);
    let der = params.signed_by(&k, &issuer).unwrap().der().clone();
    Issued {
        der,
        key: k,
        params,
    }
}

pub fn client(ca: &Authority, cn: &str, ocsp: Option<&str>, crl: Option<&str>) -> Issued {
    issue(ca, &Leaf::client(cn), |p| {
        if let Some(url) = ocsp {
            p.custom_extensions.push(aia(url));
        }
        if let Some(url) = crl {
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.to_owned()],
            }];
        }
    })
}

pub fn responder_cert(ca: &Authority, cn: &str) -> Issued {
    let mut leaf = Leaf::client(cn);
    leaf.eku = vec![ExtendedKeyUsagePurpose::OcspSigning];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    issue(ca, &leaf, |_| {})
}

pub fn serial_hex(c: &Issued) -> String {
    let s = c.params.serial_number.as_ref().unwrap();
    s.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `openssl ocsp` answering for `ca` from an index of `valid` and `revoked`, signed by
/// `signer`. Killed on drop.
pub struct Responder {
    child: Child,
    log: PathBuf,
    pub url: String,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Responder {
    /// Serves on `port` (whose URL the certificates already name).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        dir: &Path,
        name: &str,
        port: u16,
        ca: &Authority,
        signer: &Issued,
        valid: &[&Issued],
        revoked: &[&Issued],
        probe: &Issued,
    ) -> Self {
        let file = |suffix: &str, text: &str| {
            let p = dir.join(format!("{name}-{suffix}"));
            std::fs::write(&p, text).unwrap();
            p
        };
        let mut index = String::new();
        for c in valid {
            index.push_str(&format!(
                "V\t351231000000Z\t\t{0}\tunknown\t/CN={0}\n",
                serial_hex(c)
            ));
        }
        for c in revoked {
            index.push_str(&format!(
                "R\t351231000000Z\t260101000000Z\t{0}\tunknown\t/CN={0}\n",
                serial_hex(c)
            ));
        }
        let (index, ca_pem) = (file("index.txt", &index), file("ca.pem", &ca.cert.pem()));
        let rsigner = file("rsigner.pem", &signer.pem());
        let rkey = file("rkey.pem", &signer.key_pem());
        let probe = file("probe.pem", &probe.pem());
        let log = dir.join(format!("{name}.log"));
        let child = Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(&index)
            .arg("-CA")
            .arg(&ca_pem)
            .arg("-rsigner")
            .arg(&rsigner)
            .arg("-rkey")
            .arg(&rkey)
            .args(["-port", &port.to_string(), "-nmin", "5"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("openssl");
        let url = format!("http://127.0.0.1:{port}/");
        let mut r = Self { child, log, url };
        // Ready when it answers a real query (it waits forever on a connection that sends
        // nothing, so it is never probed with an empty one).
        for _ in 0..100 {
            if let Ok(Some(status)) = r.child.try_wait() {
                let log = std::fs::read_to_string(&r.log).unwrap_or_default();
                panic!("openssl ocsp exited ({status}): {log}");
            }
            let ok = Command::new("openssl")
                .args(["ocsp", "-no_nonce", "-noverify", "-issuer"])
                .arg(&ca_pem)
                .arg("-cert")
                .arg(&probe)
                .args(["-url", &r.url, "-timeout", "2"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success();
            if ok {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("openssl ocsp did not start on {}", r.url);
    }

    /// Requests received so far (one log line each).
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Received request")
            .count()
    }
}

/// A plain HTTP/1.0 server of fixed bodies by path, counting requests per path.
/// Bodies by path.
type Bodies = Arc<Mutex<Vec<(&'static str, Vec<u8>)>>>;

pub struct Files {
    files: Bodies,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Files {
    /// Serves `files` from `listener` (bound first: the certificates name its URL).
    pub fn start(listener: TcpListener, files: Vec<(&'static str, Vec<u8>)>) -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&hits);
        let files = Arc::new(Mutex::new(files));
        let served = Arc::clone(&files);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if s.read(&mut byte).unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let path = text.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap().push(path.clone());
                let body = served
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, b)| b.clone());
                match body {
                    Some(body) => {
                        let _ = write!(
                            s,
                            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        let _ = s.write_all(&body);
                    }
                    None => {
                        let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\n\r\n");
                    }
                }
            }
        });
        Self { files, hits }
    }

    /// Serves `body` at `path` from now on.
    pub fn set(&self, path: &'static str, body: Vec<u8>) {
        let mut files = self.files.lock().unwrap();
        files.retain(|(p, _)| *p != path);
        files.push((path, body));
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}
