//! Bad input: one clear line on stderr, a non-zero exit, nothing attached.
mod common;

use common::*;

/// Runs fsprobe and returns (exit code, the stderr lines).
fn fails(args: &[&str], uid: Option<u32>) -> (i32, Vec<String>) {
    let out = run_fsprobe(args, uid);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    (out.status.code().expect("exited, not killed"), lines)
}

fn assert_one_line(lines: &[String], needle: &str) {
    assert_eq!(lines.len(), 1, "expected one line, got: {lines:#?}");
    assert!(
        lines[0].contains(needle),
        "{:?} does not mention {needle:?}",
        lines[0]
    );
    assert!(lines[0].starts_with("fsprobe: "), "{:?}", lines[0]);
}

#[test]
fn a_missing_path_is_one_line_and_exit_1() {
    let (code, lines) = fails(&["/nonexistent/fsprobe/path"], None);
    assert_eq!(code, 1);
    assert_one_line(
        &lines,
        "cannot watch /nonexistent/fsprobe/path: No such file or directory",
    );
}

#[test]
fn an_unknown_event_is_one_line_and_exit_2() {
    let (code, lines) = fails(&["-e", "delete", "/tmp"], None);
    assert_eq!(code, 2);
    assert_one_line(&lines, "unknown event 'delete'");
}

#[test]
fn an_unknown_format_is_one_line_and_exit_2() {
    let (code, lines) = fails(&["-f", "xml", "/tmp"], None);
    assert_eq!(code, 2);
    assert_one_line(&lines, "'xml'");
}

#[test]
fn an_unknown_resolution_mode_is_one_line_and_exit_2() {
    let (code, lines) = fails(&["--dentry-resolution-mode", "fast", "/tmp"], None);
    assert_eq!(code, 2);
    assert_one_line(&lines, "unknown dentry resolution mode 'fast'");
}

#[test]
fn not_root_is_one_line_and_exit_1() {
    let (code, lines) = fails(&["/tmp"], Some(65534));
    assert_eq!(code, 1);
    assert_one_line(&lines, "must run as root");
}

#[test]
fn no_btf_is_one_line_and_exit_1() {
    let (code, lines) = fails(&["--btf", "/nonexistent/vmlinux", "/tmp"], None);
    assert_eq!(code, 1);
    assert_one_line(&lines, "no BTF");
}

#[test]
fn an_unwritable_output_is_one_line_and_exit_1() {
    let (code, lines) = fails(&["-o", "/nonexistent/dir/out.json", "/tmp"], None);
    assert_eq!(code, 1);
    assert_one_line(&lines, "cannot create /nonexistent/dir/out.json");
}
