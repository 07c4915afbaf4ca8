//! `fsprobe`: the command-line client of the fsprobe library.
mod args;
mod escape;
mod host;
mod metrics;
mod output;
mod signals;
mod sink;

use std::fmt;
use std::io::{self, BufWriter};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use fsprobe::RecvError;

use args::{Args, Format};
use output::file::Target;
use output::nats::NatsOutput;
use output::syslog::{self, SyslogOutput};
use output::{Forwarder, Outputs};
use sink::{JsonSink, NoSink, Sink, TableSink};

/// How often the output loop looks at the SIGHUP flag while no record comes.
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// A mistake in the command line that only the CLI sees: exit code 2.
#[derive(Debug)]
struct Usage(String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn open_sink(args: &Args) -> anyhow::Result<Box<dyn Sink>> {
    let target = match &args.output {
        Some(path) => Target::create(path)
            .map_err(|e| Usage(format!("cannot create {}: {e}", path.display())))?,
        None => Target::Stdout(io::stdout()),
    };
    let out = BufWriter::with_capacity(64 * 1024, target);
    Ok(match args.format {
        Format::Table => Box::new(TableSink::new(out)),
        Format::Json => Box::new(JsonSink(out)),
        Format::None => Box::new(NoSink),
    })
}

/// The network outputs the flags ask for, started.
fn start_forwarders(args: &Args) -> anyhow::Result<Vec<Box<dyn Forwarder>>> {
    let s = &args.service;
    let mut forwarders: Vec<Box<dyn Forwarder>> = Vec::new();
    if let Some(url) = &s.nats {
        forwarders.push(Box::new(NatsOutput::start(output::nats::Config {
            url: url.clone(),
            subject_prefix: s.nats_subject_prefix.clone(),
            stream: s.nats_stream.clone(),
            buffer: s.nats_buffer,
            spool: s.nats_spool.clone().map(|p| (p, s.nats_spool_size)),
        })?));
    }
    let format = syslog::Format::new(s.syslog_facility, &host::hostname());
    for (addr, transport) in [
        (&s.syslog_tcp, syslog::Transport::Tcp),
        (
            &s.syslog_udp,
            syslog::Transport::Udp {
                max: s.syslog_udp_max,
            },
        ),
    ] {
        if let Some(addr) = addr {
            let out = SyslogOutput::start(addr, transport, format.clone(), s.syslog_buffer)
                .with_context(|| format!("cannot start the syslog output to {addr}"))?;
            forwarders.push(Box::new(out));
        }
    }
    Ok(forwarders)
}

/// One process filter from its include and exclude flags (clap keeps them exclusive).
fn process_filter<T: Clone>(include: &[T], exclude: &[T]) -> fsprobe::ProcessFilter<T> {
    if !include.is_empty() {
        fsprobe::ProcessFilter::Include(include.to_vec())
    } else if !exclude.is_empty() {
        fsprobe::ProcessFilter::Exclude(exclude.to_vec())
    } else {
        fsprobe::ProcessFilter::Off
    }
}

fn probe_builder(args: &Args) -> fsprobe::ProbeBuilder {
    let mut builder = match &args.btf {
        Some(btf) => fsprobe::Probe::builder().btf(btf),
        None => fsprobe::Probe::builder(),
    };
    if let Some(entries) = args.cache_size {
        builder = builder.cache_size(entries);
    }
    builder = builder
        .pid_filter(process_filter(&args.pids, &args.exclude_pids))
        .uid_filter(process_filter(&args.uids, &args.exclude_uids))
        .comm_filter(process_filter(&args.comms, &args.exclude_comms));
    builder
        .paths(args.paths.iter().cloned())
        .recursive(args.recursive)
        .paths_filtering(args.paths_filtering)
        .follow(args.follow)
        .events(args.events.iter().copied())
        .channel_size(args.chan_size)
        .buffer_pages(args.perf_buffer_size)
        .transport(args.transport)
        .resolution_mode(args.dentry_resolution_mode)
        .backend(args.backend)
        .max_watches(args.max_watches)
        .on_walk_progress(WALK_PROGRESS_EVERY, print_walk_progress)
}

/// How often a long walk of the watched trees says how far it got.
const WALK_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// While a large tree is walked, before the ready line.
fn print_walk_progress(p: &fsprobe::WalkProgress) {
    if !p.done {
        eprintln!(
            "fsprobe: walking the watched trees: {} entries so far ({:.1} s)",
            p.entries,
            p.elapsed.as_secs_f64()
        );
    }
}

/// Reopens the `-o` file when SIGHUP asked for it.
fn reopen_if_asked(outputs: &mut Outputs, hup: &AtomicBool, output: &str) -> io::Result<()> {
    if hup.swap(false, Ordering::SeqCst) {
        outputs.main.reopen()?;
        eprintln!("fsprobe: SIGHUP: reopened {}", escape::line(output));
    }
    Ok(())
}

/// Writes records until the probe stops; a closed pipe stops it quietly.
fn pump(
    probe: &fsprobe::Probe,
    outputs: &mut Outputs,
    hup: &AtomicBool,
    output: &str,
) -> io::Result<()> {
    let records = probe.records();
    loop {
        let record = match records.try_recv() {
            Ok(r) => r,
            Err(RecvError::Empty) => {
                outputs.flush()?;
                match records.recv_timeout(IDLE_CHECK) {
                    Ok(r) => r,
                    Err(RecvError::Timeout) => {
                        reopen_if_asked(outputs, hup, output)?;
                        continue;
                    }
                    Err(_) => return outputs.flush(),
                }
            }
            Err(_) => return outputs.flush(),
        };
        reopen_if_asked(outputs, hup, output)?;
        outputs.write(&record)?;
        // Its memory holds a later event: no allocation per event.
        records.recycle(record);
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let signals = signals::Signals::catch()?;
    let probe = probe_builder(&args).start()?;
    // Created once the options are known good: a typo never truncates it.
    let sink = open_sink(&args)?;
    let metrics = args.service.metrics.map(metrics::bind).transpose()?;
    signals.stop(&probe)?;
    print_ready(probe.ready());
    let forwarders = start_forwarders(&args)?;
    let mut outputs = Outputs::new(sink, args.format == Format::Json, forwarders);
    if let Some(listener) = metrics {
        metrics::serve(
            listener,
            metrics::Sources {
                probe: probe.stats_reader(),
                backend: probe.ready().backend.name(),
                outputs: outputs.forwarder_stats(),
            },
        )?;
    }
    let output_name = args
        .output
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    let pumped = pump(&probe, &mut outputs, signals.hup(), &output_name);
    let broken_pipe = matches!(&pumped, Err(e) if e.kind() == io::ErrorKind::BrokenPipe);
    if !broken_pipe {
        pumped.context("writing events")?;
    }
    let summary = probe.join()?;
    let drain = Duration::from_secs_f64(args.service.drain_timeout.max(0.0));
    for report in outputs.finish(Instant::now() + drain) {
        eprintln!("{}", report.summary_line());
    }
    eprintln!("{}", summary_line(&summary, args.dentry_resolution_mode));
    Ok(())
}

/// The ready line, and a warning for what the tree walk could not read.
fn print_ready(ready: &fsprobe::Ready) {
    eprintln!(
        "fsprobe: ready (backend: {}, kernel: {}, watched inodes: {}, filter entries: {}, syscalls hooked: {}, io_uring ops: {}{}{})",
        ready.backend,
        ready.kernel,
        ready.watched_inodes,
        ready.filter_entries,
        ready.syscalls.len(),
        ready.io_uring_ops.len(),
        if ready.missing_syscalls.is_empty() {
            String::new()
        } else {
            format!(
                ", absent on this kernel: {}",
                ready.missing_syscalls.join(" ")
            )
        },
        if ready.left_out.is_empty() {
            String::new()
        } else {
            format!(", not seen here: {}", ready.left_out.join("; "))
        }
    );
    if ready.unreadable_entries > 0 {
        eprintln!(
            "fsprobe: warning: {} entries of the watched trees could not be read and are not watched (first: {})",
            ready.unreadable_entries,
            escape::line(ready.first_unreadable.as_deref().unwrap_or("unknown"))
        );
    }
}

/// The exit summary: one line, the last one fsprobe prints.
fn summary_line(s: &fsprobe::Summary, mode: fsprobe::ResolutionMode) -> String {
    let mut line = format!(
        "fsprobe: {} events, {} lost (buffer full: {}, in flight: {}, unread at stop: {}, undecodable: {}), \
         watch limit hits: {}, syscalls filtered out by process: {}, \
         path walks: {} cut short by the {mode} cache, {} to the root",
        s.events,
        s.lost(),
        s.lost_buffer_full,
        s.lost_in_flight,
        s.lost_unread,
        s.undecodable,
        s.watch_limit_hits,
        s.filtered_by_process,
        s.walks_cached,
        s.walks_full
    );
    if s.unknown_prefixes > 0 {
        line += &format!(
            ", {} paths reported truncated: their cached prefix was unknown (a bug, please report it)",
            s.unknown_prefixes
        );
    }
    line
}

/// 2 when the command line is at fault, 1 when the system is (README.md).
fn exit_code(e: &anyhow::Error) -> u8 {
    let usage = e.downcast_ref::<Usage>().is_some()
        || e.downcast_ref::<fsprobe::Error>()
            .is_some_and(fsprobe::Error::is_usage);
    if usage { 2 } else { 1 }
}

/// The whole chain on one line, escaped. An error whose message already
/// ends with its cause's is not followed by the cause again.
fn error_line(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    escape::line(&text)
}

/// The message of a flag error, without clap's usage, tips and list of
/// possible values, which follow it on lines of their own. (A value the
/// user gave may hold newlines too: the message is cut at clap's own
/// layout, not at the first newline.)
fn clap_message(text: &str) -> &str {
    let text = text.trim_start_matches("error: ");
    let end = ["\n\n", "\n  ["]
        .iter()
        .filter_map(|layout| text.find(layout))
        .min()
        .unwrap_or(text.len());
    text[..end].trim_end()
}

fn main() -> ExitCode {
    signals::unblock();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fsprobe: {}", escape::line(clap_message(&e.to_string())));
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fsprobe: error: {}", error_line(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}
