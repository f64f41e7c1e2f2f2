//! The client certificate from a header set by a TLS-terminating proxy.
//!
//! Presets name the headers and encodings of common proxies ([`Preset`]); any header and
//! [`Encoding`] can be configured instead. A certificate header is honoured only from
//! configured proxy addresses ([`ProxyHeaderConfig::with_trusted_proxies`]): one arriving from anyone else is
//! rejected, not ignored, because a silent ignore hides misconfiguration and a forged
//! header must never pass. A verify header (nginx `$ssl_client_verify`, HAProxy
//! `ssl_c_verify`) can be required; the forwarded chain can be verified again against the
//! trust anchors; and a missing or malformed header can fall back to the TLS peer.
//!
//! Every decoder is a plain function of bytes (fuzzed), with caps on the header value size
//! and the chain length.

pub mod protocol;
pub(crate) mod xfcc;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::SetupError;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use xfcc::XfccSelect;

/// How a certificate is encoded in a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// URL-encoded PEM, one or more certificates (nginx `$ssl_client_escaped_cert`,
    /// HAProxy with a PEM converter). `url-pem`.
    UrlPem,
    /// URL-encoded PEM where `+`, `=` and `/` are left unescaped (AWS ALB). Decoded the same
    /// way: percent escapes are decoded and `+` is always literal. `url-pem-aws`.
    UrlPemAws,
    /// Envoy's `X-Forwarded-Client-Cert`. `xfcc`.
    Xfcc,
    /// Base64 DER; a chain is comma-separated; percent escapes are decoded first (Traefik
    /// URL-escapes its value). `base64-der`.
    Base64Der,
    /// RFC 9440 `Client-Cert` (a structured-field byte sequence, `:base64:`), with the
    /// chain in `Client-Cert-Chain` (a list of them). Google Cloud load balancers. `rfc9440`.
    Rfc9440,
}

/// Every encoding with its configuration name: the one table that parsing, display, error
/// messages and the CLI's help read.
const ENCODINGS: [(Encoding, &str); 5] = [
    (Encoding::UrlPem, "url-pem"),
    (Encoding::UrlPemAws, "url-pem-aws"),
    (Encoding::Xfcc, "xfcc"),
    (Encoding::Base64Der, "base64-der"),
    (Encoding::Rfc9440, "rfc9440"),
];

impl Encoding {
    /// Every encoding, in the order of the documentation.
    pub const ALL: [Self; 5] = [
        Self::UrlPem,
        Self::UrlPemAws,
        Self::Xfcc,
        Self::Base64Der,
        Self::Rfc9440,
    ];

    /// The name used in configuration (`url-pem`, …).
    pub fn name(self) -> &'static str {
        ENCODINGS
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("", |(_, n)| n)
    }

    /// Every configuration name, comma-separated (for help and error messages).
    pub fn names() -> String {
        ENCODINGS.map(|(_, n)| n).join(", ")
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = SetupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ENCODINGS
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(e, _)| *e)
            .ok_or_else(|| SetupError::UnknownEncoding { name: s.to_owned() })
    }
}

/// The header and encoding of a known proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// AWS Application Load Balancer: `X-Amzn-Mtls-Clientcert`, `url-pem-aws`. `aws-alb`.
    AwsAlb,
    /// Envoy and Istio: `X-Forwarded-Client-Cert`, `xfcc`. `envoy`.
    Envoy,
    /// Cloudflare: `Cf-Client-Cert-Der-Base64`, `base64-der`. `cloudflare`.
    Cloudflare,
    /// Traefik `passTLSClientCert`: `X-Forwarded-Tls-Client-Cert`, `base64-der`. `traefik`.
    Traefik,
    /// nginx with `proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert`:
    /// `url-pem`. `nginx`.
    Nginx,
    /// HAProxy with `http-request set-header X-SSL-Client-Cert %[ssl_c_der,base64]`:
    /// `base64-der`. `haproxy`.
    Haproxy,
    /// RFC 9440 (Google Cloud load balancers): `Client-Cert` and `Client-Cert-Chain`.
    /// `rfc9440`.
    Rfc9440,
}

/// One known proxy: its configuration name, other accepted names, certificate header and
/// encoding.
struct PresetEntry {
    preset: Preset,
    name: &'static str,
    aliases: &'static [&'static str],
    header: &'static str,
    encoding: Encoding,
}

/// Every preset: the one table that parsing, display, the header and encoding, error
/// messages and the CLI's help read.
const PRESETS: [PresetEntry; 7] = [
    PresetEntry {
        preset: Preset::AwsAlb,
        name: "aws-alb",
        aliases: &[],
        header: "X-Amzn-Mtls-Clientcert",
        encoding: Encoding::UrlPemAws,
    },
    PresetEntry {
        preset: Preset::Envoy,
        name: "envoy",
        aliases: &["istio"],
        header: "X-Forwarded-Client-Cert",
        encoding: Encoding::Xfcc,
    },
    PresetEntry {
        preset: Preset::Cloudflare,
        name: "cloudflare",
        aliases: &[],
        header: "Cf-Client-Cert-Der-Base64",
        encoding: Encoding::Base64Der,
    },
    PresetEntry {
        preset: Preset::Traefik,
        name: "traefik",
        aliases: &[],
        header: "X-Forwarded-Tls-Client-Cert",
        encoding: Encoding::Base64Der,
    },
    PresetEntry {
        preset: Preset::Nginx,
        name: "nginx",
        aliases: &[],
        header: "X-SSL-Client-Cert",
        encoding: Encoding::UrlPem,
    },
    PresetEntry {
        preset: Preset::Haproxy,
        name: "haproxy",
        aliases: &[],
        header: "X-SSL-Client-Cert",
        encoding: Encoding::Base64Der,
    },
    PresetEntry {
        preset: Preset::Rfc9440,
        name: "rfc9440",
        aliases: &["gcp"],
        header: "Client-Cert",
        encoding: Encoding::Rfc9440,
    },
];

impl Preset {
    /// Every preset, in the order of the documentation.
    pub const ALL: [Self; 7] = [
        Self::AwsAlb,
        Self::Envoy,
        Self::Cloudflare,
        Self::Traefik,
        Self::Nginx,
        Self::Haproxy,
        Self::Rfc9440,
    ];

    fn entry(self) -> &'static PresetEntry {
        // Every variant has its entry (a test checks); the first stands in otherwise.
        PRESETS
            .iter()
            .find(|e| e.preset == self)
            .unwrap_or(&PRESETS[0])
    }

    /// The configuration name (`aws-alb`, …).
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    /// Other names accepted for it (`istio` for `envoy`, `gcp` for `rfc9440`).
    pub fn aliases(self) -> &'static [&'static str] {
        self.entry().aliases
    }

    /// The certificate header.
    pub fn header(self) -> &'static str {
        self.entry().header
    }

    /// The encoding.
    pub fn encoding(self) -> Encoding {
        self.entry().encoding
    }

    /// Every configuration name, comma-separated (for help and error messages).
    pub fn names() -> String {
        PRESETS.map(|e| e.name).join(", ")
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = SetupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PRESETS
            .iter()
            .find(|e| e.name == s || e.aliases.contains(&s))
            .map(|e| e.preset)
            .ok_or_else(|| SetupError::UnknownPreset { name: s.to_owned() })
    }
}

/// An address range: `10.0.0.0/8`, `::1/128`, or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = SetupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SetupError::InvalidCidr {
            value: s.to_owned(),
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which peers may send certificate headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrustedProxies {
    ranges: Vec<Cidr>,
    any: bool,
    unix_socket: bool,
}

impl TrustedProxies {
    /// Addresses or CIDR ranges (`10.0.0.0/8`, `::1`), as `--trusted-proxy` takes them.
    pub(crate) fn new<S: AsRef<str>>(
        ranges: impl IntoIterator<Item = S>,
    ) -> Result<Self, SetupError> {
        let ranges = ranges
            .into_iter()
            .map(|r| r.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(Self {
            ranges,
            ..Self::default()
        })
    }

    /// Whether `remote` may send certificate headers. An unknown address never may (unless
    /// every peer is trusted).
    pub(crate) fn contains(&self, remote: Option<IpAddr>) -> bool {
        self.any || remote.is_some_and(|ip| self.ranges.iter().any(|c| c.contains(ip)))
    }

    /// Whether a peer on a Unix-domain socket may send certificate headers
    /// ([`ProxyHeaderConfig::trust_unix_socket`], or every peer is trusted).
    pub(crate) fn trusts_unix_socket(&self) -> bool {
        self.any || self.unix_socket
    }

    /// Whether nothing is trusted (the configuration would reject every header).
    pub(crate) fn is_empty(&self) -> bool {
        !self.any && !self.unix_socket && self.ranges.is_empty()
    }
}

/// Where, and how, the proxy forwards the client certificate; whom to trust for it.
#[derive(Clone, Debug)]
pub struct ProxyHeaderConfig {
    header: String,
    chain_header: Option<String>,
    encoding: Encoding,
    xfcc_select: XfccSelect,
    trusted: TrustedProxies,
    verify_header: Option<(String, String)>,
    fallback_to_tls_peer: bool,
    reverify: bool,
    max_value_bytes: usize,
    max_chain_len: usize,
}

/// Default cap on a certificate header's value, in bytes (a URL-encoded PEM chain of three
/// P-256 certificates is about 4 KiB; RSA-4096 chains about 9 KiB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 * 1024;

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl ProxyHeaderConfig {
    /// A preset's header and encoding. Trust no proxy yet: add them with
    /// [`Self::with_trusted_proxies`].
    pub fn preset(preset: Preset) -> Self {
        let mut c = Self::build(preset.header().to_owned(), preset.encoding());
        if preset == Preset::Rfc9440 {
            c.chain_header = Some("Client-Cert-Chain".to_owned());
        }
        c
    }

    /// A custom header and encoding (for `rfc9440`, the chain header is
    /// `Client-Cert-Chain` unless set with [`Self::with_chain_header`]).
    pub fn custom(header: &str, encoding: Encoding) -> Result<Self, SetupError> {
        if !valid_header_name(header) {
            return Err(SetupError::InvalidHeaderName {
                name: header.to_owned(),
            });
        }
        let mut c = Self::build(header.to_owned(), encoding);
        if encoding == Encoding::Rfc9440 {
            c.chain_header = Some("Client-Cert-Chain".to_owned());
        }
        Ok(c)
    }

    fn build(header: String, encoding: Encoding) -> Self {
        Self {
            header,
            chain_header: None,
            encoding,
            xfcc_select: XfccSelect::default(),
            trusted: TrustedProxies::default(),
            verify_header: None,
            fallback_to_tls_peer: false,
            reverify: true,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_chain_len: crate::verify::DEFAULT_MAX_CHAIN_LEN,
        }
    }

    /// Proxies allowed to send the header: addresses or CIDR ranges.
    pub fn with_trusted_proxies<S: AsRef<str>>(
        mut self,
        ranges: impl IntoIterator<Item = S>,
    ) -> Result<Self, SetupError> {
        for r in ranges {
            self.trusted.ranges.push(r.as_ref().parse()?);
        }
        Ok(self)
    }

    /// Honours the header from peers on a Unix-domain socket (the adapters'
    /// `serve_plain` on a Unix listener). There, trust is the socket: only processes that may open it
    /// (its file permissions: make it writable by the proxy's user or group alone) can send
    /// a header, which on a same-host setup is narrower than trusting `127.0.0.1`, where
    /// every local process can connect. TCP peers are still checked against
    /// [`Self::with_trusted_proxies`].
    pub fn trust_unix_socket(mut self) -> Self {
        self.trusted.unix_socket = true;
        self
    }

    /// Honours the header from any peer. Safe only when nothing but the proxy can reach
    /// this listener and the proxy always overwrites the header.
    pub fn dangerous_trust_any_proxy(mut self) -> Self {
        self.trusted.any = true;
        self
    }

    /// Requires `name: value` alongside the certificate, exactly once (nginx
    /// `X-SSL-Client-Verify: SUCCESS`, HAProxy `X-SSL-Client-Verify: 0`). A missing or
    /// different value is `PROXY_VERIFICATION_FAILED` (401); a repeated one is
    /// `REPEATED_CERTIFICATE_HEADER` (400), as a repeated certificate header is.
    pub fn with_verify_header(mut self, name: &str, value: &str) -> Result<Self, SetupError> {
        if !valid_header_name(name) {
            return Err(SetupError::InvalidHeaderName {
                name: name.to_owned(),
            });
        }
        self.verify_header = Some((name.to_owned(), value.to_owned()));
        Ok(self)
    }

    /// The header holding the chain, for `rfc9440`.
    pub fn with_chain_header(mut self, name: &str) -> Result<Self, SetupError> {
        if !valid_header_name(name) {
            return Err(SetupError::InvalidHeaderName {
                name: name.to_owned(),
            });
        }
        self.chain_header = Some(name.to_owned());
        Ok(self)
    }

    /// Takes the certificate from the first XFCC element: the original client, as reported
    /// by the first proxy (default: the last element, written by the nearest proxy, the
    /// trusted one). Only if every proxy on the path is yours and sanitizes the header.
    pub fn with_xfcc_first(mut self) -> Self {
        self.xfcc_select = XfccSelect::First;
        self
    }

    /// Requires exactly one XFCC element (more is a malformed header; default: take the
    /// last, written by the nearest proxy).
    pub fn with_xfcc_only(mut self) -> Self {
        self.xfcc_select = XfccSelect::Only;
        self
    }

    /// Use the TLS peer's certificate for a client that is not a trusted proxy and sends no
    /// certificate header: a client reaching certauth directly, past the proxy, from a known
    /// address (default: no; a peer whose address is unknown may be the proxy). A trusted proxy's request never falls back (without the header its client has no
    /// certificate; the proxy's own identity does not stand in for it), and neither does a
    /// malformed header or a failed verify header. Needs the authenticator to have trust
    /// anchors.
    pub fn with_fallback_to_tls_peer(mut self, on: bool) -> Self {
        self.fallback_to_tls_peer = on;
        self
    }

    /// Verify the forwarded chain again against the authenticator's trust anchors, when it
    /// has some (default: yes).
    pub fn with_reverify(mut self, on: bool) -> Self {
        self.reverify = on;
        self
    }

    /// Cap on the header value's size (default [`DEFAULT_MAX_VALUE_BYTES`]).
    pub fn with_max_value_bytes(mut self, max: usize) -> Self {
        self.max_value_bytes = max;
        self
    }

    /// Cap on the forwarded chain's length (default 8).
    pub fn with_max_chain_len(mut self, max: usize) -> Self {
        self.max_chain_len = max;
        self
    }

    /// The certificate header's name.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The header the rest of the chain comes in (RFC 9440's `Client-Cert-Chain`), if any.
    pub fn chain_header(&self) -> Option<&str> {
        self.chain_header.as_deref()
    }

    /// The trusted proxies.
    pub(crate) fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// The verify header and its expected value.
    pub fn verify_header(&self) -> Option<(&str, &str)> {
        self.verify_header
            .as_ref()
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether a missing or malformed header falls back to the TLS peer.
    pub fn falls_back_to_tls_peer(&self) -> bool {
        self.fallback_to_tls_peer
    }

    /// Whether the forwarded chain is verified again.
    pub fn reverifies(&self) -> bool {
        self.reverify
    }

    pub(crate) fn chain_header_name(&self) -> Option<&str> {
        self.chain_header.as_deref()
    }

    /// Decodes a header value (and, for `rfc9440`, the chain header's value) with this
    /// configuration's encoding and caps.
    pub fn decode(
        &self,
        value: &[u8],
        chain_value: Option<&[u8]>,
    ) -> Result<Vec<CertificateDer<'static>>, ProxyHeaderError> {
        let caps = Caps {
            max_value_bytes: self.max_value_bytes,
            max_chain_len: self.max_chain_len,
        };
        decode(self.encoding, value, chain_value, self.xfcc_select, caps)
    }
}

/// Why a certificate header could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyHeaderError {
    /// The value is larger than the cap.
    TooLarge {
        /// Its size.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// More certificates than the cap.
    ChainTooLong {
        /// The cap.
        max: usize,
    },
    /// A `%` escape is invalid.
    BadPercentEncoding,
    /// Not valid base64.
    BadBase64,
    /// PEM is malformed.
    BadPem,
    /// The value decodes to no certificate.
    Empty,
    /// Not an RFC 9440 byte sequence (`:base64:`).
    BadStructuredField,
    /// XFCC syntax error at a byte offset.
    Xfcc {
        /// Where.
        offset: usize,
        /// What.
        reason: &'static str,
    },
    /// The XFCC element to trust could not be chosen (`Only` with another count).
    XfccElementCount {
        /// How many elements the header has.
        count: usize,
    },
    /// The chosen XFCC element has no `Cert`.
    XfccNoCert,
    /// The chosen XFCC element's `Hash` does not match its `Cert`.
    XfccHashMismatch,
}

impl ProxyHeaderError {
    /// A stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "CERTIFICATE_HEADER_TOO_LARGE",
            Self::ChainTooLong { .. } => "CHAIN_TOO_LONG",
            Self::XfccHashMismatch => "XFCC_HASH_MISMATCH",
            _ => "MALFORMED_CERTIFICATE_HEADER",
        }
    }
}

impl fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "certificate header is {len} bytes, over the limit of {max}"
                )
            }
            Self::ChainTooLong { max } => {
                write!(f, "certificate header holds more than {max} certificates")
            }
            Self::BadPercentEncoding => f.write_str("certificate header has an invalid % escape"),
            Self::BadBase64 => f.write_str("certificate header is not valid base64"),
            Self::BadPem => f.write_str("certificate header is not valid PEM"),
            Self::Empty => f.write_str("certificate header holds no certificate"),
            Self::BadStructuredField => {
                f.write_str("certificate header is not an RFC 9440 byte sequence (:base64:)")
            }
            Self::Xfcc { offset, reason } => {
                write!(
                    f,
                    "x-forwarded-client-cert syntax error at byte {offset}: {reason}"
                )
            }
            Self::XfccElementCount { count } => write!(
                f,
                "x-forwarded-client-cert has {count} elements where exactly one was expected"
            ),
            Self::XfccNoCert => f.write_str(
                "x-forwarded-client-cert element has no Cert (set forward_client_cert_details \
                 and set_current_client_cert_details cert: true in Envoy)",
            ),
            Self::XfccHashMismatch => {
                f.write_str("x-forwarded-client-cert Hash does not match its Cert")
            }
        }
    }
}

impl std::error::Error for ProxyHeaderError {}

/// Decoding caps.
#[derive(Clone, Copy, Debug)]
struct Caps {
    max_value_bytes: usize,
    max_chain_len: usize,
}

fn decode(
    encoding: Encoding,
    value: &[u8],
    chain_value: Option<&[u8]>,
    xfcc_select: XfccSelect,
    caps: Caps,
) -> Result<Vec<CertificateDer<'static>>, ProxyHeaderError> {
    for v in std::iter::once(value).chain(chain_value) {
        if v.len() > caps.max_value_bytes {
            return Err(ProxyHeaderError::TooLarge {
                len: v.len(),
                max: caps.max_value_bytes,
            });
        }
    }
    let value = value.trim_ascii();
    let certs = match encoding {
        Encoding::UrlPem | Encoding::UrlPemAws => url_pem(value, caps.max_chain_len)?,
        Encoding::Base64Der => base64_der_list(value, caps.max_chain_len)?,
        Encoding::Rfc9440 => {
            let mut certs = vec![CertificateDer::from(sf_binary(value)?)];
            if let Some(chain) = chain_value {
                for item in chain.split(|b| *b == b',') {
                    let item = item.trim_ascii();
                    if item.is_empty() {
                        continue;
                    }
                    if certs.len() >= caps.max_chain_len {
                        return Err(ProxyHeaderError::ChainTooLong {
                            max: caps.max_chain_len,
                        });
                    }
                    certs.push(CertificateDer::from(sf_binary(item)?));
                }
            }
            certs
        }
        Encoding::Xfcc => {
            let text = std::str::from_utf8(value).map_err(|_| ProxyHeaderError::Xfcc {
                offset: 0,
                reason: "not UTF-8",
            })?;
            let element = xfcc::select(xfcc::parse(text)?, xfcc_select)?;
            let cert = element
                .cert
                .as_deref()
                .ok_or(ProxyHeaderError::XfccNoCert)?;
            let mut certs = url_pem(cert.as_bytes(), 1)?;
            if let Some(hash) = &element.hash {
                let want = hex_sha256(&certs[0]);
                if !hash.eq_ignore_ascii_case(&want) {
                    return Err(ProxyHeaderError::XfccHashMismatch);
                }
            }
            if let Some(chain) = &element.chain {
                // Envoy's Chain starts with the leaf itself.
                for c in url_pem(chain.as_bytes(), caps.max_chain_len)? {
                    if c != certs[0] {
                        if certs.len() >= caps.max_chain_len {
                            return Err(ProxyHeaderError::ChainTooLong {
                                max: caps.max_chain_len,
                            });
                        }
                        certs.push(c);
                    }
                }
            }
            certs
        }
    };
    if certs.is_empty() {
        return Err(ProxyHeaderError::Empty);
    }
    Ok(certs)
}

fn hex_sha256(der: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decodes `%XX` escapes; `+` stays `+` (RFC 3986, and what `decodeURIComponent` does).
pub(crate) fn percent_decode(input: &[u8]) -> Result<Vec<u8>, ProxyHeaderError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
            match (hex(input.get(i + 1)), hex(input.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(
                        u8::try_from(h * 16 + l)
                            .map_err(|_| ProxyHeaderError::BadPercentEncoding)?,
                    );
                    i += 3;
                }
                _ => return Err(ProxyHeaderError::BadPercentEncoding),
            }
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// URL-encoded PEM: percent-decode, then read every `CERTIFICATE` block.
fn url_pem(
    value: &[u8],
    max_chain_len: usize,
) -> Result<Vec<CertificateDer<'static>>, ProxyHeaderError> {
    let mut pem = percent_decode(value)?;
    // Encoders that use form encoding write the armour's spaces as `+`.
    for armour in [&b"BEGIN+CERTIFICATE"[..], b"END+CERTIFICATE"] {
        let mut i = 0;
        while let Some(pos) = pem[i..].windows(armour.len()).position(|w| w == armour) {
            let at = i + pos;
            let plus = at + armour.iter().position(|b| *b == b'+').unwrap_or(0);
            pem[plus] = b' ';
            i = at + armour.len();
        }
    }
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&pem) {
        let cert = item.map_err(|_| ProxyHeaderError::BadPem)?;
        if certs.len() >= max_chain_len {
            return Err(ProxyHeaderError::ChainTooLong { max: max_chain_len });
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(ProxyHeaderError::BadPem);
    }
    Ok(certs)
}

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Comma-separated base64 DER, percent-decoded first if it holds `%`.
fn base64_der_list(
    value: &[u8],
    max_chain_len: usize,
) -> Result<Vec<CertificateDer<'static>>, ProxyHeaderError> {
    let decoded;
    let value = if value.contains(&b'%') {
        decoded = percent_decode(value)?;
        &decoded[..]
    } else {
        value
    };
    let mut certs = Vec::new();
    for item in value.split(|b| *b == b',') {
        let item: Vec<u8> = item
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        if item.is_empty() {
            continue;
        }
        if certs.len() >= max_chain_len {
            return Err(ProxyHeaderError::ChainTooLong { max: max_chain_len });
        }
        let der = BASE64
            .decode(&item)
            .map_err(|_| ProxyHeaderError::BadBase64)?;
        certs.push(CertificateDer::from(der));
    }
    Ok(certs)
}

/// An RFC 8941 byte sequence: `:base64:`.
fn sf_binary(item: &[u8]) -> Result<Vec<u8>, ProxyHeaderError> {
    let inner = item
        .strip_prefix(b":")
        .and_then(|i| i.strip_suffix(b":"))
        .ok_or(ProxyHeaderError::BadStructuredField)?;
    BASE64
        .decode(inner)
        .map_err(|_| ProxyHeaderError::BadStructuredField)
}

#[cfg(test)]
mod tests;
