//! Bad input: one clear line on stderr, and the documented exit code: 2
//! when the command line is at fault (fix the command), 1 when the system
//! is (fix the machine: root, BTF, the kernel, the output device).
mod common;

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::*;

/// Runs fsprobe and returns (exit code, the stderr lines).
fn fails(args: &[&str], uid: Option<u32>) -> (i32, Vec<String>) {
    let out = run_fsprobe(args, uid);
    outcome(&out)
}

fn outcome(out: &std::process::Output) -> (i32, Vec<String>) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    (out.status.code().expect("exited, not killed"), lines)
}

/// Why `lines` is not one `fsprobe:` line mentioning `needle`, if it is not.
fn one_line_problem(lines: &[String], needle: &str) -> Option<String> {
    match lines {
        [line] if line.starts_with("fsprobe: ") && line.contains(needle) => None,
        _ => Some(format!(
            "expected one 'fsprobe: ' line mentioning {needle:?}, got {lines:#?}"
        )),
    }
}

fn assert_one_line(lines: &[String], needle: &str) {
    if let Some(problem) = one_line_problem(lines, needle) {
        panic!("{problem}");
    }
}

#[test]
fn every_usage_error_is_one_line_and_exit_2() {
    let scratch = Scratch::new("bad-input");
    let dir = scratch.path.to_str().unwrap();
    // Four filter entries: the directory and its three subdirectories.
    for name in ["a", "b", "c"] {
        std::fs::create_dir(scratch.join(name)).unwrap();
    }
    let many_pids: Vec<String> = (1..=65)
        .flat_map(|p| ["--pid".into(), p.to_string()])
        .collect();
    let mut too_many: Vec<&str> = many_pids.iter().map(String::as_str).collect();
    too_many.push(dir);
    let cases: &[(&[&str], &str)] = &[
        // Caught by the flag parser.
        (&["-e", "delete", dir], "unknown event 'delete'"),
        (&["-f", "xml", dir], "'xml'"),
        (
            &["--dentry-resolution-mode", "fast", dir],
            "unknown dentry resolution mode 'fast'",
        ),
        (&["--backend", "ebpf", dir], "unknown backend 'ebpf'"),
        (&["--transport", "pipe", dir], "unknown transport 'pipe'"),
        (&["--frobnicate", dir], "'--frobnicate'"),
        (&["-s", "abc", dir], "'abc' for '--chan-size"),
        (&["--perf-buffer-size", "-3", dir], "'-3'"),
        (
            &["--max-watches", "4294967296", dir],
            "'4294967296' for '--max-watches",
        ),
        (&["--pid", "1x", dir], "'1x' for '--pid"),
        (&["--uid", "root", dir], "'root' for '--uid"),
        (&["--cache-size", "big", dir], "'big' for '--cache-size"),
        (&["--recursive=maybe", dir], "'maybe' for '--recursive"),
        (
            &["--pid", "1", "--exclude-pid", "2", dir],
            "cannot be used with '--exclude-pid",
        ),
        (
            &["--uid", "0", "--exclude-uid", "1", dir],
            "cannot be used with '--exclude-uid",
        ),
        (
            &["--comm", "a", "--exclude-comm", "b", dir],
            "cannot be used with '--exclude-comm",
        ),
        (&[dir, "-e"], "a value is required for '--event"),
        // Caught by the library's checks of the options and paths.
        (&[], "no path to watch"),
        (
            &["/nonexistent/fsprobe/path"],
            "cannot watch /nonexistent/fsprobe/path: No such file or directory",
        ),
        (
            &["--comm", "0123456789abcdef", dir],
            "command name '0123456789abcdef' must be 1 to 15 bytes",
        ),
        (
            &["--comm", "", dir],
            "command name '' must be 1 to 15 bytes",
        ),
        (&too_many, "at most 64 values per pid filter, not 65"),
        (
            &["--perf-buffer-size", "0", dir],
            "the buffer size must be between 1 and 262144 pages, not 0",
        ),
        (
            &["--perf-buffer-size", "262145", dir],
            "between 1 and 262144 pages, not 262145",
        ),
        (
            &["--chan-size", "0", dir],
            "the channel size must be between 1 and 1048576, not 0",
        ),
        (
            &["--chan-size", "1048577", dir],
            "between 1 and 1048576, not 1048577",
        ),
        (
            &["--max-watches", "0", dir],
            "the watch limit must be between 1 and 134217728, not 0",
        ),
        (
            &["--max-watches", "134217729", dir],
            "between 1 and 134217728, not 134217729",
        ),
        (
            &["--cache-size", "0", dir],
            "the cache size must be between 16 and 16777216 entries, not 0",
        ),
        (&["--cache-size", "16777217", dir], "not 16777217"),
        (
            &["--btf", "/nonexistent/vmlinux", dir],
            "no BTF file at /nonexistent/vmlinux",
        ),
        // Caught while the tree is walked, the probes loaded.
        (
            &["--max-watches", "3", dir],
            "hold more than 3 directories and files with several links",
        ),
        // Caught by the CLI once the probe runs.
        (
            &["-o", "/nonexistent/dir/out.json", dir],
            "cannot create /nonexistent/dir/out.json: No such file or directory",
        ),
    ];
    let mut problems = Vec::new();
    for (args, needle) in cases {
        let (code, lines) = fails(args, None);
        if code != 2 {
            problems.push(format!("{args:?}: exit {code}, not 2: {lines:?}"));
        } else if let Some(problem) = one_line_problem(&lines, needle) {
            problems.push(format!("{args:?}: {problem}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_command_line_error_echoes_no_control_byte() {
    // (clap itself drops ESC sequences and DEL from the values it quotes.)
    let (code, lines) = fails(&["-e", "x\ry\n\u{202e}", "/tmp"], None);
    assert_eq!(code, 2);
    assert_one_line(&lines, "unknown event 'x\\x0dy\\x0a\\u{202e}'");
}

#[test]
fn not_root_is_one_line_and_exit_1() {
    let (code, lines) = fails(&["/tmp"], Some(65534));
    assert_eq!(code, 1);
    assert_one_line(&lines, "must run as root");
}

#[test]
fn a_kernel_without_btf_is_one_line_and_exit_1() {
    // A private mount namespace where /sys/kernel/btf is an empty tmpfs.
    let (btf_dir, tmpfs) = (
        CString::new("/sys/kernel/btf").unwrap(),
        CString::new("tmpfs").unwrap(),
    );
    let mut cmd = Command::new(fsprobe_bin());
    cmd.arg("/tmp").stdin(Stdio::null());
    // SAFETY: unshare() and mount() are plain syscalls, safe between fork
    // and exec; the strings were allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let private = libc::MS_REC | libc::MS_PRIVATE;
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    private,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    tmpfs.as_ptr(),
                    btf_dir.as_ptr(),
                    tmpfs.as_ptr(),
                    0,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (code, lines) = outcome(&cmd.output().expect("run fsprobe"));
    assert_eq!(code, 1, "{lines:?}");
    assert_one_line(&lines, "no BTF at /sys/kernel/btf/vmlinux");
}

// A backend this kernel cannot run (exit 1, naming it and why): tests/backends.rs.

#[test]
fn an_output_that_fails_while_running_is_exit_1() {
    let dir = Scratch::new("bad-output");
    let mut child = Command::new(fsprobe_bin())
        .args(["-f", "table", "-o", "/dev/full"])
        .arg(&dir.path)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fsprobe");
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let ready = lines.next().expect("a ready line").unwrap();
    assert!(ready.starts_with("fsprobe: ready"), "{ready}");
    // An event to write: the write to /dev/full fails with ENOSPC.
    std::fs::write(dir.join("event"), b"").unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(1), "{rest:?}");
    assert_one_line(&rest, "writing events: No space left on device");
}

#[test]
fn an_error_about_a_hostile_path_is_escaped() {
    let (code, lines) = fails(&["/nonexistent/\x1b]8;;x\x07\nfsprobe: ready\r"], None);
    assert_eq!(code, 2);
    assert_one_line(
        &lines,
        "cannot watch /nonexistent/\\x1b]8;;x\\x07\\x0afsprobe: ready\\x0d: No such file",
    );
}

#[test]
fn an_option_the_library_refuses_is_one_line_and_exit_2() {
    let (code, lines) = fails(&["--cache-size", "1", "/tmp"], None);
    assert_eq!(code, 2);
    assert_one_line(
        &lines,
        "invalid option: the cache size must be between 16 and 16777216 entries, not 1",
    );
}
