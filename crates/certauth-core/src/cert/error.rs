//! Why a certificate is refused ([`X509Error`]).

use super::*;

/// Which name a name error is about: `issuer`, `subject`, or a directory name inside the
/// subject alternative names.
pub(crate) mod name_field {
    pub(crate) const ISSUER: &str = "issuer";
    pub(crate) const SUBJECT: &str = "subject";
    pub(crate) const SUBJECT_ALT_NAME: &str = "subject alternative name";
}

/// Why a certificate could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum X509Error {
    /// The DER is larger than [`Limits::max_cert_bytes`](crate::Limits::max_cert_bytes).
    TooLarge {
        /// Its size.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The DER is malformed at this byte offset.
    Der {
        /// Offset from the start of the certificate.
        offset: usize,
    },
    /// A string value is not valid for its ASN.1 type (e.g. a UTF8String that is not UTF-8).
    InvalidString {
        /// Which name holds it: `issuer`, `subject` or `subject alternative name`.
        field: &'static str,
        /// Offset from the start of the certificate.
        offset: usize,
    },
    /// A name has more attributes than [`Limits::max_name_attributes`](crate::Limits::max_name_attributes).
    TooManyNameAttributes {
        /// Which name: `issuer`, `subject` or `subject alternative name`.
        field: &'static str,
        /// The cap.
        max: usize,
    },
    /// More subject alternative names than [`Limits::max_san_entries`](crate::Limits::max_san_entries).
    TooManySubjectAltNames {
        /// The cap.
        max: usize,
    },
    /// More extensions than [`Limits::max_extensions`](crate::Limits::max_extensions).
    TooManyExtensions {
        /// The cap.
        max: usize,
    },
    /// The same extension appears twice (RFC 5280 §4.2 forbids it).
    DuplicateExtension {
        /// The extension's OID, dotted.
        oid: String,
    },
    /// A validity time is not a DER UTCTime or GeneralizedTime.
    InvalidTime {
        /// Offset from the start of the certificate.
        offset: usize,
    },
    /// A known extension's contents are malformed.
    InvalidExtension {
        /// The extension's OID, dotted.
        oid: String,
    },
}

impl X509Error {
    /// The stable code: `CERT_TOO_LARGE` for a certificate over one of the [`Limits`](crate::Limits) certificate caps
    /// (a limit the operator can raise), `MALFORMED_CERTIFICATE` for everything else.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. }
            | Self::TooManyNameAttributes { .. }
            | Self::TooManySubjectAltNames { .. }
            | Self::TooManyExtensions { .. } => "CERT_TOO_LARGE",
            _ => "MALFORMED_CERTIFICATE",
        }
    }
}

impl fmt::Display for X509Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "certificate is {len} bytes, over the limit of {max} (Limits::max_cert_bytes)"
                )
            }
            Self::Der { offset } => write!(f, "malformed DER in certificate at byte {offset}"),
            Self::InvalidString { field, offset } => {
                write!(f, "invalid string in {field} at byte {offset}")
            }
            Self::TooManyNameAttributes { field, max } => {
                write!(
                    f,
                    "{field} has more than {max} attributes (Limits::max_name_attributes)"
                )
            }
            Self::TooManySubjectAltNames { max } => {
                write!(
                    f,
                    "certificate has more than {max} subject alternative names (Limits::max_san_entries)"
                )
            }
            Self::TooManyExtensions { max } => {
                write!(
                    f,
                    "certificate has more than {max} extensions (Limits::max_extensions)"
                )
            }
            Self::DuplicateExtension { oid } => write!(f, "extension {oid} appears twice"),
            Self::InvalidTime { offset } => write!(f, "invalid validity time at byte {offset}"),
            Self::InvalidExtension { oid } => write!(f, "malformed extension {oid}"),
        }
    }
}

impl std::error::Error for X509Error {}

impl From<DerError> for X509Error {
    fn from(e: DerError) -> Self {
        Self::Der { offset: e.offset }
    }
}

pub(super) fn name_error(field: &'static str, max: usize) -> impl Fn(NameError) -> X509Error {
    move |e| match e {
        NameError::Der(d) => X509Error::Der { offset: d.offset },
        NameError::TooManyAttributes => X509Error::TooManyNameAttributes { field, max },
        NameError::InvalidString { offset } => X509Error::InvalidString { field, offset },
    }
}
