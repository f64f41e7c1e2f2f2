//! Certificates out of PEM text, as OpenSSL (and so Node) reads them.
//!
//! Every `CERTIFICATE`, `X509 CERTIFICATE` or `TRUSTED CERTIFICATE` block is a certificate
//! (a trusted certificate's trust settings, after the certificate, are ignored). Every other
//! block, whatever its shape (keys, CRLs, encrypted keys with RFC 1421 headers such as
//! `Proc-Type` and `DEK-Info`), and any text around blocks, is skipped. A UTF-8 byte-order
//! mark before the text is ignored. Inside a certificate block OpenSSL's rules hold: the end
//! line is exactly `-----END <label>-----` (trailing spaces allowed), and a blank line can
//! only end RFC 1421 headers, so a certificate block with a blank line in its base64 and no
//! headers is refused, as is a block with no end line.

use std::fmt;

use base64::Engine as _;

use crate::asn1::Reader;

/// The labels of certificate blocks.
const LABELS: [&str; 3] = ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"];

/// Why a certificate block could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum PemError {
    /// No end line for the block starting on `line` (1-based).
    Unterminated {
        /// The line of its `-----BEGIN` line.
        line: usize,
    },
    /// The end line on `line` is not exactly `-----END <label>-----`.
    BadEndLine {
        /// Its line number.
        line: usize,
    },
    /// A blank line inside the base64 of the block starting on `line`.
    BlankLine {
        /// The line of its `-----BEGIN` line.
        line: usize,
    },
    /// The base64 of the block starting on `line` does not decode, or holds no DER element.
    BadBase64 {
        /// The line of its `-----BEGIN` line.
        line: usize,
    },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unterminated { line } => {
                write!(
                    f,
                    "the PEM block starting on line {line} has no -----END line"
                )
            }
            Self::BadEndLine { line } => {
                write!(
                    f,
                    "line {line} is not a PEM end line (`-----END CERTIFICATE-----`)"
                )
            }
            Self::BlankLine { line } => write!(
                f,
                "the PEM block starting on line {line} has a blank line inside its base64"
            ),
            Self::BadBase64 { line } => write!(
                f,
                "the PEM block starting on line {line} is not base64 of a DER certificate"
            ),
        }
    }
}

impl std::error::Error for PemError {}

impl From<PemError> for crate::error::SetupError {
    fn from(e: PemError) -> Self {
        let (PemError::Unterminated { line }
        | PemError::BadEndLine { line }
        | PemError::BlankLine { line }
        | PemError::BadBase64 { line }) = e;
        Self::Pem {
            line,
            detail: e.to_string(),
        }
    }
}

/// The certificate blocks of `text`, in order: each one's DER, or why it could not be read
/// ([`SetupError::Pem`](crate::SetupError::Pem)).
pub fn certificates(text: &[u8]) -> Vec<Result<Vec<u8>, crate::SetupError>> {
    blocks(text)
        .into_iter()
        .map(|block| block.map_err(crate::SetupError::from))
        .collect()
}

/// [`certificates`], with the PEM errors typed.
pub(crate) fn blocks(text: &[u8]) -> Vec<Result<Vec<u8>, PemError>> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut out = Vec::new();
    let mut lines = text
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    while let Some((begin, line)) = lines.next() {
        let Some(label) = begin_label(line) else {
            continue;
        };
        let certificate = LABELS.contains(&label);
        let end = format!("-----END {label}-----");
        let mut body = Vec::new();
        let mut blank = false;
        let mut headers = false;
        let mut result = Err(PemError::Unterminated { line: begin });
        for (n, line) in lines.by_ref() {
            if line.starts_with(b"-----END ") {
                result = if line.trim_ascii_end() != end.as_bytes() {
                    Err(PemError::BadEndLine { line: n })
                } else if blank && !headers {
                    Err(PemError::BlankLine { line: begin })
                } else {
                    decode(&body, label).ok_or(PemError::BadBase64 { line: begin })
                };
                break;
            }
            if line.trim_ascii().is_empty() {
                blank = true;
            } else if body.is_empty() && !blank && line.contains(&b':') {
                headers = true; // RFC 1421 headers, before a blank line
            } else {
                body.extend(line.iter().filter(|b| !b.is_ascii_whitespace()));
            }
        }
        if certificate {
            out.push(result);
        }
    }
    out
}

/// The label of a `-----BEGIN <label>-----` line.
fn begin_label(line: &[u8]) -> Option<&str> {
    let rest = line.trim_ascii_end().strip_prefix(b"-----BEGIN ")?;
    std::str::from_utf8(rest.strip_suffix(b"-----")?).ok()
}

/// The DER a block holds: for a trusted certificate, only its first element (the
/// certificate; OpenSSL's trust settings follow it).
fn decode(body: &[u8], label: &str) -> Option<Vec<u8>> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    if label != "TRUSTED CERTIFICATE" {
        return Some(der);
    }
    let first = Reader::new(&der).read_any().ok()?;
    Some(first.raw.to_vec())
}

#[cfg(test)]
mod tests;
