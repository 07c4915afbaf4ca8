//! `--metrics`: the endpoint serves the Prometheus text format that
//! Debian's `promtool check metrics` accepts, and once the traffic stops its
//! counters are exactly the exit summary's.
//!
//! The probe reports only this test process (`--pid`), so the kernel's
//! counters (path walks) do not move with the rest of the host between the
//! scrape and the summary; this file holds one test so that no other test
//! thread shares the pid. A one-page buffer and a watch limit of 3 make the
//! loss and watch-limit counters non-zero.
//!
//! Not run in the VM guests (no promtool there): vmtest/build.sh leaves out
//! the `fleet_*` test targets.
mod common;
mod servers;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use servers::*;

/// GET `path`: (status line, headers, body).
fn get(port: u16, path: &str) -> (String, String, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    write!(conn, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_owned(), body.to_owned())
}

/// `name{labels} value` lines as a map from `name{labels}` to the value.
fn samples(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_owned(), value.parse().expect("an integer value"))
        })
        .collect()
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (scripts/setup.sh installs the prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_metrics_pass_promtool_and_match_the_exit_summary() {
    let dir = Scratch::new("metrics");
    let port = free_tcp_port();
    let me = pid().to_string();
    let addr = format!("127.0.0.1:{port}");
    let probe = watch(
        &dir.path,
        &[
            "--metrics",
            &addr,
            "--pid",
            &me,
            "--max-watches",
            "4",
            "--perf-buffer-size",
            "1",
            "-e",
            "open",
            "-e",
            "mkdir",
            "-e",
            "unlink",
        ],
    );
    // The filter holds directories (a file is matched through its
    // parent): the watched one's parent (flagged: the watched path is a
    // name in it), the watched one, d0 and d1; d2..d4 do not fit.
    for i in 0..20 {
        fs::File::create(dir.join(format!("f{i}"))).unwrap();
    }
    for i in 0..5 {
        fs::create_dir(dir.join(format!("d{i}"))).unwrap();
    }
    fs::remove_file(dir.join("f0")).unwrap();
    // A burst that a one-page buffer cannot hold.
    for _ in 0..5000 {
        fs::File::open(dir.join("f1")).unwrap();
    }
    // Traffic stopped: let the last records (and the losses at the end,
    // judged after 100 ms) come through.
    let mut count = 0;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = probe.events().len();
        if now == count {
            break;
        }
        count = now;
    }
    let (status, headers, text) = get(port, "/metrics");
    let (missing, _, _) = get(port, "/nothing");
    let finished = probe.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(status.ends_with("200 OK"), "{status}");
    assert!(headers.contains("text/plain; version=0.0.4"), "{headers}");
    assert!(missing.contains("404"), "{missing}");
    promtool_check(&text);

    let m = samples(&text);
    let metric = |name: &str| {
        *m.get(name)
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    let by_kind = |kind: &str| {
        finished
            .events
            .iter()
            .filter(|v| v["event"] == kind)
            .count() as u64
    };
    for kind in [
        "open", "mkdir", "unlink", "rename", "setattr", "link", "rmdir", "modify",
    ] {
        assert_eq!(
            metric(&format!("fsprobe_events_total{{kind=\"{kind}\"}}")),
            by_kind(kind),
            "{kind} events"
        );
    }
    let summary = finished
        .stderr
        .lines()
        .find(|l| l.contains(" events, ") && l.contains(" lost ("))
        .expect("summary line");
    // The summary line holds the walks too.
    let walks = summary;
    let events: u64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("fsprobe_events_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(events, number_after(summary, "fsprobe:"), "{summary}");
    let lost = metric(r#"fsprobe_lost_events_total{reason="buffer_full"}"#);
    assert!(
        lost > 0,
        "the one-page buffer should have overflowed: {summary}"
    );
    assert_eq!(lost, number_after(summary, "buffer full:"), "{summary}");
    assert_eq!(
        metric(r#"fsprobe_lost_events_total{reason="too_many_in_flight"}"#),
        number_after(summary, "in flight:")
    );
    assert_eq!(
        metric("fsprobe_undecodable_records_total"),
        number_after(summary, "undecodable:")
    );
    let hits = metric("fsprobe_watch_limit_hits_total");
    assert_eq!(hits, 3, "d2..d4: {summary}");
    assert_eq!(
        hits,
        number_after(summary, "watch limit hits:"),
        "{summary}"
    );
    assert_eq!(
        metric(r#"fsprobe_path_walks_total{end="cached"}"#),
        number_after(walks, "path walks:"),
        "{walks}"
    );
    assert_eq!(
        metric(r#"fsprobe_path_walks_total{end="root"}"#),
        number_after(walks, "cache,"),
        "{walks}"
    );
    assert_eq!(
        metric("fsprobe_filter_entries"),
        4,
        "the directory's parent (a watched path is a name in it), the directory, d0 and d1"
    );
    assert_eq!(metric("fsprobe_ring_buffer_size_bytes"), 4096);
    assert!(metric("fsprobe_ring_buffer_pending_bytes") <= 4096);
    // Everything the probe handed over had been taken by the output loop.
    assert_eq!(metric("fsprobe_consumer_lag_records"), 0);
}
