//! NATS JetStream output against a real nats-server (Debian's), started by
//! the test: two fsprobe instances, each in network and UTS namespaces of
//! its own (hosts `alpha` and `beta`), publish to one server, which is
//! stopped and restarted in the middle of a burst.
//!
//! Topology (every hop on loopback or a unix socket):
//!
//! ```text
//!   netns alpha: fsprobe --nats nats://127.0.0.1:4222
//!                socat TCP-LISTEN:127.0.0.1:4222 -> UNIX-CONNECT:alpha.sock
//!   netns beta:  the same, through beta.sock
//!   root netns:  socat UNIX-LISTEN:alpha.sock -> TCP:127.0.0.1:PORT (and beta.sock)
//!                nats-server -a 127.0.0.1 -p PORT -js (store in a temp dir)
//! ```
//!
//! alpha has the default buffer: every event reaches the stream exactly
//! once. beta's buffer holds 100 records, fewer than the burst produces
//! while the server is down: what it could not hold is counted, the stream
//! holds loss records saying how many, and the counts match.
//!
//! Not run in the VM guests (no servers there): vmtest/build.sh leaves out
//! the `fleet_*` test targets.
mod common;
mod servers;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

use servers::*;

const FILES: usize = 1500;

struct Host {
    name: &'static str,
    dir: Scratch,
    probe: Probe,
    _bridges: [Daemon; 2],
}

/// fsprobe in new network and UTS namespaces, reaching the server through
/// two socat relays and a unix socket.
fn start_host(name: &'static str, server_port: u16, state: &Path, extra: &[&str]) -> Host {
    let dir = Scratch::new(&format!("nats-{name}"));
    let sock = state.join(format!("{name}.sock"));
    let outside = socat(
        &format!("socat {name} root"),
        None,
        &format!("UNIX-LISTEN:{},fork", sock.display()),
        &format!("TCP:127.0.0.1:{server_port}"),
        &state.join(format!("socat-{name}-root.log")),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--uts", "--", "sh", "-c"])
        .arg(r#"ip link set lo up && hostname "$0" && exec "$@""#)
        .arg(name)
        .arg(fsprobe_bin())
        .args(["-f", "json", "-e", "open", "--drain-timeout", "30"])
        .args(["--nats", "nats://127.0.0.1:4222"])
        .args(extra)
        .arg(&dir.path);
    let probe = Probe::spawn(cmd);
    assert_ne!(
        netns(probe.pid()),
        netns(std::process::id()),
        "fsprobe {name} is not in a network namespace of its own"
    );
    let inside = socat(
        &format!("socat {name} netns"),
        Some(probe.pid()),
        "TCP-LISTEN:4222,bind=127.0.0.1,fork,reuseaddr",
        &format!("UNIX-CONNECT:{}", sock.display()),
        &state.join(format!("socat-{name}-netns.log")),
    );
    Host {
        name,
        dir,
        probe,
        _bridges: [inside, outside],
    }
}

/// Every message of the stream: (subject, Nats-Msg-Id, payload).
fn read_stream(url: &str) -> Vec<(String, String, serde_json::Value)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url)
            .await
            .expect("connect to nats-server");
        let js = async_nats::jetstream::new(client);
        let mut stream = js
            .get_stream("FSPROBE")
            .await
            .expect("the stream fsprobe made");
        let state = stream.info().await.expect("stream info").state.clone();
        let mut out = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            let msg = stream.get_raw_message(seq).await.expect("get message");
            let id = msg
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
                .unwrap_or_default();
            let payload = serde_json::from_slice(&msg.payload).expect("NDJSON payload");
            out.push((msg.subject.to_string(), id, payload));
        }
        out
    })
}

#[test]
fn two_hosts_publish_every_event_exactly_once_across_a_server_restart() {
    let state = Scratch::new("nats-state");
    let mut server = NatsServer::start(&state.path);
    let alpha = start_host("alpha", server.port, &state.path, &[]);
    let beta = start_host("beta", server.port, &state.path, &["--nats-buffer", "100"]);
    let hosts = [&alpha, &beta];
    // Both connected first, so that stopping the server disconnects them.
    for h in hosts {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !h.probe.stderr().contains("fsprobe: nats: connected") {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never connected: {}",
                h.name,
                h.probe.stderr()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let burst = |range: std::ops::Range<usize>| {
        for i in range {
            for h in hosts {
                fs::File::create(h.dir.join(format!("f{i}"))).unwrap();
            }
        }
    };
    burst(0..FILES / 3);
    server.stop();
    burst(FILES / 3..2 * FILES / 3);
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.restart();
    burst(2 * FILES / 3..FILES);
    for h in hosts {
        h.probe.wait_for_count(FILES, |v| v["event"] == "open");
    }
    let Host {
        probe,
        dir: alpha_dir,
        name: alpha_name,
        _bridges: alpha_bridges,
    } = alpha;
    let alpha_done = probe.stop();
    drop(alpha_bridges);
    let Host {
        probe,
        dir: beta_dir,
        name: beta_name,
        _bridges: beta_bridges,
    } = beta;
    let beta_done = probe.stop();
    drop(beta_bridges);
    let messages = read_stream(&server.url());

    let ids: HashSet<_> = messages.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), messages.len(), "a Nats-Msg-Id is stored twice");
    let subjects: HashSet<_> = messages.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(subjects, HashSet::from(["fsprobe.alpha", "fsprobe.beta"]));

    for (name, dir, done, lossy) in [
        (alpha_name, &alpha_dir, &alpha_done, false),
        (beta_name, &beta_dir, &beta_done, true),
    ] {
        assert!(done.status.success(), "{name}: {}", done.stderr);
        let subject = format!("fsprobe.{name}");
        let mine: Vec<_> = messages.iter().filter(|(s, _, _)| *s == subject).collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut lost = 0;
        for (_, _, v) in &mine {
            if v["event"] == "lost" {
                assert_eq!(v["reason"], "output_buffer_full", "{name}: {v}");
                assert_eq!(v["output"], "nats", "{name}: {v}");
                lost += v["count"].as_u64().unwrap();
            } else if v["event"] == "open" && v["process"]["pid"] == pid() {
                *seen.entry(path_of(v, "file")).or_default() += 1;
            }
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{name}: events stored more than once: {twice:?}"
        );
        for i in 0..FILES {
            let path = dir.join(format!("f{i}")).display().to_string();
            assert!(
                lossy || seen.contains_key(&path),
                "{name}: no event for {path}"
            );
        }
        // Every payload is an object the JSON sink printed too.
        for (_, _, v) in mine.iter().filter(|(_, _, v)| v["event"] != "lost") {
            assert!(
                done.events.contains(v),
                "{name}: published but not printed: {v}"
            );
        }
        let summary = output_summary(&done.stderr, "nats");
        eprintln!("{name}:\n{}", done.stderr);
        assert_eq!(
            number_after(summary, "buffer full:"),
            lost,
            "{name}: {summary}"
        );
        assert_eq!(
            number_after(summary, "unsent at exit:"),
            0,
            "{name}: {summary}"
        );
        assert_eq!(
            seen.len() as u64 + lost,
            FILES as u64,
            "{name}: received + lost"
        );
        if lossy {
            assert!(
                lost > 0,
                "{name}: its 100-record buffer should have overflowed"
            );
        } else {
            assert_eq!(lost, 0, "{name}: {summary}");
        }
        assert!(
            done.stderr.contains("fsprobe: nats: disconnected"),
            "{name} never saw the server go: {}",
            done.stderr
        );
    }
    server.stop();
}

/// Runs fsprobe (in this network namespace) with the NATS output until
/// `files` files were created in `dir` and reported, then stops it.
fn run_spooling(dir: &Scratch, url: &str, spool: &Path, names: std::ops::Range<usize>) -> Finished {
    let probe = watch(
        &dir.path,
        &[
            "-e",
            "open",
            "--nats",
            url,
            "--nats-buffer",
            "10",
            "--nats-spool",
            spool.to_str().unwrap(),
            "--drain-timeout",
            "1",
        ],
    );
    let n = names.len();
    for i in names {
        fs::File::create(dir.join(format!("f{i}"))).unwrap();
    }
    probe.wait_for_count(n, |v| v["event"] == "open");
    probe.stop()
}

#[test]
fn what_an_unreachable_server_did_not_get_waits_in_the_spool_for_the_next_run() {
    const RUN: usize = 300;
    let dir = Scratch::new("nats-spool");
    let state = Scratch::new("nats-spool-state");
    let spool = state.join("spool");
    // Nothing listens on the port yet: the first run spools all it cannot send.
    let mut server = NatsServer::start(&state.path);
    server.stop();
    let first = run_spooling(&dir, &server.url(), &spool, 0..RUN);
    assert!(first.status.success(), "{}", first.stderr);
    let summary = output_summary(&first.stderr, "nats");
    assert_eq!(number_after(summary, "nats:"), 0, "{summary}");
    assert!(summary.contains(" 0 events lost"), "{summary}");
    assert!(
        summary.contains(&format!("{RUN} records kept in the spool")),
        "{summary}"
    );
    let spooled = fs::read_to_string(&spool).unwrap().lines().count();
    assert_eq!(
        spooled, RUN,
        "the spool holds every record of the first run: {summary}"
    );

    // The second run publishes the spool first, then its own records.
    server.restart();
    let second = run_spooling(&dir, &server.url(), &spool, RUN..2 * RUN);
    assert!(second.status.success(), "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains(&format!("{RUN} records left in the spool")),
        "{}",
        second.stderr
    );
    let summary = output_summary(&second.stderr, "nats");
    assert_eq!(number_after(summary, "nats:"), 2 * RUN as u64, "{summary}");
    assert_eq!(
        fs::metadata(&spool).unwrap().len(),
        0,
        "the spool is empty again"
    );

    let messages = read_stream(&server.url());
    let mut paths: Vec<String> = messages
        .iter()
        .filter(|(_, _, v)| v["event"] == "open")
        .map(|(_, _, v)| path_of(v, "file"))
        .collect();
    let expected: Vec<String> = (0..2 * RUN)
        .map(|i| dir.join(format!("f{i}")).display().to_string())
        .collect();
    assert_eq!(paths, expected, "every event once, the first run's first");
    paths.dedup();
    assert_eq!(paths.len(), 2 * RUN);
    let ids: HashSet<_> = messages.iter().map(|(_, id, _)| id).collect();
    assert_eq!(ids.len(), 2 * RUN, "the two runs' message ids differ");
}
