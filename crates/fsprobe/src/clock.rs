//! Kernel timestamps to wall-clock time.
//!
//! Records carry bpf_ktime_get_boot_ns() (CLOCK_BOOTTIME, which keeps
//! counting across suspend). The offset to CLOCK_REALTIME is read once at
//! start; formatting is RFC 3339 in UTC with nanoseconds.
use std::fmt::{self, Write};

use crate::ascii::Ascii;

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
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
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
        let secs = self.0.div_euclid(1_000_000_000) as i64;
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        if (0..=9999).contains(&y) {
            return f.write_str(Ascii::rfc3339((y, mo, d), sod as u32, nanos).as_str());
        }
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
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
}
