//! Text that can neither drive a terminal nor forge a row, and that can be
//! undone exactly.
//!
//! A file name is any bytes but `/` and NUL, and a task's comm any bytes
//! its process chose: printed raw, an ESC or OSC sequence drives the
//! terminal, a CR or LF starts a row of the attacker's making, a U+202E
//! reverses what follows. So everything that is not plainly printable is
//! written as an escape, and a backslash is doubled:
//! - `\\` is a backslash;
//! - `\xHH` (two lowercase hex digits) is one byte: a C0 control, DEL, or a
//!   byte that is not part of valid UTF-8 (a raw C1 byte such as 0x9b);
//! - `\u{H…}` (lowercase hex) is one code point: a C1 control (U+0080 to
//!   U+009F), a format character (the bidirectional controls, zero-width
//!   characters, U+FEFF, …), a line or paragraph separator, or a space
//!   other than U+0020.
//!
//! Every other character stands for itself, so each backslash in the
//! output starts an escape and undoing them gives back the exact bytes.
use std::fmt::Write;

/// Where the text is printed, which decides what else is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A line of its own, such as a message on stderr.
    Line,
    /// A table column followed by others: spaces are escaped as `\x20`
    /// too, so that a row splits into its columns at whitespace.
    Word,
    /// A path in the table's last column: the `>` of `->` is escaped as
    /// `\x3e`, so the only ` -> ` in a row is the one between a rename's
    /// source and target.
    Path,
}

/// Code points above U+007F that are not printed as themselves: general
/// categories Cc, Cf, Zl, Zp and Zs (all but U+0020), as of Unicode 15.
const NOT_PRINTABLE: &[(u32, u32)] = &[
    (0x0080, 0x00A0),
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x2064),
    (0x2066, 0x206F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

fn printable_beyond_ascii(c: char) -> bool {
    let c = u32::from(c);
    !NOT_PRINTABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// `bytes` escaped for `field`.
pub fn escape(bytes: &[u8], field: Field) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut after_dash = false;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c, field, after_dash);
            after_dash = c == '-';
        }
        for b in chunk.invalid() {
            push_byte(&mut out, *b);
            after_dash = false;
        }
    }
    out
}

/// `text` escaped as a line of its own.
pub fn line(text: &str) -> String {
    escape(text.as_bytes(), Field::Line)
}

fn push_char(out: &mut String, c: char, field: Field, after_dash: bool) {
    match c {
        '\\' => out.push_str("\\\\"),
        ' ' if field == Field::Word => push_byte(out, b' '),
        '>' if field == Field::Path && after_dash => push_byte(out, b'>'),
        '\0'..='\x1f' | '\x7f' => push_byte(out, c as u8),
        ' '..='~' => out.push(c),
        _ if printable_beyond_ascii(c) => out.push(c),
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

fn push_byte(out: &mut String, b: u8) {
    let _ = write!(out, "\\x{b:02x}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inverse of `escape`, whatever the field.
    fn unescape(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find('\\') {
            out.extend_from_slice(&rest.as_bytes()[..at]);
            let esc = &rest[at + 1..];
            rest = if let Some(after) = esc.strip_prefix('\\') {
                out.push(b'\\');
                after
            } else if let Some(hex) = esc.strip_prefix('x') {
                out.push(u8::from_str_radix(&hex[..2], 16).expect("two hex digits"));
                &hex[2..]
            } else if let Some(braced) = esc.strip_prefix("u{") {
                let end = braced.find('}').expect("closing brace");
                let code = u32::from_str_radix(&braced[..end], 16).expect("hex");
                let c = char::from_u32(code).expect("a code point");
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                &braced[end + 1..]
            } else {
                panic!("a lone backslash in {text:?}");
            };
        }
        out.extend_from_slice(rest.as_bytes());
        out
    }

    /// Is every character of `s` printed as itself by a terminal?
    fn all_printable(s: &str) -> bool {
        s.chars()
            .all(|c| !c.is_control() && (c.is_ascii() || printable_beyond_ascii(c)))
    }

    const HOSTILE: &[&[u8]] = &[
        b"\x1b[2Jclear",
        b"\x1b]8;;http://example.invalid/\x07link\x1b]8;;\x07",
        b"cr\rlf\nnul\0del\x7ftab\t",
        b"raw c1 \x9b31m and \x80 \xff bytes",
        "utf-8 c1 \u{9b} \u{85} rlo \u{202e}txt lre \u{202a} fsi \u{2068} alm \u{61c}".as_bytes(),
        "sep \u{2028} \u{2029} nbsp \u{a0} zwsp \u{200b} bom \u{feff} tag \u{e0041}".as_bytes(),
        b"back\\slash \\x41 \\u{41} \\\\ and a trailing \\",
        b"a -> b --> c ->",
        b"truncated utf-8 \xe2\x80",
    ];

    #[test]
    fn escaping_is_undone_exactly_in_every_field() {
        for field in [Field::Line, Field::Word, Field::Path] {
            for &bytes in HOSTILE {
                let escaped = escape(bytes, field);
                assert_eq!(unescape(&escaped), bytes, "{field:?}: {escaped}");
            }
        }
    }

    #[test]
    fn random_bytes_round_trip_and_print_nothing_unprintable() {
        // A fixed xorshift: reproducible, and every byte value occurs.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 64)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly ASCII, with UTF-8 lead and continuation bytes.
                    [x as u8, (x as u8) & 0x7f, 0xe2, 0x80, 0xae, b'\\'][(x >> 40) as usize % 6]
                })
                .collect();
            for field in [Field::Line, Field::Word, Field::Path] {
                let escaped = escape(&bytes, field);
                assert!(all_printable(&escaped), "{escaped:?}");
                assert_eq!(unescape(&escaped), bytes, "{field:?}: {escaped}");
            }
        }
    }

    #[test]
    fn controls_become_the_documented_escapes() {
        assert_eq!(escape(b"a\x1b[2J\n", Field::Line), "a\\x1b[2J\\x0a");
        assert_eq!(escape(b"\x9b\x7f", Field::Line), "\\x9b\\x7f");
        assert_eq!(
            escape("\u{9b}\u{202e}".as_bytes(), Field::Line),
            "\\u{9b}\\u{202e}"
        );
        assert_eq!(escape(b"C:\\x", Field::Line), "C:\\\\x");
        assert_eq!(escape("é ü 日本".as_bytes(), Field::Line), "é ü 日本");
    }

    #[test]
    fn words_have_no_spaces_and_paths_no_arrows() {
        assert_eq!(escape(b"Web Content", Field::Word), "Web\\x20Content");
        assert_eq!(escape(b"/a -> b", Field::Path), "/a -\\x3e b");
        assert_eq!(escape(b"/a > b-c", Field::Path), "/a > b-c");
        assert_eq!(escape(b"/a -> b", Field::Line), "/a -> b");
    }
}
