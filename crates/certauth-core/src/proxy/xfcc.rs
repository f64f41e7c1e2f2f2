//! `X-Forwarded-Client-Cert`, by Envoy's grammar.
//!
//! The header is a list of elements separated by `,`; each element is a list of `Key=Value`
//! pairs separated by `;`. A value holding `,` `;` or `=` is double-quoted, with `\"` and
//! `\\` escapes inside; any other backslash is kept (Envoy writes OpenSSL's RFC 2253
//! subject, with its `\,` escapes, inside quotes as it is). Keys (case-insensitive): `By`, `Hash`, `Cert`, `Chain`, `Subject`,
//! `URI`, `DNS` (`URI` and `DNS` may repeat). Each proxy that forwards client details
//! appends one element, so the first element describes the original client and the last
//! the nearest hop's client.

use std::borrow::Cow;

use super::ProxyHeaderError;

/// One XFCC element: the pairs a proxy wrote about one client connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) struct XfccElement {
    /// `By`: the proxy's own identity (URI SAN).
    pub by: Option<String>,
    /// `Hash`: hex SHA-256 of the client certificate's DER.
    pub hash: Option<String>,
    /// `Cert`: the client certificate, URL-encoded PEM (still encoded).
    pub cert: Option<String>,
    /// `Chain`: the client chain, URL-encoded PEM (still encoded).
    pub chain: Option<String>,
    /// `Subject`: the client certificate's subject as the proxy printed it.
    pub subject: Option<String>,
    /// `URI`: URI SANs.
    pub uri: Vec<String>,
    /// `DNS`: DNS SANs.
    pub dns: Vec<String>,
}

/// Which XFCC element to take the certificate from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum XfccSelect {
    /// The last element: the client of the nearest proxy (the trusted one). The default.
    #[default]
    Last,
    /// The first element: the original client, as reported by the first proxy. Trust it
    /// only if every proxy on the path is yours and sanitizes the header.
    First,
    /// Exactly one element must be present; more is an error.
    Only,
}

/// Parses an XFCC header value into its elements.
pub(crate) fn parse(value: &str) -> Result<Vec<XfccElement>, ProxyHeaderError> {
    let bytes = value.as_bytes();
    let mut elements = Vec::new();
    let mut current = XfccElement::default();
    let mut i = 0;
    let err = |offset: usize, reason: &'static str| ProxyHeaderError::Xfcc { offset, reason };
    loop {
        // Key.
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        let key_start = i;
        while let Some(&b) = bytes.get(i) {
            if b == b'=' || b == b';' || b == b',' || b == b'"' {
                break;
            }
            i += 1;
        }
        let key = value[key_start..i].trim();
        if bytes.get(i) != Some(&b'=') || key.is_empty() {
            return Err(err(i, "expected Key=Value"));
        }
        i += 1;
        // Value: quoted or bare.
        let val: Cow<'_, str> = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut out = String::new();
            let mut run_start = i;
            loop {
                match bytes.get(i) {
                    None => return Err(err(i, "unterminated quoted value")),
                    Some(b'"') => {
                        out.push_str(&value[run_start..i]);
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        out.push_str(&value[run_start..i]);
                        match bytes.get(i + 1) {
                            Some(b'"') => {
                                out.push('"');
                                i += 2;
                            }
                            Some(b'\\') => {
                                out.push('\\');
                                i += 2;
                            }
                            // Envoy puts OpenSSL's RFC 2253 subject inside quotes as is, so
                            // `\,` and friends are kept literally.
                            Some(_) => {
                                out.push('\\');
                                i += 1;
                            }
                            None => return Err(err(i, "unterminated quoted value")),
                        }
                        run_start = i;
                    }
                    Some(_) => i += 1,
                }
            }
            Cow::Owned(out)
        } else {
            let start = i;
            while let Some(&b) = bytes.get(i) {
                if b == b';' || b == b',' {
                    break;
                }
                if b == b'"' || b == b'=' {
                    return Err(err(i, "unquoted value holds a quote or `=`"));
                }
                i += 1;
            }
            Cow::Borrowed(value[start..i].trim())
        };
        set(&mut current, key, val.into_owned());
        // Separator.
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        match bytes.get(i) {
            None => {
                elements.push(current);
                return Ok(elements);
            }
            Some(b';') => i += 1,
            Some(b',') => {
                elements.push(std::mem::take(&mut current));
                i += 1;
            }
            Some(_) => return Err(err(i, "expected `;` or `,` after a value")),
        }
    }
}

fn set(e: &mut XfccElement, key: &str, value: String) {
    let k = key.to_ascii_lowercase();
    match k.as_str() {
        "by" => e.by = Some(value),
        "hash" => e.hash = Some(value),
        "cert" => e.cert = Some(value),
        "chain" => e.chain = Some(value),
        "subject" => e.subject = Some(value),
        "uri" => e.uri.push(value),
        "dns" => e.dns.push(value),
        // Unknown keys are ignored, as Envoy may add more.
        _ => {}
    }
}

/// Picks the element to trust.
pub(crate) fn select(
    elements: Vec<XfccElement>,
    which: XfccSelect,
) -> Result<XfccElement, ProxyHeaderError> {
    let n = elements.len();
    let mut it = elements.into_iter();
    let picked = match which {
        XfccSelect::Last => it.next_back(),
        XfccSelect::First => it.next(),
        XfccSelect::Only if n == 1 => it.next(),
        XfccSelect::Only => {
            return Err(ProxyHeaderError::XfccElementCount { count: n });
        }
    };
    picked.ok_or(ProxyHeaderError::XfccElementCount { count: 0 })
}

#[cfg(test)]
mod tests;
