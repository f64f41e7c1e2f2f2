//! Certificate times: UTCTime and GeneralizedTime as seconds since the Unix epoch.
//!
//! The core never reads the clock: "now" is always an argument (`rustls_pki_types::UnixTime`).

use core::fmt;

use rustls_pki_types::UnixTime;

use crate::asn1::{Tlv, tag};

/// A point in time with one-second precision, as written in a certificate (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    secs: i64,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Time {
    /// From seconds since 1970-01-01T00:00:00Z (negative before it).
    pub const fn from_unix_seconds(secs: i64) -> Self {
        Self { secs }
    }

    /// Seconds since 1970-01-01T00:00:00Z (negative before it).
    pub const fn unix_seconds(self) -> i64 {
        self.secs
    }

    /// From a `UnixTime` (saturating at `i64::MAX`).
    pub fn from_unix_time(t: UnixTime) -> Self {
        Self {
            secs: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// Parses a DER UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
    /// (`YYYYMMDDHHMMSSZ`). Fractions and offsets are not DER and are refused.
    pub(crate) fn from_der(tlv: Tlv<'_>) -> Option<Self> {
        let v = tlv.value;
        let (year, rest) = match (tlv.tag, v.len()) {
            (tag::UTC_TIME, 13) => {
                let yy = i64::from(two_digits(v, 0)?);
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &v[2..])
            }
            (tag::GENERALIZED_TIME, 15) => {
                let y = i64::from(two_digits(v, 0)?) * 100 + i64::from(two_digits(v, 2)?);
                (y, &v[4..])
            }
            _ => return None,
        };
        if rest.last() != Some(&b'Z') {
            return None;
        }
        let month = two_digits(rest, 0)?;
        let day = two_digits(rest, 2)?;
        let hour = two_digits(rest, 4)?;
        let minute = two_digits(rest, 6)?;
        let second = two_digits(rest, 8)?;
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(Self {
            secs: days * 86_400
                + i64::from(hour) * 3600
                + i64::from(minute) * 60
                + i64::from(second),
        })
    }

    /// The civil date and time: (year, month 1–12, day, hour, minute, second).
    pub fn to_civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        // rem is in 0..86400, so these conversions cannot fail.
        let rem = u32::try_from(rem).unwrap_or(0);
        (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
    }

    /// As OpenSSL's `ASN1_TIME_print` and Node's legacy object write it:
    /// `Nov  3 08:09:10 2026 GMT`.
    pub fn to_openssl_string(self) -> String {
        let (y, m, d, hh, mm, ss) = self.to_civil();
        let month = usize::try_from(m.saturating_sub(1)).map_or("???", |i| MONTHS[i % 12]);
        format!("{month} {d:>2} {hh:02}:{mm:02}:{ss:02} {y} GMT")
    }

    /// Parses RFC 3339 (`2026-11-03T08:09:10Z`, `2026-11-03T09:09:10+01:00`; fractions of
    /// a second are dropped; a lower-case `t`/`z` or a space separator is accepted).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let b = text.trim().as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let s = std::str::from_utf8(b.get(r)?).ok()?;
            if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        };
        let (year, month, day) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut rest = &b[19..];
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            rest = &rest[1 + digits..];
        }
        let offset: i64 = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let digits = [*h1, *h2, *m1, *m2];
                if !digits.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let d = |c: u8| i64::from(c - b'0');
                let minutes = (d(*h1) * 10 + d(*h2)) * 60 + d(*m1) * 10 + d(*m2);
                if *sign == b'+' { minutes } else { -minutes }
            }
            _ => return None,
        };
        let secs = days_from_civil(year, month, day) * 86_400
            + i64::from(hour) * 3600
            + i64::from(minute) * 60
            + i64::from(second.min(59))
            - offset * 60;
        Some(Self { secs })
    }

    /// As a `UnixTime`, or `None` before 1970.
    pub fn to_unix_time(self) -> Option<UnixTime> {
        u64::try_from(self.secs)
            .ok()
            .map(|s| UnixTime::since_unix_epoch(std::time::Duration::from_secs(s)))
    }

    /// Seconds from `self` until `later` (negative if `later` is earlier).
    pub fn seconds_until(self, later: Self) -> i64 {
        later.secs.saturating_sub(self.secs)
    }
}

impl fmt::Display for Time {
    /// RFC 3339, e.g. `2026-11-03T08:09:10Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d, hh, mm, ss) = self.to_civil();
        write!(f, "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

impl From<UnixTime> for Time {
    fn from(t: UnixTime) -> Self {
        Self::from_unix_time(t)
    }
}

fn two_digits(v: &[u8], at: usize) -> Option<u32> {
    match v.get(at..at + 2)? {
        [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(b - b'0')),
        _ => None,
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests;
