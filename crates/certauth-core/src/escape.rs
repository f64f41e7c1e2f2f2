//! Attacker-supplied text on its way to a log line, a header or a body. A certificate's
//! names and SANs, a proxy's header values and a policy's message quoting them can hold any
//! character: a CR/LF would forge a second log line (or split a header), a bidi override
//! would make a line read differently than it is. Such characters are written as `\u{..}`
//! escapes instead; everything else, non-ASCII letters included, is kept.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` is escaped: control characters (C0, DEL, C1), the Unicode line and paragraph
/// separators, and the bidirectional formatting characters.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with [`needs_escape`] characters written as `\u{..}`; borrowed when there are none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A formatter that escapes what is written through it: `Display` impls whose text quotes
/// a client write through one, so every caller's log line is safe whatever it formats.
pub(crate) struct Escaping<'a, 'b>(pub(crate) &'a mut fmt::Formatter<'b>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(&escape(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(escape("plain é 名"), "plain é 名");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\r\nb\u{7f}\u{85}\u{2028}\u{202e}\u{2066}\t"),
            "a\\u{d}\\u{a}b\\u{7f}\\u{85}\\u{2028}\\u{202e}\\u{2066}\\u{9}"
        );
        for c in [
            '\u{200E}', '\u{200F}', '\u{061C}', '\u{2029}', '\u{202A}', '\u{2069}',
        ] {
            assert!(needs_escape(c), "{c:?}");
        }
        for c in [
            'a', ' ', '\u{2027}', '\u{202F}', '\u{2065}', '\u{206A}', '\u{A0}',
        ] {
            assert!(!needs_escape(c), "{c:?}");
        }
    }

    struct Quoting(&'static str);
    impl fmt::Display for Quoting {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(Escaping(f), "got {}", self.0)
        }
    }

    #[test]
    fn display_through_escaping_escapes_nested_values() {
        assert_eq!(
            Quoting("x\r\nFAKE log line").to_string(),
            "got x\\u{d}\\u{a}FAKE log line"
        );
    }
}
