//! Short ASCII fields of the JSON output (a time, a device, a mode) built
//! on the stack, digit by digit. `core::fmt` (format_args!, Display) made
//! a fifth of the JSON sink's time: its machinery is heavy for a few
//! digits, and serde_json then escapes its output through an adapter.
use serde::{Serialize, Serializer};

/// Up to 32 ASCII bytes, serialized as a JSON string.
pub(crate) struct Ascii {
    buf: [u8; 32],
    len: usize,
}

impl Ascii {
    fn new() -> Ascii {
        Ascii {
            buf: [0; 32],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        self.buf[self.len] = byte;
        self.len += 1;
    }

    /// `value` in base `radix`, at least `width` digits (zero-padded).
    fn digits(&mut self, mut value: u64, radix: u64, width: usize) {
        let mut tmp = [b'0'; 22];
        let mut i = tmp.len();
        while value > 0 || tmp.len() - i < width.max(1) {
            i -= 1;
            tmp[i] = b'0' + (value % radix) as u8;
            value /= radix;
        }
        for &b in &tmp[i..] {
            self.push(b);
        }
    }

    /// `mode` in octal, as `format!("{:o}")` writes it.
    pub(crate) fn octal(mode: u32) -> Ascii {
        let mut a = Ascii::new();
        a.digits(u64::from(mode), 8, 1);
        a
    }

    /// `major:minor`.
    pub(crate) fn device((major, minor): (u32, u32)) -> Ascii {
        let mut a = Ascii::new();
        a.digits(u64::from(major), 10, 1);
        a.push(b':');
        a.digits(u64::from(minor), 10, 1);
        a
    }

    /// `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ` from a civil date and time (a year
    /// in 0..=9999, as clock::rfc3339 checks).
    pub(crate) fn rfc3339(ymd: (i64, u32, u32), secs_of_day: u32, nanos: u32) -> Ascii {
        let mut a = Ascii::new();
        let (y, mo, d) = ymd;
        a.digits(y as u64, 10, 4);
        a.push(b'-');
        a.digits(u64::from(mo), 10, 2);
        a.push(b'-');
        a.digits(u64::from(d), 10, 2);
        a.push(b'T');
        a.digits(u64::from(secs_of_day / 3600), 10, 2);
        a.push(b':');
        a.digits(u64::from(secs_of_day % 3600 / 60), 10, 2);
        a.push(b':');
        a.digits(u64::from(secs_of_day % 60), 10, 2);
        a.push(b'.');
        a.digits(u64::from(nanos), 10, 9);
        a.push(b'Z');
        a
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Standard base64 with padding (RFC 4648), four characters at a time:
/// the one definition for event.rs's `base64()` and json.rs.
pub(crate) fn base64_quads(bytes: &[u8]) -> impl Iterator<Item = [u8; 4]> + '_ {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    bytes.chunks(3).map(|chunk| {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let mut quad = [b'='; 4];
        for (i, c) in quad.iter_mut().enumerate().take(chunk.len() + 1) {
            *c = TABLE[(n >> (18 - 6 * i) & 63) as usize];
        }
        quad
    })
}

impl Serialize for Ascii {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_format_writes() {
        for mode in [0, 0o7, 0o644, 0o100644, 0o40755, u32::MAX] {
            assert_eq!(Ascii::octal(mode).as_str(), format!("{mode:o}"));
        }
        for dev in [(0, 0), (8, 3), (259, 1_048_575), (u32::MAX, u32::MAX)] {
            assert_eq!(Ascii::device(dev).as_str(), format!("{}:{}", dev.0, dev.1));
        }
        assert_eq!(
            Ascii::rfc3339((2026, 1, 9), 3 * 3600 + 4 * 60 + 5, 7).as_str(),
            "2026-01-09T03:04:05.000000007Z"
        );
        assert_eq!(
            Ascii::rfc3339((0, 12, 31), 86_399, 999_999_999).as_str(),
            "0000-12-31T23:59:59.999999999Z"
        );
    }
}
