//! The table cannot be forged: file names and command names full of
//! terminal controls (ESC sequences, OSC 8 links, CR, LF, DEL, raw and
//! UTF-8 C1, U+202E, a whole fake row) come out as one row per event, with
//! no control byte at all, and the escapes undo to the exact bytes
//! (README.md, "The table").
mod common;

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// File names an unprivileged user may choose (anything but `/` and NUL).
const HOSTILE_NAMES: &[&[u8]] = &[
    b"\x1b[2Jclear",
    b"\x1b]8;;http:example.invalid\x07link\x1b]8;;\x07",
    b"cr\rname",
    b"lf\nname",
    b"del\x7fname",
    b"tab\tname",
    b"raw c1 \x9b31mred",
    "utf-8 c1 \u{9b}31m and \u{2028} line sep".as_bytes(),
    "rlo \u{202e}gnp.exe".as_bytes(),
    b"back\\slash \\x41 \\u{41}",
    b"arrow -> etc",
];

/// A directory whose name holds LF and then a whole row of the table, so
/// that `<it>/etc/shadow` would print as a forged unlink of /etc/shadow.
const FAKE_ROW: &[u8] = b"row\nunlink   2026-01-01T00:00:00.000000000Z       1       1       0      0      sshd             4242       23      0      ";

/// Command names (at most 15 bytes) a process may give itself.
const HOSTILE_COMMS: &[&[u8]] = &[b"\x1b[2J\n\rsshd \xe2\x80\xae", b"c1\x9b[31m\x7f"];

/// What a row must say: the event, who, and the exact path bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    kind: String,
    pid: u32,
    tid: u32,
    comm: Vec<u8>,
    failed: bool,
    path: Vec<u8>,
    target: Option<Vec<u8>>,
}

/// The inverse of the table's escapes: `\\`, `\xHH`, `\u{H…}`.
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

/// The first `n` whitespace-separated columns, and the rest of the line.
fn columns(line: &str, n: usize) -> (Vec<&str>, &str) {
    let mut cols = Vec::new();
    let mut rest = line;
    for _ in 0..n {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        cols.push(&rest[..end]);
        rest = &rest[end..];
    }
    (cols, rest.trim_start_matches(' '))
}

/// EVT TIME PID TID UID GID COMM INODE MOUNTID RET PATH
fn parse_row(line: &str) -> Row {
    let (cols, path) = columns(line, 10);
    let (path, target) = match cols[0] {
        "rename" | "link" => {
            let parts: Vec<&str> = path.split(" -> ").collect();
            assert_eq!(parts.len(), 2, "one arrow in {line:?}");
            (unescape(parts[0]), Some(unescape(parts[1])))
        }
        _ => (unescape(path), None),
    };
    Row {
        kind: cols[0].to_owned(),
        pid: cols[2].parse().expect("pid"),
        tid: cols[3].parse().expect("tid"),
        comm: unescape(cols[6]),
        failed: cols[9].starts_with('-'),
        path,
        target,
    }
}

/// A character that would drive a terminal or reorder text.
fn is_forbidden(c: char) -> bool {
    c.is_control() && c != '\n'
        || matches!(c, '\u{61c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
}

/// `fsprobe -f table DIR`, its stdout collected as raw bytes.
struct TableProbe {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl TableProbe {
    fn start(dir: &Path) -> TableProbe {
        let mut child = Command::new(fsprobe_bin())
            .args(["-f", "table"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fsprobe");
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let reader = std::thread::spawn(move || {
            let mut buf = [0; 65536];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let ready = stderr.next();
        assert!(
            matches!(&ready, Some(Ok(l)) if l.starts_with("fsprobe: ready")),
            "{ready:?}"
        );
        // Read on to the summary: a closed pipe would fail fsprobe's writes.
        let rest = std::thread::spawn(move || stderr.map_while(Result::ok).for_each(drop));
        TableProbe {
            child,
            out,
            readers: vec![reader, rest],
        }
    }

    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !String::from_utf8_lossy(&self.out.lock().unwrap()).contains(needle) {
            assert!(Instant::now() < deadline, "no {needle} row in the table");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> Vec<u8> {
        // SAFETY: kill() with our child's pid and a valid signal number.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        assert!(self.child.wait().unwrap().success());
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        self.out.lock().unwrap().clone()
    }
}

fn join(dir: &Path, name: &[u8]) -> Vec<u8> {
    let mut p = dir.as_os_str().as_bytes().to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

fn my_comm() -> Vec<u8> {
    let comm = std::fs::read(format!("/proc/self/task/{}/comm", tid())).unwrap();
    comm.strip_suffix(b"\n").unwrap_or(&comm).to_vec()
}

/// Creates `path` from a forked child named `comm`; returns the child's pid.
fn create_as(comm: &[u8], path: &[u8]) -> u32 {
    let (comm, path) = (CString::new(comm).unwrap(), CString::new(path).unwrap());
    // SAFETY: the child makes only async-signal-safe calls (prctl, open,
    // close, _exit) on strings allocated before the fork.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork");
        if pid == 0 {
            libc::prctl(libc::PR_SET_NAME, comm.as_ptr());
            let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
            libc::close(fd);
            libc::_exit(0);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        pid as u32
    }
}

/// Asserts that an operation succeeded, or failed, as the test means it to.
fn check(what: &str, rc: libc::c_int, ok: bool) {
    assert_eq!(rc >= 0, ok, "{what}: {}", std::io::Error::last_os_error());
}

/// open(2) then close(2) at once; the open's return value.
fn open_close(path: &[u8], flags: libc::c_int) -> libc::c_int {
    let path = cstr(path);
    // SAFETY: a valid NUL-terminated path; the fd is ours to close.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags, 0o644);
        if fd >= 0 {
            libc::close(fd);
        }
        fd
    }
}

fn mkdir(path: &[u8]) -> libc::c_int {
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::mkdir(cstr(path).as_ptr(), 0o755) }
}

fn unlink(path: &[u8]) -> libc::c_int {
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::unlink(cstr(path).as_ptr()) }
}

fn rename(from: &[u8], to: &[u8]) -> libc::c_int {
    // SAFETY: valid NUL-terminated paths.
    unsafe { libc::rename(cstr(from).as_ptr(), cstr(to).as_ptr()) }
}

const CREATE: libc::c_int = libc::O_CREAT | libc::O_WRONLY;

#[test]
fn hostile_names_and_comms_print_one_row_each_and_undo_exactly() {
    let scratch = Scratch::new("table");
    let dir = scratch.path.clone();
    let probe = TableProbe::start(&dir);
    let (pid, tid, comm) = (pid(), tid(), my_comm());
    let mut expected = Vec::new();
    let mut mine = |kind: &str, failed: bool, path: Vec<u8>, target: Option<Vec<u8>>| {
        expected.push(Row {
            kind: kind.into(),
            pid,
            tid,
            comm: comm.clone(),
            failed,
            path,
            target,
        })
    };
    for name in HOSTILE_NAMES {
        let path = join(&dir, name);
        check("create", open_close(&path, CREATE), true);
        mine("open", false, path, None);
        let missing = join(&dir, &[b"missing ", *name].concat());
        check("failed open", open_close(&missing, libc::O_RDONLY), false);
        mine("open", true, missing, None);
    }
    let row_dir = join(&dir, FAKE_ROW);
    let etc = [&row_dir[..], b"/etc"].concat();
    let shadow = [&etc[..], b"/shadow"].concat();
    for path in [&row_dir, &etc] {
        check("mkdir", mkdir(path), true);
        mine("mkdir", false, path.clone(), None);
    }
    check("create shadow", open_close(&shadow, CREATE), true);
    mine("open", false, shadow.clone(), None);
    check("unlink shadow", unlink(&shadow), true);
    mine("unlink", false, shadow, None);
    let from = join(&dir, HOSTILE_NAMES[8]);
    let to = join(&dir, b"renamed \x1b[0m -> \n\xff");
    check("rename", rename(&from, &to), true);
    mine("rename", false, from, Some(to.clone()));
    check("unlink", unlink(&to), true);
    mine("unlink", false, to, None);
    let mut theirs = Vec::new();
    for (i, hostile) in HOSTILE_COMMS.iter().enumerate() {
        let path = join(&dir, format!("by hostile comm {i}").as_bytes());
        let child = create_as(hostile, &path);
        // The decoder turns a comm that is not UTF-8 into a String with
        // U+FFFD replacements (JSON does the same): that is what it shows.
        let shown = String::from_utf8_lossy(hostile).into_owned().into_bytes();
        theirs.push((child, shown, path));
    }
    let sentinel = dir.join("zz sentinel");
    std::fs::write(&sentinel, b"").unwrap();
    mine(
        "open",
        false,
        sentinel.as_os_str().as_bytes().to_vec(),
        None,
    );
    probe.wait_for("zz sentinel");
    let out = probe.stop();

    let text = String::from_utf8(out).expect("the table is valid UTF-8");
    let bad: Vec<(usize, char)> = text
        .char_indices()
        .filter(|(_, c)| is_forbidden(*c))
        .collect();
    assert!(
        bad.is_empty(),
        "control or format characters {bad:?} in:\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("EVT "), "header: {:?}", lines[0]);
    let rows: Vec<Row> = lines[1..].iter().map(|l| parse_row(l)).collect();
    assert_eq!(
        rows.len(),
        expected.len() + theirs.len(),
        "one line per event:\n{text}"
    );
    let my_rows: Vec<Row> = rows.iter().filter(|r| r.tid == tid).cloned().collect();
    for (got, want) in my_rows.iter().zip(&expected) {
        assert_eq!(got, want, "row {got:?}\nexpected {want:?}");
    }
    assert_eq!(my_rows.len(), expected.len(), "{text}");
    for (child, shown, path) in theirs {
        let row = rows
            .iter()
            .find(|r| r.pid == child)
            .unwrap_or_else(|| panic!("no row for pid {child} in:\n{text}"));
        assert_eq!(
            (&row.kind[..], &row.comm, &row.path),
            ("open", &shown, &path),
            "{row:?}"
        );
    }
}
