//! Kernel timestamps to wall-clock time.
//!
//! Records carry bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME, which keeps
//! counting across suspend). The offset to CLOCK_REALTIME is read once at
//! start; formatting is RFC 3339 in UTC with nanoseconds.
use std::fmt::{self, Write};

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// Converts CLOCK_BOOTTIME nanoseconds into Unix-epoch nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BootClock {
    offset_ns: i128,
}

impl BootClock {
    pub(crate) fn now() -> Self {
        BootClock {
            offset_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME),
        }
    }

    /// CLOCK_BOOTTIME now, the clock of the records' timestamps.
    pub(crate) fn boot_now_ns(self) -> u64 {
        clock_ns(libc::CLOCK_BOOTTIME) as u64
    }

    pub(crate) fn to_unix_ns(self, boot_ns: u64) -> i128 {
        boot_ns as i128 + self.offset_ns
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats Unix-epoch nanoseconds as `2026-11-28T20:01:43.123456789Z`.
pub fn rfc3339(unix_ns: i128) -> String {
    let mut s = String::with_capacity(30);
    let _ = write!(s, "{}", Rfc3339(unix_ns));
    s
}

/// Unix-epoch nanoseconds displayed as [`rfc3339`] formats them, without
/// a String: the JSON output writes it straight into its buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rfc3339(pub(crate) i128);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = rfc3339_bytes(self.0) {
            // ASCII digits and punctuation: always UTF-8.
            return f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
        }
        with_fmt(self.0, f)
    }
}

/// [`rfc3339`]'s text through core::fmt, for any time (a year outside
/// 0..=9999 gets more digits or a sign).
fn with_fmt(unix_ns: i128, f: &mut impl Write) -> fmt::Result {
    let secs = unix_ns.div_euclid(1_000_000_000) as i64;
    let nanos = unix_ns.rem_euclid(1_000_000_000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    write!(
        f,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// [`rfc3339`]'s text for the times an i64 of nanoseconds holds (the years
/// 1677 to 2262, always four digits), without core::fmt: the arithmetic
/// in 64 bits and the digits filled into a template. None outside them,
/// where Rfc3339 formats with core::fmt. The JSON writer's time too.
pub(crate) fn rfc3339_bytes(unix_ns: i128) -> Option<[u8; 30]> {
    let ns = i64::try_from(unix_ns).ok()?;
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let mut s = *b"YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ";
    digits(&mut s[0..4], year as u32);
    digits(&mut s[5..7], month);
    digits(&mut s[8..10], day);
    digits(&mut s[11..13], sod / 3600);
    digits(&mut s[14..16], sod / 60 % 60);
    digits(&mut s[17..19], sod % 60);
    digits(&mut s[20..29], nanos);
    Some(s)
}

/// Fills `field` with the last decimal digits of `n`, zero-padded.
fn digits(field: &mut [u8], mut n: u32) {
    for d in field.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_leap_days() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339(1_795_896_103_123_456_789),
            "2026-11-28T20:01:43.123456789Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn the_template_writes_what_core_fmt_writes() {
        let mut times = vec![0, -1, 1, i64::MIN, i64::MAX, 951_782_400_000_000_001];
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        times.extend((0..10_000).map(|_| rng.next() as i64));
        for ns in times {
            let mut slow = String::new();
            with_fmt(i128::from(ns), &mut slow).unwrap();
            let fast = rfc3339_bytes(i128::from(ns)).expect("an i64 of nanoseconds");
            assert_eq!(std::str::from_utf8(&fast).unwrap(), slow, "{ns}");
        }
        assert_eq!(rfc3339_bytes(i128::from(i64::MAX) + 1), None);
    }
}
