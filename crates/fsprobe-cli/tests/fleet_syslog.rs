//! Syslog output against a real rsyslogd (Debian's), started by the test
//! with a private configuration on loopback ports; it writes each message's
//! MSG part as one line. fsprobe writes the same records to `-o` as NDJSON,
//! so each MSG must equal the JSON sink's line, byte for byte.
//!
//! Not run in the VM guests (no servers there): vmtest/build.sh leaves out
//! the `fleet_*` test targets.
mod common;
mod servers;

use std::fs;
use std::path::Path;

use common::*;
use servers::*;

/// The `open` events of this test's process, as the JSON sink wrote them.
fn json_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn is_my_open(line: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(line).expect("NDJSON");
    v["event"] == "open" && v["process"]["pid"] == pid()
}

#[test]
fn rsyslog_receives_every_event_of_a_burst_over_tcp_byte_for_byte() {
    const FILES: usize = 3000;
    let dir = Scratch::new("syslog-tcp");
    let state = Scratch::new("syslog-tcp-state");
    let rsyslog = Rsyslog::start(&state.path);
    let ndjson = state.join("events.ndjson");
    let probe = Probe::start([
        "-e".to_owned(),
        "open".into(),
        "-o".into(),
        ndjson.display().to_string(),
        "--syslog-tcp".into(),
        format!("127.0.0.1:{}", rsyslog.tcp_port),
        dir.path.display().to_string(),
    ]);
    for i in 0..FILES {
        fs::File::create(dir.join(format!("f{i}"))).unwrap();
    }
    let finished = {
        let lines = rsyslog.wait_for_lines(FILES);
        assert!(
            lines.len() >= FILES,
            "rsyslog got {} lines of {FILES}; rsyslogd log:\n{}\nfsprobe:\n{}",
            lines.len(),
            rsyslog.log(),
            probe.stderr()
        );
        probe.stop()
    };
    assert!(finished.status.success(), "{}", finished.stderr);
    let sent = json_lines(&ndjson);
    let received = rsyslog.lines();
    let mine = sent.iter().filter(|l| is_my_open(l)).count();
    assert_eq!(mine, FILES, "the JSON sink missed events");
    // Same records, same order, same bytes.
    assert_eq!(received.len(), sent.len(), "received vs sent");
    for (i, (r, s)) in received.iter().zip(&sent).enumerate() {
        assert_eq!(r, s, "message {i} differs from the JSON sink's line");
    }
    let summary = output_summary(&finished.stderr, "syslog_tcp");
    assert_eq!(
        number_after(summary, "syslog_tcp:"),
        sent.len() as u64,
        "{summary}"
    );
    assert!(summary.contains(" 0 events lost"), "{summary}");
}

#[test]
fn over_udp_events_arrive_and_those_too_large_for_a_datagram_are_counted_lost() {
    let dir = Scratch::new("syslog-udp");
    let state = Scratch::new("syslog-udp-state");
    let rsyslog = Rsyslog::start(&state.path);
    let ndjson = state.join("events.ndjson");
    // Three components of 250 bytes make the long events' messages about
    // 750 bytes longer than the others; the limit sits in between.
    let long_dir = dir.join(["a", "b", "c"].map(|c| c.repeat(250)).join("/"));
    fs::create_dir_all(&long_dir).unwrap();
    let probe = Probe::start([
        "-e".to_owned(),
        "open".into(),
        "-o".into(),
        ndjson.display().to_string(),
        "--syslog-udp".into(),
        format!("127.0.0.1:{}", rsyslog.udp_port),
        "--syslog-udp-max".into(),
        "1500".into(),
        dir.path.display().to_string(),
    ]);
    const SHORT: usize = 40;
    const LONG: usize = 5;
    for i in 0..SHORT {
        fs::File::create(dir.join(format!("s{i}"))).unwrap();
        // Paced: UDP has no flow control, and a receiver that falls behind
        // drops datagrams that fsprobe sent.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    for i in 0..LONG {
        fs::File::create(long_dir.join(format!("l{i}"))).unwrap();
    }
    let lines = rsyslog.wait_for_lines(SHORT + LONG);
    let fsprobe_pid = probe.pid();
    let finished = probe.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    let sent: Vec<String> = json_lines(&ndjson)
        .into_iter()
        .filter(|l| is_my_open(l))
        .collect();
    assert_eq!(sent.len(), SHORT + LONG);
    // The message is the header, then the JSON: the header of an open
    // event of this host and pid has a fixed length.
    let header = format!(
        "<30>1 2026-11-29T00:45:18.067046Z {} fsprobe {} open - ",
        hostname(),
        fsprobe_pid
    )
    .len();
    let (fits, too_large): (Vec<_>, Vec<_>) = sent.iter().partition(|l| header + l.len() <= 1500);
    assert_eq!(fits.len(), SHORT, "the short events fit a datagram");
    assert_eq!(too_large.len(), LONG, "the long ones do not");
    for line in &fits {
        assert!(lines.contains(line), "missing over UDP: {line}");
    }
    let notices: Vec<_> = lines
        .iter()
        .filter(|l| l.contains(r#""reason":"too_large_for_datagram""#))
        .collect();
    assert_eq!(
        notices.len(),
        LONG,
        "one loss record per event too large: {lines:#?}"
    );
    for notice in notices {
        let v: serde_json::Value = serde_json::from_str(notice).unwrap();
        assert_eq!(v["event"], "lost");
        assert_eq!(v["count"], 1);
        assert_eq!(v["output"], "syslog_udp");
    }
    let summary = output_summary(&finished.stderr, "syslog_udp");
    assert_eq!(
        number_after(summary, "too large:"),
        LONG as u64,
        "{summary}"
    );
}

fn hostname() -> String {
    let out = std::process::Command::new("hostname").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
