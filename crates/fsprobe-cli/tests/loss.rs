//! Nothing is lost without a record saying so: with a deliberately tiny
//! ring buffer, a burst of opens yields lost records whose counts plus
//! the events delivered equal the operations performed, exactly.
mod common;

use std::fs;

use common::*;

const OPENS: usize = 20_000;

#[test]
fn lost_records_plus_events_equal_the_operations() {
    check_losses("ring_buffer");
}

#[test]
fn lost_records_plus_events_equal_the_operations_over_perf_buffers() {
    check_losses("perf_buffer");
}

fn check_losses(transport: &str) {
    let dir = Scratch::new(&format!("loss-{transport}"));
    let path = dir.join("burst");
    fs::write(&path, b"x").unwrap();
    // One page (per CPU for perf buffers): a handful of records fit, the
    // burst overflows it.
    let probe = watch(
        &dir.path,
        &[
            "--perf-buffer-size",
            "1",
            "--transport",
            transport,
            "-e",
            "open",
        ],
    );
    for _ in 0..OPENS {
        fs::File::open(&path).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let finished = probe.stop();
    let delivered = finished
        .events
        .iter()
        .filter(|v| v["event"] == "open" && v["process"]["pid"] == pid())
        .count();
    let lost_records: Vec<_> = finished
        .events
        .iter()
        .filter(|v| v["event"] == "lost")
        .collect();
    let lost: u64 = lost_records
        .iter()
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    eprintln!(
        "loss[{transport}]: {OPENS} opens, {delivered} delivered, {lost} lost in {} records",
        lost_records.len()
    );
    assert!(
        lost > 0,
        "a one-page buffer should overflow; stderr:\n{}",
        finished.stderr
    );
    assert!(
        lost_records
            .iter()
            .all(|v| v["reason"] == "buffer_full" && v["cpu"].is_u64()),
        "{}",
        dump(&finished.events)
    );
    // Each loss record sits where the gap is: the next event on its CPU
    // continues the numbering right after the lost ones.
    let mut next_seq = std::collections::HashMap::new();
    for v in &finished.events {
        let cpu = v["cpu"].as_u64();
        if v["event"] == "lost" {
            let c = cpu.unwrap();
            *next_seq.entry(c).or_insert(0) += v["count"].as_u64().unwrap();
        } else if let (Some(c), Some(seq)) = (cpu, v["seq"].as_u64()) {
            let expected = next_seq.entry(c).or_insert(0);
            assert_eq!(seq, *expected, "event out of place: {v}");
            *expected = seq + 1;
        }
    }
    assert_eq!(
        delivered as u64 + lost,
        OPENS as u64,
        "stderr:\n{}",
        finished.stderr
    );
    let summary = finished
        .stderr
        .lines()
        .find(|l| l.contains(" events, "))
        .unwrap_or_default();
    assert!(
        summary.contains(&format!("{lost} lost")),
        "summary: {summary}"
    );
}
