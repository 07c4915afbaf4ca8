//! Records as NDJSON, written by hand: the bytes serde_json writes from
//! the `Serialize` impls in event.rs, in a fraction of the time.
//!
//! Through serde, an event took about a microsecond of the CLI's CPU:
//! serde_json escapes every key at run time, writes each piece of
//! punctuation on its own, and walks its `SerializeMap` state for every
//! entry. Here each key is a byte-string literal with its punctuation
//! (`,"inode":`), integers go through itoa, and strings through an escaper
//! that copies clean runs whole.
//!
//! The `Serialize` impls stay: library users serialize records with serde.
//! This is a second implementation of the same format, so the tests below
//! compare the two byte for byte, on the golden records and on thousands
//! of random ones. A change to one must be made to the other.
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;

use crate::ascii::{Ascii, base64_quads};
use crate::clock::{Rfc3339, rfc3339_bytes};
use crate::event::{
    ContainerId, Event, ExtraString, FileRef, IoUringRequest, MknodInfo, MountInfo, OpenInfo,
    Origin, Process, Record, SetAttr, XattrInfo, node_type,
};

/// Appends `record`'s JSON object (no newline) to `out`.
pub(crate) fn write_record(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Event(event) => write_event(event, out),
        Record::Lost { count, reason, cpu } => {
            out.extend_from_slice(b"{\"event\":\"lost\",\"count\":");
            int(out, *count);
            out.extend_from_slice(b",\"reason\":");
            name(out, reason.name());
            if let Some(cpu) = cpu {
                out.extend_from_slice(b",\"cpu\":");
                int(out, *cpu);
            }
            out.push(b'}');
        }
        Record::Unwatched {
            count,
            reason,
            path,
        } => {
            out.extend_from_slice(b"{\"event\":\"unwatched\",\"count\":");
            int(out, *count);
            out.extend_from_slice(b",\"reason\":");
            name(out, reason.name());
            if let Some(path) = path {
                out.extend_from_slice(b",\"path\":");
                text(out, "path", path.as_os_str().as_bytes());
            }
            out.push(b'}');
        }
    }
}

fn write_event(e: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time\":");
    time(out, e.time_ns);
    out.extend_from_slice(b",\"event\":");
    name(out, e.kind.name());
    out.extend_from_slice(b",\"seq\":");
    int(out, e.seq);
    out.extend_from_slice(b",\"cpu\":");
    int(out, e.cpu);
    origin(out, &e.origin);
    out.extend_from_slice(b",\"retval\":");
    int(out, e.retval);
    out.extend_from_slice(b",\"process\":");
    process(out, &e.process);
    out.extend_from_slice(b",\"file\":");
    file(out, &e.file);
    if let Some(target) = &e.target {
        out.extend_from_slice(b",\"target\":");
        file(out, target);
    }
    if let Some(open) = &e.open {
        out.extend_from_slice(b",\"open\":");
        open_info(out, open);
    }
    if let Some(mode) = e.mkdir_mode {
        out.extend_from_slice(b",\"mode\":");
        octal(out, mode);
    }
    if let Some(setattr) = &e.setattr {
        out.extend_from_slice(b",\"setattr\":");
        set_attr(out, setattr);
    }
    if let Some(target) = &e.symlink_target {
        out.extend_from_slice(b",\"symlink\":{\"target\":");
        extra(out, "target", target);
        out.push(b'}');
    }
    if let Some(mknod) = &e.mknod {
        out.extend_from_slice(b",\"mknod\":");
        mknod_info(out, mknod);
    }
    if let Some(xattr) = &e.xattr {
        out.extend_from_slice(b",\"xattr\":");
        xattr_info(out, xattr);
    }
    if let Some(mount) = &e.mount {
        out.extend_from_slice(b",\"mount\":");
        mount_info(out, mount);
    }
    out.push(b'}');
}

/// `,"origin":...` and what goes with it: the syscall's name (and ABI) or
/// the io_uring request.
fn origin(out: &mut Vec<u8>, origin: &Origin) {
    match origin {
        Origin::Syscall(syscall) => {
            out.extend_from_slice(b",\"origin\":\"syscall\",\"syscall\":");
            string(out, syscall);
        }
        Origin::Ia32Syscall(syscall) => {
            out.extend_from_slice(b",\"origin\":\"syscall\",\"syscall\":");
            string(out, syscall);
            out.extend_from_slice(b",\"syscall_abi\":\"ia32\"");
        }
        Origin::IoUring(request) => {
            out.extend_from_slice(b",\"origin\":\"io_uring\",\"io_uring\":");
            io_uring(out, request);
        }
        Origin::Kernel => out.extend_from_slice(b",\"origin\":\"kernel\""),
    }
}

fn io_uring(out: &mut Vec<u8>, request: &IoUringRequest) {
    out.extend_from_slice(b"{\"opcode\":");
    string(out, request.opcode);
    out.extend_from_slice(b",\"user_data\":");
    int(out, request.user_data);
    if request.worker {
        out.extend_from_slice(b",\"worker\":true");
    }
    if request.unconfirmed {
        out.extend_from_slice(b",\"unconfirmed\":true");
    }
    out.push(b'}');
}

fn process(out: &mut Vec<u8>, p: &Process) {
    out.extend_from_slice(b"{\"pid\":");
    int(out, p.pid);
    out.extend_from_slice(b",\"tid\":");
    int(out, p.tid);
    out.extend_from_slice(b",\"ppid\":");
    int(out, p.ppid);
    out.extend_from_slice(b",\"comm\":");
    string(out, &p.comm);
    out.extend_from_slice(b",\"uid\":");
    int(out, p.uid);
    out.extend_from_slice(b",\"gid\":");
    int(out, p.gid);
    out.extend_from_slice(b",\"euid\":");
    int(out, p.euid);
    out.extend_from_slice(b",\"egid\":");
    int(out, p.egid);
    out.extend_from_slice(b",\"start_time_ns\":");
    int(out, p.start_time_ns);
    if let Some(exe) = &p.exe {
        out.extend_from_slice(b",\"exe\":");
        file(out, exe);
    }
    out.extend_from_slice(b",\"mnt_ns\":");
    int(out, p.mnt_ns);
    out.extend_from_slice(b",\"pid_ns\":");
    int(out, p.pid_ns);
    out.extend_from_slice(b",\"cgroup_id\":");
    int(out, p.cgroup_id);
    if let Some(cgroup) = &p.cgroup {
        out.extend_from_slice(b",\"cgroup\":");
        string(out, cgroup);
    }
    if let Some(container) = &p.container {
        out.extend_from_slice(b",\"container\":");
        container_id(out, container);
    }
    out.push(b'}');
}

fn container_id(out: &mut Vec<u8>, c: &ContainerId) {
    out.extend_from_slice(b"{\"runtime\":");
    string(out, c.runtime);
    out.extend_from_slice(b",\"id\":");
    string(out, &c.id);
    out.push(b'}');
}

fn file(out: &mut Vec<u8>, f: &FileRef) {
    out.extend_from_slice(b"{\"path\":");
    text(out, "path", f.path_bytes());
    if let Some(host) = &f.host_path {
        out.extend_from_slice(b",\"host_path\":");
        text(out, "host_path", host.as_os_str().as_bytes());
    }
    out.extend_from_slice(b",\"inode\":");
    int(out, f.inode);
    out.extend_from_slice(b",\"inode_generation\":");
    int(out, f.inode_generation);
    out.extend_from_slice(b",\"mount_id\":");
    int(out, f.mount_id);
    if let Some(point) = &f.mount_point {
        out.extend_from_slice(b",\"mount_point\":");
        text(out, "mount_point", point.as_os_str().as_bytes());
    }
    out.extend_from_slice(b",\"device\":");
    device(out, f.device);
    out.extend_from_slice(b",\"mode\":");
    octal(out, u32::from(f.mode));
    if !f.fstype.is_empty() {
        out.extend_from_slice(b",\"fstype\":");
        string(out, f.fstype);
    }
    if f.truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    if f.user_suffix_len > 0 {
        out.extend_from_slice(b",\"user_suffix_len\":");
        int(out, f.user_suffix_len);
    }
    if f.disconnected {
        out.extend_from_slice(b",\"disconnected\":true");
    }
    if f.missing {
        out.extend_from_slice(b",\"missing\":true");
    }
    out.push(b'}');
}

fn open_info(out: &mut Vec<u8>, open: &OpenInfo) {
    out.extend_from_slice(b"{\"flags\":");
    names(out, open.flag_name_iter());
    out.extend_from_slice(b",\"raw_flags\":");
    int(out, open.flags);
    out.extend_from_slice(b",\"mode\":");
    octal(out, open.mode);
    out.push(b'}');
}

fn set_attr(out: &mut Vec<u8>, a: &SetAttr) {
    let mut entries = Entries::default();
    if let Some(mode) = a.mode {
        entries.key(out, b"\"mode\":");
        octal(out, mode);
    }
    if let Some(uid) = a.uid {
        entries.key(out, b"\"uid\":");
        int(out, uid);
    }
    if let Some(gid) = a.gid {
        entries.key(out, b"\"gid\":");
        int(out, gid);
    }
    if let Some(size) = a.size {
        entries.key(out, b"\"size\":");
        int(out, size);
    }
    if a.times {
        entries.key(out, b"\"times\":true");
    }
    entries.close(out);
}

fn mknod_info(out: &mut Vec<u8>, m: &MknodInfo) {
    out.extend_from_slice(b"{\"type\":");
    name(out, node_type(m.mode));
    out.extend_from_slice(b",\"mode\":");
    octal(out, m.mode & 0o7777);
    // Only device nodes have a device (as MknodInfo's Serialize decides).
    if matches!(m.mode & 0o170000, 0o020000 | 0o060000) {
        out.extend_from_slice(b",\"rdev\":");
        device(out, m.rdev);
    }
    out.push(b'}');
}

fn xattr_info(out: &mut Vec<u8>, x: &XattrInfo) {
    let mut entries = Entries::default();
    if let Some(attr) = &x.name {
        entries.key(out, b"\"name\":");
        extra(out, "name", attr);
    }
    if let Some(size) = x.size {
        entries.key(out, b"\"size\":");
        int(out, size);
    }
    if x.flags & 3 != 0 {
        entries.key(out, b"\"flags\":");
        let flags = [(1, "XATTR_CREATE"), (2, "XATTR_REPLACE")]
            .into_iter()
            .filter(|(bit, _)| x.flags & bit != 0)
            .map(|(_, n)| n);
        names(out, flags);
    }
    entries.close(out);
}

fn mount_info(out: &mut Vec<u8>, m: &MountInfo) {
    let mut entries = Entries::default();
    if let Some(source) = &m.source {
        entries.key(out, b"\"source\":");
        extra(out, "source", source);
    }
    entries.key(out, b"\"flags\":");
    int(out, m.flags);
    entries.close(out);
}

/// The entries of an object whose first entry may be absent: `{` goes
/// before the first entry written, `,` before the others.
#[derive(Default)]
struct Entries {
    opened: bool,
}

impl Entries {
    /// Writes the separator and `key` (the key with its quotes and colon).
    fn key(&mut self, out: &mut Vec<u8>, key: &[u8]) {
        out.push(if self.opened { b',' } else { b'{' });
        self.opened = true;
        out.extend_from_slice(key);
    }

    fn close(self, out: &mut Vec<u8>) {
        if !self.opened {
            out.push(b'{');
        }
        out.push(b'}');
    }
}

/// The value of an [`ExtraString`] under `key` (already written), with its
/// flags, as `ExtraString::serialize_into` writes them.
fn extra(out: &mut Vec<u8>, key: &str, s: &ExtraString) {
    text(out, key, &s.bytes);
    if s.from_user {
        out.extend_from_slice(b",\"user_supplied\":true");
    }
    if s.truncated {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"_truncated\":true");
    }
}

/// An integer, as serde_json writes it (serde_json uses itoa too).
fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `"<octal>"`, as the serde impls write it.
fn octal(out: &mut Vec<u8>, mode: u32) {
    name(out, Ascii::octal(mode).as_str());
}

/// `"YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ"`, as `clock::Rfc3339` displays the
/// time.
fn time(out: &mut Vec<u8>, unix_ns: i128) {
    match rfc3339_bytes(unix_ns) {
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(&text);
            out.push(b'"');
        }
        // Years no clock will give, but an Event may hold.
        None => {
            let _ = write!(out, "\"{}\"", Rfc3339(unix_ns)); // a Vec never fails
        }
    }
}

/// `"major:minor"`, as the serde impls write it.
fn device(out: &mut Vec<u8>, dev: (u32, u32)) {
    name(out, Ascii::device(dev).as_str());
}

/// Text fsprobe defines or builds (an event kind, a reason, a flag, digits):
/// known to need no escaping, so written as it is.
fn name(out: &mut Vec<u8>, name: &str) {
    debug_assert!(name.bytes().all(|b| ESCAPE[usize::from(b)] == 0));
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
}

/// A JSON array of names.
fn names(out: &mut Vec<u8>, names: impl Iterator<Item = &'static str>) {
    out.push(b'[');
    for (i, n) in names.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        name(out, n);
    }
    out.push(b']');
}

/// A string from bytes that may not be UTF-8, as event.rs's
/// `serialize_bytes` writes it: valid UTF-8 as a plain string; otherwise
/// the text with each invalid sequence as U+FFFD (as
/// `String::from_utf8_lossy` makes it), followed by the exact bytes in
/// base64 under `<key>_bytes`.
fn text(out: &mut Vec<u8>, key: &str, bytes: &[u8]) {
    // from_utf8 checks ASCII a word at a time: cheaper than decoding
    // chunks for the paths that are valid, nearly all of them.
    if std::str::from_utf8(bytes).is_ok() {
        return string_bytes(out, bytes);
    }
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        escaped(out, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        }
    }
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"_bytes\":\"");
    base64(out, bytes);
    out.push(b'"');
}

/// A JSON string.
fn string(out: &mut Vec<u8>, s: &str) {
    string_bytes(out, s.as_bytes());
}

/// A JSON string from UTF-8 bytes (escaping touches only ASCII bytes, so
/// UTF-8 stays UTF-8).
fn string_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    escaped(out, bytes);
    out.push(b'"');
}

/// What serde_json writes for each byte: 0 for the byte itself, else the
/// letter after the backslash (`u` for `\u00XX`). As serde_json's ESCAPE
/// table: `"`, `\` and the control bytes below 0x20; not `/`, DEL or
/// anything non-ASCII.
static ESCAPE: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// `bytes` escaped as in a JSON string. Runs of bytes that need no escape
/// are copied whole: most strings are one such run.
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut run = 0; // where the current clean run starts
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let hex = |nibble: u8| HEX[usize::from(nibble)];
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// Standard base64 with padding (RFC 4648), written straight into `out`.
fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    for quad in base64_quads(bytes) {
        out.extend_from_slice(&quad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::golden_records;
    use crate::test_rng::Rng;
    use crate::{EventKind, LossReason, UnwatchedReason};
    use std::ffi::OsStr;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    /// What serde_json writes for `record`, and what write_json writes.
    fn both(record: &Record) -> (Vec<u8>, Vec<u8>) {
        let mut fast = Vec::new();
        record.write_json(&mut fast);
        (serde_json::to_vec(record).unwrap(), fast)
    }

    #[test]
    fn golden_records_are_written_as_serde_json_writes_them() {
        for (record, expected) in golden_records() {
            let (serde, fast) = both(&record);
            assert_eq!(String::from_utf8_lossy(&fast), expected);
            assert_eq!(fast, serde, "{expected}");
        }
    }

    #[test]
    fn notices_are_written_as_serde_json_writes_them() {
        let notices = [
            Record::Lost {
                count: 0,
                reason: LossReason::BufferFull,
                cpu: None,
            },
            Record::Lost {
                count: u64::MAX,
                reason: LossReason::TooManyInFlight,
                cpu: Some(u32::MAX),
            },
            Record::Unwatched {
                count: 7,
                reason: UnwatchedReason::WatchLimit,
                path: None,
            },
            Record::Unwatched {
                count: 1,
                reason: UnwatchedReason::Unreadable,
                path: Some(PathBuf::from("/a \"b\"\\\t")),
            },
        ];
        for record in notices {
            let (serde, fast) = both(&record);
            assert_eq!(fast, serde, "{}", String::from_utf8_lossy(&serde));
        }
    }

    #[test]
    fn appends_to_what_the_buffer_holds() {
        let (record, expected) = &golden_records()[0];
        let mut out = b"before\n".to_vec();
        record.write_json(&mut out);
        assert_eq!(out, [&b"before\n"[..], expected.as_bytes()].concat());
    }

    #[test]
    fn escapes_every_byte_as_serde_json_does() {
        // Every ASCII byte, and non-ASCII that must pass unescaped.
        let mut s: String = (0u8..0x80).map(char::from).collect();
        s.push_str("é€😀\u{2028}");
        let mut fast = Vec::new();
        string(&mut fast, &s);
        assert_eq!(fast, serde_json::to_vec(&s).unwrap());
    }

    #[test]
    fn random_records_are_written_as_serde_json_writes_them() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000 {
            let record = rng.record();
            let (serde, fast) = both(&record);
            assert!(
                fast == serde,
                "record {i} differs:\nserde_json: {}\nwrite_json: {}\n{record:?}",
                String::from_utf8_lossy(&serde),
                String::from_utf8_lossy(&fast),
            );
        }
    }

    /// Pieces of random strings: what escaping and UTF-8 handling must get
    /// right, among ordinary characters.
    const PIECES: &[&[u8]] = &[
        b"a",
        b"Z",
        b"0",
        b"/",
        b".",
        b" ",
        b"_",
        b"usr/lib",
        b"\"",
        b"\\",
        b"\x00",
        b"\x01",
        b"\x08",
        b"\t",
        b"\n",
        b"\x0b",
        b"\x0c",
        b"\r",
        b"\x1b",
        b"\x1f",
        b"\x7f",
        "é".as_bytes(),
        "€".as_bytes(),
        "😀".as_bytes(),
        "\u{2028}".as_bytes(),
        "\u{fffd}".as_bytes(),
        // Invalid UTF-8: lone continuation, bytes never valid, a cut
        // sequence, an encoded surrogate, an overlong encoding.
        b"\x80",
        b"\xbf",
        b"\xfe",
        b"\xff",
        b"\xc3",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
    ];

    /// Names that are `&'static str` fields (syscall, opcode, fstype,
    /// runtime): anything a library user may set.
    const STATIC_NAMES: &[&str] = &[
        "openat",
        "ext4",
        "OPENAT2",
        "docker",
        "",
        "a\"b",
        "back\\slash",
        "ctl\u{1}\u{1f}\u{7f}\n",
        "é€😀",
        "/x/y",
    ];

    /// Random records from the shared test generator.
    impl Rng {
        fn chance(&mut self, one_in: u64) -> bool {
            self.below(one_in) == 0
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize]
        }

        fn option<T>(&mut self, make: impl FnOnce(&mut Self) -> T) -> Option<T> {
            (!self.chance(3)).then(|| make(self))
        }

        /// A number of any magnitude: 0, small, or up to 64 bits.
        fn num(&mut self) -> u64 {
            let shift = self.below(65) as u32;
            self.next().checked_shr(shift).unwrap_or(0)
        }

        fn bytes(&mut self) -> Vec<u8> {
            let len = self.below(12);
            (0..len).flat_map(|_| self.pick(PIECES)).copied().collect()
        }

        fn utf8(&mut self) -> String {
            String::from_utf8_lossy(&self.bytes()).into_owned()
        }

        fn path(&mut self) -> PathBuf {
            PathBuf::from(OsStr::from_bytes(&self.bytes()))
        }

        fn record(&mut self) -> Record {
            match self.below(10) {
                0 => Record::Lost {
                    count: self.num(),
                    reason: self.pick(&[
                        LossReason::BufferFull,
                        LossReason::TooManyInFlight,
                        LossReason::Unread,
                    ]),
                    cpu: self.option(|r| r.num() as u32),
                },
                1 => Record::Unwatched {
                    count: self.num(),
                    reason: self.pick(&[UnwatchedReason::WatchLimit, UnwatchedReason::Unreadable]),
                    path: self.option(Rng::path),
                },
                _ => Record::Event(Box::new(self.event())),
            }
        }

        fn event(&mut self) -> Event {
            Event {
                seq: self.num(),
                cpu: self.num() as u32,
                // Years from about -9700 to 13600: past both ends of the
                // four-digit years that Rfc3339 formats on the stack.
                time_ns: i128::from(self.next() as i64) * i128::from(self.below(40)),
                kind: self.pick(&EventKind::ALL),
                origin: self.origin(),
                retval: self.num() as i64,
                process: self.process(),
                file: self.file(),
                target: self.option(Rng::file),
                open: self.option(|r| OpenInfo {
                    flags: r.num() as u32,
                    mode: r.num() as u32,
                }),
                mkdir_mode: self.option(|r| r.num() as u32),
                setattr: self.option(|r| SetAttr {
                    mode: r.option(|r| r.num() as u32),
                    uid: r.option(|r| r.num() as u32),
                    gid: r.option(|r| r.num() as u32),
                    size: r.option(|r| r.num() as i64),
                    times: r.chance(2),
                }),
                symlink_target: self.option(Rng::extra),
                mknod: self.option(|r| MknodInfo {
                    mode: r.pick(&[
                        0, 0o010000, 0o020000, 0o060000, 0o140000, 0o100000, 0o170000,
                    ]) | r.below(0o10000) as u32,
                    rdev: (r.num() as u32, r.num() as u32),
                }),
                xattr: self.option(|r| XattrInfo {
                    name: r.option(Rng::extra),
                    size: r.option(Rng::num),
                    flags: r.below(8) as u32,
                }),
                mount: self.option(|r| MountInfo {
                    source: r.option(Rng::extra),
                    flags: r.num() as u32,
                }),
            }
        }

        fn origin(&mut self) -> Origin {
            match self.below(4) {
                0 => Origin::Syscall(self.pick(STATIC_NAMES)),
                1 => Origin::Ia32Syscall(self.pick(STATIC_NAMES)),
                2 => Origin::IoUring(IoUringRequest {
                    opcode: self.pick(STATIC_NAMES),
                    opcode_nr: self.num() as u8,
                    user_data: self.num(),
                    worker: self.chance(2),
                    unconfirmed: self.chance(2),
                }),
                _ => Origin::Kernel,
            }
        }

        fn process(&mut self) -> Process {
            Process {
                pid: self.num() as u32,
                tid: self.num() as u32,
                ppid: self.num() as u32,
                comm: self.utf8(),
                uid: self.num() as u32,
                gid: self.num() as u32,
                euid: self.num() as u32,
                egid: self.num() as u32,
                start_time_ns: self.num(),
                exe: self.option(|r| Arc::new(r.file())),
                mnt_ns: self.num() as u32,
                pid_ns: self.num() as u32,
                cgroup_id: self.num(),
                cgroup: self.option(|r| Arc::from(r.utf8())),
                container: self.option(|r| ContainerId {
                    runtime: r.pick(STATIC_NAMES),
                    id: Arc::from(r.utf8()),
                }),
            }
        }

        fn file(&mut self) -> FileRef {
            FileRef {
                path: self.path(),
                host_path: self.option(Rng::path),
                mount_point: self.option(|r| Arc::<Path>::from(r.path())),
                inode: self.num(),
                inode_generation: self.num() as u32,
                device: (self.num() as u32, self.num() as u32),
                mount_id: self.num() as u32,
                mode: self.num() as u16,
                truncated: self.chance(2),
                user_suffix_len: if self.chance(2) { 0 } else { self.num() as u16 },
                disconnected: self.chance(2),
                missing: self.chance(2),
                fstype: self.pick(STATIC_NAMES),
            }
        }

        fn extra(&mut self) -> ExtraString {
            ExtraString {
                bytes: self.bytes().into(),
                from_user: self.chance(2),
                truncated: self.chance(2),
            }
        }
    }
}
