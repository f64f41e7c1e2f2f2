//! Header encodings exactly as proxies produce them, for feeding the decoders.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

fn percent(input: &[u8], keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::new();
    for &b in input {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// nginx `$ssl_client_escaped_cert` (and JavaScript's `encodeURIComponent`): everything but
/// unreserved characters escaped.
pub fn nginx_escaped(pem: &str) -> String {
    percent(pem.as_bytes(), unreserved)
}

/// AWS ALB `X-Amzn-Mtls-Clientcert`: URL-encoded, with `+`, `=` and `/` left as they are.
pub fn aws_alb(pem: &str) -> String {
    percent(pem.as_bytes(), |b| unreserved(b) || b"+=/".contains(&b))
}

/// Form encoding (`application/x-www-form-urlencoded`): spaces as `+`.
pub fn form_encoded(pem: &str) -> String {
    let mut out = String::new();
    for &b in pem.as_bytes() {
        if b == b' ' {
            out.push('+');
        } else if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Base64 of DER (Cloudflare `Cf-Client-Cert-Der-Base64`, HAProxy `ssl_c_der,base64`).
pub fn base64_der(der: &[u8]) -> String {
    STANDARD.encode(der)
}

/// Traefik `passTLSClientCert` with `pem: true`: each certificate's base64 body, joined with
/// `,`, then Go's `url.QueryEscape` over the whole.
pub fn traefik(ders: &[&[u8]]) -> String {
    let joined = ders
        .iter()
        .map(|d| STANDARD.encode(d))
        .collect::<Vec<_>>()
        .join(",");
    let mut out = String::new();
    for &b in joined.as_bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An RFC 8941 byte sequence, `:base64:` (RFC 9440 `Client-Cert`).
pub fn sf_binary(der: &[u8]) -> String {
    format!(":{}:", STANDARD.encode(der))
}

/// Hex SHA-256 (XFCC `Hash`).
pub fn sha256_hex(der: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
