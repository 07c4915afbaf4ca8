//! Short ASCII fields of the JSON output (a device, a mode) built on the
//! stack. `core::fmt` (format_args!, Display) made a fifth of the JSON
//! sink's time: its machinery is heavy for a few digits. The one
//! definition for the serde impls (event.rs) and the JSON writer (json.rs).
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

    fn extend(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// `mode` in octal, as `format!("{:o}")` writes it (with shifts: no
    /// division per digit).
    pub(crate) fn octal(mode: u32) -> Ascii {
        let mut digits = [0u8; 11]; // u32::MAX has 11 octal digits
        let mut start = digits.len();
        let mut rest = mode;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest & 7) as u8;
            rest >>= 3;
            if rest == 0 {
                break;
            }
        }
        let mut a = Ascii::new();
        a.extend(&digits[start..]);
        a
    }

    /// `major:minor`.
    pub(crate) fn device((major, minor): (u32, u32)) -> Ascii {
        let mut a = Ascii::new();
        a.extend(itoa::Buffer::new().format(major).as_bytes());
        a.extend(b":");
        a.extend(itoa::Buffer::new().format(minor).as_bytes());
        a
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever written.
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
    }
}
