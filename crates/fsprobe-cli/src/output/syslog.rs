//! Syslog output: RFC 5424 messages whose MSG is the record's NDJSON
//! object, byte for byte, over TCP with octet-counted framing (RFC 6587,
//! section 3.4.1: `LEN SP MSG`), or over UDP, one message per datagram
//! (RFC 5426).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME fsprobe PROCID MSGID - MSG`: PRI is the
//! facility with severity info (6) for events and warning (4) for loss
//! records; TIMESTAMP is the event's time to the microsecond (RFC 5424
//! allows six fraction digits; MSG keeps the nanoseconds); MSGID is the
//! event kind or `lost`. MSG has no BOM: it is RFC 5424's MSG-ANY, and so
//! exactly the object the JSON sink prints.
//!
//! TCP has no acknowledgement: records written into a connection that then
//! breaks may not arrive, and fsprobe cannot know. What fsprobe knows it
//! lost (a full buffer, a datagram too large, a refused send) is counted
//! and reported by a loss record in the same stream.
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fsprobe::Record;

use super::queue::{Item, LossRecord, Queue};
use super::{FinishReport, Forwarder, OutputStats, SenderThread};

/// Severity info (RFC 5424, table 2).
const INFO: u8 = 6;
/// Severity warning.
const WARNING: u8 = 4;
/// Records written per batch (one write for TCP).
const BATCH: usize = 256;

/// The RFC 5424 header fields that do not change.
#[derive(Clone)]
pub struct Format {
    pub facility: u8,
    pub hostname: String,
    pub pid: u32,
}

impl Format {
    pub fn new(facility: u8, hostname: &str) -> Format {
        // HOSTNAME is 1*255 PRINTUSASCII (RFC 5424, section 6.2.4).
        let hostname: String = hostname
            .chars()
            .take(255)
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        Format {
            facility,
            hostname: if hostname.is_empty() {
                "-".into()
            } else {
                hostname
            },
            pid: std::process::id(),
        }
    }

    /// The whole message: header, then `json` as it is.
    pub fn message(&self, severity: u8, time_ns: i128, msgid: &str, json: &[u8]) -> Vec<u8> {
        let pri = u16::from(self.facility) * 8 + u16::from(severity);
        let mut msg = format!(
            "<{pri}>1 {} {} fsprobe {} {msgid} - ",
            micros(&fsprobe::rfc3339(time_ns)),
            self.hostname,
            self.pid
        )
        .into_bytes();
        msg.extend_from_slice(json);
        msg
    }

    fn record(&self, record: &Record, json: &[u8]) -> Vec<u8> {
        match record {
            Record::Event(e) => self.message(INFO, e.time_ns, e.kind.name(), json),
            Record::Lost { .. } => self.message(WARNING, now_ns(), "lost", json),
            Record::Unwatched { .. } => self.message(WARNING, now_ns(), "unwatched", json),
            // A record of a later library version: what it is, JSON says.
            _ => self.message(INFO, now_ns(), "-", json),
        }
    }

    /// A loss record of this output, as a message.
    fn loss(&self, output: &str, reason: &str, count: u64) -> Item {
        let json = format!(
            r#"{{"event":"lost","count":{count},"reason":"{reason}","output":"{output}"}}"#
        );
        Item {
            id: String::new(),
            bytes: Bytes::from(self.message(WARNING, now_ns(), "lost", json.as_bytes())),
            is_event: false,
        }
    }
}

/// Cuts an RFC 3339 time with nanoseconds to microseconds.
fn micros(rfc3339: &str) -> String {
    match rfc3339.find('.') {
        Some(dot) if rfc3339.len() > dot + 7 => format!("{}Z", &rfc3339[..dot + 7]),
        _ => rfc3339.to_owned(),
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp { max: usize },
}

/// A syslog output and its sender thread.
pub struct SyslogOutput {
    name: &'static str,
    format: Format,
    transport: Transport,
    queue: Arc<Queue>,
    stats: Arc<OutputStats>,
    sender: Option<SenderThread>,
}

impl SyslogOutput {
    pub fn start(
        addr: &str,
        transport: Transport,
        format: Format,
        buffer: usize,
    ) -> io::Result<SyslogOutput> {
        let name = match transport {
            Transport::Tcp => "syslog_tcp",
            Transport::Udp { .. } => "syslog_udp",
        };
        let stats = Arc::new(OutputStats::default());
        let loss_format = format.clone();
        let loss: LossRecord = Box::new(move |n| loss_format.loss(name, "output_buffer_full", n));
        let queue = Arc::new(Queue::new(name, buffer, None, loss, Arc::clone(&stats)));
        let sender = {
            let (addr, queue, stats) = (addr.to_owned(), Arc::clone(&queue), Arc::clone(&stats));
            SenderThread::spawn(name, move || match transport {
                Transport::Tcp => send_tcp(&addr, &queue, &stats),
                Transport::Udp { .. } => send_udp(&addr, &queue, &stats),
            })?
        };
        eprintln!("fsprobe: {name}: sending to {addr}");
        Ok(SyslogOutput {
            name,
            format,
            transport,
            queue,
            stats,
            sender: Some(sender),
        })
    }
}

impl Forwarder for SyslogOutput {
    fn name(&self) -> &'static str {
        self.name
    }

    fn send(&mut self, record: &Record, json: &[u8]) {
        let msg = self.format.record(record, json);
        if let Transport::Udp { max } = self.transport
            && msg.len() > max
        {
            self.stats.lost_too_large.fetch_add(1, Ordering::Relaxed);
            self.queue
                .push(self.format.loss(self.name, "too_large_for_datagram", 1));
            return;
        }
        self.queue.push(Item {
            id: String::new(),
            bytes: Bytes::from(msg),
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
            name: self.name,
            stats: Arc::clone(&self.stats),
            spooled,
        }
    }
}

/// Waits before the next connection attempt: 100 ms doubling to 5 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100 << failures.min(6)).min(Duration::from_secs(5))
}

/// Sleeps `d`, but not past the drain deadline; false once that passed.
fn pause(queue: &Queue, d: Duration) -> bool {
    let until = Instant::now() + d;
    let until = queue.deadline().map_or(until, |dl| dl.min(until));
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    queue.deadline().is_none_or(|dl| Instant::now() < dl)
}

/// Whether the sender should stop: nothing left once closed, or too late.
fn done(queue: &Queue) -> bool {
    match queue.deadline() {
        Some(deadline) => queue.is_empty() || Instant::now() >= deadline,
        None => false,
    }
}

fn resolve(addr: &str) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
}

fn connect_tcp(addr: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&resolve(addr)?, Duration::from_secs(2))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn send_tcp(addr: &str, queue: &Queue, stats: &OutputStats) {
    let name = "syslog_tcp";
    let mut conn: Option<TcpStream> = None;
    let mut failures = 0u32;
    let mut frames = Vec::new();
    while !done(queue) {
        let batch = queue.front(BATCH);
        if batch.is_empty() {
            queue.wait(Duration::from_millis(200));
            continue;
        }
        let stream = match conn.as_mut() {
            Some(stream) => stream,
            None => match connect_tcp(addr) {
                Ok(stream) => {
                    eprintln!("fsprobe: {name}: connected to {addr}");
                    stats.connected.store(true, Ordering::Relaxed);
                    failures = 0;
                    conn.insert(stream)
                }
                Err(e) => {
                    if failures == 0 {
                        eprintln!(
                            "fsprobe: {name}: cannot connect to {addr} ({e}); retrying, records wait in the buffer"
                        );
                    }
                    failures += 1;
                    pause(queue, backoff(failures));
                    continue;
                }
            },
        };
        frames.clear();
        for item in &batch {
            frames.extend_from_slice(format!("{} ", item.bytes.len()).as_bytes());
            frames.extend_from_slice(&item.bytes);
        }
        match stream.write_all(&frames) {
            Ok(()) => {
                queue.commit(batch.len());
                stats.sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("fsprobe: {name}: connection to {addr} lost ({e}); reconnecting");
                stats.connected.store(false, Ordering::Relaxed);
                conn = None;
            }
        }
    }
    if conn.is_some() {
        eprintln!("fsprobe: {name}: closing the connection to {addr}");
    }
}

fn bind_udp(addr: &str) -> io::Result<UdpSocket> {
    let to = resolve(addr)?;
    let any: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(to)?;
    Ok(socket)
}

fn send_udp(addr: &str, queue: &Queue, stats: &OutputStats) {
    let name = "syslog_udp";
    let socket = match bind_udp(addr) {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("fsprobe: {name}: cannot send to {addr}: {e}");
            return;
        }
    };
    stats.connected.store(true, Ordering::Relaxed);
    let mut failing = false;
    while !done(queue) {
        let batch = queue.front(BATCH);
        if batch.is_empty() {
            queue.wait(Duration::from_millis(200));
            continue;
        }
        for item in &batch {
            match socket.send(&item.bytes) {
                Ok(_) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    if failing {
                        eprintln!("fsprobe: {name}: sending to {addr} again");
                        failing = false;
                    }
                }
                Err(e) => {
                    if item.is_event {
                        stats.lost_send_failed.fetch_add(1, Ordering::Relaxed);
                    }
                    if !failing {
                        eprintln!(
                            "fsprobe: {name}: sending to {addr} failed ({e}); such events are counted lost"
                        );
                        failing = true;
                    }
                }
            }
        }
        queue.commit(batch.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_an_rfc5424_header_then_the_json_as_it_is() {
        let f = Format {
            facility: 3,
            hostname: "web1".into(),
            pid: 42,
        };
        // 2026-11-29T00:45:18.067046936Z
        let t = 1_795_913_118_067_046_936i128;
        let msg = f.message(INFO, t, "open", br#"{"event":"open"}"#);
        assert_eq!(
            String::from_utf8(msg).unwrap(),
            r#"<30>1 2026-11-29T00:45:18.067046Z web1 fsprobe 42 open - {"event":"open"}"#
        );
        assert_eq!(
            micros("2026-11-29T00:45:18.067046936Z"),
            "2026-11-29T00:45:18.067046Z"
        );
    }

    #[test]
    fn host_names_keep_to_printable_ascii() {
        assert_eq!(Format::new(1, "a b\u{e9}").hostname, "a_b_");
        assert_eq!(Format::new(1, "").hostname, "-");
    }
}
