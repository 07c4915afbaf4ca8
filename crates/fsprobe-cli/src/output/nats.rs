//! NATS JetStream output: each host publishes every record, as its NDJSON
//! object, on `PREFIX.<hostname>`; a fleet fans in to one stream that many
//! consumers read.
//!
//! Delivery is at least once, and JetStream keeps no duplicates: a record
//! leaves the buffer only once JetStream acknowledged it, a failed publish
//! is retried with the same `Nats-Msg-Id`, and the stream's duplicate
//! window drops a retry of a record it already stored. The id is
//! `<hostname>/<boot id>/<pid>.<boot-time ns at start>/<n>`, `n` counting
//! this run's records: unique across hosts, boots and runs, and the same
//! for every retry (and in the spool, for the next run).
//!
//! The client runs on a small tokio runtime on a thread of its own; the
//! consumer loop only pushes into the bounded queue (src/output/queue.rs).
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use fsprobe::Record;

use super::queue::{Item, LossRecord, Queue};
use super::spool::Spool;
use super::{FinishReport, Forwarder, OutputStats, SenderThread};
use crate::host;

/// Records published before their acknowledgements are awaited.
const WINDOW: usize = 256;
/// How long JetStream may take to acknowledge.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// JetStream drops a message whose id it stored this recently (the
/// default; applies to a stream fsprobe creates).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
const NAME: &str = "nats";

pub struct Config {
    pub url: String,
    pub subject_prefix: String,
    pub stream: String,
    pub buffer: usize,
    pub spool: Option<(PathBuf, u64)>,
}

/// The subject of this host: dots in the host name would split it into
/// more tokens, so they become '_'.
pub fn subject(prefix: &str, hostname: &str) -> String {
    format!("{prefix}.{}", hostname.replace(['.', ' ', '*', '>'], "_"))
}

pub struct NatsOutput {
    queue: Arc<Queue>,
    stats: Arc<OutputStats>,
    sender: Option<SenderThread>,
    id_prefix: String,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl NatsOutput {
    pub fn start(config: Config) -> anyhow::Result<NatsOutput> {
        let hostname = host::hostname();
        let subject = subject(&config.subject_prefix, &hostname);
        let id_prefix = format!(
            "{hostname}/{}/{}.{}/",
            host::boot_id(),
            std::process::id(),
            host::boottime_ns()
        );
        let next_id = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stats = Arc::new(OutputStats::default());
        let spool = match &config.spool {
            Some((path, limit)) => {
                let spool = Spool::open(path, *limit).map_err(|e| {
                    anyhow::anyhow!("cannot open the NATS spool {}: {e}", path.display())
                })?;
                if !spool.is_empty() {
                    eprintln!(
                        "fsprobe: {NAME}: {} records left in the spool {} by an earlier run are published first",
                        spool.pending_records(),
                        spool.path().display()
                    );
                }
                Some(spool)
            }
            None => None,
        };
        let loss: LossRecord = {
            let (prefix, next) = (id_prefix.clone(), Arc::clone(&next_id));
            Box::new(move |count| Item {
                id: format!("{prefix}{}", next.fetch_add(1, Ordering::Relaxed)),
                bytes: Bytes::from(format!(
                    r#"{{"event":"lost","count":{count},"reason":"output_buffer_full","output":"{NAME}"}}"#
                )),
                is_event: false,
            })
        };
        let queue = Arc::new(Queue::new(
            NAME,
            config.buffer,
            spool,
            loss,
            Arc::clone(&stats),
        ));
        let sender = {
            let (queue, stats) = (Arc::clone(&queue), Arc::clone(&stats));
            let (url, stream) = (config.url.clone(), config.stream.clone());
            let stream_subjects = format!("{}.>", config.subject_prefix);
            let subject = subject.clone();
            SenderThread::spawn(NAME, move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(publish(
                        Target {
                            url,
                            subject,
                            stream,
                            stream_subjects,
                        },
                        &queue,
                        &stats,
                    )),
                    Err(e) => eprintln!("fsprobe: {NAME}: cannot start the client: {e}"),
                }
            })?
        };
        eprintln!(
            "fsprobe: {NAME}: publishing to {} on subject {subject} (stream {})",
            config.url, config.stream
        );
        Ok(NatsOutput {
            queue,
            stats,
            sender: Some(sender),
            id_prefix,
            next_id,
        })
    }
}

impl Forwarder for NatsOutput {
    fn name(&self) -> &'static str {
        NAME
    }

    fn send(&mut self, record: &Record, json: &[u8]) {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.queue.push(Item {
            id: format!("{}{n}", self.id_prefix),
            bytes: Bytes::copy_from_slice(json),
            is_event: matches!(record, Record::Event(_)),
        });
    }

    fn stats(&self) -> Arc<OutputStats> {
        Arc::clone(&self.stats)
    }

    fn finish(mut self: Box<Self>, deadline: Instant) -> FinishReport {
        self.queue.close(deadline);
        if let Some(sender) = self.sender.take() {
            sender.join_by(deadline);
        }
        let (spooled, _) = self.queue.finish();
        FinishReport {
            name: NAME,
            stats: Arc::clone(&self.stats),
            spooled,
        }
    }
}

struct Target {
    url: String,
    subject: String,
    stream: String,
    stream_subjects: String,
}

/// 100 ms doubling to 2 s: short, so that a restarted server is used soon.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100 << failures.min(5)).min(Duration::from_secs(2))
}

fn done(queue: &Queue) -> bool {
    match queue.deadline() {
        Some(deadline) => queue.is_empty() || Instant::now() >= deadline,
        None => false,
    }
}

/// Sleeps `d`, but not past the drain deadline.
async fn pause(queue: &Queue, d: Duration) {
    let until = Instant::now() + d;
    let until = queue.deadline().map_or(until, |dl| dl.min(until));
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
}

/// Awaits `fut`, but gives up once the drain deadline has passed (a
/// request to an unreachable server would otherwise hold the exit for the
/// whole acknowledgement timeout).
async fn until_deadline<T>(queue: &Queue, fut: impl Future<Output = T>) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    loop {
        match tokio::time::timeout(Duration::from_millis(100), &mut fut).await {
            Ok(value) => return Some(value),
            Err(_) if queue.deadline().is_some_and(|d| Instant::now() >= d) => return None,
            Err(_) => {}
        }
    }
}

async fn connect(target: &Target, stats: &Arc<OutputStats>) -> Result<async_nats::Client, String> {
    let url = target.url.clone();
    let events_stats = Arc::clone(stats);
    async_nats::ConnectOptions::new()
        .name("fsprobe")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| backoff(attempts as u32))
        .event_callback(move |event| {
            let (url, stats) = (url.clone(), Arc::clone(&events_stats));
            async move {
                match event {
                    async_nats::Event::Connected => {
                        stats.connected.store(true, Ordering::Relaxed);
                        eprintln!("fsprobe: {NAME}: connected to {url}");
                    }
                    async_nats::Event::Disconnected => {
                        stats.connected.store(false, Ordering::Relaxed);
                        eprintln!(
                            "fsprobe: {NAME}: disconnected from {url}; reconnecting, records wait in the buffer"
                        );
                    }
                    async_nats::Event::ClientError(e) => {
                        eprintln!("fsprobe: {NAME}: cannot reach {url}: {e}")
                    }
                    other => eprintln!("fsprobe: {NAME}: {url}: {other}"),
                }
            }
        })
        .connect(&target.url)
        .await
        .map_err(|e| e.to_string())
}

/// The stream that holds the subject: created when missing.
async fn ensure_stream(js: &jetstream::Context, target: &Target) -> Result<(), String> {
    js.get_or_create_stream(stream::Config {
        name: target.stream.clone(),
        subjects: vec![target.stream_subjects.clone()],
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| format!("cannot use the stream {}: {e}", target.stream))
}

async fn publish(target: Target, queue: &Queue, stats: &Arc<OutputStats>) {
    let client = match connect(&target, stats).await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("fsprobe: {NAME}: cannot connect to {}: {e}", target.url);
            return;
        }
    };
    let mut js = jetstream::new(client.clone());
    js.set_timeout(ACK_TIMEOUT);
    let mut stream_ready = false;
    let mut failures = 0u32;
    while !done(queue) {
        if !stream_ready {
            let Some(ensured) = until_deadline(queue, ensure_stream(&js, &target)).await else {
                break;
            };
            if let Err(e) = ensured {
                if failures == 0 {
                    eprintln!("fsprobe: {NAME}: {e}; retrying");
                }
                failures += 1;
                pause(queue, backoff(failures)).await;
                continue;
            }
            stream_ready = true;
        }
        let batch = queue.front(WINDOW);
        if batch.is_empty() {
            queue.wait_async(Duration::from_millis(200)).await;
            continue;
        }
        let published = publish_batch(&js, &target.subject, &batch, stats);
        let Some((acked, error)) = until_deadline(queue, published).await else {
            break;
        };
        queue.commit(acked);
        match error {
            None if failures > 0 => {
                eprintln!("fsprobe: {NAME}: publishing again after {failures} failed attempts");
                failures = 0;
            }
            None => {}
            Some(e) => {
                if failures == 0 {
                    eprintln!(
                        "fsprobe: {NAME}: publish failed ({e}); retrying, records wait in the buffer"
                    );
                }
                failures += 1;
                pause(queue, backoff(failures)).await;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), client.flush()).await;
    eprintln!("fsprobe: {NAME}: closing the connection to {}", target.url);
}

/// Publishes a batch, then awaits the acknowledgements in order: how many
/// of the first were acknowledged, and the error that stopped the rest.
async fn publish_batch(
    js: &jetstream::Context,
    subject: &str,
    batch: &[Item],
    stats: &OutputStats,
) -> (usize, Option<String>) {
    let mut pending = Vec::with_capacity(batch.len());
    let mut error = None;
    for item in batch {
        let publish = PublishMessage::build()
            .payload(item.bytes.clone())
            .message_id(&item.id);
        match js.send_publish(subject.to_owned(), publish).await {
            Ok(ack) => pending.push(ack),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let mut acked = 0;
    for ack in pending {
        match ack.await {
            Ok(ack) => {
                if ack.duplicate {
                    stats.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                acked += 1;
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    stats.sent.fetch_add(acked as u64, Ordering::Relaxed);
    (acked, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_names_the_host_in_one_token() {
        assert_eq!(subject("fsprobe", "web1"), "fsprobe.web1");
        assert_eq!(
            subject("fleet.fs", "web1.example.org"),
            "fleet.fs.web1_example_org"
        );
    }
}
